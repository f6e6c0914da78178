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


async def steady_cursor(pilot) -> None:
    """The prompt's cursor blinks on a timer: under load a shot could catch it off."""
    pilot.app.screen.query_one(PromptInput).cursor_blink = False
    await pilot.pause()


def test_main_screen(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), terminal_size=(100, 30), run_before=steady_cursor)


def test_help_screen(snap_compare, tmp_path):
    assert snap_compare(demo_app(tmp_path), press=["f1"], terminal_size=(100, 30))


def test_first_run_screen(snap_compare, tmp_path):
    app = StackSpotApp(
        Settings(data_dir=tmp_path, config_path=CONFIG),
        backend_factory=lambda demo: make_backend(make_service(tmp_path)),
    )
    assert snap_compare(app, terminal_size=(100, 30))
