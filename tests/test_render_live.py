"""Live progress and the final table, without a terminal: the ETA, the slowest running
tasks, which rows the table keeps, and when the live area is shown (table-driven).
tests/test_terminal.py checks the same on a real terminal."""

from __future__ import annotations

import io
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fanout_cli.models import Attempt, TaskResult, TaskSpec, TaskStatus
from fanout_cli.options import OutputOptions
from fanout_cli.render import in_ci, make_renderer, progress_mode
from fanout_cli.render.console import Console
from fanout_cli.render.lines import HumanRenderer
from fanout_cli.render.live import (
    LiveArea,
    ProgressState,
    RunningTask,
    Snapshot,
    estimate_seconds_left,
    live_color,
    live_lines,
    slowest_running,
)
from fanout_cli.render.tables import (
    TableRow,
    TableSelection,
    cell_width,
    fit,
    print_table,
    select_rows,
    table_lines,
)
from tests.helpers import report_of


def spec(seq: int, task_id: str | None = None) -> TaskSpec:
    return TaskSpec(seq=seq, task_id=task_id or f"t{seq}", command=("true",), origin=f"test:{seq}")


def ended(
    seq: int, status: str = "success", seconds: float = 1.0, *, attempts: int = 1
) -> TaskResult:
    """A finished task that ran for `seconds` (attempts=0: never started)."""
    tries = tuple(
        Attempt(number, 100.0, 100.0 + seconds, TaskStatus(status), 0, None, "", "o", "e")
        for number in range(1, attempts + 1)
    )
    return TaskResult(
        spec=spec(seq),
        status=TaskStatus(status),
        summary=f"summary {seq}",
        attempts=tries,
        started_at=100.0 if attempts else None,
        finished_at=100.0 + seconds if attempts else None,
    )


def row(seq: int, status: str = "success", **extra: Any) -> dict[str, Any]:
    return {"task_id": f"t{seq}", "seq": seq, "status": status, "duration_ms": 1500,
            "attempts": 1, "summary": f"summary {seq}", **extra}  # fmt: skip


def rows_from(statuses: str) -> list[dict[str, Any]]:
    """`"S F C"` -> success, failure, cancelled (T timeout, E error), seq 1, 2, 3."""
    names = {"S": "success", "F": "failure", "T": "timeout", "C": "cancelled", "E": "error"}
    return [row(seq, names[code]) for seq, code in enumerate(statuses.split(), start=1)]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- ETA ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finished", "finished_seconds", "remaining", "jobs", "expected"),
    [
        (0, 0.0, 10, 4, None),  # nothing finished yet: no estimate
        (3, 6.0, None, 4, None),  # a stream: the total is not known
        (2, 4.0, 10, 2, 10.0),  # mean 2s x 10 left / 2 in parallel
        (4, 4.0, 8, 4, 2.0),
        (1, 3.0, 3, 1, 9.0),  # one at a time
        (2, 4.0, 1, 8, 2.0),  # one task left runs alone: no faster for free slots
        (2, 4.0, 3, 8, 2.0),
        (5, 5.0, 0, 4, 0.0),  # all done
    ],
)
def test_eta_is_mean_duration_times_remaining_over_jobs(
    finished: int, finished_seconds: float, remaining: int | None, jobs: int,
    expected: float | None,
) -> None:  # fmt: skip
    assert estimate_seconds_left(finished, finished_seconds, remaining, jobs) == expected


def test_state_eta_counts_only_tasks_that_ran_and_rounds_up() -> None:
    state = ProgressState(total=10, jobs=2, clock=FakeClock())
    assert state.snapshot().eta is None
    state.ended(ended(1, seconds=1.2), scroll=True)
    state.ended(ended(2, "cancelled", attempts=0), scroll=True)  # never started: no duration
    snapshot = state.snapshot()
    assert (snapshot.done, snapshot.cancelled) == (2, 1)
    assert snapshot.eta == "5s"  # 1.2s x 8 left / 2 = 4.8s, shown as 5s


# --- slowest running ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        ([], []),
        ([5.0], ["t0"]),
        ([5.0, 1.0, 3.0, 9.0], ["t1", "t2", "t0"]),
        ([2.0, 1.0, 2.0, 2.0], ["t1", "t0", "t2"]),  # ties: the one started first
    ],
)
def test_slowest_running_are_the_earliest_started(starts: list[float], expected: list[str]) -> None:
    running = [RunningTask(f"t{number}", start, 1) for number, start in enumerate(starts)]
    assert [task.task_id for task in slowest_running(running)] == expected


