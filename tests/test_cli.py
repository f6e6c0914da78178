"""The command line's parser: every command reaches its handler, options go where users put them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stackspot_tui import api, sim
from stackspot_tui.cli import build_parser
from stackspot_tui.cli import history as history_commands
from stackspot_tui.cli import run as run_commands


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "echo", "hello there", "--json", "--continue", "-q"],
        ["run", "echo", "--json", "--continue", "hello there", "-q"],
        ["run", "--json", "echo", "-q", "--continue", "hello there"],
        ["--demo", "run", "echo", "hello there", "--json", "--continue", "-q"],
        ["run", "echo", "hello there", "--demo", "--json", "--continue", "-q"],
    ],
)
def test_run_options_go_before_or_after_the_prompt(argv):
    args = parse(*argv)
    assert args.handler is run_commands._run
    assert (args.slug, args.prompt, args.json, args.continue_latest, args.quiet) == (
        "echo",
        "hello there",
        True,
        True,
        True,
    )
    assert args.demo == ("--demo" in argv)


def test_a_prompt_that_looks_like_an_option_follows_a_double_dash():
    args = parse("run", "echo", "--json", "--", "-v is not verbose")
    assert args.prompt == "-v is not verbose" and args.json and not args.verbose


def test_common_options_before_and_after_the_command():
    before = parse("--data-dir", "/d", "--realm", "r", "conversations", "--json")
    after = parse("conversations", "--json", "--data-dir", "/d", "--realm", "r")
    for args in (before, after):
        assert (args.data_dir, args.realm, args.json) == ("/d", "r", True)
        assert args.handler is history_commands._conversations


def test_no_command_opens_the_app_with_its_own_options():
    from stackspot_tui.cli import app

    args = parse("--slug", "code-review", "--continue", "--demo")
    assert args.handler is app.launch
    assert (args.slug, args.continue_latest, args.demo) == ("code-review", True, True)


@pytest.mark.parametrize(
    "command",
    ["run", "resume", "conversations", "show", "search", "export", "import", "rename", "archive", "unarchive"]
    + ["repair", "delete", "simulate"],
)
def test_every_command_is_listed_in_help_and_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit):
        parse("--help")
    assert f"    {command} " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:
        parse(command, "--help")
    assert exit.value.code == 0 and f"usage: stackspot-tui {command}" in capsys.readouterr().out


def test_archive_and_unarchive_share_one_handler():
    assert parse("archive", "abc").archived is True
    assert parse("unarchive", "abc").archived is False
    assert parse("archive", "abc").handler.__wrapped__ is parse("unarchive", "abc").handler.__wrapped__


# What a command that never sends must not load: each costs a history command's start-up.
SENDING_ONLY = ("httpx", "asyncio", "stackspot_tui.api.client", "stackspot_tui.engine", "stackspot_tui.sim.core")


@pytest.mark.parametrize("argv", [["conversations"], ["search", "word"], ["--version"], ["run", "bad slug", "hi"]])
def test_commands_that_do_not_send_start_without_the_client_or_the_engine(env, argv):
    """A history command, `--version` and a refused argument answer without importing httpx,
    asyncio, the engine or the simulator's server (about 0.15 s of every such process)."""
    code = (
        "import sys\nfrom stackspot_tui.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print([name for name in {SENDING_ONLY!r} if name in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr.splitlines()[-1] == "[]", done.stderr


@pytest.mark.parametrize("package", [api, sim])
def test_every_name_a_package_offers_is_found_where_it_is_loaded(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018
