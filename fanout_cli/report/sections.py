"""The tables beside the timeline: the failures first, the slowest tasks, and the
shards with their planned and actual times."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from fanout_cli.report.axis import seconds
from fanout_cli.report.model import FAILED, Files, Report, Task

FAILURES_LISTED = 1_000
SLOWEST = 10
SUMMARY_CHARS = 300


def failed_tasks(tasks: Sequence[Task]) -> list[Task]:
    """The tasks that failed, timed out or could not start, in that order."""
    rank = {status: index for index, status in enumerate(FAILED)}
    return sorted((task for task in tasks if task.status in rank),
                  key=lambda task: (rank[task.status], task.seq))  # fmt: skip


def link(text: str, href: str | None) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>' if href else escape(text)


def outputs(files: Files) -> str:
    return " ".join(link(label, href) for label, href in (
        ("stdout", files.stdout), ("stderr", files.stderr)) if href)  # fmt: skip


def cut(text: str, limit: int = SUMMARY_CHARS) -> str:
    """At most `limit` characters, an ellipsis the last when cut; none at all for 0."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…" if limit else ""


def failures(tasks: Sequence[Task]) -> str:
    failed = failed_tasks(tasks)
    cancelled = [task for task in tasks if task.status == "cancelled"]
    if not failed and not cancelled:
        return '<section id="failures"><h2>Failures</h2><p>None.</p></section>'
    items = []
    for task in failed[:FAILURES_LISTED]:
        where = f" ({escape(task.shard)})" if task.shard else ""
        tries = f", {task.attempts} attempts" if task.attempts > 1 else ""
        items.append(f'<li class="st-{task.status}"><b>{task.status}</b> '
                     f"{link(task.task_id, task.files.details)}{where}: "
                     f'<span class="summary">{escape(cut(task.summary))}</span> '
                     f"<small>({seconds(task.duration)}{tries}) {outputs(task.files)}"
                     "</small></li>")  # fmt: skip
    more = len(failed) - FAILURES_LISTED
    rest = f"<p>and {more} more</p>" if more > 0 else ""
    listed = f'<ol class="failures" id="failure-list">{"".join(items)}</ol>' if items else ""
    if cancelled:
        names = ", ".join(escape(task.task_id) for task in cancelled[:20])
        names += ", …" if len(cancelled) > 20 else ""
        rest += (f"<p>{len(cancelled)} cancelled (ended by the verdict, a halt or a signal): "
                 f"{names}</p>")
    return f'<section id="failures"><h2>Failures ({len(failed)})</h2>{listed}{rest}</section>'


def slowest(tasks: Sequence[Task]) -> str:
    ranked = sorted(tasks, key=lambda task: (-task.duration, task.seq))[:SLOWEST]
    rows = "".join(
        f'<tr class="st-{task.status}"><td>{link(task.task_id, task.files.details)}'
        f"<td class=n>{seconds(task.duration)}<td class=st>{task.status}"
        f"<td class=n>{task.attempts}" for task in ranked
    )
    return ('<section id="slowest"><h2>Slowest tasks</h2><table id="slowest-table"><thead>'
            "<tr><th>Task<th class=n>Duration<th>Status<th class=n>Attempts</thead>"
            f"<tbody>{rows}</tbody></table></section>")  # fmt: skip


def shards(report: Report) -> str:
    """Each part of a merged run (or a shard run's one part) side by side: its verdict,
    counts, wall time and, when --timings planned it, the estimate against the actual."""
    if not report.merged and all(part.estimate is None for part in report.parts):
        return ""
    rows = []
    for part in report.parts:
        verdict = part.verdict or {}
        counts = verdict.get("counts") or {}
        failed = sum(int(counts.get(status) or 0) for status in FAILED)
        passed = {True: "pass", False: "fail"}.get(bool(verdict["passed"]), part.status) \
            if "passed" in verdict else part.status  # fmt: skip
        wall = part.wall
        estimate = part.estimate
        ratio = f"{wall / estimate:.2f}x" if wall is not None and estimate else ""
        rows.append(f"<tr><td>{escape(part.label or part.run_id)}<td>{escape(part.run_id)}"
                    f"<td>{passed}<td class=n>{counts.get('tasks', len(part.tasks))}"
                    f"<td class=n>{failed}<td class=n>{part.slots}"
                    f"<td class=n>{seconds(wall) if wall is not None else ''}"
                    f"<td class=n>{seconds(estimate) if estimate is not None else ''}"
                    f"<td class=n>{ratio}")  # fmt: skip
    return ('<section id="shards"><h2>Shards</h2><table id="shard-table"><thead><tr>'
            "<th>Shard<th>Run<th>Verdict<th class=n>Tasks<th class=n>Failed<th class=n>Slots"
            "<th class=n>Wall<th class=n>Estimated<th class=n>Actual/estimated</thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>")  # fmt: skip
