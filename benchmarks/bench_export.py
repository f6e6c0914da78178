"""Export a 10,000-turn conversation to each format.

python benchmarks/bench_export.py [--json]
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import _turn, machine

from stackspot_tui import export
from stackspot_tui.store.models import Conversation, Turn

TURNS = 10_000


def main() -> list[dict]:
    rng = random.Random(5)
    conversation = Conversation(
        id="0badcafe",
        slug="code-review",
        title="A long conversation",
        conversation_id="01CONV",
        turn_count=TURNS,
        next_seq=TURNS,
    )
    turns = [Turn.from_dict(_turn(rng, conversation.id, seq, "2026-11-20T12:00:00Z")) for seq in range(TURNS)]
    rows = []
    for fmt in export.FORMATS:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            text = export.render(fmt, conversation, turns)
            times.append((time.perf_counter() - start) * 1000)
        rows.append({"format": fmt, "ms": sorted(times)[1], "target_ms": 1000, "mb": len(text.encode()) / 1e6})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"export of a {TURNS:,}-turn conversation (median of 3) · {machine()}")
    for r in rows:
        print(f"{r['format']:<5} {r['ms']:>8.0f} ms (target {r['target_ms']})  {r['mb']:.1f} MB")


if __name__ == "__main__":
    result = main()
    print(json.dumps(result)) if "--json" in sys.argv else print_table(result)
