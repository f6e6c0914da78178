"""The Markdown the project reads answers with: one parser for the app and for the HTML export,
so an export shows what the screen showed."""

from __future__ import annotations

import functools
from typing import Any

from linkify_it import LinkifyIt
from markdown_it import MarkdownIt


class _Autolinks(LinkifyIt):
    """GitHub's autolinks: URLs with a scheme, hosts starting with ``www.``, e-mail addresses.
    Not a bare host name: an answer about code names files (README.md, export.py) that
    linkify-it would link to http://README.md.

    Its quick test looks for what each of those needs ("//", "www.", "@"). linkify-it's own
    runs a Unicode-class pattern over every paragraph, which took two thirds of a parse."""

    def pretest(self, text: str) -> bool:
        return "//" in text or "@" in text or "www." in text.lower()

    def match(self, text: str) -> list[Any] | None:
        # A bare host is a fuzzy link: no schema, and it does not start with www.
        kept = [link for link in super().match(text) or [] if link.schema or link.raw.lower().startswith("www.")]
        return kept or None


def new_parser() -> MarkdownIt:
    """GitHub-flavoured Markdown (tables, strikethrough, autolinks) with raw HTML off: `<script>`
    in an answer stays visible text, never run or dropped. A parser of one's own, to change."""
    md = MarkdownIt("gfm-like", {"html": False})
    md.linkify = _Autolinks()
    return md


@functools.cache
def parser() -> MarkdownIt:
    """The shared parser, never changed. Built once: Textual asks its factory for a parser on
    every append of a streaming answer, and building one took ~1 ms."""
    return new_parser()
