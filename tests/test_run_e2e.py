"""End to end: the installed `fanout` binary with real child processes.

Every test checks what a user or a script depends on (exit codes, files on disk, the
printed formats, leftover processes), never internals. Timing checks compare with the
schedule a wrong implementation would need, by generous ratios, because the machine
running them is shared and noisy."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.helpers import (
    FANOUT,
    Completed,
    assert_all_gone,
    assert_clean,
    details_by_id,
    journal_time,
    manifest_rows,
    needs_procfs,
    read_journal,
    read_pids,
    rows_by_id,
    run_fanout,
    run_json,
    write_tasks,
)

PY = sys.executable
TASKS = "tasks.toml"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
AOP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# --- building task files --------------------------------------------------------------


def toml_value(value: object) -> str:
    """A TOML literal; JSON's string escapes are valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML form for {value!r}")


def task(task_id: str | None, cmd: str | Sequence[str], **keys: object) -> str:
    """One [[task]] table."""
    lines = ["[[task]]"]
    if task_id is not None:
        lines.append(f"id = {toml_value(task_id)}")
    lines.append(f"cmd = {toml_value(cmd if isinstance(cmd, str) else list(cmd))}")
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def task_file(
    *tasks: str,
    run: Mapping[str, object] | None = None,
    defaults: Mapping[str, object] | None = None,
) -> str:
    """Write tasks.toml in the current (per-test) folder and return its name."""
    text = ""
    for name, table in (("run", run), ("defaults", defaults)):
        if table:
            text += f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
            text += "\n"
    write_tasks(Path(TASKS), text + "\n".join(tasks))
    return TASKS


def python(code: str) -> list[str]:
    return [PY, "-c", code]


# --- reading results ------------------------------------------------------------------


# --- processes ------------------------------------------------------------------------


def sleeper(pid_file: str, seconds: int = 30) -> list[str]:
    """Writes its pid, then becomes `sleep` under the same pid."""
    return ["sh", "-c", f"echo $$ > {pid_file}; exec sleep {seconds}"]


def wait_for_files(folder: str, count: int, then: str) -> list[str]:
    """A child-side handshake: wait until `count` files exist in `folder`, then run `then`."""
    return [
        "sh",
        "-c",
        f'while [ "$(ls {folder} | wc -l)" -lt {count} ]; do sleep 0.02; done; {then}',
    ]


# --- exit codes and errors ------------------------------------------------------------

