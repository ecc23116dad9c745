"""The report as one HTML page: the header, the timeline, the side tables and the table
of attempts that says in words what the timeline draws. Style and script are inline
(report.assets) and a Content-Security-Policy forbids the page any request, so that
the file works offline, as a CI artifact, and leaks nothing when opened.

The page is drawn at the most detail that stays under SIZE_LIMIT (report.svg's
`full`, `compact`, `aggregate`); the header says which and why."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from fanout_cli.report import svg
from fanout_cli.report.assets import SCRIPT, STYLE
from fanout_cli.report.axis import seconds
from fanout_cli.report.model import Bar, Part, Report
from fanout_cli.report.sections import cut, failures, link, outputs, shards, slowest

SIZE_LIMIT = 2 * 1024 * 1024  # 2 MiB: a report of 10,000 tasks stays under this
FULL_BARS = 2_000  # above, bars are not links (a tab stop each would be of no use)
COMPACT_MOST = 20_000  # above, a compact page could not fit: aggregate at once
AGGREGATE_LISTED = 1_000  # attempts listed in an aggregated report's table
FULL_SUMMARY = 300  # characters of a summary in the table of a full page
COMPACT_SUMMARY = 40  # at most, in a compact page's (less when the limit is near)
_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
           "img-src data:; base-uri 'none'; form-action 'none'")  # fmt: skip


@dataclass(frozen=True)
class Detail:
    """How much a page shows: report.svg's mode, and the characters of each summary in
    the table of attempts."""

    mode: str
    summary_chars: int


def render(report: Report) -> tuple[str, str]:
    """(the page, the mode it was drawn in): full up to FULL_BARS attempts; compact
    while a bar and a row for every attempt fit under SIZE_LIMIT, the summaries cut to
    what the limit leaves; aggregated beyond."""
    bars = ordered_bars(report.parts)
    if len(bars) <= FULL_BARS:
        page = _page(report, bars, Detail("full", FULL_SUMMARY))
        if _size(page) <= SIZE_LIMIT:
            return page, "full"
    if len(bars) <= COMPACT_MOST:
        compact = _compact(report, bars)
        if compact is not None:
            return compact, "compact"
    return _page(report, bars, Detail("aggregate", COMPACT_SUMMARY)), "aggregate"


def _compact(report: Report, bars: list[tuple[int, Bar]]) -> str | None:
    """A bar and a row for every attempt under the limit, or None when they cannot fit
    even with no summaries."""
    page = _page(report, bars, Detail("compact", COMPACT_SUMMARY))
    if _size(page) <= SIZE_LIMIT:  # most runs: drawn once
        return page
    bare = _size(_page(report, bars, Detail("compact", 0)))
    if bare > SIZE_LIMIT:
        return None
    chars = min(COMPACT_SUMMARY - 1, (SIZE_LIMIT - bare) // max(1, len(bars)))
    while True:  # escaping can make a summary longer than its characters
        page = _page(report, bars, Detail("compact", chars))
        if _size(page) <= SIZE_LIMIT:
            return page
        chars = chars * 3 // 4


def _size(page: str) -> int:
    return len(page.encode("utf-8", "replace"))


def ordered_bars(parts: Sequence[Part]) -> list[tuple[int, Bar]]:
    return [(index, bar) for index, part in enumerate(parts)
            for bar in sorted(part.bars, key=lambda bar: (bar.start, bar.seq))]  # fmt: skip


def _page(report: Report, bars: list[tuple[int, Bar]], detail: Detail) -> str:
    title = f"fanout {'merge' if report.merged else 'run'} {report.run_id}"
    durations = [task.duration for task in report.tasks]
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        _header(report, title, bars, detail),
        '<h2 id="timeline-title">Timeline</h2>',
        _legend(),
        '<p id="filter" class="filter" hidden><label><input type="checkbox"> hide the '
        "successes</label></p>",
        f'<div class="scroll">{svg.timeline(report.parts, bars, detail.mode)}</div>',
        '<div id="tip" role="tooltip" hidden></div>',
        '<div class="grid">',
        failures(report.tasks),
        slowest(report.tasks),
        f'<section id="durations"><h2>Durations</h2>{svg.histogram(durations)}</section>',
        "" if report.merged else shards(report),  # a merged run's are in the header
        "</div>",
        _attempts(report.parts, bars, detail),
        f"<script>{SCRIPT}</script></body></html>\n",
    ]
    return "\n".join(parts)


def _header(report: Report, title: str, bars: list[tuple[int, Bar]], detail: Detail) -> str:
    counts = "".join(f'<div><dt>{escape(name)}</dt><dd data-status="{escape(name)}">'
                     f"{value}</dd></div>" for name, value in report.counts.items())  # fmt: skip
    attempts = len([bar for _, bar in bars if bar.status != "requeued"])
    retried = sum(1 for _, bar in bars if bar.attempt > 1)
    facts = [
        f"strategy <b>{escape(report.strategy)}</b>",
        f"wall time <b>{_wall(report)}</b>",
        f"<b>{attempts}</b> attempt{'s' * (attempts != 1)} ({retried} retried)",
        f"slots busy <b>{_busy(report.parts)}</b>",
    ]
    sessions = max((len(part.sessions) for part in report.parts), default=1)
    if sessions > 1:
        facts.append(f"<b>{sessions}</b> sessions (resumed)")
    notes = [f'<p class="note">{escape(note)}</p>' for note in _status_notes(report, detail)]
    notes += [f'<p class="note">{escape(note)}</p>' for note in report.notes]
    argv = [os.path.basename(report.argv[0]), *report.argv[1:]] if report.argv else []
    command = " ".join(shlex.quote(word) for word in argv) or "(not recorded)"
    return (f'<header id="summary"><h1>{escape(title)}</h1>{_verdict(report)}'
            f'<dl class="counts" id="counts">{counts}</dl>'
            f'<p class="facts">{" · ".join(facts)}</p>'
            f'<code class="cmd" id="command">{escape(command)}</code>{"".join(notes)}'
            f'{shards(report) if report.merged else ""}</header>')  # fmt: skip


def _verdict(report: Report) -> str:
    verdict = report.verdict
    if verdict is None:
        text = {"running": "RUNNING: no verdict yet", "crashed": "NO VERDICT: the run was "
                "stopped before it ended"}.get(report.status, "NO VERDICT")  # fmt: skip
        return f'<p id="verdict" class="verdict">{escape(text)}</p>'
    passed = bool(verdict.get("passed"))
    reason = escape(str(verdict.get("reason") or ""))
    word = "PASS" if passed else "FAIL"
    return (f'<p id="verdict" class="verdict {"pass" if passed else "fail"}">{word} '
            f"{escape(str(verdict.get('strategy') or report.strategy))}: {reason}</p>")


def _status_notes(report: Report, detail: Detail) -> list[str]:
    notes = []
    if report.status == "running":
        notes.append("This run is still going: the report draws what had happened when it "
                     "was made; make it again to see the rest.")  # fmt: skip
    elif report.status == "crashed":
        notes.append("This run was stopped before it ended (killed, or its machine went "
                     "down): attempts with no end are drawn to its journal's last event as "
                     "'unfinished'. fanout run --resume RUN runs what is left.")  # fmt: skip
    elif report.status == "interrupted":
        notes.append("This run was interrupted (Ctrl-C or a signal).")
    if any(part.reconstructed for part in report.parts):
        notes.append("This run's journal is older than slot numbers: the lanes are worked out "
                     "from the start and end times, not the slots the tasks ran on.")  # fmt: skip
    if detail.mode == "compact":
        cut = f" and its summaries cut to {detail.summary_chars} characters" \
            if detail.summary_chars else " and no summaries (a task's is in its details file)"
        notes.append(f"Over {FULL_BARS} attempts: the bars are not links; the table of "
                     "attempts below has each one's files (with script, a click on a bar "
                     f"opens them){cut if detail.summary_chars < COMPACT_SUMMARY else ''}, "
                     "to stay under 2 MiB.")  # fmt: skip
    elif detail.mode == "aggregate":
        notes.append("Aggregated to stay under 2 MiB: each lane is drawn in columns, each in "
                     "the colour of the worst status that ran in it, and the table lists "
                     f"the attempts that did not succeed (at most {AGGREGATE_LISTED}). "
                     f"fanout show {report.run_id} lists every task.")  # fmt: skip
    return notes


def _wall(report: Report) -> str:
    """The run's time: of a resumed run, its sessions' (the idle time between them left
    out); of a merged run, from the first shard's start to the last one's end."""
    sessions = [] if report.merged else report.parts[0].sessions if report.parts else []
    wall = sum(end - start for start, end in sessions) if sessions else report.wall
    return "?" if wall is None else seconds(wall)


def _busy(parts: Sequence[Part]) -> str:
    """The share of slot time that ran an attempt (the idle time between a run and its
    --resume left out)."""
    busy = sum(bar.duration for part in parts for bar in part.bars)
    total = sum(sum(end - start for start, end in part.sessions) * part.slots for part in parts)
    return f"{min(100.0, 100 * busy / total):.0f}%" if total > 0 else "?"


def _legend() -> str:
    items = "".join(f'<span><i class="st-{status}"></i>{status}</span>' for status in (
        "success", "failure", "timeout", "error", "cancelled", "requeued", "running",
        "unfinished"))  # fmt: skip
    return (f'<p class="legend">{items}<span>- - back-off</span>'
            "<span>▨ waiting for a rate limit</span></p>")  # fmt: skip


def _attempts(parts: Sequence[Part], bars: list[tuple[int, Bar]], detail: Detail) -> str:
    """The timeline in words: one row per bar, in the same order (`data-i`). Lean markup
    (a success's row has no class, its outputs are in its details file) so that 10,000
    rows stay under the size limit."""
    full = detail.mode == "full"
    limit = detail.summary_chars
    places = 3 if full else 2
    labels = {(index, slot): (f"{part.label} · {slot}" if part.label else str(slot))
              for index, part in enumerate(parts) for slot in range(1, part.slots + 1)}  # fmt: skip
    origins = [part.started_at or 0.0 for part in parts]
    shown = bars
    if detail.mode == "aggregate":
        shown = [(part, bar) for part, bar in bars if bar.status != "success"][:AGGREGATE_LISTED]
    rows = []
    for part, bar in shown:
        said = cut(bar.summary or bar.reason, limit)
        exit_code = "" if bar.exit_code is None else str(bar.exit_code)
        status = "" if bar.status == "success" else f' class="st-{bar.status}"'
        files = f"<td>{outputs(bar.files)}" if full or status else ""
        rows.append(f"<tr{status}><td>{link(bar.task_id, bar.files.details)}<td>{bar.attempt}"
                    f"<td>{escape(labels.get((part, bar.slot or 0), '?'))}"
                    f"<td>{bar.start - origins[part]:.{places}f}<td>{bar.duration:.{places}f}"
                    f"<td>{bar.status}<td>{exit_code}<td>{escape(said)}{files}\n")  # fmt: skip
    opened = " open" if len(shown) <= FULL_BARS else ""
    caption = f"{len(shown)} of {len(bars)} attempts" if len(shown) != len(bars) else \
        f"{len(bars)} attempts"  # fmt: skip
    return (f'<section id="attempts-section"><h2>Attempts</h2><details{opened}><summary>'
            f"{caption}, in the timeline's order (start and duration in seconds)</summary>"
            '<table id="attempts"><thead><tr><th>Task<th>Attempt<th>Slot<th>Start<th>Duration'
            f'<th>Status<th>Exit<th>Summary<th>Output</thead><tbody>{"".join(rows)}</tbody>'
            "</table></details></section>")
