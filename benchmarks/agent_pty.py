"""The whole app in a real pseudo-terminal while an agent answer streams (started by bench_agents.py).

Three processes, as a user has them: the simulator (`sim` below, its own process, stamping the
moment each word goes on the socket), the real `stackspot-tui --agent …` program on the slave
side of a 120x40 pty, and this bench on the master side reading every byte the app draws.

- word on screen: for each word, from the simulator writing it to the first read of the
  terminal that shows it or a later word (the transcript follows the end: a word a frame
  skips past was drawn in that frame);
- keys: "x" typed every 30 ms while the answer streams, from the write to the pty to the read
  that shows the prompt holding that many x's;
- event-loop lag: a task in the app process (`hook`) sleeping 5 ms and noting how late it
  wakes, and the loop thread's CPU in each window;
- screen updates: how many layouts and repaints the app made during the stream, and what they
  cost (`time_screen_updates`);
- peak RSS of the app process (VmHWM) after the answer, against the same app showing the
  same 6,000 words as a quick command's answer (pasted as the prompt, echoed back whole).

    python benchmarks/agent_pty.py agent|quick
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

HERE = Path(__file__).parent
AGENT = "words-6000-at-2000"
WORDS = 6000
SIZE = (120, 40)
_WORD = re.compile(rb"word(\d+)(?=\D)")
_XS = re.compile(rb"x+")


def sim(stamps_path: str) -> None:
    """The simulator on loopback; each chunk's write time goes to ``stamps_path`` at SIGTERM."""
    from stackspot_tui.sim import Pacing, Simulator, server

    stamps: list[float] = []
    paced = server.coalesced

    def stamped(chunks: list[tuple[float, bytes]]):  # type: ignore[no-untyped-def]
        for delay, data in paced(chunks):
            if delay > 0:
                time.sleep(delay)
            stamps.append(time.monotonic())  # the server writes the chunk as this hands it over
            yield 0.0, data

    server.coalesced = stamped  # type: ignore[assignment]

    def stop(*_: object) -> None:
        Path(stamps_path).write_text(json.dumps(stamps))
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    simulator = Simulator(pacing=Pacing(first_token=0.3, per_word=1 / 2000))
    with server.SimulatorServer(simulator) as running:
        print(running.url, flush=True)
        while True:
            time.sleep(3600)


def hook(lags_path: str, argv: list[str]) -> None:
    """The real program, with a task on its event loop sampling the loop's lag."""
    import asyncio
    import atexit

    from stackspot_tui.tui.app import StackSpotApp

    samples: list[tuple[float, float, float]] = []  # (when, lag ms, loop thread CPU ms)
    mounted = StackSpotApp.on_mount

    def on_mount(self: StackSpotApp) -> None:
        mounted(self)

        async def sample() -> None:
            while True:
                start, cpu = time.monotonic(), time.thread_time()
                await asyncio.sleep(0.005)
                samples.append(
                    (time.monotonic(), (time.monotonic() - start - 0.005) * 1000, (time.thread_time() - cpu) * 1000)
                )

        self._lag_sampler = asyncio.get_running_loop().create_task(sample())  # type: ignore[attr-defined]

    StackSpotApp.on_mount = on_mount  # type: ignore[method-assign]
    updates = time_screen_updates()
    atexit.register(lambda: Path(lags_path).write_text(json.dumps({"lags": samples, "updates": updates})))
    from stackspot_tui.cli import main

    sys.argv = ["stackspot-tui", *argv]
    sys.exit(main())


