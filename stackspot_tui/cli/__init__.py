"""Command line: the app (no subcommand), `run`/`resume`, the history commands and `simulate`.

Each module declares its commands' arguments and handler (`set_defaults(handler=…)`); `main`
parses, calls the handler, and turns every expected error into one line and an exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from .. import __version__
from ..api import StackSpotError
from ..config import ConfigError, SettingError
from ..export import ExportWriteError
from ..store.errors import HistoryError, HistoryLocationError
from . import app, history, run, simulate
from .common import (
    DEBUG_ENV,
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_USAGE,
    CommandError,
    CommandParser,
    Handler,
    Streams,
    UsageError,
    common_options,
    error,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackspot-tui",
        description="Terminal chat client for StackSpot AI quick commands.",
        parents=[common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    app.add_options(parser)
    sub = parser.add_subparsers(metavar="COMMAND", parser_class=CommandParser)
    common = common_options(suppress=True)
    for commands in (run, history, simulate):
        commands.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    streams = Streams(stdout or sys.stdout, stderr or sys.stderr)
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    handler: Handler = args.handler
    try:
        return handler(args, streams)
    except (UsageError, SettingError, HistoryLocationError) as exc:  # fix the command or the setting
        error(streams.stderr, str(exc))
        return EXIT_USAGE
    except (StackSpotError, HistoryError, ConfigError, CommandError, ExportWriteError) as exc:
        error(streams.stderr, str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        error(streams.stderr, "cancelled")
        return EXIT_CANCELLED
    except Exception as exc:  # last resort: one line, traceback only on request
        if os.environ.get(DEBUG_ENV):
            raise
        error(streams.stderr, f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for details)")
        return EXIT_FAILED
