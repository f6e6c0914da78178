"""The one Markdown parser: GitHub's autolinks, the quick link test, the export reading as the app."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from linkify_it import LinkifyIt

from stackspot_tui import export
from stackspot_tui.markdown import _Autolinks, new_parser, parser


def links(text: str) -> list[str]:
    html = parser().render(text)
    return [part.split('"', 1)[0] for part in html.split('href="')[1:]]


def test_autolinks_are_githubs_not_every_file_name():
    assert links("Edit README.md and export.py, as example.com says") == []
    assert links("docs at www.stackspot.com") == ["http://www.stackspot.com"]
    assert links("see https://ai.stackspot.com/x?y=1 or ftp://files.test") == [
        "https://ai.stackspot.com/x?y=1",
        "ftp://files.test",
    ]
    assert links("a page at //cdn.test/a") == ["//cdn.test/a"]
    assert links("mail dev@example.com") == ["mailto:dev@example.com"]
    assert links("a // b, @ alone") == []  # what the quick test lets through, linkify-it finds nothing in
    assert links("`https://in.code` and\n\n    https://indented.code") == []


class _StockTest(_Autolinks):
    """The same links, found after linkify-it's own quick test."""

    pretest = LinkifyIt.pretest


def stock_parser():
    md = new_parser()
    md.linkify = _StockTest()
    return md


PIECES = "http:// https:// ftp:// mailto: // www. WwW. @ a x.io example.com README.md a@b.co www.x.io http://x.io/p?q"
PIECES = PIECES.split() + [
    " ",
    "\n",
    "\n\n",
    ".",
    "/",
    ":",
    "-",
    "_",
    "<",
    ">",
    "(",
    ")",
    "`",
    "*",
    "[",
    "]",
    "é",
    "\u00a0",
]


@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_the_quick_link_test_misses_no_link(text):
    # A quick test that says "no link" where there is one would drop that link from the page.
    assert parser().render(text) == stock_parser().render(text)


def test_the_html_export_reads_an_answer_as_the_app_does():
    # The app's Markdown widgets take `markdown.parser` (tui/widgets.py, tui/stream.py).
    text = "~~old~~ new, see README.md or www.stackspot.com\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<b>bold?</b>"
    html = export._markdown_html(text)
    assert html == parser().render(text)
    assert "<s>old</s>" in html and "<table>" in html and "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert 'href="http://README.md"' not in html and 'href="http://www.stackspot.com"' in html