def test_state_shows_the_slowest_running_with_time_since_their_first_attempt() -> None:
    clock = FakeClock(1000.0)
    state = ProgressState(total=6, jobs=4, clock=clock)
    for seq, started in ((1, 1000.0), (2, 1010.0), (3, 1020.0), (4, 1030.0)):
        clock.now = started
        state.started(spec(seq), 1)
    clock.now = 1040.0
    state.started(spec(1), 2)  # a retry keeps the task's first start
    state.ended(ended(2), scroll=True)
    clock.now = 1095.0
    snapshot = state.snapshot()
    assert snapshot.running == 3
    assert snapshot.slowest == (("t1", "1m35s", 2), ("t3", "1m15s", 1), ("t4", "1m05s", 1))


def test_state_counts_failures_and_scrolls_lines_of_tasks_that_ran() -> None:
    state = ProgressState(total=None, jobs=2, clock=FakeClock())
    state.ended(ended(1), scroll=True)
    state.ended(ended(2, "failure", attempts=2), scroll=True)
    state.ended(ended(3, "timeout"), scroll=False)
    state.ended(ended(4, "cancelled", attempts=0), scroll=True)
    snapshot = state.snapshot()
    assert (snapshot.done, snapshot.failed, snapshot.cancelled, snapshot.eta) == (4, 2, 1, None)
    lines = state.take_lines()
    assert [(status, label, rest) for status, label, rest in lines] == [
        (TaskStatus.SUCCESS, "success  ", " t1  1.00s  summary 1"),
        (TaskStatus.FAILURE, "failure  ", " t2  1.00s [2 attempts]  summary 2"),
    ]
    assert state.take_lines() == []


def plain(lines: list[list[tuple[str, str]]]) -> list[str]:
    return ["".join(text for text, _ in segments) for segments in lines]


COUNTS = "3/6 50% · 2 running · 1 failed · ETA 4s"  # 39 cells


@pytest.mark.parametrize(
    ("snapshot", "columns", "expected"),
    [
        (
            Snapshot(3, 6, 2, 1, 0, "4s", (("build", "12s", 1), ("lint", "3s", 2))),
            100,
            ["━" * 15 + "─" * 15 + " " + COUNTS, "     12s  build", "      3s  lint (attempt 2)"],
        ),
        (Snapshot(3, 6, 2, 1, 0, "4s", ()), 51, ["━" * 5 + "─" * 5 + " " + COUNTS]),
        (Snapshot(3, 6, 2, 1, 0, "4s", ()), 47, [COUNTS]),  # too narrow for a bar
        (  # a stream: no total, so no bar, no percentage, no ETA
            Snapshot(7, None, 2, 0, 0, None, ()),
            100,
            ["7 done · 2 running · 0 failed"],
        ),
        (
            Snapshot(10, 10, 0, 0, 3, "0s", ()),
            100,
            ["━" * 30 + " 10/10 100% · 0 running · 0 failed · 3 cancelled · ETA 0s"],
        ),
    ],
)
def test_live_lines(snapshot: Snapshot, columns: int, expected: list[str]) -> None:
    lines = plain(live_lines(snapshot, columns))
    assert lines == expected
    assert all(cell_width(line) < columns for line in lines)


# --- the final table ------------------------------------------------------------------


def seqs(selection: TableSelection) -> list[str]:
    return [table_row.task_id for table_row in selection.rows]


@pytest.mark.parametrize(
    ("statuses", "limit", "shown", "hidden"),
    [
        ("S F S S", 10, ["t1", "t2", "t3", "t4"], 0),  # all fit: input order
        ("S F S F", 4, ["t1", "t2", "t3", "t4"], 0),  # exactly fit: still input order
        ("S S F S C S T S", 5, ["t3", "t7", "t5", "t1"], 4),  # failures, cancelled, successes
        ("S S S S S S", 3, ["t1", "t2"], 4),  # all passed: the first ones
        ("F F F F F S", 3, ["t1", "t2"], 4),
        ("E S S S", 2, ["t1"], 3),
        ("", 5, [], 0),
    ],
)
def test_table_selection(statuses: str, limit: int, shown: list[str], hidden: int) -> None:
    selection = select_rows(rows_from(statuses), limit)
    assert (seqs(selection), selection.hidden) == (shown, hidden)
    assert len(selection.rows) + (1 if selection.hidden else 0) <= max(limit, 1)


