"""End to end: task sources, replacement strings and --dry-run through the installed binary.

Every task here is a real child process. Where a test needs to know that something
happened while fanout runs (a task ended before stdin closed), it polls the run's
journal with a deadline instead of sleeping; timing limits are generous because the
machine running them is shared and noisy."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

import fanout_cli.cli as cli_module
from fanout_cli.cli import run_cli
from tests.helpers import (
    FANOUT,
    Completed,
    assert_clean,
    one_error_line,
    read_journal,
    read_manifest,
    run_fanout,
    wait_until,
    write_tasks,
)

PY = sys.executable
TASKS = "tasks.toml"


# --- reading results ------------------------------------------------------------------


def task_rows(completed: Completed) -> list[dict[str, Any]]:
    """The manifest's task rows in input (seq) order."""
    rows: list[dict[str, Any]] = completed.manifest()["tasks"]
    return sorted(rows, key=lambda row: int(row["seq"]))


def all_details(completed: Completed) -> list[dict[str, Any]]:
    """Every task's details file, in input order."""
    details: list[dict[str, Any]] = []
    for row in task_rows(completed):
        assert row["details_file"], f"{row['task_id']} has no details file: {row}"
        details.append(completed.details(row["details_file"]))
    return details


def run_details(run_dir: Path) -> list[dict[str, Any]]:
    """The details files of one run among several in the output dir, in input order."""
    rows = sorted(read_manifest(run_dir)["tasks"], key=lambda row: int(row["seq"]))
    return [json.loads((run_dir / row["details_file"]).read_text()) for row in rows]


def stdout_bytes(completed: Completed, details: Mapping[str, Any]) -> bytes:
    return (completed.run_dir / str(details["stdout"]["path"])).read_bytes()


def outputs_by_id(completed: Completed) -> dict[str, bytes]:
    """Task id -> the raw stdout the task wrote (ids must be unique in the run)."""
    outputs: dict[str, bytes] = {}
    for details in all_details(completed):
        assert details["task_id"] not in outputs, f"duplicate id {details['task_id']!r}"
        outputs[details["task_id"]] = stdout_bytes(completed, details)
    return outputs


def event_index(events: Sequence[Mapping[str, Any]], event: str, task_id: str) -> int:
    for index, row in enumerate(events):
        if row["event"] == event and row.get("task_id") == task_id:
            return index
    raise AssertionError(f"no {event} event for {task_id!r} in {events}")


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the n-th occurrence of `fragment`."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return found[occurrence - 1]


def make_files(*paths: str) -> None:
    for name in paths:
        path = Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


# --- processes ------------------------------------------------------------------------


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a process this test started, if it still runs, reap it and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a write still buffered had nowhere to go
                pipe.close()


# --- 1. sources -----------------------------------------------------------------------


def test_stdin_lines_run_the_command_once_each() -> None:
    completed = run_fanout("run", "--", "echo", "{}", input=b"a\nb\n")
    assert completed.returncode == 0, completed.stderr
    assert_clean(completed)
    assert outputs_by_id(completed) == {"a": b"a\n", "b": b"b\n"}
    assert [row["origin"] for row in task_rows(completed)] == ["stdin:1", "stdin:2"]


def test_empty_lines_are_skipped_and_a_trailing_newline_is_not_a_value() -> None:
    completed = run_fanout("run", "--", "echo", "{}", input=b"\na\n\n\nb\n")
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {"a": b"a\n", "b": b"b\n"}
    assert completed.manifest()["verdict"]["counts"]["tasks"] == 2


def test_last_line_without_a_newline_is_still_a_value() -> None:
    completed = run_fanout("run", "--", "echo", "{}", input=b"a\nb")
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {"a": b"a\n", "b": b"b\n"}


def test_crlf_input_never_passes_a_carriage_return_to_the_command() -> None:
    completed = run_fanout("run", "--", "printf", "<%s>", "{}", input=b"a\r\n\r\nb c\r\n")
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {"a": b"<a>", "b c": b"<b c>"}
    assert [d["input"] for d in all_details(completed)] == ["a", "b c"]


