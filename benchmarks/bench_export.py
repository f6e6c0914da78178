"""Exports as a user runs them: a whole `stackspot-tui export` process, reading the history and
writing the files, timed from outside, with its peak memory.

    python benchmarks/bench_export.py [--json]

- `export --all` of the 10k tier (10,000 conversations / 200,000 turns), each format;
- `export ID` of one 10,000-turn conversation, each format (and in-process, for comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, _turn, cli, cli_data_dir, cli_env, machine, run_process, run_process_tree, spread, tier

from stackspot_tui import export
from stackspot_tui.store import HistoryStore
from stackspot_tui.store.models import Conversation, Turn

LONG_TURNS = 10_000
ALL_RUNS = {"md": 3, "json": 1, "html": 1, "txt": 1}  # md carries the target
ONE_RUNS = 3


def long_conversation() -> tuple[Path, str]:
    """A history holding one 10,000-turn conversation (made once, kept under build/)."""
    root = DATA / "history-long"
    facts = DATA / "history-long.facts.json"
    if facts.exists():
        return root, json.loads(facts.read_text())["id"]
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(5)
    conversation = Conversation(id="0badcafe", slug="code-review", title="A long conversation")
    turns = [Turn.from_dict(_turn(rng, conversation.id, seq, "2026-11-20T12:00:00.000Z")) for seq in range(LONG_TURNS)]
    imported = HistoryStore(root).import_conversation(conversation, turns)
    facts.write_text(json.dumps({"id": imported.id}))
    return root, imported.id


def export_all(work: Path) -> list[dict]:
    root, facts = tier("10k", notice=lambda text: print(text, file=sys.stderr))
    env = cli_env(cli_data_dir(work, root))
    rows = []
    for fmt, runs in ALL_RUNS.items():
        walls, rss, memory = [], [], []
        for _ in range(runs):
            target = work / f"all-{fmt}"
            # The last run's 10,000 files were just deleted: the file system finishes that first,
            # or its work lands on this run's file creations (12.5 s for the first md run, 21 s
            # for the next two, untouched code).
            os.sync()
            wall, together, peak, _ = run_process_tree(cli("export", "--all", "-f", fmt, "-o", str(target)), env)
            assert len(list(target.iterdir())) == facts["conversations"]
            size = sum(p.stat().st_size for p in target.iterdir())
            shutil.rmtree(target)
            walls.append(wall)
            rss.append(peak)
            memory.append(together)
        rows.append(
            {
                "format": fmt,
                "conversations": facts["conversations"],
                "turns": facts["turns"],
                "s": spread(walls),
                "turns_per_s": spread([facts["turns"] / w for w in walls]),
                "peak_rss_mb": spread(rss),  # the largest process's
                "memory_mb": spread(memory),  # the worker processes' and the parent's PSS, summed
                "mb": size / 1e6,
            }
        )
    return rows


def export_one(work: Path) -> list[dict]:
    root, conv_id = long_conversation()
    env = cli_env(cli_data_dir(work, root))
    store = HistoryStore(root)
    rows = []
    for fmt in export.FORMATS:
        target = work / f"one.{fmt}"
        walls, rss, inside = [], [], []
        for _ in range(ONE_RUNS):
            wall, peak, _ = run_process(cli("export", conv_id, "-f", fmt, "-o", str(target), "--force"), env)
            walls.append(wall * 1000)
            rss.append(peak)
            start = time.perf_counter()
            conversation = store.get_conversation(conv_id)  # as the command reads it: once
            pieces = export.chunks(fmt, conversation, store.iter_turns(conversation))
            export.write_new_file(target, pieces, force=True)
            inside.append((time.perf_counter() - start) * 1000)
        rows.append(
            {
                "format": fmt,
                "turns": LONG_TURNS,
                "process_ms": spread(walls),
                "in_process_ms": spread(inside),
                "peak_rss_mb": spread(rss),
                "mb": target.stat().st_size / 1e6,
            }
        )
    return rows


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=DATA) as tmp:
        work = Path(tmp)
        return {"all": export_all(work), "one": export_one(work)}


def print_table(result: dict) -> None:
    print(f"exports, whole processes (min / median / max) · {machine()}")
    for r in result["all"]:
        s, rate, rss = r["s"], r["turns_per_s"], r["peak_rss_mb"]
        print(
            f"export --all {r['format']:<4} {r['turns']:,} turns: {s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f} s,"
            f" {rate['median']:,.0f} turns/s, memory {r['memory_mb']['max']:.0f} MB (its processes' PSS;"
            f" the largest's RSS {rss['max']:.0f} MB), {r['mb']:.0f} MB written"
        )
    for r in result["one"]:
        p, i = r["process_ms"], r["in_process_ms"]
        print(
            f"export ID {r['format']:<4} ({r['turns']:,} turns): process {p['median']:.0f} ms"
            f" (in-process {i['median']:.0f} ms), peak RSS {r['peak_rss_mb']['max']:.0f} MB, {r['mb']:.1f} MB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = main()
    print(json.dumps(result)) if args.json else print_table(result)
