"""--halt: GNU parallel's rule for ending a run early, and how the run's early ends
take effect.

A spec is `WHEN[,CONDITION=N|P%]`. WHEN is `now` (end the running tasks) or `soon`
(start nothing new, let the running tasks finish). The condition counts tasks as they
end: `fail` (failure, timeout or error: what GNU parallel counts as a failed job),
`success`, or `done` (any of them); `N` tasks, or `P%` of all tasks (met when the
count reaches P% of the total, as GNU parallel computes it, once the total is known).
GNU parallel's older forms are read too: `never`, `0`, `1` (soon,fail=1), `2`
(now,fail=1), `-1` (soon,success=1), `-2` (now,success=1) and `P%` (soon,fail=P%).

fanout adds one form: WHEN alone (`--halt soon`) sets how every early end of the run
takes effect — --fail-fast and a strategy's own early verdict (first-n-succeed's
win) — without a condition of its own. The deadline and Ctrl-C always end the
running tasks."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fanout_cli.models import TaskStatus, Verdict

if TYPE_CHECKING:
    from fanout_cli.strategies import Tracker

WHENS = ("now", "soon")
CONDITIONS = ("fail", "success", "done")
MAX_HALT_COUNT = 1_000_000_000
_FAILED = frozenset({TaskStatus.FAILURE, TaskStatus.TIMEOUT, TaskStatus.ERROR})
_COUNTED = {
    "fail": _FAILED,
    "success": frozenset({TaskStatus.SUCCESS}),
    "done": _FAILED | {TaskStatus.SUCCESS},  # a task the run itself cancelled did not end
}
_LEGACY = {"0": "never", "1": "soon,fail=1", "2": "now,fail=1", "-1": "soon,success=1",
           "-2": "now,success=1"}  # fmt: skip
_SPEC = re.compile(r"(?P<when>[a-z]+)(?:,(?P<condition>[a-z]+)=(?P<amount>[^,=]*))?")
_AMOUNT = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<percent>%?)")
_FORMS = "now or soon, then ,fail=N, ,success=N or ,done=N (N a count or a percentage: 10%)"


@dataclass(frozen=True)
class HaltSpec:
    """A parsed --halt. `condition` None: the spec only says when early ends apply."""

    when: str = "now"
    condition: str | None = None
    count: int | None = None
    percent: float | None = None

    @property
    def soon(self) -> bool:
        return self.when == "soon"

    def __str__(self) -> str:
        if self.condition is None:
            return self.when
        amount = f"{self.percent:g}%" if self.percent is not None else str(self.count)
        return f"{self.when},{self.condition}={amount}"

    def threshold(self, total: int | None) -> float | None:
        """How many counted tasks meet the condition; None while a percentage waits
        for the total."""
        if self.percent is None:
            return self.count
        return None if total is None else total * self.percent / 100

    def met(self, counted: int, total: int | None) -> bool:
        threshold = self.threshold(total)
        return threshold is not None and counted >= max(threshold, 1)

    def describe(self, counted: int) -> str:
        """Why the run halted: "--halt now,fail=2: 2 tasks failed"."""
        verb = {"fail": "failed", "success": "succeeded", "done": "ended"}[str(self.condition)]
        return f"--halt {self}: {_tasks(counted)} {verb}"


def parse_halt(value: object) -> HaltSpec | None:
    """A --halt value (text, or a TOML integer of the legacy forms); None for `never`."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a halt rule such as now,fail=1, got {value!r}")
    text = str(value).strip().lower()
    text = _LEGACY.get(text, text)
    if re.fullmatch(r"\d+(?:\.\d+)?%", text):
        text = f"soon,fail={text}"
    if text == "never":
        return None
    match = _SPEC.fullmatch(text)
    if match is None or match["when"] not in WHENS:
        raise ValueError(f"expected {_FORMS}, or never; got {value!r}")
    when, condition = match["when"], match["condition"]
    if condition is None:
        return HaltSpec(when)
    if condition not in CONDITIONS:
        raise ValueError(f"expected fail=, success= or done= after {when}, got {condition!r}")
    amount = _AMOUNT.fullmatch(match["amount"])
    if amount is None:
        raise ValueError(f"{when},{condition}= takes a count or a percentage such as 10%, "
                         f"got {match['amount']!r}")  # fmt: skip
    number = float(amount["number"])
    if amount["percent"]:
        if not 0 < number <= 100:
            raise ValueError(f"expected a percentage of more than 0 and at most 100, got {value!r}")
        return HaltSpec(when, condition, percent=number)
    if number != int(number) or not 1 <= number <= MAX_HALT_COUNT:
        raise ValueError(f"expected a count from 1 to {MAX_HALT_COUNT} (or a percentage), "
                         f"got {value!r}")  # fmt: skip
    return HaltSpec(when, condition, count=int(number))


class HaltWatch:
    """Counts the tasks a --halt condition looks at, as they end, and says once when
    it is met."""

    def __init__(self, spec: HaltSpec) -> None:
        assert spec.condition is not None
        self.spec = spec
        self._counted_statuses = _COUNTED[spec.condition]
        self.counted = 0
        self.fired = False

    def observe(self, status: TaskStatus, total: int | None) -> str | None:
        """Count one ended task; the reason to halt, the first time the condition is met."""
        if status in self._counted_statuses:
            self.counted += 1
        return self.check(total)

    def check(self, total: int | None) -> str | None:
        """The reason to halt when the condition is met now (for the first time), as
        after the total became known."""
        if self.fired or not self.spec.met(self.counted, total):
            return None
        self.fired = True
        return self.spec.describe(self.counted)


def halted_verdict(tracker: Tracker, spec: HaltSpec, why: str, stopped: int) -> Verdict:
    """The verdict of a run a --halt condition stopped, as GNU parallel's exit status
    says it: fail= fails the run; success= passes it (the tasks it waited for
    succeeded); after done= the strategy judges the tasks that ended, and the `stopped`
    ones, which the halt ended or never started, are not held against it."""
    tally = tracker.tally
    counts = dict(tally.counts)
    if spec.condition != "done" or tracker.strategy is None:
        passed = spec.condition == "success"
        return Verdict(passed, tracker.options.name, f"halted by {why}", counts)
    ended = dict(counts, tasks=counts["tasks"] - stopped, cancelled=counts["cancelled"] - stopped)
    total = None if tally.total is None else tally.total - stopped
    judged = tracker.strategy.verdict(replace(tally, counts=ended, total=total))
    if stopped:
        why += f"; the {_tasks(stopped)} it stopped {'is' if stopped == 1 else 'are'} not counted"
    return replace(judged, reason=f"{judged.reason} (halted by {why})", counts=counts)


def _tasks(count: int) -> str:
    return f"{count} task{'s' * (count != 1)}"
