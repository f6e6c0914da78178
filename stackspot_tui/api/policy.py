"""How long to wait: between polls of an execution, and before retrying a failed request."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .models import Execution


@dataclass(frozen=True)
class PollPolicy:
    """When to poll an execution.

    `execution_percentage` counts finished steps: it jumps when a step ends and stalls for as
    long as a long LLM step runs, so it cannot say when the execution will end. The plan
    therefore rests on a grid that needs no estimate, and spends a few extra polls only where
    the answer says the end is near:

    - **A grid anchored on the creation**: a first poll after ``initial``, then one every
      ``interval`` (a divisor of ``max_interval``). Every multiple of ``max_interval`` is on
      it, so the plan is never later than a fixed poller of that period, and it is never
      silent longer than ``max_interval``. An execution is seen finished at most ``interval``
      after its end. Beyond ``late_after`` seconds the step grows with the elapsed time (the
      largest divisor of ``max_interval`` within ``late_fraction`` of it), still aligned.
    - **Extra polls**, only within ``rate`` polls a second over the execution so far:
      just after the end a clock-like percentage predicts; soon after every step is done (or
      100%) without a final status; between grid points while the last step runs.
    - **Fewer polls** when the percentage has behaved like a clock for several polls: until
      about a grid step before the end it predicts, a poll every half ``max_interval``.
    """

    initial: float = 0.5
    interval: float = 1.0
    max_interval: float = 5.0
    late_after: float = 60.0
    late_fraction: float = 0.03
    rate: float = 1.2  # polls per second, on average over an execution, that extra polls may not exceed
    margin: float = 0.05  # aim an extra poll this far past a predicted end
    wrap_up: float = 0.2  # delay of the extra poll when every step is done but the status is not final

    def plan(self, anchor: float, *, reattached: bool = False) -> PollPlan:
        """A plan for one execution created at monotonic time ``anchor``."""
        return PollPlan(self, anchor, reattached=reattached)

    @property
    def step(self) -> float:
        """The grid step under ``late_after``: ``interval`` rounded down to a divisor of ``max_interval``."""
        return self.max_interval / math.ceil(self.max_interval / min(self.interval, self.max_interval) - 1e-9)

    def step_at(self, elapsed: float) -> float:
        """Grid step for the ``max_interval`` period that starts at ``elapsed``."""
        step = self.step
        if elapsed < self.late_after:
            return step
        allowed = self.late_fraction * elapsed - 0.1  # the answer's own latency counts too
        divisions = max(1, math.ceil(self.max_interval / max(allowed, 1e-9) - 1e-9))
        return max(step, self.max_interval / divisions)

    def grid_after(self, elapsed: float) -> float:
        """The first grid point strictly after ``elapsed`` (seconds since the anchor)."""
        period_start = math.floor(elapsed / self.max_interval + 1e-9) * self.max_interval
        step = self.step_at(period_start)
        return period_start + (math.floor((elapsed - period_start) / step + 1e-9) + 1) * step


@dataclass
class _Seen:
    at: float  # seconds since the anchor
    percentage: float | None
    steps_done: int
    steps: int


class PollPlan:
    """The polls of one execution: ``first()``, then ``observe()`` each answer and ask ``next()``.

    Times are monotonic seconds; the plan keeps no clock of its own.
    """

    def __init__(self, policy: PollPolicy, anchor: float, *, reattached: bool = False) -> None:
        self.policy = policy
        self.anchor = anchor
        self.polls = 0
        self._reattached = reattached
        self._seen: list[_Seen] = []

    def first(self, now: float) -> float:
        """When to send the first poll; at once when re-attaching to an execution."""
        return now if self._reattached else max(now, self.anchor + self.policy.initial)

    def observe(self, sent_at: float, execution: Execution) -> None:
        """Record an answer; ``sent_at`` is when its request went out."""
        self.polls += 1
        done = sum(1 for step in execution.steps if step.done)
        self._seen.append(_Seen(sent_at - self.anchor, execution.progress.percentage, done, len(execution.steps)))

    def next(self, now: float) -> float:
        """When to send the next poll (monotonic), given that it is ``now``."""
        policy = self.policy
        elapsed = now - self.anchor
        grid = policy.grid_after(elapsed)
        end = self.predicted_end()
        if end is not None and end[0] - elapsed > 2 * policy.step_at(elapsed):
            # A clock-like percentage puts the end far off: the coarse grid, and one poll a grid
            # step before the earliest end it allows (to check the estimate), suffice until then.
            half = policy.max_interval / 2  # not the whole interval: a late wake-up must not exceed it
            coarse = (math.floor(elapsed / half + 1e-9) + 1) * half
            return self.anchor + max(grid, min(coarse, self._grid_before(elapsed, end[0])))
        extra = self._extra(elapsed, grid, None if end is None else end[1])
        return self.anchor + (extra if extra is not None else grid)

    # -- where the end is likely ----------------------------------------------------------

    def predicted_end(self) -> tuple[float, float] | None:
        """When a clock-like percentage reaches 100%: (earliest, latest) seconds from the anchor.

        Clock-like: it rose at least three times with no step finishing (a percentage that counts
        steps moves only when one ends), its last three rises agree on the end, and it has not
        stalled since. A percentage rounded to 0.01 only bounds the end; each rise narrows them.
        """
        rises = [
            (before, after)
            for before, after in zip(self._seen, self._seen[1:], strict=False)
            if after.percentage != before.percentage
        ]
        if sum(1 for before, after in rises if before.steps_done == after.steps_done) < 3:
            return None
        rises = rises[-3:]
        for before, after in rises:
            if before.percentage is None or after.percentage is None:
                return None
            if not 0 <= before.percentage < after.percentage < 1 or after.at <= 0:
                return None
        shown = [after.percentage for _, after in rises]
        slack = 0.005 if all(abs(p * 100 - round(p * 100)) < 1e-6 for p in shown) else 1e-9  # type: ignore[operator]
        earliest, latest = 0.0, math.inf
        for before, after in rises:
            p = after.percentage
            assert p is not None
            earliest = max(earliest, after.at / (p + slack), before.at / max(p - slack, 1e-9))
            if p - slack > 0:
                latest = min(latest, after.at / (p - slack))
        if not math.isfinite(latest) or earliest > latest * 1.02:
            return None  # the rises disagree: not a clock
        if self._seen[-1].at - rises[-1][1].at > max(3 * self.policy.max_interval, 0.05 * latest):
            return None  # it stopped moving: no longer a clock
        return min(earliest, latest), latest

    def _steps_left(self) -> int | None:
        """Steps still to finish when the percentage counts finished steps (done / total)."""
        last = self._seen[-1] if self._seen else None
        if last is None or last.percentage is None or last.steps_done == 0:
            return None
        if last.percentage >= 1.0:
            return 0
        total = last.steps_done / last.percentage if last.percentage > 0 else None
        if total is None or abs(total - round(total)) > 0.08 or round(total) < last.steps:
            return None
        return round(total) - last.steps_done

    def _grid_before(self, elapsed: float, end: float) -> float:
        """The last grid point after ``elapsed`` that still lies a grid step before ``end``."""
        policy = self.policy
        point = policy.grid_after(elapsed)
        while (following := policy.grid_after(point)) <= end - policy.step_at(following):
            point = following
        return point

    def _extra(self, elapsed: float, grid: float, end: float | None) -> float | None:
        """An extra poll before the next grid point, where the end is likely and the budget allows."""
        policy = self.policy
        if self.polls + 1 > policy.rate * (elapsed + policy.margin) - 1:
            return None
        last = self._seen[-1] if self._seen else None
        candidate: float | None = None
        if end is not None:
            candidate = end + policy.margin
        elif last is not None and (
            (last.percentage is not None and last.percentage >= 1.0)
            or (last.steps and last.steps_done == last.steps and self._steps_left() in (0, None))
        ):
            candidate = elapsed + policy.wrap_up  # every step done, no final status yet: wrapping up
        elif self._steps_left() == 1:
            step = policy.step_at(elapsed)
            candidate = grid - step / 2  # the last step runs: halve the grid
        if candidate is None or not elapsed < candidate < grid - 0.1:
            return None
        return candidate


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter for 5xx, timeouts and connection errors."""

    max_retries: int = 5
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 120.0  # a longer Retry-After is reported, not waited for
    # A 429 without Retry-After: StackSpot documents none. Its windows are minutes long, so the
    # waits start longer and may grow further than for a 5xx.
    rate_limit_base: float = 2.0
    rate_limit_cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1-based): jittered between half and all of the ceiling."""
        return self._jittered(min(self.cap, self.base * 2 ** (attempt - 1)))

    def rate_limit_delay(self, attempt: int, window: float | None = None) -> float:
        """Delay before retry ``attempt`` after a 429 without Retry-After; never longer than the
        limit's window when StackSpot names it (a 1-minute window lifts within a minute)."""
        cap = self.rate_limit_cap if window is None else max(self.rate_limit_base, min(self.rate_limit_cap, window))
        return self._jittered(min(cap, self.rate_limit_base * 2 ** (attempt - 1)))

    def _jittered(self, ceiling: float) -> float:
        return ceiling * (0.5 + self.rng.random() / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
