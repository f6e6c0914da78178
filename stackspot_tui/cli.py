"""Command line: the TUI (no subcommand), headless `run`, and `simulate`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from .api import StackSpotError
from .config import ConfigError, Settings, load_settings
from .history_cli import HISTORY_COMMANDS, CommandError, run_history_command, run_repair
from .store.errors import HistoryError
from .textsafe import one_line, visible

EXIT_OK = 0
EXIT_FAILED = 1  # the execution failed, or StackSpot/history/config error
EXIT_USAGE = 2  # bad arguments or input
EXIT_INTERRUPTED = 3  # stopped watching; the execution may still run (resume later)
EXIT_CANCELLED = 130

DEBUG_ENV = "STACKSPOT_TUI_DEBUG"


class UsageError(Exception):
    """Bad input from the command line or stdin."""


# -- parser ------------------------------------------------------------------------------


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand."""
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackspot-tui",
        description="Terminal chat client for StackSpot AI quick commands.",
        parents=[_common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--slug", help="quick command to open the app on")
    _conversation_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options(suppress=True)

    run = sub.add_parser(
        "run",
        parents=[common],
        help="run one quick command turn headless",
        description="Run a quick command and print its result. Progress goes to stderr.",
    )
    run.add_argument("slug", metavar="SLUG", help="quick command slug")
    run.add_argument(
        "prompt", metavar="PROMPT", nargs="?", help="the prompt; '-' or absent with piped stdin reads stdin"
    )
    run.add_argument("--json-input", action="store_true", help="send the prompt as a JSON object")
    _conversation_options(run)
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the result text")
    run.add_argument("-v", "--verbose", action="store_true", help="progress on stderr even when it is not a terminal")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    run.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="give up watching after this long")
    parser.set_defaults(_run_parser=run)

    from .history_cli import add_parsers

    add_parsers(sub, common)

    sim = sub.add_parser(
        "simulate",
        help="serve the StackSpot simulator on loopback",
        description="Serve a StackSpot stand-in on a loopback port, for trying and testing.",
    )
    sim.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    sim.add_argument("--duration", type=_positive_float, default=None, help="seconds an execution takes (default 3)")
    sim.add_argument("--client-id", default="demo-client", help="accepted client id (default demo-client)")
    sim.add_argument("--client-secret", default="demo-secret", help="accepted client secret (default demo-secret)")
    sim.add_argument("--token-ttl", type=_positive_float, default=1199.0, help="token lifetime in seconds")
    return parser


