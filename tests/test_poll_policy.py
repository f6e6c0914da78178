"""The poll plan against every progress shape of shared/stackspot-api.md, on a model clock.

The model: an execution of `duration` seconds with steps of unequal length; its percentage is
finished steps / total (`steps`), elapsed / duration (`linear`), 0 until the end (`stalled`) or
absent (`none`). Requests take no time here: what is checked is where the plan puts its polls.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackspot_tui.api import Execution, PollPolicy

MODES = ("steps", "linear", "stalled", "none")
DEFAULT_STEPS = ((0.05, 0.08), (0.08, 0.15), (0.15, 0.80), (0.80, 1.0))


def document(mode: str, duration: float, t: float, steps=DEFAULT_STEPS, wrap_up: float = 0.0) -> dict:
    """The callback answer at `t` seconds after creation."""
    fraction = min(t / duration, 1.0)
    shown = [
        {"step_name": f"s{i}", "execution_order": i, "step_result": {"answer": "x"} if fraction >= end else None}
        for i, (start, end) in enumerate(steps)
        if fraction >= start
    ]
    finished = t >= duration + wrap_up
    done = sum(1 for s in shown if s["step_result"])
    percentage = {
        "steps": 1.0 if finished else round(done / len(steps), 2),
        "linear": 1.0 if finished else min(round(fraction, 2), 0.99),
        "stalled": 1.0 if finished else 0.0,
        "none": None,
    }[mode]
    progress = {"status": "COMPLETED" if finished else ("CREATED" if fraction < steps[0][0] else "RUNNING")}
    if percentage is not None:
        progress["execution_percentage"] = percentage
    return {"progress": progress, "steps": shown}


def follow(policy: PollPolicy, mode: str, duration: float, **shape) -> tuple[float, list[float]]:
    """(added latency, poll times) of the plan for one execution; the server starts at 0 = the anchor."""
    plan = policy.plan(0.0)
    now = plan.first(0.0)
    polls = []
    while True:
        polls.append(now)
        execution = Execution.parse(document(mode, duration, now, **shape))
        if execution.is_final:
            return now - duration - shape.get("wrap_up", 0.0), polls
        plan.observe(now, execution)
        following = plan.next(now)
        assert following > now
        now = following
        assert now < 10_000, "the plan never reached the end"


def gaps(polls: list[float]) -> list[float]:
    return [b - a for a, b in zip([0.0, *polls], polls, strict=False)]


def fixed_poller_added(period: float, duration: float) -> float:
    """What a fixed poller (first poll at once, then every `period`) adds."""
    return math.ceil(duration / period - 1e-9) * period - duration


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("duration", [0.5, 2, 4, 7, 9, 13, 22, 45, 90])
def test_whole_second_ends_are_seen_at_once(mode, duration):
    """Ends on the grid (the benchmark's durations) are seen by the poll that lands on them."""
    added, polls = follow(PollPolicy(), mode, duration)
    assert added == pytest.approx(0.0, abs=1e-6)
    if duration > 5:
        assert len(polls) / duration <= 1.2


durations = st.floats(min_value=0.05, max_value=400, allow_nan=False)


@st.composite
def step_layouts(draw):
    """1-8 steps of very unequal length, and a CREATED phase."""
    count = draw(st.integers(1, 8))
    cuts = sorted(draw(st.lists(st.floats(0.001, 0.999), min_size=count, max_size=count, unique=True)))
    bounds = [*cuts, 1.0]
    return tuple((bounds[i], bounds[i + 1]) for i in range(count))


@settings(deadline=None)
@given(mode=st.sampled_from(MODES), duration=durations, steps=step_layouts(), wrap_up=st.sampled_from([0.0, 0.0, 0.3]))
def test_promises_hold_for_any_shape(mode, duration, steps, wrap_up):
    policy = PollPolicy()
    added, polls = follow(policy, mode, duration, steps=steps, wrap_up=wrap_up)
    total = duration + wrap_up
    # never silent longer than max_interval
    assert max(gaps(polls)) <= policy.max_interval + 1e-9
    # never later than a fixed poller of max_interval
    assert added <= fixed_poller_added(policy.max_interval, total) + 1e-9
    # at most the grid step late: 1 s under a minute, 3 % of the duration beyond
    assert added <= (policy.interval if total < policy.late_after else max(policy.interval, 0.03 * total)) + 1e-9
    # the poll budget, averaged over the execution (the grid alone is 1/s, plus the first poll)
    if total > 5:
        assert len(polls) <= policy.rate * total + 1


@settings(deadline=None)
@given(duration=st.floats(min_value=20, max_value=300, allow_nan=False))
def test_a_clock_like_percentage_costs_few_polls_and_ends_soon(duration):
    added, polls = follow(PollPolicy(), "linear", duration)
    assert added <= max(0.3, 0.03 * duration)
    grid_only = len(follow(PollPolicy(), "none", duration)[1])
    assert len(polls) <= 0.8 * grid_only


def test_grid_steps_grow_after_a_minute_and_stay_aligned():
    policy = PollPolicy()
    _, polls = follow(policy, "none", 200.0)
    assert all(p in polls for p in range(5, 200, 5))  # every multiple of max_interval
    assert all(g == pytest.approx(1.0) for g in gaps(polls)[2:60])
    later = [g for p, g in zip(polls, gaps(polls), strict=False) if p > 61]
    assert all(g <= 0.03 * p for p, g in zip(polls, gaps(polls), strict=False) if p > 61)
    assert max(later) == pytest.approx(5.0) and polls.count(200.0) == 1


def test_every_step_done_without_a_final_status_is_polled_again_soon():
    policy = PollPolicy()
    added, _ = follow(policy, "steps", 30.5, wrap_up=0.3)
    assert added < 0.3  # the wrap-up poll, not the next grid point


def test_the_last_step_halves_the_grid_when_the_budget_allows():
    policy = PollPolicy()
    _, polls = follow(policy, "steps", 40.75)
    last_step = [p for p in polls if p > 0.8 * 40.75]
    assert any(not float(p).is_integer() for p in last_step)


def test_first_poll_at_once_on_reattach():
    plan = PollPolicy().plan(100.0, reattached=True)
    assert plan.first(250.0) == 250.0
    assert PollPolicy().plan(100.0).first(100.0) == 100.5


@pytest.mark.parametrize(
    "interval, max_interval, step", [(1.0, 5.0, 1.0), (0.9, 5.0, 5 / 6), (1.0, 2.5, 2.5 / 3), (3.0, 2.0, 2.0)]
)
def test_grid_step_divides_the_max_interval(interval, max_interval, step):
    assert PollPolicy(interval=interval, max_interval=max_interval).step == pytest.approx(step)
