"""End to end: the reduce step (issue 16, part 5) with the installed `fanout` and real
child processes: what a command reduce reads, when it runs, how it is recorded and
printed, what it does to the verdict, and --resume."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

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
    rows_by_id,
    run_fanout,
    wait_until,
    write_tasks,
)

# A task per value: a sleeps longest, so tasks end out of input order; b fails.
TASK = ("sh", "-c", 'case "$1" in a) sleep 0.4;; b) sleep 0.2;; esac; '
        'echo "[AOP:SCORE] 0.5"; echo "got $1"; test "$1" != b', "sh", "{}")


def reduce_files(completed: Completed) -> set[str]:
    return {p.name for p in completed.run_dir.iterdir() if p.name.startswith("reduce.")}


def run_with(*args: str, values: tuple[str, ...] = ("a", "b", "c")) -> Completed:
    completed = run_fanout("run", "-j", "3", *args, "--", *TASK, ":::", *values)
    assert_clean(completed)
    return completed


def test_a_command_reduce_reads_one_json_line_a_task_in_input_order(tmp_path: Path) -> None:
    lines, run_dir = tmp_path / "lines.jsonl", tmp_path / "run_dir.txt"
    completed = run_with("--reduce-when", "always",
                         "--reduce", f'cat > {lines}; printf %s "$FANOUT_RUN_DIR" > {run_dir}')
    assert completed.returncode == 1  # b failed: all-succeed fails; the reduce still ran
    got = [json.loads(line) for line in lines.read_text().splitlines()]
    rows = rows_by_id(completed.manifest())
    expected = []
    for seq, value in enumerate(("a", "b", "c"), start=1):
        details = rows[value]["details_file"]
        expected.append({
            "task_id": value, "seq": seq,
            "status": "failure" if value == "b" else "success",
            "exit_code": 1 if value == "b" else 0,
            "summary": rows[value]["summary"], "score": 0.5, "vote_key": None, "input": value,
            "details_file": details, "stdout_file": details.removesuffix(".json") + ".stdout",
        })  # fmt: skip
    assert got == expected
    assert [list(line) for line in got] == [list(line) for line in expected]  # key order too
    assert run_dir.read_text() == str(completed.run_dir)
    folder = Path(run_dir.read_text())
    assert [(folder / line["stdout_file"]).read_text() for line in got] == [
        "[AOP:SCORE] 0.5\ngot a\n", "[AOP:SCORE] 0.5\ngot b\n", "[AOP:SCORE] 0.5\ngot c\n"]


@pytest.mark.parametrize(
    ("when", "failing", "runs"),
    [
        ("pass", False, True), ("pass", True, False),
        ("always", False, True), ("always", True, True),
        ("fail", False, False), ("fail", True, True),
    ],
)  # fmt: skip
def test_reduce_when_says_after_which_verdict_it_runs(when: str, failing: bool, runs: bool) -> None:
    values = ("a", "b") if failing else ("a", "c")
    completed = run_with("--reduce-when", when, "--reduce", "echo reduced", values=values)
    assert completed.returncode == (1 if failing else 0), completed.stderr
    manifest = completed.manifest()
    assert manifest["verdict"]["passed"] is not failing
    if runs:
        assert manifest["reduce"]["status"] == "success"
        assert reduce_files(completed) == {"reduce.json", "reduce.stdout", "reduce.stderr"}
        assert completed.stdout.endswith("reduced\n")
    else:
        assert manifest["reduce"] is None
        assert reduce_files(completed) == set()
        assert "reduced" not in completed.stdout


def test_reduce_when_from_the_run_table(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "t.toml", '[run]\nreduce_when = "fail"\n'
                        '[reduce]\ncmd = "echo reduced"\n[[task]]\ncmd = "false"\n')
    completed = run_fanout("run", str(tasks))
    assert completed.returncode == 1
    assert completed.stdout.endswith("reduced\n")


def test_a_failed_reduce_fails_the_run_with_its_reason() -> None:
    completed = run_with("--reduce", "echo partial answer; echo oops >&2; exit 3",
                         values=("a", "c"))
    assert completed.returncode == 1, completed.stderr
    verdict = completed.manifest()["verdict"]
    assert verdict["passed"] is False
    assert verdict["reason"] == "2 of 2 succeeded; the reduce failed: exit 3"
    lines = completed.stdout.splitlines()
    assert lines[-2].startswith("FAIL all-succeed: 2 of 2 succeeded; the reduce failed: exit 3")
    assert lines[-1] == "partial answer"  # its output is printed all the same
    entry = completed.manifest()["reduce"]
    assert (entry["status"], entry["exit_code"]) == ("failure", 3)
    assert entry["summary"] == "oops (exit 3)"


@pytest.mark.parametrize("form", ["list", "string"])
def test_a_reduce_that_cannot_start_is_an_error(tmp_path: Path, form: str) -> None:
    command = '["no-such-reducer-xyz"]' if form == "list" else '"no-such-reducer-xyz --x"'
    tasks = write_tasks(tmp_path / "t.toml", f"[reduce]\ncmd = {command}\n"
                        '[[task]]\ncmd = "echo hi"\n')
    completed = run_fanout("run", str(tasks))
    assert_clean(completed)
    assert completed.returncode == 1
    entry = completed.manifest()["reduce"]
    assert entry["status"] == "error"
    reason = completed.manifest()["verdict"]["reason"]
    assert reason.startswith("1 of 1 succeeded; the reduce could not start: ")
    if form == "list":
        assert reason.endswith("command not found: no-such-reducer-xyz")
    else:
        assert reason.endswith("exit 127 (command not found)")
    assert completed.details("reduce.json")["status"] == "error"


def test_an_unknown_placeholder_is_exit_2_before_any_task_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    completed = run_fanout("run", "--reduce-prompt", "Combine {results} into {answer}",
                           "--model", "m", "--", "touch", str(marker), ":::", "a")
    line = one_error_line(completed, no_run_folder=True)
    assert "--reduce-prompt: unknown placeholder {answer}" in line
    assert not marker.exists()


def test_an_unknown_placeholder_in_the_reduce_table_names_its_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tasks = write_tasks(tmp_path / "t.toml", f'[[task]]\ncmd = ["touch", "{marker}"]\n\n'
                        '[reduce]\nkind = "agent"\nmodel = "m"\nprompt = "Say {outputs} {x}"\n')
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert line.startswith(f"fanout: error: {tasks}:7: [reduce] prompt: unknown placeholder {{x}}")
    assert not marker.exists()


def test_a_reduce_table_with_an_unknown_key_names_its_line(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "t.toml", '[[task]]\ncmd = "echo hi"\n\n[reduce]\n'
                        'cmd = "cat"\nwhen = "always"\n')
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert line.startswith(f"fanout: error: {tasks}:6: unknown key 'when' in [reduce]")


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ('kind = "agent"\ncmd = "cat"\nprompt = "x"', 6,
         "[reduce] cmd does not apply to kind 'agent'"),
        ('kind = "agent"\nprompt = "x {results}"\nmax_bytes = 0', 7,
         "[reduce] max_bytes: expected 1 to"),
        ('cmd = ""', 5, "[reduce] cmd: the reduce command is empty"),
        ('kind = "agent"\nprompt = "x"\nprovider = "nope"', 7,
         "[reduce] provider: unknown provider 'nope'"),
    ],
)  # fmt: skip
def test_a_bad_reduce_table_is_one_line_naming_it(
    tmp_path: Path, table: str, line: int, message: str
) -> None:
    tasks = write_tasks(tmp_path / "t.toml", f'[[task]]\ncmd = "echo hi"\n\n[reduce]\n{table}\n')
    error = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert error.startswith(f"fanout: error: {tasks}:{line}: {message}"), error


def test_the_reduce_is_recorded_like_a_task() -> None:
    completed = run_with("--reduce", "wc -l; echo warn >&2", values=("a", "c"))
    assert completed.returncode == 0, completed.stderr
    run_dir = completed.run_dir
    for name in ("reduce.json", "reduce.stdout", "reduce.stderr"):
        assert stat.S_IMODE(os.lstat(run_dir / name).st_mode) == 0o600, name
    assert (run_dir / "reduce.stdout").read_text() == "2\n"
    assert (run_dir / "reduce.stderr").read_text() == "warn\n"
    details = completed.details("reduce.json")
    task_details = completed.details(rows_by_id(completed.manifest())["a"]["details_file"])
    assert set(task_details) <= set(details)  # a task's details document, and more
    assert details["aop_version"] == "1.0.0"
    assert details["task_id"] == "reduce" and details["seq"] == 0
    assert (details["kind"], details["status"]) == ("process", "success")
    assert details["command"] == "wc -l; echo warn >&2" and details["shell"] is True
    assert details["stdout"]["path"] == "reduce.stdout" and details["stdout"]["bytes"] == 2
    assert details["env"] == {"FANOUT_RUN_DIR": str(run_dir)}
    assert details["reduce"] == {"kind": "process", "command": "wc -l; echo warn >&2",
                                 "when": "pass"}
    assert len(details["fingerprint"]) == 64
    entry = completed.manifest()["reduce"]
    assert entry == {"status": "success", "exit_code": 0, "summary": "2", "reason": "",
                     "duration_ms": entry["duration_ms"], "details_file": "reduce.json",
                     "stdout_file": "reduce.stdout", "stdout_bytes": 2, "kept": False}
    assert isinstance(entry["duration_ms"], int)


REDUCE_SCRIPT = "printf 'first line\\n\\nlast, without a newline'"


def test_human_output_is_the_verdict_then_the_reduce_output_whole() -> None:
    completed = run_with("--reduce", REDUCE_SCRIPT, values=("a", "c"))
    assert completed.returncode == 0
    verdict_at = completed.stdout.index("PASS all-succeed")
    after = completed.stdout[verdict_at:].split("\n", 1)[1]
    assert after == "first line\n\nlast, without a newline\n"  # a line end added


def test_quiet_prints_the_reduce_output_alone() -> None:
    completed = run_with("-q", "--reduce", REDUCE_SCRIPT, values=("a", "c"))
    assert completed.returncode == 0
    assert completed.stdout == "first line\n\nlast, without a newline\n"
    assert completed.stderr == ""
    failed = run_with("-q", "--reduce", "echo half; exit 4", values=("a", "c"))
    assert failed.returncode == 1
    assert failed.stdout == "half\n"  # stdout stays the reduce's; the failure goes to stderr
    assert failed.stderr.startswith("FAIL all-succeed: 2 of 2 succeeded; the reduce failed: exit 4")


def test_quiet_without_a_reduce_that_ran_prints_the_verdict() -> None:
    completed = run_with("-q", "--reduce", "echo never", values=("a", "b"))
    assert completed.returncode == 1
    assert completed.stdout.startswith("FAIL all-succeed") and "never" not in completed.stdout


def test_json_has_the_reduce_object_or_null() -> None:
    completed = run_with("--format", "json", "--reduce", REDUCE_SCRIPT, values=("a", "c"))
    document: dict[str, Any] = json.loads(completed.stdout)
    assert list(document)[:7] == ["fanout_result_version", "run_id", "details_dir", "manifest",
                                  "duration_ms", "verdict", "reduce"]  # fmt: skip
    reduce = document["reduce"]
    assert reduce["status"] == "success" and reduce["summary"] == "last, without a newline"
    assert reduce["output"] == "first line\n\nlast, without a newline"
    assert reduce["output_truncated"] is False and reduce["details_file"] == "reduce.json"
    skipped = run_with("--format", "json", "--reduce", "echo x", values=("b",))
    assert json.loads(skipped.stdout)["reduce"] is None
    none = run_with("--format", "json", values=("c",))
    assert json.loads(none.stdout)["reduce"] is None


def test_jsonl_run_ended_has_the_reduce() -> None:
    completed = run_with("--format", "jsonl", "--reduce", "echo x", values=("c",))
    last = json.loads(completed.stdout.splitlines()[-1])
    assert last["event"] == "run_ended" and last["reduce"]["status"] == "success"


def test_aop_block_has_the_reduce_as_its_first_summary_line() -> None:
    completed = run_with("--format", "aop", "--reduce-when", "always",
                         "--reduce", "echo line one; echo 'the answer'")
    lines = completed.stdout.splitlines()
    at = lines.index("[AOP:SUMMARY]")
    assert lines[at + 1] == "- success reduce: the answer -> reduce.json"
    assert lines[at + 2].startswith("- failure b: ")


def test_dry_run_shows_the_reduce_that_would_run() -> None:
    completed = run_fanout("run", "--dry-run", "--reduce", "jq -s length", "--", "echo", ":::", "a")
    assert completed.returncode == 0
    assert completed.stdout == ("echo a\n"
                                "# then, when the verdict passes, the reduce: jq -s length\n")
    assert completed.run_dirs() == []


def test_resume_runs_the_reduce_again_only_when_a_result_changed(tmp_path: Path) -> None:
    flag, count = tmp_path / "fixed", tmp_path / "count"
    task = f'echo "got $1"; test "$1" != b || test -e {flag}'
    reduce = f"echo run >> {count}; cat | wc -l"
    first = run_fanout("run", "--run-id", "r1", "--reduce-when", "always", "--reduce", reduce,
                       "--", "sh", "-c", task, "sh", "{}", ":::", "a", "b")
    assert first.returncode == 1 and count.read_text() == "run\n"
    flag.touch()
    fixed = run_fanout("run", "--resume-failed", "r1")
    assert_clean(fixed)
    assert fixed.returncode == 0, fixed.stderr
    assert count.read_text() == "run\nrun\n"  # b's result changed: the reduce ran again
    assert read_manifest(fixed.run_dir)["reduce"]["kept"] is False
    again = run_fanout("run", "--resume", "r1")
    assert again.returncode == 0, again.stderr
    assert count.read_text() == "run\nrun\n"  # nothing changed: the recorded one stands
    assert again.stdout.endswith("2\n")  # and is printed as before
    assert read_manifest(again.run_dir)["reduce"]["kept"] is True
    when = run_fanout("run", "--resume", "r1", "--reduce-when", "pass")
    assert when.returncode == 0 and count.read_text() == "run\nrun\n"  # when is not what
    changed = run_fanout("run", "--resume", "r1", "--reduce", f"echo run >> {count}")
    assert changed.returncode == 0 and count.read_text() == "run\nrun\nrun\n"  # a new reduce


def test_resume_runs_a_failed_reduce_again(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    first = run_fanout("run", "--run-id", "r2", "--reduce", f"test -e {flag} && echo ok",
                       "--", "echo", ":::", "a")
    assert first.returncode == 1
    flag.touch()
    again = run_fanout("run", "--resume", "r2")
    assert again.returncode == 0, again.stderr
    assert again.stdout.endswith("ok\n")


def test_a_link_planted_at_reduce_stdout_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep me\n")
    plant = f'ln -s {target} "$FANOUT_OUTPUT_DIR/planted/reduce.stdout"'
    completed = run_fanout("run", "--run-id", "planted", "--reduce", "echo overwritten",
                           "--", "sh", "-c", plant, ":::", "x")
    assert_clean(completed)
    assert target.read_text() == "keep me\n"
    assert completed.returncode == 1
    assert completed.manifest()["reduce"]["status"] == "error"
    assert (completed.run_dir / "reduce.stdout").is_symlink()


def test_a_reduce_that_reads_nothing_does_not_hold_up_the_run() -> None:
    values = [f"{n:04d}" + "x" * 400 for n in range(400)]  # far more than a pipe holds
    completed = run_fanout("run", "-j", "8", "--reduce", "exit 0", "--", "true", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    assert completed.manifest()["reduce"]["status"] == "success"


def test_a_reduce_reads_every_line_of_a_long_run() -> None:
    values = [str(n) for n in range(1, 1201)]
    completed = run_fanout("run", "-j", "8", "-q", "--reduce", "wc -l", "--", "true",
                           ":::", *values)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "1200"


def test_the_reduce_has_the_run_timeout() -> None:
    completed = run_fanout("run", "--timeout", "0.5", "--grace", "0.2", "--reduce", "sleep 30",
                           "--", "echo", ":::", "a")
    assert completed.returncode == 1, completed.stderr
    entry = completed.manifest()["reduce"]
    assert (entry["status"], entry["reason"]) == ("timeout", "timed out after 500ms")
    reason = completed.manifest()["verdict"]["reason"]
    assert reason.endswith("the reduce failed: timed out after 500ms")
    assert completed.manifest()["duration_ms"] >= 500  # the run's time includes the reduce


@needs_procfs
def test_ctrl_c_during_the_reduce_stops_it_and_says_so(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    reduce = f"sleep 30 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    with fanout_in_background("run", "--run-id", "int", "--grace", "2", "--reduce", reduce,
                              "--", "echo", ":::", "a") as process:
        wait_until(lambda: len(read_pids(pids, missing_ok=True)) == 2, "the reduce to start",
                   process=process)
        os.kill(process.pid, signal.SIGINT)
        stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert_all_gone(read_pids(pids))
    manifest = read_manifest(output_dir() / "int")
    assert manifest["status"] == "interrupted"
    assert manifest["reduce"]["status"] == "cancelled"
    assert manifest["verdict"]["reason"] == "interrupted by SIGINT during the reduce"
    assert b"FAIL all-succeed: interrupted by SIGINT during the reduce" in stdout


def test_a_record_that_cannot_be_written_ends_the_run_with_one_line() -> None:
    plant = 'mkdir "$FANOUT_OUTPUT_DIR/blocked/reduce.json"'
    completed = run_fanout("run", "--run-id", "blocked", "--reduce", "echo hi",
                           "--", "sh", "-c", plant, ":::", "x")
    assert_clean(completed)
    assert completed.returncode in (2, 74)
    assert completed.stderr.splitlines() == [
        f"fanout: error: {completed.run_dir}/reduce.json: cannot write: Is a directory"]
    manifest = completed.manifest()  # the run is still closed: its manifest says why
    assert manifest["status"] in ("input_error", "io_error")
    assert manifest["verdict"]["passed"] is False
    assert not (completed.run_dir / "lock").exists()


def test_show_reduce_prints_the_reduce_as_a_task(tmp_path: Path) -> None:
    run = run_fanout("run", "-q", "--reduce", "wc -l", "--", "echo", ":::", "a", "b")
    assert run.returncode == 0, run.stderr
    for name in ("reduce", "reduce.json", str(run.run_dir / "reduce.json")):
        shown = run_fanout("show", "last", name) if "/" not in name else run_fanout("show", name)
        assert shown.returncode == 0, shown.stderr
        header, _, body = shown.stdout.partition("----- stdout -----\n")
        assert header.startswith("success  reduce") and "command: wc -l" in header
        assert body.strip() == "2"
    missing = run_fanout("run", "-q", "--", "true", ":::", "x")
    assert missing.returncode == 0
    assert "no task 'reduce'" in run_fanout("show", "last", "reduce").stderr  # a run without one
