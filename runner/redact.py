"""Store URLs without their passwords: what every output shows instead of the real URL.

The real URL stays in memory (the engine) and in the environment; everything printed,
logged, stored or pickled goes through `mask_url` or `redact`.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = ["mask_url", "redact", "remember_secret"]

MASK = "***"
_secrets: set[str] = set()


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """`url` with its password replaced by ***; other URLs and non-URLs come back unchanged."""
    password = _password(url)
    if not password:
        return url
    remember_secret(password)
    netloc = urlsplit(url).netloc
    users, _, host = netloc.rpartition("@")
    user = users.split(":", 1)[0]
    return url.replace(netloc, f"{user}:{MASK}@{host}", 1)


def remember_secret(secret: str) -> None:
    """From now on `redact` hides `secret` (and its URL-decoded form) wherever it appears."""
    for form in {secret, unquote(secret)}:
        if len(form) >= 3:  # a one- or two-letter "password" would mangle every message
            _secrets.add(form)


def redact(text: str) -> str:
    """`text` with every remembered password replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
