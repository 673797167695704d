"""Bubble-hosted files on the local server: served byte-identical at CDN-like paths, faults, the log."""

from __future__ import annotations

import http.client
import io
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from culturebridge_migration.fake_bubble import FakeBubble
from culturebridge_migration.fake_bubble.sample import sample_files
from culturebridge_migration.sources.sample_data import generate_sample

PHOTO_URL = "//s3.amazonaws.com/appforest_uf/f1690001/photo.jpg"
PHOTO_KEY = "s3.amazonaws.com/appforest_uf/f1690001/photo.jpg"
PDF_URL = "https://e8a3c0b4.cdn.bubble.io/f1699999999999x123/Guide%203%20checklist.pdf"
PHOTO = bytes(range(256)) * 8
PDF = b"%PDF-1.4\n" + b"x" * 3000


@pytest.fixture
def fake() -> Iterator[FakeBubble]:
    with FakeBubble(files={PHOTO_URL: PHOTO, PDF_URL: PDF}) as server:
        yield server


def get(fake: FakeBubble, url: str = PHOTO_URL, timeout: float = 10, **kwargs: object) -> requests.Response:
    return requests.get(fake.file_url(url), timeout=timeout, **kwargs)


def downloads(fake: FakeBubble) -> list[tuple[str, int, int]]:
    return [(r.method, r.status, r.bytes_sent) for r in fake.file_requests()]


# -- serving ----------------------------------------------------------------------------------------
def test_a_file_is_served_byte_identical_under_files_url_host_and_path(fake: FakeBubble) -> None:
    response = requests.get(f"{fake.files_url}/{PHOTO_KEY}", timeout=10)
    assert fake.files_url == f"http://127.0.0.1:{fake.port}/_files"
    assert response.status_code == 200
    assert response.content == PHOTO
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Length"] == str(len(PHOTO))


def test_a_cdn_file_with_an_escaped_name_is_served_at_its_path_as_written(fake: FakeBubble) -> None:
    response = requests.get(
        f"{fake.files_url}/e8a3c0b4.cdn.bubble.io/f1699999999999x123/Guide%203%20checklist.pdf", timeout=10
    )
    assert (response.status_code, response.content) == (200, PDF)
    assert response.headers["Content-Type"] == "application/pdf"


def test_scheme_slashes_query_and_escapes_name_the_same_file(fake: FakeBubble) -> None:
    fake.put_file("https://s3.amazonaws.com/appforest_uf/f2/a b.png?w=100", b"\x89PNG one")
    for same in ("//s3.amazonaws.com/appforest_uf/f2/a%20b.png", "s3.amazonaws.com/appforest_uf/f2/a b.png"):
        assert get(fake, same).content == b"\x89PNG one"
    assert get(fake, "//s3.amazonaws.com/appforest_uf/f2/a%20b.png").headers["Content-Type"] == "image/png"


def test_a_given_content_type_wins_over_the_extension(fake: FakeBubble) -> None:
    fake.put_file("//s3.amazonaws.com/appforest_uf/f3/scan", b"raw", content_type="image/tiff")
    assert get(fake, "//s3.amazonaws.com/appforest_uf/f3/scan").headers["Content-Type"] == "image/tiff"


def test_unknown_and_deleted_files_answer_404(fake: FakeBubble) -> None:
    assert get(fake, "//s3.amazonaws.com/appforest_uf/nothing.jpg").status_code == 404
    fake.delete_file(PHOTO_KEY)
    missing = get(fake)
    assert missing.status_code == 404
    assert b"NoSuchKey" in missing.content


def test_head_answers_the_headers_without_the_body(fake: FakeBubble) -> None:
    response = requests.head(fake.file_url(PHOTO_URL), timeout=10)
    assert (response.status_code, response.headers["Content-Length"], response.content) == (200, str(len(PHOTO)), b"")
    assert downloads(fake) == [("HEAD", 200, 0)]