def test_table_selection_reads_the_rows_once_and_keeps_few() -> None:
    def journal() -> Iterator[dict[str, Any]]:  # a generator: one pass only
        for seq in range(1, 200_001):
            yield row(seq, "failure" if seq % 50_000 == 0 else "success")

    selection = select_rows(journal(), 5)
    assert seqs(selection) == ["t50000", "t100000", "t150000", "t200000"]
    assert selection.hidden == 199_996


def test_table_lines_align_ids_show_attempts_and_fit_the_width() -> None:
    rows = [
        TableRow("success", "short", 1500, 1, "fine"),
        TableRow("failure", "a-much-longer-id", 61_000, 3, "x" * 200),
        TableRow("cancelled", "never", None, 0, "not started (stopped)"),
    ]
    lines = table_lines(TableSelection(tuple(rows), 0), columns=60)
    assert [label + rest for label, rest in lines] == [
        "success   short              1.50s  fine",
        "failure   a-much-longer-id   61.0s [3 attempts]  " + "x" * 10 + "…",
        "cancelled never                  -  not started (stopped)",
    ]
    assert all(cell_width(label + rest) <= 60 for label, rest in lines)


@pytest.mark.parametrize(
    ("text", "cells", "expected"),
    [("abc", 5, "abc"), ("abcdef", 4, "abc…"), ("日本語です", 6, "日本…"), ("abc", 0, "")],
)
def test_fit_counts_terminal_cells(text: str, cells: int, expected: str) -> None:
    assert fit(text, cells) == expected
    assert cell_width(fit(text, cells)) <= cells




def test_print_table_caps_to_the_screen_with_failures_first_and_the_verdict_last() -> None:
    stream = io.StringIO()
    rows = rows_from("S " * 30 + "F S")
    print_table(Console(stream, color=False), report_of(rows), os.terminal_size((100, 12)))
    lines = stream.getvalue().splitlines()
    # 12 lines: a blank line, 8 lines of table, where the report is, the verdict, the
    # next prompt.
    assert lines[0] == ""
    assert lines[1].startswith("failure   t31 ")
    assert [line.split()[1] for line in lines[2:8]] == [f"t{seq}" for seq in range(1, 7)]
    assert lines[8] == "… 25 more in /runs/r1/manifest.json"
    assert lines[9] == "timeline of the slots, failures first: fanout report r1"
    assert lines[10].startswith("FAIL all-succeed: 1 failure · 32 tasks in 2.00s")
    assert len(lines) == 11


def test_print_table_shows_every_row_in_input_order_when_they_fit() -> None:
    stream = io.StringIO()
    print_table(Console(stream, color=False), report_of(rows_from("S F S")),
                os.terminal_size((100, 30)))  # fmt: skip
    lines = stream.getvalue().splitlines()
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["success", "t1"], ["failure", "t2"], ["success", "t3"],
    ]  # fmt: skip
    assert lines[4] == "timeline of the slots, failures first: fanout report r1"
    assert lines[5].startswith("FAIL ") and len(lines) == 6


# --- when the live area is shown ------------------------------------------------------

TERMINAL = {"TERM": "xterm-256color"}


@pytest.mark.parametrize(
    ("options", "env", "stderr_terminal", "stdout_same", "expected"),
    [
        ({}, TERMINAL, True, True, "terminal"),
        ({}, TERMINAL, True, False, "off"),  # stdout piped: the plain lines
        ({}, TERMINAL, False, False, "off"),  # stderr piped
        ({}, {**TERMINAL, "CI": "true"}, True, True, "off"),
        ({}, {**TERMINAL, "CI": "1"}, True, True, "off"),
        ({}, {**TERMINAL, "CI": "false"}, True, True, "terminal"),
        ({}, {**TERMINAL, "CI": ""}, True, True, "terminal"),
        ({}, {**TERMINAL, "GITHUB_ACTIONS": "true"}, True, True, "off"),
        ({}, {**TERMINAL, "GITLAB_CI": "true"}, True, True, "off"),
        ({}, {**TERMINAL, "BUILDKITE": "true"}, True, True, "off"),
        ({}, {**TERMINAL, "CIRCLECI": "true"}, True, True, "off"),
        ({}, {**TERMINAL, "JENKINS_URL": "http://ci/"}, True, True, "off"),
        ({}, {**TERMINAL, "TF_BUILD": "True"}, True, True, "off"),
        ({}, {"TERM": "dumb"}, True, True, "off"),
        ({}, {}, True, True, "terminal"),  # no TERM at all: rich copes
        ({"format": "aop"}, TERMINAL, True, True, "off"),
        ({"format": "json"}, TERMINAL, True, True, "off"),
        ({"format": "jsonl"}, TERMINAL, True, True, "off"),
        ({"quiet": True}, TERMINAL, True, True, "off"),
        ({"progress": False}, TERMINAL, True, True, "off"),
        ({"progress": True}, {**TERMINAL, "CI": "true"}, True, True, "terminal"),
        ({"progress": True}, TERMINAL, True, False, "stderr"),  # stdout keeps its lines
        ({"progress": True}, TERMINAL, False, False, "off"),  # never into a pipe
        ({"progress": True}, {"TERM": "dumb"}, True, True, "off"),
        ({"progress": True, "format": "json"}, TERMINAL, True, True, "off"),
        ({"progress": True, "quiet": True}, TERMINAL, True, True, "off"),
        ({"color": "never"}, {**TERMINAL, "NO_COLOR": "1"}, True, True, "terminal"),
    ],
)
def test_progress_mode(
    options: dict[str, Any], env: dict[str, str], stderr_terminal: bool, stdout_same: bool,
    expected: str,
) -> None:  # fmt: skip
    assert progress_mode(OutputOptions(**options), env, stderr_terminal, stdout_same) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"CI": "true"}, True), ({"CI": "no"}, False), ({"TF_BUILD": "x"}, True)],
)
def test_in_ci(env: dict[str, str], expected: bool) -> None:
    assert in_ci(env) is expected


