"""The real program over real HTTP: `stackspot-tui simulate` on loopback, `stackspot-tui run` against it."""

from __future__ import annotations

import json

import pytest
from helpers import SECRET, last_json_line, run_cli, start_simulator

from stackspot_tui.store import HistoryStore

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim():
    with start_simulator(duration=0.3) as process:
        yield process


def test_two_continue_turns_share_the_conversation(sim, tmp_path):
    env = sim.env(tmp_path)
    first = run_cli("run", "code-review", "--continue", "--json", "def f(x): return x * 2", env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("run", "code-review", "--continue", "--json", "what about negative x?", env=env)
    assert second.returncode == 0, second.stderr
    one, two = last_json_line(first.stdout), last_json_line(second.stdout)
    assert one["status"] == two["status"] == "COMPLETED"
    assert one["conversation_id"] and one["conversation_id"] == two["conversation_id"]
    assert one["conversation"] == two["conversation"]
    assert (one["turn"], two["turn"]) == (1, 2)  # counted from 1, as the app and `search` count them

    creates = [r for r in sim.requests() if "create-execution" in r["path"]]
    mine = creates[-2:]
    assert "conversation_id" not in mine[0]["query"]
    assert mine[1]["query"]["conversation_id"] == one["conversation_id"]

    store = HistoryStore(tmp_path / "history")
    turns = store.turns(one["conversation"])
    assert [t.prompt for t in turns] == ["def f(x): return x * 2", "what about negative x?"]
    assert all(t.status == "COMPLETED" and t.execution_id for t in turns)


def test_plain_output_and_prompt_from_stdin(sim, tmp_path):
    result = run_cli("run", "echo", env=sim.env(tmp_path), input="hello from a pipe\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "hello from a pipe\n"
    assert result.stderr == b""  # not a terminal: quiet


def test_verbose_progress_goes_to_stderr(sim, tmp_path):
    result = run_cli("run", "delay-1500", "-v", "x = 1", env=sim.env(tmp_path))
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "started execution" in err and "RUNNING" in err and "COMPLETED in" in err
    assert err.index("RUNNING") < err.index("COMPLETED in")
    assert result.stdout.decode() == "x = 1\n"


def test_failure_exits_non_zero_with_one_line(sim, tmp_path):
    result = run_cli("run", "sim-failure", "boom", env=sim.env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "stackspot-tui: error: Simulated failure: the LLM step raised an error"
    ]


def one_line_error(result) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stackspot-tui: error: ")
    return lines[0]


def test_wrong_credentials(sim, tmp_path):
    result = run_cli("run", "echo", "hi", env=sim.env(tmp_path, STACKSPOT_CLIENT_SECRET="wrong"))
    assert result.returncode == 1
    line = one_line_error(result)
    assert "rejected the client credentials" in line and "oidc/oauth/token" in line
    assert "wrong" not in line


def test_unknown_slug(sim, tmp_path):
    result = run_cli("run", "no-such-command", "hi", env=sim.env(tmp_path))
    assert result.returncode == 1
    assert "no-such-command" in one_line_error(result) and "not found" in one_line_error(result)


def test_unreachable_api(sim, tmp_path):
    env = sim.env(
        tmp_path, STACKSPOT_API_URL="http://127.0.0.1:9", STACKSPOT_AUTH_URL="http://127.0.0.1:9/r/oidc/oauth/token"
    )
    (tmp_path / "no-config.toml").write_text("max_retries = 1\n")  # one short back-off, not five
    result = run_cli("run", "echo", "hi", env=env, timeout=120)
    assert result.returncode == 1
    assert "cannot reach StackSpot at http://127.0.0.1:9" in one_line_error(result)


def test_corrupt_history_file(sim, tmp_path):
    env = sim.env(tmp_path)
    assert run_cli("run", "echo", "hi", env=env).returncode == 0
    record = next((tmp_path / "history").rglob("conversations/*/conversation.json"))
    record.write_text('{"conversations": {"1": {"id": ')
    result = run_cli("run", "echo", "--continue", "again", env=env)
    assert result.returncode == 1
    assert str(record) in one_line_error(result)


def test_missing_credentials_suggest_demo(tmp_path, sim):
    env = sim.env(tmp_path)
    del env["STACKSPOT_CLIENT_SECRET"]
    result = run_cli("run", "echo", "hi", env=env)
    assert result.returncode == 1
    assert "--demo" in one_line_error(result)


@pytest.mark.parametrize(
    "args, stdin, words",
    [
        (["run", "echo", "   "], None, "the prompt is empty"),
        (["run", "echo", "-"], b"\xff\xfe\x00bad", "not UTF-8"),
        (["run", "echo", "--json-input", "[1]"], None, "must be a JSON object"),
        (["run", "echo", "--json-input", "{oops"], None, "not valid JSON"),
    ],
)
def test_bad_input_is_a_usage_error(sim, tmp_path, args, stdin, words):
    result = run_cli(*args, env=sim.env(tmp_path), input=stdin)
    assert result.returncode == 2
    assert words in one_line_error(result)


def test_unknown_flag_is_a_usage_error(sim, tmp_path):
    result = run_cli("run", "echo", "--frobnicate", "hi", env=sim.env(tmp_path))
    assert result.returncode == 2
    assert "unrecognized arguments: --frobnicate" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_secret_never_written(sim, tmp_path):
    env = sim.env(tmp_path)
    run_cli("run", "code-review", "-v", "--json", "x", env=env)
    run_cli("run", "echo", "--continue", "y", env=env)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_demo_needs_no_credentials(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")}
    env.update(
        STACKSPOT_TUI_DATA_DIR=str(tmp_path),
        STACKSPOT_SIM_DURATION="0.2",
        STACKSPOT_TUI_CONFIG=str(tmp_path / "none.toml"),
    )
    result = run_cli("--demo", "run", "echo", "--json", "hi demo", env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["result"] == "hi demo" and document["conversation_id"]
    assert (tmp_path / "demo").is_dir() and not (tmp_path / "history").exists()
