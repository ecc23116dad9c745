"""How fast work may start, and where time comes from.

`RateLimiter` and `Pause` are shared by every task of a run: `--rate 60/min` spaces
attempt starts across the run (one a second; `60/min:5` lets 5 go at once), a
provider's `rate` spaces its HTTP requests, and a 429 seen by one task pauses the
next request of every task to that provider.

`Clock` and `Backoff` are what the runner and the agent executor wait with; tests
pass their own so that nothing really sleeps and no private function is patched."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from fanout_cli.values import Rate

MAX_BACKOFF_SECONDS = 60.0


def _jitter() -> float:
    import random  # only a retry waits: a plain run does not load it

    return random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Clock:
    """`now` and `sleep` measure and wait (monotonic, the event loop's clock); `wall`
    stamps what is recorded (seconds since the epoch)."""

    now: Callable[[], float] = anyio.current_time
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    wall: Callable[[], float] = time.time


SYSTEM_CLOCK = Clock()


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter: base * 2^(n-1) after n failures, capped, then
    scaled by `jitter()` (0.5-1.0 by default) so that tasks that failed together do
    not come back together."""

    base: float = 1.0
    cap: float = MAX_BACKOFF_SECONDS
    jitter: Callable[[], float] = _jitter

    def delay(self, failures: int) -> float:
        # 2^64 times any base of a microsecond or more is past every cap: the exponent
        # stops there, so no count of failures overflows a float.
        exponential: float = self.base * 2.0 ** min(max(failures - 1, 0), 64)
        return min(exponential, self.cap) * self.jitter()


class RateLimiter:
    """Starts spaced evenly: one every `rate.period / rate.count` seconds, of which
    `rate.burst` may go at once after a quiet spell (a token bucket of `burst` tokens,
    one back every interval). Over any stretch of t seconds at most
    burst + t * count / period start.

    Waiters are served in arrival order (one lock), so a busy run cannot starve a
    task. A cancelled waiter takes no slot."""

    def __init__(self, rate: Rate, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rate = rate
        self.clock = clock
        self._next: float | None = None  # when the bucket is full again (the steady pace)
        self._lock = anyio.Lock()

    async def acquire(self) -> float:
        """Wait for this start's turn; return the seconds waited."""
        began = self.clock.now()
        interval = self.rate.period / self.rate.count
        slack = (self.rate.burst - 1) * interval  # how far ahead of the pace a burst may run
        async with self._lock:
            while True:
                now = self.clock.now()
                due = now if self._next is None else max(self._next, now)
                if due - slack <= now:
                    self._next = due + interval
                    return now - began
                await self.clock.sleep(due - slack - now)


class Pause:
    """A point in time before which no new request may start (a server said: slow
    down). Any task can push it later; every task waits for it."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._until = 0.0

    def extend(self, seconds: float) -> None:
        self._until = max(self._until, self.clock.now() + seconds)

    @property
    def remaining(self) -> float:
        return max(self._until - self.clock.now(), 0.0)

    async def wait(self) -> float:
        """Sleep until the pause is over (it may be extended meanwhile); return the
        seconds waited."""
        waited = 0.0
        while (left := self.remaining) > 0:
            await self.clock.sleep(left)
            waited += left
        return waited
