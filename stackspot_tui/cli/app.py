"""No subcommand: open the app."""

from __future__ import annotations

import argparse

from ..api.names import valid_agent_id
from .common import CommonOptions, Streams, UsageError, conversation_options


def add_options(parser: argparse.ArgumentParser) -> None:
    """The app's own options, on the top-level parser."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--slug", help="quick command to open the app on")
    target.add_argument("--agent", metavar="AGENT_ID", help="agent to open the app on")
    conversation_options(parser)
    parser.set_defaults(handler=launch)


def launch(args: argparse.Namespace, streams: Streams) -> int:
    from ..runtime import build_backend
    from ..tui import AppOptions, run_app  # Textual loads only when the app opens

    common = CommonOptions.from_args(args)
    if args.agent is not None and not valid_agent_id(args.agent):
        raise UsageError(f"--agent: {args.agent!r} is not an agent id (letters, digits, _ . : -)")
    settings = common.settings(streams, slug=args.slug)
    options = AppOptions(
        demo=common.demo,
        slug=args.slug,
        agent=args.agent,
        conversation=args.conversation,
        continue_latest=args.continue_latest,
    )
    return run_app(settings, options, lambda demo: build_backend(settings, demo=demo))
