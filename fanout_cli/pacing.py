"""How fast work may start: a sliding-window rate limit and a shared pause.

Both are shared by every task of a run: `--rate 60/min` caps attempt starts across
the run, a provider's `rate` caps its HTTP requests, and a 429 seen by one task
pauses the next request of every task to that provider."""

from __future__ import annotations

import collections

import anyio

from fanout_cli.config import Rate


class RateLimiter:
    """At most `rate.count` starts in any window of `rate.period` seconds.

    Waiters are served in arrival order (one lock), so a busy run cannot starve a
    task. A cancelled waiter takes no slot."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._starts: collections.deque[float] = collections.deque()
        self._lock = anyio.Lock()

    async def acquire(self) -> float:
        """Wait for a free slot in the window; return the seconds waited."""
        began = anyio.current_time()
        async with self._lock:
            while True:
                now = anyio.current_time()
                while self._starts and self._starts[0] <= now - self.rate.period:
                    self._starts.popleft()
                if len(self._starts) < self.rate.count:
                    self._starts.append(now)
                    return now - began
                await anyio.sleep(self._starts[0] + self.rate.period - now)


class Pause:
    """A point in time before which no new request may start (a server said: slow
    down). Any task can push it later; every task waits for it."""

    def __init__(self) -> None:
        self._until = 0.0

    def extend(self, seconds: float) -> None:
        self._until = max(self._until, anyio.current_time() + seconds)

    @property
    def remaining(self) -> float:
        return max(self._until - anyio.current_time(), 0.0)

    async def wait(self) -> float:
        """Sleep until the pause is over (it may be extended meanwhile); return the
        seconds waited."""
        waited = 0.0
        while (left := self.remaining) > 0:
            await anyio.sleep(left)
            waited += left
        return waited
