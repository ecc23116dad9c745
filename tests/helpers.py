"""What the tests share: running the installed `fanout`, reading a run folder, waiting
with a deadline, and checking the processes a run leaves. Fixtures live in conftest.py.

Every helper here reads what a user or a script sees (the binary, its exit code and
output, the files of the run folder), never fanout's internals, so that the package
can be reshaped without touching the tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fanout_cli.models import RunReport, Verdict

FANOUT = Path(sys.executable).with_name("fanout")
WAIT_SECONDS = 20.0  # deadlines are generous: the machine is shared and slow at times
POLL_SECONDS = 0.01

# Where CI systems say which job of a matrix this is: fanout reads them for --shard.
SHARD_VARIABLES = (
    "FANOUT_SHARD",
    "CI_NODE_INDEX", "CI_NODE_TOTAL",
    "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT",
    "SEMAPHORE_JOB_INDEX", "SEMAPHORE_JOB_COUNT",
)  # fmt: skip

needs_procfs = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="leftover checks read /proc"
)


# --- running fanout ---------------------------------------------------------------------


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path

    def run_dirs(self) -> list[Path]:
        if not self.output_dir.exists():
            return []
        return sorted(p for p in self.output_dir.iterdir() if p.is_dir())

    @property
    def run_dir(self) -> Path:
        dirs = self.run_dirs()
        assert len(dirs) == 1, f"expected one run folder, found {dirs}"
        return dirs[0]

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.run_dir)

    def details(self, name: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.run_dir / name).read_text())
        return document


def output_dir() -> Path:
    """The output folder of the current test (conftest points FANOUT_OUTPUT_DIR at it)."""
    return Path(os.environ["FANOUT_OUTPUT_DIR"])


def run_fanout(
    *args: str, input: bytes | None = None, timeout: float = 30, env: dict[str, str] | None = None
) -> Completed:
    """Run the installed `fanout` console script as a user would."""
    completed = subprocess.run(
        [str(FANOUT), *args],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Completed(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
        output_dir(),
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> tuple[Completed, dict[str, Any]]:
    """`fanout run --format json ARGS...` and the document it printed."""
    completed = run_fanout("run", "--format", "json", *args, env=env)
    assert "Traceback" not in completed.stderr, completed.stderr
    assert completed.stdout, completed.stderr
    document: dict[str, Any] = json.loads(completed.stdout)
    return completed, document


def write_tasks(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_clean(completed: Completed) -> None:
    """fanout did not crash: no traceback and no internal error on stderr."""
    assert "Traceback" not in completed.stderr, completed.stderr
    assert "internal error" not in completed.stderr, completed.stderr


def one_error_line(completed: Completed, *, no_run_folder: bool = False) -> str:
    """A usage error: exit 2 and exactly one line on stderr, no traceback; with
    `no_run_folder`, also that the error created no run folder (nothing was run)."""
    assert completed.returncode == 2, (completed.returncode, completed.stdout, completed.stderr)
    assert_clean(completed)
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    if no_run_folder:
        assert completed.run_dirs() == [], "a usage error must not create a run folder"
    return lines[0]


# --- reading a run folder ---------------------------------------------------------------


def read_manifest(run_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return document


def rows_by_id(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """task id -> its row in a manifest or a --format json document (ids must be unique)."""
    return {row["task_id"]: row for row in document["tasks"]}


def manifest_rows(completed: Completed) -> dict[str, dict[str, Any]]:
    return rows_by_id(completed.manifest())


def details_by_id(completed: Completed, task_id: str) -> dict[str, Any]:
    row = manifest_rows(completed)[task_id]
    assert row["details_file"], f"{task_id} has no details file: {row}"
    return completed.details(row["details_file"])


def read_journal(run_dir: Path, *, running: bool = False) -> list[dict[str, Any]]:
    """The journal's events. Of a finished run, every line must be a whole JSON event.
    Of a `running` one, a missing journal reads as no events and a last line still
    being written is left out."""
    path = run_dir / "journal.jsonl"
    if running and not path.exists():
        return []
    data = path.read_bytes()
    if running:
        data = data[: data.rfind(b"\n") + 1]
    events: list[dict[str, Any]] = [json.loads(line) for line in data.splitlines()]
    return events


def journal_time(event: Mapping[str, Any]) -> float:
    """An event's time as seconds since the epoch."""
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00")).timestamp()


