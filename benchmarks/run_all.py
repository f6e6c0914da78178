"""`make bench`: every benchmark, one table, results saved to benchmarks/results.json."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine
from perf_doc import checks, update_performance_doc

HERE = Path(__file__).parent


def run(script: str, *args: str) -> object:
    output = subprocess.run(
        [sys.executable, str(HERE / script), "--json", *args], capture_output=True, text=True, check=True, timeout=600
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    return "ok" if (value <= target if lower_is_better else value >= target) else "MISS"


def main() -> None:
    started = time.perf_counter()
    latency = run("bench_latency.py", "--runs", "2", "--unaligned")
    assert isinstance(latency, dict)
    latency_rows = latency["rows"]
    latency["parts"] = [{key: latency[key] for key in ("machine", "date", "load_average")}]
    history = run("bench_history.py")
    app = run("bench_app.py", "--runs", "3")
    exports = run("bench_export.py")
    agents = run("bench_agents.py", "--runs", "5")
    rows: list[tuple[str, str, str, str]] = [
        (f"answer latency: {check.what}", check.value, check.target, "ok" if check.met else "MISS")
        for check in checks(latency_rows)
    ]
    base = app["import_textual_s"]
    for name, value in app["pty_first_frame_s"].items():
        rows.append(
            (
                f"first frame in a pty, {name} history (over import textual.app {base:.2f} s)",
                f"+{value - base:.2f} s",
                "≤ +0.5 s",
                verdict(value - base, 0.5),
            )
        )
    for name, value in app["headless_first_frame_s"].items():
        rows.append(
            (
                f"first frame headless, {name}",
                f"+{value - base:.2f} s",
                "≤ +0.5 s" if "open" not in name else "—",
                verdict(value - base, 0.5) if "open" not in name else "",
            )
        )
    growth = app["pty_first_frame_s"]["large"] - app["pty_first_frame_s"]["empty"]
    rows.append(
        ("start-up cost of 10k conversations / 200k turns", f"+{growth:.2f} s", "≤ +0.1 s", verdict(growth, 0.1))
    )
    for r in history:
        naive = f" (one TinyDB file: {r['naive_ms']:.0f} ms)" if "naive_ms" in r else ""
        rows.append(
            (r["name"] + naive, f"{r['ms']:.1f} ms", f"≤ {r['target_ms']} ms", verdict(r["ms"], r["target_ms"]))
        )
    rendering = app["rendering"]
    rows.append(
        (
            "key press while 10,000 log lines stream (max)",
            f"{rendering['key_max_ms']:.0f} ms",
            "≤ 50 ms",
            verdict(rendering["key_max_ms"], 50),
        )
    )
    rows.append(("1 MB answer mounted and drawn", f"{rendering['answer_1mb_ms']:.0f} ms", "no freeze", ""))
    rows.append(
        (
            "peak RSS, 10k-conversation history, 1,000-turn conversation open",
            f"{rendering['peak_rss_mb']:.0f} MB",
            "≤ 200 MB",
            verdict(rendering["peak_rss_mb"], 200),
        )
    )
    for r in exports:
        rows.append((f"export 10,000 turns as {r['format']}", f"{r['ms']:.0f} ms", "≤ 1000 ms", verdict(r["ms"], 1000)))
    rows += agent_rows(agents)
    width = max(len(r[0]) for r in rows)
    print(f"stackspot-tui benchmarks · {machine()}")
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:>22}  {target:>10}  {ok}")
    print(f"(all benchmarks: {time.perf_counter() - started:.0f} s)")
    results = {
        "machine": machine(),
        "latency": latency,
        "history": history,
        "app": app,
        "export": exports,
        "agents": agents,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    update_performance_doc(results)


def agent_rows(agents: dict) -> list[tuple[str, str, str, str]]:
    cli, app = agents["cli"], agents["app"]
    rss_gap = app["peak_rss_mb"] - app["quick_command_peak_rss_mb"]
    return [
        (
            "run --agent: first word on stdout after it was sent (median)",
            f"{cli['first_word_median_ms']:.1f} ms",
            "≤ 50 ms",
            verdict(cli["first_word_median_ms"], 50),
        ),
        (
            f"app in a pty: streamed word on screen after the simulator sent it (median; {app['words_per_s']:.0f} words/s)",
            f"{app['word_median_ms']:.0f} ms",
            "≤ 50 ms",
            verdict(app["word_median_ms"], 50),
        ),
        (
            "app: event-loop lag p99 while 2,000 words/s stream",
            f"{app['loop_lag_p99_ms']:.0f} ms",
            "≤ 50 ms",
            verdict(app["loop_lag_p99_ms"], 50),
        ),
        (
            "app: loop thread's CPU per 5 ms window, p99 (the lag on an idle machine)",
            f"{app['loop_cpu_p99_ms']:.0f} ms",
            "—",
            "",
        ),
        (
            "app: key typed during the stream echoed on screen (median)",
            f"{app['key_median_ms']:.0f} ms",
            "≤ 20 ms",
            verdict(app["key_median_ms"], 20),
        ),
        (
            "app: peak RSS, 6,000-word agent answer vs a quick-command turn",
            f"{rss_gap:+.1f} MB",
            "≤ +10 MB",
            verdict(rss_gap, 10),
        ),
        (
            "run --agent peak RSS vs run of a quick command",
            f"{cli['agent_peak_rss_mb'] - cli['quick_command_peak_rss_mb']:+.1f} MB",
            "≤ +10 MB",
            verdict(cli["agent_peak_rss_mb"] - cli["quick_command_peak_rss_mb"], 10),
        ),
    ]


if __name__ == "__main__":
    main()