def test_a_byte_range_is_answered_with_that_part(fake: FakeBubble) -> None:
    response = get(fake, headers={"Range": "bytes=100-"})
    assert response.status_code == 206
    assert response.content == PHOTO[100:]
    assert response.headers["Content-Range"] == f"bytes 100-{len(PHOTO) - 1}/{len(PHOTO)}"
    assert get(fake, headers={"Range": f"bytes={len(PHOTO)}-"}).status_code == 416


def test_a_known_etag_is_answered_304_without_a_body(fake: FakeBubble) -> None:
    etag = get(fake).headers["ETag"]
    again = get(fake, headers={"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")


# -- faults -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "params", "status"), [("404", {}, 404), ("500", {}, 500), ("500", {"status": 503}, 503)]
)
def test_a_status_fault_answers_the_next_n_downloads_then_clears(
    fake: FakeBubble, kind: str, params: dict, status: int
) -> None:
    fake.add_fault(kind, times=2, file=PHOTO_URL, **params)
    assert [get(fake).status_code for _ in range(3)] == [status, status, 200]


@pytest.mark.parametrize(("retry_after", "header"), [(7, "7"), (None, None)])
def test_a_429_fault_sends_retry_after_only_when_asked(fake: FakeBubble, retry_after: int | None, header: str) -> None:
    fake.add_fault("429", file=PHOTO_KEY, retry_after=retry_after)
    response = get(fake)
    assert (response.status_code, response.headers.get("Retry-After")) == (429, header)


