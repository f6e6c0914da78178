"""Secondary screens and dialogs: first run, help, quick-command/agent picker, confirm, one line of text."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from ..config import ENV_VARS
from ..engine import slug_problem
from ..textsafe import one_line, visible
from ..wording import counted
from .widgets import KeyFooter


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
        yield KeyFooter()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class HelpScreen(ModalScreen[None]):
    """Every key by where it works, read from the live bindings so it stays true after keymap overrides."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100%; max-width: 110; max-height: 90%; height: auto;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss_help", "Close", id="help_close")]

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self.rows = rows  # (section, keys, action, binding id)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            sections: dict[str, list[tuple[str, str, str]]] = {}
            for section, keys, description, binding_id in self.rows:
                sections.setdefault(section, []).append((keys, description, binding_id))
            id_width = max(len(binding_id) for *_, binding_id in self.rows)
            for index, (section, rows) in enumerate(sections.items()):
                # Text everywhere: a header or a key such as "[" is never read as markup.
                table = Table(
                    title=Text(section, style="bold"),
                    title_justify="left",
                    expand=True,
                    show_edge=False,
                    show_header=index == 0,
                )
                table.add_column(Text("Key"), style="bold", ratio=2)
                table.add_column(Text("Action"), ratio=3)
                table.add_column(Text("Binding id"), style="dim", no_wrap=True, min_width=id_width)
                for keys, description, binding_id in rows:
                    table.add_row(Text(keys), Text(description), Text(binding_id))
                yield Static(table)
            note = Text(
                '\nChange a key by its binding id in config.toml:\n  [keymap]\n  send = "ctrl+s"\n'
                "New line in the prompt: ctrl+j (most terminals send shift+enter as enter). "
                "? opens this help wherever it does not type a character.",
                style="dim",
            )
            yield Static(note)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class QuitScreen(ModalScreen[bool]):
    """Quitting while a turn runs. A quick command goes on at StackSpot and the next start
    fetches it; an agent's answer stops, and what arrived is kept."""

    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    QuitScreen > Vertical { width: 70; max-width: 100%; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    QuitScreen Horizontal { height: auto; margin-top: 1; align-horizontal: center; }
    QuitScreen Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "keep_watching", "Keep watching", id="quit_keep_watching")]

    def __init__(self, *, agent: bool = False, demo: bool = False) -> None:
        super().__init__()
        self.agent = agent
        self.demo = demo

    def compose(self) -> ComposeResult:
        if self.agent:
            text = "An answer is still arriving.\n\nQuitting stops it; what arrived so far is kept in the history."
            quit_label, stay_label = "Quit, keep what arrived", "Keep reading (esc)"
        else:
            text = (
                "A turn is still running on StackSpot.\n\nQuit now and its answer is fetched the next time "
                "you open stackspot-tui (or run `stackspot-tui resume`). Nothing is sent twice."
            )
            quit_label, stay_label = "Quit, finish it later", "Keep watching (esc)"
            if self.demo:
                text = (
                    "A turn is still running in the demo's simulator.\n\nThe simulator stops with the app: "
                    "quit now and this turn's answer is lost (with StackSpot it would be fetched next time)."
                )
                quit_label = "Quit anyway"
        with Vertical():
            yield Static(Text(text))
            with Horizontal():
                yield Button(quit_label, variant="primary", id="quit")
                yield Button(stay_label, id="stay")

    def on_mount(self) -> None:
        self.query_one("#quit", Button).focus()  # Enter quits

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")

    def action_keep_watching(self) -> None:
        self.dismiss(False)


@dataclass(frozen=True)
class Pick:
    """What the picker chose: a quick command (``kind`` "quick_command") or an agent ("agent")."""

    kind: str
    id: str


