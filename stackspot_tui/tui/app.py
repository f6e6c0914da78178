"""The Textual application: picks the first screen, owns keymap, palette commands and help."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ..api import StackSpotError
from ..config import ConfigError, Settings
from ..engine import ConversationService
from ..store import HistoryError
from .chat import ChatScreen
from .history import ConversationsScreen
from .screens import FirstRunScreen, HelpScreen, SlugPicker
from .widgets import PromptInput

DEMO_DEFAULT_SLUG = "code-review"


class StackSpotApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "stackspot-tui"
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", id="help"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        demo: bool = False,
        service: ConversationService | None = None,
        service_factory: Callable[[bool], ConversationService] | None = None,
        slug: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.demo = demo
        self.service = service
        self._service_factory = service_factory
        self._slug = slug
        self._conversation_id = conversation_id
        self.reattaching: set[tuple[str, int]] = set()  # turns the background worker is polling

    # -- start --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_keymap(dict(self.settings.keymap))
        if self.service is None and not self.demo and not self.settings.has_credentials:
            self.push_screen(FirstRunScreen(str(self.settings.config_path)), self._first_run_choice)
        else:
            self._open_chat()

    def _first_run_choice(self, choice: str | None) -> None:
        if choice != "demo":
            self.exit()
            return
        self.demo = True
        self._open_chat()

    def _open_chat(self) -> None:
        if self.service is None:
            assert self._service_factory is not None, "give a service or a service factory"
            try:
                self.service = self._service_factory(self.demo)
            except (HistoryError, StackSpotError, ConfigError) as exc:  # say it in one line and leave
                self.exit(return_code=1, message=f"stackspot-tui: error: {exc}")
                return
        slug = self._slug or self.settings.slug
        if not slug and not self._conversation_id:
            latest = self.service.store.latest_conversation()
            slug = latest.slug if latest else (DEMO_DEFAULT_SLUG if self.demo else None)
        self.push_screen(ChatScreen(self.service, slug=slug, conversation_id=self._conversation_id, demo=self.demo))
        self._reattach_elsewhere()
        # What start-up built (Textual, the screen, parsed history) lives as long as the app:
        # keep it out of the cyclic GC, whose full passes otherwise stall the UI ~150 ms each.
        self.call_after_refresh(gc.freeze)

    @work(group="reattach", exit_on_error=False)
    async def _reattach_elsewhere(self) -> None:
        """Executions left running in other conversations complete in the background."""
        assert self.service is not None
        pending = [(c, t) for c, t in self.service.store.pending_turns() if c.id != self._conversation_id]
        self.reattaching = {(t.conversation, t.seq) for _, t in pending}
        done = 0
        for conversation, turn in pending:
            try:
                finished = await self.service.reattach(conversation.id, turn.seq)
            finally:
                self.reattaching.discard((turn.conversation, turn.seq))
            done += finished.status == "COMPLETED"
        if pending:
            self.notify(f"Re-attached {len(pending)} execution(s) left running; {done} completed.")

    @property
    def chat(self) -> ChatScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ChatScreen):
                return screen
        return None

    # -- palette, help, slug picker -------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        chat = self.chat
        if chat is None:
            return
        yield SystemCommand("New conversation", "Start a new conversation (ctrl+n)", chat.action_new_conversation)
        yield SystemCommand("Choose quick command", "Pick the quick command slug (ctrl+o)", chat.action_pick_slug)
        yield SystemCommand(
            "Copy last answer", "Copy the last answer to the clipboard (ctrl+r)", chat.action_copy_answer
        )
        yield SystemCommand("Copy code block", "Copy the last code block (ctrl+b)", chat.action_copy_code)
        yield SystemCommand(
            "Copy conversation id", "Copy the StackSpot conversation id (ctrl+g)", chat.action_copy_conversation_id
        )
        yield SystemCommand(
            "Conversations", "List, search, rename, archive, delete, export (ctrl+l)", chat.action_conversations
        )
        for fmt, name in (("md", "Markdown"), ("json", "JSON"), ("html", "HTML"), ("txt", "plain text")):
            yield SystemCommand(
                f"Export conversation as {name}", f"Write ./<id>.{fmt}", lambda fmt=fmt: chat.export_current(fmt)
            )
        yield SystemCommand("Keys", "Show every key (F1)", self.action_help)

    def pick_slug(self, callback: Callable[[str | None], None]) -> None:
        suggestions: dict[str, str] = {}
        if self.service is not None:
            for conversation in self.service.store.list_conversations(archived=None, limit=200):
                suggestions.setdefault(conversation.slug, "recent")
        if self.demo:
            from ..sim import quick_commands

            for slug, about in quick_commands().items():
                suggestions.setdefault(slug, about)
        current = self.chat.slug if self.chat else None
        self.push_screen(SlugPicker(list(suggestions.items()), current), callback)

    def help_rows(self) -> list[tuple[str, str, str]]:
        keymap = dict(self.settings.keymap)
        rows = []
        for owner in (PromptInput, ChatScreen, StackSpotApp, ConversationsScreen):
            for binding in owner.BINDINGS:
                if isinstance(binding, Binding) and binding.id:
                    rows.append((keymap.get(binding.id, binding.key), binding.description, binding.id))
        rows.append(("ctrl+p", "Command palette", "(textual)"))
        rows.append(("tab / shift+tab", "Move focus (focus a message to copy it with c)", "(textual)"))
        return rows

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_rows()))