@pytest.mark.parametrize(
    ("color", "no_color", "expected"),
    [
        ("always", "1", True),  # the option wins over NO_COLOR, as no-color.org asks
        ("never", "", False),
        ("auto", "1", False),
        ("auto", "", False),  # auto on a stream that is not a terminal
    ],
)
def test_live_color(
    color: str, no_color: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    assert live_color(OutputOptions(color=color), io.StringIO()) is expected


def test_make_renderer_keeps_the_plain_lines_off_a_terminal() -> None:
    renderer = make_renderer(OutputOptions(progress=True), Console(io.StringIO()), total=3)
    assert isinstance(renderer, HumanRenderer)


def test_a_piped_run_does_not_import_rich(tmp_path: Any) -> None:
    script = (
        "import sys\n"
        "from fanout_cli.cli import run_cli\n"
        "code = run_cli(['run', '--progress', '--', 'true'])\n"
        "assert code == 0, code\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'rich'))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], input=b"a\nb\n", capture_output=True, check=True,
        env={**os.environ, "FANOUT_OUTPUT_DIR": str(tmp_path / "out")},
    )  # fmt: skip
    assert completed.stdout.decode().splitlines()[-1] == "[]"


# --- drawing, on a pseudo-terminal ----------------------------------------------------


def read_available(fd: int, wait: float, until: bytes | None = None) -> bytes:
    """What the terminal got within `wait` seconds (or once `until` came, and the rest
    of its burst)."""
    data = b""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        data += os.read(fd, 65536)
        if until is not None and until in data:
            deadline = min(deadline, time.monotonic() + 0.05)
    return data


def test_live_area_redraws_only_on_change_and_clears_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leader, follower = os.openpty()
    terminal = open(follower, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 - closed below
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "80")
    state = ProgressState(total=3, jobs=2, clock=FakeClock())  # time stands still
    area = LiveArea(state, color=False)
    try:
        state.started(spec(1, "first-task"), 1)
        area.start()
        drawn = read_available(leader, 2.0, until=b"first-task")
        assert b"0/3 0%" in drawn and b"first-task" in drawn
        assert read_available(leader, 0.6) == b""  # nothing changed: no redraw
        state.ended(ended(1), scroll=True)
        drawn = read_available(leader, 1.0, until=b"1/3 33%")
        assert b"success   t1  1.00s  summary 1" in drawn and b"1/3 33%" in drawn
        assert b"\x1b[3" not in drawn  # no colour
        area.stop()
        cleared = read_available(leader, 1.0, until=b"\x1b[?25h")
        assert b"\x1b[?25h" in cleared  # the cursor is back
        assert b"\x1b[2K" in cleared  # and the area erased
    finally:
        area.stop()
        terminal.close()
        os.close(leader)


def test_a_run_over_at_once_shows_no_live_area(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = os.openpty()
    terminal = open(follower, "w", encoding="utf-8", closefd=True)  # noqa: SIM115 - closed below
    monkeypatch.setattr(sys, "stderr", terminal)
    area = LiveArea(ProgressState(total=1, jobs=1), color=True)
    try:
        area.start()
        area.stop()  # before the area would have appeared: it never does
        assert read_available(leader, 0.4) == b""
    finally:
        terminal.close()
        os.close(leader)
