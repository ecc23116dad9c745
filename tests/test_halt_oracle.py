"""--halt against GNU parallel, the oracle: the same rule, jobs and tasks through both
tools, and the same tasks start, run to their end, or are ended; the exit status is
zero for both or non-zero for both (fanout's is 0 or 1, GNU parallel's counts).

Each task is `task.sh "NAME SECONDS CODE"`: it logs `start NAME`, sleeps, logs
`end NAME` and exits CODE. With -j 1 the order is fixed and every case is exact; with
-j 2 the cases leave seconds between the events that matter."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    FANOUT,
    PARALLEL,
    assert_clean,
    needs_parallel,
    one_error_line,
    read_manifest,
    run_fanout,
)

TASK_SCRIPT = """#!/bin/sh
set -- $1
echo "start $1" >> "$LOG"
sleep "$2"
echo "end $1" >> "$LOG"
exit "$3"
"""


@dataclass(frozen=True)
class Case:
    halt: str
    jobs: int
    tasks: tuple[str, ...]  # "NAME SECONDS CODE"
    # fanout's exit where it differs from GNU parallel's on purpose (after done=, the
    # strategy judges the tasks that ended; GNU parallel counts the failures at the
    # moment it halted, and says 101 when there were none: min(undef, 101))
    exit: int | None = None

    @property
    def id(self) -> str:
        return f"{self.halt}-j{self.jobs}-" + ",".join(t.split()[2] for t in self.tasks)


def _tasks(codes: str, seconds: str = "0") -> tuple[str, ...]:
    return tuple(f"t{n} {seconds} {code}" for n, code in enumerate(codes, 1))


EXACT = [  # -j 1: which tasks start is fixed
    Case("now,fail=1", 1, _tasks("00100")),
    Case("soon,fail=1", 1, _tasks("00100")),
    Case("now,fail=2", 1, _tasks("10101")),
    Case("now,success=2", 1, _tasks("10101")),
    Case("soon,success=1", 1, _tasks("110")),
    Case("now,done=3", 1, _tasks("01010")),
    Case("soon,done=2", 1, _tasks("0000"), exit=0),  # GNU parallel: 101
    Case("now,fail=40%", 1, _tasks("10101")),  # 2 of 5
    Case("now,fail=50%", 1, _tasks("10101")),  # 2.5 of 5: the third failure
    Case("now,success=50%", 1, _tasks("0101")),
    Case("soon,done=25%", 1, _tasks("11111111")),
    Case("2", 1, _tasks("0120")),  # GNU parallel's older forms
    Case("-1", 1, _tasks("110")),
    Case("20%", 1, _tasks("0110101111")),
    Case("never", 1, _tasks("101")),
    Case("now,fail=1", 1, _tasks("000")),  # never met: every task runs
]
# -j 2: a quick task decides while a slow one runs; now ends it, soon lets it finish.
TIMED = [
    Case("now,fail=1", 2, ("quick 0.2 1", "slow 3 0", "t3 0 0", "t4 0 0")),
    Case("soon,fail=1", 2, ("quick 0.2 1", "slow 1.5 0", "t3 0 0", "t4 0 0")),
    Case("now,success=1", 2, ("slow 3 1", "quick 0.2 0", "t3 0 0")),
    Case("soon,done=1", 2, ("quick 0.2 0", "slow 1.5 1", "t3 0 0"), exit=1),  # GNU: 0
]


Logged = tuple[int, set[str], set[str]]  # the exit code, the tasks started, those ended


def _log(folder: Path, case: Case, tool: list[str], end: list[str]) -> Logged:
    """Run `tool` on the case's tasks (`end`: what ends its options); its exit code, and
    the tasks started and ended."""
    script = folder / "task.sh"
    script.write_text(TASK_SCRIPT)
    script.chmod(0o755)
    log = folder / "log"
    command = [*tool, "--halt", case.halt, "-j", str(case.jobs), *end, str(script), ":::",
               *case.tasks]  # fmt: skip
    completed = subprocess.run(command, env={**os.environ, "LOG": str(log)}, capture_output=True,
                               timeout=60, check=False, cwd=folder)  # fmt: skip
    assert "Traceback" not in completed.stderr.decode(), completed.stderr
    lines = log.read_text().split("\n") if log.exists() else []
    started = {line.split()[1] for line in lines if line.startswith("start ")}
    ended = {line.split()[1] for line in lines if line.startswith("end ")}
    return completed.returncode, started, ended


def _same_as_gnu_parallel(tmp_path: Path, case: Case) -> Logged:
    (tmp_path / "gnu").mkdir()
    (tmp_path / "fanout").mkdir()
    gnu = _log(tmp_path / "gnu", case, [str(PARALLEL)], [])
    # fanout's options end at "--" (its command may start with a dash); GNU parallel's
    # at the first word that is not an option
    ours = _log(tmp_path / "fanout", case, [str(FANOUT), "run", "-q"], ["--"])
    assert ours[1:] == gnu[1:], f"started, ended: fanout {ours[1:]}, GNU parallel {gnu[1:]}"
    if case.exit is None:
        assert (ours[0] == 0) == (gnu[0] == 0), f"exit: fanout {ours[0]}, GNU parallel {gnu[0]}"
    else:
        assert ours[0] == case.exit
        assert gnu[0] != case.exit  # still a difference: else the case is an ordinary one
    assert ours[0] in (0, 1)
    return ours


@needs_parallel
@pytest.mark.parametrize("case", EXACT, ids=lambda case: case.id)
def test_the_same_tasks_run_as_under_gnu_parallel(tmp_path: Path, case: Case) -> None:
    _same_as_gnu_parallel(tmp_path, case)


@needs_parallel
@pytest.mark.slow
@pytest.mark.parametrize("case", TIMED, ids=lambda case: case.id)
def test_now_ends_and_soon_waits_for_the_same_tasks(tmp_path: Path, case: Case) -> None:
    _, started, ended = _same_as_gnu_parallel(tmp_path, case)
    assert ("slow" in ended) == case.halt.startswith("soon")
    assert "t3" not in started


def test_a_halt_is_recorded_and_a_resume_keeps_it(tmp_path: Path) -> None:
    completed = run_fanout("run", "-j", "1", "--halt", "now,fail=1", "--", "sh", "-c",
                           "exit $0", ":::", "0", "1", "0")  # fmt: skip
    assert completed.returncode == 1
    assert_clean(completed)
    manifest = completed.manifest()
    assert manifest["options"]["halt"] == "now,fail=1"
    assert manifest["verdict"]["reason"] == "halted by --halt now,fail=1: 1 task failed"
    statuses = [row["status"] for row in manifest["tasks"]]
    assert statuses == ["success", "failure", "cancelled"]
    assert "not started (halted by --halt now,fail=1: 1 task failed)" in completed.stdout
    resumed = run_fanout("run", "--resume", "last", "--format", "json")
    assert resumed.returncode == 1  # the failure stands and halts at once; nothing new ran
    assert resumed.run_dirs() == [completed.run_dir]
    assert read_manifest(completed.run_dir)["options"]["halt"] == "now,fail=1"


def test_a_task_file_sets_the_rule(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.toml"
    tasks.write_text('[run]\nhalt = "now,success=1"\njobs = 1\n\n[[task]]\ncmd = "exit 1"\n\n'
                     '[[task]]\ncmd = "true"\n\n[[task]]\ncmd = "true"\n')  # fmt: skip
    completed = run_fanout("run", str(tasks))
    assert completed.returncode == 0, completed.stdout
    first = completed.run_dir
    statuses = [row["status"] for row in read_manifest(first)["tasks"]]
    assert statuses == ["failure", "success", "cancelled"]
    # the command line wins over [run]; never lifts the rule
    again = run_fanout("run", str(tasks), "--halt", "never")
    assert again.returncode == 1
    (second,) = [run_dir for run_dir in again.run_dirs() if run_dir != first]
    latest = read_manifest(second)
    assert [row["status"] for row in latest["tasks"]] == ["failure", "success", "success"]


@pytest.mark.parametrize(
    "value", ["now,fail=0", "now,fail=0%", "later,fail=1", "now,fail", "soon,fail=200%", "x"]
)
def test_a_bad_rule_is_one_line_and_exit_2(value: str) -> None:
    line = one_error_line(run_fanout("run", "--halt", value, "--", "true", ":::", "1"),
                          no_run_folder=True)  # fmt: skip
    assert line.startswith("fanout: error: --halt: ")
    assert repr(value) in line


def test_fail_fast_ends_partial_success_once_its_minimum_is_out_of_reach() -> None:
    completed = run_fanout("run", "-j", "1", "--strategy", "partial-success", "--min-successes",
                           "3", "--fail-fast", "--", "sh", "-c", "exit $0", ":::", "0", "1", "1",
                           "1", "0")  # fmt: skip
    assert completed.returncode == 1
    statuses = [row["status"] for row in completed.manifest()["tasks"]]
    assert statuses == ["success", "failure", "failure", "failure", "cancelled"]
    assert "only 2 can succeed (needed 3; --fail-fast)" in completed.stdout


@pytest.mark.slow
def test_fail_fast_with_halt_soon_lets_the_running_task_finish(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    completed = run_fanout("run", "-j", "2", "--fail-fast", "--halt", "soon", "--", "sh", "-c",
                           f'sleep $0; [ $0 = 0.2 ] && exit 1; touch {marker}', ":::", "0.2",
                           "1.5", "0")  # fmt: skip
    assert completed.returncode == 1
    statuses = [row["status"] for row in completed.manifest()["tasks"]]
    assert statuses == ["failure", "success", "cancelled"]
    assert marker.exists()


@needs_parallel
def test_a_percentage_over_stdin_counts_the_whole_input_as_gnu_parallel(tmp_path: Path) -> None:
    # GNU parallel reads all of stdin first to know the total; so does fanout then.
    script = tmp_path / "task.sh"
    script.write_text(TASK_SCRIPT)
    script.chmod(0o755)
    tasks = "".join(f"t{n} 0 {int(n % 7 == 0)}\n" for n in range(1, 21)).encode()
    started: dict[str, list[str]] = {}
    for tool, end in (([str(PARALLEL)], []), ([str(FANOUT), "run", "-q"], ["--"])):
        log = tmp_path / f"log-{len(started)}"
        command = [*tool, "-j", "1", "--halt", "now,fail=10%", *end, str(script)]
        completed = subprocess.run(command, input=tasks, env={**os.environ, "LOG": str(log)},
                                   capture_output=True, timeout=60, check=False)  # fmt: skip
        assert completed.returncode != 0, completed.stderr
        lines = log.read_text().splitlines()
        started[tool[0]] = [line.split()[1] for line in lines if line.startswith("start ")]
    assert started[str(FANOUT)] == started[str(PARALLEL)] == [f"t{n}" for n in range(1, 15)]
