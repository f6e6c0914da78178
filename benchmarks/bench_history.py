"""History at 10,000 conversations / 200,000 turns: append, open, list, search — vs one TinyDB file.

python benchmarks/bench_history.py [--json]
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tinydb import Query, TinyDB

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, build_history, build_naive, machine, median_ms

from stackspot_tui.store import HistoryStore


def once_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> list[dict]:
    source = DATA / "history"
    facts = build_history(source)
    build_naive(DATA / "naive.json", source)
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        root = work / "history"
        shutil.copytree(source, root)  # appends must not grow the cached copy
        store = HistoryStore(root)
        rng = random.Random(3)
        conversations = store.list_conversations()
        targets = [rng.choice(conversations).id for _ in range(30)]
        appends = iter(targets)
        results = [
            {
                "name": "append a turn (10k conv / 200k turns)",
                "target_ms": 20,
                "ms": median_ms(lambda: store.add_turn(next(appends), "benchmark prompt " * 20, "x"), runs=30),
            },
        ]
        empty = HistoryStore(work / "empty")
        conv = empty.create_conversation("qc")
        results.append(
            {
                "name": "append a turn (empty history)",
                "target_ms": 20,
                "ms": median_ms(lambda: empty.add_turn(conv.id, "benchmark prompt " * 20, "x"), runs=30),
            }
        )
        big = facts["big_conversation"]
        results.append(
            {
                "name": "open a 1,000-turn conversation (all turns)",
                "target_ms": 100,
                "ms": median_ms(lambda: store.turns(big)),
            }
        )
        results.append(
            {
                "name": "open it as the app does (last 20 turns)",
                "target_ms": 100,
                "ms": median_ms(lambda: store.turns(big, start=980)),
            }
        )
        results.append(
            {
                "name": "list 10,000 conversations (first call)",
                "target_ms": 50,
                "ms": median_ms(lambda: HistoryStore(root).list_conversations()),
            }
        )
        results.append(
            {"name": "list 10,000 conversations", "target_ms": 50, "ms": median_ms(lambda: store.list_conversations())}
        )
        results.append(
            {
                "name": "search a rare word (scans everything)",
                "target_ms": 500,
                "ms": median_ms(lambda: store.search("xylophone"), runs=3),
            }
        )
        results.append(
            {
                "name": "search a common word (first 50 hits)",
                "target_ms": 500,
                "ms": median_ms(lambda: store.search("parser"), runs=3),
            }
        )

        naive_path = work / "naive.json"
        shutil.copy(DATA / "naive.json", naive_path)
        db = TinyDB(naive_path)
        turns_table, conversations_table = db.table("turns"), db.table("conversations")
        Turn = Query()
        naive = {
            "append a turn (10k conv / 200k turns)": once_ms(
                lambda: turns_table.insert({"conversation": big, "prompt": "x"})
            ),
            "open a 1,000-turn conversation (all turns)": once_ms(lambda: turns_table.search(Turn.conversation == big)),
            "list 10,000 conversations": once_ms(lambda: conversations_table.all()),
            "search a rare word (scans everything)": once_ms(
                lambda: [t for t in turns_table.all() if "xylophone" in json.dumps(t.get("result")).lower()]
            ),
        }
        db.close()
        for row in results:
            if row["name"] in naive:
                row["naive_ms"] = naive[row["name"]]
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_table(results: list[dict]) -> None:
    print(f"history benchmark · {machine()}")
    print(f"{'operation':<45} {'ms':>9} {'target':>8} {'naive ms':>10} {'ratio':>7}")
    for r in results:
        naive = f"{r['naive_ms']:>10.0f}" if "naive_ms" in r else f"{'':>10}"
        ratio = f"{r['naive_ms'] / r['ms']:>6.0f}x" if "naive_ms" in r else ""
        print(f"{r['name']:<45} {r['ms']:>9.2f} {r['target_ms']:>8} {naive} {ratio:>7}")


if __name__ == "__main__":
    rows = main()
    print(json.dumps(rows)) if "--json" in sys.argv else print_table(rows)
