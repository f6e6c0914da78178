"""Stopping never loses an answer: the real app and CLI against `stackspot-tui simulate`.

Quitting the app mid-run, Ctrl+C on `run`, and Esc (stopped watching) all leave the execution
fetchable; the next start or `resume` fetches it, and the simulator's request log shows a
single create-execution for the turn. Kills and keys happen at observed points (the history
says the execution id is saved), never at wall-clock offsets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from helpers import last_json_line, program, run_cli, sigint_as_in_a_shell, start_simulator
from ptyapp import PtyApp

from stackspot_tui.store import HistoryStore

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal and signals"),
]


@pytest.fixture(scope="module")
def sim():
    with start_simulator(duration=0.3) as process:
        yield process


def fast_env(sim, data_dir):
    env = sim.env(data_dir)
    (data_dir / "no-config.toml").write_text("poll_initial = 0.05\npoll_max_interval = 0.2\n")
    return env


def creates_for(sim, slug: str) -> int:
    return sum(r["path"].endswith(f"/create-execution/{slug}") for r in sim.requests())


def only_turn(data_dir):
    store = HistoryStore(data_dir / "history")
    turns = [t for c in store.list_conversations(archived=None) for t in store.turns(c.id)]
    return turns[0] if len(turns) == 1 else None


def wait_until(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_quit_mid_run_then_restart_shows_the_answer_with_one_create(sim, tmp_path):
    env = fast_env(sim, tmp_path)
    slug = "delay-2500"
    app = PtyApp(["--slug", slug], env, size=(100, 30))
    try:
        app.wait_for_text(slug)
        app.write(b"finish me later\r")
        app.wait_for(lambda: (t := only_turn(tmp_path)) is not None and t.execution_id is not None, "the execution id")
        app.write(b"\x11")  # Ctrl+Q while it runs: the app asks
        app.wait_for_text("finish it later")
        app.write(b"\r")  # the default: quit, finish it later
        app.wait_for(lambda: app.process.poll() is not None, "the app to quit")
    finally:
        app.close()
    left = only_turn(tmp_path)
    assert left.execution_id and left.resumes_by_itself and left.result is None

    again = PtyApp([], env, size=(100, 30))  # a plain start opens the turn left running
    try:
        again.wait_for(lambda: only_turn(tmp_path).status == "COMPLETED", "the answer fetched")
        again.wait_for_text("COMPLETED")
        again.write(b"\x11")
        again.wait_for(lambda: again.process.poll() is not None, "the app to quit")
    finally:
        again.close()
    done = only_turn(tmp_path)
    assert done.result == "finish me later" and done.execution_id == left.execution_id
    assert creates_for(sim, slug) == 1  # fetched, never sent twice


def test_ctrl_c_on_run_leaves_the_execution_to_resume(sim, tmp_path):
    env = fast_env(sim, tmp_path)
    slug = "delay-2600"
    child = subprocess.Popen(
        [*program(), "run", slug, "stop me"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_in_a_shell,
    )
    wait_until(lambda: (t := only_turn(tmp_path)) is not None and t.execution_id is not None, "the execution id")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130
    assert b"stopped watching" in err and b"stackspot-tui resume" in err and b"Traceback" not in err
    assert only_turn(tmp_path).resumes_by_itself
    resumed = run_cli("resume", "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    document = last_json_line(resumed.stdout)
    assert document["status"] == "COMPLETED" and document["result"] == "stop me" and document["turn"] == 1
    assert creates_for(sim, slug) == 1


def test_a_turn_stopped_with_esc_is_fetched_by_resume_all_only(sim, tmp_path):
    env = fast_env(sim, tmp_path)
    slug = "delay-2700"
    child = subprocess.Popen([*program(), "run", slug, "fetch me on demand"], env=env, stderr=subprocess.DEVNULL)
    wait_until(lambda: (t := only_turn(tmp_path)) is not None and t.execution_id is not None, "the execution id")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = HistoryStore(tmp_path / "history")
    turn = only_turn(tmp_path)
    store.update_turn(turn.conversation, turn.seq, status="DETACHED")  # what Esc in the app records
    plain = run_cli("resume", env=env)
    assert plain.returncode == 0 and plain.stdout == b""
    assert b"1 turn you stopped watching" in plain.stderr and b"resume --all" in plain.stderr
    everything = run_cli("resume", "--all", env=env)
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.decode() == "fetch me on demand\n"
    assert only_turn(tmp_path).status == "COMPLETED"
    assert creates_for(sim, slug) == 1


class HoldingProxy:
    """A loopback stand-in in front of `simulate`: every request goes on to it, but the answer to
    create-execution is held until `release()`. StackSpot then has the execution and the client
    does not have its id: the moment a kill leaves a turn that may have been sent."""

    def __init__(self, upstream: str) -> None:
        self.created = threading.Event()
        self.released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, upstream + self.path, headers=headers, content=body, timeout=30)
                if "/create-execution/" in self.path:
                    proxy.created.set()
                    proxy.released.wait(60)
                try:
                    self.send_response(answer.status_code)
                    for name in ("Content-Type", "Retry-After"):
                        if name in answer.headers:
                            self.send_header(name, answer.headers[name])
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:  # the client was killed meanwhile
                    pass

            do_GET = do_POST = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def test_a_kill_before_the_execution_id_is_saved_reads_may_have_been_sent_and_resending_asks(sim, tmp_path):
    proxy = HoldingProxy(sim.url)
    try:
        env = fast_env(sim, tmp_path)
        env.update(
            STACKSPOT_API_URL=proxy.url, STACKSPOT_AUTH_URL=env["STACKSPOT_AUTH_URL"].replace(sim.url, proxy.url)
        )
        slug = "delay-400"
        child = subprocess.Popen([*program(), "run", slug, "sent or not?"], env=env, stderr=subprocess.DEVNULL)
        assert proxy.created.wait(30), "create-execution never reached the stand-in"
        os.kill(child.pid, signal.SIGKILL)  # StackSpot has it; the id never reached the history
        child.wait()
        proxy.release()
        assert creates_for(sim, slug) == 1
        left = only_turn(tmp_path)
        assert left.execution_id is None and left.maybe_sent and left.status_words == "may have been sent"
        shown = run_cli("show", left.conversation, env=env)
        assert b"may have been sent" in shown.stdout, shown.stdout

        app = PtyApp(["--conversation", left.conversation], env, size=(100, 30))
        try:
            app.wait_for_text("May have been sent")
            app.write(b"sent or not?\r")  # the same prompt again: it may run twice, so the app asks
            app.wait_for_text("run it twice")
            app.write(b"n")
            app.write(b"\x11")
            assert app.wait_exit() == 0
        finally:
            app.close()
        assert creates_for(sim, slug) == 1  # not sent again without a yes
        again = run_cli("run", slug, "--conversation", left.conversation, "-q", "sent or not?", env=env)
        assert again.returncode == 0 and b"may now run twice" in again.stderr  # the CLI says so, and sends
        assert creates_for(sim, slug) == 2
    finally:
        proxy.close()
