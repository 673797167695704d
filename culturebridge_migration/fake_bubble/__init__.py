"""A local stand-in for Bubble's Data API, its `/meta`, its version-test database and its hosted files."""

from culturebridge_migration.fake_bubble.meta import id_keyed, infer_meta
from culturebridge_migration.fake_bubble.server import FakeBubble, RequestRecord

__all__ = ["FakeBubble", "RequestRecord", "id_keyed", "infer_meta"]
