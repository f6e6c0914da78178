"""An answer that renders as Markdown while it streams, without re-rendering what is already shown."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator

from rich.text import Text
from textual.app import ComposeResult
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownBlock

from ..markdown import new_parser
from ..markdown import parser as markdown_parser
from ..textsafe import visible
from .widgets import MessageView, laid_out

#: finished top-level blocks the growing Markdown widget holds before it is frozen and a new one
#: grows below, so an append never lays out an unbounded answer. A freeze keeps the blocks where
#: they are, so it costs little: in the real app at 2,000 words/s, 25 halved the time in
#: layouts against 100 (whose freeze had mounted every block again), with words and keys no
#: later (docs/performance.md, agents)
FREEZE_BLOCKS = 25

# The start of a flag's tag sequence (🏴 + tags + cancel tag) not yet closed: `visible` shows
# stray tag characters, so an unfinished flag waits for the piece that closes it.
_OPEN_FLAG = re.compile("\U0001f3f4[\U000e0061-\U000e007a]{0,6}$")
# A link reference definition ("[id]: url") applies to the whole answer, across frozen parts.
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:", re.MULTILINE)
# Where blocks start needs the block rules only: the inline ones were a quarter of each parse.
_block_parser = new_parser().disable(["inline", "linkify", "text_join"])


def freeze_point(source: str, blocks: int) -> tuple[int, int]:
    """Where ``source`` can be cut so that its head holds at least ``blocks`` finished top-level
    Markdown blocks and renders alone as it does inside the whole (0 when it cannot yet), and,
    when it cannot, how many lines it must hold before it might: not worth parsing before.

    A cut sits at the start of a top-level block whose first line is complete: Markdown reads
    line by line, so no later text can pull that line back into the block before it (a line
    still arriving can: "2" may become "2." and continue a list above it). A new line starts at
    most one new block, so ``blocks`` + 1 - (blocks found) more lines must come before a cut: a
    long answer is parsed a few times, not on every append (a 400-line list took 60 ms a parse)."""
    freezer = Freezer(blocks)
    return freezer.cut(source), freezer.wait


class Freezer:
    """`freeze_point` of the growing part of an answer, asked after each append. It parses only
    once the part holds the lines `freeze_point` asked for, and then only from the last block
    start it found complete: such a start stays one whatever follows, so the blocks above it
    are counted once (each parse of a whole 100-block part took 20-30 ms, the longest pauses
    of the loop during a stream). So the part may only grow between two `reset` calls."""

    wait: int  # the lines the part must hold before a parse is worth it
    _offset: int  # where the next parse starts: a block start whose first line has ended
    _counted: int  # the complete block starts above it

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks
        self.reset()

    def cut(self, source: str) -> int:
        lines = source.count("\n") + 1
        if lines < self.wait:
            return 0
        if lines <= self.blocks:
            self.wait = self.blocks + 1
            return 0
        rest = source[self._offset :]
        rest_lines = rest.split("\n")
        last = len(rest_lines) - 1  # the line still arriving
        complete = sorted({start for start in _block_starts(rest) if start < last})  # its first line has ended
        found = self._counted + len(complete)
        at_last = self._offset + sum(len(line) + 1 for line in rest_lines[: complete[-1]]) if complete else 0
        if found > self.blocks:
            return at_last
        self.wait = lines + self.blocks + 1 - found
        if complete:
            self._offset, self._counted = at_last, found - 1
        return 0

    def reset(self) -> None:
        """The growing part was replaced."""
        self.wait, self._offset, self._counted = 0, 0, 0


def _block_starts(source: str) -> Iterator[int]:
    """The line each top-level block of ``source`` starts at. A table's starts at its header
    only once the row under it has ended: until then "|---|-" may become "|---|-x", not a
    delimiter row, and the header line a paragraph's last line (a cut there split a paragraph
    between a frozen part and the growing one)."""
    lines = source.count("\n")  # the index of the line still arriving
    for token in _block_parser.parse(source):
        if token.level == 0 and token.map and token.nesting != -1:
            start = token.map[0]
            if token.type != "table_open" or start + 1 < lines:
                yield start


def _once_laid_out(block: type[MarkdownBlock]) -> type[MarkdownBlock]:
    """``block`` under its own name (CSS selects it as before), laid out once per append."""

    def refresh(
        self: MarkdownBlock, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> MarkdownBlock:
        # A layout only once mounted. A block built with its content asked for one from its
        # constructor, delivered when it first went idle: after the layout its mount caused,
        # which had placed it already, so each append that added blocks laid the screen out twice.
        layout = layout and self.is_mounted
        return block.refresh(self, *regions, repaint=repaint, layout=layout, recompose=recompose)

    return type(block.__name__, (block,), {"_size_updated": laid_out, "refresh": refresh, "__module__": __name__})


class AnswerMarkdown(Markdown):
    """A part of a streaming answer: it and its blocks grow without a second layout per append.
    Its own lines (the gaps between its blocks) are blank: drawn as such, they skip Textual's
    per-line styling, which ran for every visible line on every append (the widget grows, and a
    resized widget redraws all of its lines).

    One that will be appended to is made empty: a Markdown made with text loses all but the last
    line of its last block on its first append.

    Once `freeze` is called it never changes again and its height is pinned once drawn: the
    growing part below changes the height of everything around it on every append, and a
    Markdown of automatic height would be measured again (every block of it arranged) each time."""

    BLOCKS = {name: _once_laid_out(block) for name, block in Markdown.BLOCKS.items()}
    BLANK = True  # no border and no padding here (MessageView's CSS): nothing but background
    _size_updated = laid_out

    def __init__(self, markdown: str = "") -> None:
        super().__init__(markdown, classes="body", parser_factory=markdown_parser)
        self._pinned_width: int | None = None
        self._own_margin: int | None = None  # the bottom margin of its last block, as styled

    def freeze(self, source: str) -> None:
        """No more appends: it shows ``source``, the blocks it holds (the caller removed the rest)."""
        self._markdown = source  # what `source` reads; Textual has no setter that keeps the blocks
        self.add_class("frozen")  # pinned at its next resize (the blocks it loses now): its size lags a frame

    @property
    def frozen(self) -> bool:
        return self.has_class("frozen")

    def on_resize(self) -> None:
        if not self.frozen:
            return
        if self._pinned_width is not None and self.size.width != self._pinned_width:
            self._unpin()  # a new width wraps the lines anew
        self.call_after_refresh(self._pin)

    def _unpin(self) -> None:
        self._pinned_width = None
        self.styles.height = "auto"

    def _pin(self) -> None:
        if self._pinned_width is None and self.size.width:
            self._pinned_width = self.size.width
            self.styles.height = self.outer_size.height

    def meet(self, below: Markdown) -> None:
        """Space ``below`` from this frozen part as their blocks would be spaced within one widget:
        there two neighbouring blocks share their margins (the larger counts), here they would
        add up. The last block here keeps of its bottom margin what the first one below lacks."""
        if not self.children or not below.children:
            return
        last = self.children[-1]
        top, right, bottom, left = last.styles.margin
        if self._own_margin is None:
            self._own_margin = bottom
        wanted = max(0, self._own_margin - below.children[0].styles.margin.top)
        if wanted != bottom:
            last.styles.margin = (top, right, wanted, left)
            self._unpin()
            self.call_after_refresh(self._pin)


class StreamingAnswer(MessageView):
    """The assistant's message of a turn whose answer is arriving.

    ``feed`` is synchronous and cheap (the engine calls it once per piece): pieces queue up and
    one task appends whatever queued since its last pass to the growing Markdown widget, whose
    ``append`` re-parses only the last block, at most every ``render_interval``: a burst of
    pieces costs one render. Once that widget holds ``FREEZE_BLOCKS`` finished blocks they move
    frozen where they are, never to change again, so an append costs the same at the end of
    a long answer as at its start, and the event loop stays free for keys.
    """

    DEFAULT_CSS = """
    StreamingAnswer .who.streaming { color: $text-muted; }
    """
    render_interval = 0.06  # seconds between two appends, at least: each one repaints the transcript
    max_render_interval = 0.25  # and at most, when the loop comes back late

    def __init__(self, *, note: str = "streaming…", seq: int | None = None) -> None:
        super().__init__("assistant", "", note=note, markdown=True, seq=seq)
        self._queued: list[str] = []
        self._arrived = asyncio.Event()
        self._ended = asyncio.Event()
        self._render_task: asyncio.Task[None] | None = None
        self._finished = False
        self._live = AnswerMarkdown()  # the widget appends go to
        self._live_source = ""  # what it holds
        self._freezer = Freezer(FREEZE_BLOCKS)
        self._frozen: AnswerMarkdown | None = None  # the last part frozen, right above it
        self._discarded = False  # finished to be replaced: no last render pass
        self.rendered = ""  # what the Markdown widgets hold, in order (tests and benchmarks read it)

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble("StackSpot", (f"  {visible(self.note)}", "dim")), classes="who streaming")
        yield self._live

    def on_mount(self) -> None:
        self._render_task = asyncio.create_task(self._render_loop())

    _size_updated = laid_out  # as AnswerMarkdown

    def on_unmount(self) -> None:
        if self._render_task is not None:
            self._render_task.cancel()

    def feed(self, piece: str) -> None:
        """Queue more of the answer."""
        if self._finished or not piece:
            return
        self.text += piece
        self._queued.append(piece)
        self._arrived.set()

    @property
    def drawn(self) -> bool:
        """Everything fed is on screen and the answer is finished."""
        return self._render_task is not None and self._render_task.done()

    @property
    def sources(self) -> list[str]:
        """The Markdown source of each widget the answer is shown in, top to bottom."""
        return [markdown.source for markdown in self.query_children(Markdown)]

    async def _render_loop(self) -> None:
        interval = self.render_interval
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            last = self._finished
            if last and self._discarded:
                return
            if self.is_attached:
                await self._flush(last=last)
            if last:
                return
            # Each append reflows and repaints the transcript. At most ~16 a second whatever the
            # word rate, and fewer when the loop is slow to come back (a busy machine): the
            # repaints then never crowd out keys. The end of the stream cuts the wait short.
            started = time.perf_counter()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), interval)
            late = time.perf_counter() - started - interval
            interval = min(self.max_render_interval, max(self.render_interval, 3 * late))

    async def _flush(self, *, last: bool = False) -> None:
        pending = "".join(self._queued)
        self._queued.clear()
        flag = None if last else _OPEN_FLAG.search(pending)
        if flag is not None:
            pending, held = pending[: flag.start()], pending[flag.start() :]
            self._queued.append(held)
        if pending:
            fragment = visible(pending)
            self._live_source += fragment
            self.rendered += fragment
            try:
                await self._live.append(fragment)
            except Exception:  # Textual's in-place update tripped on this input: parse the growing part afresh
                await self._reparse()
            if self._frozen is not None:
                self._frozen.meet(self._live)  # its first block may have changed (an underline came)
        if last:
            await self._settle()
            return
        cut = self._freezer.cut(self._live_source)
        if cut:
            await self._freeze(cut)
        self._forget_hidden_lines()

    def _forget_hidden_lines(self) -> None:
        """Drop the styled lines Textual caches for each widget of the answer scrolled out of
        view. Nothing else clears them (a finished block never refreshes), and with the strips
        each line's crops and divisions cache they held ~12 KB a line: most of what an answer
        streamed into the transcript added to the app's memory. Scrolled back, a block draws its
        lines again."""
        shown = self.screen._compositor.visible_widgets  # private, but what the last frame drew
        for widget in self.walk_children(Widget, with_self=False):
            cache = widget._styles_cache
            if cache._cache and widget not in shown:
                cache.clear()

    async def _freeze(self, cut: int) -> None:
        """The growing widget keeps its blocks above ``cut`` where they are and is frozen (they
        show as a fresh parse of that head would, `freeze_point`); a new growing widget takes
        what follows, in one frame. Freezing had parsed and mounted the head afresh: every block
        of it mounted again (each styled five times), the cost of a long answer's appends."""
        head, tail = self._live_source[:cut], self._live_source[cut:]
        old, live = self._live, AnswerMarkdown()
        line = head.count("\n")
        blocks = [block for block in old.children if isinstance(block, MarkdownBlock)]
        moving = [block for block in blocks if block.source_range[0] >= line]
        if [block.source_range[0] for block in blocks if block not in moving] != list(_block_starts(head)):
            # The appends left blocks a fresh parse of the head does not make ("1." then, lines
            # later, "2." continued the list): parsed afresh, as the head renders in the whole.
            await self._reparse(head)
            old, moving = self._live, []
        with self.app.batch_update():
            await old.remove_children(moving)
            old.freeze(head)
            await self.mount(live, after=old)
            await live.append(tail)
            if self._frozen is not None:
                self._frozen.meet(old)
            self._frozen = old
            old.meet(live)
        self._live, self._live_source = live, tail
        self._freezer.reset()

    async def _reparse(self, source: str | None = None) -> None:
        """Replace the growing widget by one showing ``source`` (by default what it holds), parsed
        afresh, in one frame."""
        old, live = self._live, AnswerMarkdown()  # empty, then appended to: see AnswerMarkdown
        source = self._live_source if source is None else source
        with self.app.batch_update():
            await self.mount(live, before=old)
            await live.append(source)
            await old.remove()
            if self._frozen is not None:
                self._frozen.meet(live)
        self._live, self._live_source = live, source
        self._freezer.reset()

    async def _settle(self) -> None:
        """The answer is whole: show it as a fresh parse would. An append can leave a block that
        a later line turned into nothing (a "[id]: url" definition); a definition applies to
        links in the frozen parts too, and then the whole answer is parsed again."""
        if self._frozen is not None and _REFERENCE.search(self.rendered):
            whole = AnswerMarkdown(self.rendered)
            parts = list(self.query_children(Markdown))
            with self.app.batch_update():
                await self.mount(whole, before=parts[0])
                await self.remove_children(parts)
            self._live, self._live_source, self._frozen = whole, self.rendered, None
        else:
            await self._reparse()

    def finish(self, note: str, *, discard: bool = False) -> None:
        """The stream is over: the last pieces are still drawn (the render task's last pass),
        and the header shows the turn's status. With ``discard`` (another view is taking its
        place) there is no last pass: it parsed the whole answer afresh into a second widget tree
        while the first was still alive, the peak of the app's memory for a large answer."""
        self._finished = True
        self._discarded = discard
        self._ended.set()
        self._arrived.set()
        self.note = note
        header = self.query_one(".who", Static)
        header.update(Text.assemble("StackSpot", (f"  {visible(note)}", "dim")))
        header.remove_class("streaming")
