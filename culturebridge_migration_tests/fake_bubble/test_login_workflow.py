"""The sample app's login API workflow (`POST /api/1.1/wf/culturebridge_login`), as Bubble answers it."""

from __future__ import annotations

import pytest
import requests

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_login_password, sample_server_args
from culturebridge_migration.sources.sample_data import generate_sample

KEY = "test-key"
USER = {
    "_id": "1700000000000x11",
    "Created Date": "2025-01-01T00:00:00.000Z",
    "authentication": {"email": {"email": "Ana.Lima@Example.com"}},
    "user_signed_up": True,
}
GOOGLE_USER = {
    "_id": "1700000000000x12",
    "Created Date": "2025-01-01T00:00:00.000Z",
    "authentication": {"Google": {"email": "kofi@example.com"}},
    "user_signed_up": True,
}
PASSWORDS = {USER["_id"]: "right horse battery", GOOGLE_USER["_id"]: "not for email login"}


def login(fake: FakeBubble, email: str, password: str, *, workflow: str = "culturebridge_login", token: str = KEY):
    return requests.post(
        f"{fake.url}/wf/{workflow}",
        json={"email": email, "password": password},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.fixture
def fake() -> FakeBubble:
    with FakeBubble({"user": [USER, GOOGLE_USER]}, passwords=PASSWORDS, api_key=KEY) as server:
        yield server


def test_the_right_password_logs_the_user_in_with_a_token_and_the_users_id(fake: FakeBubble) -> None:
    answer = login(fake, "  ana.lima@example.COM ", "right horse battery")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success"
    assert body["response"]["user_id"] == USER["_id"]
    assert body["response"]["token"] and isinstance(body["response"]["expires"], int)
    assert [(r.method, r.path, r.status) for r in fake.requests] == [("POST", "/api/1.1/wf/culturebridge_login", 200)]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ana.lima@example.com", "wrong horse"),
        ("nobody@example.com", "right horse battery"),
        ("kofi@example.com", "not for email login"),  # signed up with Google: no e-mail password
    ],
)
def test_a_wrong_password_or_an_unknown_email_is_bubbles_400(fake: FakeBubble, email: str, password: str) -> None:
    answer = login(fake, email, password)
    assert answer.status_code == 400
    assert answer.json()["statusCode"] == 400
    assert answer.json()["body"]["status"] == "NOT_VALID"
    assert "token" not in answer.text


def test_a_wrong_key_an_unknown_workflow_and_a_missing_parameter(fake: FakeBubble) -> None:
    assert login(fake, USER["authentication"]["email"]["email"], "right horse battery", token="x").status_code == 401
    missing = login(fake, "ana.lima@example.com", "right horse battery", workflow="other")
    assert (missing.status_code, missing.json()["body"]["status"]) == (404, "NOT_FOUND")
    no_password = requests.post(
        f"{fake.url}/wf/culturebridge_login",
        json={"email": "ana.lima@example.com"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert (no_password.status_code, no_password.json()["body"]["status"]) == (400, "MISSING_DATA")


@pytest.mark.parametrize(("kind", "status"), [("500", 503), ("429", 429), ("unauthorized", 401)])
def test_faults_hit_the_workflow_like_the_data_api(fake: FakeBubble, kind: str, status: int) -> None:
    fake.add_fault(kind, bubble_type="wf/culturebridge_login", **({"status": 503} if kind == "500" else {}))
    assert login(fake, "ana.lima@example.com", "right horse battery").status_code == status
    assert login(fake, "ana.lima@example.com", "right horse battery").status_code == 200


def test_a_slow_fault_delays_the_answer(fake: FakeBubble) -> None:
    fake.add_fault("slow", seconds=2)
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{fake.url}/wf/culturebridge_login",
            json={"email": "ana.lima@example.com", "password": "right horse battery"},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=0.5,
        )


def test_the_sample_documents_every_users_password() -> None:
    assert sample_login_password("1700000000000x11") == sample_login_password("1700000000000x11")
    assert sample_login_password("1700000000000x11") != sample_login_password("1700000000000x12")


def test_the_sample_server_logs_in_its_email_users_with_the_documented_passwords() -> None:
    sample = generate_sample(20)
    user = sample.records["users"][7]
    email = user["authentication"]["email"]["email"].strip()
    with FakeBubble(**sample_server_args(sample), api_key=KEY) as server:
        assert login(server, email, sample_login_password(user["_id"])).json()["response"]["user_id"] == user["_id"]
        assert login(server, email, sample.passwords.get(user["_id"], "guess")).status_code == 400
