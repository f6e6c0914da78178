"""Textual UI. Talks to the engine's `Backend` only: never to the client, the store or the simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Settings
from ..engine import Backend

#: builds the backend, for demo mode (True) or StackSpot (False)
BackendFactory = Callable[[bool], Backend]


@dataclass(frozen=True)
class AppOptions:
    """What the command line asks of the app."""

    demo: bool = False
    slug: str | None = None
    agent: str | None = None  # agent id to chat with, instead of a quick command
    conversation: str | None = None  # local id or unique prefix to open
    continue_latest: bool = False  # open the latest conversation (of `slug`, if given)


def run_app(settings: Settings, options: AppOptions, open_backend: BackendFactory) -> int:
    """Run the app in this terminal until it quits; its exit status."""
    import gc
    import sys

    from .app import StackSpotApp

    driver_class = None
    if sys.platform != "win32":
        from .typeahead import TypeAheadDriver

        driver_class = TypeAheadDriver

    backend = None
    conversation_id = None
    if options.demo or settings.has_credentials:
        # Open the history and resolve ids before the screen starts: a bad id is a one-line error.
        backend = open_backend(options.demo)
        if options.conversation:
            conversation_id = backend.resolve_id(options.conversation)
        elif options.continue_latest:
            latest = backend.latest_conversation(options.slug, agent_id=options.agent)
            conversation_id = latest.id if latest else None
    app = StackSpotApp(
        settings,
        demo=options.demo,
        backend=backend,
        backend_factory=open_backend,
        slug=options.slug,
        agent_id=options.agent,
        conversation_id=conversation_id,
        # What start-up builds (Textual, the screen, parsed history) lives as long as the app:
        # keep it out of the cyclic GC, whose full passes otherwise stall the UI ~150 ms each.
        # Only in the real program: in tests it would freeze every app the process ever ran.
        on_started=gc.freeze,
        driver_class=driver_class,
    )
    # Everything imported and built so far lives as long as the process: out of the cyclic GC
    # before the screen starts, so start-up's collections do not walk it (a full one cost ~35 ms
    # of the first frame).
    gc.freeze()
    app.run()
    return app.return_code or 0
