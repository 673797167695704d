"""The login bridge's check, as data (see validation/checks.py): enough active users can log in without a reset."""

from __future__ import annotations

from dataclasses import dataclass

from culturebridge_migration.validation.checks import Check, Outcome

ACTIVE_USERS_CAN_LOG_IN = "active_users_can_log_in"
# Below this share of active users able to log in without a reset, a support flood is ahead.
MIN_SHARE = 0.9


@dataclass(frozen=True)
class LoginReadiness:
    """Active users, and those of them who can log in now without a reset (a hash, or the bridge still open)."""

    active_users: int
    can_log_in: int

    @property
    def share(self) -> float:
        return self.can_log_in / self.active_users if self.active_users else 1.0


def check_login_share(inputs: LoginReadiness) -> Outcome:
    passed = inputs.share >= MIN_SHARE
    return Outcome(
        passed,
        inputs.active_users - inputs.can_log_in,
        details={"share": round(inputs.share, 4), "active_users": inputs.active_users},
        summary=None if passed else f"only {inputs.share:.0%} of active users can log in without a password reset",
    )


ACTIVE_USERS_CAN_LOG_IN_CHECK = Check(
    ACTIVE_USERS_CAN_LOG_IN,
    "WARN",
    f"At least {MIN_SHARE:.0%} of active users can log in without a password reset: a hash in Phase 2, or the "
    "login bridge still open for them.",
    check_login_share,
)
PASSWORD_CHECKS = [ACTIVE_USERS_CAN_LOG_IN_CHECK]
