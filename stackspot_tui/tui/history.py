"""Conversation list and full-text search: open, rename, archive, delete, export."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ..engine import Backend, Conversation, ExportWriteError, HistoryError, SearchHit
from ..textsafe import visible
from ..timefmt import relative
from ..wording import counted
from .screens import ConfirmScreen, ExportScreen, TextPrompt
from .widgets import KeyFooter

SEARCH_MIN_CHARS = 3
SEARCH_DEBOUNCE_SECONDS = 0.25
FILTER_DEBOUNCE_SECONDS = 0.12
SHOWN_CONVERSATIONS = 200  # the list widget stays quick; typing narrows it


class ConversationsScreen(ModalScreen[tuple[str, int | None] | None]):
    """Newest first; typing filters titles, 3+ characters also search every prompt and answer.

    Dismisses with (conversation id, turn seq or None) to open.
    """

    DEFAULT_CSS = """
    ConversationsScreen { align: center middle; }
    ConversationsScreen > Vertical { width: 96%; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    ConversationsScreen #heading { height: 1; text-style: bold; }
    ConversationsScreen OptionList { height: 1fr; }
    """
    # Priority: these win over the search box's own ctrl+a/ctrl+d/ctrl+x editing keys.
    BINDINGS = [
        Binding("escape", "close", "Close", id="conversations_close"),
        Binding("ctrl+r", "rename", "Rename", id="conversation_rename", priority=True),
        Binding("ctrl+a", "toggle_archive", "Archive/unarchive", id="conversation_archive", priority=True),
        Binding("ctrl+d", "delete", "Delete", id="conversation_delete", priority=True),
        Binding("ctrl+x", "export", "Export", id="conversation_export", priority=True),
        Binding("ctrl+f", "cycle_format", "Format", id="conversation_export_format"),
        Binding("ctrl+t", "toggle_archived_view", "Show archived", id="conversations_archived"),
        Binding("down", "focus_list", "List", show=False, id="conversations_list"),
    ]

    def __init__(self, backend: Backend, export_dir: Path) -> None:
        super().__init__()
        self.backend = backend
        self.export_dir = export_dir
        self.show_archived = False
        self.export_formats = [fmt.name for fmt in backend.export_formats]
        self.export_format = self.export_formats[0]
        self._refresh_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="heading")
            yield Input(placeholder="filter titles · 3+ characters search every prompt and answer", id="search")
            yield OptionList(id="results")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.refresh_list()
        self.query_one(Input).focus()

    @property
    def results(self) -> OptionList:
        return self.query_one(OptionList)

    def refresh_list(self) -> None:
        """The newest conversations whose title, quick command or agent holds the typed text (the
        history's catalog answers: no conversation is read to show the list)."""
        value = self.query_one(Input).value
        needle = value.strip()
        archived = self.show_archived
        matching = self.backend.conversations(archived=archived, limit=SHOWN_CONVERSATIONS, matching=needle)
        self.results.clear_options()
        self.results.add_options([Option(self._line(c), id=f"{c.id}:") for c in matching])
        total = self.backend.count_conversations(archived=archived)
        kind = "archived conversation" if archived else "conversation"
        shown = ""
        if len(matching) == SHOWN_CONVERSATIONS:
            count = self.backend.count_conversations(archived=archived, matching=needle) if needle else total
            if count > SHOWN_CONVERSATIONS:
                shown = f" · the newest {SHOWN_CONVERSATIONS} of {count:,} shown, type to narrow"
        self.query_one("#heading", Static).update(
            Text(
                f"{counted(total, kind)}{shown} · Enter opens · export as {self.export_format} (ctrl+x, ctrl+f changes)"
            )
        )
        if len(needle) >= SEARCH_MIN_CHARS:
            self._search(value, archived)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search(self, typed: str, archived: bool) -> None:
        """Full-text search off the UI thread, after typing pauses; the word being typed is a prefix."""
        time.sleep(SEARCH_DEBOUNCE_SECONDS)
        if get_current_worker().is_cancelled:
            return  # a newer keystroke started another search
        hits = [
            h for h in self.backend.search(typed, limit=100, as_you_type=True) if h.conversation.archived == archived
        ]
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_hits, typed, hits)

    def _show_hits(self, typed: str, hits: list[SearchHit]) -> None:
        if typed != self.query_one(Input).value:
            return
        self.results.add_options(
            [
                Option(
                    Text.assemble(
                        ("  ↳ ", "dim"),
                        (f"{h.conversation.id} turn {h.seq + 1} {h.field}: ", "dim"),
                        visible(h.snippet),
                    ),
                    id=f"{h.conversation.id}:{h.seq}:{h.field}",
                )
                for h in hits
            ]
        )

    @staticmethod
    def _line(c: Conversation) -> Text:
        return Text.assemble(
            (c.id, "bold"),
            "  ",
            (f"{relative(c.updated_at):>10}", "dim"),
            f"  {counted(c.turn_count, 'turn'):>10}  ",
            (f"{visible(c.slug):<18}", "cyan"),
            "  ",
            visible(c.title or "(untitled)"),
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        # Rebuilding hundreds of rows per keystroke would lag the typing: wait for a pause.
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
        self._refresh_timer = self.set_timer(FILTER_DEBOUNCE_SECONDS, self.refresh_list)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.results.option_count:
            self.results.highlighted = 0
            self._open(self.results.get_option_at_index(0).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._open(event.option.id)

    def _open(self, option_id: str | None) -> None:
        if option_id is None:
            return
        conv_id, seq, _field = (option_id.split(":") + ["", ""])[:3]
        self.dismiss((conv_id, int(seq) if seq else None))

    def _selected(self) -> Conversation | None:
        index = self.results.highlighted
        if index is None:
            if not self.results.option_count:
                return None
            index = 0
        conv_id = (self.results.get_option_at_index(index).id or "").partition(":")[0]
        return self.backend.conversation(conv_id)

    def action_focus_list(self) -> None:
        if self.results.option_count:
            self.results.focus()
            if self.results.highlighted is None:
                self.results.highlighted = 0

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return

        def renamed(title: str | None) -> None:
            if title:
                self._change(lambda: self.backend.rename(conversation.id, title), None)

        self.app.push_screen(TextPrompt(f"New title for {conversation.id}", conversation.title), renamed)

    def action_toggle_archive(self) -> None:
        conversation = self._selected()
        if conversation is not None:
            done = f"{'Unarchived' if conversation.archived else 'Archived'} {conversation.id}"
            self._change(lambda: self.backend.set_archived(conversation.id, not conversation.archived), done)

    def action_toggle_archived_view(self) -> None:
        self.show_archived = not self.show_archived
        self.refresh_list()

    def action_delete(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._change(lambda: self.backend.delete_conversation(conversation.id), f"Deleted {conversation.id}")

        question = f"Delete conversation {conversation.id} “{conversation.title}” ({counted(conversation.turn_count, 'turn')})?"
        self.app.push_screen(ConfirmScreen(question), answered)

    def action_export(self) -> None:
        conversation = self._selected()
        if conversation is not None:
            ask_and_export(self, self.backend, conversation.id, self.export_format, self.export_dir)

    @work(thread=True, group="history-change", exit_on_error=False)
    def _change(self, change: Callable[[], object], done: str | None) -> None:
        """A history write off the UI thread: a delete removes files, and any write may wait for
        another process's lock. Says what happened (``done``), then shows the new list."""
        try:
            change()
        except HistoryError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._changed, done)

    def _changed(self, message: str | None) -> None:
        if message:
            self.notify(message)
        if self.is_attached:
            self.refresh_list()

    def action_cycle_format(self) -> None:
        formats = self.export_formats
        self.export_format = formats[(formats.index(self.export_format) + 1) % len(formats)]
        self.refresh_list()


def ask_and_export(screen: Screen, backend: Backend, conv_id: str, fmt: str, directory: Path) -> None:
    """Ask where (the first free name in ``directory`` is offered), write there, say the full path."""
    title = next((known.title for known in backend.export_formats if known.name == fmt), fmt)

    def write(path: Path) -> None:
        # Off the UI thread: the file is written as the turns are read, maybe after waiting for
        # another process's lock.
        try:
            written = backend.export_to(conv_id, fmt, path)
        except (HistoryError, ExportWriteError) as exc:  # unwritable place: say so, keep the app
            screen.app.call_from_thread(screen.notify, str(exc), severity="error")
            return
        screen.app.call_from_thread(screen.notify, f"Exported to {written}")

    def chosen(path: Path | None) -> None:
        if path is not None:
            screen.run_worker(lambda: write(path), thread=True, group="export", exit_on_error=False)

    suggested = backend.export_path(conv_id, fmt, directory)
    screen.app.push_screen(ExportScreen(f"{conv_id} as {title}", suggested), chosen)
