"""The Textual application: picks the first screen, owns keymap, palette commands and help."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.driver import Driver
from textual.screen import Screen

from ..config import ConfigError, Settings
from ..engine import Backend, HistoryError, StackSpotError
from .chat import RECENT_TURNS, ChatScreen
from .history import ConversationsScreen
from .screens import FirstRunScreen, HelpScreen, Pick, QuitScreen, TargetPicker
from .widgets import MessageView, PromptInput

DEMO_DEFAULT_SLUG = "code-review"
#: Textual's key names that read better as what is typed
KEY_NAMES = {"escape": "esc", "question_mark": "?", "enter": "enter"}


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
        driver_class: type[Driver] | None = None,
    ) -> None:
        super().__init__(driver_class=driver_class)
        self.settings = settings
        self.demo = demo
        self.backend = backend
        self._backend_factory = backend_factory
        self._slug = slug
        self._agent_id = agent_id
        self._conversation_id = conversation_id
        self._on_started = on_started  # called once the first conversation is on screen
        self.reattaching: set[tuple[str, int]] = set()  # turns the background worker is polling
        # Keys and pastes that arrive before the first screen has focused its input, in order.
        self._held_input: list[events.Event] | None = []

    # -- input before the first screen is ready ----------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        # Until then a key would go to whatever has focus (nothing, or the transcript) and be lost.
        if self._held_input is not None and isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            self._held_input.append(event)
            return
        await super().on_event(event)

    def input_ready(self) -> None:
        """The first screen has asked for focus: deliver what was typed before, in order.

        Queued behind the focus change and behind every key already received, so those are
        held and replayed first and later keys follow them.
        """
        if self._held_input is not None:
            self.call_later(self._deliver_held_input)

    async def _deliver_held_input(self) -> None:
        held, self._held_input = self._held_input or [], None
        for event in held:
            await super().on_event(event)

    # -- start --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_keymap(dict(self.settings.keymap))
        if self.backend is None and not self.demo and not self.settings.has_credentials:
            self.push_screen(FirstRunScreen(str(self.settings.config_path)), self._first_run_choice)
            self.input_ready()
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
                self.input_ready()
                return
        if self._conversation_id is None and self._slug is None and self._agent_id is None:
            # Quit while a turn ran ("finish it later"): this start opens it, and fetches its answer.
            try:
                left_running = self.backend.fetchable_turns()
            except HistoryError:  # said once, by the background re-attach below
                left_running = []
            if left_running:
                self._conversation_id = left_running[-1][0].id
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
            pending = [(c, t) for c, t in self.backend.fetchable_turns() if c.id != self._conversation_id]
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
            executions = "1 execution" if len(pending) == 1 else f"{len(pending)} executions"
            self.notify(f"Fetched {executions} left running last time: {done} completed.")

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
        key = self.key_label
        commands = [
            ("New conversation", "Start a new conversation", "new_conversation", chat.action_new_conversation),
            ("Choose quick command or agent", "Pick a quick command or an agent", "pick_slug", chat.action_pick_slug),
            ("Copy last answer", "Copy the last answer to the clipboard", "copy_answer", chat.action_copy_answer),
            ("Copy code block", "Copy the last code block", "copy_code", chat.action_copy_code),
            (
                "Copy StackSpot conversation id",
                "Copy StackSpot's id of this conversation",
                "copy_conversation_id",
                chat.action_copy_conversation_id,
            ),
            (
                "Conversations",
                "List, search, rename, archive, delete, export",
                "conversations",
                chat.action_conversations,
            ),
            ("Earlier turns", "Show earlier turns of this conversation", "load_earlier", chat.action_load_earlier),
        ]
        for title, help_text, binding_id, action in commands:
            yield SystemCommand(title, f"{help_text} ({key(binding_id)})", action)
        for fmt in chat.backend.export_formats:
            yield SystemCommand(
                f"Export conversation as {fmt.title}",
                f"Asks where to write it (default: {self.settings.export_directory})",
                lambda name=fmt.name: chat.export_current(name),
            )
        yield SystemCommand("Keys", f"Show every key ({key('help')})", self.action_help)

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

    def help_sections(self) -> tuple[tuple[str, tuple[type[DOMNode], ...]], ...]:
        """Where keys work, and the classes whose bindings each section lists."""
        return (
            ("Prompt", (PromptInput,)),
            ("Chat", (ChatScreen,)),
            ("A focused message (Tab moves focus)", (MessageView,)),
            ("Anywhere", (type(self),)),
            (f"Conversation list ({self.key_label('conversations')})", (ConversationsScreen,)),
        )

    def _bound_keys(self, binding: Binding) -> str:
        """The keys of a binding after the user's keymap, as a person types them ("?", "esc")."""
        keys = dict(self.settings.keymap).get(binding.id or "", binding.key)
        return ", ".join(KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(","))

    def help_rows(self) -> list[tuple[str, str, str, str]]:
        """(section, keys, action, binding id) of every binding, after the user's keymap."""
        rows = []
        for section, owners in self.help_sections():
            for owner in owners:
                for binding in owner.BINDINGS:
                    if isinstance(binding, Binding) and binding.id:
                        rows.append((section, self._bound_keys(binding), binding.description, binding.id))
        rows.append(("Anywhere", "ctrl+p", "Command palette", "(textual)"))
        rows.append(("Anywhere", "tab, shift+tab", "Move focus", "(textual)"))
        return rows

    def key_label(self, binding_id: str) -> str:
        """The first key bound to ``binding_id`` now, for hints ("ctrl+e loads them")."""
        for owner in (PromptInput, ChatScreen, MessageView, type(self), ConversationsScreen):
            for binding in owner.BINDINGS:
                if isinstance(binding, Binding) and binding.id == binding_id:
                    return self._bound_keys(binding).split(",")[0].strip()
        return binding_id

    # -- quitting ------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        chat = self.chat
        if chat is not None and chat.running and not isinstance(self.screen, QuitScreen):
            self.push_screen(QuitScreen(agent=chat.agent_id is not None, demo=self.demo), self._quit_choice)
            return
        self.exit()

    def _quit_choice(self, quit_now: bool | None) -> None:
        if quit_now:
            # The turn stays as it is, re-attachable: the next start (or `resume`) fetches it.
            self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_rows()))
