from __future__ import annotations

import asyncio
import gc
import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

# Property tests: `make test` draws enough examples to catch a regression on every run (each run
# draws new ones); `make test-fast` (HYPOTHESIS_PROFILE=fast) fewer, for a quick answer while
# working; `make test-deep` (HYPOTHESIS_PROFILE=deep) is the thorough search. How fast
# examples are drawn says how busy the machine is, not whether the code is right: not a failure.
settings.register_profile("suite", max_examples=40, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fast", max_examples=15, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "suite")
settings.load_profile(PROFILE)


def examples(suite: int) -> int:
    """A property's own number of examples (what `make test` draws), scaled as the profiles
    are: a fifth under test-fast (at least 10), ten times under test-deep."""
    return max(10, round(suite * {"fast": 0.2, "deep": 10.0}.get(PROFILE, 1.0)))


# Every history write is fsynced (twice: file and directory). On this project's disks that costs
# ~10 ms a write, which the suite would spend waiting, so temporary files (tmp_path, and the
# subprocesses' TMPDIR) live in memory when the machine has a tmpfs. fsync is still called.
MEMORY_TMP = "/dev/shm"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("TMPDIR") is None and os.path.isdir(MEMORY_TMP) and os.access(MEMORY_TMP, os.W_OK):
        os.environ["TMPDIR"] = MEMORY_TMP
        tempfile.tempdir = MEMORY_TMP


def pytest_collection_finish(session: pytest.Session) -> None:
    """What a worker holds once the tests are collected (pytest, hypothesis, Textual, every test
    module) lives as long as it does: frozen, it is left out of every cyclic collection after,
    as the real program leaves out what it imported (`run_app`). The app tests spent ~10% of
    their CPU walking it."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name.startswith("test_tui"):
            item.add_marker(pytest.mark.app)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """In-process CLI runs see no STACKSPOT setting of the machine; history under tmp_path/data."""
    for key in list(os.environ):
        if key.startswith("STACKSPOT"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STACKSPOT_TUI_CONFIG", str(tmp_path / "none.toml"))
    return tmp_path


class FakeTime:
    """A monotonic clock that only moves when code sleeps: no real waiting in unit tests."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # still a suspension point, so other tasks (and cancels) get in


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """fsync makes writes survive a power cut, which no test can cause; what a killed process
    leaves behind (the order: temp file, rename) does not depend on it. Skipping it in-process
    makes the store-heavy tests several times faster; test_store.py checks it is called."""
    monkeypatch.setattr("stackspot_tui.store.storage.os.fsync", lambda fd: None)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


# -- an engine wired to the in-process simulator, on fake time ---------------------------------

SIM_URL = "https://sim.test"
SIM_TOKEN_URL = f"{SIM_URL}/stackspot-freemium/oidc/oauth/token"


def make_client(simulator, fake: FakeTime, **kwargs):
    from stackspot_tui.api import PollPolicy, RetryPolicy, StackSpotClient

    return StackSpotClient(
        client_id="demo-client",
        client_secret="demo-secret",
        token_url=SIM_TOKEN_URL,
        api_url=SIM_URL,
        transport=simulator.transport(),
        retry=kwargs.pop("retry", RetryPolicy(max_retries=3)),
        poll=kwargs.pop("poll", PollPolicy()),
        sleep=fake.sleep,
        clock=fake.clock,
        **kwargs,
    )


@pytest.fixture
def simulator(fake_time):
    from stackspot_tui.sim import Simulator

    return Simulator(duration=3.0, clock=fake_time.clock, sleep=fake_time.sleep)


@pytest.fixture
def store(tmp_path):
    from stackspot_tui.store import HistoryStore

    return HistoryStore(tmp_path / "history")


@pytest.fixture
async def service(simulator, store, fake_time):
    from stackspot_tui.engine import ConversationService

    client = make_client(simulator, fake_time)
    yield ConversationService(client, store, clock=fake_time.clock)
    await client.aclose()