ERROR_CASES: dict[str, tuple[str | None, list[str], list[str]]] = {
    # name: (task file text or None, extra args, fragments the error line must hold)
    "unknown key": (
        '[[task]]\nid = "a"\ncmd = ["true"]\ncolour = "red"\n',
        [],
        [f"{TASKS}:4", "colour"],
    ),
    "broken toml": (
        '[[task]]\nid = "a"\ncmd = = ["true"]\n',
        [],
        [f"{TASKS}:3", "TOML"],
    ),
    "missing file": (None, [], ["missing.toml"]),
    "bad --timeout": ('[[task]]\ncmd = ["true"]\n', ["--timeout", "5 parsecs"], ["--timeout"]),
    "bad --strategy": ('[[task]]\ncmd = ["true"]\n', ["--strategy", "sometimes"], ["--strategy"]),
    "--jobs 0%": ('[[task]]\ncmd = ["true"]\n', ["--jobs", "0%"], ["--jobs"]),
    "bad [run] value": (
        '[run]\njobs = 2\nstrategy = "sometimes"\n\n[[task]]\ncmd = ["true"]\n',
        [],
        [f"{TASKS}:3", "strategy"],
    ),
    "bad [run] type": (
        '[run]\ntimeout = true\n\n[[task]]\ncmd = ["true"]\n',
        [],
        [f"{TASKS}:2", "timeout"],
    ),
    "duplicate id": (
        '[[task]]\nid = "a"\ncmd = ["true"]\n\n[[task]]\nid = "a"\ncmd = ["true"]\n',
        [],
        [f"{TASKS}:6", "duplicate"],
    ),
    "cmd of wrong type": ('[[task]]\nid = "a"\ncmd = 5\n', [], [f"{TASKS}:3", "cmd"]),
    "empty task list": ("task = []\n", [], [TASKS, "no tasks"]),
    "bad --format": ('[[task]]\ncmd = ["true"]\n', ["--format", "yaml"], ["--format"]),
    "unsafe --run-id": ('[[task]]\ncmd = ["true"]\n', ["--run-id", "../escape"], ["--run-id"]),
    "output dir is a file": ('[[task]]\ncmd = ["true"]\n', ["--output-dir", TASKS], [TASKS]),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_usage_and_task_file_errors_exit_2_with_one_line(case: str, tmp_path: Path) -> None:
    text, extra, fragments = ERROR_CASES[case]
    name = "missing.toml"
    if text is not None:
        name = task_file(text)
    completed = run_fanout("run", name, *extra)
    assert completed.returncode == 2, completed
    assert_clean(completed)
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("fanout: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert completed.stdout == ""
    assert not (tmp_path / "out").exists(), "an invalid run must not create a run folder"


def test_reusing_a_run_id_is_exit_2_and_keeps_the_first_run() -> None:
    task_file(task("ok", ["true"]))
    assert run_fanout("run", TASKS, "-q", "--run-id", "nightly").returncode == 0
    first = (Path("out") / "nightly" / "manifest.json").read_bytes()
    again = run_fanout("run", TASKS, "-q", "--run-id", "nightly")
    assert again.returncode == 2
    assert_clean(again)
    assert len(again.stderr.splitlines()) == 1
    assert again.stderr.startswith("fanout: error: ")
    assert (Path("out") / "nightly" / "manifest.json").read_bytes() == first


def test_exit_0_when_every_task_passes_and_1_when_one_fails() -> None:
    task_file(task("ok", ["true"]), task("also-ok", ["sh", "-c", "exit 0"]))
    assert run_fanout("run", TASKS, "-q").returncode == 0
    task_file(task("ok", ["true"]), task("bad", ["sh", "-c", "exit 3"]))
    completed = run_fanout("run", TASKS, "-q", "--output-dir", "second")
    assert completed.returncode == 1
    assert_clean(completed)


# --- files on disk --------------------------------------------------------------------

AOP_HEADER = {"aop_version", "agent_id", "task", "timestamp", "duration_ms"}
FANOUT_FIELDS = {
    "run_id", "task_id", "seq", "kind", "command", "input", "origin", "status", "exit_code",
    "signal", "attempts", "started_at", "finished_at", "summary", "metrics", "score",
    "vote_key", "stdout", "stderr", "agent", "error",
}  # fmt: skip


def two_task_run() -> Completed:
    task_file(
        task("hello", ["sh", "-c", "echo to-out; echo to-err >&2"]),
        task("broken", "echo partial; echo went wrong >&2; exit 4"),
    )
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 1
    assert_clean(completed)
    return completed


def test_run_folder_holds_details_and_raw_outputs(tmp_path: Path) -> None:
    completed = two_task_run()
    run_dir = completed.run_dir
    assert run_dir.parent == tmp_path / "out"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700

    names = sorted(path.name for path in run_dir.iterdir())
    for base in ("0001-hello", "0002-broken"):
        assert {f"{base}.json", f"{base}.stdout", f"{base}.stderr"} <= set(names), names
    assert (run_dir / "0001-hello.stdout").read_bytes() == b"to-out\n"
    assert (run_dir / "0001-hello.stderr").read_bytes() == b"to-err\n"
    assert not [name for name in names if name.endswith(".tmp")], names

    hello = completed.details("0001-hello.json")
    missing = sorted((AOP_HEADER | FANOUT_FIELDS) - set(hello))
    assert not missing, missing
    assert hello["aop_version"] == "1.0.0"
    assert hello["agent_id"] == "hello" == hello["task_id"]
    assert isinstance(hello["task"], str) and hello["task"]
    assert ISO_MS.match(hello["timestamp"]), hello["timestamp"]
    assert isinstance(hello["duration_ms"], int) and hello["duration_ms"] >= 0
    assert hello["run_id"] == run_dir.name
    assert hello["seq"] == 1
    assert hello["status"] == "success"
    assert hello["exit_code"] == 0
    assert [attempt["attempt"] for attempt in hello["attempts"]] == [1]
    assert hello["summary"] == "to-out"
    assert hello["origin"].startswith(f"{TASKS}:")
    for stream, size, text in (("stdout", 7, "to-out"), ("stderr", 7, "to-err")):
        assert hello[stream]["path"] == f"0001-hello.{stream}"
        assert hello[stream]["bytes"] == size
        assert text in hello[stream]["excerpt"]

    broken = completed.details("0002-broken.json")
    assert broken["status"] == "failure"
    assert broken["exit_code"] == 4
    assert broken["summary"] == "went wrong (exit 4)"


def test_run_folder_holds_journal_and_manifest() -> None:
    completed = two_task_run()
    run_dir = completed.run_dir
    events = read_journal(run_dir)  # json.loads of every line
    kinds = [event["event"] for event in events]
    assert kinds[0] == "run_started"
    assert kinds[-1] == "run_ended"
    assert kinds.count("task_started") == 2
    assert kinds.count("task_ended") == 2
    assert all("time" in event for event in events)
    ended = {e["task_id"]: e["status"] for e in events if e["event"] == "task_ended"}
    assert ended == {"hello": "success", "broken": "failure"}

    manifest = completed.manifest()
    assert manifest["run_id"] == run_dir.name
    assert manifest["verdict"]["passed"] is False
    assert manifest["verdict"]["strategy"] == "all-succeed"
    assert manifest["verdict"]["counts"]["failure"] == 1
    rows = rows_by_id(manifest)
    assert rows["hello"]["status"] == "success"
    assert rows["hello"]["details_file"] == "0001-hello.json"
    assert rows["broken"]["status"] == "failure"
    assert rows["broken"]["summary"] == "went wrong (exit 4)"
    assert rows["broken"]["details_file"] == "0002-broken.json"


HOSTILE_IDS = [
    "../../etc/passwd",
    "a/b",
    "a_b",
    "x" * 5000,
    "ünïcødé-漢字-🙂",
    "/absolute/path",
    ".",
    "..",
]


def test_hostile_task_ids_stay_inside_the_run_folder_and_never_collide(tmp_path: Path) -> None:
    task_file(
        *(task(task_id, ["printf", "%s", f"output-{index}"]) for index, task_id in
          enumerate(HOSTILE_IDS, start=1))
    )  # fmt: skip
    completed = run_fanout("run", TASKS, "-q")
    assert completed.returncode == 0, completed
    assert_clean(completed)
    run_dir = completed.run_dir.resolve()

    everything = [path for path in tmp_path.rglob("*") if path.is_file()]
    outside = [path for path in everything if path.resolve().parent != run_dir]
    assert [path.name for path in outside] == [TASKS], outside
    assert not [path for path in run_dir.iterdir() if path.is_dir()]
    assert all(len(path.name.encode()) <= 255 for path in everything)

    rows = completed.manifest()["tasks"]
    assert [row["task_id"] for row in rows] == HOSTILE_IDS
    detail_names = [row["details_file"] for row in rows]
    assert len(set(detail_names)) == len(HOSTILE_IDS), detail_names
    for index, (task_id, row) in enumerate(zip(HOSTILE_IDS, rows, strict=True), start=1):
        name = row["details_file"]
        assert "/" not in name and (run_dir / name).resolve().parent == run_dir, name
        details = completed.details(name)
        assert details["agent_id"] == task_id
        assert details["task_id"] == task_id
        stdout_name = details["stdout"]["path"]
        assert "/" not in stdout_name
        assert (run_dir / stdout_name).read_text() == f"output-{index}"


def test_binary_output_is_stored_byte_exact(tmp_path: Path) -> None:
    every_byte = bytes(range(256))
    out_data = every_byte * 4 + os.urandom(3 << 20) + every_byte
    err_data = every_byte[::-1] + os.urandom(2 << 20) + b"\x00\r\n\xff"
    (tmp_path / "out.bin").write_bytes(out_data)
    (tmp_path / "err.bin").write_bytes(err_data)
    copy = (
        "import shutil, sys\n"
        "with open('out.bin', 'rb') as f: shutil.copyfileobj(f, sys.stdout.buffer)\n"
        "with open('err.bin', 'rb') as f: shutil.copyfileobj(f, sys.stderr.buffer)\n"
    )
    task_file(task("binary", python(copy)))
    completed = run_fanout("run", TASKS, "-q")
    assert completed.returncode == 0, completed
    assert_clean(completed)
    details = completed.details("0001-binary.json")
    assert (completed.run_dir / details["stdout"]["path"]).read_bytes() == out_data
    assert (completed.run_dir / details["stderr"]["path"]).read_bytes() == err_data
    assert details["stdout"]["bytes"] == len(out_data)
    assert details["stderr"]["bytes"] == len(err_data)


def test_secret_env_values_never_reach_the_disk(tmp_path: Path) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    secret_env = {
        "API_KEY": f"{secret}-key",
        "GITHUB_TOKEN": f"{secret}-token",
        "CLIENT_SECRET": f"{secret}-secret",
        "DB_PASSWORD": f"{secret}-password",
    }
    (tmp_path / "expected.json").write_text(json.dumps({**secret_env, "DEFAULT_API_KEY": secret}))
    check = (
        "import json, os\n"
        "expected = json.load(open('expected.json'))\n"
        "wrong = [name for name, value in expected.items() if os.environ.get(name) != value]\n"
        "print('env ok' if not wrong else 'env wrong: ' + ' '.join(wrong))\n"
        "raise SystemExit(1 if wrong else 0)\n"
    )
    task_file(
        task("uses-secrets", python(check), env={**secret_env, "PLAIN_SETTING": "visible"}),
        defaults={"env": {"DEFAULT_API_KEY": secret}},
    )
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 0, completed
    assert_clean(completed)
    details = completed.details("0001-uses-secrets.json")
    assert details["summary"] == "env ok"
    env = details["env"]
    for name in [*secret_env, "DEFAULT_API_KEY"]:
        assert env[name] == "***", (name, env)
    assert env["PLAIN_SETTING"] == "visible"
    leaks = [p.name for p in completed.run_dir.iterdir() if secret.encode() in p.read_bytes()]
    assert not leaks, f"the secret was written to {leaks}"
    assert secret not in completed.stdout + completed.stderr


def test_summaries_prefer_the_aop_block_then_the_last_line_then_stderr_with_reason() -> None:
    task_file(
        task("block", ["printf", "noise\\n[AOP:SUMMARY] all good here\\n[AOP:STATUS] success\\n"
                                 "trailing chatter\\n"]),
        task("last-line", ["printf", "first\\nsecond\\n\\n   \\n"]),
        task("fails", "echo out-line; echo first-err >&2; echo last-err >&2; exit 3"),
        task("fails-quietly", ["sh", "-c", "echo only-stdout; exit 5"]),
        task("long", python("print('y' * 300 + 'END')")),
    )  # fmt: skip
    completed = run_fanout("run", TASKS, "--summary-chars", "40")
    assert completed.returncode == 1
    assert_clean(completed)
    rows = manifest_rows(completed)
    assert rows["block"]["summary"] == "all good here"
    assert rows["last-line"]["summary"] == "second"
    assert rows["fails"]["summary"] == "last-err (exit 3)"
    assert rows["fails-quietly"]["summary"] == "only-stdout (exit 5)"
    long_summary = rows["long"]["summary"]
    assert 0 < len(long_summary) <= 40, long_summary
    assert long_summary.startswith("yyyy")
    for row in rows.values():
        assert row["summary"] in completed.stdout


# --- timeouts, grace, deadline and early ends -----------------------------------------


@needs_procfs
def test_timeout_ends_the_task_and_its_whole_process_group(tmp_path: Path) -> None:
    task_file(task("hang", ["sh", "-c", "sleep 100 & echo $! > pids; echo $$ >> pids; sleep 100"]))
    started = time.monotonic()
    completed = run_fanout("run", TASKS, "--timeout", "0.5s", "--grace", "20s")
    elapsed = time.monotonic() - started
    assert completed.returncode == 1, completed
    assert_clean(completed)
    details = completed.details("0001-hang.json")
    assert details["status"] == "timeout"
    assert details["reason"].startswith("timed out after"), details["reason"]
    assert "timed out after" in details["summary"]
    pids = read_pids(tmp_path / "pids")
    assert len(pids) == 2
    assert_all_gone(pids)
    # sleep obeys SIGTERM, so the 20 s grace must not have been waited out.
    assert elapsed < 10, elapsed


@needs_procfs
def test_grace_then_sigkill_for_a_task_that_ignores_sigterm(tmp_path: Path) -> None:
    task_file(
        task("stubborn", ["sh", "-c", "trap '' TERM; echo $$ > stubborn.pid; sleep 100 & "
                                      "echo $! >> stubborn.pid; wait"]),
        task("polite", ["sh", "-c", "echo $$ > polite.pid; exec sleep 100"]),
    )  # fmt: skip
    completed = run_fanout("run", TASKS, "--timeout", "0.3s", "--grace", "0.7s", "-j", "2")
    assert completed.returncode == 1, completed
    assert_clean(completed)
    stubborn = details_by_id(completed, "stubborn")
    polite = details_by_id(completed, "polite")
    assert stubborn["status"] == polite["status"] == "timeout"
    assert stubborn["signal"] == 9, stubborn  # SIGKILL, after the grace
    assert polite["signal"] == 15, polite  # SIGTERM was enough
    # Lower bounds only: a loaded machine makes things slower, never faster.
    assert stubborn["duration_ms"] >= (0.3 + 0.7) * 1000 * 0.95, stubborn["duration_ms"]
    assert polite["duration_ms"] < stubborn["duration_ms"]
    assert_all_gone(read_pids(tmp_path / "stubborn.pid", tmp_path / "polite.pid"))


@needs_procfs
def test_deadline_ends_running_and_waiting_tasks_as_timeout(tmp_path: Path) -> None:
    task_file(
        task("quick", ["echo", "done"]),
        task("slow-1", sleeper("slow-1.pid")),
        task("slow-2", sleeper("slow-2.pid")),
        task("never-started", sleeper("never.pid")),
    )
    started = time.monotonic()
    completed = run_fanout("run", TASKS, "-j", "2", "--deadline", "1s", "--grace", "20s")
    elapsed = time.monotonic() - started
    assert completed.returncode == 1, completed
    assert_clean(completed)
    rows = manifest_rows(completed)
    assert rows["quick"]["status"] == "success"
    for name in ("slow-1", "slow-2", "never-started"):
        assert rows[name]["status"] == "timeout", rows[name]
    assert "deadline" in details_by_id(completed, "slow-1")["reason"]
    assert not (tmp_path / "never.pid").exists()
    assert_all_gone(read_pids(tmp_path / "slow-1.pid", tmp_path / "slow-2.pid"))
    assert elapsed < 10, elapsed


@needs_procfs
def test_first_n_succeed_cancels_the_rest_and_leaves_no_child(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    sleepers = [task(f"sleeper-{n}", sleeper(f"pids/{n}")) for n in range(1, 10)]
    task_file(task("winner", wait_for_files("pids", 9, "sleep 0.2; echo found it")), *sleepers)
    started = time.monotonic()
    completed = run_fanout(
        "run", TASKS, "--strategy", "first-n-succeed", "--required-successes", "1",
        "-j", "10", "--grace", "20s",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert completed.returncode == 0, completed
    assert_clean(completed)
    rows = manifest_rows(completed)
    assert rows["winner"]["status"] == "success"
    assert rows["winner"]["summary"] == "found it"
    assert {rows[f"sleeper-{n}"]["status"] for n in range(1, 10)} == {"cancelled"}
    assert completed.manifest()["verdict"]["passed"] is True
    assert_all_gone(read_pids(*sorted((tmp_path / "pids").iterdir())))
    # The sleepers take 30 s and the grace is 20 s: neither may be waited out.
    assert elapsed < 10, elapsed


@needs_procfs
def test_fail_fast_stops_the_run_at_the_first_failure(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    sleepers = [task(f"sleeper-{n}", sleeper(f"pids/{n}")) for n in range(1, 4)]
    waiting = task("waiting", sleeper("waiting.pid"))
    task_file(task("fails", wait_for_files("pids", 3, "echo bad >&2; exit 1")), *sleepers, waiting)
    started = time.monotonic()
    completed = run_fanout("run", TASKS, "--fail-fast", "-j", "4", "--grace", "20s")
    elapsed = time.monotonic() - started
    assert completed.returncode == 1, completed
    assert_clean(completed)
    rows = manifest_rows(completed)
    assert rows["fails"]["status"] == "failure"
    assert {rows[f"sleeper-{n}"]["status"] for n in range(1, 4)} == {"cancelled"}
    assert rows["waiting"]["status"] == "cancelled"
    assert not (tmp_path / "waiting.pid").exists()
    assert_all_gone(read_pids(*sorted((tmp_path / "pids").iterdir())))
    assert elapsed < 10, elapsed


def test_sliding_window_starts_short_tasks_while_a_long_one_runs() -> None:
    long_seconds, short_count = 1.5, 8
    shorts = [task(f"short-{n}", ["sleep", "0.1"]) for n in range(1, short_count + 1)]
    task_file(task("long", ["sleep", str(long_seconds)]), *shorts)
    completed = run_fanout("run", TASKS, "-j", "2", "-q")
    assert completed.returncode == 0, completed
    assert_clean(completed)

    events = [e for e in read_journal(completed.run_dir) if e["event"].startswith("task_")]
    in_flight = peak = 0
    for event in events:
        in_flight += 1 if event["event"] == "task_started" else -1
        peak = max(peak, in_flight)
    assert peak == 2, "-j 2 must keep exactly two tasks in flight"

    # In journal order: how many short tasks started before the long one ended. A
    # batching scheduler starts exactly one (its batch partner); a window starts nearly all.
    long_end = next(i for i, e in enumerate(events) if e["event"] == "task_ended" and e["seq"] == 1)
    early = [e for e in events[:long_end] if e["event"] == "task_started" and e["seq"] > 1]
    assert len(early) >= 3, events

    # Wall time against the batch schedule of the very same measured durations.
    durations = [row["duration_ms"] / 1000 for row in completed.manifest()["tasks"]]
    batched = sum(max(durations[i : i + 2]) for i in range(0, len(durations), 2))
    span = journal_time(events[-1]) - journal_time(events[0])
    assert span < 0.9 * batched, (span, batched, durations)


# --- retries and start errors ---------------------------------------------------------


def test_first_n_succeed_stops_once_success_becomes_impossible(tmp_path: Path) -> None:
    task_file(
        task("fails-now", ["false"]),
        task("fails-soon", ["sh", "-c", "sleep 0.2; exit 1"]),
        task("sleeps", sleeper("sleeps.pid")),
    )
    started = time.monotonic()
    completed = run_fanout(
        "run", TASKS, "--strategy", "first-n-succeed", "--required-successes", "2",
        "-j", "3", "--grace", "20s",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert completed.returncode == 1, completed
    assert_clean(completed)
    assert manifest_rows(completed)["sleeps"]["status"] == "cancelled"
    if (tmp_path / "sleeps.pid").exists():
        assert_all_gone(read_pids(tmp_path / "sleeps.pid"))
    assert elapsed < 10, elapsed


def test_retries_until_success_and_keeps_every_attempts_output() -> None:
    flaky = (
        "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count; "
        'echo "attempt $n"; echo "err $n" >&2; [ "$n" -ge 3 ]'
    )
    task_file(task("flaky", ["sh", "-c", flaky]))
    completed = run_fanout("run", TASKS, "--retries", "3", "--retry-delay", "0.05")
    assert completed.returncode == 0, completed
    assert_clean(completed)
    details = completed.details("0001-flaky.json")
    assert details["status"] == "success"
    attempts = details["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["status"] for a in attempts] == ["failure", "failure", "success"]
    run_dir = completed.run_dir
    for number in (1, 2):
        assert attempts[number - 1]["stdout"] == f"0001-flaky.a{number}.stdout"
        assert (run_dir / f"0001-flaky.a{number}.stdout").read_text() == f"attempt {number}\n"
        assert (run_dir / f"0001-flaky.a{number}.stderr").read_text() == f"err {number}\n"
    assert (run_dir / "0001-flaky.stdout").read_text() == "attempt 3\n"
    assert manifest_rows(completed)["flaky"]["attempts"] == 3
    assert Path("count").read_text().strip() == "3"


def test_a_timed_out_attempt_is_retried(tmp_path: Path) -> None:
    slow_twice = (
        "n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count; "
        'echo "try $n"; [ "$n" -ge 3 ] || exec sleep 30'
    )
    task_file(task("slow-start", ["sh", "-c", slow_twice], timeout="0.3s", retries=2))
    completed = run_fanout("run", TASKS, "--retry-delay", "0.05", "--grace", "20s")
    assert completed.returncode == 0, completed
    assert_clean(completed)
    details = completed.details("0001-slow-start.json")
    assert details["status"] == "success"
    assert [a["status"] for a in details["attempts"]] == ["timeout", "timeout", "success"]
    assert details["attempts"][0]["reason"].startswith("timed out after")
    assert (completed.run_dir / "0001-slow-start.a2.stdout").read_text() == "try 2\n"
    assert details["summary"] == "try 3"


def test_start_errors_are_status_error_and_not_retried(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    task_file(
        task("not-found", ["no-such-command-fanout-e2e", "arg"]),
        task("bad-cwd", ["true"], cwd="no/such/folder"),
        task("not-executable", ["./not-executable.sh"]),
        task("fine", ["true"]),
    )
    completed = run_fanout("run", TASKS, "--retries", "2", "--retry-delay", "0.05")
    assert completed.returncode == 1, completed
    assert_clean(completed)
    expected_reasons = {
        "not-found": "command not found",
        "bad-cwd": "no/such/folder",
        "not-executable": "permission denied",
    }
    for task_id, reason in expected_reasons.items():
        details = details_by_id(completed, task_id)
        assert details["status"] == "error", details
        assert reason in details["reason"], details["reason"]
        assert details["error"] == details["reason"]
        assert reason in details["summary"]
        assert len(details["attempts"]) == 1, details["attempts"]
    assert manifest_rows(completed)["fine"]["status"] == "success"
    assert completed.manifest()["verdict"]["counts"]["error"] == 3


# --- ok-exit --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["command line", "[run]", "[defaults]", "task"])
def test_ok_exit_makes_grep_without_a_match_a_success(where: str, tmp_path: Path) -> None:
    (tmp_path / "haystack.txt").write_text("hay\nstraw\n")
    args: list[str] = ["--ok-exit", "0,1"] if where == "command line" else []
    per_task: dict[str, object] = {"ok_exit": [0, 1]} if where == "task" else {}
    task_file(
        task("no-match", ["grep", "needle", "haystack.txt"], **per_task),
        task("match", ["grep", "hay", "haystack.txt"], **per_task),
        task("grep-error", ["grep", "needle", "missing.txt"], **per_task),
        run={"ok_exit": [0, 1]} if where == "[run]" else None,
        defaults={"ok_exit": [0, 1]} if where == "[defaults]" else None,
    )
    completed, document = run_json(TASKS, *args)
    assert completed.returncode == 1, completed  # grep's exit 2 is still a failure
    rows = rows_by_id(document)
    assert rows["no-match"]["status"] == "success"
    assert rows["no-match"]["exit_code"] == 1
    assert rows["match"]["status"] == "success"
    assert rows["grep-error"]["status"] == "failure"
    assert rows["grep-error"]["exit_code"] == 2


def test_without_ok_exit_grep_without_a_match_fails(tmp_path: Path) -> None:
    (tmp_path / "haystack.txt").write_text("hay\n")
    task_file(task("no-match", ["grep", "needle", "haystack.txt"]))
    completed, document = run_json(TASKS)
    assert completed.returncode == 1
    assert rows_by_id(document)["no-match"]["status"] == "failure"


# --- strategies -----------------------------------------------------------------------


def test_best_of_n_picks_the_highest_aop_score() -> None:
    task_file(
        task("low", ["printf", "draft\\n[AOP:SCORE] 0.3\\n"]),
        task("high", ["printf", "draft\\n[AOP:SCORE] 0.9\\n"]),
        task("middle", ["printf", "draft\\n[AOP:SCORE] 0.5\\n"]),
        task("tied-later", ["printf", "draft\\n[AOP:SCORE] 0.9\\n"]),
        task("failed-high", ["sh", "-c", "echo '[AOP:SCORE] 0.99'; exit 1"]),
    )
    completed, document = run_json(TASKS, "--strategy", "best-of-n")
    assert completed.returncode == 0, completed
    verdict = document["verdict"]
    assert verdict["passed"] is True
    assert verdict["strategy"] == "best-of-n"
    assert verdict["winner"] == {"task_id": "high", "score": 0.9}


def test_best_of_n_with_a_score_regex() -> None:
    task_file(
        task("a", ["printf", "score=12\\n"]),
        task("b", ["printf", "score=30\\nnoise\\n"]),
        task("c", ["printf", "score=7\\n"]),
    )
    completed, document = run_json(
        TASKS, "--strategy", "best-of-n", "--score", r"score=(\d+)"
    )
    assert completed.returncode == 0, completed
    assert document["verdict"]["winner"] == {"task_id": "b", "score": 30}


def test_best_of_n_fails_when_nothing_succeeds() -> None:
    task_file(task("a", ["false"]), task("b", ["sh", "-c", "echo '[AOP:SCORE] 1'; exit 2"]))
    completed, document = run_json(TASKS, "--strategy", "best-of-n")
    assert completed.returncode == 1
    assert document["verdict"]["passed"] is False
    assert document["verdict"]["winner"] is None


def test_majority_vote_on_normalised_stdout() -> None:
    task_file(
        task("a", ["printf", "42\\n"]),
        task("b", ["printf", "  42 \\n\\n"]),
        task("c", ["printf", "41\\n"]),
    )
    completed, document = run_json(TASKS, "--strategy", "majority-vote", "-j", "1")
    assert completed.returncode == 0, completed
    verdict = document["verdict"]
    assert verdict["passed"] is True
    assert verdict["winner"] == {"vote_key": "42", "votes": 2, "task_ids": ["a", "b"]}
    # The majority was decided after two votes; the third task was not needed.
    assert rows_by_id(document)["c"]["status"] == "cancelled"


def test_majority_vote_without_a_majority_fails() -> None:
    task_file(
        task("a", ["echo", "1"]), task("b", ["echo", "2"]), task("c", ["echo", "3"]),
    )  # fmt: skip
    completed, document = run_json(TASKS, "--strategy", "majority-vote")
    assert completed.returncode == 1
    assert document["verdict"]["passed"] is False


@pytest.mark.parametrize(("ratio", "passes"), [("0.75", True), ("0.8", False)])
def test_partial_success_with_a_min_success_ratio(ratio: str, passes: bool) -> None:
    task_file(
        task("a", ["true"]), task("b", ["true"]), task("c", ["false"]), task("d", ["true"]),
    )  # fmt: skip
    completed, document = run_json(
        TASKS, "--strategy", "partial-success", "--min-success-ratio", ratio
    )
    assert completed.returncode == (0 if passes else 1), completed
    assert document["verdict"]["passed"] is passes
    assert document["verdict"]["counts"] == {
        "tasks": 4, "success": 3, "failure": 1, "timeout": 0, "cancelled": 0, "error": 0,
    }  # fmt: skip


# --- output formats -------------------------------------------------------------------


def mixed_tasks() -> str:
    return task_file(
        task("first-ok", ["echo", "one"]),
        task("breaks", ["sh", "-c", "echo broke >&2; exit 2"]),
        task("second-ok", ["echo", "two"]),
    )


def test_human_format_prints_a_line_per_task_then_the_verdict() -> None:
    mixed_tasks()
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 1
    assert_clean(completed)
    lines = completed.stdout.splitlines()
    assert len(lines) == 4, lines
    task_lines = sorted(lines[:3])
    assert task_lines[0].startswith("failure") and "breaks" in task_lines[0]
    assert "broke (exit 2)" in task_lines[0]
    assert task_lines[1].startswith("success") and "first-ok" in task_lines[1]
    assert task_lines[2].startswith("success") and "second-ok" in task_lines[2]
    assert lines[3].startswith("FAIL"), lines[3]
    assert "\x1b[" not in completed.stdout  # NO_COLOR


def test_human_format_verdict_line_starts_with_pass() -> None:
    task_file(task("ok", ["echo", "fine"]))
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 0
    assert completed.stdout.splitlines()[-1].startswith("PASS")


def test_quiet_prints_only_the_verdict_line() -> None:
    mixed_tasks()
    completed = run_fanout("run", TASKS, "-q")
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("FAIL")


def test_json_format_is_one_versioned_document() -> None:
    mixed_tasks()
    completed, document = run_json(TASKS)
    assert completed.returncode == 1
    assert document["fanout_result_version"] == 1
    assert document["run_id"] == completed.run_dir.name
    assert Path(document["details_dir"]).resolve() == completed.run_dir.resolve()
    verdict = document["verdict"]
    assert {"passed", "strategy", "reason", "winner", "counts"} <= set(verdict)
    assert verdict["passed"] is False
    assert verdict["counts"]["tasks"] == 3
    assert [row["task_id"] for row in document["tasks"]] == ["first-ok", "breaks", "second-ok"]
    for row in document["tasks"]:
        expected = {"task_id", "seq", "status", "exit_code", "duration_ms", "attempts", "summary",
                    "details_file"}  # fmt: skip
        assert expected <= set(row), row
        assert (completed.run_dir / row["details_file"]).is_file()


def test_aop_format_block() -> None:
    task_file(
        task("ok-1", ["echo", "alpha"]),
        task("bad", ["sh", "-c", "echo kaput >&2; exit 1"]),
        task("ok-2", ["echo", "beta"]),
    )
    completed = run_fanout("run", TASKS, "--format", "aop")
    assert completed.returncode == 1
    assert_clean(completed)
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("[AOP:START] ")
    assert AOP_TIME.match(lines[0].split(" ", 1)[1]), lines[0]
    assert lines[1] == f"[AOP:TASK] fanout run {TASKS}: 3 tasks, all-succeed"
    assert lines[2] == "[AOP:SUMMARY]"
    pointer = "-> {0}.json; stdout {0}.stdout ({1})"
    empty = pointer.format("0002-bad", "0 bytes, 0 lines")
    assert lines[3] == "- failure bad: kaput (exit 1) " + empty
    assert lines[4] == "- success ok-1: alpha " + pointer.format("0001-ok-1", "6 bytes, 1 line")
    assert lines[5] == "- success ok-2: beta " + pointer.format("0003-ok-2", "5 bytes, 1 line")
    assert lines[6].startswith("[AOP:DETAILS_FILE] ")
    manifest = Path(lines[6].split(" ", 1)[1])
    assert manifest.name == "manifest.json" and manifest.is_file()
    assert lines[7].startswith(
        "[AOP:METRICS] tasks: 3, success: 2, failure: 1, timeout: 0, cancelled: 0, error: 0, "
        "duration: "
    ), lines[7]
    assert lines[8] == "[AOP:VERDICT] fail strategy=all-succeed"
    assert lines[9] == "[AOP:STATUS] failure"
    assert lines[10].startswith("[AOP:END] ")
    assert AOP_TIME.match(lines[10].split(" ", 1)[1]), lines[10]
    assert len(lines) == 11, lines


@pytest.mark.parametrize(
    ("strategy_args", "expected_status"),
    [
        ([], "success"),
        (["--strategy", "partial-success", "--min-successes", "2"], "partial"),
        (["--strategy", "partial-success", "--min-successes", "6"], "failure"),
    ],
)
def test_aop_status_and_max_lines(strategy_args: list[str], expected_status: str) -> None:
    tables = [task(f"ok-{n}", ["echo", f"value {n}"]) for n in range(1, 6)]
    if expected_status != "success":
        tables.append(task("bad", ["false"]))
    task_file(*tables)
    completed = run_fanout("run", TASKS, "--format", "aop", "--max-lines", "2", *strategy_args)
    assert completed.returncode == (1 if expected_status == "failure" else 0), completed
    lines = completed.stdout.splitlines()
    start = lines.index("[AOP:SUMMARY]") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("[AOP:DETAILS_FILE]"))
    summary = lines[start:end]
    assert len(summary) == 3, summary
    if expected_status == "success":
        assert summary[0].startswith("- success ok-1:")
        assert summary[2].startswith("... 3 more"), summary
    else:
        assert summary[0].startswith("- failure bad:"), summary  # failures first
        assert summary[1].startswith("- success ok-1:")
        assert summary[2].startswith("... 4 more"), summary
    assert f"[AOP:STATUS] {expected_status}" in lines


def test_jsonl_format_every_line_is_json() -> None:
    mixed_tasks()
    completed = run_fanout("run", TASKS, "--format", "jsonl")
    assert completed.returncode == 1
    assert_clean(completed)
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds.count("task_started") == 3
    assert kinds.count("task_ended") == 3
    assert kinds[-1] == "run_ended"
    assert events[-1]["verdict"]["passed"] is False


@pytest.mark.parametrize("output_format", ["human", "aop", "json", "jsonl"])
def test_full_task_output_is_never_printed(output_format: str, tmp_path: Path) -> None:
    blob_lines = [uuid.uuid4().hex * 2 for _ in range(160)]  # 160 x 64 chars: 10 KB
    (tmp_path / "blob.txt").write_text("\n".join(blob_lines) + "\n")
    task_file(task("chatty", ["sh", "-c", "cat blob.txt; cat blob.txt >&2; echo finished"]))
    completed = run_fanout("run", TASKS, "--format", output_format)
    assert completed.returncode == 0, completed
    assert_clean(completed)
    printed = completed.stdout + completed.stderr
    leaked = [line for line in blob_lines if line in printed]
    assert not leaked, f"{len(leaked)} lines of task output were printed"
    stored = (completed.run_dir / "0001-chatty.stdout").read_text()
    assert all(line in stored for line in blob_lines)


# --- the portable child watcher -------------------------------------------------------


@needs_procfs
@pytest.mark.parametrize("watcher", ["default", "sigchld"])
def test_child_watchers_behave_the_same(watcher: str, tmp_path: Path) -> None:
    env = {"FANOUT_CHILD_WATCHER": "sigchld"} if watcher == "sigchld" else {}
    quick = [task(f"quick-{n}", ["sh", "-c", f"echo quick {n}"]) for n in range(1, 31)]
    task_file(
        *quick,
        task("hangs", ["sh", "-c", "sleep 100 & echo $! > hangs.pid; echo $$ >> hangs.pid; wait"],
             timeout="1s"),
        task("cancelled", sleeper("cancelled.pid")),
        task("ends-ok", ["sh", "-c", "sleep 0.1; echo late"]),
    )  # fmt: skip
    # The quick tasks and ends-ok finish first; the timeout of `hangs` then triggers
    # --fail-fast, which must cancel `cancelled`.
    started = time.monotonic()
    completed = run_fanout("run", TASKS, "-j", "8", "--fail-fast", "--grace", "20s", env=env)
    elapsed = time.monotonic() - started
    assert completed.returncode == 1, completed
    assert_clean(completed)
    rows = manifest_rows(completed)
    for n in range(1, 31):
        assert rows[f"quick-{n}"]["status"] == "success"
        assert rows[f"quick-{n}"]["summary"] == f"quick {n}"
    assert rows["ends-ok"]["status"] == "success"
    assert rows["hangs"]["status"] == "timeout"
    assert rows["cancelled"]["status"] == "cancelled"
    assert_all_gone(read_pids(tmp_path / "hangs.pid", tmp_path / "cancelled.pid"))
    assert elapsed < 10, elapsed


# --- the two ways a child starts: posix_spawn, and Popen for a cwd ---------------------


@needs_procfs
def test_tasks_with_a_cwd_run_there_and_still_stop_as_a_group(tmp_path: Path) -> None:
    """A cwd is the one case started through Popen: same output, exit codes, timeout."""
    (tmp_path / "sub dir").mkdir()
    task_file(
        task("where", ["pwd"], cwd="sub dir"),
        task("fails-there", "echo nope >&2; exit 3", cwd="sub dir"),
        task("hangs-there", "sleep 100 & echo $! > ../pids; echo $$ >> ../pids; wait",
             cwd="sub dir", timeout="0.5s"),
    )  # fmt: skip
    completed = run_fanout("run", TASKS, "-j", "3", "--grace", "20s")
    assert completed.returncode == 1, completed
    rows = manifest_rows(completed)
    assert rows["where"]["status"] == "success"
    assert rows["where"]["summary"] == str(tmp_path / "sub dir")
    assert rows["fails-there"]["status"] == "failure"
    assert rows["fails-there"]["summary"] == "nope (exit 3)"
    assert rows["hangs-there"]["status"] == "timeout"
    assert_all_gone(read_pids(tmp_path / "pids"))


def test_a_tasks_own_env_and_path_reach_the_child(tmp_path: Path) -> None:
    """posix_spawn gets the merged environment, and the program is looked up on the
    task's own PATH when it sets one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "only-here"
    tool.write_text("#!/bin/sh\necho \"found with $GREETING\"\n")
    tool.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    task_file(
        task("own-path", ["only-here"], env={"PATH": path, "GREETING": "hello"}),
        task("no-path", ["only-here"]),
    )
    completed = run_fanout("run", TASKS)
    assert completed.returncode == 1, completed
    rows = manifest_rows(completed)
    assert rows["own-path"]["status"] == "success"
    assert rows["own-path"]["summary"] == "found with hello"
    assert rows["no-path"]["status"] == "error"
    assert rows["no-path"]["summary"] == "command not found: only-here"


def test_rate_caps_how_often_process_attempts_start() -> None:
    """--rate 3/s over seven quick tasks at -j 7: at most 3 starts in any second, so
    the seventh starts two seconds after the first."""
    completed = run_fanout("run", "--rate", "3/s", "-j", "7", "--", "true", ":::", *"abcdefg")
    assert completed.returncode == 0, completed.stderr
    starts = sorted(
        journal_time(event)
        for event in read_journal(completed.run_dir)
        if event["event"] == "task_started"
    )
    assert len(starts) == 7
    for first, fourth in zip(starts, starts[3:], strict=False):
        assert fourth - first >= 0.99, starts  # journal times are in milliseconds
    assert starts[-1] - starts[0] >= 1.99
    assert completed.manifest()["options"]["rate"] == "3/s"


def test_rate_must_say_per_what() -> None:
    completed = run_fanout("run", "--rate", "60", "--", "true", ":::", "a")
    assert completed.returncode == 2
    assert "--rate: expected a rate such as 60/min" in completed.stderr
    assert_clean(completed)


@pytest.mark.parametrize("output_format", ["human", "jsonl"])
def test_a_closed_stdout_stops_the_run_as_sigpipe(output_format: str, tmp_path: Path) -> None:
    """`fanout run | head -1`: no traceback, exit 141 (128 + SIGPIPE), the tasks still
    running are stopped and the run is recorded as interrupted."""
    script = (
        f"seq 1 50 | {FANOUT} run -j 2 --format {output_format} -- sh -c 'echo $1; sleep 0.2'"
        " sh {} | head -1; echo \"status=${PIPESTATUS[1]}\""
    )
    completed = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                               timeout=60, check=False)
    assert completed.stdout.strip().splitlines()[-1] == "status=141", completed.stderr
    assert completed.stderr == ""
    [run_dir] = list((tmp_path / "out").iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["verdict"]["counts"]["tasks"] < 50
