"""Started by bench_app.py: open the app headless, print READY at the first frame, then measure."""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))


async def main(data_dir: str, conversation: str | None, extra: bool) -> None:
    from stackspot_tui.config import Settings
    from stackspot_tui.runtime import build_backend
    from stackspot_tui.tui.app import StackSpotApp

    settings = Settings(data_dir=Path(data_dir))
    app = StackSpotApp(
        settings,
        demo=True,
        backend_factory=lambda demo: build_backend(settings, demo=True),
        on_started=gc.freeze,  # as the real program does (tui.run_app)
        conversation_id=conversation,
    )
    gc.freeze()  # as the real program does before its screen starts
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        print("READY", flush=True)
        if not extra:
            return
        results = {"rss_at_first_frame_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        results.update(await stream_log(app, pilot))
        results["answer_1mb_ms"] = await big_answer(app, pilot)
        # After the heavy work: 10,000 log lines and a 1 MB answer on screen.
        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(results), flush=True)


async def stream_log(app, pilot) -> dict:
    """10,000 progress lines written as fast as events arrive, while the loop's lag is sampled."""
    from textual import events

    from stackspot_tui.progress import ProgressLine
    from stackspot_tui.tui.widgets import ProgressLog, PromptInput

    log = app.screen.query_one(ProgressLog)
    lags: list[float] = []
    done = asyncio.Event()

    async def sampler() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - start - 0.005) * 1000)

    async def writer() -> None:
        for n in range(10_000):
            log.add(ProgressLine(f"RUNNING {n % 100}% · step {n} · some progress text", "info"))
            if n % 20 == 0:
                await asyncio.sleep(0)  # events arrive from the engine between awaits
        done.set()

    start = time.perf_counter()
    await asyncio.gather(sampler(), writer())
    # A key typed while the backlog of lines is still being drawn: time until the prompt has it.
    prompt = app.screen.query_one(PromptInput)
    prompt.focus()
    done.clear()
    sampler_task = asyncio.create_task(sampler())
    keys: list[float] = []
    while log._pending:  # keys typed while the backlog is drawn, loop lag still sampled
        typed = len(prompt.text)
        key_start = time.perf_counter()
        prompt.post_message(events.Key("a", "a"))
        while len(prompt.text) == typed:
            await asyncio.sleep(0.001)
        keys.append((time.perf_counter() - key_start) * 1000)
        await asyncio.sleep(0.05)
    done.set()
    await sampler_task
    lags.sort()
    keys.sort()
    return {
        "log_10k_lines_ms": (time.perf_counter() - start) * 1000,
        "loop_lag_p99_ms": lags[int(len(lags) * 0.99)],
        "loop_lag_max_ms": lags[-1],
        "keys_during_drain": len(keys),
        "key_median_ms": keys[len(keys) // 2] if keys else 0.0,
        "key_max_ms": keys[-1] if keys else 0.0,
    }


async def big_answer(app, pilot) -> float:
    from stackspot_tui.tui.widgets import MessageView

    text = "## Section\n\nSome *markdown* text.\n\n```python\nprint('x')\n```\n\n" * 18_000
    start = time.perf_counter()
    await app.chat.transcript.mount(MessageView("assistant", text, markdown=True))
    await pilot.pause()
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    conversation = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    asyncio.run(main(sys.argv[1], conversation, "--extra" in sys.argv))
