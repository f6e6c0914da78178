"""`make bench`: every benchmark, one table, results saved to benchmarks/results.json, and
docs/performance.md generated from them.

    python benchmarks/run_all.py [--only history,export,app,latency,agents]

``--only`` measures those parts and keeps the other parts' stored results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, tier
from perf_doc import all_rows, update_performance_doc

HERE = Path(__file__).parent
RESULTS = HERE / "results.json"
PARTS = {
    "history": ("bench_history.py", "--tiers", "1k,10k,100k"),
    "export": ("bench_export.py",),
    "app": ("bench_app.py", "--runs", "5", "--tiers", "10k,100k"),
    "latency": ("bench_latency.py", "--runs", "2", "--unaligned"),
    "agents": ("bench_agents.py", "--runs", "5"),
}


def run(script: str, *args: str) -> object:
    output = subprocess.run(
        [sys.executable, str(HERE / script), "--json", *args],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
        timeout=3600,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(name: str) -> dict:
    started, load = time.perf_counter(), os.getloadavg()
    date = datetime.now().strftime("%Y-%m-%d %H:%M")
    result = run(*PARTS[name])
    measured = {"date": date, "load_average": [round(x, 1) for x in load], "seconds": time.perf_counter() - started}
    if name == "history":
        return {"measured": measured, "tiers": result}
    if name == "latency":
        assert isinstance(result, dict)
        result["parts"] = [{key: result[key] for key in ("machine", "date", "load_average")}]
    assert isinstance(result, dict)
    return {**result, "measured": measured}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to measure, of {', '.join(PARTS)}")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    for name in ("1k", "10k", "100k"):  # generated once (minutes), before anything is timed
        tier(name, notice=lambda text: print(text, file=sys.stderr, flush=True))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in names:
        print(f"measuring {name}…", file=sys.stderr, flush=True)
        results[name] = measure(name)
    results["machine"] = machine()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    update_performance_doc(results)
    rows = all_rows(results)
    width = max(len(row.what) for _, row in rows)
    print(f"stackspot-tui benchmarks · {machine()}")
    for _, row in rows:
        verdict = "" if row.met is None else ("ok" if row.met else "MISS")
        print(f"{row.what:<{width}}  {row.where:<24} {row.value:>40}  {row.target:>12}  {verdict}")
    print(f"(benchmarks: {time.perf_counter() - started:.0f} s; docs/performance.md regenerated)")


if __name__ == "__main__":
    main()
