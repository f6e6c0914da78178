"""Reusable widgets of the chat screen. Every piece of server text goes through `visible()`
and reaches the screen as `rich.text.Text` or Markdown source, never as markup."""

from __future__ import annotations

import math
import textwrap
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Log, Markdown, Static, TextArea
from textual.widgets._footer import FooterKey

from ..engine import Turn, answer_text
from ..fences import code_blocks
from ..markdown import parser as markdown_parser
from ..progress import ProgressLine, seconds
from ..textsafe import visible

# Textual's Markdown builds a widget per block and highlights each code block: fine for
# ordinary answers, seconds to minutes for huge ones. Past these sizes the answer is shown
# as text in a virtualised, read-only TextArea (docs/performance.md).
LARGE_ANSWER_CHARS = 32_000
LARGE_ANSWER_FENCES = 40
#: a huge message shows this much in the transcript; copy and export keep all of it
LARGE_VIEW_CHARS = 32_000


class ConversationBar(Static):
    """Top line: app, demo marker, conversation title, local id (what the CLI takes), quick command.

    StackSpot's long conversation id is not shown: ctrl+g copies it."""

    DEFAULT_CSS = """
    ConversationBar { dock: top; height: 1; background: $primary; color: $text; padding: 0 1; }
    """

    def show(
        self,
        *,
        slug: str | None,
        local_id: str | None,
        demo: bool,
        title: str = "",
        agent_id: str | None = None,
        key: Callable[[str], str] = str,
    ) -> None:
        head = Text("stackspot-tui", style="bold")
        if demo:
            head.append("  DEMO ", style="bold reverse")
        tail = Text("  ")
        tail.append(visible(local_id) if local_id else "new conversation", style="italic")
        tail.append("  ·  ")
        if agent_id:
            tail.append("agent: ")
            tail.append(visible(agent_id), style="bold")
        else:
            tail.append(visible(slug) if slug else f"no quick command ({key('pick_slug')})", style="bold")
        # The title gives way first: id and quick command stay whole on a narrow terminal.
        room = max(0, self.size.width - 2 - head.cell_len - tail.cell_len - 4) if self.size.width else 60
        line = head
        if title and room > 3:
            shown = visible(title)
            if len(shown) > room:
                shown = shown[: room - 1] + "…"
            line.append("  ")
            line.append(shown)
        line.append_text(tail)
        self._shown: dict[str, Any] = {
            "slug": slug,
            "local_id": local_id,
            "demo": demo,
            "title": title,
            "agent_id": agent_id,
            "key": key,
        }
        self.update(line)

    def on_resize(self) -> None:
        if getattr(self, "_shown", None):
            self.show(**self._shown)


