"""How long to wait: between polls of an execution, and before retrying a failed request."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class PollPolicy:
    """Adaptive polling.

    Intervals grow geometrically from ``initial`` up to ``max_interval`` so long executions
    cost few requests; when the server reports a percentage, the next poll is pulled in to
    the estimated end so short executions are seen finished soon after they finish.
    """

    initial: float = 0.5
    factor: float = 1.5
    max_interval: float = 5.0
    min_interval: float = 0.2

    def next_delay(self, poll_index: int, elapsed: float, percentage: float | None) -> float:
        """Delay after poll ``poll_index`` (0-based; ``initial`` precedes poll 0).

        ``elapsed`` is seconds since the execution was created.
        """
        delay = min(self.max_interval, self.initial * self.factor ** (poll_index + 1))
        if percentage is not None and percentage > 0.0 and elapsed > 0:
            if percentage < 1.0:
                remaining = elapsed * (1.0 - percentage) / percentage
            else:
                # "100%" but not final yet: wrapping up; look again soon, but not in a tight loop.
                remaining = 0.1 * elapsed
            delay = min(delay, max(self.min_interval, remaining))
        return max(self.min_interval, delay)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter for 5xx, timeouts and connection errors."""

    max_retries: int = 5
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 120.0  # a longer Retry-After is reported, not waited for
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1-based): full-jitter between half and all of the cap."""
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
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
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
