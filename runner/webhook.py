"""A webhook URL (the spec's `notify: {webhook: URL}`): which ones are accepted, and what of
one may be shown or stored. Its path is usually its secret token (Slack, Mattermost, Teams):
the store keeps scheme and host only, and `sweepscope resume` takes the full URL again from
`--spec` or $SWEEPSCOPE_WEBHOOK. Posting is runner.driver.notify's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from runner.redact import MASK, redact

__all__ = ["WEBHOOK_ENV", "check_webhook", "is_masked_webhook", "mask_webhook", "shown_webhook"]

WEBHOOK_ENV = "SWEEPSCOPE_WEBHOOK"  # the full webhook URL, for `sweepscope resume`


def check_webhook(url: str) -> str:
    """`url` if it is an http(s) URL with a host and no user info, else ValueError saying
    why and the fix (its path, usually the webhook's token, is never shown)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        has_user = parts.username is not None or parts.password is not None
    except ValueError:
        parts, host, has_user = None, None, False
    if parts is None or parts.scheme not in ("http", "https") or not host or url != url.strip():
        raise ValueError(
            f"{shown_webhook(url)!r} is not an http or https URL with a host. Fix: give the "
            "webhook's full URL, e.g. notify: {webhook: https://hooks.example.com/services/T0/B0/X}"
        )
    if any(c.isspace() for c in url):
        raise ValueError(
            f"{shown_webhook(url)!r} contains white space. Fix: quote the URL without spaces "
            "(percent-encode a space as %20)"
        )
    if has_user:
        raise ValueError(
            f"{shown_webhook(url)!r} carries a user name or password, which sweepscope does not "
            "send (and would otherwise show in its logs). Fix: remove the user:password@ part and "
            "use a webhook whose secret is its path, as Slack, Mattermost and Teams give "
            "them, e.g. https://hooks.example.com/services/T0/B0/X"
        )
    return url


def shown_webhook(url: str) -> str:
    """What of a webhook URL may be shown: scheme and host (and a masked user), never its
    path or password."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = parts.username
    except ValueError:
        return "<a malformed URL>"
    if not parts.scheme:
        return url[:40] if "/" not in url and "@" not in url else "<a URL without a scheme>"
    if user is not None:
        user = f"{redact(user)}:{MASK}@" if parts.password is not None else f"{MASK}@"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{user or ''}{host}{port}"


def mask_webhook(url: str) -> str:
    """The webhook as the store keeps it: scheme and host, its path (the token) as ***."""
    return f"{shown_webhook(url)}/{MASK}"


def is_masked_webhook(url: str) -> bool:
    """Whether `url` is a stored webhook, which cannot be posted to (see mask_webhook)."""
    return url.endswith(f"/{MASK}") and url == mask_webhook(url)