def test_a_slow_fault_outlasts_a_short_client_timeout_then_the_file_comes(fake: FakeBubble) -> None:
    fake.add_fault("slow", file=PHOTO_KEY, seconds=3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        get(fake, timeout=0.5)
    assert get(fake).content == PHOTO


def test_a_drop_fault_closes_the_connection_without_an_answer(fake: FakeBubble) -> None:
    fake.add_fault("drop", file=PHOTO_KEY)
    with pytest.raises(requests.exceptions.ConnectionError):
        get(fake)
    assert downloads(fake) == [("GET", 0, 0)]


def test_a_cut_download_announces_the_full_length_and_sends_part_of_the_body(fake: FakeBubble) -> None:
    fake.add_fault("cut", file=PHOTO_KEY, bytes=300)
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    connection.request("GET", urlsplit(fake.file_url(PHOTO_URL)).path)
    response = connection.getresponse()
    assert response.getheader("Content-Length") == str(len(PHOTO))
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert cut.value.partial == PHOTO[:300]
    assert downloads(fake) == [("GET", 200, 300)]


def test_a_cut_download_fails_a_requests_client_and_the_next_one_succeeds(fake: FakeBubble) -> None:
    fake.add_fault("cut", file=PHOTO_URL)  # half the body by default
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        get(fake)
    assert get(fake).content == PHOTO
    assert downloads(fake) == [("GET", 200, len(PHOTO) // 2), ("GET", 200, len(PHOTO))]


def test_a_fault_for_one_file_leaves_the_others_alone(fake: FakeBubble) -> None:
    fake.add_fault("404", times=5, file=PHOTO_URL)
    assert get(fake, PDF_URL).status_code == 200
    assert get(fake).status_code == 404


def test_a_fault_for_every_file_hits_each_of_them(fake: FakeBubble) -> None:
    fake.add_fault("500", times=2, file="*")
    assert [get(fake, url).status_code for url in (PDF_URL, PHOTO_URL, PHOTO_URL)] == [500, 500, 200]


def test_file_faults_and_data_api_faults_never_hit_each_other(api_get: Callable[..., requests.Response]) -> None:
    with FakeBubble({"post": [{"_id": "1x1"}]}, files={PHOTO_URL: PHOTO}) as fake:
        fake.add_fault("500", times=1)  # a Data API fault, as before files had faults
        fake.add_fault("404", times=1, file="*")
        assert get(fake).status_code == 404
        assert get(fake).status_code == 200  # the Data API fault was not spent on a file
        assert api_get(fake.url, "/obj/post").status_code == 500
        assert api_get(fake.url, "/obj/post").status_code == 200


def test_a_fault_kind_unknown_to_its_target_is_refused(fake: FakeBubble) -> None:
    with pytest.raises(ValueError, match="file fault 'truncate'"):
        fake.add_fault("truncate", file="*")
    with pytest.raises(ValueError, match="Data API fault 'cut'"):
        fake.add_fault("cut")


def test_file_faults_can_be_armed_and_files_put_over_http(fake: FakeBubble) -> None:
    requests.post(f"{fake.url.rsplit('/api', 1)[0]}/_fake/faults", json={"kind": "404", "file": PHOTO_URL}, timeout=10)
    assert get(fake).status_code == 404
    root = fake.url.rsplit("/api", 1)[0]
    put = requests.post(
        f"{root}/_fake/files/s3.amazonaws.com/appforest_uf/f9/cv.pdf", data=b"%PDF cv", timeout=10
    ).json()
    assert requests.get(put["url"], timeout=10).content == b"%PDF cv"
    requests.delete(f"{root}/_fake/files/s3.amazonaws.com/appforest_uf/f9/cv.pdf", timeout=10)
    assert requests.get(put["url"], timeout=10).status_code == 404


# -- the request log ---------------------------------------------------------------------------------
def test_every_download_is_logged_with_its_file_status_and_bytes_sent(fake: FakeBubble) -> None:
    get(fake)
    get(fake, "//s3.amazonaws.com/appforest_uf/none.jpg")
    logged = fake.file_requests()
    assert [(r.file, r.status, r.bytes_sent) for r in logged] == [
        (PHOTO_KEY, 200, len(PHOTO)),
        ("s3.amazonaws.com/appforest_uf/none.jpg", 404, logged[1].bytes_sent),
    ]
    assert logged[0].path == f"/_files/{PHOTO_KEY}"
    assert all(r in fake.requests for r in logged)


def test_a_second_run_that_downloads_nothing_shows_in_the_log(fake: FakeBubble) -> None:
    etags = {url: get(fake, url).headers["ETag"] for url in (PHOTO_URL, PDF_URL)}
    fake.requests.clear()
    for url, etag in etags.items():  # a copier that knows what it has asks only whether it changed
        assert get(fake, url, headers={"If-None-Match": etag}).status_code == 304
    assert sum(r.bytes_sent for r in fake.file_requests()) == 0


# -- the bundled sample ------------------------------------------------------------------------------
def test_the_sample_has_a_valid_file_for_every_file_its_records_reference() -> None:
    image = pytest.importorskip("PIL.Image")  # Pillow comes with matplotlib
    sample = generate_sample(40)
    files = sample_files(sample)
    referenced = {
        r[field]
        for entity, field in (("users", "Profile Photo"), ("resources", "File"))
        for r in sample.records[entity]
        if field in r
    }
    with FakeBubble(files=files) as fake:
        served = {url: get(fake, url) for url in referenced}
    assert {r.status_code for r in served.values()} == {200}
    assert any("s3.amazonaws.com/appforest_uf/" in url for url in referenced)
    assert any(".cdn.bubble.io/" in url for url in referenced)
    for url, response in served.items():
        assert 1000 < len(response.content) < 8000
        if url.endswith(".jpg"):
            assert response.headers["Content-Type"] == "image/jpeg"
            image.open(io.BytesIO(response.content)).load()
        else:
            assert response.headers["Content-Type"] == "application/pdf"
            assert _pdf_xref_is_where_startxref_says(response.content)
    assert len({len(r.content) for r in served.values()}) > 5  # sizes vary
    assert sample_files(generate_sample(40)) == files  # deterministic


def _pdf_xref_is_where_startxref_says(content: bytes) -> bool:
    offset = int(content.rsplit(b"startxref", 1)[1].split()[0])
    return content.startswith(b"%PDF-1.") and content[offset : offset + 4] == b"xref" and content.endswith(b"%%EOF\n")
