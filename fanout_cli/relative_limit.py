"""--timeout P%: a task's time limit is P percent of the median duration of the run's
tasks that succeeded so far, once three have (issue 19).

The limit moves, as GNU parallel's does: when it first becomes known, and each time the
median changes, every attempt running under it is held to the new limit counted from
its own start, so a straggler that started before any success is still caught. The
runner owns one `MedianLimit` (when the run's timeout is relative), feeds it the final
attempt's duration of every task that succeeds (and, on --resume, of every kept
success) and hands it to each attempt's plan; executors hold their timeout scope to it
(executors.TimeLimit).

GNU parallel differs in two ways: its limit applies from the first success, not the
third, and it takes a remedian (a median of medians of blocks of 999 runtimes) where
fanout keeps the exact median of every success. Loaded only when a relative timeout is
given: a plain run does not import it."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fanout_cli.values import shown

if TYPE_CHECKING:
    import anyio

MIN_SUCCESSES = 3  # the limit applies once this many tasks have succeeded
MAX_PERCENT = 100_000.0
_PERCENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)%")


@dataclass(frozen=True)
class RelativeTimeout:
    """--timeout 300%: `percent` of the median duration of the run's successes."""

    percent: float

    def __str__(self) -> str:  # as the manifest keeps it, and parse_percent reads it
        return f"{self.percent:g}%"


def parse_percent(value: object) -> RelativeTimeout:
    """`200%`, `150.5%` -> RelativeTimeout; more than 0% and at most 100000%."""
    text = value.strip().replace(" ", "") if isinstance(value, str) else ""
    match = _PERCENT.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a percentage of the median such as 200%, got {shown(value)}")
    percent = float(match.group(1))
    if not 0 < percent <= MAX_PERCENT:
        raise ValueError(f"expected a percentage of more than 0% and at most "
                         f"{MAX_PERCENT:g}%, got {shown(value)}")  # fmt: skip
    return RelativeTimeout(percent)


class MedianLimit:
    """The run's relative limit, and the cancel scopes of the attempts it bounds.

    The median is exact: two heaps, the lower half (negated) and the upper half, so a
    success costs O(log n) however many there are."""

    def __init__(self, timeout: RelativeTimeout) -> None:
        self.percent = timeout.percent
        self._lower: list[float] = []  # negated: a max-heap
        self._upper: list[float] = []
        # Each bounded attempt's timeout scope, with when it started (event-loop time).
        self._held: dict[anyio.CancelScope, float] = {}

    @property
    def successes(self) -> int:
        return len(self._lower) + len(self._upper)

    def median(self) -> float | None:
        """The median duration of the successes so far (None before MIN_SUCCESSES)."""
        if self.successes < MIN_SUCCESSES:
            return None
        if len(self._lower) > len(self._upper):
            return -self._lower[0]
        return (self._upper[0] - self._lower[0]) / 2

    def seconds(self) -> float | None:
        """The limit now; None while there is none yet."""
        median = self.median()
        return None if median is None else round(median * self.percent / 100, 3)

    def add(self, duration: float) -> None:
        """A task succeeded, its final attempt taking `duration`: the limit may move."""
        if self._lower and duration > -self._lower[0]:
            heapq.heappush(self._upper, duration)
        else:
            heapq.heappush(self._lower, -duration)
        if len(self._lower) > len(self._upper) + 1:
            heapq.heappush(self._upper, -heapq.heappop(self._lower))
        elif len(self._upper) > len(self._lower):
            heapq.heappush(self._lower, -heapq.heappop(self._upper))
        limit = self.seconds()
        if limit is not None:
            for scope, started in self._held.items():
                scope.deadline = started + limit

    def add_kept(self, duration: float | None) -> None:
        """--resume: a success kept from the earlier run counts as if it ran now (its
        duration from resume.kept_duration; None when its records do not say)."""
        if duration is not None:
            self.add(duration)

    def hold(self, scope: anyio.CancelScope, started: float) -> None:
        """Keep `scope`'s deadline at the limit counted from `started`, as it moves."""
        self._held[scope] = started
        limit = self.seconds()
        if limit is not None:
            scope.deadline = started + limit

    def release(self, scope: anyio.CancelScope) -> None:
        self._held.pop(scope, None)

    def describe(self) -> str:
        """What a timeout's reason adds: "300% of the median"."""
        return f"{self.percent:g}% of the median"

    def rule(self) -> dict[str, Any]:
        """How the limit was reached, for an attempt's details: the percentage, the
        median (seconds; null before MIN_SUCCESSES) and the successes it is taken of."""
        median = self.median()
        return {"percent": self.percent, "median": None if median is None else round(median, 3),
                "successes": self.successes}  # fmt: skip
