"""The migration machine fetches only Bubble's files, from Bubble's hosts (issue 23).

Each test puts an internal service on loopback (a stand-in for a metadata endpoint or an admin API) and
checks it was asked nothing and that no stored file holds its bytes.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from culturebridge_migration.files.copier import FileCopier
from culturebridge_migration.files.fetch import PinnedAdapter
from culturebridge_migration.files.storage import LocalFolderStorage
from culturebridge_migration.files.types import CopyResult
from culturebridge_migration.files.urls import BubbleFileMatcher
from culturebridge_migration.sources.http import RetryPolicy
from culturebridge_migration_tests.files.servers import INTERNAL_SECRET, Answer, ScriptedServer

PHOTO = "//x.cdn.bubble.io/f1/a.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)


@pytest.fixture
def internal() -> Iterator[ScriptedServer]:
    with ScriptedServer(Answer(200, INTERNAL_SECRET, {"Content-Type": "image/png"})) as server:
        yield server


@pytest.fixture
def origin() -> Iterator[ScriptedServer]:
    """Bubble's files as the local Bubble server serves them: `{origin}/_files/HOST/PATH`."""
    with ScriptedServer() as server:
        yield server


def copier(tmp_path: Path, **options: object) -> FileCopier:
    options = {"retry": RetryPolicy(max_retries=0, backoff=0), **options}
    return FileCopier(LocalFolderStorage(tmp_path / "files"), **options)


def assert_untouched(internal: ScriptedServer, tmp_path: Path) -> None:
    assert internal.requests == []
    stored = [path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()]
    assert all(INTERNAL_SECRET not in content for content in stored)


def copy(tmp_path: Path, url: str, **options: object) -> CopyResult:
    with copier(tmp_path, **options) as files:
        return files.copy_one(url)


# -- redirects ------------------------------------------------------------------------------------
def test_a_bubble_link_redirecting_to_an_internal_address_is_refused(
    origin: ScriptedServer, internal: ScriptedServer, tmp_path: Path
) -> None:
    origin.route("/_files/x.cdn.bubble.io/f1/a.png", Answer(302, headers={"Location": f"{internal.url}/latest"}))

    result = copy(tmp_path, PHOTO, files_url=f"{origin.url}/_files")

    assert result.status == "failed"
    assert "redirect" in result.reason and "127.0.0.1" in result.reason
    assert_untouched(internal, tmp_path)


def test_a_redirect_to_another_bubble_file_is_followed(origin: ScriptedServer, tmp_path: Path) -> None:
    origin.route(
        "/_files/x.cdn.bubble.io/f1/a.png", Answer(302, headers={"Location": "/_files/x.cdn.bubble.io/f2/b.png"})
    )
    origin.route("/_files/x.cdn.bubble.io/f2/b.png", Answer(200, PNG, {"Content-Type": "image/png"}))

    result = copy(tmp_path, PHOTO, files_url=f"{origin.url}/_files")

    assert (result.status, result.bytes) == ("copied", len(PNG))


def test_a_chain_of_redirects_stops_after_a_few(origin: ScriptedServer, tmp_path: Path) -> None:
    for n in range(10):
        origin.route(
            f"/_files/x.cdn.bubble.io/r{n}.png",
            Answer(302, headers={"Location": f"/_files/x.cdn.bubble.io/r{n + 1}.png"}),
        )

    result = copy(tmp_path, "//x.cdn.bubble.io/r0.png", files_url=f"{origin.url}/_files")

    assert result.status == "failed"
    assert "redirects" in result.reason
    assert len(origin.requests) == 4  # the link and three redirects


# -- links two parsers read differently, and paths that leave Bubble's prefix --------------------
def test_a_link_read_as_bubbles_cdn_but_connecting_elsewhere_is_refused(
    internal: ScriptedServer, tmp_path: Path
) -> None:
    link = f"http://127.0.0.1:{internal.port}\\@x.cdn.bubble.io/a.png"
    assert BubbleFileMatcher()(link)  # urlsplit reads Bubble's CDN: found as a file, so it must be refused on copy

    result = copy(tmp_path, link)

    assert result.status == "failed"
    assert "refused" in result.reason
    assert_untouched(internal, tmp_path)


@pytest.mark.parametrize(
    "link",
    [
        "//s3.amazonaws.com/appforest_uf/../other-bucket/x",
        "//s3.amazonaws.com/appforest_uf/%2e%2e/other-bucket/x",
        "//s3.amazonaws.com/appforest_uf/%2E%2E%2Fother-bucket/x",
        "//s3.amazonaws.com/appforest_uf/f1/..%5c..%5cother-bucket/x",
    ],
)
def test_a_path_that_leaves_bubbles_prefix_is_refused(origin: ScriptedServer, tmp_path: Path, link: str) -> None:
    result = copy(tmp_path, link, files_url=f"{origin.url}/_files")

    assert result.status == "failed"
    assert "refused" in result.reason
    assert origin.requests == []


@pytest.mark.parametrize(
    "link",
    [
        "http://user:pass@x.cdn.bubble.io/a.png",
        "https://x.cdn.bubble.io:99999/a.png",
        "https://x.cdn.bubble.io\t/a.png",
    ],
)
def test_links_bubble_never_writes_are_refused(tmp_path: Path, link: str) -> None:
    result = copy(tmp_path, link, resolve=lambda host, port: ["93.184.216.34"])

    assert (result.status, result.reason.split(":")[0]) == ("failed", "refused")


