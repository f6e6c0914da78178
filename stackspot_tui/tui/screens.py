"""Secondary screens and dialogs: first run, help, quick-command picker, confirm, one line of text."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from ..config import ENV_VARS
from ..textsafe import visible


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


class SlugPicker(ModalScreen[str | None]):
    """Type a quick-command slug or pick a recent/known one."""

    DEFAULT_CSS = """
    SlugPicker { align: center middle; }
    SlugPicker > Vertical { width: 70; height: auto; max-height: 80%; border: thick $primary; background: $surface; padding: 1 2; }
    SlugPicker OptionList { height: auto; max-height: 16; margin-top: 1; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker_cancel"),
        Binding("down", "focus_choices", "Choices", show=False, id="picker_choices"),
    ]

    def __init__(self, suggestions: list[tuple[str, str]], current: str | None) -> None:
        super().__init__()
        self.suggestions = suggestions
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Quick command slug", style="bold"))
            yield Input(value=self.current or "", placeholder="e.g. code-review", id="slug")
            yield OptionList(*self._options(""), id="choices")

    def _options(self, needle: str) -> list[Option]:
        return [
            Option(Text.assemble((visible(slug), "bold"), f"  {visible(about)}" if about else ""), id=slug)
            for slug, about in self.suggestions
            if needle.lower() in slug.lower()
        ]

    def on_input_changed(self, event: Input.Changed) -> None:
        choices = self.query_one(OptionList)
        choices.clear_options()
        choices.add_options(self._options(event.value.strip()))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        slug = event.value.strip()
        if slug:
            self.dismiss(slug)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

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