@pytest.mark.parametrize("flag", ["-0", "--null"])
def test_null_separated_values_may_hold_newlines(flag: str) -> None:
    completed = run_fanout(
        "run", flag, "--", "printf", "<%s>", "{}", input=b"one\ntwo\0\0three\0"
    )
    assert completed.returncode == 0, completed.stderr
    details = all_details(completed)
    assert [d["input"] for d in details] == ["one\ntwo", "three"]
    assert [stdout_bytes(completed, d) for d in details] == [b"<one\ntwo>", b"<three>"]
    assert [d["origin"] for d in details] == ["stdin:1", "stdin:3"]


def test_bytes_that_are_not_utf8_reach_the_command_unchanged() -> None:
    completed = run_fanout("run", "--", "printf", "<%s>", "{}", input=b"caf\xe9\n")
    assert completed.returncode == 0, completed.stderr
    assert_clean(completed)
    [details] = all_details(completed)
    assert stdout_bytes(completed, details) == b"<caf\xe9>"


def test_values_after_triple_colon() -> None:
    completed = run_fanout("run", "--", "echo", "{}", ":::", "a", "b", "c")
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {"a": b"a\n", "b": b"b\n", "c": b"c\n"}
    assert [row["origin"] for row in task_rows(completed)] == [":::1", ":::2", ":::3"]


def test_without_a_replacement_string_the_value_is_appended() -> None:
    completed = run_fanout("run", "--", "echo", "value:", ":::", "x y")
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {"x y": b"value: x y\n"}


def test_stdin_lines_without_a_command_are_shell_commands() -> None:
    completed = run_fanout("run", input=b"echo one\nexit 3\n")
    assert completed.returncode == 1, completed.stderr
    assert_clean(completed)
    rows = {row["task_id"]: row for row in task_rows(completed)}
    assert rows["echo one"]["status"] == "success"
    assert rows["exit 3"]["status"] == "failure"
    assert rows["exit 3"]["exit_code"] == 3
    assert outputs_by_id(completed)["echo one"] == b"one\n"


def test_glob_matches_sorted_recursive_and_skips_hidden_files() -> None:
    make_files("src/b.py", "src/a.py", "src/sub/deep/c.py", "src/.hidden.py",
               "src/.cache/d.py", "src/notes.txt")  # fmt: skip
    completed = run_fanout("run", "--glob", "src/**/*.py", "--", "printf", "%s", "{}")
    assert completed.returncode == 0, completed.stderr
    details = all_details(completed)
    assert [d["input"] for d in details] == ["src/a.py", "src/b.py", "src/sub/deep/c.py"]
    assert [stdout_bytes(completed, d) for d in details] == [
        b"src/a.py", b"src/b.py", b"src/sub/deep/c.py"
    ]


def test_glob_includes_hidden_files_when_the_pattern_asks_for_them() -> None:
    make_files("src/a.py", "src/.hidden.py", "src/.cache/d.py")
    completed = run_fanout("run", "--run-id", "dot", "--glob", "src/.*", "--", "true")
    assert completed.returncode == 0, completed.stderr
    named = run_fanout("run", "--run-id", "dir", "--glob", "src/.cache/*.py", "--", "true")
    assert named.returncode == 0, named.stderr
    dot = run_details(completed.output_dir / "dot")
    assert [d["input"] for d in dot] == ["src/.cache", "src/.hidden.py"]
    assert [d["input"] for d in run_details(named.output_dir / "dir")] == ["src/.cache/d.py"]


def test_repeated_globs_run_a_file_matched_twice_once() -> None:
    make_files("c.txt", "a.txt", "b.txt", "b.log")
    completed = run_fanout(
        "run", "--glob", "*.txt", "--glob", "b.*", "--", "printf", "%s", "{}"
    )
    assert completed.returncode == 0, completed.stderr
    inputs = [d["input"] for d in all_details(completed)]
    assert sorted(inputs) == ["a.txt", "b.log", "b.txt", "c.txt"]
    assert inputs[:3] == ["a.txt", "b.txt", "c.txt"]  # one pattern's matches are sorted


@pytest.mark.parametrize("patterns", [["nothing/*.zz"], ["*.txt", "nothing/*.zz"]])
def test_a_glob_without_a_match_is_exit_2_naming_the_pattern(patterns: list[str]) -> None:
    make_files("a.txt")
    args = [word for pattern in patterns for word in ("--glob", pattern)]
    line = one_error_line(run_fanout("run", *args, "--", "echo", "{}"), no_run_folder=True)
    assert "nothing/*.zz" in line


