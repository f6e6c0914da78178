"""What every command shares: common options, settings, exit codes, errors and output."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..config import Settings, load_settings
from ..textsafe import one_line, visible

EXIT_OK = 0
EXIT_FAILED = 1  # the execution failed, or StackSpot/history/config error
EXIT_USAGE = 2  # bad arguments or input
EXIT_INTERRUPTED = 3  # stopped watching; the execution may still run (resume later)
EXIT_CANCELLED = 130

DEBUG_ENV = "STACKSPOT_TUI_DEBUG"


class UsageError(Exception):
    """Bad input from the command line or stdin."""


class CommandError(Exception):
    """A command cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class Streams:
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO = field(default_factory=lambda: sys.stdin)


#: what `set_defaults(handler=…)` holds: the parsed arguments and the streams in, an exit status out
Handler = Callable[[argparse.Namespace, Streams], int]


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser; with `intermixed=True` its options may also follow its positionals
    (`run SLUG PROMPT --json`), which plain argparse cannot do for an optional positional."""

    def __init__(self, *args: Any, intermixed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._intermixed = intermixed
        self._in_intermixed = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # parse_known_intermixed_args calls parse_known_args itself: plain parsing then.
        if not self._intermixed or self._in_intermixed:
            return super().parse_known_args(args, namespace)
        self._in_intermixed = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._in_intermixed = False


def common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand (after it, only when given)."""
    default = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="use the built-in StackSpot simulator (no credentials needed)",
    )
    group.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $XDG_CONFIG_HOME/stackspot-tui/config.toml)",
    )
    group.add_argument("--data-dir", metavar="DIR", default=default, help="where history is kept")
    group.add_argument("--realm", default=default, help="StackSpot realm (default: stackspot-freemium)")
    group.add_argument("--auth-url", metavar="URL", default=default, help="full OAuth2 token URL")
    group.add_argument("--api-url", metavar="URL", default=default, help="StackSpot AI API base URL")
    group.add_argument("--proxy", metavar="URL", default=default, help="HTTP(S) proxy URL")
    return parser


@dataclass(frozen=True)
class CommonOptions:
    """The common options, typed."""

    demo: bool = False
    config: Path | None = None
    data_dir: str | None = None
    realm: str | None = None
    auth_url: str | None = None
    api_url: str | None = None
    proxy: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CommonOptions:
        return cls(
            demo=bool(args.demo),
            config=Path(args.config).expanduser() if args.config else None,
            data_dir=args.data_dir,
            realm=args.realm,
            auth_url=args.auth_url,
            api_url=args.api_url,
            proxy=args.proxy,
        )

    def settings(self, streams: Streams, **overrides: Any) -> Settings:
        """Config file, environment and these options; warnings go to stderr."""
        values = {
            "data_dir": self.data_dir,
            "realm": self.realm,
            "auth_url": self.auth_url,
            "api_url": self.api_url,
            "proxy": self.proxy,
            **overrides,
        }
        settings = load_settings(values, config_path=self.config)
        for warning in settings.warnings:
            print(f"stackspot-tui: warning: {warning}", file=streams.stderr)
        return settings


def conversation_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--conversation", metavar="ID", help="continue this conversation (local id or prefix)")
    group.add_argument(
        "--continue",
        dest="continue_latest",
        action="store_true",
        help="continue the latest conversation of this quick command",
    )


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:  # NaN compares false with everything: it would never time out
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def print_result(text: str, stdout: TextIO) -> None:
    """The result as StackSpot sent it to a pipe; on a terminal, escape sequences are shown, not obeyed."""
    if stdout.isatty():
        text = visible(text)
    print(text, file=stdout, end="" if text.endswith("\n") else "\n")


def error(stderr: TextIO, message: str) -> None:
    print(f"stackspot-tui: error: {one_line(message, 500)}", file=stderr, flush=True)
