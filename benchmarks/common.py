"""Shared helpers for the benchmarks: a large synthetic history, timing, machine facts."""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from stackspot_tui.store.history import INDEX_TABLE, PAGE_SIZE, SCHEMA_VERSION, TURNS_TABLE
from stackspot_tui.store.models import Conversation, StepSummary, Turn

DATA = Path(__file__).parent / ".data"
CONVERSATIONS = 10_000
TURNS = 200_000
BIG_CONVERSATION_TURNS = 1_000  # one conversation this long, for "open"
WORDS = (
    "parser token review function module async client retry cache index page shard widget "
    "render stream poll export search history conversation answer prompt step source"
).split()


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _text(rng: random.Random, size: int) -> str:
    out, length = [], 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def _turn(rng: random.Random, conv_id: str, seq: int, stamp: str) -> dict:
    prompt = _text(rng, 300)
    turn = Turn(
        conversation=conv_id,
        seq=seq,
        prompt=prompt,
        input_data=prompt,
        status="COMPLETED",
        execution_id=f"01J{rng.getrandbits(100):025X}"[:26],
        conversation_id="01CONV" + conv_id,
        percentage=1.0,
        steps=[StepSummary(name="analyze", order=1, type="LLM", done=True)],
        result="## Answer\n\n" + _text(rng, 420),
        created_at=stamp,
        finished_at=stamp,
        duration=3.0,
    )
    return turn.to_dict()


def conversation_ids(count: int, rng: random.Random) -> list[str]:
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(f"{rng.getrandbits(32):08x}")
    return sorted(ids)


def build_history(root: Path, conversations: int = CONVERSATIONS, turns: int = TURNS, seed: int = 1) -> dict:
    """Write a history in the store's own layout, fast (no per-turn fsync). Returns facts about it."""
    marker = root / "meta.json"
    facts_path = root / "facts.json"
    if marker.exists() and facts_path.exists():
        return json.loads(facts_path.read_text())
    rng = random.Random(seed)
    ids = conversation_ids(conversations, rng)
    big = ids[0]
    per_conversation, extra = divmod(turns - BIG_CONVERSATION_TURNS, conversations - 1)
    shards: dict[str, dict] = {}
    for n, conv_id in enumerate(ids):
        count = BIG_CONVERSATION_TURNS if conv_id == big else per_conversation + (n <= extra)
        stamp = f"2026-{1 + n % 11:02d}-{1 + n % 27:02d}T12:00:00.{n:06d}Z"
        pages: dict[int, dict] = {}
        for seq in range(count):
            pages.setdefault(seq // PAGE_SIZE, {})[str(seq + 1)] = _turn(rng, conv_id, seq, stamp)
        if n == conversations // 2:  # one rare word, for a search that must scan everything
            pages[0]["1"]["result"] += " xylophone"
        directory = root / "conversations" / conv_id
        directory.mkdir(parents=True, exist_ok=True)
        for page, records in pages.items():
            (directory / f"{page:04d}.json").write_text(json.dumps({TURNS_TABLE: records}, separators=(",", ":")))
        record = Conversation(
            id=conv_id,
            slug=rng.choice(["code-review", "explain-code", "generate-tests"]),
            title=_text(rng, 50),
            conversation_id="01CONV" + conv_id,
            created_at=stamp,
            updated_at=stamp,
            turn_count=count,
            next_seq=count,
        ).to_dict()
        shards.setdefault(conv_id[0], {})[str(int(conv_id, 16) + 1)] = record
    (root / "index").mkdir(parents=True, exist_ok=True)
    for shard, records in shards.items():
        (root / "index" / f"{shard}.json").write_text(json.dumps({INDEX_TABLE: records}, separators=(",", ":")))
    marker.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "app": "stackspot-tui"}))
    facts = {
        "conversations": conversations,
        "turns": turns,
        "big_conversation": big,
        "bytes": sum(p.stat().st_size for p in root.rglob("*.json")),
    }
    facts_path.write_text(json.dumps(facts))
    return facts


def build_naive(path: Path, source: Path) -> None:
    """The naive layout: every conversation and turn in one TinyDB file (default JSONStorage)."""
    if path.exists():
        return
    conversations, turns = {}, {}
    for shard in (source / "index").glob("*.json"):
        conversations.update(json.loads(shard.read_text())[INDEX_TABLE])
    doc_id = 0
    for page in sorted((source / "conversations").rglob("*.json")):
        for record in json.loads(page.read_text())[TURNS_TABLE].values():
            doc_id += 1
            turns[str(doc_id)] = record
    path.write_text(json.dumps({"conversations": conversations, "turns": turns}))