class TargetPicker(ModalScreen[Pick | None]):
    """Pick a quick command or an agent: typed, recently used, known, or listed by StackSpot.

    The agent list comes from an optional service: it loads in the background, and when it
    fails the picker says so and the agent id can still be typed.

    The text fields keep the focus: typing always filters, Up/Down move through the choices,
    Enter takes the highlighted choice, or what was typed when none is highlighted.
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
        Binding("down", "move(1)", "Next choice", show=False, id="picker_next"),
        Binding("up", "move(-1)", "Previous choice", show=False, id="picker_previous"),
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
            choices = OptionList(*self._options(), id="choices")
            choices.can_focus = False  # a click still picks; keys stay in the fields
            yield choices
            yield Static(Text(self.listing), id="agents-status")

    def on_mount(self) -> None:
        self.query_one("#slug" if not self.current or self.current.kind != "agent" else "#agent", Input).focus()
        self.query_one(OptionList).highlighted = None  # Enter takes the typed text until an arrow moves
        self._load_agents()

    @work(exclusive=True, group="agent-list", exit_on_error=False)
    async def _load_agents(self) -> None:
        listed, failure = await self._list_agents()
        known = dict(self.agents)
        for agent_id, name in listed:
            known[agent_id] = name or known.get(agent_id, "")
        self.agents = list(known.items())
        if failure is None:
            self.listing = f"{counted(len(listed), 'agent')} listed by StackSpot"
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

    def _refresh_options(self, *, keep_highlight: bool = True) -> None:
        choices = self.query_one(OptionList)
        index = choices.highlighted
        chosen = choices.get_option_at_index(index).id if keep_highlight and index is not None else None
        choices.clear_options()
        choices.add_options(self._options())
        choices.highlighted = None
        if chosen is not None:
            with contextlib.suppress(OptionDoesNotExist):
                choices.highlighted = choices.get_option_index(chosen)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self._refresh_options(keep_highlight=False)  # Enter takes what was typed, until an arrow picks

    def on_input_submitted(self, event: Input.Submitted) -> None:
        choices = self.query_one(OptionList)
        if choices.highlighted is not None:
            self._pick(choices.get_option_at_index(choices.highlighted).id)
            return
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
        self._pick(event.option.id)  # a click

    def _pick(self, option_id: str | None) -> None:
        kind, _, value = (option_id or "").partition(":")
        self.dismiss(Pick("agent" if kind == "a" else "quick_command", value))

    def action_move(self, step: int) -> None:
        choices = self.query_one(OptionList)
        if not choices.option_count:
            return
        if choices.highlighted is None:
            choices.highlighted = 0 if step > 0 else choices.option_count - 1
        else:
            choices.highlighted = (choices.highlighted + step) % choices.option_count

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

    def __init__(self, question: str, *, yes: str = "Delete (y)", no: str = "Keep (n)") -> None:
        super().__init__()
        self.question = question
        self.labels = (yes, no)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(visible(self.question)))
            with Horizontal():
                yield Button(self.labels[0], variant="error", id="yes")
                yield Button(self.labels[1], id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # Enter keeps: the safe answer

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


class ExportScreen(ModalScreen[Path | None]):
    """Where to write an export: the suggested file (in the configured folder) is there to edit.

    Dismisses with the file to write: ``~`` expanded, a relative path taken from the current
    directory, a folder completed with the suggested name. An existing file is refused here.
    """

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    ExportScreen > Vertical { width: 90; max-width: 100%; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    ExportScreen #problem { color: $error; height: auto; }
    ExportScreen .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export_cancel")]

    def __init__(self, what: str, suggested: Path) -> None:
        super().__init__()
        self.what = what
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Export {visible(self.what)} to:", style="bold"))
            yield Input(value=str(self.suggested), id="path")
            yield Static(Text("Enter writes it (never over an existing file) · Esc cancels"), classes="hint")
            yield Static("", id="problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        if not typed:
            return
        path = Path(typed).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.is_dir():
            path = path / self.suggested.name
        if path.exists():
            self.query_one("#problem", Static).update(Text(f"{path} exists: choose another name."))
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