# -- addresses ------------------------------------------------------------------------------------
def resolving_to(*addresses: str, calls: list[str] | None = None) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "addresses",
    [("127.0.0.1",), ("93.184.216.34", "10.0.0.7"), ("169.254.169.254",), ("::ffff:127.0.0.1",), ("0.0.0.0",)],
)
def test_a_bubble_host_resolving_to_an_internal_address_is_refused(
    internal: ScriptedServer, tmp_path: Path, addresses: tuple[str, ...]
) -> None:
    link = f"http://files.example.org:{internal.port}/bubble/a.png"
    matcher = BubbleFileMatcher(["files.example.org/bubble/"])

    result = copy(tmp_path, link, matcher=matcher, resolve=resolving_to(*addresses))

    assert result.status == "failed"
    assert "refused" in result.reason and addresses[-1] in result.reason
    assert_untouched(internal, tmp_path)


def test_the_connection_goes_to_the_address_checked_once(origin: ScriptedServer, tmp_path: Path) -> None:
    """The configured files origin by a DNS name: resolved once, connected by that address, asked by its name."""
    origin.route("/_files/x.cdn.bubble.io/f1/a.png", Answer(200, PNG, {"Content-Type": "image/png"}))
    calls: list[str] = []

    result = copy(
        tmp_path,
        PHOTO,
        files_url=f"http://files.internal.test:{origin.port}/_files",
        resolve=resolving_to("127.0.0.1", calls=calls),
    )

    assert result.status == "copied"
    assert calls == ["files.internal.test"]
    assert origin.requests[0].headers["Host"] == f"files.internal.test:{origin.port}"


def test_https_keeps_the_name_for_sni_and_the_certificate_while_connecting_to_the_address() -> None:
    adapter = PinnedAdapter(resolve=resolving_to("93.184.216.34"), trusted_origin=None)
    request = requests.Request("GET", "https://x.cdn.bubble.io/f1/a.png").prepare()

    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, verify=True)

    assert host_params["host"] == "93.184.216.34"
    assert pool_kwargs["server_hostname"] == pool_kwargs["assert_hostname"] == "x.cdn.bubble.io"


def tls_files_server(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A server context whose certificate, signed by a CA of the test's own, is for `name`; and that CA's file."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: object, ca: bool):
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("test CA", ca_key, "test CA", ca_key, True)
    cert = certificate(name, key, "test CA", ca_key, False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(
        cert.public_bytes(pem) + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    return context, tmp_path / "ca.pem"


@pytest.mark.parametrize(("certified", "copied"), [("files.internal.test", True), ("other.example.org", False)])
def test_over_https_the_address_is_pinned_and_the_certificate_checked_for_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certified: str, copied: bool
) -> None:
    context, ca = tls_files_server(tmp_path, certified)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))

    with ScriptedServer(tls=context) as origin:
        origin.route("/_files/x.cdn.bubble.io/f1/a.png", Answer(200, PNG, {"Content-Type": "image/png"}))
        result = copy(
            tmp_path / "out",
            PHOTO,
            files_url=f"https://files.internal.test:{origin.port}/_files",
            resolve=resolving_to("127.0.0.1"),
        )

    assert origin.server_names[:1] == ["files.internal.test"]  # SNI names the host, not the address
    assert (result.status == "copied") is copied
    if copied:
        assert origin.requests[0].headers["Host"] == f"files.internal.test:{origin.port}"
    else:
        assert "TLS certificate was refused" in result.reason and "doesn't match" in result.reason
        assert origin.requests == []


def test_a_files_url_that_is_no_plain_url_is_refused_by_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"BUBBLE_FILES_URL .* user name or password"):
        copier(tmp_path, files_url="http://admin:secret@127.0.0.1:8765/_files")


def test_a_failed_lookup_is_tried_again_and_each_answer_checked(origin: ScriptedServer, tmp_path: Path) -> None:
    origin.route("/_files/x.cdn.bubble.io/f1/a.png", Answer(200, PNG, {"Content-Type": "image/png"}))
    answers: list[str] = []

    def flaky(host: str, port: int) -> list[str]:
        answers.append(host)
        if len(answers) == 1:
            raise OSError("Temporary failure in name resolution")
        return ["127.0.0.1"]

    files_url = f"http://files.internal.test:{origin.port}/_files"
    result = copy(tmp_path, PHOTO, files_url=files_url, resolve=flaky, retry=RetryPolicy(max_retries=1, backoff=0))

    assert result.status == "copied"
    assert answers == ["files.internal.test"] * 2


def test_a_proxy_from_the_environment_is_not_used(
    origin: ScriptedServer, internal: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve the host again, after the check; the connection goes to the address checked."""
    origin.route("/_files/x.cdn.bubble.io/f1/a.png", Answer(200, PNG, {"Content-Type": "image/png"}))
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(variable, internal.url)
    monkeypatch.setenv("NO_PROXY", "")

    result = copy(tmp_path, PHOTO, files_url=f"{origin.url}/_files")

    assert result.status == "copied"
    assert_untouched(internal, tmp_path)
