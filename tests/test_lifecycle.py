"""End to end: a run's life beyond one clean pass: signals, kill -9, resume, history.

These tests start the installed `fanout` binary with real child processes, stop it
the ways a user or a machine does (Ctrl-C, SIGTERM, SIGHUP, kill -9), then check what
is left: exit codes, the run folder, that `--resume` finishes the job without running
finished work twice, and that no child process outlives fanout. They synchronise by
polling the journal and files the tasks write, with deadlines; never by sleeping."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FANOUT,
    WAIT_SECONDS,
    assert_all_gone,
    assert_clean,
    fanout_in_background,
    needs_procfs,
    one_error_line,
    processes_in,
    read_journal,
    read_manifest,
    read_pids,
    run_fanout,
    wait_until,
    write_tasks,
)

TASKS = "tasks.toml"


# --- task files -----------------------------------------------------------------------


def write_task_file(tasks: Sequence[tuple[str, str]], name: str = TASKS) -> str:
    """A TOML task list of (id, shell command) pairs; JSON strings are valid TOML."""
    text = "".join(
        f"[[task]]\nid = {json.dumps(task_id)}\ncmd = {json.dumps(command)}\n\n"
        for task_id, command in tasks
    )
    write_tasks(Path(name), text)
    return name


def long_task(task_id: str) -> str:
    """Logs its start, then (unless ./fast exists) waits on a background child; both
    pids go to ./pids. sh and sleep both die of SIGTERM."""
    return (
        f"echo {task_id} >> started.log; [ -e fast ] && exit 0; "
        "sleep 100 & echo $! >> pids; echo $$ >> pids; wait"
    )


def line_counts(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(path.read_text().split())


# --- reading a run folder -------------------------------------------------------------


def events_named(run_dir: Path, name: str) -> list[dict[str, Any]]:
    return [event for event in read_journal(run_dir, running=True) if event["event"] == name]


def manifest_statuses(run_dir: Path) -> dict[str, str]:
    """task id -> status, after checking that every task is listed once."""
    rows = read_manifest(run_dir)["tasks"]
    ids = [row["task_id"] for row in rows]
    assert len(ids) == len(set(ids)), f"a task is listed more than once: {ids}"
    return {row["task_id"]: row["status"] for row in rows}


def run_ids(output_dir: Path = Path("out")) -> list[str]:
    return sorted(path.name for path in output_dir.iterdir() if path.is_dir())


def rewrite_started_at(run_dir: Path, when: datetime) -> None:
    """Make a run look started at `when` (the manifest header's started_at)."""
    path = run_dir / "manifest.json"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    text, count = re.subn(
        r'"started_at": "[^"]*"', f'"started_at": "{stamp}"', path.read_text(), count=1
    )
    assert count == 1, "the manifest has no started_at"
    path.write_text(text)


# --- processes ------------------------------------------------------------------------


def finish(process: subprocess.Popen[bytes], timeout: float = 30) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")


def tasks_started(run_dir: Path, count: int, pid_lines: int) -> Callable[[], bool]:
    """The journal shows `count` tasks started and the tasks wrote `pid_lines` pids to
    ./pids (the tests run in their tmp_path)."""

    def check() -> bool:
        started = len(events_named(run_dir, "task_started"))
        return started >= count and len(read_pids(Path("pids"), missing_ok=True)) >= pid_lines

    return check


# --- 1. signals -----------------------------------------------------------------------


@needs_procfs
@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_first_signal_cancels_running_tasks_and_leaves_the_rest_for_resume(
    signum: signal.Signals, exit_code: int, tmp_path: Path
) -> None:
    write_task_file([(name, long_task(name)) for name in ("t1", "t2", "t3", "t4")])
    run_dir = tmp_path / "out" / "sig"
    with fanout_in_background("run", TASKS, "-j", "2", "--grace", "20s", "--run-id", "sig") as fo:
        wait_until(tasks_started(run_dir, 2, 4), "two tasks to start", process=fo)
        signalled = time.monotonic()
        os.kill(fo.pid, signum)
        returncode, stdout, stderr = finish(fo)
        stopped_after = time.monotonic() - signalled
        leftovers = processes_in(tmp_path)
    assert returncode == exit_code, (returncode, stdout, stderr)
    assert "Traceback" not in stderr, stderr
    # The tasks obey SIGTERM, so a 20 s grace must not have been waited out.
    assert stopped_after < 10, stopped_after
    assert_all_gone(read_pids(tmp_path / "pids", missing_ok=True))
    assert not leftovers, f"processes outlived fanout: {leftovers}"

    manifest = read_manifest(run_dir)
    assert manifest["status"] == "interrupted"
    assert manifest["verdict"]["passed"] is False
    assert manifest_statuses(run_dir) == {"t1": "cancelled", "t2": "cancelled"}
    ended = {event["task_id"]: event for event in events_named(run_dir, "task_ended")}
    assert sorted(ended) == ["t1", "t2"], "tasks not yet started must get no result"
    assert all(event["interrupted"] is True for event in ended.values()), ended
    assert [event["status"] for event in events_named(run_dir, "run_ended")] == ["interrupted"]
    assert not list(run_dir.glob("000[34]-*.json")), "an unstarted task got a details file"
    assert sorted(line_counts(tmp_path / "started.log")) == ["t1", "t2"]

    # Resuming runs the interrupted tasks again and the unstarted ones for the first time.
    (tmp_path / "fast").touch()
    resumed = run_fanout("run", "--resume", "sig")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert_clean(resumed)
    assert run_ids() == ["sig"]
    assert manifest_statuses(run_dir) == dict.fromkeys(("t1", "t2", "t3", "t4"), "success")
    assert read_manifest(run_dir)["status"] == "finished"
    assert line_counts(tmp_path / "started.log") == {"t1": 2, "t2": 2, "t3": 1, "t4": 1}


@needs_procfs
def test_second_sigint_kills_at_once_instead_of_waiting_out_the_grace(tmp_path: Path) -> None:
    # The background sleep ignores SIGTERM for good; the shell notes each SIGTERM in ./got
    # and carries on, so only SIGKILL ends this task. Its trap is set before it writes
    # its own pid, which is what the test waits for.
    stubborn = (
        "trap '' TERM; sleep 100 & echo $! >> pids; trap 'echo term >> got' TERM; "
        "echo $$ >> pids; while :; do sleep 0.1; done"
    )
    write_task_file([("stubborn", stubborn)])
    run_dir = tmp_path / "out" / "twice"
    with fanout_in_background("run", TASKS, "--grace", "20s", "--run-id", "twice") as fo:
        wait_until(tasks_started(run_dir, 1, 2), "the task to start", process=fo)
        os.kill(fo.pid, signal.SIGINT)
        wait_until((tmp_path / "got").exists, "the task to get SIGTERM", process=fo)
        assert fo.poll() is None, "fanout must wait out the grace after the first Ctrl-C"
        second = time.monotonic()
        os.kill(fo.pid, signal.SIGINT)
        returncode, stdout, stderr = finish(fo)
        stopped_after = time.monotonic() - second
        leftovers = processes_in(tmp_path)
    assert returncode == 130, (returncode, stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert stopped_after < 6, f"the second Ctrl-C took {stopped_after:.1f}s to end the run"
    assert_all_gone(read_pids(tmp_path / "pids", missing_ok=True))
    assert not leftovers, f"processes outlived fanout: {leftovers}"
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "interrupted"
    assert manifest["verdict"]["passed"] is False
    assert manifest_statuses(run_dir) == {"stubborn": "cancelled"}
    listed = run_fanout("runs", "--json")
    (document,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (document["status"], document["passed"]) == ("interrupted", False), document


# --- 2. crash safety ------------------------------------------------------------------


def assert_folder_readable_after_a_crash(run_dir: Path) -> None:
    """Every record fanout reads back is whole: details files and manifest parse, and
    every complete journal line parses (only a torn last line is allowed)."""
    for path in run_dir.glob("*.json"):
        if not path.name.startswith("."):
            json.loads(path.read_bytes())  # raises on a half-written file
    lines = (run_dir / "journal.jsonl").read_bytes().split(b"\n")
    for line in lines[:-1]:
        json.loads(line)


@needs_procfs
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_9_at_a_random_point_then_resume_never_reruns_finished_work(
    seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    names = [f"t{number:02d}" for number in range(1, 13)]
    write_task_file([
        (name, f"echo $$ >> pids; sleep {rng.choice(['0.05', '0.1', '0.2', '0.3'])}; "
               f"echo {name} >> done.log")
        for name in names
    ])  # fmt: skip
    run_dir = tmp_path / "out" / "crash"
    # 26 journal lines in a whole run: run_started, 12 started, 12 ended, run_ended. Kill
    # once at least the first task started (its task list is saved by then).
    kill_after_lines = rng.randint(2, 24)
    with fanout_in_background("run", TASKS, "-j", "3", "--run-id", "crash") as fo:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(read_journal(run_dir, running=True)) < kill_after_lines and fo.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.03))  # a random moment, not synchronisation
        fo.send_signal(signal.SIGKILL)
        fo.wait(timeout=30)
        # Orphans of kill -9 go on with their work; let them finish before judging.
        wait_until(lambda: not processes_in(tmp_path), "orphaned tasks to finish")

    assert_folder_readable_after_a_crash(run_dir)
    ended_before = [
        event for event in events_named(run_dir, "task_ended") if event["status"] == "success"
    ]
    for event in ended_before:  # the details file is in place before its journal line
        assert event["details_file"], event
        assert not event["details_file"].startswith(".")
        json.loads((run_dir / event["details_file"]).read_bytes())
    finished_before = {event["task_id"] for event in ended_before}

    resumed = run_fanout("run", "--resume", "crash")
    assert resumed.returncode == 0, (kill_after_lines, resumed.stdout, resumed.stderr)
    assert_clean(resumed)
    assert run_ids() == ["crash"]
    assert manifest_statuses(run_dir) == dict.fromkeys(names, "success")
    manifest = read_manifest(run_dir)
    assert (manifest["status"], manifest["verdict"]["passed"]) == ("finished", True)
    for row in read_manifest(run_dir)["tasks"]:
        assert not row["details_file"].startswith("."), row
        assert json.loads((run_dir / row["details_file"]).read_bytes())["status"] == "success"
    done = line_counts(tmp_path / "done.log")
    assert set(done) == set(names)
    reran = sorted(name for name in finished_before if done[name] != 1)
    assert not reran, (
        f"finished before the kill, yet ran again: {reran} (killed at line {kill_after_lines})"
    )


# --- 3. --resume and --resume-failed --------------------------------------------------


def counted(task_id: str, then: str = "true") -> str:
    """Appends the task id to ./ran.log (one line a run), then runs `then`."""
    return f"echo {task_id} >> ran.log; {then}"


def test_resume_keeps_a_failure_and_resume_failed_reruns_only_it(tmp_path: Path) -> None:
    write_task_file([
        ("ok1", counted("ok1")),
        ("flaky", counted("flaky", "[ -e fixed ]")),
        ("ok2", counted("ok2")),
    ])  # fmt: skip
    first = run_fanout("run", TASKS, "--run-id", "r")
    assert first.returncode == 1, first.stderr
    ran = tmp_path / "ran.log"
    assert line_counts(ran) == {"ok1": 1, "flaky": 1, "ok2": 1}

    again = run_fanout("run", "--resume", "r")
    assert again.returncode == 1, "a failure is a final result: the verdict stays fail"
    assert_clean(again)
    assert line_counts(ran) == {"ok1": 1, "flaky": 1, "ok2": 1}, "--resume re-ran a task"

    retried = run_fanout("run", "--resume-failed", "r")
    assert retried.returncode == 1, retried.stderr
    assert line_counts(ran) == {"ok1": 1, "flaky": 2, "ok2": 1}

    (tmp_path / "fixed").touch()
    fixed = run_fanout("run", "--resume-failed", "r")
    assert fixed.returncode == 0, (fixed.stdout, fixed.stderr)
    assert line_counts(ran) == {"ok1": 1, "flaky": 3, "ok2": 1}
    run_dir = tmp_path / "out" / "r"
    assert run_ids() == ["r"]
    manifest = read_manifest(run_dir)
    assert manifest["verdict"]["passed"] is True
    assert manifest["verdict"]["counts"]["tasks"] == 3, "the verdict covers the whole run"
    assert manifest_statuses(run_dir) == dict.fromkeys(("ok1", "flaky", "ok2"), "success")


def test_resume_with_an_edited_task_file_runs_only_fixed_and_new_tasks(tmp_path: Path) -> None:
    write_task_file([("a", counted("a")), ("b", counted("b", "exit 1")), ("c", counted("c"))])
    first = run_fanout("run", TASKS, "--run-id", "edit")
    assert first.returncode == 1, first.stderr
    # Reordered, b fixed (its command changed), d added.
    write_task_file([
        ("c", counted("c")),
        ("b", counted("b", "exit 0")),
        ("a", counted("a")),
        ("d", counted("d")),
    ])  # fmt: skip
    resumed = run_fanout("run", TASKS, "--resume", "edit")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert_clean(resumed)
    assert line_counts(tmp_path / "ran.log") == {"a": 1, "b": 2, "c": 1, "d": 1}
    assert run_ids() == ["edit"], "a resume writes into the run it resumes"
    run_dir = tmp_path / "out" / "edit"
    assert manifest_statuses(run_dir) == dict.fromkeys("abcd", "success")
    manifest = read_manifest(run_dir)
    assert manifest["verdict"]["passed"] is True
    assert manifest["verdict"]["counts"]["tasks"] == 4
    for row in manifest["tasks"]:
        assert (run_dir / row["details_file"]).is_file(), row


@needs_procfs
def test_resuming_a_run_another_fanout_holds_is_refused(tmp_path: Path) -> None:
    write_task_file([("long", long_task("long"))])
    run_dir = tmp_path / "out" / "busy"
    with fanout_in_background("run", TASKS, "--run-id", "busy") as fo:
        wait_until(tasks_started(run_dir, 1, 2), "the task to start", process=fo)
        journal_before = (run_dir / "journal.jsonl").read_bytes()
        refused = run_fanout("run", "--resume", "busy")
        line = one_error_line(refused)
        assert str(fo.pid) in line, f"the error should name the holder's pid {fo.pid}: {line}"
        assert "lock" in line or "in use" in line, line
        assert (run_dir / "journal.jsonl").read_bytes() == journal_before
        assert fo.poll() is None, "the refused resume must not disturb the running fanout"
        os.kill(fo.pid, signal.SIGTERM)
        returncode, _, stderr = finish(fo)
    assert returncode == 143, stderr
    assert_all_gone(read_pids(tmp_path / "pids", missing_ok=True))


def test_resume_names_a_run_by_id_or_last_and_rejects_bad_requests(tmp_path: Path) -> None:
    write_task_file([("a", counted("a"))])
    assert run_fanout("run", TASKS, "--run-id", "older").returncode == 0
    assert run_fanout("run", TASKS, "--run-id", "newer").returncode == 0

    line = one_error_line(run_fanout("run", "--resume", "no-such-run"))
    assert "no-such-run" in line, line
    line = one_error_line(run_fanout("run", "--resume", "newer", "--resume-failed", "newer"))
    assert "--resume" in line, line

    last = run_fanout("run", "--resume", "last")
    assert last.returncode == 0, (last.stdout, last.stderr)
    assert_clean(last)
    assert run_ids() == ["newer", "older"]
    assert len(events_named(tmp_path / "out" / "newer", "run_resumed")) == 1
    assert events_named(tmp_path / "out" / "older", "run_resumed") == []
    assert line_counts(tmp_path / "ran.log") == {"a": 2}, "a finished task ran again"


def test_resume_failed_tells_repeated_stdin_values_apart(tmp_path: Path) -> None:
    command = ["--", "sh", "-c", "echo $0 >> log; exit 1"]
    first = run_fanout("run", *command, input=b"a\na\n")
    assert first.returncode == 1, first.stderr
    assert (tmp_path / "log").read_text() == "a\na\n"

    kept = run_fanout("run", "--resume", "last", *command, input=b"a\na\n")
    assert kept.returncode == 1, kept.stderr
    assert (tmp_path / "log").read_text() == "a\na\n", "--resume re-ran a failed task"

    retried = run_fanout("run", "--resume-failed", "last", *command, input=b"a\na\n")
    assert retried.returncode == 1, retried.stderr
    assert_clean(retried)
    assert (tmp_path / "log").read_text() == "a\na\n" * 2, "both failures run again"
    rows = read_manifest(retried.run_dir)["tasks"]
    assert sorted(row["seq"] for row in rows) == [1, 2]
    assert [row["status"] for row in rows] == ["failure", "failure"]


# --- 4. runs, show, clean -------------------------------------------------------------

STARTED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def test_runs_lists_newest_first_with_tasks_verdict_and_duration() -> None:
    # Created in this order, so the newest sorts first in time but last by name.
    write_task_file([("a", "true"), ("b", "true")])
    assert run_fanout("run", TASKS, "--run-id", "c-first").returncode == 0
    write_task_file([("a", "true"), ("b", "exit 1"), ("c", "true")])
    assert run_fanout("run", TASKS, "--run-id", "b-second").returncode == 1
    write_task_file([("a", "true")])
    assert run_fanout("run", TASKS, "--run-id", "a-third").returncode == 0

    listed = run_fanout("runs")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines() if line.split()]
    rows = [words for words in lines if words[0] in ("a-third", "b-second", "c-first")]
    assert [words[0] for words in rows] == ["a-third", "b-second", "c-first"], listed.stdout
    for words, tasks, verdict in zip(rows, ["1", "3", "2"], ["pass", "fail", "pass"], strict=True):
        _, day, clock, count, word, duration = words
        assert STARTED.match(f"{day} {clock}"), words
        assert (count, word) == (tasks, verdict), words
        assert re.match(r"^\d+(\.\d+)?(ms|s|m)", duration), words

    as_json = run_fanout("runs", "--json")
    assert as_json.returncode == 0, as_json.stderr
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [doc["run_id"] for doc in documents] == ["a-third", "b-second", "c-first"]
    assert [doc["tasks"] for doc in documents] == [1, 3, 2]
    assert [doc["passed"] for doc in documents] == [True, False, True]
    for doc in documents:
        assert isinstance(doc["duration_ms"], int), doc
        assert isinstance(doc["started_at"], str), doc


@needs_procfs
def test_a_run_killed_with_sigkill_is_listed_as_crashed(tmp_path: Path) -> None:
    write_task_file([("long", long_task("long"))])
    run_dir = tmp_path / "out" / "crashy"
    with fanout_in_background("run", TASKS, "--run-id", "crashy") as fo:
        wait_until(tasks_started(run_dir, 1, 2), "the task to start", process=fo)
        fo.send_signal(signal.SIGKILL)
        fo.wait(timeout=30)
        # The orphaned task still runs: it must not pass for a live fanout.
        listed = run_fanout("runs", "--json")
        human = run_fanout("runs")
    assert listed.returncode == 0, listed.stderr
    (document,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (document["run_id"], document["status"]) == ("crashy", "crashed"), document
    row = next(line for line in human.stdout.splitlines() if line.startswith("crashy"))
    assert "crashed" in row.split(), row


def payload(size: int, tag: bytes) -> bytes:
    """`size` bytes of numbered lines, some of them not UTF-8, with no final newline."""
    data = bytearray()
    number = 0
    while len(data) < size:
        number += 1
        extra = b"\xff\xfe raw" if number % 97 == 0 else "é ü".encode()
        data += tag + b" %06d " % number + extra + b" " + b"x" * 40 + b"\n"
    return bytes(data[:size])


def show(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`fanout show` with its raw stdout bytes."""
    return subprocess.run(
        [str(FANOUT), "show", *args], capture_output=True, timeout=30, check=False
    )


def test_show_prints_a_run_table_and_a_tasks_full_record_and_output(tmp_path: Path) -> None:
    out_bytes = payload(100 * 1024, b"OUT")
    err_bytes = payload(100 * 1024, b"ERR").replace(b"\xff\xfe", b"..")
    (tmp_path / "out.bin").write_bytes(out_bytes)
    (tmp_path / "err.bin").write_bytes(err_bytes)
    write_task_file([("big", "cat out.bin; cat err.bin >&2"), ("small", "echo hello")])
    assert run_fanout("run", TASKS, "--run-id", "shown").returncode == 0

    table = show("last")
    assert table.returncode == 0, table.stderr
    text = table.stdout.decode()
    task_lines = [line for line in text.splitlines() if line.startswith("success")]
    assert len(task_lines) == 2, text
    assert "big" in task_lines[0].split() and "small" in task_lines[1].split(), text
    assert text.splitlines()[-1].startswith("pass"), text

    by_id = show("last", "big")
    assert by_id.returncode == 0, by_id.stderr
    assert by_id.stdout.startswith(b"success  big  seq 1  exit 0  "), by_id.stdout[:200]
    assert out_bytes in by_id.stdout, "the full stdout, byte for byte"
    assert err_bytes in by_id.stdout or err_bytes in by_id.stderr, "the full stderr"
    by_seq = show("shown", "1")
    assert by_seq.returncode == 0, by_seq.stderr
    assert by_seq.stdout == by_id.stdout

    for args in (("no-such-run",), ("last", "no-such-task")):
        missing = show(*args)
        assert missing.returncode == 2, args
        assert len(missing.stderr.splitlines()) == 1, missing.stderr
        assert b"Traceback" not in missing.stderr


def test_show_of_an_ambiguous_task_id_asks_for_a_seq_number() -> None:
    assert run_fanout("run", "--", "echo", input=b"same\nsame\n").returncode == 0
    line = one_error_line(run_fanout("show", "last", "same"))
    assert "same" in line, line
    assert "1" in line and "2" in line, f"the error should offer the seq numbers: {line}"
    assert run_fanout("show", "last", "2").returncode == 0


def make_runs(*names: str) -> None:
    write_task_file([("a", "true")])
    for name in names:
        completed = run_fanout("run", TASKS, "-q", "--run-id", name)
        assert completed.returncode == 0, completed.stderr


def test_clean_needs_to_be_told_what_to_remove() -> None:
    make_runs("one")
    line = one_error_line(run_fanout("clean"))
    assert "--keep" in line or "--older-than" in line or "--all" in line, line
    assert run_ids() == ["one"]


def test_clean_keep_n_keeps_the_newest_runs() -> None:
    make_runs("c-oldest", "b-middle", "a-newest")
    dry = run_fanout("clean", "--keep", "2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "c-oldest" in dry.stdout, dry.stdout
    assert run_ids() == ["a-newest", "b-middle", "c-oldest"], "--dry-run removed something"
    kept = run_fanout("clean", "--keep", "2")
    assert kept.returncode == 0, kept.stderr
    assert run_ids() == ["a-newest", "b-middle"]


def test_clean_older_than_removes_only_old_runs(tmp_path: Path) -> None:
    make_runs("old", "new")
    fresh = run_fanout("clean", "--older-than", "7d")
    assert fresh.returncode == 0, fresh.stderr
    assert run_ids() == ["new", "old"], "no run is 7 days old yet"

    rewrite_started_at(tmp_path / "out" / "old", datetime.now(UTC) - timedelta(days=8))
    aged = run_fanout("clean", "--older-than", "7d")
    assert aged.returncode == 0, aged.stderr
    assert run_ids() == ["new"]


def test_clean_all_removes_run_folders_and_nothing_else(tmp_path: Path) -> None:
    make_runs("first", "second")
    output_dir = tmp_path / "out"
    sibling_file = tmp_path / "sibling.txt"
    sibling_file.write_text("keep")
    (tmp_path / "sibling-dir").mkdir()
    (tmp_path / "sibling-dir" / "file.txt").write_text("keep")
    (output_dir / "not-a-run").mkdir()
    (output_dir / "not-a-run" / "notes.txt").write_text("keep")
    # Outside the output dir, a folder that even looks like a run, reached by a symlink.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    for name in ("journal.jsonl", "manifest.json"):
        (outside / name).write_bytes((output_dir / "first" / name).read_bytes())
    (output_dir / "link").symlink_to(outside, target_is_directory=True)

    dry = run_fanout("clean", "--all", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert {"first", "second"} <= set(run_ids()), "--dry-run removed something"

    cleaned = run_fanout("clean", "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert_clean(cleaned)
    assert not (output_dir / "first").exists() and not (output_dir / "second").exists()
    assert sibling_file.read_text() == "keep"
    assert (tmp_path / "sibling-dir" / "file.txt").read_text() == "keep"
    assert (output_dir / "not-a-run" / "notes.txt").read_text() == "keep"
    assert (output_dir / "link").is_symlink()
    assert sorted(path.name for path in outside.iterdir()) == [
        "journal.jsonl", "manifest.json", "precious.txt",
    ]  # fmt: skip


@needs_procfs
def test_clean_keeps_a_run_still_in_progress(tmp_path: Path) -> None:
    make_runs("done")
    write_task_file([("long", long_task("long"))])
    run_dir = tmp_path / "out" / "busy"
    with fanout_in_background("run", TASKS, "--run-id", "busy") as fo:
        wait_until(tasks_started(run_dir, 1, 2), "the task to start", process=fo)
        listed = run_fanout("runs", "--json")
        documents = [json.loads(line) for line in listed.stdout.splitlines()]
        statuses = {doc["run_id"]: doc["status"] for doc in documents}
        assert statuses == {"busy": "running", "done": "finished"}, listed.stdout
        cleaned = run_fanout("clean", "--all")
        assert cleaned.returncode == 0, cleaned.stderr
        assert run_ids() == ["busy"], "a run in progress was removed (or a finished one kept)"
        assert "busy" in cleaned.stdout, "clean should say it kept the busy run"
        assert fo.poll() is None
        os.kill(fo.pid, signal.SIGINT)
        returncode, _, stderr = finish(fo)
    assert returncode == 130, stderr
    assert read_manifest(run_dir)["status"] == "interrupted"
    assert_all_gone(read_pids(tmp_path / "pids", missing_ok=True))


def test_resume_after_torn_last_lines_starts_appending_on_a_fresh_line(tmp_path: Path) -> None:
    """A crash mid-write leaves a half line at the end of journal.jsonl and tasks.jsonl;
    a resume must neither choke on it nor glue its own first line onto it."""
    write_task_file([("one", "echo 1 >> ran"), ("two", "exit 1"), ("three", "echo 3 >> ran")])
    first = run_fanout("run", TASKS, "--run-id", "torn")
    assert first.returncode == 1, first
    run_dir = tmp_path / "out" / "torn"
    with open(run_dir / "journal.jsonl", "ab") as journal:
        journal.write(b'{"event": "task_ended", "seq": 2, "sta')
    with open(run_dir / "tasks.jsonl", "ab") as task_list:
        task_list.write(b'{"seq": 4, "task_id": "ghost", "comm')
    Path("fixed").touch()
    write_task_file(
        [("one", "echo 1 >> ran"), ("two", "test -e fixed"), ("three", "echo 3 >> ran")]
    )
    resumed = run_fanout("run", TASKS, "--resume-failed", "torn")
    assert resumed.returncode == 0, resumed
    assert_clean(resumed)
    assert manifest_statuses(run_dir) == {"one": "success", "two": "success", "three": "success"}
    assert line_counts(tmp_path / "ran") == Counter({"1": 1, "3": 1})
    lines = (run_dir / "journal.jsonl").read_bytes().splitlines()
    half = b'{"event": "task_ended", "seq": 2, "sta'
    assert [line for line in lines if line.startswith(half)] == [half], "torn line kept alone"
    assert json.loads(lines[-1])["event"] == "run_ended"
    alone = run_fanout("run", "--resume", "torn")  # the saved list, with its torn line
    assert alone.returncode == 0, alone
    assert sorted(manifest_statuses(run_dir)) == ["one", "three", "two"]
