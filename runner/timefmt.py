"""Durations as people read them: `m:ss`-style clock time, for the CLI and the dashboard."""

from __future__ import annotations

__all__ = ["format_seconds"]


def format_seconds(seconds: float) -> str:
    """`05:07` for 307 s, `1:02:03` past an hour; negative durations read as zero."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
