"""Shared helpers for the benchmarks: a large synthetic history, timing, machine facts."""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stackspot_tui.store import HistoryStore
from stackspot_tui.store.history import INDEX_TABLE, PAGE_SIZE, RECORD_FILE, SCHEMA_VERSION, TURNS_TABLE
from stackspot_tui.store.models import Conversation, StepSummary, Turn

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "build" / "bench-data"  # generated once, kept between runs (build/ is not in git)
BIG_CONVERSATION_TURNS = 1_000  # one conversation this long, for "open"
TURNS_PER_CONVERSATION = 20
# name: conversations (turns = 20 a conversation)
TIERS = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
WORDS = (
    "parser token review function module async client retry cache index page shard widget "
    "render stream poll export search history conversation answer prompt step source"
).split()
RARE_WORD = "xylophone"  # in one turn of each tier, for a search whose answer is one turn


def _vocabulary() -> tuple[list[str], list[float]]:
    """The common words above, then 20,000 made-up ones, drawn with Zipf's law (as in real text)."""
    rng = random.Random(0)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    made_up = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(21_000)})
    rng.shuffle(made_up)
    words = WORDS + [w for w in made_up if w not in WORDS][:20_000]
    weights, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 1)
        weights.append(total)
    return words, weights


VOCABULARY, CUMULATIVE = _vocabulary()
_POOL: list[str] = []  # a long run of words drawn once; texts are slices of it at random places


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def baseline(kept: list[float]) -> float:
    """One run of the baseline, `python -c "import textual.app"` timed whole, kept in ``kept``
    too: how fast the shared machine is at that moment, run beside each measured run."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import textual.app"], check=True, capture_output=True)
    kept.append(time.perf_counter() - start)
    return kept[-1]


def spread(values: list[float]) -> dict:
    """A figure over its runs: min, median, max (and the runs themselves)."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "runs": [round(v, 3) for v in values],
    }


def timed_ms(fn: Callable[[], object], runs: int = 5) -> dict:
    """Milliseconds of ``fn`` over ``runs`` calls in this process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return spread(times)


def _text(rng: random.Random, size: int) -> str:
    if not _POOL:
        _POOL.extend(random.Random(1).choices(VOCABULARY, cum_weights=CUMULATIVE, k=1_000_000))
    at = rng.randrange(len(_POOL) - size)
    return " ".join(_POOL[at : at + size // 5])[:size]


def _turn(rng: random.Random, conv_id: str, seq: int, stamp: str) -> dict:
    """A finished quick-command turn, as the store writes it (~1.5 KB)."""
    prompt = _text(rng, 300)
    if not _TEMPLATE:
        _TEMPLATE.update(
            Turn(
                conversation="",
                seq=0,
                prompt="",
                input_data="",
                status="COMPLETED",
                percentage=1.0,
                steps=[StepSummary(name="analyze", order=1, type="LLM", done=True)],
                duration=3.0,
            ).to_dict()
        )
    return {
        **_TEMPLATE,
        "conversation": conv_id,
        "seq": seq,
        "prompt": prompt,
        "input_data": prompt,
        "execution_id": f"01J{rng.getrandbits(100):025X}"[:26],
        "conversation_id": "01CONV" + conv_id,
        "steps": [dict(step) for step in _TEMPLATE["steps"]],
        "result": "## Answer\n\n" + _text(rng, 420),
        "created_at": stamp,
        "finished_at": stamp,
    }


_TEMPLATE: dict = {}


def conversation_ids(count: int, rng: random.Random) -> list[str]:
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(f"{rng.getrandbits(32):08x}")
    return sorted(ids)


def tier_path(tier: str) -> Path:
    return DATA / f"history-{tier}"


def build_history(root: Path, conversations: int, seed: int = 1, notice=print) -> dict:
    """A history in the store's own layout (written directly: no per-turn fsync), its search
    catalog built by opening it. Kept: a later call returns the facts of the one on disk."""
    facts_path = root.parent / f"{root.name}.facts.json"
    if facts_path.exists() and (root / "meta.json").exists():
        return json.loads(facts_path.read_text())
    if root.exists():
        shutil.rmtree(root)  # a generation cut short
    started = time.perf_counter()
    turns = conversations * TURNS_PER_CONVERSATION
    notice(f"generating {conversations:,} conversations / {turns:,} turns in {root} (once)…")
    rng = random.Random(seed)
    ids = conversation_ids(conversations, rng)
    big = ids[0]
    rare_at = ids[conversations // 2]
    per_conversation, extra = divmod(turns - BIG_CONVERSATION_TURNS, conversations - 1)
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    span = 330 * 86_400  # conversations spread over most of a year, the newest last
    for n, conv_id in enumerate(ids):
        count = BIG_CONVERSATION_TURNS if conv_id == big else per_conversation + (n <= extra)
        start = origin + timedelta(seconds=span * n / conversations)
        pages: dict[int, dict] = {}
        stamp = ""
        for seq in range(count):
            stamp = (start + timedelta(seconds=seq * 37)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            pages.setdefault(seq // PAGE_SIZE, {})[str(seq + 1)] = _turn(rng, conv_id, seq, stamp)
        if conv_id == rare_at:
            pages[0]["1"]["result"] += f" {RARE_WORD}"
        directory = root / "conversations" / conv_id
        directory.mkdir(parents=True, exist_ok=True)
        for page, records in pages.items():
            (directory / f"{page:04d}.json").write_text(json.dumps({TURNS_TABLE: records}, separators=(",", ":")))
        record = Conversation(
            id=conv_id,
            slug=rng.choice(["code-review", "explain-code", "generate-tests"]),
            title=_text(rng, 50),
            conversation_id="01CONV" + conv_id,
            created_at=start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            updated_at=stamp,
            turn_count=count,
            next_seq=count,
        ).to_dict()
        (directory / RECORD_FILE).write_text(
            json.dumps({INDEX_TABLE: {str(int(conv_id, 16) + 1): record}}, separators=(",", ":"))
        )
    (root / "meta.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "app": "stackspot-tui"}))
    written = time.perf_counter() - started
    HistoryStore(root, notice=notice)  # builds the search catalog
    facts = {
        "conversations": conversations,
        "turns": turns,
        "big_conversation": big,
        "rare_word_conversation": rare_at,
        "bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
        "files_s": round(written, 1),
        "catalog_s": round(time.perf_counter() - started - written, 1),
    }
    facts_path.write_text(json.dumps(facts))
    return facts


def tier(name: str, notice=print) -> tuple[Path, dict]:
    """A tier's history (generated the first time) and its facts."""
    root = tier_path(name)
    return root, build_history(root, TIERS[name], notice=notice)


