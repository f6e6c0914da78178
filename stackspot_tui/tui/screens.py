"""Secondary screens and dialogs: first run, help, quick-command/agent picker, confirm, one line of text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from ..config import ENV_VARS
from ..engine import slug_problem
from ..textsafe import one_line, visible


class FirstRunScreen(Screen[str]):
    """No credentials: say what is missing and offer the simulator. Dismisses with "demo" or "quit"."""

    DEFAULT_CSS = """
    FirstRunScreen { align: center middle; }
    FirstRunScreen > Vertical { width: 84; height: auto; border: thick $primary; padding: 1 2; }
    FirstRunScreen #buttons { height: auto; margin-top: 1; align-horizontal: center; }
    FirstRunScreen Button { margin: 0 2; }
    """
    BINDINGS = [
        Binding("d", "choose('demo')", "Demo mode", id="first_run_demo"),
        Binding("q", "choose('quit')", "Quit", id="first_run_quit"),
    ]

    def __init__(self, config_path: str) -> None:
        super().__init__()
        self.config_path = config_path

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Welcome to stackspot-tui\n\n", style="bold")
        text.append("No StackSpot credentials were found. To talk to StackSpot AI, either set\n\n")
        text.append(f"  export {ENV_VARS['client_id']}=...\n  export {ENV_VARS['client_secret']}=...\n", style="bold")
        text.append(f"  export {ENV_VARS['realm']}=...   (enterprise accounts; default stackspot-freemium)\n\n")
        text.append("or put client_id and client_secret in the config file\n\n")
        text.append(f"  {visible(self.config_path)}\n\n", style="bold")
        text.append("(chmod 600 it). Or try everything now against the built-in simulator.")
        with Vertical():
            yield Static(text, id="explain")
            with Horizontal(id="buttons"):
                yield Button("Continue in demo mode (d)", variant="primary", id="demo")
                yield Button("Quit (q)", id="quit")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class HelpScreen(ModalScreen[None]):
    """Every key, read from the live bindings so it stays true after keymap overrides."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; max-height: 90%; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss_help", "Close", id="help_close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title="Keys", expand=True, show_edge=False)
        table.add_column(Text("Key"), style="bold", no_wrap=True)
        table.add_column(Text("Action"))
        table.add_column(Text("Binding id (for [keymap])"), style="dim")  # Text: headers are markup otherwise
        for keys, description, binding_id in self.rows:
            table.add_row(Text(keys), Text(description), Text(binding_id))
        note = Text(
            '\nOverride any key in config.toml:\n  [keymap]\n  send = "ctrl+s"\n'
            "Newline in the prompt: ctrl+j (most terminals send shift+enter as enter).",
            style="dim",
        )
        with VerticalScroll():
            yield Static(table)
            yield Static(note)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class Pick:
    """What the picker chose: a quick command (``kind`` "quick_command") or an agent ("agent")."""

    kind: str
    id: str


