"""SVG snapshots of the main, help and first-run screens (pytest-textual-snapshot)."""

from __future__ import annotations

from pathlib import Path

from test_tui import make_backend, make_service

from stackspot_tui.config import Settings
from stackspot_tui.tui.app import StackSpotApp
from stackspot_tui.tui.widgets import PromptInput

CONFIG = Path("/home/user/.config/stackspot-tui/config.toml")


def demo_app(tmp_path) -> StackSpotApp:
    settings = Settings(data_dir=tmp_path, config_path=CONFIG)
    return StackSpotApp(settings, demo=True, backend=make_backend(make_service(tmp_path)), slug="code-review")


async def steady(pilot) -> None:
    """The prompt has focus from the first frame: its blinking cursor must not decide the picture."""
    prompt = pilot.app.screen.query_one(PromptInput)
    prompt.cursor_blink = False
    while not prompt.has_focus:  # focus is set a moment after the first frame
        await pilot.pause()


def test_main_screen(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), terminal_size=(100, 30), run_before=steady)


def test_help_screen(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), press=["f1"], terminal_size=(100, 30), run_before=steady)


def test_help_screen_at_80_columns(snap_compare, tmp_path):
    """Binding ids are never cut, even at 80 columns."""
    assert snap_compare(demo_app(tmp_path), press=["f1"], terminal_size=(80, 24), run_before=steady)


def test_first_run_screen(snap_compare, tmp_path):
    app = StackSpotApp(
        Settings(data_dir=tmp_path, config_path=CONFIG),
        backend_factory=lambda demo: make_backend(make_service(tmp_path)),
    )
    assert snap_compare(app, terminal_size=(100, 30))
