"""Reusable widgets of the chat screen. Every piece of server text goes through `visible()`
and reaches the screen as `rich.text.Text` or Markdown source, never as markup."""

from __future__ import annotations

import math
import textwrap
import time

from rich.highlighter import Highlighter
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Log, Markdown, Static, TextArea

from ..engine import Turn, answer_text
from ..fences import code_blocks
from ..progress import ProgressLine
from ..textsafe import visible

# Textual's Markdown builds a widget per block and highlights each code block: fine for
# ordinary answers, seconds to minutes for huge ones. Past these sizes the answer is shown
# as text in a virtualised, read-only TextArea (docs/performance.md).
LARGE_ANSWER_CHARS = 32_000
LARGE_ANSWER_FENCES = 40
#: a huge message shows this much in the transcript; copy and export keep all of it
LARGE_VIEW_CHARS = 32_000


class ConversationBar(Static):
    """Top line: app, demo marker, quick command, StackSpot conversation id."""

    DEFAULT_CSS = """
    ConversationBar { dock: top; height: 1; background: $primary; color: $text; padding: 0 1; }
    """

    def show(
        self,
        *,
        slug: str | None,
        conversation_id: str | None,
        demo: bool,
        title: str = "",
        agent_id: str | None = None,
    ) -> None:
        line = Text()
        line.append("stackspot-tui", style="bold")
        if demo:
            line.append("  DEMO ", style="bold reverse")
        if agent_id:
            line.append("  agent: ")
            line.append(visible(agent_id), style="bold")
        else:
            line.append("  quick command: ")
            line.append(visible(slug or "(none: ctrl+o)"), style="bold")
        line.append("  conversation: ")
        line.append(visible(conversation_id or "new"), style="italic")
        if title:
            line.append(f"  · {visible(title)}", style="dim")
        self.update(line)


class MessageView(Vertical, can_focus=True):
    """One prompt or one answer in the transcript. Focus it to copy it."""

    DEFAULT_CSS = """
    MessageView { height: auto; margin: 0 0 1 0; padding: 0 1; }
    MessageView:focus { background: $boost; }
    MessageView .who { text-style: bold; height: 1; }
    MessageView.user { border-left: thick $accent; }
    MessageView.assistant { border-left: thick $success; }
    MessageView.error { border-left: thick $error; }
    MessageView .body { height: auto; }
    MessageView Markdown { margin: 0; padding: 0; }
    MessageView TextArea.large { height: 30; border: none; }
    """

    def __init__(self, role: str, text: str, *, note: str = "", markdown: bool = False, seq: int | None = None) -> None:
        super().__init__(classes=role)
        self.seq = seq  # the turn this message belongs to
        self.role = role
        self.text = text
        self.note = note
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        who = {"user": "You", "assistant": "StackSpot", "error": "Error"}.get(self.role, self.role)
        header = Text(who)
        if self.note:
            header.append(f"  {visible(self.note)}", style="dim")
        if self.is_large:
            shown = (
                "the first 32 KB as plain text; c copies it all" if len(self.text) > LARGE_VIEW_CHARS else "plain text"
            )
            header.append(f"  {len(self.text) // 1024} KB: {shown}", style="dim italic")
        yield Static(header, classes="who")
        if self.is_large:
            view = self.text[:LARGE_VIEW_CHARS]
            yield TextArea(visible(view), read_only=True, soft_wrap=False, classes="body large")
        elif self.markdown:
            yield Markdown(visible(self.text), classes="body")
        else:
            yield Static(Text(visible(self.text)), classes="body")

    @property
    def is_large(self) -> bool:
        if len(self.text) > LARGE_ANSWER_CHARS:
            return True
        return self.markdown and self.text.count("```") > 2 * LARGE_ANSWER_FENCES

    def code_blocks(self) -> list[str]:
        return code_blocks(self.text)


def turn_messages(turn: Turn) -> list[MessageView]:
    """The transcript widgets of a stored turn."""
    views = [MessageView("user", turn.prompt, note=f"turn {turn.seq + 1}", seq=turn.seq)]
    if turn.result is not None:
        note = turn.status + (" · incomplete" if turn.incomplete else "")
        views.append(MessageView("assistant", answer_text(turn), note=note, markdown=True, seq=turn.seq))
    if turn.error and turn.status != "COMPLETED":
        views.append(MessageView("error", turn.error, note=turn.status, seq=turn.seq))
    elif turn.needs_reattach:
        views.append(MessageView("error", "still running on StackSpot: re-attaching…", note=turn.status, seq=turn.seq))
    return views


class LevelHighlighter(Highlighter):
    """Colours a progress line by the glyph its level puts in front of it."""

    STYLES = {"▶": "bold reverse", "›": "cyan", "⚠": "yellow", "✖": "bold red", "✔": "bold green"}

    def highlight(self, text: Text) -> None:
        style = self.STYLES.get(text.plain[:1])
        if style:
            text.stylize(style)