def laid_out(self: Widget, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
    """A ``_size_updated`` for widgets that grow as an answer streams (not ScrollViews): the layout
    that gave the widget its new size placed it and its children already, and Textual's default
    asks for another layout of the whole screen when the size changed, so every append of a
    streaming answer (its last block, the answer, the transcript grow) cost two."""
    return Widget._size_updated(self, size, virtual_size, container_size, layout=False)


class KeyFooter(Footer):
    """Textual's footer, each key given its final style before it mounts. Left alone a key mounts
    compact, then its binding to the footer makes it not: two restyles of every key each time
    the footer is composed (at every start and focus change), a fifth of the app's start-up.

    A focus change that leaves the same keys (from one message to the next, back from a dialog)
    keeps the keys it has: recomposing remounts every key and lays out the whole screen again."""

    _composed_for: tuple[Any, ...] | None = None

    def _keys_shown(self) -> tuple[Any, ...]:
        """What `Footer.compose` draws: the shown keys (and the palette's), not which widget holds each."""
        palette = self.app.COMMAND_PALETTE_BINDING
        return (
            self.compact,
            *(
                (key, b.binding, b.enabled, b.tooltip)
                for key, b in self.screen.active_bindings.items()
                if b.binding.show or key == palette
            ),
        )

    def bindings_changed(self, screen: Screen) -> None:
        if self._bindings_ready and self.is_attached and screen is self.screen and screen.app.app_focus:
            shown = self._keys_shown()
            if shown == self._composed_for:
                return
            self._composed_for = shown  # what the recompose asked for below draws: one, not one per signal
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._composed_for = self._keys_shown()
        for widget in super().compose():
            # Bound keys only: the palette key is not, and keeps its own (compact) style.
            if isinstance(widget, FooterKey) and "compact" in (widget._reactive_connect or {}):
                widget.set_reactive(FooterKey.compact, self.compact)
                widget.set_class(self.compact, "-compact", update=False)
            yield widget


class Transcript(VerticalScroll):
    """The conversation's scrolling column; it grows without a second layout (`laid_out`).
    Its own lines (padding, the gaps between messages) are plain background: drawn as blanks,
    they skip Textual's per-line styling, which ran for every visible line each time the
    transcript scrolled (every append of a streaming answer)."""

    BLANK = True
    _size_updated = laid_out


class MessageView(Vertical, can_focus=True):
    """One prompt, answer or turn status in the transcript. Focus it (Tab) to act on it."""

    DEFAULT_CSS = """
    MessageView { height: auto; margin: 0 0 1 0; padding: 0 1; }
    MessageView:focus, MessageView.hit { background: $accent 25%; }
    MessageView:focus .who { text-style: bold reverse; }
    MessageView .who { text-style: bold; height: 1; }
    MessageView.user { border-left: thick $accent; }
    MessageView.assistant { border-left: thick $success; }
    MessageView.error { border-left: thick $error; }
    MessageView.status { border-left: thick $warning; }
    MessageView:focus.user, MessageView:focus.assistant, MessageView:focus.error, MessageView:focus.status {
        border-left: thick $foreground;
    }
    MessageView .body { height: auto; }
    MessageView Markdown { margin: 0; padding: 0; }
    MessageView TextArea.large { height: 30; border: none; }
    """
    # Keys on a focused message; the actions live on the chat screen.
    BINDINGS = [
        Binding("c", "screen.copy_message", "Copy message", id="copy_message"),
        Binding("f", "screen.fetch_answer", "Fetch answer", id="fetch_answer"),
        Binding("r", "screen.resend_turn", "Send again", id="resend_turn"),
        Binding("delete", "screen.delete_turn", "Delete turn", id="delete_turn"),
    ]
    WHO = {"user": "You", "assistant": "StackSpot", "error": "Error", "status": "Status"}

    def __init__(
        self,
        role: str,
        text: str,
        *,
        who: str = "",
        note: str = "",
        markdown: bool = False,
        seq: int | None = None,
    ) -> None:
        super().__init__(classes=role)
        self.seq = seq  # the turn this message belongs to
        self.role = role
        self.who = who or self.WHO.get(role, role)
        self.text = text
        self.note = note
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        header = Text(self.who)
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
            yield Markdown(visible(self.text), classes="body", parser_factory=markdown_parser)
        else:
            yield Static(Text(visible(self.text)), classes="body")

    @property
    def is_large(self) -> bool:
        if len(self.text) > LARGE_ANSWER_CHARS:
            return True
        return self.markdown and self.text.count("```") > 2 * LARGE_ANSWER_FENCES

    def code_blocks(self) -> list[str]:
        return code_blocks(self.text)

    def on_key(self, event: events.Key) -> None:
        # A character no key binding takes was meant for the prompt: send it there.
        if not event.is_printable or not event.character or event.key in self.screen.active_bindings:
            return
        prompt = next(iter(self.screen.query(PromptInput)), None)
        if prompt is not None:
            event.stop()
            prompt.insert(event.character)
            prompt.focus()


def _default_key(binding_id: str) -> str:
    return {"fetch_answer": "f", "resend_turn": "r"}.get(binding_id, binding_id)


def turn_messages(turn: Turn, key: Callable[[str], str] = _default_key) -> list[MessageView]:
    """The transcript widgets of a stored turn: the prompt, then what became of it."""
    return [MessageView("user", turn.prompt, note=f"turn {turn.seq + 1}", seq=turn.seq), *outcome_messages(turn, key)]


def answer_note(turn: Turn) -> str:
    """The answer's header note: its status when it is not simply complete."""
    if turn.is_agent and turn.status == "CANCELLED":
        return "stopped · the answer so far is kept"
    return turn.status + (" · incomplete" if turn.incomplete else "")


def outcome_messages(
    turn: Turn, key: Callable[[str], str] = _default_key, *, with_answer: bool = True
) -> list[MessageView]:
    """What became of a turn, told as what it is. ``key`` names the key bound to an action;
    ``with_answer`` False: the answer is on screen already (it streamed)."""
    seq = turn.seq
    views = []
    if turn.result is not None and with_answer:
        views.append(MessageView("assistant", answer_text(turn), note=answer_note(turn), markdown=True, seq=seq))
    if turn.status == "COMPLETED" or (turn.is_agent and turn.status == "CANCELLED" and turn.result):
        return views
    fetch, resend = key("fetch_answer"), key("resend_turn")
    if turn.maybe_sent:
        reason = turn.error or "The app stopped before StackSpot confirmed this turn."
        text = f"{reason}\n{resend} sends it again; StackSpot may then run it twice."
        views.append(MessageView("status", text, who="May have been sent", seq=seq))
    elif turn.fetchable and not turn.resumes_by_itself:  # stopped watching (Esc)
        text = f"The execution goes on at StackSpot. {fetch} fetches the answer (or `stackspot-tui resume --all`)."
        views.append(MessageView("status", text, who="Stopped watching", note=turn.execution_id or "", seq=seq))
    elif turn.needs_reattach and turn.error:
        text = f"{turn.error}\nIt may still run on StackSpot: {fetch} fetches the answer."
        views.append(MessageView("status", text, who="Lost track", note=turn.status, seq=seq))
    elif turn.needs_reattach:
        text = "Still running on StackSpot: fetching the answer…"
        views.append(MessageView("status", text, who="Running", note=turn.execution_id or "", seq=seq))
    else:
        who = {"FAILURE": "Failed", "CANCELLED": "Stopped", "INCOMPLETE": "Incomplete"}.get(turn.status, "Error")
        text = turn.error or turn.status
        if turn.is_agent and turn.result:
            text += "\nThe answer above is what arrived before that; it is kept in the history."
        views.append(MessageView("error", text, who=who, note=turn.status, seq=seq))
    return views


def live_message(seq: int, *, reattached: bool = False) -> MessageView:
    """Stands for the answer while a turn runs; replaced by what became of it."""
    text = (
        "Fetching the answer of an execution left running…"
        if reattached
        else "Sent to StackSpot: the answer appears here when it is ready."
    )
    return MessageView("status", text, who="Running", seq=seq)


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
    50 ms, 100 per write) because each write refreshes (docs/performance.md). Lines are
    wrapped to the width, and re-wrapped from the kept originals when the width changes:
    never a horizontal scrollbar, and a log that followed the end keeps following it.
    """

    DEFAULT_CSS = """
    ProgressLog { border-left: solid $primary-darken-2; padding: 0 1; background: $surface; overflow-x: hidden; }
    """
    GLYPHS = {"info": "·", "heading": "▶", "step": "›", "warn": "⚠", "error": "✖", "ok": "✔"}
    FLUSH_SECONDS = 0.05
    FLUSH_LINES = 100  # per write: a backlog drains in slices, with the loop free between them
    MAX_LINES = 5000

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=self.MAX_LINES, highlight=True, **kwargs)
        self.highlighter = LevelHighlighter()
        self._pending: list[str] = []
        self._originals: deque[str] = deque(maxlen=self.MAX_LINES)  # unwrapped, to re-wrap on resize
        self._wrapped_at = 0
        self._following = True
        self._sizes: tuple[Size, Size, Size] | None = None  # what the last layout gave it

    def add(self, line: ProgressLine) -> None:
        if not self._pending:
            self.set_timer(self.FLUSH_SECONDS, self.flush)
        glyph = self.GLYPHS.get(line.level, "·")
        self._pending.append(f"{glyph} {visible(line.text).strip()}")

    def heading(self, text: str) -> None:
        self.add(ProgressLine(text, "heading"))

    def _wrap_width(self) -> int:
        return max(20, self.scrollable_content_region.width - 1)

    @staticmethod
    def _wrap(lines: Iterable[str], width: int) -> list[str]:
        # Nearly every line fits as it is: textwrap (regular expressions, ~40 us a line) only for
        # those that do not, or that hold whitespace it would change (a tab, a line break, a
        # trailing space).
        return [
            part
            for line in lines
            for part in (
                [line]
                if len(line) <= width and line.isprintable() and not line.endswith(" ")
                else textwrap.wrap(line, width, subsequent_indent="  ") or [""]
            )
        ]

    def flush(self, *, everything: bool = False) -> None:
        width = self._wrap_width()
        while self._pending:
            batch, self._pending = self._pending[: self.FLUSH_LINES], self._pending[self.FLUSH_LINES :]
            self._originals.extend(batch)
            self._wrapped_at = width
            self.write_lines(self._wrap(batch, width), scroll_end=self._following or None)
            if not everything and self._pending:
                self.set_timer(0.01, self.flush)  # a timer, not call_later: lets the loop run between slices
                return

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._following = new >= self.max_scroll_y - 1

    def on_resize(self) -> None:
        width = self._wrap_width()
        if self._originals and width != self._wrapped_at:
            self._wrapped_at = width
            super().clear()
            self.write_lines(self._wrap(self._originals, width), scroll_end=False)
        if self._following:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        # Textual's ScrollView compares its own virtual size with the one the layout passes (never
        # equal for a log), so every layout of the screen (one per append of a streaming answer)
        # re-rendered this scrollbar, line by line. Only a change of what it uses counts here.
        sizes = (size, container_size, self.virtual_size)
        if sizes == self._sizes:
            return False
        self._sizes = sizes
        return super()._size_updated(size, virtual_size, container_size, layout)

    def clear(self) -> ProgressLog:
        self._pending = []
        self._originals.clear()
        self._following = True
        return super().clear()


class RunStatus(Static):
    """Title of the progress panel: idle, or a spinner, the turn's status and a ticking
    elapsed time, so a long step still shows the app is alive."""

    DEFAULT_CSS = """
    RunStatus { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    RunStatus.running { background: $accent 40%; }
    """
    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    TICK_SECONDS = 0.1

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.running = False
        self._started = 0.0
        self._frame = 0
        self._status = ""
        self._percentage: float | None = None
        self._hint = ""

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.TICK_SECONDS, self.tick, pause=True)
        self._show()

    def start(self, status: str, *, hint: str = "", elapsed: float = 0.0) -> None:
        self.running = True
        self._started = self.clock() - elapsed
        self._status, self._percentage, self._hint = status, None, hint
        self.add_class("running")
        self._timer.resume()
        self._show()

    def progress(self, status: str, percentage: float | None) -> None:
        self._status, self._percentage = status, percentage
        self._show()

    def stop(self) -> None:
        self.running = False
        self.remove_class("running")
        self._timer.pause()
        self._show()

    def tick(self) -> None:
        self._frame = (self._frame + 1) % len(self.FRAMES)
        self._show()

    @property
    def elapsed(self) -> float:
        return self.clock() - self._started

    def _show(self) -> None:
        # One line whatever it says: a repaint, not a layout of the whole screen 10 times a second
        # (a layout re-measures the transcript, an answer streaming into it included).
        if not self.running:
            self.update(Text("Execution progress"), layout=False)
            return
        line = Text(f"{self.FRAMES[self._frame]} {self._status}")
        if self._percentage is not None:
            line.append(f" {self._percentage * 100:.0f}%")
        line.append(f" · {seconds(self.elapsed)}")
        room = self.content_region.width or 80
        if self._hint and line.cell_len + 3 + len(self._hint) <= room:  # the footer names the key too
            line.append(f" · {self._hint}", style="not bold")
        self.update(line, layout=False)


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
    """Multi-line prompt: Enter sends, Ctrl+J (or Alt/Shift+Enter) adds a line, Up/Down walk earlier prompts.

    A terminal delivers fast typing, a paste without bracketed paste, or `send-keys "text" Enter`
    as one read, and Textual queues its keys before any of them is handled. A binding runs when
    its key bubbles up to the app, after the keys queued behind it were already inserted, and a
    priority binding runs before the keys queued ahead of it. So this widget's own bindings (send,
    newline, history, and TextArea's editing keys) run here, in ``_on_key``, in order with the
    characters: "text⏎" sends exactly "text".
    """

    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 10; border: tall $accent; }
    PromptInput.busy { border: tall $warning 60%; }
    """
    BINDINGS = [
        Binding("enter", "submit", "Send", id="send"),
        Binding("ctrl+j,alt+enter,shift+enter", "newline", "New line", id="newline"),
        Binding("up", "history_previous", "Earlier prompt", show=False, id="history_previous"),
        Binding("down", "history_next", "Later prompt", show=False, id="history_next"),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, on_submit: Callable[[str], bool] | None = None, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        #: called at once with the text; True: taken (the input clears), False: the text stays.
        #: Without it the text is posted as `Submitted` and the input clears.
        self.on_submit = on_submit
        self.prompt_history: list[str] = []
        self._history_index: int | None = None
        self._draft = ""
        self._own_keys: dict[str, Binding] | None = None

    def _own_bindings(self) -> dict[str, Binding]:
        """This widget's bindings by key, after the user's keymap."""
        if self._own_keys is None:
            self._own_keys = {
                key: active.binding
                for key, active in self.screen.active_bindings.items()
                if active.node is self and not active.binding.priority
            }
        return self._own_keys

    def on_focus(self) -> None:
        self._own_keys = None  # the keymap may have changed since

    async def _on_key(self, event: events.Key) -> None:
        binding = self._own_bindings().get(event.key)
        if binding is not None:
            event.stop()
            event.prevent_default()  # TextArea's own handler would insert "\n" for Enter
            await self.run_action(binding.action)
            return
        if event.is_printable:
            self._history_index = None  # typing leaves history browsing

    def action_submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        if self.on_submit is None:
            self.post_message(self.Submitted(text))
        elif not self.on_submit(text):
            return
        self._history_index = None
        self.clear()

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
