"""History at three sizes: whole turns, the first list, search, opening a long conversation.

    python benchmarks/bench_history.py [--tiers 1k,10k,100k] [--json]

Tiers: 1,000 / 10,000 / 100,000 conversations of 20 turns (20k / 200k / 2M turns, ~1.5 KB
each), generated once under build/bench-data/. Each figure is min / median / max over its
runs; in-process figures next to whole `stackspot-tui` processes where a user runs one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RARE_WORD, cli, cli_data_dir, cli_env, machine, run_process, spread, tier, timed_ms

from stackspot_tui.store import HistoryStore
from stackspot_tui.store.models import StepSummary, now_iso

HERE = Path(__file__).parent
TURN_RUNS = 30
TURNS_IN_A_ROW = 6  # a journal folds every 4-5 turns: each conversation's run has one fold
SEARCH_RUNS = 7
PROCESS_RUNS = 5
STEPS = [
    StepSummary(name=name, order=n, type="LLM") for n, name in enumerate(("fetch", "analyze", "review", "summarize"), 1)
]


def whole_turn(store: HistoryStore, conv_id: str, rng: random.Random) -> int:
    """A quick-command turn's store calls, as the engine makes them: save the prompt, the execution
    id, three progress snapshots, the result. Returns the turn's seq."""
    prompt = "benchmark prompt " * 20
    store.get_conversation(conv_id)
    turn = store.add_turn(conv_id, prompt, prompt, slug="code-review")
    store.get_conversation(conv_id)
    store.update_turn(
        conv_id,
        turn.seq,
        execution_id=f"01J{rng.getrandbits(100):025X}"[:26],
        status="CREATED",
        sent_at=now_iso(),
        conversation_id="01CONV",
    )
    for done in (1, 2, 3):
        steps = [replace(step, done=n < done) for n, step in enumerate(STEPS)]
        store.get_conversation(conv_id)
        store.update_turn(
            conv_id, turn.seq, percentage=done / 4, steps=steps, status="RUNNING", error=None, error_kind=None
        )
    store.get_conversation(conv_id)
    store.update_turn(
        conv_id,
        turn.seq,
        status="COMPLETED",
        result="## Answer\n\n" + "the answer " * 40,
        duration=3.0,
        finished_at=now_iso(),
        percentage=1.0,
        steps=[replace(step, done=True) for step in STEPS],
        error=None,
        error_kind=None,
    )
    store.get_conversation(conv_id)
    return turn.seq


