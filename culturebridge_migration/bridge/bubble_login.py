"""The one question the bridge asks Bubble: is this the password of this e-mail? (The app's login API workflow.)

`POST {BUBBLE_API_URL}/wf/{workflow}` with `{"email", "password"}` and the API key as bearer. Bubble's success
(`{"status": "success", "response": {"user_id", "token", "expires"}}`) verifies; any other 4xx does not; a 5xx,
a 429, a timeout or no answer leaves it unknown, never "wrong password". Bubble's token is dropped here: no
caller ever sees it. The password goes in the request body only, never in a URL or a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import requests

from culturebridge_migration.sources.http import json_body


class Verdict(StrEnum):
    VERIFIED = "verified"
    REFUSED = "refused"
    UNKNOWN = "unknown"  # Bubble could not say: down, slow, over its rate limit, or answering nonsense


@dataclass(frozen=True)
class BubbleAnswer:
    verdict: Verdict
    user_id: str | None = None  # Bubble's _id of the user, when verified
    detail: str = ""  # for logs: the status Bubble answered, never a body that could echo the password


def ask_bubble(api_url: str, api_key: str, workflow: str, email: str, password: str, timeout: float) -> BubbleAnswer:
    try:
        answer = requests.post(
            f"{api_url.rstrip('/')}/wf/{workflow}",
            json={"email": email, "password": password},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            allow_redirects=False,  # a redirect would carry the password somewhere else
        )
    except requests.RequestException as exc:
        return BubbleAnswer(Verdict.UNKNOWN, detail=type(exc).__name__)
    return read_answer(answer.status_code, _json(answer))


def read_answer(status: int, body: object) -> BubbleAnswer:
    """What Bubble's answer means (pure: the rules of the interface, tested on their own)."""
    if status == 200 and isinstance(body, dict) and body.get("status") == "success":
        user_id = (body.get("response") or {}).get("user_id")
        if isinstance(user_id, str) and user_id:
            return BubbleAnswer(Verdict.VERIFIED, user_id, "200")
        return BubbleAnswer(
            Verdict.UNKNOWN, detail="200 without a user_id: is the workflow's action 'Log the user in'?"
        )
    if 400 <= status < 500 and status not in (401, 403, 404, 408, 429):
        return BubbleAnswer(Verdict.REFUSED, detail=str(status))
    # 401/403/404: our key or the workflow is wrong, not the user's password; 5xx, 408, 429: Bubble cannot say.
    return BubbleAnswer(Verdict.UNKNOWN, detail=str(status))


def _json(answer: requests.Response) -> object:
    try:
        return json_body(answer)
    except ValueError:
        return None