class TargetPicker(ModalScreen[Pick | None]):
    """Pick a quick command or an agent: typed, recently used, known, or listed by StackSpot.

    The agent list comes from an optional service: it loads in the background, and when it
    fails the picker says so and the agent id can still be typed.
    """

    DEFAULT_CSS = """
    TargetPicker { align: center middle; }
    TargetPicker > Vertical { width: 76; height: auto; max-height: 90%; border: thick $primary; background: $surface; padding: 1 2; }
    TargetPicker OptionList { height: auto; max-height: 14; margin-top: 1; }
    TargetPicker .label { margin-top: 1; }
    TargetPicker #agents-status { color: $text-muted; height: auto; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker_cancel"),
        Binding("down", "focus_choices", "Choices", show=False, id="picker_choices"),
    ]

    def __init__(
        self,
        quick_commands: list[tuple[str, str]],
        recent_agents: list[tuple[str, str]],
        list_agents: Callable[[], Awaitable[tuple[list[tuple[str, str]], str | None]]],
        current: Pick | None,
        is_agent_id: Callable[[str], bool],
    ) -> None:
        super().__init__()
        self.quick_commands = quick_commands
        self.agents = list(recent_agents)
        self._list_agents = list_agents
        self._is_agent_id = is_agent_id
        self.current = current
        self.needle = ""
        self.listing: str = "loading StackSpot's agent list…"

    def compose(self) -> ComposeResult:
        current = self.current
        with Vertical():
            yield Static(Text("Quick command slug", style="bold"))
            yield Input(
                value=current.id if current and current.kind == "quick_command" else "",
                placeholder="e.g. code-review",
                id="slug",
            )
            yield Static(Text("or agent id", style="bold"), classes="label")
            yield Input(
                value=current.id if current and current.kind == "agent" else "",
                placeholder="e.g. 01J9… (Enter chats with it)",
                id="agent",
            )
            yield OptionList(*self._options(), id="choices")
            yield Static(Text(self.listing), id="agents-status")

    def on_mount(self) -> None:
        self.query_one("#slug" if not self.current or self.current.kind != "agent" else "#agent", Input).focus()
        self._load_agents()

    @work(exclusive=True, group="agent-list", exit_on_error=False)
    async def _load_agents(self) -> None:
        listed, failure = await self._list_agents()
        known = dict(self.agents)
        for agent_id, name in listed:
            known[agent_id] = name or known.get(agent_id, "")
        self.agents = list(known.items())
        if failure is None:
            self.listing = f"{len(listed)} agent(s) listed by StackSpot"
        else:
            self.listing = f"agent list unavailable ({one_line(failure, 90)}): type an agent id above"
        self.query_one("#agents-status", Static).update(Text(self.listing))
        self._refresh_options()

    def _options(self) -> list[Option]:
        needle = self.needle.lower()
        options = [
            Option(Text.assemble((visible(slug), "bold"), f"  {visible(about)}" if about else ""), id=f"q:{slug}")
            for slug, about in self.quick_commands
            if needle in slug.lower()
        ]
        options += [
            Option(
                Text.assemble(("agent ", "dim"), (visible(agent_id), "bold"), f"  {visible(name)}" if name else ""),
                id=f"a:{agent_id}",
            )
            for agent_id, name in self.agents
            if needle in agent_id.lower() or needle in name.lower()
        ]
        return options

    def _refresh_options(self) -> None:
        choices = self.query_one(OptionList)
        choices.clear_options()
        choices.add_options(self._options())

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self._refresh_options()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if event.input.id == "agent":
            if not self._is_agent_id(text):
                self.notify(f"{visible(text)!r} is not an agent id (letters, digits, _ . : -)", severity="error")
                return
            self.dismiss(Pick("agent", text))
        else:
            problem = slug_problem(text)
            if problem:  # StackSpot would refuse it: say why here, not after a send
                self.notify(visible(problem), severity="error")
                return
            self.dismiss(Pick("quick_command", text))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, _, value = (event.option.id or "").partition(":")
        self.dismiss(Pick("agent" if kind == "a" else "quick_command", value))

    def action_focus_choices(self) -> None:
        choices = self.query_one(OptionList)
        if choices.option_count:
            choices.focus()
            choices.highlighted = 0

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 64; height: auto; border: thick $error; background: $surface; padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; align-horizontal: center; }
    ConfirmScreen Button { margin: 0 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(visible(self.question)))
            with Horizontal():
                yield Button("Delete (y)", variant="error", id="yes")
                yield Button("Keep (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TextPrompt(ModalScreen[str | None]):
    """One line of text (a new title)."""

    DEFAULT_CSS = """
    TextPrompt { align: center middle; }
    TextPrompt > Vertical { width: 70; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="text_prompt_cancel")]

    def __init__(self, label: str, value: str) -> None:
        super().__init__()
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.label, style="bold"))
            yield Input(value=self.value, id="value")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