def interleaved_turns(roots: dict[str, Path], work: Path) -> dict[str, dict]:
    """Whole turns appended to existing conversations picked at random, ``TURNS_IN_A_ROW`` in each
    as a user chats (so the journal's folds into the page files are among them), with and
    without fsync, and the disk's own durable write: tier after tier in rounds, so a spell of a
    busy disk falls on every tier alike and the tiers compare. ``fsync`` skipped is what the
    code itself costs. The turns are removed again afterwards (the cached history keeps its
    turns, though the conversations' seqs move on)."""
    from stackspot_tui.atomicfile import write_atomic

    work.mkdir(parents=True, exist_ok=True)
    stores = {name: HistoryStore(root) for name, root in roots.items()}
    rngs = {name: random.Random(7) for name in roots}
    ids = {name: sorted(os.listdir(root / "conversations")) for name, root in roots.items()}
    times: dict[str, dict[str, list[float]]] = {name: {"fsync": [], "none": [], "disk": []} for name in roots}
    appended: dict[str, list[tuple[str, int]]] = {name: [] for name in roots}
    real_fsync = os.fsync
    try:
        for _ in range(TURN_RUNS // TURNS_IN_A_ROW):
            for name, store in stores.items():
                for mode in ("fsync", "none"):
                    os.fsync = real_fsync if mode == "fsync" else (lambda fd: None)
                    conv_id = rngs[name].choice(ids[name])
                    for _ in range(TURNS_IN_A_ROW):
                        start = time.perf_counter()
                        appended[name].append((conv_id, whole_turn(store, conv_id, rngs[name])))
                        times[name][mode].append((time.perf_counter() - start) * 1000)
                os.fsync = real_fsync
                for _ in range(TURNS_IN_A_ROW):  # one durable write of a 30 KB page, as the store makes them
                    start = time.perf_counter()
                    write_atomic(work / "page.json", b"x" * 30_000)
                    times[name]["disk"].append((time.perf_counter() - start) * 1000)
    finally:
        os.fsync = real_fsync
        for name, store in stores.items():
            for conv_id, seq in appended[name]:
                store.delete_turn(conv_id, seq)
    return {
        name: {
            "disk_write_ms": spread(t["disk"]),
            "whole_turn_ms": spread(t["fsync"]),
            "whole_turn_no_fsync_ms": spread(t["none"]),
        }
        for name, t in times.items()
    }


def searches(store: HistoryStore, facts: dict) -> dict:
    """In-process, on an open store: each query kind the search box and `search` take."""
    rare = store.get_turn(facts["rare_word_conversation"], 0)
    words = rare.prompt.split()
    phrase = f'"{words[3]} {words[4]} {words[5]}"'
    queries = {
        "word, rare (1 turn holds it)": (RARE_WORD, False),
        "word, common (most turns hold it)": ("parser", False),
        "two words": ("parser cache", False),
        "prefix, as typed in the app": (RARE_WORD[:6], True),
        "prefix, common": ("pars*", False),
        "phrase": (phrase, False),
        "substring, rare (no word holds it)": (RARE_WORD[1:8], False),
        "substring, common": ("arse", False),
    }
    out = {}
    for name, (text, typing) in queries.items():
        hits = store.search(text, limit=50, prefix_last=typing)
        assert hits, (name, text)
        out[name] = {
            "query": text,
            "hits": len(hits),
            **timed_ms(lambda text=text, typing=typing: store.search(text, prefix_last=typing), SEARCH_RUNS),
        }
    return out


def processes(root: Path, work: Path) -> dict:
    """Whole processes: the first call of a fresh process (timed inside it, store opening included)
    and the `stackspot-tui` command a user types (timed from outside: start-up, imports, output),
    beside the interpreter importing the command line and nothing else."""
    probe = [sys.executable, str(HERE / "history_probe.py"), str(root)]
    env = cli_env(cli_data_dir(work, root))
    out: dict = {}
    for name, args in (("list", ["list"]), ("search", ["search", RARE_WORD])):
        out[f"first {name} of a process"] = spread([float(run_process(probe + args)[2]) for _ in range(PROCESS_RUNS)])
    baseline = [sys.executable, "-c", "import stackspot_tui.cli"]
    out["python -c 'import stackspot_tui.cli'"] = spread([run_process(baseline)[0] * 1000 for _ in range(PROCESS_RUNS)])
    for args in (["conversations"], ["search", RARE_WORD]):
        runs = [run_process(cli(*args), env) for _ in range(PROCESS_RUNS)]
        out[f"stackspot-tui {' '.join(args)}"] = spread([wall * 1000 for wall, _, _ in runs])
    return out


def bench_tier(name: str, root: Path, facts: dict, turns: dict, work: Path) -> dict:
    result: dict = {"tier": name, "facts": facts, **turns}
    store = HistoryStore(root)
    result["list_ms"] = timed_ms(lambda: store.list_conversations(limit=50), 10)
    result["search_ms"] = searches(store, facts)
    big = facts["big_conversation"]
    result["open_all_1000_ms"] = timed_ms(lambda: store.turns(big), 5)
    result["open_last_20_ms"] = timed_ms(lambda: store.turns(big, start=980), 10)
    result["process_ms"] = processes(root, work)
    return result


def main(tiers: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        loaded = {name: tier(name, notice=lambda text: print(text, file=sys.stderr)) for name in tiers}
        turns = interleaved_turns({name: root for name, (root, _) in loaded.items()}, Path(tmp) / "disk")
        return [bench_tier(name, root, facts, turns[name], Path(tmp)) for name, (root, facts) in loaded.items()]


def print_table(results: list[dict]) -> None:
    print(f"history benchmark (ms: min / median / max) · {machine()}")

    def cell(figure: dict) -> str:
        return f"{figure['min']:.1f} / {figure['median']:.1f} / {figure['max']:.1f}"

    for r in results:
        print(f"-- {r['tier']}: {r['facts']['conversations']:,} conversations / {r['facts']['turns']:,} turns")
        print(f"{'one durable atomic write (the disk)':<45} {cell(r['disk_write_ms'])}")
        print(f"{'whole turn (3-4 fsyncs, folds included)':<45} {cell(r['whole_turn_ms'])}")
        print(f"{'whole turn, fsync skipped':<45} {cell(r['whole_turn_no_fsync_ms'])}")
        print(f"{'list the newest 50':<45} {cell(r['list_ms'])}")
        for name, figure in r["search_ms"].items():
            print(f"{'search ' + name:<45} {cell(figure)}  ({figure['hits']} hits)")
        for name, figure in r["process_ms"].items():
            print(f"{name:<45} {cell(figure)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiers", default="1k,10k,100k")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = main(args.tiers.split(","))
    print(json.dumps(rows)) if args.json else print_table(rows)
