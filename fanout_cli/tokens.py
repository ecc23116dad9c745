"""Token usage of a run's agent calls: each task's, summed over its attempts, and the
run's, totalled as tasks end (and from the kept results on --resume), never by holding
the results.

A reply that did not say how many tokens it used (usage null, or its input or output
count missing) makes its task `unknown`: what it did not report is not in the sums,
which are then a lower bound. An attempt that got no reply (an HTTP error, a refused
connection, a timeout, a cancelled call) adds nothing and is not unknown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fanout_cli.models import Attempt

COUNTS = ("input_tokens", "output_tokens", "total_tokens")


def task_tokens(attempts: Iterable[Attempt]) -> dict[str, Any] | None:
    """{input_tokens, output_tokens, total_tokens, unknown} over the attempts that made
    an agent call; None for a task that made none (a process, or a call never made)."""
    return calls_tokens(attempt.agent for attempt in attempts)


def calls_tokens(records: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """task_tokens of the attempts' `agent` records (None: no call in that attempt)."""
    tokens: dict[str, Any] | None = None
    for record in records:
        if record is None:
            continue
        if tokens is None:
            tokens = {name: 0 for name in COUNTS} | {"unknown": False}
        usage = record.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        given = {name: _count(usage.get(name)) for name in COUNTS}
        read, written = given["input_tokens"], given["output_tokens"]
        if isinstance(record.get("text"), str) and (read is None or written is None):
            tokens["unknown"] = True
        total = given["total_tokens"]
        if total is None:
            total = (read or 0) + (written or 0)
        tokens["input_tokens"] += read or 0
        tokens["output_tokens"] += written or 0
        tokens["total_tokens"] += total
    return tokens


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class TokenTotals:
    """The run's totals, added to as each task ends (or is kept on --resume)."""

    def __init__(self) -> None:
        self.tasks = 0  # tasks that made an agent call (agent, agent-cli)
        self.unknown = 0  # of them, those with a reply that did not give its counts
        self.counts = dict.fromkeys(COUNTS, 0)

    def add(self, tokens: object) -> None:
        """One task's `tokens` (a journal row's; None or malformed: not an agent call)."""
        if not isinstance(tokens, Mapping):
            return
        self.tasks += 1
        self.unknown += bool(tokens.get("unknown"))
        for name in COUNTS:
            self.counts[name] += _count(tokens.get(name)) or 0

    def document(self) -> dict[str, int] | None:
        """The manifest's and envelope's `tokens`; None when no task called an agent."""
        if not self.tasks:
            return None
        return {**self.counts, "tasks": self.tasks, "unknown": self.unknown}


def with_call(totals: Mapping[str, int] | None, tokens: object) -> dict[str, int] | None:
    """The run's totals with one more call counted (the reduce's, when it is an agent)."""
    counter = TokenTotals()
    if totals is not None:
        counter.tasks, counter.unknown = totals["tasks"], totals["unknown"]
        counter.counts = {name: totals[name] for name in COUNTS}
    counter.add(tokens)
    return counter.document()
