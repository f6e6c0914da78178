"""How long to wait: between polls of an execution, and before retrying a failed request."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class PollPolicy:
    """Adaptive polling.

    Without a usable percentage, intervals grow geometrically from ``initial`` to
    ``max_interval``. With one, the end time is estimated from elapsed time and percentage:
    a poll is aimed just after the estimated end when it is near, and when it is far the
    wait is half the remaining time (at most ``eta_max_interval``), so a long execution costs
    a handful of polls and a short one is seen finished within a fraction of a second.
    """

    initial: float = 0.5
    factor: float = 1.5
    max_interval: float = 5.0
    min_interval: float = 0.2
    eta_max_interval: float = 30.0
    margin: float = 0.05  # aim this far past the estimated end

    def next_delay(self, poll_index: int, elapsed: float, percentage: float | None) -> float:
        """Delay after poll ``poll_index`` (0-based; ``initial`` precedes poll 0).

        ``elapsed`` is seconds since the execution was created.
        """
        base = min(self.max_interval, self.initial * self.factor ** (poll_index + 1))
        if percentage is None or percentage <= 0.0 or elapsed <= 0:
            return max(self.min_interval, base)
        if percentage >= 1.0:
            # "100%" but not final yet: wrapping up (or a rounded 99.6%); look again soon,
            # backing off with the elapsed time so a server stuck at 100% is not hammered.
            return max(self.min_interval, min(base, 0.02 * elapsed))
        remaining = elapsed * (1.0 - percentage) / percentage
        if remaining <= base:
            return max(self.min_interval, remaining + self.margin)
        return min(self.eta_max_interval, max(base, remaining / 2))


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
