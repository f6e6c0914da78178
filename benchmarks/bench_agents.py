"""Agents: how soon a streamed word reaches the user, and what a stream costs.

- `run --agent`: from the moment the simulator writes the first word on the socket to the
  moment it can be read from the process's stdout (median of runs); peak RSS of `run --agent`
  against `run` of a quick command.
- The app, the real program in a pty against the simulator in its own process (agent_pty.py):
  a word on screen after the simulator wrote it (median, p95) in a 2,000-words/s stream,
  event-loop lag p99, keys typed meanwhile echoed on screen; peak RSS against the same app
  showing the same 6,000 words as a quick command's answer. Medians over ``--runs`` runs.

    python benchmarks/bench_agents.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import baseline, machine, spread

from stackspot_tui.sim import Pacing, Simulator
from stackspot_tui.sim.server import SimulatorServer

HERE = Path(__file__).parent
PROGRAM = str(Path(sys.executable).parent / "stackspot-tui")


class WriteClock:
    """The simulator's sleep between chunks: records when each chunk goes on the socket."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        time.sleep(seconds)
        with self.lock:
            self.stamps.append(time.monotonic())  # the chunk is written right after this returns


def env_for(url: str, data_dir: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")},
        "STACKSPOT_CLIENT_ID": "demo-client",
        "STACKSPOT_CLIENT_SECRET": "demo-secret",
        "STACKSPOT_API_URL": url,
        "STACKSPOT_AGENT_API_URL": url,
        "STACKSPOT_AUTH_URL": f"{url}/r/oidc/oauth/token",
        "STACKSPOT_TUI_DATA_DIR": str(data_dir),
        "STACKSPOT_TUI_CONFIG": str(data_dir / "none.toml"),
        "NO_PROXY": "127.0.0.1",
    }


def first_word(url: str, data_dir: Path, clock: WriteClock) -> tuple[float, float]:
    """(ms from the first word's write to stdout, peak RSS MB) of one `run --agent`."""
    with clock.lock:
        clock.stamps.clear()
    process = subprocess.Popen(
        [PROGRAM, "run", "--agent", "words-300-at-200", "count"],
        env=env_for(url, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.select(timeout=30)
    seen = time.monotonic()
    os.read(process.stdout.fileno(), 65536)
    process.stdout.read()
    _, _, usage = os.wait4(process.pid, 0)
    with clock.lock:
        written = clock.stamps[0]
    return (seen - written) * 1000, usage.ru_maxrss / 1024


def quick_command_rss(url: str, data_dir: Path) -> float:
    process = subprocess.Popen(
        [PROGRAM, "run", "delay-500", "x"],
        env=env_for(url, data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_maxrss / 1024


def cli(runs: int) -> dict:
    clock = WriteClock()
    simulator = Simulator(pacing=Pacing(first_token=0.2, per_word=0.005), sync_sleep=clock)
    with SimulatorServer(simulator) as server, tempfile.TemporaryDirectory() as tmp:
        samples = [first_word(server.url, Path(tmp), clock) for _ in range(runs)]
        qc_rss = max(quick_command_rss(server.url, Path(tmp)) for _ in range(runs))
    latencies = sorted(ms for ms, _ in samples)
    return {
        "first_word_median_ms": statistics.median(latencies),
        "first_word_max_ms": latencies[-1],
        "agent_peak_rss_mb": max(rss for _, rss in samples),
        "quick_command_peak_rss_mb": qc_rss,
    }


def probe(kind: str) -> dict:
    output = subprocess.run(
        [sys.executable, str(HERE / "agent_pty.py"), kind], capture_output=True, text=True, timeout=300
    )
    if output.returncode != 0:
        raise RuntimeError(output.stderr)
    return json.loads(output.stdout.strip().splitlines()[-1])


def app(runs: int) -> dict:
    """Each figure the median of ``runs`` runs (the machine is shared: one run can be unlucky);
    the runs themselves kept under "runs"."""
    baselines: list[float] = []
    agents = []
    for _ in range(runs):
        baseline(baselines)  # beside each run: the machine's speed drifts
        agents.append(probe("agent"))
    quick = [probe("quick")["peak_rss_mb"] for _ in range(max(1, runs // 2))]
    summary = {key: statistics.median(run[key] for run in agents) for key in agents[0]}
    return {
        **summary,
        "quick_command_peak_rss_mb": statistics.median(quick),
        "import_textual_s": spread(baselines),
        "runs": agents,
    }


def main(runs: int) -> dict:
    return {"cli": cli(runs), "app": app(max(3, runs // 2 + 1))}


def print_table(r: dict) -> None:
    c, a = r["cli"], r["app"]
    print(f"agents · {machine()}")
    print(
        f"run --agent: first word on stdout {c['first_word_median_ms']:.1f} ms after it was sent (median; max "
        f"{c['first_word_max_ms']:.1f} ms); peak RSS {c['agent_peak_rss_mb']:.0f} MB "
        f"(quick command {c['quick_command_peak_rss_mb']:.0f} MB)"
    )
    print(
        f"app in a pty: a word on screen {a['word_median_ms']:.1f} ms after the simulator sent it (median; p95 "
        f"{a['word_p95_ms']:.1f} ms); {a['words_per_s']:.0f} words/s: loop lag p99 {a['loop_lag_p99_ms']:.1f} ms "
        f"(loop CPU p99 {a['loop_cpu_p99_ms']:.1f} ms), keys echoed in "
        f"{a['key_median_ms']:.1f} ms median / {a['key_max_ms']:.1f} ms max ({a['keys']} keys); "
        f"peak RSS {a['peak_rss_mb']:.0f} MB (quick command {a['quick_command_peak_rss_mb']:.0f} MB)"
    )
    print(f"baseline, python -c 'import textual.app': {a['import_textual_s']['median']:.2f} s (median)")
    print(
        f"during the stream ({a['stream_ms']:.0f} ms): {a['layouts']:.0f} layouts ({a['layout_total_ms']:.0f} ms, "
        f"median {a['layout_median_ms']:.1f} ms), {a['repaints']:.0f} repaints ({a['repaint_total_ms']:.0f} ms, "
        f"median {a['repaint_median_ms']:.1f} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = main(args.runs)
    print(json.dumps(result)) if args.json else print_table(result)
