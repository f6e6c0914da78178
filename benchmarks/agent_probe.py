"""Started by bench_agents.py: the app headless on the in-process simulator, one turn, measured.

`agent`: a 6,000-word answer streamed at 2,000 words/s. Each piece's arrival (the engine hands
it over) is matched to the first frame the app produced after the piece was rendered into
the transcript; meanwhile the event loop's lag is sampled every 5 ms and a key is typed into
the prompt every 30 ms. `quick`: a 3 s quick command answering the same 6,000 words, shown
whole at its end, in the same app: the peak RSS to compare with.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

AGENT = "words-6000-at-2000"


async def main(kind: str) -> None:
    from textual import events

    from stackspot_tui.api import StackSpotClient
    from stackspot_tui.config import Settings
    from stackspot_tui.engine import AnswerDelta, Backend, ConversationService
    from stackspot_tui.sim import Pacing, Simulator
    from stackspot_tui.store import HistoryStore
    from stackspot_tui.tui.app import StackSpotApp
    from stackspot_tui.tui.stream import StreamingAnswer
    from stackspot_tui.tui.widgets import PromptInput

    tmp = Path(tempfile.mkdtemp())
    simulator = Simulator(pacing=Pacing(first_token=0.3, per_word=1 / 2000))
    client = StackSpotClient(
        client_id="demo-client",
        client_secret="demo-secret",
        token_url="https://sim.test/r/oidc/oauth/token",
        api_url="https://sim.test",
        transport=simulator.transport(),
    )
    backend = Backend(ConversationService(client, HistoryStore(tmp / "history")))
    agent = kind == "agent"
    app = StackSpotApp(
        Settings(data_dir=tmp),
        demo=True,
        backend=backend,
        slug=None if agent else "delay-3000",
        agent_id=AGENT if agent else None,
    )
    arrivals: list[tuple[float, int]] = []  # (time, characters of the answer so far)
    renders: list[tuple[float, int]] = []  # (time an append finished, characters rendered)
    frames: list[float] = []
    received = 0

    original_flush = StreamingAnswer._flush

    async def timed_flush(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        await original_flush(self, *args, **kwargs)
        renders.append((time.perf_counter(), len(self.rendered)))

    StreamingAnswer._flush = timed_flush  # type: ignore[method-assign]

    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        gc.freeze()  # as the real program does once the first screen is up (run_app's on_started)
        display = app._display

        def timed_display(screen, renderable) -> None:  # type: ignore[no-untyped-def]
            if renderable is not None:
                frames.append(time.perf_counter())
            display(screen, renderable)

        app._display = timed_display  # type: ignore[method-assign]
        chat = app.chat
        assert chat is not None
        on_event = chat.on_engine_event

        def timed_event(event) -> None:  # type: ignore[no-untyped-def]
            nonlocal received
            if isinstance(event, AnswerDelta):
                received += len(event.text)
                arrivals.append((time.perf_counter(), received))
            on_event(event)

        chat.on_engine_event = timed_event  # type: ignore[method-assign]
        prompt = app.screen.query_one(PromptInput)
        if agent:
            prompt.load_text("count to six thousand")
        else:  # the quick command echoes it: an answer of the same size, shown whole at the end
            words = [f"word{i}" for i in range(6000)]
            prompt.load_text("\n\n".join(" ".join(words[at : at + 60]) for at in range(0, 6000, 60)))
        await pilot.press("enter")
        prompt.clear()
        lags: list[float] = []
        keys: list[float] = []

        cpu_lags: list[float] = []

        async def sampler() -> None:
            while chat.running:
                start, cpu = time.perf_counter(), time.thread_time()
                await asyncio.sleep(0.005)
                lags.append((time.perf_counter() - start - 0.005) * 1000)
                # The loop thread's own CPU time in the window: the lag an idle machine would see.
                cpu_lags.append((time.thread_time() - cpu) * 1000)

        async def typist() -> None:
            while not arrivals and chat.running:
                await asyncio.sleep(0.01)
            while chat.running:
                typed = len(prompt.text)
                start = time.perf_counter()
                prompt.post_message(events.Key("a", "a"))
                while len(prompt.text) == typed:
                    await asyncio.sleep(0.0005)
                keys.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.03)

        await asyncio.sleep(0.05)
        await asyncio.gather(sampler(), typist())
        await pilot.pause(1.0)  # the answer fully drawn in both modes before the peak is read
    words = []
    render_times = [t for t, _ in renders]
    render_sizes = [n for _, n in renders]
    for arrived, size in arrivals:
        at = bisect.bisect_left(render_sizes, size)
        if at == len(renders):
            continue
        frame = bisect.bisect_left(frames, render_times[at])
        if frame < len(frames):
            words.append((frames[frame] - arrived) * 1000)
    words.sort()
    lags.sort()
    cpu_lags.sort()
    keys.sort()
    pick = lambda values, q: values[min(len(values) - 1, int(len(values) * q))] if values else 0.0  # noqa: E731
    print(
        json.dumps(
            {
                "pieces": len(arrivals),
                "words_per_s": len(arrivals) / (arrivals[-1][0] - arrivals[0][0]) if len(arrivals) > 1 else 0.0,
                "word_median_ms": pick(words, 0.5),
                "word_p95_ms": pick(words, 0.95),
                "loop_lag_p99_ms": pick(lags, 0.99),
                "loop_lag_max_ms": lags[-1] if lags else 0.0,
                "loop_cpu_p99_ms": pick(cpu_lags, 0.99),
                "keys": len(keys),
                "key_median_ms": pick(keys, 0.5),
                "key_max_ms": keys[-1] if keys else 0.0,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
