"""What may hold back a task's start: --memfree, --load and --delay (GNU parallel's).

`StartGate.ready()` is awaited before each attempt starts, retries included. It waits,
reading the machine again every POLL_SECONDS, while the memory available is below
--memfree or the load is at --load or above, then keeps --rate and --delay since the
last start (pacing.RateLimiter; --delay is one start per delay). Waiters take their
turn in arrival order (one lock) and the pacing is the last wait, so the spacing is
between real starts. When the run stops, the waiting
task's scope is cancelled: the gate gives way at once and nothing starts after a stop.

With --memfree, `watch()` reads the memory while tasks run. Below half of --memfree it
ends the youngest attempt (the one started last) as any cancelled attempt is ended
(its process group: TERM, grace, KILL), one at a time and never the only one running;
`attempt()` then returns None, and the runner runs that attempt again, under the same
number, once the gate lets it: no attempt is charged.

The runner builds a gate only when one of the options is set: a plain run imports
nothing of this and runs no watcher."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.lowlevel

from fanout_cli import machine
from fanout_cli.machine import load_threshold
from fanout_cli.pacing import SYSTEM_CLOCK, Clock, RateLimiter
from fanout_cli.sizes import format_size
from fanout_cli.values import Rate, format_duration

if TYPE_CHECKING:
    from fanout_cli.run_config import PolicyOptions

POLL_SECONDS = 0.5  # how often a waiting gate and the memory watcher read the machine
T = TypeVar("T")


@dataclass(frozen=True)
class Machine:
    """What the gate reads: bytes of memory available, the load, the CPU count. Tests
    pass their own readers."""

    available_memory: Callable[[], int] = machine.available_memory
    load: Callable[[], float] = machine.running_load
    cpus: Callable[[], int | None] = os.cpu_count


THIS_MACHINE = Machine()


@dataclass
class _Running:
    """An attempt the memory watcher may end."""

    started: float
    scope: anyio.CancelScope


class StartGate:
    """The run's one gate (see the module's note)."""

    def __init__(
        self,
        memfree: int | None = None,
        max_load: float | None = None,
        delay: float = 0.0,
        *,
        clock: Clock = SYSTEM_CLOCK,
        machine: Machine = THIS_MACHINE,
    ) -> None:
        self.memfree = memfree
        self.max_load = max_load
        self.clock = clock
        self.machine = machine
        self.requeue_reason = ""  # why the watcher last ended an attempt
        self.pacers: list[RateLimiter] = []  # --rate, then --delay's one start a delay
        if delay > 0:
            self.pacers.append(RateLimiter(Rate(1, delay, f"1/{format_duration(delay)}"), clock))
        self._turn = anyio.Lock()
        self._running: dict[int, _Running] = {}
        self._next_token = 0

    @classmethod
    def of(cls, policy: PolicyOptions, clock: Clock, machine: Machine | None,
           rate: RateLimiter | None = None) -> StartGate:  # fmt: skip
        """The gate of a run's options; `rate` is --rate's limiter, kept here too."""
        machine = machine or THIS_MACHINE
        max_load = None
        if policy.load is not None:
            max_load = load_threshold(policy.load, machine.cpus() or 1)
        gate = cls(policy.memfree, max_load, policy.delay, clock=clock, machine=machine)
        if rate is not None:
            gate.pacers.insert(0, rate)
        return gate

    @property
    def watching(self) -> bool:
        """--memfree is set: running attempts are watched, and may be ended."""
        return self.memfree is not None

    def held_back(self) -> str | None:
        """Why no attempt may start now (memory short, load high), or None."""
        if self.memfree is not None:
            available = self.machine.available_memory()
            if available < self.memfree:
                return f"{format_size(available)} available < --memfree {format_size(self.memfree)}"
        if self.max_load is not None:
            load = self.machine.load()
            if load >= self.max_load:
                return f"load {load:g} >= --load {self.max_load:g}"
        return None

    async def ready(self) -> None:
        """Wait until an attempt may start, then return at once (the caller starts it)."""
        async with self._turn:
            while True:
                while self.held_back() is not None:
                    await self.clock.sleep(POLL_SECONDS)
                waited = 0.0
                for pacer in self.pacers:
                    waited += await pacer.acquire()
                if waited == 0 or self.held_back() is None:  # checked again after a wait
                    return

    async def attempt(self, run: Callable[[], Awaitable[T]]) -> T | None:
        """`run()` where the watcher may end it: its result, or None when the watcher
        ended it for memory (the caller runs it again)."""
        if not self.watching:
            return await run()
        token = self._next_token = self._next_token + 1
        running = self._running[token] = _Running(self.clock.now(), anyio.CancelScope())
        try:
            with running.scope:
                return await run()
        finally:
            del self._running[token]
        # Ended for memory. When the run is stopping too, its cancellation goes on here.
        await anyio.lowlevel.checkpoint_if_cancelled()
        return None

    async def watch(self) -> None:
        """--memfree while attempts run: below half of it, end the youngest, unless it
        is the only one running; one at a time (the next once the last has ended)."""
        assert self.memfree is not None
        floor = self.memfree / 2
        while True:
            await self.clock.sleep(POLL_SECONDS)
            running = self._running
            if len(running) < 2 or any(each.scope.cancel_called for each in running.values()):
                continue
            available = self.machine.available_memory()
            if available < floor:
                self.requeue_reason = (f"{format_size(available)} available < half of "
                                       f"--memfree {format_size(self.memfree)}")  # fmt: skip
                # The one started last (of two started together, the one registered last).
                youngest = max(running, key=lambda token: (running[token].started, token))
                running[youngest].scope.cancel()
