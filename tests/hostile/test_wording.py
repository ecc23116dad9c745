"""Class 9 of issue 14: what fanout says is true, and said before any work is done
where it can be."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import assert_clean, one_error_line, run_fanout, write_tasks


def test_timeout_zero_is_no_limit_not_a_timeout_of_every_task() -> None:
    """As in GNU parallel (and unlike timeout(1)'s refusal): 0 lifts the limit."""
    completed = run_fanout("run", "--timeout", "0", "--deadline", "0", "--", "true", ":::", "a")
    assert completed.returncode == 0, completed.stderr
    assert "timed out" not in completed.stdout + completed.stderr


@pytest.mark.parametrize("make", ["folder", "fifo", "no-folder"])
def test_a_junit_path_that_cannot_be_written_fails_before_any_task(
    tmp_path: Path, make: str
) -> None:
    target = tmp_path / "report"
    if make == "folder":
        target.mkdir()
    elif make == "fifo":
        os.mkfifo(target)
    else:
        target = tmp_path / "missing" / "junit.xml"
    started = time.monotonic()
    completed = run_fanout("run", "--junit", str(target), "--", "sleep", "5", ":::", "a", "b")
    assert time.monotonic() - started < 4, "no task may run first"
    line = one_error_line(completed, no_run_folder=True)
    assert f"--junit {target}" in line, line


def test_a_junit_folder_without_write_permission_fails_before_any_task(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes in any folder")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    completed = run_fanout("run", "--junit", str(folder / "j.xml"), "--", "true", ":::", "a")
    assert "cannot write" in one_error_line(completed, no_run_folder=True)


def test_the_deadline_summary_and_the_verdict_agree() -> None:
    completed = run_fanout("run", "-j", "2", "--deadline", "1s", "--", "sleep", "5",
                           ":::", "1", "2", "3")  # fmt: skip
    assert_clean(completed)
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert "timeout   1 task not started (run deadline of 1s reached)" in lines, lines
    assert not any(line.startswith("cancelled") for line in lines), lines
    assert "3 timeout of 3" in lines[-1], lines


@pytest.mark.parametrize(
    ("table", "words"),
    [
        pytest.param('env = {A = "x\\u0000y"}', ("env.A", "value holds a NUL"), id="env-value"),
        pytest.param('cwd = "a\\u0000b"', ("cwd holds a NUL",), id="cwd"),
        pytest.param('foreach = ["a\\u0000b"]', ("foreach value holds a NUL",), id="foreach"),
    ],
)
def test_a_nul_says_where_it_is(tmp_path: Path, table: str, words: tuple[str, ...]) -> None:
    tasks = write_tasks(tmp_path / "t.toml", f'[[task]]\ncmd = ["echo", "{{}}"]\n{table}\n')
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert "bad env name" not in line, line
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("cmd", ['["echo", "a\\u0000b"]', '"echo a\\u0000b"'])
def test_a_nul_in_a_command_is_one_line_not_an_internal_error(tmp_path: Path, cmd: str) -> None:
    tasks = write_tasks(tmp_path / "t.toml", f"[[task]]\ncmd = {cmd}\n")
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert f"{tasks}:2:" in line and "cmd holds a NUL" in line, line
