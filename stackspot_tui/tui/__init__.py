"""Textual UI. Talks to the engine and the store objects, never to httpx or TinyDB directly."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings


@dataclass(frozen=True)
class AppOptions:
    """What the command line asks of the app."""

    demo: bool = False
    slug: str | None = None
    conversation: str | None = None  # local id or unique prefix to open
    continue_latest: bool = False  # open the latest conversation (of `slug`, if given)


def run_app(settings: Settings, options: AppOptions) -> int:
    from ..runtime import build_service, open_store
    from .app import StackSpotApp

    conversation_id = None
    if options.demo or settings.has_credentials:
        # Resolve ids before the screen starts so a bad id is a one-line CLI error.
        store = open_store(settings, demo=options.demo)
        if options.conversation:
            conversation_id = store.resolve_id(options.conversation)
        elif options.continue_latest:
            latest = store.latest_conversation(options.slug)
            conversation_id = latest.id if latest else None
    app = StackSpotApp(
        settings,
        demo=options.demo,
        service_factory=lambda demo_mode: build_service(settings, demo=demo_mode),
        slug=options.slug,
        conversation_id=conversation_id,
    )
    app.run()
    return app.return_code or 0
