"""Passwords out of everything shown: what every output prints instead of the real URL.

The real URL stays in memory (the engine) and in the environment; everything printed,
logged, stored, posted or pickled goes through `mask_url` or `redact`. Both know every
form a PostgreSQL password takes here: the URL's user info (`user:PASSWORD@`, of any
length, read as SQLAlchemy reads it, so `/`, `?` or `:` in it are covered too), a
`?password=` query parameter (libpq and SQLAlchemy accept one, as `sslpassword` too),
libpq's `password=...` key-value form, and $PGPASSWORD. A password seen once is remembered
and masked wherever it turns up later, in each form it may take there: as given,
%-decoded, %-encoded, and escaped by repr() or JSON.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, unquote, unquote_plus

__all__ = ["MASK", "PASSWORD_ENV", "mask_url", "redact", "remember_secret"]

MASK = "***"
# Environment variables whose value is a password (libpq reads this one).
PASSWORD_ENV = ("PGPASSWORD",)
# A bare secret shorter than this is not replaced in free text: a one- or two-letter
# "password" would mangle every message. In its URL or password= form, any length is masked.
MIN_BARE = 3

_secrets: set[str] = set()

# scheme://user:PASSWORD@, as SQLAlchemy's make_url reads it: the user ends at ':' or '/',
# the password at the first '@' (so it may hold '/', '?', '#' or ':').
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^:/\s]*):)(?P<password>[^@\s]*)@"
)
# The same, for a whole URL (mask_url): SQLAlchemy takes white space in a password too.
_URL_USERINFO = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^:/]*):)(?P<password>[^@]*)@"
)
# password=VALUE in a URL's query or a libpq key-value string, and 'password': 'VALUE' in a
# dict's repr or a JSON document; any key ending in "password" (sslpassword, PGPASSWORD).
_KEY_VALUE = re.compile(
    r"""(?ix)
    (?P<key> \b\w*password (?: ["']\s*: | \s*= ) \s* )
    (?P<value> '(?:[^'\\]|\\.)*' | "(?:[^"\\]|\\.)*" | [^\s&#'"]+ )
    """
)

# A password in a URL's query: SQLAlchemy and libpq read its value up to the next '&' (a
# quote or a '#' included), so the whole of it is masked.
_QUERY_PASSWORD = re.compile(r"(?i)(?P<key>[?&]\w*password=)(?P<value>[^&\s]*)")


def _forms(secret: str) -> set[str]:
    """The ways `secret` may be written in a message: as given, %-decoded (a URL's form),
    %-encoded, and escaped by repr() or JSON (a password with a quote, a backslash or
    non-ASCII characters)."""
    plain = {secret, unquote(secret), unquote_plus(secret)}
    forms = set(plain)
    for form in plain:
        forms.add(quote(form, safe=""))
        forms.add(repr(form)[1:-1])
        forms.add(json.dumps(form)[1:-1])
        forms.add(json.dumps(form, ensure_ascii=False)[1:-1])
    return {f for f in forms if f}


def remember_secret(secret: str) -> None:
    """From now on `redact` hides `secret` (in each form it may take) wherever it appears."""
    _secrets.update(f for f in _forms(secret) if len(f) >= MIN_BARE)


def _netloc_end(url: str, start: int) -> int:
    """Where urlsplit ends a URL's network location: the first '/', '?' or '#' after `start`."""
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return min(ends, default=len(url))


def mask_url(url: str) -> str:
    """`url` with its password replaced by ***, wherever it is (user info or a password
    query parameter), whatever its length; other URLs and non-URLs come back unchanged."""
    match = _URL_USERINFO.match(url)
    if match is not None:
        start, end = match.span("password")
        # urlsplit (and so urllib) takes the password up to the last '@' of the network
        # location: mask the longer of the two readings.
        end = max(end, url.rfind("@", end, _netloc_end(url, match.start("user"))))
        if end > start and url[start:end] != MASK:
            remember_secret(url[start:end])
            url = url[:start] + MASK + url[end:]
    for found in _QUERY_PASSWORD.finditer(url):
        if found.group("value") and found.group("value") != MASK:
            remember_secret(unquote_plus(found.group("value")))
            remember_secret(found.group("value"))
    url = _mask_query(url)
    for found in _KEY_VALUE.finditer(url):
        value = found.group("value")
        if value[:1] in "'\"":
            value = value[1:-1]
        if value != MASK:
            remember_secret(value)
    return _mask_key_values(url)


def _mask_query(text: str) -> str:
    return _QUERY_PASSWORD.sub(
        lambda m: f"{m.group('key')}{MASK}" if m.group("value") else m[0], text
    )


def _mask_key_values(text: str) -> str:
    def masked(found: re.Match[str]) -> str:
        value = found.group("value")
        quote_mark = value[0] if value[:1] in "'\"" else ""
        return f"{found.group('key')}{quote_mark}{MASK}{quote_mark}"

    return _KEY_VALUE.sub(masked, text)


def redact(text: str) -> str:
    """`text` with every password hidden: each one remembered or in $PGPASSWORD, and any in
    a URL's user info or a password=... setting, of any length."""
    secrets = set(_secrets)
    for name in PASSWORD_ENV:
        if value := os.environ.get(name):
            secrets.update(f for f in _forms(value) if len(f) >= MIN_BARE)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(
        lambda m: f"{m.group('head')}{MASK}@" if m.group("password") else m[0], text
    )
    return _mask_key_values(_mask_query(text))
