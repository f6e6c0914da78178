"""Started by bench_history.py: one store operation as the first call of a fresh process.

    python benchmarks/history_probe.py ROOT list|search TEXT   → milliseconds on stdout

Imports are done before the clock starts; opening the store is inside it (a command pays it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from stackspot_tui.store import HistoryStore


def main() -> None:
    root, operation = Path(sys.argv[1]), sys.argv[2]
    start = time.perf_counter()
    store = HistoryStore(root)
    if operation == "list":
        assert len(store.list_conversations(limit=50)) == 50
    elif operation == "search":
        assert store.search(sys.argv[3], limit=50)
    else:
        raise SystemExit(f"unknown operation {operation}")
    print(f"{(time.perf_counter() - start) * 1000:.3f}")


if __name__ == "__main__":
    main()
