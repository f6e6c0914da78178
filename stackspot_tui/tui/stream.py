"""An answer that renders as Markdown while it streams, without re-rendering what is already shown."""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Markdown, Static

from ..textsafe import visible
from .widgets import MessageView, plain_markdown_parser

RENDER_INTERVAL = 0.03  # seconds between two appends to the Markdown widget, at least
MAX_RENDER_INTERVAL = 0.25  # and at most


class StreamingAnswer(MessageView):
    """The assistant's message of a turn whose answer is arriving.

    ``feed`` is synchronous and cheap (the engine calls it once per piece): pieces queue up and
    one task appends whatever queued since its last pass to the Markdown widget, whose
    ``append`` re-parses only the last block, at most every ``RENDER_INTERVAL``. A burst of
    pieces thus costs one render, and the event loop stays free for keys.
    """

    DEFAULT_CSS = """
    StreamingAnswer .who.streaming { color: $text-muted; }
    """

    def __init__(self, *, note: str = "streaming…", seq: int | None = None) -> None:
        super().__init__("assistant", "", note=note, markdown=True, seq=seq)
        self._queued: list[str] = []
        self._arrived = asyncio.Event()
        self._render_task: asyncio.Task[None] | None = None
        self._finished = False
        self.rendered = ""  # what the Markdown widget holds (tests and benchmarks read it)

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble("StackSpot", (f"  {visible(self.note)}", "dim")), classes="who streaming")
        yield Markdown("", classes="body", parser_factory=plain_markdown_parser)

    def on_mount(self) -> None:
        self._render_task = asyncio.create_task(self._render_loop())

    def feed(self, piece: str) -> None:
        """Queue more of the answer."""
        if self._finished or not piece:
            return
        self.text += piece
        self._queued.append(piece)
        self._arrived.set()

    async def _render_loop(self) -> None:
        markdown = self.query_one(Markdown)
        try:
            interval = RENDER_INTERVAL
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                await self._flush(markdown)
                # Each append reflows and repaints the transcript. At most ~30 a second whatever
                # the word rate, and fewer when the loop is slow to come back (a busy machine, a
                # long transcript): the repaints then never crowd out keys.
                started = time.perf_counter()
                await asyncio.sleep(interval)
                late = time.perf_counter() - started - interval
                interval = min(MAX_RENDER_INTERVAL, max(RENDER_INTERVAL, 3 * late))
        except asyncio.CancelledError:
            if self.is_attached:  # whatever arrived last is shown too
                await self._flush(markdown)

    async def _flush(self, markdown: Markdown) -> None:
        if not self._queued:
            return
        fragment = visible("".join(self._queued))
        self._queued.clear()
        try:
            await asyncio.shield(markdown.append(fragment))  # a cancel lets this append finish
        finally:
            self.rendered += fragment

    def finish(self, note: str) -> None:
        """The stream is over: the last pieces are still drawn (the render task flushes when
        cancelled), and the header shows the turn's status."""
        self._finished = True
        if self._render_task is not None:
            self._render_task.cancel()
            self._render_task = None
        self.note = note
        header = self.query_one(".who", Static)
        header.update(Text.assemble("StackSpot", (f"  {visible(note)}", "dim")))
        header.remove_class("streaming")