# --- waiting ----------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout: float = WAIT_SECONDS,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll `condition` until it holds; fail once `timeout` seconds have passed, or at
    once if `process` (the fanout under test) exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"fanout exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(POLL_SECONDS)


# --- processes --------------------------------------------------------------------------


def read_pids(*paths: Path, missing_ok: bool = False) -> list[int]:
    """The pids the tasks wrote to these files, in order; a missing file fails the test
    unless `missing_ok` (a task that may not have started yet)."""
    pids: list[int] = []
    for path in paths:
        if missing_ok and not path.exists():
            continue
        pids += [int(word) for word in path.read_text().split()]
    return pids


def process_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may linger when PID 1 does not reap)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    state = raw[raw.rfind(b")") + 2 :].split()[0]
    return state not in (b"Z", b"X")


def zombie_children(parent: int) -> list[int]:
    """The children of `parent` that have exited and are not reaped yet."""
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            state, ppid = stat[stat.rfind(b")") + 2 :].split()[:2]
            if int(ppid) == parent and state == b"Z":
                found.append(int(entry))
    return found


def assert_all_gone(pids: Sequence[int]) -> None:
    survivors = [pid for pid in pids if process_running(pid)]
    assert not survivors, f"processes outlived the run: {survivors}"


def processes_in(folder: Path) -> list[int]:
    """Live processes other than this one whose working directory is `folder`: every
    task of these tests runs in the test's own tmp_path, so these are its leftovers."""
    target = os.path.realpath(folder)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == target and process_running(int(entry)):
            found.append(int(entry))
    return found


def kill_leftovers(folder: Path) -> None:
    """SIGKILL, by pid, whatever the tasks of this test left running."""
    for pid in set(read_pids(folder / "pids", missing_ok=True)) | set(processes_in(folder)):
        if process_running(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def fanout_in_background(*args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start fanout directly (not through a shell, which would make it ignore SIGINT),
    in its own session so that no signal meant for it reaches pytest. On the way out,
    kill it if it still runs, and kill by pid whatever its tasks left behind."""
    process = subprocess.Popen(
        [str(FANOUT), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        kill_leftovers(Path.cwd())


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a server or worker a test started; kill it if it does not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def report_of(
    rows: list[dict[str, Any]],
    *,
    passed: bool = False,
    started_at: float = 100.0,
    finished_at: float = 102.0,
) -> RunReport:
    """A run's report made from task rows, for renderer tests (no run folder)."""
    counts = {"tasks": len(rows), "success": sum(row["status"] == "success" for row in rows)}
    return RunReport(
        run_id="r1",
        run_dir="/runs/r1",
        manifest_path="/runs/r1/manifest.json",
        verdict=Verdict(passed, "all-succeed", "1 failure", counts),
        rows=lambda: iter(rows),
        started_at=started_at,
        finished_at=finished_at,
        title="fanout run: test",
    )


# --- what a run folder holds -----------------------------------------------------------


def named_paths(record: dict[str, Any]) -> list[str]:
    """The output files a details document names: its streams' and each attempt's."""
    names = [record[stream]["path"] for stream in ("stdout", "stderr") if record[stream]]
    for attempt in record["attempts"]:
        names += [attempt["stdout"], attempt["stderr"]]
    return names


def assert_every_named_path_exists_private(run_dir: Path) -> None:
    """Every path each task's (and the reduce's) details file names is a file of the run
    folder, and every file of the run folder is 0600, whatever kind of task wrote it."""
    details = [row["details_file"] for row in read_manifest(run_dir)["tasks"]]
    if (run_dir / "reduce.json").exists():
        details.append("reduce.json")
    for details_file in details:
        record = json.loads((run_dir / details_file).read_text())
        for name in named_paths(record):
            assert name is not None and (run_dir / name).is_file(), (details_file, name)
    for path in run_dir.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, f"{path.name}: {mode:o}"


# GNU parallel, the oracle where fanout does what it does (CI installs Debian's);
# the tests that compare against it skip with this reason without it.
PARALLEL = shutil.which("parallel")
needs_parallel = pytest.mark.skipif(
    PARALLEL is None,
    reason="GNU parallel is not installed (apt-get install parallel): it is the oracle",
)
