"""Answer latency: `stackspot-tui run` (adaptive polling) beside the original script's fixed 5 s poll.

The simulator runs on loopback with `delay-<ms>` quick commands. For each execution length the
added latency is (result printed) - (moment the server marks the execution COMPLETED), and the
polls are the callback requests the server answered for that execution.

    python benchmarks/bench_latency.py [--durations 0.5,2,10,60] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import machine

from stackspot_tui.sim import Simulator
from stackspot_tui.sim.server import SimulatorServer

SECRET = "bench-secret"


def program() -> list[str]:
    script = Path(sys.executable).parent / "stackspot-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stackspot_tui"]


def adaptive(url: str, slug: str, data_dir: str) -> tuple[str, float]:
    """`stackspot-tui run`: returns (execution id, wall time the result line arrived)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")},
        "STACKSPOT_CLIENT_ID": "demo-client",
        "STACKSPOT_CLIENT_SECRET": SECRET,
        "STACKSPOT_API_URL": url,
        "STACKSPOT_AUTH_URL": f"{url}/r/oidc/oauth/token",
        "STACKSPOT_TUI_DATA_DIR": data_dir,
        "STACKSPOT_TUI_CONFIG": os.path.join(data_dir, "none.toml"),
        "NO_PROXY": "127.0.0.1",
    }
    process = subprocess.Popen(
        [*program(), "run", slug, "--json", "-q", "bench"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    seen = time.time()
    process.wait()
    document = json.loads(line)
    if document["status"] != "COMPLETED":
        raise RuntimeError(f"run failed: {document} {process.stderr.read()}")
    return document["execution_id"], seen


def fixed_five_seconds(url: str, slug: str, data_dir: str) -> tuple[str, float]:
    """The original script: create, then GET the callback every 5 s until COMPLETED."""
    with httpx.Client(base_url=url, timeout=30) as client:
        token = client.post(
            "/r/oidc/oauth/token",
            data={"client_id": "demo-client", "client_secret": SECRET, "grant_type": "client_credentials"},
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        execution_id = client.post(f"/v1/quick-commands/create-execution/{slug}", json={"input_data": "bench"}).json()
        while True:
            status = client.get(f"/v1/quick-commands/callback/{execution_id}").json()
            if status["progress"]["status"] == "COMPLETED":
                return execution_id, time.time()
            time.sleep(5)


def measure(durations: list[float], runs: int) -> list[dict]:
    simulator = Simulator(client_secret=SECRET)
    rows = []
    with SimulatorServer(simulator) as server, TemporaryDirectory() as tmp:
        for duration in durations:
            slug = f"delay-{int(duration * 1000)}"
            results: dict[str, list[tuple[float, int]]] = {"adaptive": [], "fixed": []}
            lock = threading.Lock()

            def one(name, strategy, index, slug=slug, duration=duration, lock=lock, results=results):
                execution_id, seen = strategy(server.url, slug, os.path.join(tmp, f"{name}-{duration}-{index}"))
                added = seen - simulator.completes_at(execution_id)
                with lock:
                    results[name].append((added, simulator.polls_of(execution_id)))

            threads = [
                threading.Thread(target=one, args=(name, strategy, i))
                for i in range(runs)
                for name, strategy in (("adaptive", adaptive), ("fixed", fixed_five_seconds))
            ]
            for t in threads:
                t.start()
                time.sleep(0.05)  # stagger process start-ups a little
            for t in threads:
                t.join()
            row = {"duration_s": duration}
            for name, values in results.items():
                row[f"{name}_added_s"] = statistics.median(v[0] for v in values)
                row[f"{name}_polls"] = statistics.median(v[1] for v in values)
            rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"answer latency (median of runs) · {machine()}")
    print(f"{'execution':>10} | {'adaptive: added':>15} {'polls':>6} | {'fixed 5 s: added':>16} {'polls':>6}")
    for r in rows:
        print(
            f"{r['duration_s']:>9g}s | {r['adaptive_added_s']:>14.3f}s {r['adaptive_polls']:>6g} |"
            f" {r['fixed_added_s']:>15.3f}s {r['fixed_polls']:>6g}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--durations", default="0.5,2,10,60")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure([float(d) for d in args.durations.split(",")], args.runs)
    print(json.dumps(result)) if args.json else print_table(result)
