"""Several values in one command: -m, -X and -N, as GNU parallel fills a command line.

A batch takes records until the next would pass the limit: `-N N` records, `-s N`
characters of the command as --dry-run shows it (as GNU parallel counts them), and
always what the system takes (the argument-length limit of exec, and of one argument
for a script run under sh -c). When the input ends while a batch is filling, with -m
or -X its records are spread over the -j slots, so every slot gets work (GNU parallel
does the same). A record whose command alone passes -s is refused (exit 2), as GNU
parallel refuses it; one past the system's limit goes alone, and fails if the system
says so ("argument list too long")."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

from fanout_cli.errors import UsageError
from fanout_cli.replacements import Args

Record = tuple[tuple[str, ...], str]  # a record's values and its origin
Batch = list[Record]
ONE_ARGUMENT = 131072  # Linux's MAX_ARG_STRLEN: the most one argument (a script) can hold
_HEADROOM = 4096


def system_limit(shell: bool, environ: dict[str, str] | None = None) -> int:
    """Bytes the arguments of one command may take: one argument's limit for a script,
    else exec's limit less the environment's share."""
    if shell:
        return ONE_ARGUMENT - _HEADROOM
    try:
        total = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):  # pragma: no cover - every POSIX system has it
        total = ONE_ARGUMENT
    env = os.environ if environ is None else environ
    used = sum(len(key) + len(value) + 2 + 8 for key, value in env.items())
    return max(ONE_ARGUMENT // 2, total - used - _HEADROOM)


# (characters as shown, bytes as passed) of a command for one record, and what each
# further record adds.
Measure = Callable[[Args], tuple[int, int]]


class Batcher:
    """Records in, batches out: fed one record at a time, `finish`ed at the end."""

    def __init__(self, limits: tuple[str | None, int | None, int | None], jobs: int,
                 whole: Measure, each: Measure, byte_limit: int) -> None:  # fmt: skip
        self.mode, self.max_args, self.max_chars = limits  # -m/-X, -N, -s
        self.jobs = jobs
        self._whole, self._each = whole, each
        self._byte_limit = byte_limit
        self._fixed: tuple[int, int] | None = None
        self._pending: Batch = []
        self._size = (0, 0)

    def _cost(self, values: tuple[str, ...]) -> tuple[int, int]:
        cost = self._each(Args((values,)))
        if self._fixed is None:
            chars, size = self._whole(Args((values,)))
            self._fixed = (chars - cost[0], size - cost[1])
        return cost

    def _fits(self, cost: tuple[int, int]) -> bool:
        assert self._fixed is not None
        chars = self._fixed[0] + self._size[0] + cost[0]
        size = self._fixed[1] + self._size[1] + cost[1]
        limit = self.max_chars
        return size <= self._byte_limit and (limit is None or chars < limit)

    def _check_alone(self, record: Record, cost: tuple[int, int]) -> None:
        """A value whose command alone passes -s: refused, as GNU parallel refuses it."""
        assert self._fixed is not None
        chars = self._fixed[0] + cost[0]
        if self.max_chars is not None and chars >= self.max_chars:
            shown = " ".join(record[0])
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise UsageError(f"-s {self.max_chars}: the command for {record[1]} ({shown!r}) "
                             f"is {chars} bytes, more than -s allows")  # fmt: skip

    def feed(self, record: Record) -> list[Batch]:
        cost = self._cost(record[0])
        self._check_alone(record, cost)
        ready: list[Batch] = []
        # A batch full by count waits for the next record: only then is it known not to
        # be the last, which -m and -X spread over the slots.
        if self._pending and (self._full() or not self._fits(cost)):
            ready.append(self._take())
        self._pending.append(record)
        self._size = (self._size[0] + cost[0], self._size[1] + cost[1])
        return ready

    def _full(self) -> bool:
        limit = self.max_args
        return limit is not None and len(self._pending) >= limit

    def _take(self) -> Batch:
        batch, self._pending, self._size = self._pending, [], (0, 0)
        return batch

    def finish(self) -> list[Batch]:
        """The last records: with -m or -X, spread over the slots."""
        batch = self._take()
        if not batch:
            return []
        if self.mode is None or len(batch) <= 1:
            return [batch]
        size = math.ceil(len(batch) / self.jobs)
        return [batch[start : start + size] for start in range(0, len(batch), size)]
