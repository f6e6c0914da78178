"""Textual UI. Talks to the engine and the store objects, never to httpx or TinyDB directly."""

from __future__ import annotations


def run_app(settings, args) -> int:
    from ..runtime import build_service, open_store
    from .app import StackSpotApp

    demo = bool(getattr(args, "demo", False))
    conversation_id = None
    if demo or settings.has_credentials:
        # Resolve ids before the screen starts so a bad id is a one-line CLI error.
        store = open_store(settings, demo=demo)
        if getattr(args, "conversation", None):
            conversation_id = store.resolve_id(args.conversation)
        elif getattr(args, "continue_latest", False):
            latest = store.latest_conversation(getattr(args, "slug", None))
            conversation_id = latest.id if latest else None
    app = StackSpotApp(
        settings,
        demo=demo,
        service_factory=lambda demo_mode: build_service(settings, demo=demo_mode),
        slug=getattr(args, "slug", None),
        conversation_id=conversation_id,
    )
    app.run()
    return app.return_code or 0