def time_screen_updates() -> list[tuple[float, str, float]]:
    """(when, "layout" or "repaint", ms) of each screen update the app makes: where the loop's
    time goes during a stream. Textual's compositor lays the screen out (`reflow`) and draws
    what changed (`render_update`); both run on the loop's one thread."""
    from textual._compositor import Compositor

    updates: list[tuple[float, str, float]] = []

    def timed(method, name: str):  # type: ignore[no-untyped-def]
        def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                updates.append((time.monotonic(), name, (time.perf_counter() - start) * 1000))

        return run

    Compositor.reflow = timed(Compositor.reflow, "layout")  # type: ignore[method-assign]
    Compositor.render_update = timed(Compositor.render_update, "repaint")  # type: ignore[method-assign]
    return updates


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        columns, lines = SIZE
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)},
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self.reads: list[tuple[float, bytes]] = []

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([self.fd], [], [], left)[0]:
                try:
                    data = os.read(self.fd, 1 << 16)
                except OSError:
                    return
                self.reads.append((time.monotonic(), data))

    def until(self, marker: bytes, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        start = len(self.reads)
        while time.monotonic() < end:
            self.read(0.05)
            if marker in b"".join(data for _, data in self.reads[max(0, start - 1) :]):
                return
        raise RuntimeError(f"{marker!r} not drawn")

    def write(self, data: bytes) -> float:
        os.write(self.fd, data)
        return time.monotonic()

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024

    def close(self) -> None:
        self.write(b"\x11")  # ctrl+q: the app quits as a user quits it (and writes its samples)
        deadline = time.monotonic() + 10
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read(0.05)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.process.poll() is None and time.monotonic() < deadline:
            self.read(0.05)  # a terminal nobody reads blocks the app's last frames
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        os.close(self.fd)


def pick(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def main(kind: str) -> dict:
    tmp = Path(tempfile.mkdtemp())
    server = subprocess.Popen(
        [sys.executable, __file__, "sim", str(tmp / "stamps.json")], stdout=subprocess.PIPE, text=True
    )
    url = server.stdout.readline().strip()  # type: ignore[union-attr]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")},
        "STACKSPOT_CLIENT_ID": "demo-client",
        "STACKSPOT_CLIENT_SECRET": "demo-secret",
        "STACKSPOT_API_URL": url,
        "STACKSPOT_AGENT_API_URL": url,
        "STACKSPOT_AGENT_TOOLS_URL": url,
        "STACKSPOT_AUTH_URL": f"{url}/r/oidc/oauth/token",
        "STACKSPOT_TUI_DATA_DIR": str(tmp / "data"),
        "STACKSPOT_TUI_CONFIG": str(tmp / "none.toml"),
        "NO_PROXY": "127.0.0.1",
    }
    target = ["--agent", AGENT] if kind == "agent" else ["--slug", "delay-3000"]
    app = Terminal([sys.executable, __file__, "hook", str(tmp / "lags.json"), *target], env)
    try:
        app.until(b"Type a prompt" if kind != "agent" else b"Chat with agent")
        app.read(0.5)
        if kind == "agent":
            app.write(b"count to six thousand\r")
        else:  # the quick command echoes its prompt: an answer of the same size, shown whole
            words = [f"word{i}" for i in range(WORDS)]
            text = "\n\n".join(" ".join(words[at : at + 60]) for at in range(0, WORDS, 60))
            app.write(b"\x1b[200~" + text.encode() + b"\x1b[201~")
            app.read(2.0)
            app.write(b"\r")
        sent = time.monotonic()
        keys: list[float] = []
        typed: list[float] = []
        if kind == "agent":
            app.until(b"word0", timeout=30)
            for _ in range(50):  # keys typed while the answer streams
                typed.append(app.write(b"x"))
                app.read(0.03)
        if kind == "agent":
            app.until(b"COMPLETED", timeout=120)  # a huge answer then shows as plain text
        app.read(max(1.0, sent + 8 - time.monotonic()))
        rss = app.peak_rss_mb()
    finally:
        app.close()
        server.send_signal(signal.SIGTERM)
        server.wait()
    result: dict = {"peak_rss_mb": rss}
    if kind != "agent":
        return result
    stamps = json.loads((tmp / "stamps.json").read_text())[:WORDS]
    shown = [float("nan")] * WORDS
    furthest, most_x, echoed = -1, 0, []
    carry = b""
    for at, data in app.reads:
        data = carry + data
        carry = data[-16:]
        for match in _WORD.finditer(data):
            n = int(match.group(1))
            while furthest < min(n, WORDS - 1):
                furthest += 1
                shown[furthest] = at
        runs = [len(m.group()) for m in _XS.finditer(data)]
        while runs and most_x < min(max(runs), len(typed)):
            most_x += 1
            echoed.append(at)
    words = [(s - w) * 1000 for w, s in zip(stamps, shown, strict=False) if s == s]
    keys = [(e - t) * 1000 for t, e in zip(typed, echoed, strict=False)]
    recorded = json.loads((tmp / "lags.json").read_text())
    streaming = [(lag, cpu) for when, lag, cpu in recorded["lags"] if stamps[0] <= when <= stamps[-1]]
    during = [(name, ms) for when, name, ms in recorded["updates"] if stamps[0] <= when <= stamps[-1]]
    for name in ("layout", "repaint"):
        spent = [ms for kind, ms in during if kind == name]
        result[f"{name}s"] = len(spent)
        result[f"{name}_median_ms"] = pick(spent, 0.5)
        result[f"{name}_total_ms"] = sum(spent)
    result["stream_ms"] = (stamps[-1] - stamps[0]) * 1000
    result.update(
        words_on_screen=len(words),
        words_per_s=(len(stamps) - 1) / (stamps[-1] - stamps[0]),
        word_median_ms=pick(words, 0.5),
        word_p95_ms=pick(words, 0.95),
        loop_lag_p99_ms=pick([lag for lag, _ in streaming], 0.99),
        loop_lag_max_ms=max(lag for lag, _ in streaming),
        loop_cpu_p99_ms=pick([cpu for _, cpu in streaming], 0.99),
        keys=len(keys),
        keys_typed=len(typed),
        key_median_ms=pick(keys, 0.5),
        key_max_ms=max(keys) if keys else float("nan"),
    )
    return result


if __name__ == "__main__":
    if sys.argv[1] == "sim":
        sim(sys.argv[2])
    elif sys.argv[1] == "hook":
        hook(sys.argv[2], sys.argv[3:])
    else:
        print(json.dumps(main(sys.argv[1])), flush=True)