class ProgressLog(Log):
    """Execution progress, one line per event, plain text (never markup).

    A `Log` keeps strings and renders only the visible lines: a RichLog keeps every line
    rendered, and those objects made each full GC pass ~150 ms. Lines are batched (every
    50 ms, 100 per write) because each write refreshes (docs/performance.md).
    """

    DEFAULT_CSS = """
    ProgressLog { border-left: solid $primary-darken-2; padding: 0 1; background: $surface; }
    """
    GLYPHS = {"info": "·", "heading": "▶", "step": "›", "warn": "⚠", "error": "✖", "ok": "✔"}
    FLUSH_SECONDS = 0.05
    FLUSH_LINES = 100  # per write: a backlog drains in slices, with the loop free between them
    MAX_LINES = 5000

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=self.MAX_LINES, highlight=True, **kwargs)
        self.highlighter = LevelHighlighter()
        self._pending: list[str] = []

    def add(self, line: ProgressLine) -> None:
        if not self._pending:
            self.set_timer(self.FLUSH_SECONDS, self.flush)
        glyph = self.GLYPHS.get(line.level, "·")
        self._pending.append(f"{glyph} {visible(line.text).strip()}")

    def heading(self, text: str) -> None:
        self.add(ProgressLine(text, "heading"))

    def flush(self, *, everything: bool = False) -> None:
        width = max(20, self.scrollable_content_region.width - 1)
        while self._pending:
            batch, self._pending = self._pending[: self.FLUSH_LINES], self._pending[self.FLUSH_LINES :]
            wrapped = [part for line in batch for part in textwrap.wrap(line, width, subsequent_indent="  ") or [""]]
            self.write_lines(wrapped)
            if not everything and self._pending:
                self.set_timer(0.01, self.flush)  # a timer, not call_later: lets the loop run between slices
                return

    def clear(self) -> ProgressLog:
        self._pending = []
        return super().clear()


class WaitStatus(Static):
    """A countdown under the log while a rate limit or retry is waited out."""

    DEFAULT_CSS = """
    WaitStatus { height: 1; color: $warning; padding: 0 1; display: none; }
    WaitStatus.waiting { display: block; }
    """
    TICK_SECONDS = 0.25
    clock = staticmethod(time.monotonic)  # the deadline's clock (tests use a fake one)
    remaining: reactive[float] = reactive(0.0)

    def on_mount(self) -> None:
        self._what = ""
        self._deadline = 0.0
        self.set_interval(self.TICK_SECONDS, self._tick)

    def start(self, what: str, seconds: float) -> None:
        self._what = what
        self._deadline = self.clock() + seconds
        self.remaining = seconds

    def stop(self) -> None:
        self.remaining = 0.0

    def _tick(self) -> None:
        # Read off the clock, not counted down per tick: a busy loop delays ticks, not the retry.
        if self.remaining > 0:
            self.remaining = max(0.0, self._deadline - self.clock())

    def watch_remaining(self, value: float) -> None:
        self.set_class(value > 0, "waiting")
        self.update(Text(f"⏳ {self._what}: retrying in {math.ceil(value)} s"))


class PromptInput(TextArea):
    """Multi-line prompt: Enter sends, Ctrl+J (or Alt/Shift+Enter) adds a line, Up/Down walk earlier prompts."""

    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 10; border: tall $accent; }
    """
    BINDINGS = [
        Binding("enter", "submit", "Send", id="send", priority=True),
        Binding("ctrl+j,alt+enter,shift+enter", "newline", "New line", id="newline", priority=True),
        Binding("up", "history_previous", "Earlier prompt", show=False, id="history_previous"),
        Binding("down", "history_next", "Later prompt", show=False, id="history_next"),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.prompt_history: list[str] = []
        self._history_index: int | None = None
        self._draft = ""

    def action_submit(self) -> None:
        if self.text.strip():
            self.post_message(self.Submitted(self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def set_history(self, prompts: list[str]) -> None:
        self.prompt_history = list(prompts)
        self._history_index = None

    def action_history_previous(self) -> None:
        if self.cursor_location[0] > 0 or not self.prompt_history:
            self.action_cursor_up()
            return
        if self._history_index is None:
            self._draft = self.text
            self._history_index = len(self.prompt_history)
        if self._history_index > 0:
            self._history_index -= 1
            self._load(self.prompt_history[self._history_index])

    def action_history_next(self) -> None:
        if self.cursor_location[0] < self.document.line_count - 1 or self._history_index is None:
            self.action_cursor_down()
            return
        self._history_index += 1
        if self._history_index >= len(self.prompt_history):
            self._history_index = None
            self._load(self._draft)
        else:
            self._load(self.prompt_history[self._history_index])

    def _load(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def on_key(self, event: events.Key) -> None:
        # Typing leaves history browsing: the next Up starts from the newest prompt again.
        if event.is_printable:
            self._history_index = None
