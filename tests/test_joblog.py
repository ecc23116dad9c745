"""--joblog FILE: GNU parallel's job log, compared with the real GNU parallel's, and
written as tasks end."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.helpers import FANOUT, PARALLEL, needs_parallel, one_error_line, run_fanout, wait_until

HEADER = ["Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal",
          "Command"]  # fmt: skip


def rows(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    return [line.split("\t") for line in lines]


def by_seq(table: list[list[str]]) -> list[list[str]]:
    """The rows without the ones that vary (start time, run time), in task order."""
    return sorted(([row[0], row[1], *row[4:]] for row in table[1:]), key=lambda row: int(row[0]))


@needs_parallel
def test_the_log_is_gnu_parallels_for_the_same_tasks(tmp_path: Path) -> None:
    assert PARALLEL is not None
    gnu_log, our_log = tmp_path / "gnu.tsv", tmp_path / "ours.tsv"
    # Not a value such as x=1: GNU parallel quotes it ('x=1') and fanout, which quotes
    # each word of the command as it ran for a shell, does not need to.
    values = ["a", "b c", "it's", "-n", "é"]
    home = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run([PARALLEL, "--joblog", str(gnu_log), "printf", "%s", ":::", *values],
                   capture_output=True, check=True, env=home)  # fmt: skip
    completed = run_fanout("run", "--joblog", str(our_log), "--", "printf", "%s", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    gnu, ours = rows(gnu_log), rows(our_log)
    assert ours[0] == gnu[0] == HEADER
    assert by_seq(ours) == by_seq(gnu)
    for row in ours[1:]:
        assert len(row[2].split(".")[1]) == 3 and float(row[2]) > time.time() - 600
        assert len(row[3]) == 10 and float(row[3]) >= 0  # %10.3f, as GNU parallel


@needs_parallel
def test_exit_codes_and_signals_are_logged_as_gnu_parallel_logs_them(tmp_path: Path) -> None:
    assert PARALLEL is not None
    gnu_log, our_log = tmp_path / "gnu.tsv", tmp_path / "ours.tsv"
    script = 'case $1 in fail) exit 3;; kill) kill -9 $$;; esac'
    words = ["sh", "-c", script, "sh", "{}", ":::", "ok", "fail", "kill"]
    subprocess.run([PARALLEL, "-q", "--joblog", str(gnu_log), *words], capture_output=True,
                   check=False, env={**os.environ, "HOME": str(tmp_path)})  # fmt: skip
    run_fanout("run", "--joblog", str(our_log), "--", *words)
    exit_and_signal = [[row[0], row[4], row[5]] for row in by_seq(rows(our_log))]
    gnu_exit_and_signal = [[row[0], row[4], row[5]] for row in by_seq(rows(gnu_log))]
    assert exit_and_signal == gnu_exit_and_signal == [["1", "0", "0"], ["2", "3", "0"],
                                                      ["3", "0", "9"]]  # fmt: skip


def test_a_timeout_is_minus_one_and_term(tmp_path: Path) -> None:
    log = tmp_path / "log.tsv"
    run_fanout("run", "--timeout", "0.2", "--grace", "0.2", "--joblog", str(log), "--",
               "sleep", ":::", "5")  # fmt: skip
    assert [row[6:8] for row in rows(log)[1:]] == [["-1", "15"]]


def test_rows_are_written_as_tasks_end(tmp_path: Path) -> None:
    log = tmp_path / "log.tsv"
    env = {**os.environ, "FANOUT_OUTPUT_DIR": str(tmp_path / "out")}
    gate = tmp_path / "go"
    script = f'[ "$1" = slow ] && while [ ! -e {gate} ]; do sleep 0.05; done; true'
    process = subprocess.Popen(
        [str(FANOUT), "run", "-j", "2", "--joblog", str(log), "--", "sh", "-c", script, "sh",
         "{}", ":::", "slow", "fast"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        wait_until(lambda: log.exists() and len(rows(log)) == 2, "the fast task's row", timeout=20)
        assert rows(log)[1][0] == "2" and process.poll() is None
        gate.touch()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert [row[0] for row in rows(log)[1:]] == ["2", "1"]


def test_pipe_blocks_are_what_was_sent(tmp_path: Path) -> None:
    log = tmp_path / "log.tsv"
    completed = run_fanout("run", "--pipe", "-L", "2", "--joblog", str(log), "--", "wc", "-c",
                           input=b"ab\ncd\nef\n")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert [row[2] for row in by_seq(rows(log))] == ["6", "3"]


def test_a_resume_appends_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "log.tsv"
    first = run_fanout("run", "--run-id", "r", "--joblog", str(log), "--", "test", "-e",
                       "{}", ":::", str(tmp_path / "x"))  # fmt: skip
    assert first.returncode == 1
    (tmp_path / "x").touch()
    again = run_fanout("run", "--resume-failed", "r", "--joblog", str(log))
    assert again.returncode == 0, again.stderr
    table = rows(log)
    assert table[0] == HEADER and [row[6] for row in table[1:]] == ["1", "0"]


def test_a_joblog_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    line = one_error_line(run_fanout("run", "--joblog", str(tmp_path / "no" / "log.tsv"), "--",
                                     "true", ":::", "1"), no_run_folder=True)  # fmt: skip
    assert "--joblog" in line and "cannot write" in line
