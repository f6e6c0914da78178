"""Markdown code fences: writing one that nothing inside can close, and finding them again."""

from __future__ import annotations

import re

_BACKTICK_RUN = re.compile(r"`{3,}")
_FENCED_BLOCK = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1\s*$", re.S | re.M)


def code_fence(text: str, info: str = "") -> str:
    """`text` as a fenced code block; the fence is longer than any backtick run inside it."""
    # Most texts hold no run of three backticks: skip the search then (an export fences every prompt).
    longest = max((len(run) for run in _BACKTICK_RUN.findall(text)), default=2) if "```" in text else 2
    fence = "`" * (longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def code_blocks(markdown: str) -> list[str]:
    """The contents of the fenced code blocks in a Markdown text, in order."""
    return [m.group(2).rstrip("\n") for m in _FENCED_BLOCK.finditer(markdown)]
