"""No subcommand: open the app."""

from __future__ import annotations

import argparse

from .common import CommonOptions, Streams, conversation_options


def add_options(parser: argparse.ArgumentParser) -> None:
    """The app's own options, on the top-level parser."""
    parser.add_argument("--slug", help="quick command to open the app on")
    conversation_options(parser)
    parser.set_defaults(handler=launch)


def launch(args: argparse.Namespace, streams: Streams) -> int:
    from ..runtime import build_backend
    from ..tui import AppOptions, run_app  # Textual loads only when the app opens

    common = CommonOptions.from_args(args)
    settings = common.settings(streams, slug=args.slug)
    options = AppOptions(
        demo=common.demo, slug=args.slug, conversation=args.conversation, continue_latest=args.continue_latest
    )
    return run_app(settings, options, lambda demo: build_backend(settings, demo=demo))
