"""The code blocks of the README and of the docs pages, as tests/test_docs.py runs them.

A block is a fenced block (```python ... ```, indented inside a list item too). An HTML
comment on the line before it, invisible on the rendered page, says how to test it when the
language alone does not:

    <!-- test: skip REASON -->   not run here; REASON says why (a cluster, a server, ...)
    <!-- test: synopsis -->      a usage summary: `sweepscope COMMAND [--flag ...]` lines whose
                                 commands and flags must be those of the CLI's parser
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.paths import REPO

__all__ = ["MARKS", "Block", "blocks", "pages"]

MARKS = ("skip", "synopsis")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<language>[\w+-]*)[ \t]*$")
_MARK = re.compile(r"^[ \t]*<!--[ \t]*test:[ \t]*(?P<kind>\S+)(?P<reason>.*?)-->[ \t]*$")
_FILENAME = re.compile(r"^#[ \t]*(?P<name>[\w.-]+\.(?:py|ya?ml))\b")


@dataclass(frozen=True)
class Block:
    """One fenced block of `page` (relative to the repository), starting at `line` (1-based)."""

    page: str
    line: int
    language: str
    body: str
    mark: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def filename(self) -> str | None:
        """`mymodel.py` for a block whose first line is `# mymodel.py` (a file to write)."""
        found = _FILENAME.match(self.body)
        return found["name"] if found else None


def pages() -> list[Path]:
    """The README and every docs page, in a stable order."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, each with the mark on the line before it, if any.

    Raises:
        AssertionError: a fence is never closed, or a mark is not directly above a block.
    """
    lines = page.read_text().splitlines()
    name = str(page.relative_to(REPO))
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        mark = _MARK.match(lines[index])
        if mark and not (index + 1 < len(lines) and _FENCE.match(lines[index + 1])):
            raise AssertionError(
                f"{name}:{index + 1}: a test mark must sit on the line above a block"
            )
        if not fence:
            index += 1
            continue
        indent, start = fence["indent"], index
        closing = f"{indent}```"
        end = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip() == closing), None)
        if end is None:
            raise AssertionError(f"{name}:{start + 1}: this block is never closed")
        body = "\n".join(line.removeprefix(indent) for line in lines[start + 1 : end]) + "\n"
        above = _MARK.match(lines[start - 1]) if start else None
        found.append(
            Block(
                page=name,
                line=start + 1,
                language=fence["language"],
                body=body,
                mark=above["kind"].rstrip(":") if above else None,
                reason=above["reason"].strip() if above else "",
            )
        )
        index = end + 1
    return found
