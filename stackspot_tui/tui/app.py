"""The Textual application: picks the first screen, owns keymap, palette commands and help."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ..config import ConfigError, Settings
from ..engine import Backend, HistoryError, StackSpotError
from .chat import RECENT_TURNS, ChatScreen
from .history import ConversationsScreen
from .screens import FirstRunScreen, HelpScreen, Pick, TargetPicker
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
        backend: Backend | None = None,
        backend_factory: Callable[[bool], Backend] | None = None,
        slug: str | None = None,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.demo = demo
        self.backend = backend
        self._backend_factory = backend_factory
        self._slug = slug
        self._agent_id = agent_id
        self._conversation_id = conversation_id
        self._on_started = on_started  # called once the first conversation is on screen
        self.reattaching: set[tuple[str, int]] = set()  # turns the background worker is polling

    # -- start --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_keymap(dict(self.settings.keymap))
        if self.backend is None and not self.demo and not self.settings.has_credentials:
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
        if self.backend is None:
            assert self._backend_factory is not None, "give a backend or a backend factory"
            try:
                self.backend = self._backend_factory(self.demo)
            except (HistoryError, StackSpotError, ConfigError) as exc:  # say it in one line and leave
                self.exit(return_code=1, message=f"stackspot-tui: error: {exc}")
                return
        agent_id = self._agent_id
        slug = None if agent_id else (self._slug or self.settings.slug)
        try:
            if not slug and not agent_id and not self._conversation_id:
                latest = self.backend.latest_conversation()
                if latest is not None and latest.agent_id:
                    agent_id = latest.agent_id
                else:
                    slug = latest.slug if latest else (DEMO_DEFAULT_SLUG if self.demo else None)
            if self._conversation_id:  # what the first screen shows must read cleanly
                conversation = self.backend.conversation(self._conversation_id)
                self.backend.turns(conversation.id, start=max(0, conversation.next_seq - RECENT_TURNS))
        except HistoryError as exc:  # a damaged history: one line, like the command line, and leave
            self.exit(return_code=1, message=f"stackspot-tui: error: {exc}")
            return
        self.push_screen(
            ChatScreen(
                self.backend, slug=slug, agent_id=agent_id, conversation_id=self._conversation_id, demo=self.demo
            )
        )
        self._reattach_elsewhere()
        if self._on_started is not None:
            self.call_after_refresh(self._on_started)

    @work(group="reattach", exit_on_error=False)
    async def _reattach_elsewhere(self) -> None:
        """Executions left running in other conversations complete in the background."""
        assert self.backend is not None
        try:
            pending = [(c, t) for c, t in self.backend.pending_turns() if c.id != self._conversation_id]
        except HistoryError as exc:
            self.notify(str(exc), title="Executions left running cannot be resumed", severity="error", timeout=30)
            return
        self.reattaching = {(t.conversation, t.seq) for _, t in pending}
        done = 0
        for conversation, turn in pending:
            try:
                finished = await self.backend.reattach(conversation.id, turn.seq)
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
        yield SystemCommand(
            "Choose quick command or agent", "Pick a quick command or an agent (ctrl+o)", chat.action_pick_slug
        )
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
        for fmt in chat.backend.export_formats:
            yield SystemCommand(
                f"Export conversation as {fmt.title}",
                f"Write ./<id>.{fmt.name}",
                lambda name=fmt.name: chat.export_current(name),
            )
        yield SystemCommand("Keys", "Show every key (F1)", self.action_help)

    def pick_slug(self, callback: Callable[[Pick | None], None]) -> None:
        assert self.backend is not None
        chat = self.chat
        current = None
        if chat is not None:
            current = Pick("agent", chat.agent_id) if chat.agent_id else Pick("quick_command", chat.slug or "")
        picker = TargetPicker(
            self.backend.quick_commands(),
            self.backend.recent_agents(),
            self.backend.list_agents,
            current,
            self.backend.is_agent_id,
        )
        self.push_screen(picker, callback)

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
