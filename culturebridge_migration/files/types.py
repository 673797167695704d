"""What the file copy talks about: a reference to a Bubble file, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CopyStatus = Literal["copied", "missing", "failed"]


@dataclass(frozen=True, order=True)
class FileRef:
    """One Bubble file URL held by one column of one record."""

    entity: str  # the Phase 2 table, e.g. "users"
    bubble_id: str
    column: str  # the Phase 2 column, e.g. "profile_photo_url"
    url: str  # as Bubble holds it, often protocol-relative (//s3.amazonaws.com/...)


@dataclass(frozen=True)
class CopyResult:
    """The outcome for one file. `copied` results carry key, public URL, size and sha256; the others a reason."""

    status: CopyStatus
    key: str
    public_url: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    reason: str | None = None

    @property
    def copied(self) -> bool:
        return self.status == "copied"