def test_task_file_glob_expands_one_entry_into_a_task_per_match() -> None:
    make_files("src/a.py", "src/pkg/b.py", "src/.hidden.py", "src/readme.md")
    text = (
        '[[task]]\nid = "lint-{/.}"\ncmd = ["printf", "%s|%s", "{}", "{//}"]\n'
        'glob = "src/**/*.py"\n'
    )
    write_tasks(Path(TASKS), text)
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {
        "lint-a": b"src/a.py|src",
        "lint-b": b"src/pkg/b.py|src/pkg",
    }
    origins = {d["origin"] for d in all_details(completed)}
    assert origins == {f"{TASKS}:1"}


def test_task_file_foreach_with_a_shell_string_quotes_every_value(tmp_path: Path) -> None:
    values = ["it's", "$(touch pwned)", "two  words", "a;b"]
    text = (
        '[defaults]\ntimeout = "30s"\n\n'
        f'[[task]]\nid = "say"\ncmd = "printf \'<%s>\' {{}}"\nforeach = {json.dumps(values)}\n'
        '\n[[task]]\nid = "n{#}"\ncmd = ["echo", "{}"]\nforeach = [3, 1.5]\n'
    )
    write_tasks(Path(TASKS), text)
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 0, completed.stderr
    outputs = outputs_by_id(completed)
    # An id without a replacement string becomes id-value.
    assert outputs == {
        **{f"say-{value}": f"<{value}>".encode() for value in values},
        "n5": b"3\n",
        "n6": b"1.5\n",
    }
    assert not (tmp_path / "pwned").exists(), "a value became shell code"
    details = all_details(completed)
    assert all(d["shell"] is True for d in details[:4])
    assert [d["input"] for d in details] == [*values, "3", "1.5"]
    first, second = line_of(text, "[[task]]"), line_of(text, "[[task]]", 2)
    assert [d["origin"] for d in details] == [f"{TASKS}:{first}"] * 4 + [f"{TASKS}:{second}"] * 2


def test_task_file_glob_without_a_match_is_exit_2_with_file_and_line() -> None:
    text = (
        '[[task]]\nid = "ok"\ncmd = ["true"]\n\n'
        '[[task]]\nid = "lint-{/.}"\ncmd = ["true"]\nglob = "missing/**/*.py"\n'
    )
    write_tasks(Path(TASKS), text)
    line = one_error_line(run_fanout("run", TASKS), no_run_folder=True)
    accepted = {f"{TASKS}:{line_of(text, 'glob =')}", f"{TASKS}:{line_of(text, '[[task]]', 2)}"}
    assert any(line.startswith(f"fanout: error: {where}:") for where in accepted), line
    assert "missing/**/*.py" in line


# --- 2. exactly one source ------------------------------------------------------------


