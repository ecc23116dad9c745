"""--termseq: the signals that end a task, and the waits between them (issue 19, part 5).

The parser is tested as a pure function; the rest runs the installed `fanout` with
real processes that trap signals and note each one they get in ./log, in order: at a
timeout, at Ctrl-C, for what a task leaves in its group or outside it, for the reduce.
GNU parallel, where installed, is the oracle for the order of the signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from fanout_cli.executors.process import end_group
from fanout_cli.reaper import TermSeq
from fanout_cli.termseq import parse_termseq
from tests.helpers import (
    Completed,
    assert_all_gone,
    assert_clean,
    fanout_in_background,
    needs_procfs,
    one_error_line,
    output_dir,
    read_manifest,
    read_pids,
    run_fanout,
    wait_until,
    write_tasks,
)

SIGINT, SIGTERM, SIGKILL = int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGKILL)
SEQUENCE = "INT,300ms,TERM,300ms,KILL"
# A shell that notes each INT and TERM it gets in ./log and carries on; ./ready says
# its traps are set. Its `sleep`s die of each signal; the loop starts another.
TRAPPER = (
    "trap 'echo INT >> log' INT; trap 'echo TERM >> log' TERM; trap 'echo HUP >> log' HUP; "
    "touch ready; while :; do sleep 0.05; done"
)


def trapper_script() -> str:
    Path("trap.sh").write_text(TRAPPER + "\n")
    return "trap.sh"


def logged() -> list[str]:
    path = Path("log")
    return path.read_text().split() if path.exists() else []


def only_task(completed: Completed) -> dict[str, Any]:
    rows = completed.manifest()["tasks"]
    assert len(rows) == 1, rows
    task: dict[str, Any] = rows[0]
    return task


def last_attempt(completed: Completed) -> dict[str, Any]:
    attempt: dict[str, Any] = completed.details(only_task(completed)["details_file"])[
        "attempts"][-1]
    return attempt


# --- the grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("TERM,5s,KILL", ((SIGTERM, 5.0), (SIGKILL, 0.0))),
        ("sigint,200,Term,1.5s,15,0,9", ((SIGINT, 0.2), (SIGTERM, 1.5), (SIGTERM, 0.0),
                                         (SIGKILL, 0.0))),
        ("TERM,200,TERM,100,TERM,50,KILL,25", ((SIGTERM, 0.2), (SIGTERM, 0.1), (SIGTERM, 0.05),
                                               (SIGKILL, 0.0))),  # GNU parallel's default
        (" HUP , 1m , KILL ", ((int(signal.SIGHUP), 60.0), (SIGKILL, 0.0))),
        ("KILL", ((SIGKILL, 0.0),)),
        ("USR1,1h30m,KILL", ((int(signal.SIGUSR1), 5400.0), (SIGKILL, 0.0))),
    ],
)  # fmt: skip
def test_signals_by_name_or_number_and_bare_waits_in_milliseconds(
    text: str, steps: tuple[tuple[int, float], ...]
) -> None:
    assert parse_termseq(text).steps == steps


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("TERM,5s,KILL", "TERM,5s,KILL"),
        ("int,200,sigterm,1.5s,15,0,9,25", "INT,200ms,TERM,1.5s,TERM,0s,KILL"),
        ("HUP,1234567,KILL", "HUP,1234.567s,KILL"),
        ("KILL", "KILL"),
    ],
)
def test_the_text_form_is_read_back_as_the_same_sequence(text: str, shown: str) -> None:
    sequence = parse_termseq(text)
    assert str(sequence) == shown
    assert parse_termseq(str(sequence)) == sequence


def test_the_default_is_term_the_grace_then_kill() -> None:
    assert str(TermSeq.default(2.5)) == "TERM,2.5s,KILL"
    assert parse_termseq("TERM,2.5s,KILL") == TermSeq.default(2.5)
    assert parse_termseq(SEQUENCE).total_wait == pytest.approx(0.6)
    assert parse_termseq(SEQUENCE).schedule(10.0) == [(10.0, SIGINT), (10.3, SIGTERM),
                                                       (pytest.approx(10.6), SIGKILL)]  # fmt: skip


BAD_VALUES = [
    ("TERM,5s", "must end with KILL, e.g. TERM,5s,KILL, got 'TERM,5s'"),
    ("TERM,5s,INT", "must end with KILL, e.g. TERM,5s,KILL"),
    ("TERM,,KILL", "an empty item"),
    ("BOGUS,1s,KILL", "'BOGUS' is not a signal"),
    ("TERM,5s,5s,KILL", "two waits in a row (5s, 5s)"),
    ("TERM,KILL", "two signals in a row (TERM, KILL)"),
    ("5s,KILL", "must start with a signal"),
    ("KILL,-1", "'-1' is not a wait"),
    ("TERM,31d,KILL", "'31d' is not a wait"),
    ("TERM,20d,INT,20d,KILL", "the waits add up to more than 30d"),
    ("KILL,1s,TERM,1s,KILL", "KILL ends the sequence"),
    ("0,1s,KILL", "0 is not a signal number"),
    ("", "expected signals and waits such as TERM,5s,KILL"),
    ("TERM,1," * 100 + "KILL", "at most 100 signals"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_VALUES)
def test_a_bad_sequence_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_termseq(text)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text", ["TERM,5s", "TERM,,KILL", "BOGUS,1s,KILL", "TERM,5s,5s,KILL", "KILL,-1",
             "TERM,20d,INT,20d,KILL"],
)  # fmt: skip
def test_bad_values_are_exit_2_with_one_line(text: str) -> None:
    completed = run_fanout("run", "--termseq", text, "--", "true", ":::", "a")
    assert completed.returncode == 2
    line = one_error_line(completed, no_run_folder=True)
    assert line.startswith("fanout: error: --termseq: "), line
    assert dict(BAD_VALUES)[text] in line


def test_termseq_and_grace_together_are_exit_2() -> None:
    completed = run_fanout("run", "--grace", "1s", "--termseq", "KILL", "--", "true", ":::", "a")
    assert completed.returncode == 2
    assert one_error_line(completed, no_run_folder=True) == (
        "fanout: error: --grace: give --termseq or --grace, not both")
    write_tasks(Path("tasks.toml"), '[run]\ngrace = "1s"\ntermseq = "KILL"\n\n'
                '[[task]]\nid = "a"\ncmd = "true"\n')  # fmt: skip
    from_file = run_fanout("run", "tasks.toml")
    assert from_file.returncode == 2
    assert "give --termseq or --grace, not both" in one_error_line(from_file, no_run_folder=True)


def test_the_manifest_keeps_the_sequence_and_a_resume_reads_it_back() -> None:
    write_tasks(Path("tasks.toml"), f'[run]\ntermseq = "{SEQUENCE}"\n\n'
                '[[task]]\nid = "a"\ncmd = "test -e again"\n')  # fmt: skip
    first = run_fanout("run", "--run-id", "r", "tasks.toml")
    assert first.returncode == 1, first.stderr
    options = read_manifest(output_dir() / "r")["options"]
    assert (options["termseq"], options["grace"]) == (SEQUENCE, None)
    Path("again").touch()
    resumed = run_fanout("run", "--resume-failed", "r")
    assert resumed.returncode == 0, resumed.stderr
    assert read_manifest(output_dir() / "r")["options"]["termseq"] == SEQUENCE
    # --grace alone is kept as the sequence it stands for.
    graced = run_fanout("run", "--run-id", "g", "--grace", "1.5s", "--", "true", ":::", "a")
    assert read_manifest(output_dir() / "g")["options"]["termseq"] == "TERM,1.5s,KILL"
    assert graced.returncode == 0


def test_dry_run_needs_nothing_of_it() -> None:
    completed = run_fanout("run", "--dry-run", "--termseq", SEQUENCE, "--", "echo", ":::", "a")
    assert (completed.returncode, completed.stdout) == (0, "echo a\n")


# --- the one way a group is ended ---------------------------------------------------------


@needs_procfs
def test_end_group_stops_at_the_signal_that_empties_the_group() -> None:
    # sleep dies of INT: no TERM, no KILL, and the 30 s wait is not waited out.
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    started = time.monotonic()
    anyio.run(end_group, child.pid, parse_termseq("INT,30s,TERM,30s,KILL"))
    assert child.wait(timeout=5) == -SIGINT
    assert time.monotonic() - started < 5


@needs_procfs
def test_end_group_sends_each_signal_after_the_wait() -> None:
    child = subprocess.Popen(["sh", "-c", TRAPPER], start_new_session=True)
    try:
        wait_until(Path("ready").exists, "the traps to be set")
        started = time.monotonic()
        anyio.run(end_group, child.pid, parse_termseq("INT,300ms,TERM,300ms,HUP,300ms,KILL"))
        took = time.monotonic() - started
    finally:
        child.kill()
    assert child.wait(timeout=5) == -SIGKILL
    assert logged() == ["INT", "TERM", "HUP"]
    assert 0.85 < took < 5, took


# --- end to end ---------------------------------------------------------------------------


@needs_procfs
def test_a_timed_out_task_gets_the_signals_in_order() -> None:
    completed = run_fanout("run", "--timeout", "1", "--termseq", SEQUENCE, "--",
                           "sh", trapper_script(), ":::", "a")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert_clean(completed)
    assert Path("ready").exists()
    assert logged() == ["INT", "TERM"]
    assert (only_task(completed)["status"], last_attempt(completed)["reason"]) == (
        "timeout", "timed out after 1s")


@needs_procfs
@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel is not installed")
def test_gnu_parallel_sends_the_same_signals_in_the_same_order() -> None:
    script = trapper_script()
    parallel = ["parallel", "--termseq", "INT,200,TERM,200,KILL,25", "--timeout", "1"]
    subprocess.run([*parallel, "sh", script, ":::", "a"], capture_output=True, timeout=30,
                   check=False)  # fmt: skip
    theirs = logged()
    Path("log").unlink()
    Path("ready").unlink()
    completed = run_fanout("run", "--timeout", "1", "--termseq", "INT,200,TERM,200,KILL,25",
                           "--", "sh", script, ":::", "a")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert logged() == theirs == ["INT", "TERM"]


@needs_procfs
def test_a_task_that_ignores_all_but_kill_ends_within_the_sum_of_the_waits() -> None:
    deaf = "trap '' INT TERM HUP; touch ready; while :; do sleep 0.05; done"
    started = time.monotonic()
    completed = run_fanout("run", "--timeout", "0.5", "--termseq", "INT,400ms,TERM,400ms,KILL",
                           "--", "sh", "-c", deaf, ":::", "a")  # fmt: skip
    took = time.monotonic() - started
    assert completed.returncode == 1, completed.stderr
    task = only_task(completed)
    assert task["status"] == "timeout"
    duration = task["duration_ms"] / 1000
    assert 1.25 <= duration < 4, duration  # the timeout, then both waits, then the KILL
    assert took < 10, took
    assert last_attempt(completed)["signal"] == SIGKILL


def test_a_task_ended_by_its_first_signal_gets_no_other() -> None:
    started = time.monotonic()
    completed = run_fanout("run", "--timeout", "0.3", "--termseq", "INT,20s,TERM,20s,KILL",
                           "--", "sleep", "{}", ":::", "30")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert time.monotonic() - started < 10  # the 20 s waits were not waited out
    assert last_attempt(completed)["signal"] == SIGINT


@needs_procfs
def test_a_group_member_left_behind_by_its_leader_gets_the_sequence() -> None:
    # The task's shell starts a background trapper in its group and exits at once.
    # (A background job of sh ignores SIGINT for good: USR1 and TERM are trapped.)
    left = ("trap 'echo USR1 >> log' USR1; trap 'echo TERM >> log' TERM; touch ready; "
            "echo $$ > pids; while :; do sleep 0.05; done")  # fmt: skip
    Path("left.sh").write_text(left + "\n")
    task = "sh left.sh & while [ ! -e ready ]; do sleep 0.01; done"
    completed = run_fanout("run", "--termseq", "USR1,300ms,TERM,300ms,KILL", "--",
                           "sh", "-c", task, ":::", "a")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert logged() == ["USR1", "TERM"]
    assert_all_gone(read_pids(Path("pids")))


@needs_procfs
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child subreaper is Linux only")
def test_a_descendant_that_left_the_group_gets_the_sequence_from_the_tasks_end() -> None:
    escaped = ("setsid sh -c \"trap 'echo USR1 >> log' USR1; trap 'echo TERM >> log' TERM; "
               "echo \\$\\$ > pids; while :; do sleep 0.05; done\" & "
               "while [ ! -e pids ]; do sleep 0.01; done")  # fmt: skip
    started = time.monotonic()
    completed = run_fanout("run", "--termseq", "USR1,400ms,TERM,400ms,KILL", "--",
                           "sh", "-c", escaped, ":::", "a")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert logged() == ["USR1", "TERM"]
    assert_all_gone(read_pids(Path("pids")))
    assert time.monotonic() - started < 10


@needs_procfs
def test_ctrl_c_ends_the_running_tasks_with_the_sequence() -> None:
    script = trapper_script()
    with fanout_in_background("run", "--run-id", "c", "--termseq", SEQUENCE, "--",
                              "sh", script, ":::", "a") as fanout:  # fmt: skip
        wait_until(Path("ready").exists, "the task's traps", process=fanout)
        interrupted = time.monotonic()
        os.kill(fanout.pid, signal.SIGINT)
        fanout.communicate(timeout=30)
        took = time.monotonic() - interrupted
    assert fanout.returncode == 130
    assert logged() == ["INT", "TERM"]
    assert 0.55 < took < 10, took
    assert read_manifest(output_dir() / "c")["tasks"][0]["status"] == "cancelled"


@needs_procfs
def test_a_second_ctrl_c_kills_at_once_in_the_middle_of_the_sequence() -> None:
    script = trapper_script()
    with fanout_in_background("run", "--termseq", "INT,60s,TERM,60s,KILL", "--",
                              "sh", script, ":::", "a") as fanout:  # fmt: skip
        wait_until(Path("ready").exists, "the task's traps", process=fanout)
        os.kill(fanout.pid, signal.SIGINT)
        wait_until(lambda: logged() == ["INT"], "the first signal", process=fanout)
        second = time.monotonic()
        os.kill(fanout.pid, signal.SIGINT)
        fanout.communicate(timeout=30)
        took = time.monotonic() - second
    assert fanout.returncode == 130
    assert logged() == ["INT"]  # no TERM: KILL at once
    assert took < 6, took


@needs_procfs
def test_the_reduce_is_ended_with_the_sequence() -> None:
    reduce = f"sh {trapper_script()}"
    completed = run_fanout("run", "--timeout", "1", "--termseq", SEQUENCE, "--reduce", reduce,
                           "--", "true", ":::", "a")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert logged() == ["INT", "TERM"]
    assert completed.manifest()["reduce"]["status"] == "timeout"


@needs_procfs
def test_a_dask_workers_guardian_ends_the_groups_of_a_dead_worker_with_their_sequence() -> None:
    # The guardian (a process of its own) is told of a running group, then its worker
    # "dies": its stdin closes. It must send the group that group's sequence.
    from fanout_cli.executors.dask_guardian import encoded_termseq

    child = subprocess.Popen(["sh", "-c", TRAPPER], start_new_session=True)
    guard = "from fanout_cli.executors.dask_guardian import guard_process_groups as g; g()"
    guardian = subprocess.Popen([sys.executable, "-c", guard], stdin=subprocess.PIPE,
                                start_new_session=True)  # fmt: skip
    try:
        wait_until(Path("ready").exists, "the traps to be set")
        assert guardian.stdin is not None
        sequence = encoded_termseq(parse_termseq(SEQUENCE))
        guardian.stdin.write(f"watch {child.pid} {sequence}\n".encode())
        guardian.stdin.close()
        assert child.wait(timeout=20) == -SIGKILL
        assert guardian.wait(timeout=20) == 0
    finally:
        child.kill()
        guardian.kill()
    assert logged() == ["INT", "TERM"]
