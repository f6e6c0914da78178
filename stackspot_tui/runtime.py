"""Wiring: settings -> API client (real or in-process simulator) -> store -> service."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .api import StackSpotClient
from .config import Settings
from .engine import ConversationService
from .store import HistoryStore

DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
DEMO_URL = "https://simulator.invalid"  # never resolved: requests go to the in-process transport
SIM_DURATION_ENV = "STACKSPOT_SIM_DURATION"


def history_root(settings: Settings, *, demo: bool) -> Path:
    # Demo conversations live apart: their ids mean nothing to the real StackSpot.
    return settings.history_dir / ("demo" if demo else "history")


def sim_duration(default: float = 3.0) -> float:
    try:
        value = float(os.environ.get(SIM_DURATION_ENV, default))
    except ValueError:
        return default
    return value if value > 0 else default


def build_client(settings: Settings, *, demo: bool) -> StackSpotClient:
    if not demo:
        return StackSpotClient.from_settings(settings)
    from .sim import Simulator

    simulator = Simulator(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, duration=sim_duration())
    demo_settings = replace(
        settings,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        api_url=DEMO_URL,
        auth_url=f"{DEMO_URL}/{settings.realm}/oidc/oauth/token",
        proxy=None,
    )
    return StackSpotClient.from_settings(demo_settings, transport=simulator.transport())


def open_store(settings: Settings, *, demo: bool) -> HistoryStore:
    return HistoryStore(history_root(settings, demo=demo))


def build_service(settings: Settings, *, demo: bool, store: HistoryStore | None = None) -> ConversationService:
    store = store or open_store(settings, demo=demo)
    return ConversationService(build_client(settings, demo=demo), store)
