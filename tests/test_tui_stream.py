"""A streamed answer ends up on screen exactly as the whole answer renders, whatever the pieces.

The streaming widget appends to Markdown in place and freezes finished blocks into widgets of
their own; these tests stream answers full of Markdown's special cases in pieces of several
sizes and compare the screen, line by line, with the answer rendered whole (as history shows it).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.style import Style
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Markdown

from stackspot_tui.markdown import parser as markdown_parser
from stackspot_tui.textsafe import visible
from stackspot_tui.tui import stream
from stackspot_tui.tui.stream import _REFERENCE, Freezer, StreamingAnswer, freeze_point
from stackspot_tui.tui.widgets import MessageView
from stackspot_tui.tui.widgets import Transcript as TranscriptView

# Blocks that change meaning as later lines arrive, or that Textual renders in odd ways.
BLOCKS = [
    "# Heading {n}",
    "## Sub heading {n}\nSetext\n===",
    "Para {n} with **bold**, `code` and [bold]not markup[/bold] shown as text.",
    "Line one {n}\nline two, a soft break",
    "- a {n}\n- b\n  continued\n- c",
    "1. one {n}\n2. two\n\n3. three",
    "2. a list starting at two {n}",
    "> quote {n}\nlazy continuation",
    "```python\nx = {n}\n\n\ny = 2\n```",
    "    indented code {n}",
    "| a | b |\n|---|---|\n| {n} | 2 |",
    "---",
    "Text then\n---",
    "* star {n}\n\n* loose",
    "<div>html {n} shown as text</div>",
    "Escapes \\*{n}\\* & < > \" ' \\[x]",
    "Emoji 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f flag {n}, bidi \u202e kept visible",
    "- [ ] task {n}\n- [x] done",
    "Para\n1. interrupts {n}",
    "Para {n}\n2. does not interrupt",
    "Use [x][y] {n} and <b>tags</b>",
]
DEFINITION = "[y]: https://example.com/y"


def document(seed: int, blocks: int = len(BLOCKS), *, definition: bool = False) -> str:
    """Every kind of block once (more at random past that), in an order and with separators
    drawn from ``seed``."""
    rng = random.Random(seed)
    kinds = rng.sample(BLOCKS, len(BLOCKS)) + [rng.choice(BLOCKS) for _ in range(blocks - len(BLOCKS))]
    parts = [kind.format(n=i) for i, kind in enumerate(kinds[:blocks])]
    if definition:
        parts.insert(blocks // 2, DEFINITION)
    text = parts[0]
    for part in parts[1:]:
        text += rng.choice(["\n\n", "\n", "\n\n\n"]) + part
    return text + rng.choice(["", "\n"])


def block_tokens(text: str) -> list[tuple]:
    return [
        (t.type, t.tag, t.level, t.hidden, t.info, t.content if t.type == "inline" else "")
        for t in markdown_parser().parse(text)
    ]


@settings(max_examples=examples(150), deadline=None)
@given(seed=st.integers(0, 10_000), at=st.floats(0, 1), blocks=st.integers(1, 4))
def test_a_freeze_point_never_cuts_where_later_text_changes_the_blocks(seed, at, blocks):
    whole = document(seed, 12)
    arrived = whole[: int(len(whole) * at)]
    cut, _ = freeze_point(arrived, blocks)
    if not cut:
        return
    assert arrived[cut - 1] == "\n"
    head, tail = whole[:cut], whole[cut:]
    assert len([t for t in markdown_parser().parse(head) if t.level == 0 and t.nesting >= 0]) >= blocks
    # Whatever came after, the two halves parse to the blocks the whole answer has.
    assert block_tokens(head) + block_tokens(tail) == block_tokens(whole)


def test_a_table_is_no_cut_until_the_row_under_its_header_has_ended():
    arrived = "Para one\n\nPara two\n| a | b |\n|---|-"
    cut, _ = freeze_point(arrived, 1)
    for later in ("--|\n| 1 | 2 |", "x and more"):  # a table after all, or the paragraph's last lines
        whole = arrived + later
        assert block_tokens(whole[:cut]) + block_tokens(whole[cut:]) == block_tokens(whole), later
    assert cut == len("Para one\n\n")


@settings(max_examples=examples(150), deadline=None)
@given(seed=st.integers(0, 10_000), at=st.floats(0, 1), blocks=st.integers(1, 6))
def test_no_cut_comes_before_the_lines_a_freeze_point_waits_for(seed, at, blocks):
    """The stream skips the parse until the answer holds the lines asked for: no answer may
    reach a cut sooner, whatever its later lines turn earlier ones into."""
    whole = document(seed, 16)
    lines = whole.split("\n")
    first = int(len(lines) * at)
    cut, wait = freeze_point("\n".join(lines[:first]), blocks)
    if cut:
        return
    assert wait > first
    for more in range(first + 1, min(wait, len(lines) + 1)):
        assert freeze_point("\n".join(lines[:more]), blocks)[0] == 0, (first, more, wait)


def test_a_long_list_streaming_is_parsed_a_few_times_not_at_every_append(monkeypatch):
    """One top-level block of 1,500 lines: each parse of it took 60-270 ms, on every append."""
    parses = []
    parse = stream._block_parser.parse
    monkeypatch.setattr(stream._block_parser, "parse", lambda text, *a: (parses.append(len(text)), parse(text, *a))[1])
    freezer, source = Freezer(400), ""
    for n in range(1_500):
        source += f"- item {n} with **some** words\n"
        assert freezer.cut(source) == 0  # one block: nothing to freeze
    assert len(parses) <= 5, len(parses)
    freezer.reset()
    source += "\n" + "\n\n".join(f"Paragraph {n}." for n in range(450))
    assert freezer.cut(source) > 0  # a new part is looked at at once


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 10_000), blocks=st.integers(1, 6), chunk=st.integers(1, 40))
def test_a_freezer_asked_after_each_append_finds_the_cut_a_whole_parse_finds(seed, blocks, chunk):
    whole = document(seed, 16)
    freezer = Freezer(blocks)
    for end in range(chunk, len(whole) + chunk, chunk):
        arrived = whole[:end]
        cut = freezer.cut(arrived)
        assert cut == freeze_point(arrived, blocks)[0], end
        if cut:
            return


def test_a_growing_answer_is_parsed_from_its_last_block_not_from_its_start(monkeypatch):
    parsed = []
    parse = stream._block_parser.parse
    monkeypatch.setattr(stream._block_parser, "parse", lambda text, *a: (parsed.append(len(text)), parse(text, *a))[1])
    freezer, source = Freezer(100), ""
    for n in range(100):  # 100 paragraphs: never more than 100 blocks, never a cut
        source += f"Paragraph {n} " + "with some words " * 20 + "\n\n"
        assert freezer.cut(source) == 0
    assert parsed and sum(parsed) < 1.5 * len(source), (parsed, len(source))  # whole parses: 5x


class Transcript(App):
    def compose(self) -> ComposeResult:
        yield TranscriptView()


def screen_lines(app: App, widget) -> list[str]:
    strips = app.screen._compositor.render_strips()
    region = widget.region
    return [strip.text[region.x : region.right].rstrip() for strip in strips[region.y : region.bottom]]


def screen_cells(app: App, widget) -> list[list[tuple[str, str]]]:
    """What a person sees of ``widget``, cell by cell: each character with its style, a blank
    with its background alone (its foreground colour shows nothing)."""
    region = widget.region
    rows = []
    for strip in app.screen._compositor.render_strips()[region.y : region.bottom]:
        cells = []
        for segment in strip.crop(region.x, region.right):
            style = segment.style or Style()
            for char in segment.text:
                cells.append((char, str(style if char.strip() else Style(bgcolor=style.bgcolor))))
        rows.append(cells)
    return rows


async def render(text: str, pieces: tuple[int, ...], monkeypatch) -> tuple[list[str], list[list[str]], list]:
    """In one app: the screen lines of ``text`` rendered whole (as history shows it), then for
    each piece size the lines of it streamed, with the source of each Markdown widget it ends
    in and the most widgets it was shown in along the way."""
    monkeypatch.setattr(StreamingAnswer, "render_interval", 0.0)  # a render pass per pause
    monkeypatch.setattr(StreamingAnswer, "max_render_interval", 0.0)
    monkeypatch.setattr(stream, "FREEZE_BLOCKS", 3)  # more parts, more seams between them
    app = Transcript()
    async with app.run_test(size=(80, 120)) as pilot:
        transcript = app.query_one(VerticalScroll)  # the app's transcript, a VerticalScroll
        view = MessageView("assistant", text, note="COMPLETED", markdown=True)
        await transcript.mount(view)
        await pilot.pause()
        whole = screen_lines(app, view)
        whole_cells = screen_cells(app, view)
        await view.remove()
        streamed, facts = [], []
        for piece in pieces:
            answer = StreamingAnswer(note="COMPLETED")
            await transcript.mount(answer)
            most_parts = 0
            for at in range(0, len(text), piece):
                answer.feed(text[at : at + piece])
                if at // 50 != (at + piece) // 50:  # a render pass takes whatever queued since the last
                    await pilot.pause()
                    most_parts = max(most_parts, len(answer.sources))
            answer.finish("COMPLETED")
            while not answer.drawn:
                await pilot.pause()
            await pilot.pause()
            assert answer.rendered == visible(text)
            assert screen_cells(app, answer) == whole_cells  # colours too, not only the text
            streamed.append(screen_lines(app, answer))
            facts.append((answer.sources, most_parts))
            await answer.remove()
        return whole, streamed, facts


async def test_a_streamed_answer_shows_as_the_whole_answer_does(monkeypatch):
    text = document(7)
    whole, streamed, facts = await render(text, (3, 29), monkeypatch)
    for lines, (sources, most_parts) in zip(streamed, facts, strict=True):
        assert "".join(sources) == visible(text)
        assert most_parts >= 4, "finished blocks were frozen along the way"
        assert lines == whole
    shown = "\n".join(whole)
    assert "[bold]not markup[/bold]" in shown and "shown as text</div>" in shown
    assert "<b>tags</b>" in shown and "‹U+202E›" in shown and "\u202e" not in shown


async def test_a_link_definition_applies_across_the_frozen_parts(monkeypatch):
    text = document(3, definition=True) + "\n\nLast: [x][y]"
    assert _REFERENCE.search(text)
    whole, [lines], [(sources, most_parts)] = await render(text, (17,), monkeypatch)
    assert lines == whole and "".join(sources) == visible(text) and most_parts >= 4
    assert "Last: x" in "\n".join(lines)  # a link, as in the whole answer


@pytest.mark.parametrize(
    "more",
    [
        pytest.param("more words " * 200, id="the-last-paragraph-grows"),
        pytest.param("\n\n" + "\n\n".join(f"more {n} " + "words " * 30 for n in range(4)), id="new-blocks"),
    ],
)
async def test_an_append_lays_the_screen_out_once(monkeypatch, more):
    monkeypatch.setattr(StreamingAnswer, "render_interval", 0.0)
    app = Transcript()
    async with app.run_test(size=(80, 30)) as pilot:
        answer = StreamingAnswer()
        transcript = app.query_one(TranscriptView)
        transcript.anchor()  # as the chat screen's
        await transcript.mount(answer)
        answer.feed("first words " * 200)
        while "first" not in answer.rendered:
            await pilot.pause()
        for _ in range(3):
            await pilot.pause()
        layouts: list[int] = []
        lay_out = app.screen._refresh_layout

        def counted(*args, **kwargs):
            layouts.append(1)
            return lay_out(*args, **kwargs)

        app.screen._refresh_layout = counted  # type: ignore[method-assign]
        answer.feed(more)  # the transcript scrolls
        while not answer.rendered.endswith(visible(more)):
            await pilot.pause()
        for _ in range(5):
            await pilot.pause()
        # Each growing widget's new virtual size asked Textual for a second layout of the screen,
        # and so did each new block, for the content it was built with.
        assert len(layouts) == 1
        assert transcript.scroll_y == transcript.max_scroll_y > 0  # still following the end


@contextlib.asynccontextmanager
async def streaming(monkeypatch, freeze: int) -> AsyncIterator[tuple[Pilot, StreamingAnswer]]:
    """An answer streaming into a transcript, a render pass per pause, frozen every ``freeze`` blocks."""
    monkeypatch.setattr(StreamingAnswer, "render_interval", 0.0)
    monkeypatch.setattr(StreamingAnswer, "max_render_interval", 0.0)
    monkeypatch.setattr(stream, "FREEZE_BLOCKS", freeze)
    app = Transcript()
    async with app.run_test(size=(80, 40)) as pilot:
        answer = StreamingAnswer()
        await app.query_one(TranscriptView).mount(answer)
        yield pilot, answer


async def test_a_freeze_keeps_the_blocks_it_freezes(monkeypatch):
    # Freezing had parsed the finished part afresh and mounted each of its blocks again.
    async with streaming(monkeypatch, freeze=3) as (pilot, answer):
        head = "\n\n".join(f"Paragraph {n}." for n in range(3)) + "\n\n"
        answer.feed(head + "Para")
        while not answer.rendered.endswith("Para"):
            await pilot.pause()
        shown = list(answer.query_children(Markdown)[0].children)
        answer.feed("graph 3.\n\nMore")  # a fourth finished block: the first three freeze
        while len(answer.sources) < 2:
            await pilot.pause()
        assert answer.sources == [head, "Paragraph 3.\n\nMore"]
        assert list(answer.query_children(Markdown)[0].children) == shown[:3]  # the very widgets


async def test_a_part_its_appends_built_unlike_a_fresh_parse_is_parsed_afresh_as_it_freezes(monkeypatch):
    # A character at a time, "1. one\n\n2. two" is appended as two lists: Textual re-parses from
    # the last block's start, which was the paragraph "2" before the "." came. Parsed whole, one.
    async with streaming(monkeypatch, freeze=2) as (pilot, answer):
        for char in "1. one\n\n2. two\n\nPara a\n\nPara b\n\nPara c":
            answer.feed(char)
            await pilot.pause()
        frozen = answer.query_children(Markdown)[0]
        assert frozen.frozen and frozen.source.startswith("1. one\n\n2. two\n\n")
        assert [type(block).__name__ for block in frozen.children][:2] == ["MarkdownOrderedList", "MarkdownParagraph"]


async def test_lines_scrolled_out_of_view_are_not_kept_styled(monkeypatch):
    # Each line a block drew kept its styled strip (and their crop caches, ~12 KB a line) until
    # the block refreshed, which a finished block never does: memory grew with the answer.
    monkeypatch.setattr(StreamingAnswer, "render_interval", 0.0)
    monkeypatch.setattr(StreamingAnswer, "max_render_interval", 0.0)
    app = Transcript()
    async with app.run_test(size=(80, 30)) as pilot:
        answer = StreamingAnswer()
        transcript = app.query_one(TranscriptView)
        transcript.anchor()
        await transcript.mount(answer)
        for n in range(60):
            answer.feed(f"Paragraph {n} " + "word " * 40 + "\n\n")
            await pilot.pause()
        for _ in range(3):
            await pilot.pause()
        assert transcript.max_scroll_y > 100  # far taller than the screen, every block drawn once
        styled = sum(len(widget._styles_cache._cache) for widget in answer.walk_children())
        assert 0 < styled <= 30
        transcript.scroll_home(animate=False)  # scrolled back, the first blocks draw again
        await pilot.pause()
        await pilot.pause()
        assert "Paragraph 0" in "\n".join(screen_lines(app, transcript))


async def test_an_answer_finished_to_be_replaced_is_not_parsed_again(monkeypatch):
    # The last pass parsed the whole answer into a second widget tree beside the first, just
    # before the chat screen removed both (a large answer is shown as plain text).
    monkeypatch.setattr(StreamingAnswer, "render_interval", 0.0)
    settled: list[int] = []
    settle = StreamingAnswer._settle

    async def counted(self):
        settled.append(1)
        await settle(self)

    monkeypatch.setattr(StreamingAnswer, "_settle", counted)
    app = Transcript()
    async with app.run_test(size=(80, 30)) as pilot:
        transcript = app.query_one(TranscriptView)
        for discard in (False, True):
            answer = StreamingAnswer()
            await transcript.mount(answer)
            answer.feed("some words\n\nand more")
            await pilot.pause()
            answer.feed(" and the last")
            answer.finish("COMPLETED", discard=discard)
            while not answer.drawn:
                await pilot.pause()
            assert answer.note == "COMPLETED"
            await answer.remove()
    assert settled == [1]
