"""The app's API workflows: `culturebridge_login`, whose one action is "Log the user in".

Bubble answers a workflow with `{"status": "success", "response": {...}}`; a failed "Log the user in" is
a 400 with an error body, the same for a wrong password and an unknown e-mail as far as a client can
act on it. Only e-mail sign-ups have a password: a user who signed up through Google has none.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

LOGIN_WORKFLOW = "culturebridge_login"
SESSION_SECONDS = 31_536_000  # "Log the user in" with "stay logged in": a year, as Bubble answers `expires`
NO_ACCOUNT = "We didn't find an account with those credentials"
WRONG_PASSWORD = "The password is incorrect"


@dataclass(frozen=True)
class WorkflowAnswer:
    status: int
    body: dict


def error(status: int, kind: str, message: str) -> WorkflowAnswer:
    return WorkflowAnswer(status, {"statusCode": status, "body": {"status": kind, "message": message}})


def log_the_user_in(users: list[dict], passwords: Mapping[str, str], params: Mapping[str, object]) -> WorkflowAnswer:
    """Bubble's "Log the user in" over `users` (Data API records); `passwords` maps a user's _id to theirs."""
    for name in ("email", "password"):
        if not isinstance(params.get(name), str) or not params[name]:
            return error(400, "MISSING_DATA", f"Missing parameter for workflow {LOGIN_WORKFLOW}: parameter {name}")
    email = str(params["email"]).strip().lower()
    user = next((u for u in users if _login_email(u) == email and u.get("user_signed_up", True)), None)
    if user is None or user.get("_id") not in passwords:
        return error(400, "NOT_VALID", NO_ACCOUNT)
    if not secrets.compare_digest(passwords[user["_id"]].encode(), str(params["password"]).encode()):
        return error(400, "NOT_VALID", WRONG_PASSWORD)
    token = f"{int(time.time() * 1000)}x{secrets.randbelow(10**18):018d}"
    response = {"token": token, "user_id": user["_id"], "expires": SESSION_SECONDS}
    return WorkflowAnswer(200, {"status": "success", "response": response})


def _login_email(user: dict) -> str | None:
    """The e-mail a user logs in with: only e-mail sign-ups (authentication.email.email) have a password."""
    email = ((user.get("authentication") or {}).get("email") or {}).get("email")
    return email.strip().lower() if isinstance(email, str) else None
