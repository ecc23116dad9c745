"""Is a provider's endpoint there at all? A dead or wrong endpoint, told apart from a
busy one.

A run of connection failures (refused, DNS, connect timeout) with no HTTP answer in
between marks the provider down for the rest of the run: at least
DOWN_AFTER_FAILURES of them, the first and the last at least DOWN_AFTER_SECONDS
apart. The span keeps a server that restarts, or that a burst of -j 50 connections found busy
for an instant, from being given up at once; the count keeps one slow task from
deciding alone. An HTTP answer of any status (a 5xx or a 429 is a live server)
starts the count again.

A 404 from the completions URL usually means the base URL lacks (or repeats) /v1:
`not_found_hint` says what was likely meant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import anyio

from fanout_cli.pacing import Clock

DOWN_AFTER_FAILURES = 3
DOWN_AFTER_SECONDS = 1.0


class Health:
    """One provider's connection failures in a row, and whether it is down."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.failures = 0
        self._first_at = 0.0
        self.down: str | None = None  # why, once it is down
        self.went_down = anyio.Event()

    def answered(self) -> None:
        """The server answered (any HTTP status): it is there."""
        self.failures = 0

    def failed(self, error: str) -> bool:
        """A connection failed; True when this failure marks the provider down (once)."""
        now = self.clock.now()
        if self.failures == 0:
            self._first_at = now
        self.failures += 1
        span = now - self._first_at
        if self.down is not None or self.failures < DOWN_AFTER_FAILURES:
            return False
        if span < DOWN_AFTER_SECONDS:
            return False
        from fanout_cli.values import format_duration

        self.down = (f"connection failed {self.failures} times in a row over "
                     f"{format_duration(span)} ({error})")  # fmt: skip
        self.went_down.set()
        return True


def not_found_hint(api: str, base_url: str) -> str | None:
    """The base URL a 404 suggests ("did you mean http://host:8080/v1?"), or None."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if api == "openai" and not path.endswith("/v1"):
        fixed = path + "/v1"
    elif api == "anthropic" and path.endswith("/v1"):  # the endpoint adds /v1/messages
        fixed = path.removesuffix("/v1")
    else:
        return None
    return f"did you mean {urlunsplit(parts._replace(path=fixed))}?"


async def unless_down(health: Health, wait: Callable[[], Awaitable[float]]) -> float:
    """`wait()`, cut short (returning 0) when the provider is marked down meanwhile."""
    if health.down is not None:
        return 0.0
    waited = 0.0
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await health.went_down.wait()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        waited = await wait()
        group.cancel_scope.cancel()
    return waited

