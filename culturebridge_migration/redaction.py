"""Secrets out of every message: connection strings and API URLs in all the forms operators write them.

A message reaches Dagster's run storage and compute logs, so it is built only from redacted URLs, and
any text a library wrote about a URL (libpq echoes pieces of a malformed one) is scrubbed of the
secrets in it. Forms handled: `scheme://user:password@host` (also with an unencoded `@` in the
password), `?password=` and other secret query parameters, and libpq's `key=value` strings.
"""

import re
from urllib.parse import parse_qsl, unquote

MASK = "***"
# libpq's key=value keywords, and query parameters (libpq's and APIs'), whose value is a secret.
SECRET_KEYWORDS = ("password", "sslpassword")
SECRET_PARAMETERS = (*SECRET_KEYWORDS, "api_token", "api_key", "apikey", "access_token", "token", "key", "secret")

# scheme://user:password@host...: the password runs to the @ after which a host ends the authority, so
# one written with an unencoded @ is still masked whole.
_USERINFO = re.compile(
    r"(?P<head>[a-z][a-z0-9+.\-]*://[^:@/?#\s]*):(?P<password>\S*?)@(?P<host>[^@/?#\s]*)(?=[/?#\s'\"]|$)", re.I
)
_QUERY_SECRET = re.compile(rf"(?P<head>[?&](?:{'|'.join(SECRET_PARAMETERS)})=)(?P<value>[^&#\s]*)", re.I)
_KEYWORD_SECRET = re.compile(
    rf"(?P<head>(?:^|\s)(?:{'|'.join(SECRET_KEYWORDS)})\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s']+)", re.I
)


def secrets_in(url: str) -> set[str]:
    """The secret values a URL or key=value string holds, as written and percent-decoded."""
    found: set[str] = set()
    for match in _USERINFO.finditer(url):
        password = match["password"]
        # libpq ends a password at its first @ and takes the rest for the host, which its errors then quote.
        found |= {password, *(password.split("@", i)[-1] for i in range(1, password.count("@") + 1))}
    for match in _QUERY_SECRET.finditer(url):
        found.add(match["value"])
    for match in _KEYWORD_SECRET.finditer(url):
        value = match["value"]
        found |= {value, value[1:-1].replace("\\'", "'")} if value.startswith("'") else {value}
    if "?" in url:
        query = url.split("?", 1)[1]
        found.update(value for key, value in parse_qsl(query) if key.lower() in SECRET_PARAMETERS)
    found |= {unquote(value) for value in found}
    return {value for value in found if value}


def redact_url(url: str) -> str:
    """The URL safe to show: every secret in it replaced by ***, the rest (host, port, database) kept."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@{m['host']}", url)
    text = _QUERY_SECRET.sub(lambda m: m["head"] + MASK, text)
    return _KEYWORD_SECRET.sub(lambda m: m["head"] + MASK, text)


def scrub(text: str, *urls: str) -> str:
    """`text` with the secrets of every URL in `urls` removed, however the text came to hold them."""
    secrets = set().union(*(secrets_in(url) for url in urls)) if urls else set()
    for secret in sorted(secrets, key=len, reverse=True):  # the longest first: a short one may be inside it
        text = text.replace(secret, MASK)
    return redact_url(text)


def unencoded_at_in_password(url: str) -> bool:
    """True when a URL's password holds a raw @, which libpq and browsers read as the end of it."""
    match = _USERINFO.match(url.strip())
    return bool(match) and "@" in match["password"]