@pytest.mark.parametrize("argv", [["run"], ["run", "-q", "--", "echo", "{}"]])
def test_no_source_with_a_terminal_stdin_is_a_usage_error(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    assert run_cli(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "usage" in lines[0].lower() and "fanout run" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


TWO_SOURCES: dict[str, list[str]] = {
    "task file and --glob": ["run", TASKS, "--glob", "*.txt"],
    "::: and --glob": ["run", "--glob", "*.txt", "--", "echo", "{}", ":::", "a"],
    "task file and a command": ["run", TASKS, "--", "echo", "{}"],
    "task file and :::": ["run", TASKS, "--", "echo", "{}", ":::", "a"],
}


@pytest.mark.parametrize("case", sorted(TWO_SOURCES))
def test_two_sources_are_exit_2_with_one_usage_line(case: str) -> None:
    make_files("a.txt")
    write_tasks(Path(TASKS), '[[task]]\nid = "t"\ncmd = ["true"]\n')
    line = one_error_line(run_fanout(*TWO_SOURCES[case], input=b"x\n"), no_run_folder=True)
    assert "usage" in line.lower() and "fanout run" in line, line


def test_null_separated_with_triple_colon_is_exit_2() -> None:
    completed = run_fanout("run", "-0", "--", "echo", "{}", ":::", "a")
    line = one_error_line(completed, no_run_folder=True)
    assert "-0" in line


def test_triple_colon_without_double_dash_asks_for_the_command_after_it() -> None:
    line = one_error_line(run_fanout("run", "echo", ":::", "a"), no_run_folder=True)
    assert "after --" in line, line


def test_a_second_triple_colon_group_combines_with_the_first() -> None:
    completed = run_fanout("run", "--format", "json", "--", "echo", "{}", ":::", "a", "b",
                           ":::", "1", "2")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    tasks = json.loads(completed.stdout)["tasks"]
    assert [task["task_id"] for task in tasks] == ["a 1", "a 2", "b 1", "b 2"]
    assert [task["summary"] for task in tasks] == ["a 1", "a 2", "b 1", "b 2"]


def test_triple_colon_without_a_command_is_exit_2() -> None:
    line = one_error_line(run_fanout("run", "--", ":::", "a", "b"), no_run_folder=True)
    assert "command" in line, line


@pytest.mark.parametrize(
    ("strategy", "exit_code"),
    [("all-succeed", 0), ("first-n-succeed", 1), ("partial-success", 1)],
)
def test_empty_stdin_is_zero_tasks_and_the_strategy_decides(strategy: str, exit_code: int) -> None:
    completed = run_fanout("run", "--strategy", strategy, "--", "echo", "{}", input=b"")
    assert completed.returncode == exit_code, completed.stderr
    assert_clean(completed)
    manifest = completed.manifest()
    assert manifest["tasks"] == []
    assert manifest["verdict"]["counts"]["tasks"] == 0
    assert manifest["verdict"]["passed"] is (exit_code == 0)


# --- 3. streaming ---------------------------------------------------------------------


def test_first_task_ends_before_stdin_is_closed(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "stream"
    with open(tmp_path / "fanout.log", "wb") as log:
        process = subprocess.Popen(
            [str(FANOUT), "run", "--run-id", "stream", "--", "echo", "{}"],
            stdin=subprocess.PIPE, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            assert process.stdin is not None
            process.stdin.write(b"a\n")
            process.stdin.flush()
            wait_until(
                lambda: process.poll() is not None
                or any(e["event"] == "task_ended" and e.get("task_id") == "a"
                       for e in read_journal(run_dir, running=True)),
                "task a to end while stdin is still open",
                timeout=20,
            )  # fmt: skip
            assert process.poll() is None, (tmp_path / "fanout.log").read_text()
            process.stdin.write(b"b\n")
            process.stdin.close()
            assert process.wait(timeout=30) == 0, (tmp_path / "fanout.log").read_text()
        finally:
            stop(process)
    events = read_journal(run_dir)
    assert event_index(events, "task_ended", "a") < event_index(events, "task_started", "b")
    assert events[-1]["event"] == "run_ended"
    assert events[-1]["counts"]["success"] == 2


def endless_writer(pipe: IO[bytes], stopped: threading.Event) -> None:
    """`yes`, until the reader goes away or the test is over."""
    block = b"y\n" * 4096
    try:
        while not stopped.is_set():
            pipe.write(block)
    except (OSError, ValueError):
        pass  # fanout exited (or was killed): the pipe is gone


def test_endless_stdin_does_not_hang_an_early_verdict(tmp_path: Path) -> None:
    stopped = threading.Event()
    process = subprocess.Popen(
        [str(FANOUT), "run", "-q", "--run-id", "endless", "--strategy", "first-n-succeed",
         "--", "true"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    writer = threading.Thread(target=endless_writer, args=(process.stdin, stopped), daemon=True)
    started = time.monotonic()
    writer.start()
    try:
        try:
            returncode = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("fanout did not stop reading an endless stdin after its verdict")
        elapsed = time.monotonic() - started
        assert process.stderr is not None
        assert returncode == 0, process.stderr.read().decode()
        assert elapsed < 10, f"took {elapsed:.1f}s"
    finally:
        stopped.set()
        if process.poll() is None:
            process.kill()  # the writer then fails on a broken pipe and returns
        writer.join(timeout=10)
        stop(process)
    assert not writer.is_alive()
    manifest = json.loads((tmp_path / "out" / "endless" / "manifest.json").read_text())
    assert manifest["verdict"]["passed"] is True
    assert manifest["verdict"]["counts"]["success"] >= 1


# --- 4. replacement strings -----------------------------------------------------------


def test_every_replacement_string_in_one_command() -> None:
    completed = run_fanout(
        "run", "-j", "2", "--",
        "printf", "%s|%s|%s|%s|%s|%s|%s", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}", "{%}",
        ":::", "a/b.tar.gz", "plain", "/abs/x.y",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    outputs = {key: value.decode() for key, value in outputs_by_id(completed).items()}
    expected = {
        "a/b.tar.gz": ["a/b.tar.gz", "a/b.tar", "b.tar.gz", "a", "b.tar", "1"],
        "plain": ["plain", "plain", "plain", ".", "plain", "2"],
        "/abs/x.y": ["/abs/x.y", "/abs/x", "x.y", "/abs", "x", "3"],
    }
    assert set(outputs) == set(expected)
    for value, fields in expected.items():
        *replaced, slot = outputs[value].split("|")
        assert replaced == fields, outputs[value]
        assert slot in ("1", "2"), outputs[value]


SLOT_PROBE = (
    "import sys, time\n"
    "started = time.time()\n"
    "time.sleep(0.4)\n"
    "print(sys.argv[1], started, time.time())\n"
)


def test_tasks_running_at_the_same_time_never_share_a_slot() -> None:
    jobs = 3
    completed = run_fanout(
        "run", "-j", str(jobs), "--", PY, "-c", SLOT_PROBE, "{%}", ":::",
        *[str(n) for n in range(1, 10)],
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    spans: list[tuple[int, float, float]] = []
    for output in outputs_by_id(completed).values():
        slot_text, started_text, ended_text = output.decode().split()
        spans.append((int(slot_text), float(started_text), float(ended_text)))
    assert len(spans) == 9
    assert {slot for slot, _, _ in spans} == set(range(1, jobs + 1))
    overlapping = 0
    for index, (slot, started, ended) in enumerate(spans):
        for other_slot, other_started, other_ended in spans[index + 1 :]:
            if started < other_ended and other_started < ended:
                overlapping += 1
                assert slot != other_slot, f"slot {slot} held by two running tasks: {spans}"
    assert overlapping >= jobs, f"the tasks never ran side by side: {spans}"


@pytest.mark.parametrize(
    "command", [["echo", "{{}}", "{}"], ["echo {{}} {}"]], ids=["exec", "shell"]
)
def test_double_braces_are_a_literal_pair_of_braces(command: list[str]) -> None:
    completed = run_fanout("run", "--", *command, ":::", "x")
    assert completed.returncode == 0, completed.stderr
    assert outputs_by_id(completed) == {"x": b"{} x\n"}


def test_shell_mode_quotes_values_so_they_never_become_code(tmp_path: Path) -> None:
    values = ["$(touch pwned)", "`touch pwned`; touch pwned", "it's", "a b"]
    completed = run_fanout("run", "--", "printf '<%s>' {} | tr a-z A-Z", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    assert not (tmp_path / "pwned").exists(), "a value became shell code"
    outputs = outputs_by_id(completed)
    assert outputs == {value: f"<{value.upper()}>".encode() for value in values}


# --- 5. task ids and origins ----------------------------------------------------------


def test_values_that_slugify_alike_get_their_own_details_files() -> None:
    values = ["a/b", "a_b", "a b", "a?b"]
    completed = run_fanout("run", "--", "printf", "%s", "{}", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    rows = task_rows(completed)
    assert [row["task_id"] for row in rows] == values
    files = [row["details_file"] for row in rows]
    assert len(set(files)) == len(values), files
    for file_name in files:
        assert "/" not in file_name and (completed.run_dir / file_name).is_file()
    details = all_details(completed)
    assert [d["input"] for d in details] == values
    assert [stdout_bytes(completed, d) for d in details] == [v.encode() for v in values]
    assert len({d["stdout"]["path"] for d in details}) == len(values)


def test_details_record_the_input_and_where_it_came_from() -> None:
    stdin = run_fanout("run", "--", "true", input=b"x\n\ny\r\n\r\nz")
    assert stdin.returncode == 0, stdin.stderr
    assert [(d["input"], d["origin"]) for d in all_details(stdin)] == [
        ("x", "stdin:1"), ("y", "stdin:3"), ("z", "stdin:5")
    ]


def test_glob_and_triple_colon_origins(tmp_path: Path) -> None:
    make_files("src/a.py", "src/b.py")
    globbed = run_fanout("run", "--run-id", "g", "--glob", "src/*.py", "--", "true")
    assert globbed.returncode == 0, globbed.stderr
    listed = run_fanout("run", "--run-id", "l", "--", "true", ":::", "p", "q", "r")
    assert listed.returncode == 0, listed.stderr

    def origins(run_id: str) -> list[tuple[str, str]]:
        return [(d["input"], d["origin"]) for d in run_details(tmp_path / "out" / run_id)]

    assert origins("g") == [("src/a.py", "glob:src/a.py"), ("src/b.py", "glob:src/b.py")]
    assert origins("l") == [("p", ":::1"), ("q", ":::2"), ("r", ":::3")]


def test_task_file_origin_is_the_line_of_its_task_table() -> None:
    text = '# two tasks\n\n[[task]]\nid = "one"\ncmd = ["true"]\n\n[[task]]\ncmd = "true"\n'
    write_tasks(Path(TASKS), text)
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 0, completed.stderr
    assert [(d["task_id"], d["origin"]) for d in all_details(completed)] == [
        ("one", f"{TASKS}:3"), ("task-2", f"{TASKS}:7")
    ]


# --- 6. --dry-run ---------------------------------------------------------------------

AWKWARD_VALUES = [
    "plain", "two  words", "it's", "$(touch pwned)", 'say "hi"', "semi;colon",
    "star*", "back\\slash", "tab\there", "naïve", "-n", "",
]  # fmt: skip


def run_in_sh(line: str) -> bytes:
    """A printed line pasted into sh."""
    result = subprocess.run(["sh", "-c", line], capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, (line, result.stderr)
    return result.stdout


@pytest.mark.parametrize(
    "command",
    [["printf", "[%s|%s]", "{}", "{/.}"], ["printf '[%s|%s]' {} {/.} | tr a-z A-Z"]],
    ids=["exec", "shell"],
)
def test_dry_run_prints_commands_that_sh_runs_the_same_way(
    command: list[str], tmp_path: Path
) -> None:
    make_files("starfile")  # an unquoted star* would expand to this
    dry = run_fanout("run", "--dry-run", "--", *command, ":::", *AWKWARD_VALUES)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr == ""
    assert dry.run_dirs() == [] and not (tmp_path / "out").exists()
    lines = dry.stdout.split("\n")
    assert lines[-1] == "", "the output must end with a newline"
    lines = lines[:-1]
    assert len(lines) == len(AWKWARD_VALUES), dry.stdout

    real = run_fanout("run", "--", *command, ":::", *AWKWARD_VALUES)
    assert real.returncode == 0, real.stderr
    details = all_details(real)
    assert [d["input"] for d in details] == AWKWARD_VALUES
    for line, task in zip(lines, details, strict=True):
        assert run_in_sh(line) == stdout_bytes(real, task), line
    assert not (tmp_path / "pwned").exists(), "a value became shell code"


def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    dry = run_fanout("run", "--dry-run", "--", "touch", "{}", ":::", "made1", "made 2")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "touch made1\ntouch 'made 2'\n"
    assert not (tmp_path / "made1").exists() and not (tmp_path / "made 2").exists()
    assert not (tmp_path / "out").exists()


def test_dry_run_of_stdin_values_and_of_stdin_commands(tmp_path: Path) -> None:
    templated = run_fanout("run", "--dry-run", "--", "echo", "{}", input=b"a\n\nb c\n")
    assert (templated.returncode, templated.stdout) == (0, "echo a\necho 'b c'\n")
    commands = run_fanout("run", "--dry-run", input=b"touch made\necho hi\n")
    assert (commands.returncode, commands.stdout) == (0, "touch made\necho hi\n")
    assert not (tmp_path / "made").exists()
    assert not (tmp_path / "out").exists()


def test_dry_run_of_a_task_file_with_cwd_changes_directory_first(tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    text = (
        '[[task]]\nid = "where"\ncmd = ["pwd"]\ncwd = "sub dir"\n\n'
        '[[task]]\nid = "here"\ncmd = "printf \'%s\' done"\n'
    )
    write_tasks(Path(TASKS), text)
    dry = run_fanout("run", "--dry-run", TASKS)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "cd 'sub dir' && pwd\nprintf '%s' done\n"
    assert not (tmp_path / "out").exists()
    real = run_fanout("run", TASKS)
    assert real.returncode == 0, real.stderr
    outputs = outputs_by_id(real)
    lines = dry.stdout.splitlines()
    assert run_in_sh(lines[0]) == outputs["where"] == f"{tmp_path / 'sub dir'}\n".encode()
    assert run_in_sh(lines[1]) == outputs["here"] == b"done"


# --- 7. memory stays flat -------------------------------------------------------------

RSS_PROBE = """\
import resource, subprocess, sys
source, sink, *argv = sys.argv[1:]
with open(source, "rb") as values, open(sink, "wb") as output:
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=output)
    while block := values.read(1 << 16):
        process.stdin.write(block)
    process.stdin.close()
    code = process.wait()
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(code, peak // 1024 if sys.platform == "darwin" else peak)
"""


def peak_rss(argv: Sequence[str], lines: Iterator[str], folder: Path) -> tuple[int, float, Path]:
    """Run argv with `lines` on a pipe as stdin; return peak RSS in KiB, seconds and
    the stdout file. A fresh parent per measurement, so no earlier child counts."""
    folder.mkdir()
    source, sink = folder / "stdin", folder / "stdout"
    with open(source, "w") as handle:
        handle.writelines(lines)
    started = time.monotonic()
    probe = subprocess.run(
        [PY, "-c", RSS_PROBE, str(source), str(sink), *argv],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert probe.returncode == 0, probe.stderr
    code, peak = probe.stdout.split()
    assert code == "0", f"{argv} exited {code}: {probe.stderr}"
    return int(peak), elapsed, sink


def count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def values(count: int) -> Iterator[str]:
    return (f"dir{n % 97}/file{n}.txt\n" for n in range(count))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_dry_run_memory_does_not_grow_with_input(tmp_path: Path) -> None:
    argv = [str(FANOUT), "run", "--dry-run", "--", "echo", "{}"]
    small, small_seconds, small_out = peak_rss(argv, values(1_000), tmp_path / "small")
    large, large_seconds, large_out = peak_rss(argv, values(1_000_000), tmp_path / "large")
    print(
        f"\ndry-run peak RSS: 1,000 lines {small / 1024:.1f} MiB ({small_seconds:.1f}s), "
        f"1,000,000 lines {large / 1024:.1f} MiB ({large_seconds:.1f}s)"
    )
    assert count_lines(small_out) == 1_000
    assert count_lines(large_out) == 1_000_000
    assert large - small < 10 * 1024, f"{small} KiB -> {large} KiB"


REAL_RUN_BUDGET_SECONDS = 45.0
REAL_RUN_TASKS = 20_000
REAL_RUN_MIN_TASKS = 5_000


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_real_run_memory_does_not_grow_with_the_task_count(tmp_path: Path) -> None:
    def measure(count: int) -> tuple[int, float]:
        run_id = f"rss-{count}"
        argv = [str(FANOUT), "run", "-q", "-j", "4", "--run-id", run_id, "--", "true"]
        peak, seconds, _ = peak_rss(argv, (f"{n}\n" for n in range(count)), tmp_path / run_id)
        manifest = json.loads((tmp_path / "out" / run_id / "manifest.json").read_text())
        assert manifest["verdict"]["counts"]["success"] == count
        return peak, seconds

    small, small_seconds = measure(200)
    calibration, calibration_seconds = measure(1_000)
    per_task = max(calibration_seconds - small_seconds, 0.1) / 800
    count = min(REAL_RUN_TASKS, int(REAL_RUN_BUDGET_SECONDS / per_task))
    if count < REAL_RUN_MIN_TASKS:
        pytest.skip(f"{per_task * 1000:.1f} ms a task: {REAL_RUN_MIN_TASKS} tasks would take "
                    f"over {REAL_RUN_BUDGET_SECONDS:.0f}s on this machine")  # fmt: skip
    large, large_seconds = measure(count)
    print(
        f"\nreal run peak RSS (-j 4, true): 200 tasks {small / 1024:.1f} MiB "
        f"({small_seconds:.1f}s), 1,000 tasks {calibration / 1024:.1f} MiB "
        f"({calibration_seconds:.1f}s), {count:,} tasks {large / 1024:.1f} MiB "
        f"({large_seconds:.1f}s)"
    )
    assert calibration - small < 15 * 1024, f"{small} KiB -> {calibration} KiB"
    assert large - small < 15 * 1024, f"{small} KiB -> {large} KiB"
