"""Wiring: settings -> API client (real or in-process simulator) -> store -> service -> the app's backend."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .store import HistoryStore

if TYPE_CHECKING:  # the client and the engine load when a service is built: history commands need neither
    from .api import StackSpotClient
    from .engine import Backend, ConversationService

DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
DEMO_URL = "https://simulator.invalid"  # never resolved: requests go to the in-process transport
SIM_DURATION_ENV = "STACKSPOT_SIM_DURATION"
SIM_PROGRESS_ENV = "STACKSPOT_SIM_PROGRESS"


def history_root(settings: Settings, *, demo: bool) -> Path:
    # Demo conversations live apart: their ids mean nothing to the real StackSpot.
    return settings.history_dir / ("demo" if demo else "history")


def sim_duration(default: float = 3.0) -> float:
    try:
        value = float(os.environ.get(SIM_DURATION_ENV, default))
    except ValueError:
        return default
    return value if value > 0 else default


def sim_progress(default: str = "steps") -> str:
    """The simulator's progress mode from the environment (for `--demo` and `simulate`)."""
    from .sim.quick import PROGRESS_MODES

    value = os.environ.get(SIM_PROGRESS_ENV, default).strip().lower()
    return value if value in PROGRESS_MODES else default


def demo_settings(settings: Settings) -> Settings:
    """Settings pointing every StackSpot service at the in-process simulator."""
    return replace(
        settings,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        api_url=DEMO_URL,
        agent_api_url=DEMO_URL,
        agent_tools_url=DEMO_URL,
        auth_url=f"{DEMO_URL}/{settings.realm}/oidc/oauth/token",
        proxy=None,
    )


def build_client(settings: Settings, *, demo: bool) -> StackSpotClient:
    from .api import StackSpotClient
    from .endpoints import check_endpoints, needs_tls

    if not demo:
        check_endpoints(settings)  # malformed or clear-text URLs and proxies: refused before sending
        return StackSpotClient.from_settings(settings, tls=needs_tls(settings))
    from .sim import Simulator

    simulator = Simulator(
        client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, duration=sim_duration(), progress=sim_progress()
    )
    return StackSpotClient.from_settings(demo_settings(settings), transport=simulator.transport(), tls=False)


def open_store(settings: Settings, *, demo: bool) -> HistoryStore:
    # A long chore (converting an older history, indexing a large one for search) is said
    # before it starts, on stderr: before the app takes the screen.
    return HistoryStore(
        history_root(settings, demo=demo), notice=lambda text: print(f"stackspot-tui: {text}", file=sys.stderr)
    )


def build_service(settings: Settings, *, demo: bool, store: HistoryStore | None = None) -> ConversationService:
    from .api import AgentClient
    from .engine import ConversationService

    store = store or open_store(settings, demo=demo)
    client = build_client(settings, demo=demo)
    agents = AgentClient.from_settings(demo_settings(settings) if demo else settings, client)
    return ConversationService(client, store, agents=agents, created_warning=settings.created_warning)


def build_backend(settings: Settings, *, demo: bool) -> Backend:
    """What the app works with; in demo mode it also offers the simulator's quick commands."""
    from .engine import Backend

    catalogue = None
    if demo:
        from .sim import quick_commands

        catalogue = quick_commands()
    return Backend(build_service(settings, demo=demo), catalogue=catalogue)
