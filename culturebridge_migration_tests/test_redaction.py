"""Secrets never reach a message, whichever way the URL was written."""

import pytest

from culturebridge_migration.loading.database import DatabaseUnavailable, open_connection
from culturebridge_migration.redaction import redact_url, scrub, unencoded_at_in_password

URLS = {
    "postgresql://app:S3cret@db.internal:5432/phase2": "postgresql://app:***@db.internal:5432/phase2",
    "postgresql://app@db.internal/phase2?password=S3cret&sslmode=require": (
        "postgresql://app@db.internal/phase2?password=***&sslmode=require"
    ),
    "host=db.internal port=5432 user=app password=S3cret dbname=phase2": (
        "host=db.internal port=5432 user=app password=*** dbname=phase2"
    ),
    "host=db.internal password='S3cret with spaces' dbname=phase2": "host=db.internal password=*** dbname=phase2",
    "postgresql://app:p@S3cret@db.internal/phase2": "postgresql://app:***@db.internal/phase2",
    "https://admin:S3cret@myapp.bubbleapps.io/api/1.1": "https://admin:***@myapp.bubbleapps.io/api/1.1",
    "https://myapp.bubbleapps.io/api/1.1?api_token=S3cret": "https://myapp.bubbleapps.io/api/1.1?api_token=***",
}


@pytest.mark.parametrize("url", URLS)
def test_every_url_form_shows_its_host_and_hides_its_secret(url: str) -> None:
    assert redact_url(url) == URLS[url]


def test_an_at_sign_after_the_host_is_not_taken_for_the_password() -> None:
    url = "postgresql://app:S3cret@db.internal/phase2?application_name=ops@night"
    assert redact_url(url) == "postgresql://app:***@db.internal/phase2?application_name=ops@night"
    assert not unencoded_at_in_password(url)
    assert unencoded_at_in_password("postgresql://app:p@S3cret@db.internal/phase2")
    assert not unencoded_at_in_password("postgresql://app:p%40S3cret@db.internal/phase2")


def test_scrub_removes_the_pieces_of_a_password_a_library_quoted_back() -> None:
    url = "postgresql://app:p@ss@S3cret@127.0.0.1/phase2"
    assert "S3cret" not in scrub("failed to resolve host 'ss@S3cret@127.0.0.1'", url)
    assert scrub("percent-decoded p@ss here", "postgresql://app:p%40ss@h/d") == "percent-decoded *** here"


@pytest.mark.parametrize(
    "url",
    [
        "host=127.0.0.1 port=9 user=u password=S3cret dbname=d",
        "host=127.0.0.1 port=9 password=S3cret user",  # malformed: libpq echoes the string's tail
        "postgresql://u:p@S3cret@127.0.0.1:9/d",
        "postgresql://u@127.0.0.1:9/d?password=S3cret&sslmode=bogus",
    ],
)
def test_a_failed_connection_names_the_server_but_never_the_password(url: str) -> None:
    with pytest.raises(DatabaseUnavailable) as failure:
        open_connection(url)
    assert "S3cret" not in str(failure.value)
    assert "127.0.0.1" in str(failure.value)
