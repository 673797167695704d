"""Where a Bubble file may be fetched from, checked at every hop.

The migration machine sits inside the company's network and a file link is text an app user wrote,
so a link must never make it fetch anything but Bubble's files (issue 23):
- A link is parsed once, strictly, and the URL fetched is rebuilt from the checked parts: no user
  name or password, no backslash or control character, no `.` or `..` path segment (plain or
  percent-encoded), a real port. Its host and path must be under Bubble's storage patterns (or the
  team's), or under the configured files URL (`BUBBLE_FILES_URL`: the local Bubble server).
- Its host is resolved once; every address must be public (not loopback, private, link-local,
  multicast, reserved or unspecified), except the configured files URL's own host. The connection
  goes to that address (`PinnedAdapter`), keeping the name for the Host header, TLS SNI and the
  certificate check, so a DNS answer that changes after the check changes nothing.
- Redirects are followed by the copier, at most MAX_REDIRECTS, each hop checked the same way.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from culturebridge_migration.files.urls import BubbleFileMatcher
from culturebridge_migration.mapping.values import normalize_url
from culturebridge_migration.sources.http import RetryPolicy

MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL_OR_BACKSLASH = re.compile(r"[\x00-\x1f\x7f\\]")
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")  # a DNS name or an IP address, lower-cased, as urlsplit gives it

Resolver = Callable[[str, int], list[str]]  # (host, port) -> its addresses
Origin = tuple[str, str, int]  # scheme, host, port


class RefusedLink(Exception):
    """The link, or a hop of it, leads where the migration machine does not fetch; the message says why."""


@dataclass(frozen=True)
class FileSource:
    """Where Bubble's files are fetched (their own hosts, or `files_url`: the local Bubble server) and how retried."""

    files_url: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def resolve_host(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


@dataclass(frozen=True)
class Link:
    scheme: str
    host: str
    port: int | None
    path: str
    query: str

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def origin(self) -> Origin:
        return self.scheme, self.host, self.port or _DEFAULT_PORTS[self.scheme]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path or '/'}" + (f"?{self.query}" if self.query else "")


def parse_link(url: str) -> Link:
    """The link's checked parts; raises RefusedLink for anything two parsers could read differently."""
    if _CONTROL_OR_BACKSLASH.search(url):
        raise RefusedLink("the link holds a backslash or a control character")
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise RefusedLink(f"{parts.scheme or 'a link without a scheme'} is not http(s)")
    if "@" in parts.netloc:
        raise RefusedLink("the link carries a user name or password")
    host = parts.hostname or ""
    if not _HOST.fullmatch(host):
        raise RefusedLink(f"{host!r} is not a plain host name")
    try:
        port = parts.port
    except ValueError:
        raise RefusedLink(f"{parts.netloc} has no valid port") from None
    if {".", ".."} & set(re.split(r"[/\\]", unquote(parts.path))):
        raise RefusedLink(f"the path {parts.path} climbs out of its folder ('.' or '..')")
    return Link(parts.scheme, host, port, parts.path, parts.query)


class LinkPolicy:
    """Which links, and which redirects, the copier follows."""

    def __init__(self, matcher: BubbleFileMatcher, files_url: str | None = None) -> None:
        self.matcher = matcher
        try:
            self.files = parse_link(files_url.rstrip("/")) if files_url else None
        except RefusedLink as exc:
            raise ValueError(f"BUBBLE_FILES_URL {files_url!r} cannot be used: {exc}") from None

    @property
    def trusted_origin(self) -> Origin | None:
        """The configured files URL's origin: the one place a loopback or private address is fetched from."""
        return self.files.origin if self.files else None

    def first_hop(self, bubble_url: str) -> str:
        """The URL to fetch for a Bubble file link: its own, rebuilt, or its place under the files URL."""
        link = parse_link(normalize_url(bubble_url))
        if not self.matcher.allows(link.host, link.path):
            raise RefusedLink(f"{link.netloc}{link.path} is not under Bubble's storage patterns")
        if self.files is None:
            return link.url
        query = f"?{link.query}" if link.query else ""
        return f"{self.files.url.rstrip('/')}/{link.netloc}{link.path}{query}"

    def next_hop(self, current: str, location: str) -> str:
        link = parse_link(urljoin(current, location))
        if self._under_files(link) or self.matcher.allows(link.host, link.path):
            return link.url
        raise RefusedLink(f"Bubble's answer redirected to {link.url}, which is not Bubble's storage")

    def _under_files(self, link: Link) -> bool:
        return self.files is not None and (
            link.origin == self.files.origin and link.path.startswith(self.files.path.rstrip("/") + "/")
        )


def public_address(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 scope (%eth0) is no part of the address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    internal = (
        address.is_loopback,
        address.is_private,
        address.is_link_local,
        address.is_multicast,
        address.is_reserved,
        address.is_unspecified,
    )
    return address.is_global and not any(internal)


class PinnedAdapter(HTTPAdapter):
    """Connects to the address its host was resolved to and checked, once; the request keeps the host's name."""

    def __init__(
        self,
        *,
        trusted_origin: Origin | None,
        resolve: Resolver = resolve_host,
        retry: RetryPolicy | None = None,
        pool_size: int = 10,
    ) -> None:
        self.trusted_origin, self.resolve, self.retry = trusted_origin, resolve, retry or RetryPolicy()
        super().__init__(**self.retry.adapter_options(pool_size))

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: object = None
    ) -> tuple[dict[str, object], dict[str, object]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        scheme, name = host_params["scheme"], host_params["host"].strip("[]")
        address = self.checked_address((scheme, name, host_params["port"] or _DEFAULT_PORTS[scheme]))
        host_params["host"] = f"[{address}]" if ":" in address else address
        if scheme == "https":  # SNI and the certificate are for the name, not the address
            pool_kwargs["server_hostname"] = pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs

    def checked_address(self, origin: Origin) -> str:
        _, host, port = origin
        addresses = self._addresses(host, port)
        internal = [address for address in addresses if not public_address(address)]
        if internal and origin != self.trusted_origin:
            raise RefusedLink(f"{host} resolves to {internal[-1]}, an address inside a private network")
        return addresses[0]

    def _addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses. A failed lookup is tried again as the policy says (urllib3 would have
        retried it, but it no longer resolves); every answer is checked whole."""
        for attempt in self.retry.tries():
            try:
                if addresses := self.resolve(host, port):
                    return addresses
                problem = "no address"
            except OSError as exc:
                problem = str(exc)
            if attempt == self.retry.attempts:
                raise requests.exceptions.ConnectionError(f"cannot resolve {host}: {problem}")
        raise AssertionError("unreachable")

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: object = None,
        verify: bool | str = True,
        cert: object = None,
        proxies: object = None,
    ) -> requests.Response:
        request.headers.setdefault("Host", urlsplit(request.url).netloc)  # else urllib3 names the address
        # Never through a proxy from the environment: it would resolve the host again, unchecked.
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None)