def _conversation_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--conversation", metavar="ID", help="continue this conversation (local id or prefix)")
    group.add_argument(
        "--continue",
        dest="continue_latest",
        action="store_true",
        help="continue the latest conversation of this quick command",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


# Top-level options that take a value: their value is never the subcommand.
_VALUE_OPTIONS = {"--config", "--data-dir", "--realm", "--auth-url", "--api-url", "--proxy", "--slug", "--conversation"}


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse, letting `run` options come after PROMPT (argparse alone cannot on Python 3.11)."""
    argv = list(argv)
    index, skip = None, False
    for i, token in enumerate(argv):
        if skip:
            skip = False
        elif token in _VALUE_OPTIONS:
            skip = True
        elif token == "--" or not token.startswith("-"):
            index = i if token == "run" else None
            break
    if index is None:
        return parser.parse_args(argv)
    namespace = parser.parse_args(argv[:index])
    namespace.command = "run"
    return parser.get_default("_run_parser").parse_intermixed_args(argv[index + 1 :], namespace=namespace)


def settings_from_args(args: argparse.Namespace) -> Settings:
    from pathlib import Path

    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "realm": getattr(args, "realm", None),
        "auth_url": getattr(args, "auth_url", None),
        "api_url": getattr(args, "api_url", None),
        "proxy": getattr(args, "proxy", None),
        "execution_timeout": getattr(args, "timeout", None),
        "slug": getattr(args, "slug", None) if getattr(args, "command", None) is None else None,
    }
    config = getattr(args, "config", None)
    return load_settings(overrides, config_path=Path(config).expanduser() if config else None)


# -- run -------------------------------------------------------------------------------------


def read_prompt(args: argparse.Namespace, stdin: TextIO) -> tuple[str, str | dict]:
    """The prompt text and the input_data to send."""
    if args.prompt is None or args.prompt == "-":
        if args.prompt is None and stdin.isatty():
            raise UsageError("no prompt: give PROMPT or pipe text on stdin")
        raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
        try:
            prompt = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"stdin is not UTF-8 text (invalid byte at position {exc.start})") from None
    else:
        prompt = args.prompt
    if "\x00" in prompt:
        raise UsageError("the prompt holds NUL bytes: is this binary data?")
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    if not args.json_input:
        return prompt, prompt
    try:
        data = json.loads(prompt)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--json-input: the prompt is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UsageError("--json-input: the prompt must be a JSON object")
    return prompt, data


def _show_progress(args: argparse.Namespace, stderr: TextIO) -> bool:
    if args.quiet:
        return False
    return args.verbose or stderr.isatty()


async def _run(args: argparse.Namespace, settings: Settings, stdout: TextIO, stderr: TextIO) -> int:
    from .api.models import result_to_text
    from .progress import progress_lines
    from .runtime import build_service

    prompt, input_data = read_prompt(args, sys.stdin)
    service = build_service(settings, demo=args.demo)
    async with service.client:
        store = service.store
        if args.conversation:
            conversation = store.get_conversation(store.resolve_id(args.conversation))
        elif args.continue_latest:
            conversation = service.latest_or_new(args.slug)
        else:
            conversation = service.new_conversation(args.slug)
        show = _show_progress(args, stderr)

        def on_event(event) -> None:
            if show:
                for line in progress_lines(event):
                    print(line.text, file=stderr, flush=True)

        turn = await service.send(conversation.id, prompt, input_data=input_data, slug=args.slug, on_event=on_event)
        conversation = store.get_conversation(conversation.id)
    if args.json:
        document: dict[str, Any] = {
            "status": turn.status,
            "result": turn.result,
            "error": turn.error,
            "conversation_id": conversation.conversation_id,
            "execution_id": turn.execution_id,
            "conversation": conversation.id,
            "turn": turn.seq,
        }
        print(json.dumps(document, ensure_ascii=False), file=stdout)
    elif turn.status == "COMPLETED":
        _print_result(result_to_text(turn.result), stdout)
    if turn.status == "COMPLETED":
        return EXIT_OK
    if not args.json:
        _error(stderr, turn.error or turn.status)
    return EXIT_INTERRUPTED if turn.needs_reattach else EXIT_FAILED


# -- resume ------------------------------------------------------------------------------------


async def _resume(args: argparse.Namespace, settings: Settings, stdout: TextIO, stderr: TextIO) -> int:
    from .api.models import result_to_text
    from .runtime import build_service, open_store

    store = open_store(settings, demo=args.demo)
    only = store.resolve_id(args.id) if args.id else None
    pending = [(c, t) for c, t in store.pending_turns() if only is None or c.id == only]
    if not pending:
        print("nothing to resume: no execution was left running", file=stderr)
        return EXIT_OK
    service = build_service(settings, demo=args.demo, store=store)
    worst = EXIT_OK
    async with service.client:
        for conversation, turn in pending:
            print(f"resuming {conversation.id} turn {turn.seq + 1} (execution {turn.execution_id})", file=stderr)
            turn = await service.reattach(conversation.id, turn.seq)
            if args.json:
                print(
                    json.dumps(
                        {
                            "conversation": conversation.id,
                            "turn": turn.seq,
                            "execution_id": turn.execution_id,
                            "status": turn.status,
                            "result": turn.result,
                            "error": turn.error,
                        },
                        ensure_ascii=False,
                    ),
                    file=stdout,
                )
            elif turn.status == "COMPLETED":
                _print_result(result_to_text(turn.result), stdout)
            if turn.status != "COMPLETED":
                if not args.json:
                    _error(stderr, f"{conversation.id} turn {turn.seq + 1}: {turn.error or turn.status}")
                worst = max(worst, EXIT_INTERRUPTED if turn.needs_reattach else EXIT_FAILED)
    return worst


# -- simulate ----------------------------------------------------------------------------------


def _simulate(args: argparse.Namespace, stdout: TextIO) -> int:
    from .runtime import sim_duration
    from .sim import Simulator
    from .sim.server import serve_forever

    simulator = Simulator(
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        duration=args.duration or sim_duration(),
    )
    try:
        serve_forever(simulator, args.host, args.port, out=stdout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK


# -- entry point --------------------------------------------------------------------------------


def _print_result(text: str, stdout: TextIO) -> None:
    """The result as StackSpot sent it to a pipe; on a terminal, escape sequences are shown, not obeyed."""
    if stdout.isatty():
        text = visible(text)
    print(text, file=stdout, end="" if text.endswith("\n") else "\n")


def _error(stderr: TextIO, message: str) -> None:
    print(f"stackspot-tui: error: {one_line(message, 500)}", file=stderr, flush=True)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parse_args(parser, sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "simulate":
            return _simulate(args, stdout)
        settings = settings_from_args(args)
        for warning in settings.warnings:
            print(f"stackspot-tui: warning: {warning}", file=stderr)
        if args.command == "run":
            return asyncio.run(_run(args, settings, stdout, stderr))
        if args.command == "resume":
            return asyncio.run(_resume(args, settings, stdout, stderr))
        if args.command == "repair":
            from .runtime import history_root

            return run_repair(history_root(settings, demo=args.demo), stderr)
        if args.command in HISTORY_COMMANDS:
            from .runtime import open_store

            return run_history_command(args, open_store(settings, demo=args.demo), stdout, stderr)
        from .tui import run_app

        return run_app(settings, args)
    except UsageError as exc:
        _error(stderr, str(exc))
        return EXIT_USAGE
    except (StackSpotError, HistoryError, ConfigError, CommandError) as exc:
        _error(stderr, str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error(stderr, "cancelled")
        return EXIT_CANCELLED
    except Exception as exc:  # last resort: one line, traceback only on request
        if os.environ.get(DEBUG_ENV):
            raise
        _error(stderr, f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for details)")
        return EXIT_FAILED