def cli_env(data_dir: Path) -> dict:
    """The environment of a `stackspot-tui` process on a benchmark history (``data_dir/history``)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")},
        "STACKSPOT_TUI_DATA_DIR": str(data_dir),
        "STACKSPOT_TUI_CONFIG": str(data_dir / "none.toml"),
    }


def cli_data_dir(work: Path, history: Path) -> Path:
    """A data directory whose history (and demo history) is ``history``."""
    data_dir = work / f"data-{history.name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("history", "demo"):
        if not (data_dir / name).exists():
            (data_dir / name).symlink_to(history.resolve())
    return data_dir


def run_process(
    args: list[str], env: dict | None = None, *, on_start: Callable[[int], object] | None = None
) -> tuple[float, float, str]:
    """Run a whole process: its wall time (s), its peak RSS (MB) and its stdout. Fails loudly.
    ``on_start`` is called with its pid once it runs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        if on_start is not None:
            on_start(process.pid)
        # Its rusage: ru_maxrss is the peak RSS of the largest of it and the children it waited for.
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{args} exited {process.returncode}: {err.read().decode()[-500:]}")
        return elapsed, usage.ru_maxrss / 1024, out.read().decode()


def run_process_tree(args: list[str], env: dict | None = None) -> tuple[float, float, float, str]:
    """`run_process`, and the peak memory of the process and its children together: the sum of
    their PSS (a page shared by several counted once over all), sampled every 50 ms from /proc
    (Linux; elsewhere 0). Returns wall time (s), that sum (MB), the largest one's peak RSS (MB)
    and stdout."""
    peak = [0.0]
    done = threading.Event()
    samplers: list[threading.Thread] = []

    def sample(pid: int) -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], sum(_pss_kb(p) for p in _tree(pid)) / 1024)

    def start(pid: int) -> None:
        samplers.append(threading.Thread(target=sample, args=(pid,), daemon=True))
        samplers[-1].start()

    try:
        elapsed, largest, out = run_process(args, env, on_start=start)
    finally:
        done.set()
        for sampler in samplers:
            sampler.join()
    return elapsed, peak[0], largest, out


def _tree(pid: int) -> list[int]:
    pids, at = [pid], 0
    while at < len(pids):
        try:
            children = Path(f"/proc/{pids[at]}/task/{pids[at]}/children").read_text().split()
        except OSError:
            children = []
        pids += [int(c) for c in children]
        at += 1
    return pids


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cli(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "stackspot-tui"), *args]
