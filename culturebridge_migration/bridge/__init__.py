"""The login bridge: for a window after cutover, a user without a Phase 2 password is checked against Bubble
at their first login, and on success Phase 2 keeps a bcrypt hash of it (DESIGN.md section 5).

`login(email, password)` for a Python backend; `culturebridge password-bridge serve` (service.py) for any other.
"""

from culturebridge_migration.bridge.login import LoginResult, Outcome, PasswordBridge, login

__all__ = ["LoginResult", "Outcome", "PasswordBridge", "login"]
