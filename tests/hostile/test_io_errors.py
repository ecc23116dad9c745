"""Class 1 of the attack: fanout's own I/O fails (a full disk, no inodes, a file-size
limit, a closed or full stdout, a directory as stdin).

Each must end with one line naming the path and the cause and exit 74 (never 70, 1 or a
signal's status); the journal stays a valid prefix, the saved task list says whether
it is complete, and `--resume` once the cause is gone runs every task without a final
result."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    FANOUT,
    Completed,
    assert_clean,
    one_error_line,
    read_manifest,
    run_fanout,
    wait_until,
)

EXIT_IO = 74


def _one_io_error(completed: Completed, *names: str) -> str:
    """Exit 74 and exactly one error line on stderr, naming each of `names`."""
    assert completed.returncode == EXIT_IO, (completed.returncode, completed.stderr)
    assert_clean(completed)
    errors = [line for line in completed.stderr.splitlines() if line.startswith("fanout:")]
    assert len(errors) == 1, completed.stderr
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def _journal_is_valid_prefix(run_dir: Path) -> list[dict[str, Any]]:
    """Every line of the journal is a whole JSON event (no torn or partial line)."""
    data = (run_dir / "journal.jsonl").read_bytes()
    assert data == b"" or data.endswith(b"\n"), data[-200:]
    return [json.loads(line) for line in data.splitlines()]


def _remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def _only_run(output: Path) -> Path:
    runs = [path for path in output.iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _assert_all_succeeded(run_dir: Path, count: int, size: int | None = None) -> None:
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "finished", manifest["status"]
    rows = manifest["tasks"]
    assert [row["status"] for row in rows] == ["success"] * count, rows
    if size is not None:
        for row in rows:
            stdout = run_dir / row["details_file"].replace(".json", ".stdout")
            assert stdout.stat().st_size == size, (row, stdout.stat().st_size)


def test_disk_full_while_tasks_write_is_one_line_and_resume_runs_the_rest(
    small_tmpfs: Callable[..., Path],
) -> None:
    disk = small_tmpfs("2m")
    values = [str(n) for n in range(1, 21)]
    command = ["--output-dir", str(disk), "-j", "4", "--", "head -c 300000 /dev/zero #{}"]
    full = run_fanout("run", *command, ":::", *values)
    line = _one_io_error(full, str(disk), "No space left on device")
    assert "SIGINT" not in full.stderr + full.stdout, line
    run_dir = _only_run(disk)
    events = _journal_is_valid_prefix(run_dir)
    assert "SIGINT" not in json.dumps(events)
    manifest = read_manifest(run_dir)
    assert manifest["status"] in ("running", "io_error"), manifest["status"]
    listed = run_fanout("runs", "--output-dir", str(disk))
    assert listed.returncode == 0 and "pass" not in listed.stdout.split(), listed.stdout
    assert "SIGINT" not in json.dumps(manifest)
    # No task that could not keep its whole output is recorded as a result.
    for event in events:
        if event["event"] == "task_ended" and event["status"] == "success":
            stdout = run_dir / event["details_file"].replace(".json", ".stdout")
            assert stdout.stat().st_size == 300000, event

    _remount(disk, "size=64m")
    resumed = run_fanout("run", "--resume", run_dir.name, "--output-dir", str(disk))
    assert resumed.returncode == 0, resumed.stderr
    _assert_all_succeeded(run_dir, 20, size=300000)


def test_disk_full_while_the_task_list_is_saved_never_resumes_a_part_of_it(
    small_tmpfs: Callable[..., Path],
) -> None:
    disk = small_tmpfs("1m")
    # 100 tasks of 20 KB of command each: their saved list (2 MB) cannot fit.
    padding = "x" * 20000
    values = [str(n) for n in range(1, 101)]
    command = ["--output-dir", str(disk), "--", f"echo {{}} #{padding}"]
    full = run_fanout("run", *command, ":::", *values)
    _one_io_error(full, "tasks.jsonl", "No space left on device")
    run_dir = _only_run(disk)
    _journal_is_valid_prefix(run_dir)

    _remount(disk, "size=64m")
    # The list saved is a part of the run's tasks: resuming it alone would pass a
    # run in which most tasks never ran, so fanout says so and asks for the source.
    alone = run_fanout("run", "--resume", run_dir.name, "--output-dir", str(disk))
    assert alone.returncode == 2, (alone.returncode, alone.stdout, alone.stderr)
    assert_clean(alone)
    assert "incomplete" in alone.stderr and run_dir.name in alone.stderr, alone.stderr
    again = run_fanout("run", "--resume", run_dir.name, *command, ":::", *values)
    assert again.returncode == 0, again.stderr
    _assert_all_succeeded(run_dir, 100)
    saved = (run_dir / "tasks.jsonl").read_text().splitlines()
    assert json.loads(saved[-1]) == {"end_of_list": True, "tasks": 100}


def test_no_inodes_left_is_one_line_and_resume_runs_the_rest(
    small_tmpfs: Callable[..., Path],
) -> None:
    disk = small_tmpfs("16m", inodes=40)
    values = [str(n) for n in range(1, 31)]
    command = ["--output-dir", str(disk), "-j", "2", "--", "echo", "{}"]
    full = run_fanout("run", *command, ":::", *values)
    _one_io_error(full, str(disk), "No space left on device")
    run_dir = _only_run(disk)
    _journal_is_valid_prefix(run_dir)

    _remount(disk, "nr_inodes=1000")
    resumed = run_fanout("run", "--resume", run_dir.name, "--output-dir", str(disk))
    assert resumed.returncode == 0, resumed.stderr
    _assert_all_succeeded(run_dir, 30)


def _run_limited(limit_bytes: int, *args: str) -> Completed:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return _completed(
        subprocess.run(
            [str(FANOUT), *args], capture_output=True, preexec_fn=limit, check=False, timeout=60
        )
    )


def _completed(done: subprocess.CompletedProcess[bytes]) -> Completed:
    return Completed(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        Path(os.environ["FANOUT_OUTPUT_DIR"]),
    )


def test_a_file_size_limit_is_one_line_and_resume_runs_the_rest() -> None:
    values = ["1", "2", "3"]
    command = ["-j", "1", "--", "head -c 200000 /dev/zero #{}"]
    limited = _run_limited(100_000, "run", *command, ":::", *values)
    _one_io_error(limited, ".stdout", "File too large")
    run_dir = limited.run_dir
    events = _journal_is_valid_prefix(run_dir)
    assert not [event for event in events if event["event"] == "task_ended"], events

    resumed = run_fanout("run", "--resume", run_dir.name)
    assert resumed.returncode == 0, resumed.stderr
    _assert_all_succeeded(run_dir, 3, size=200000)


def _shell(script: str, **env: str) -> Completed:
    environment = {**os.environ, "FANOUT": str(FANOUT), **env}
    return _completed(
        subprocess.run(
            ["bash", "-c", script], capture_output=True, env=environment, check=False, timeout=60
        )
    )


def test_a_closed_stdout_is_one_line_before_any_task_runs() -> None:
    closed = _shell('"$FANOUT" run -- touch {} ::: ran >&-')
    _one_io_error(closed, "standard output", "closed")
    assert not Path("ran").exists()
    assert closed.run_dirs() == []


def test_a_full_stdout_is_one_line_and_resume_runs_the_rest() -> None:
    full = _shell('"$FANOUT" run -j 1 -- echo {} ::: a b c d > /dev/full')
    _one_io_error(full, "standard output", "No space left on device")
    run_dir = full.run_dir
    _journal_is_valid_prefix(run_dir)
    assert "SIGPIPE" not in json.dumps(read_manifest(run_dir))
    resumed = run_fanout("run", "--resume", run_dir.name)
    assert resumed.returncode == 0, resumed.stderr
    _assert_all_succeeded(run_dir, 4)


def test_a_full_stdout_under_json_output_is_one_line() -> None:
    full = _shell('"$FANOUT" run --format json -- echo {} ::: a b > /dev/full')
    _one_io_error(full, "standard output", "No space left on device")


@pytest.mark.parametrize("command", ["runs", "show last"])
def test_a_full_stdout_of_the_other_commands_is_one_line(command: str) -> None:
    assert run_fanout("run", "-q", "--", "true", ":::", "1").returncode == 0
    full = _shell(f'"$FANOUT" {command} > /dev/full')
    _one_io_error(full, "standard output", "No space left on device")


def test_a_directory_as_the_task_file_is_one_line() -> None:
    directory = run_fanout("run", "/tmp")
    assert directory.returncode == 2, (directory.returncode, directory.stderr)
    assert_clean(directory)
    lines = directory.stderr.splitlines()
    assert len(lines) == 1 and "/tmp" in lines[0] and "directory" in lines[0], lines
    assert directory.run_dirs() == []


def test_a_directory_as_stdin_is_refused_before_anything_runs() -> None:
    """A documented limit: the Python interpreter itself refuses to start with a
    directory as stdin (its own message, exit 1) before any fanout code runs. What
    fanout can promise still holds: nothing ran and no run folder was made."""
    directory = _shell('"$FANOUT" run -- touch {} < /tmp', FANOUT_OUTPUT_DIR="out")
    assert directory.returncode != 0
    assert "is a directory" in directory.stderr, directory.stderr
    assert not Path("out").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_as_the_junit_or_timings_target_is_written_into_never_replaced(
    tmp_path: Path,
) -> None:
    """`--junit /dev/null` used to rename a new regular file over /dev/null (as root,
    breaking the machine). A copy of the null device stands in for it here."""
    null = tmp_path / "null"
    subprocess.run(["mknod", "-m", "666", str(null), "c", "1", "3"], check=True)
    done = run_fanout("run", "-q", "--junit", str(null), "--", "true", ":::", "1")
    assert done.returncode == 0, done.stderr
    assert null.is_char_device()
    merged = run_fanout("merge", str(done.run_dir), "--timings-out", str(null))
    assert_clean(merged)
    assert null.is_char_device()
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".null")]


def test_a_stream_cut_short_by_ctrl_c_is_resumed_only_with_its_source_again() -> None:
    process = subprocess.Popen(
        [str(FANOUT), "run", "-j", "1", "--", "sh", "-c", "sleep 0.3; echo $0", "{}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(b"a\nb\n")
    process.stdin.flush()  # the stream stays open: more could come
    output = Path(os.environ["FANOUT_OUTPUT_DIR"])
    wait_until(lambda: any(output.glob("*/0001-a.stdout")), "the first task to start")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    process.stdin.close()
    run_dir = _only_run(output)

    alone = run_fanout("run", "--resume", run_dir.name)
    assert "incomplete" in one_error_line(alone)
    again = run_fanout("run", "--resume", run_dir.name, "--", "sh", "-c", "sleep 0.3; echo $0",
                       "{}", input=b"a\nb\nc\n")  # fmt: skip
    assert again.returncode == 0, again.stderr
    _assert_all_succeeded(run_dir, 3)
