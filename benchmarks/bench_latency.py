"""Answer latency: `stackspot-tui run` beside a fixed 5 s and a fixed 1 s poller, in every progress mode.

`stackspot-tui simulate` runs on loopback; each execution is a `delay-<ms>-<mode>` quick
command. For every duration × mode × poller: the added latency (answer seen − the moment the
server marks the execution COMPLETED), the polls the server answered, polls per second, and the
longest silence (creation → first poll, or between two polls). `stackspot-tui run` is the real
program in its own process (its answer is seen when its first byte arrives on stdout); the fixed pollers
are the original script's loop (create, then poll, sleep N s, poll...) on threads. All the runs
go 24 at a time (`--at-once`), longest first, their starts a little apart, so their ends do
not coincide.

Durations are whole seconds, like the task's list; `--unaligned` adds executions whose ends fall
between whole seconds (what the grid cannot catch exactly).

    python benchmarks/bench_latency.py [--durations 0.5,2,...] [--modes steps,linear] [--runs 2]
                                       [--unaligned] [--json] [--write]

`--write` merges the rows into benchmarks/results.json (same duration, mode and poller replaced)
and regenerates the latency section of docs/performance.md.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import machine

SECRET = "bench-secret"
DURATIONS = (0.5, 2, 4, 7, 9, 13, 22, 45, 90)
UNALIGNED = (0.87, 2.61, 4.13, 7.77, 9.29, 13.52, 22.91)
MODES = ("steps", "linear", "stalled", "none")
POLLERS = ("stackspot-tui", "fixed 5 s", "fixed 1 s")
HERE = Path(__file__).parent


def program() -> list[str]:
    script = Path(sys.executable).parent / "stackspot-tui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stackspot_tui"]


@dataclass
class Job:
    duration: float
    mode: str
    poller: str
    unaligned: bool

    @property
    def slug(self) -> str:
        return f"delay-{round(self.duration * 1000)}-{self.mode}"


class Simulate:
    """`stackspot-tui simulate` on a free loopback port."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [*program(), "simulate", "--port", "0", "--client-secret", SECRET],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def facts(self, execution_id: str) -> dict:
        return httpx.get(f"{self.url}/_sim/executions/{execution_id}", timeout=30).json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run_process(url: str, slug: str, data_dir: str) -> tuple[str, float]:
    """`stackspot-tui run`: (execution id, wall time the answer's first byte arrived on stdout)."""
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
        [*program(), "run", slug, "-v", "bench"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    first = process.stdout.read(1)  # type: ignore[union-attr]
    seen = time.time()
    out, err = process.communicate()
    progress = err.decode()
    started = [line.split()[-1] for line in progress.splitlines() if line.startswith("started execution ")]
    if process.returncode != 0 or (first + out).decode().strip() != "bench" or not started:
        raise RuntimeError(f"run {slug} failed ({process.returncode}): {progress}")
    return started[0], seen


def fixed_poller(interval: float) -> Callable[[str, str, str], tuple[str, float]]:
    """The original script: create, then GET the callback, sleep `interval`, again, until COMPLETED."""

    def poll(url: str, slug: str, data_dir: str) -> tuple[str, float]:
        with httpx.Client(base_url=url, timeout=30) as client:
            token = client.post(
                "/r/oidc/oauth/token",
                data={"client_id": "demo-client", "client_secret": SECRET, "grant_type": "client_credentials"},
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            execution_id = client.post(
                f"/v1/quick-commands/create-execution/{slug}", json={"input_data": "bench"}
            ).json()
            while True:
                status = client.get(f"/v1/quick-commands/callback/{execution_id}").json()
                if status["progress"]["status"] == "COMPLETED":
                    return execution_id, time.time()
                time.sleep(interval)

    return poll


STRATEGIES: dict[str, Callable[[str, str, str], tuple[str, float]]] = {
    "stackspot-tui": run_process,
    "fixed 5 s": fixed_poller(5.0),
    "fixed 1 s": fixed_poller(1.0),
}


def measure(planned: list[tuple[Job, int]], at_once: int, stagger: float) -> list[dict]:
    """Run every (job, run index), `at_once` at a time, longest first; one row per job."""
    simulate = Simulate()
    samples: dict[tuple[float, str, str, bool], list[dict]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    try:
        with TemporaryDirectory() as tmp:

            def one(job: Job, index: int) -> None:
                try:
                    data_dir = os.path.join(tmp, f"{job.slug}-{job.poller.replace(' ', '')}-{index}")
                    os.makedirs(data_dir)
                    execution_id, seen = STRATEGIES[job.poller](simulate.url, job.slug, data_dir)
                    facts = simulate.facts(execution_id)
                except Exception as exc:  # reported with the results, never a silent gap
                    with lock:
                        errors.append(f"{job}: {exc}")
                    return
                times = facts["poll_times"]
                silences = [b - a for a, b in zip([0.0, *times], times, strict=False)]
                end = facts["completes_at"] - facts["created"]
                with lock:
                    samples.setdefault((job.duration, job.mode, job.poller, job.unaligned), []).append(
                        {
                            "added": seen - facts["completes_at"],
                            "poll_lag": min(t for t in times if t >= end - 1e-6) - end,
                            "polls": facts["polls"],
                            "silence": max(silences),
                        }
                    )

            # Longest first: the short ones fill the slots the long ones leave.
            queue = sorted(planned, key=lambda item: (-item[0].duration, item[1]))

            def worker() -> None:
                while True:
                    with lock:
                        if not queue:
                            return
                        job, index = queue.pop(0)
                    one(job, index)

            threads = [threading.Thread(target=worker) for _ in range(at_once)]
            for thread in threads:
                thread.start()
                time.sleep(stagger)  # the workers' ends do not line up
            for thread in threads:
                thread.join()
    finally:
        simulate.close()
    if errors:
        raise RuntimeError("some runs failed:\n" + "\n".join(errors))
    rows = []
    for (duration, mode, poller, unaligned), values in sorted(samples.items()):
        added = [v["added"] for v in values]
        rows.append(
            {
                "duration_s": duration,
                "mode": mode,
                "poller": poller,
                "unaligned": unaligned,
                "runs": len(values),
                "added_s": statistics.median(added),
                "added_max_s": max(added),
                "poll_lag_s": statistics.median(v["poll_lag"] for v in values),
                "polls": statistics.median(v["polls"] for v in values),
                "polls_per_s": statistics.median(v["polls"] for v in values) / duration,
                "max_silence_s": max(v["silence"] for v in values),
            }
        )
    return rows


def merge(old: list[dict], new: list[dict]) -> list[dict]:
    """The rows of `new`, and those of `old` it does not measure again."""

    def key(row: dict) -> tuple:
        return (row["duration_s"], row["mode"], row["poller"], row.get("unaligned", False))

    fresh = {key(row) for row in new}
    return sorted([row for row in old if key(row) not in fresh] + new, key=key)


def write(rows: list[dict]) -> None:
    from perf_doc import update_performance_doc

    path = HERE / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    latency = results.get("latency")
    old = latency.get("rows", []) if isinstance(latency, dict) else []
    parts = latency.get("parts", []) if isinstance(latency, dict) else []
    part = {**conditions(), "measured": sorted({(r["duration_s"], r.get("unaligned", False)) for r in rows})}
    merged = merge(old, rows)
    # Keep the conditions of every run whose rows are still in the results.
    still = {(r["duration_s"], r.get("unaligned", False)) for r in merged}
    kept = [p for p in parts if {tuple(m) for m in p.get("measured", [])} & still - set(part["measured"])]
    results["latency"] = {**conditions(), "parts": [*kept, part], "rows": merged}
    path.write_text(json.dumps(results, indent=2) + "\n")
    update_performance_doc(results)


def conditions() -> dict:
    """The machine and how busy it was: on a shared machine the figures depend on it."""
    return {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "load_average": list(os.getloadavg())}


def print_table(rows: list[dict]) -> None:
    print(f"answer latency · {machine()}")
    print(
        f"{'execution':>9} {'mode':>8} {'poller':>14} | {'added':>7} {'max':>7} {'lag':>6} {'polls':>6} {'/s':>5}"
        f" {'silence':>7}"
    )
    for r in rows:
        flag = "~" if r["unaligned"] else " "
        print(
            f"{r['duration_s']:>8g}s{flag}{r['mode']:>8} {r['poller']:>14} | {r['added_s']:>6.2f}s "
            f"{r['added_max_s']:>6.2f}s {r['poll_lag_s']:>5.2f}s {r['polls']:>6g} {r['polls_per_s']:>5.2f}"
            f" {r['max_silence_s']:>6.2f}s"
        )


def floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def choices(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        picked = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [p for p in picked if p not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)} (one of {', '.join(allowed)})")
        return picked

    return parse


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", type=floats, default=list(DURATIONS), help="seconds, comma-separated")
    parser.add_argument("--modes", type=choices(MODES), default=list(MODES), help="progress modes, comma-separated")
    parser.add_argument("--pollers", type=choices(POLLERS), default=list(POLLERS), help="pollers, comma-separated")
    parser.add_argument("--runs", type=int, default=2, help="executions per duration × mode × poller")
    parser.add_argument("--unaligned", action="store_true", help=f"also {', '.join(map(str, UNALIGNED))} s")
    parser.add_argument("--at-once", type=int, default=24, help="executions running at the same time")
    parser.add_argument("--stagger", type=float, default=0.37, help="seconds between two workers' starts")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    parser.add_argument("--write", action="store_true", help="merge into results.json, regenerate the doc")
    args = parser.parse_args(argv)
    planned = [
        (Job(d, m, p, False), i)
        for d in args.durations
        for m in args.modes
        for p in args.pollers
        for i in range(args.runs)
    ]
    if args.unaligned:
        planned += [
            (Job(d, m, p, True), i)
            for d in UNALIGNED
            for m in args.modes
            for p in args.pollers
            for i in range(args.runs)
        ]
    rows = measure(planned, args.at_once, args.stagger)
    if args.write:
        write(rows)
    if args.json:
        print(json.dumps({**conditions(), "rows": rows}))
    else:
        print_table(rows)
    return rows


if __name__ == "__main__":
    main()
