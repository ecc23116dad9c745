"""The human format's lines: a line per task as it ends, the verdict line, and the
lines of --dry-run; the small formatters every human renderer shares."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fanout_cli.models import RunReport, TaskResult, TaskSpec, TaskStatus, display_command
from fanout_cli.render.console import Console

if TYPE_CHECKING:  # --dry-run --shard only; the types, not the module
    from fanout_cli.options import OutputOptions
    from fanout_cli.shards.split import Split

STATUS_COLORS = {
    TaskStatus.SUCCESS: "32",
    TaskStatus.FAILURE: "31",
    TaskStatus.TIMEOUT: "33",
    TaskStatus.CANCELLED: "90",
    TaskStatus.ERROR: "35",
}
_CODES = {str(status): code for status, code in STATUS_COLORS.items()}


def display_path(path: str) -> str:
    """Relative to the current folder when inside it: shorter, and still copy-pastable."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 600:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def status_code(status: object) -> str | None:
    """The ANSI colour of a status word, None for a word that is not a status."""
    return _CODES.get(str(status))


def status_label(console: Console, label: str) -> str:
    """A (padded) status word in its colour."""
    code = status_code(label.strip())
    return label if code is None else console.style(label, code)


def task_line(result: TaskResult) -> tuple[str, str]:
    """A task's line as it ends: its status (padded), and the rest."""
    duration = format_seconds(result.duration) if result.attempts else "-"
    retries = f" [{len(result.attempts)} attempts]" if len(result.attempts) > 1 else ""
    return f"{result.status:<9}", f" {result.task_id}  {duration}{retries}  {result.summary}"


def verdict_line(report: RunReport, console: Console) -> str:
    verdict = report.verdict
    word = console.style("PASS", "1;32") if verdict.passed else console.style("FAIL", "1;31")
    tasks = verdict.counts["tasks"]
    shard = f" of shard {report.shard}" if report.shard else ""
    return (
        f"{word} {verdict.strategy}: {verdict.reason} · {tasks} task{'s' * (tasks != 1)}{shard} "
        f"in {format_seconds(report.duration)} · {display_path(report.manifest_path)}"
    )


class HumanRenderer:
    """A line per task as it ends, then the verdict line (in a pipe, a CI log; on a
    terminal, render.live.LiveRenderer)."""

    def __init__(self, console: Console, output: OutputOptions) -> None:
        self.console = console
        self.quiet = output.quiet
        # (status, summary) -> count, shown as one line: the status is the task's own
        # (a run deadline ends unstarted tasks as timeout, Ctrl-C as cancelled).
        self.not_started: dict[tuple[str, str], int] = {}

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        pass

    def task_ended(self, result: TaskResult) -> None:
        if self.quiet:
            return
        if not result.attempts:
            key = (str(result.status), result.summary)
            self.not_started[key] = self.not_started.get(key, 0) + 1
            return
        label, rest = task_line(result)
        self.console.line(status_label(self.console, label) + rest)

    def finish(self, report: RunReport) -> None:
        for (status, summary), count in self.not_started.items():
            tasks = f"{count} task{'s' * (count != 1)}"
            self.console.line(f"{status_label(self.console, f'{status:<9}')} {tasks} {summary}")
        if report.reduce is not None:  # the verdict, then the reduce's output (-q: only it)
            from fanout_cli.render.reduce import print_with_reduce

            print_with_reduce(self.console, report, verdict_line, self.quiet)
        else:
            self.console.line(verdict_line(report, self.console))


def print_dry_run(
    console: Console, commands: Iterable[tuple[tuple[str, ...] | str, str | None]]
) -> None:
    """One pasteable command a line (with `cd DIR &&` when the task sets a cwd)."""
    batch: list[bytes] = []
    for command, cwd in commands:
        line = dry_run_line(command, cwd)
        batch.append(line.encode("utf-8", "surrogateescape") + b"\n")
        if len(batch) >= 1024:
            console.write_bytes(b"".join(batch))
            batch.clear()
    console.write_bytes(b"".join(batch))


def dry_run_line(command: tuple[str, ...] | str, cwd: str | None) -> str:
    """A task's command as --dry-run shows it: pasteable, in its folder."""
    line = display_command(command)
    return f"cd {shlex.quote(cwd)} && {line}" if cwd else line


def print_shard_plan(console: Console, split: Split, shard: str | None) -> None:
    """--dry-run --shard: every shard's size and estimated time, as shell comments."""
    plans = split.plans or []
    values = split.per_value  # -X: the plan counts values (tests), each shard's commands hold
    count = len(values.units) if values is not None else sum(len(plan.tasks) for plan in plans)
    work = sum(plan.work for plan in plans)
    slots = f" of {split.slots} slots" if split.slots > 1 else ""
    known = split.known
    what = "values" if values is not None else "tasks"
    startup = values.startup if values is not None else 0.0
    startup_note = f"; {format_seconds(startup)} start-up a command" if startup else ""
    if known:
        basis = f"recorded durations of {known} of {count} {what} (the rest at their median)"
        if known == count:
            basis = f"recorded durations of every {what[:-1]}"
        ideal = work / (len(plans) * split.slots)
        console.line(f"# {len(plans)} shards{slots} by {basis}: {format_seconds(work)} in all, "
                     f"ideal {format_seconds(ideal)} a shard{startup_note}")
    else:
        console.line(f"# {len(plans)} shards{slots} by {what[:-1]} count: no recorded durations"
                     f"{startup_note}")
    for number, plan in enumerate(plans, start=1):
        marker = "  <- this shard" if f"{number}/{len(plans)}" == shard else ""
        tasks = len(plan.tasks)
        estimate = f", estimated {format_seconds(plan.estimate)}" if known else ""
        held = ""
        if values is not None:
            held_values = values.values(number)
            held = f" holding {held_values} value{'s' * (held_values != 1)}"
        console.line(f"# shard {number}/{len(plans)}: {tasks} task{'s' * (tasks != 1)}{held}"
                     f"{estimate}{marker}")
