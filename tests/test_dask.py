"""End to end on a real Dask cluster: --executor dask://HOST:PORT.

A LocalCluster with two worker processes (each under its nanny) runs in this test
process for the whole module; the installed `fanout` runs against it as a user would,
and its tasks are real processes on the workers. One test starts the `dask scheduler`
and `dask worker` commands instead. Every process the cluster starts carries a marker
in its environment, so the module's end can check that none outlived it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import pytest

import fanout_cli
from tests.helpers import (
    FANOUT,
    WAIT_SECONDS,
    Completed,
    assert_every_named_path_exists_private,
    free_port,
    needs_procfs,
    process_running,
    read_pids,
    run_fanout,
    stop_process,
    wait_until,
    write_tasks,
    zombie_children,
)
from tests.helpers import run_json as run_fanout_json

distributed: Any = pytest.importorskip(
    "distributed", reason="the dask extra is not installed: pip install 'fanout-cli[dask]'"
)

from distributed.client import FutureCancelledError  # noqa: E402  # after the skip

from fanout_cli.executors.dask import cluster_failure, parse_resources  # noqa: E402  # after the skip

pytestmark = [needs_procfs]

MARKER = "FANOUT_DASK_TEST_MARK"
MIB = 1 << 20


# --- the cluster ----------------------------------------------------------------------


class Cluster:
    def __init__(self, cluster: Any, client: Any) -> None:
        self.cluster = cluster
        self.client = client
        self.executor = "dask://" + str(cluster.scheduler_address).removeprefix("tcp://")

    def worker_pids(self) -> dict[int, str]:
        """pid -> address of each worker process. (scheduler_info() no longer carries
        the pid in distributed 2026: the workers are asked.)"""
        addresses = set(self.client.scheduler_info(n_workers=-1)["workers"])
        pids = self.client.run(os.getpid, workers=sorted(addresses))
        return {int(pid): address for address, pid in pids.items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    marker = uuid.uuid4().hex
    local_directory = tmp_path_factory.mktemp("dask-workers")
    # multiprocessing's resource tracker lives as long as this test process: started
    # before the marker is set, it is not taken for a leftover.
    resource_tracker.ensure_running()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MARKER, marker)  # inherited by workers, guardians, and tasks
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            local_directory=str(local_directory),
            host="127.0.0.1",
            # The scheduler's HTTP server (metrics, health) runs even without the
            # dashboard: a free port, not 8787, which may be taken.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
    try:
        client = distributed.Client(local, set_as_default=False)
        try:
            client.wait_for_workers(2, timeout=WAIT_SECONDS)
            yield Cluster(local, client)
        finally:
            client.close()
    finally:
        local.close()
    assert_no_process_marked(marker)


def assert_no_process_marked(marker: str) -> None:
    """Wait until no process (a worker, a guardian, a task) carries the marker."""
    needle = f"{MARKER}={marker}".encode()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        left = [pid for pid in marked_processes(needle) if process_running(pid)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes outlived the cluster: {describe(left)}"


def marked_processes(needle: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
    return found


def describe(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            lines.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()!r}")
    return lines


# --- helpers --------------------------------------------------------------------------


def run_json(*args: str, executor: str | None = None) -> tuple[Completed, dict[str, Any]]:
    """`fanout run --format json` on the local executor, or on the one named."""
    chosen = ("--executor", executor) if executor else ()
    return run_fanout_json(*chosen, *args)


def outputs(document: dict[str, Any], details_file: str) -> tuple[bytes, bytes]:
    base = Path(document["details_dir"]) / details_file.removesuffix(".json")
    return (
        base.with_name(base.name + ".stdout").read_bytes(),
        base.with_name(base.name + ".stderr").read_bytes(),
    )


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """What a run must show alike wherever its tasks ran."""
    verdict = document["verdict"]
    return {
        "verdict": (verdict["passed"], verdict["reason"], verdict["counts"]),
        "tasks": [
            (
                task["task_id"],
                task["status"],
                task["exit_code"],
                task["summary"],
                outputs(document, task["details_file"]),
            )
            for task in document["tasks"]
        ],
    }


def task_pids() -> list[int]:
    """The pids the tasks wrote to ./pids so far (the tests run in their tmp_path)."""
    return read_pids(Path("pids"), missing_ok=True)


def assert_gone(pids: list[int]) -> None:
    assert pids, "the tasks recorded no pids"
    wait_until(lambda: not any(process_running(pid) for pid in pids), "the task processes to end")


def sleeper(pids: str = "pids") -> str:
    """A task that records its shell's and a background child's pids, then waits."""
    return f"echo $$ >> {pids}; sleep 60 & echo $! >> {pids}; wait"


# --- pure parts -----------------------------------------------------------------------


def test_resources_are_parsed_for_dask() -> None:
    assert parse_resources(("GPU=1", "licence=0.5")) == {"GPU": 1.0, "licence": 0.5}
    assert parse_resources(()) == {}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            FutureCancelledError("k", "scheduler-connection-lost"),
            "lost the connection to the Dask scheduler",
        ),
        (FutureCancelledError("k", "unknown"), "cancelled on the cluster: unknown"),
        (
            ModuleNotFoundError("No module named 'fanout_cli'"),
            "the worker cannot run fanout (No module named 'fanout_cli'); install "
            f"fanout-cli=={fanout_cli.__version__} on every worker",
        ),
        (RuntimeError("first line\nsecond line"), "cluster error: RuntimeError: first line"),
    ],
)
def test_a_failure_of_the_cluster_is_one_line(error: Exception, reason: str) -> None:
    assert cluster_failure(error) == reason


# --- same as a local run --------------------------------------------------------------

MIXED_TASKS = """
[[task]]
id = "passes"
cmd = "echo all good; echo a warning >&2"

[[task]]
id = "fails"
cmd = "echo partial; echo it broke >&2; exit 1"

[[task]]
id = "three"
cmd = ["sh", "-c", "echo three; exit 3"]

[[task]]
id = "no-program"
cmd = ["fanout-no-such-command", "x"]

[[task]]
id = "no-shell-program"
cmd = "fanout-no-such-command x"
"""


@pytest.mark.slow
def test_a_run_reads_the_same_as_a_local_run(cluster: Cluster) -> None:
    write_tasks(Path("tasks.toml"), MIXED_TASKS)
    for extra in ((), ("--ok-exit", "0,1")):
        local_run, local = run_json("tasks.toml", *extra)
        remote_run, remote = run_json("tasks.toml", *extra, executor=cluster.executor)
        assert remote_run.returncode == local_run.returncode == 1, remote_run.stderr
        assert comparable(remote) == comparable(local)
    statuses = {task["task_id"]: (task["status"], task["summary"]) for task in remote["tasks"]}
    status, summary = statuses.pop("no-shell-program")
    assert status == "failure"
    assert summary.endswith("not found (exit 127 (command not found))")  # the shell's words
    assert statuses == {
        "passes": ("success", "all good"),
        "fails": ("success", "partial"),  # --ok-exit 0,1
        "three": ("failure", "three (exit 3)"),
        "no-program": ("error", "command not found: fanout-no-such-command"),
    }


def test_values_run_on_the_cluster_with_their_exit_codes(cluster: Cluster) -> None:
    completed, document = run_json(
        "--", "echo value {}; exit {}", ":::", "0", "1", executor=cluster.executor
    )
    assert completed.returncode == 1, completed.stderr
    rows = [(t["task_id"], t["status"], t["exit_code"], t["summary"]) for t in document["tasks"]]
    assert rows == [("0", "success", 0, "value 0"), ("1", "failure", 1, "value 1 (exit 1)")]
    assert document["verdict"]["reason"] == "1 failure of 2"


def test_keep_order_prints_the_remote_tasks_output_as_a_local_run_does(cluster: Cluster) -> None:
    """-k --tag reads a remote task's output back from the run folder, as a local one's."""
    options = ["run", "-q", "-k", "--tag", "-j", "3"]
    command = ["--", "sleep 0.$((3 - {})); echo out {}; echo err {} >&2", ":::", "1", "2", "3"]
    local = run_fanout(*options, *command)
    remote = run_fanout(*options, "--executor", cluster.executor, *command)
    assert remote.returncode == local.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout == "1\tout 1\n2\tout 2\n3\tout 3\n"
    assert remote.stderr.splitlines()[:-1] == ["1\terr 1", "2\terr 2", "3\terr 3"]


def test_cwd_and_env_are_the_tasks_on_the_worker(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "absolute").mkdir()
    (tmp_path / "relative").mkdir()
    write_tasks(
        Path("tasks.toml"),
        f"""
[defaults]
env = {{ FANOUT_TEST_VALUE = "from the task" }}

[[task]]
id = "absolute"
cmd = 'echo "$(pwd) $FANOUT_TEST_VALUE"'
cwd = "{tmp_path / "absolute"}"

[[task]]
id = "relative"
cmd = 'echo "$(pwd) $FANOUT_TEST_VALUE"'
cwd = "relative"

[[task]]
id = "none"
cmd = 'echo "$(pwd) $FANOUT_TEST_VALUE"'

[[task]]
id = "missing"
cmd = "true"
cwd = "missing"
""",
    )
    completed, document = run_json("tasks.toml", executor=cluster.executor)
    assert completed.returncode == 1, completed.stderr
    summaries = {task["task_id"]: task["summary"] for task in document["tasks"]}
    assert summaries == {
        "absolute": f"{tmp_path / 'absolute'} from the task",
        "relative": f"{tmp_path / 'relative'} from the task",
        "none": f"{tmp_path} from the task",
        "missing": f"working directory not found: {tmp_path / 'missing'}",
    }


def test_large_output_is_capped_to_its_last_mebibyte(cluster: Cluster) -> None:
    total = MIB + 500_000
    script = (
        "import sys; out = sys.stdout.buffer; "
        f"out.write(bytes(i % 251 for i in range({total} - 10)) + b'\\nlast line'); "
        "sys.stderr.write('a small stderr')"
    )
    completed, document = run_json(
        "--", sys.executable, "-c", script, ":::", "x", executor=cluster.executor
    )
    assert completed.returncode == 0, completed.stderr
    task = document["tasks"][0]
    stdout, stderr = outputs(document, task["details_file"])
    expected = bytes(i % 251 for i in range(total - 10)) + b"\nlast line"
    assert len(expected) == total
    assert stdout == expected[-MIB:]
    assert stderr == b"a small stderr"
    assert task["summary"] == "last line"
    details = json.loads((Path(document["details_dir"]) / task["details_file"]).read_text())
    dropped = total - MIB
    assert details["attempts"][0]["reason"] == (
        f"stdout capped: first {dropped} of {total} bytes dropped"
    )
    assert details["stdout"]["bytes"] == MIB


# --- stopping remote processes --------------------------------------------------------


@pytest.mark.slow
def test_timeout_kills_the_remote_process_group(cluster: Cluster) -> None:
    completed = run_fanout(
        "run", "--executor", cluster.executor, "--timeout", "1s", "--grace", "500ms",
        "--", f": {{}}; {sleeper()}", ":::", "slow",
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert "timeout   slow" in completed.stdout
    assert "timed out after 1s" in completed.stdout
    pids = task_pids()
    assert len(pids) == 2
    assert_gone(pids)


def test_a_remote_task_gets_the_termseq_signals_in_order(cluster: Cluster) -> None:
    # The worker runs in this test's directory: the task notes each signal in ./log.
    trapper = ("trap 'echo INT >> log' INT; trap 'echo TERM >> log' TERM; touch ready; "
               "echo $$ >> pids; while :; do sleep 0.05; done")  # fmt: skip
    started = time.monotonic()
    completed = run_fanout(
        "run", "--executor", cluster.executor, "--timeout", "1s",
        "--termseq", "INT,300ms,TERM,300ms,KILL", "--", f": {{}}; {trapper}", ":::", "a",
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert "timed out after 1s" in completed.stdout
    assert Path("log").read_text().split() == ["INT", "TERM"]
    assert_gone(task_pids())
    assert time.monotonic() - started < 15


@pytest.mark.slow
def test_a_relative_timeout_stops_a_remote_straggler_once_three_succeeded(
    cluster: Cluster,
) -> None:
    """--timeout P% moves, so the coordinator holds it: the straggler, started first,
    is stopped (its group ended on the worker) once the median is known."""
    began = time.monotonic()
    completed = run_fanout(
        "run", "--executor", cluster.executor, "-j", "4", "--timeout", "300%",
        "--grace", "500ms", "--", f"if [ {{}} = slow ]; then {sleeper()}; fi; sleep 0.2",
        ":::", "slow", "a", "b", "c",
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert time.monotonic() - began < 30
    assert "timeout   slow" in completed.stdout
    assert "(300% of the median)" in completed.stdout
    assert completed.stdout.count("success") == 3
    pids = task_pids()
    assert len(pids) == 2
    assert_gone(pids)


@pytest.mark.slow
def test_a_relative_timeout_waits_out_the_termseq_for_a_remote_task(cluster: Cluster) -> None:
    """The coordinator stops a remote straggler at its moving limit and waits as long as
    --termseq lets the task take (not --grace): the task's last words are kept."""
    cleanup = "trap 'sleep 11; echo cleaned up; kill $!; exit 3' INT; sleep 60 & wait"
    completed = run_fanout(
        "run", "--executor", cluster.executor, "-j", "4", "--timeout", "300%",
        "--termseq", "INT,20s,KILL", "--",
        f"if [ {{}} = slow ]; then {cleanup}; fi; sleep 0.2", ":::", "slow", "a", "b", "c",
        timeout=90,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert "timeout   slow" in completed.stdout
    slow = next(completed.run_dir.glob("*-slow.stdout"))
    assert slow.read_text() == "cleaned up\n"


# A new session, and a double-forked daemon: both leave the task's process group.
ESCAPES = (
    "setsid sh -c 'echo $$ >> pids; exec sleep 300' & "
    "( setsid sh -c 'sleep 300 & echo $! >> pids' & ); "
    "while [ $(cat pids | wc -l) -lt 2 ]; do sleep 0.02; done"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("then", "options", "returncode"),
    [("exit 0", (), 0), ("sleep 300", ("--timeout", "2s"), 1)],
    ids=["ends", "times-out"],
)
def test_what_a_remote_task_leaves_outside_its_group_ends_with_it(
    cluster: Cluster, then: str, options: tuple[str, ...], returncode: int
) -> None:
    completed = run_fanout(
        "run", "--executor", cluster.executor, "--grace", "1s", *options,
        "--", f": {{}}; {ESCAPES}; {then}", ":::", "a",
    )  # fmt: skip
    assert completed.returncode == returncode, completed.stdout + completed.stderr
    pids = task_pids()
    assert len(pids) == 2
    assert not any(process_running(pid) for pid in pids)  # ended before the result came


@pytest.mark.slow
def test_what_a_long_remote_task_left_and_has_exited_is_reaped_while_it_runs(
    cluster: Cluster,
) -> None:
    # Each subshell exits at once; its `true`, re-parented to the worker, exits too.
    task = (
        ": {}; for i in $(seq 30); do ( true & ); done; echo $PPID >> pids; "
        "while [ ! -e go ]; do sleep 0.05; done"
    )
    fanout = start_fanout("--executor", cluster.executor, "--", task, ":::", "a")
    try:
        wait_until(lambda: len(task_pids()) == 1, "the task to start")
        (worker,) = task_pids()
        wait_until(lambda: not zombie_children(worker), "the worker to reap them")
        Path("go").touch()
        assert fanout.wait(timeout=WAIT_SECONDS) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            fanout.kill()
        fanout.wait()
        for pipe in (fanout.stdout, fanout.stderr):
            if pipe is not None:
                pipe.close()


def early_stop_tasks(trigger: str) -> str:
    """Three sleepers and one task that ends (with `trigger`) once all three started."""
    ready = "while [ $(cat pids 2>/dev/null | wc -l) -lt 6 ]; do sleep 0.02; done"
    return "".join(
        f'[[task]]\nid = "{task_id}"\ncmd = {json.dumps(command)}\n\n'
        for task_id, command in (
            ("sleeper-1", sleeper()),
            ("sleeper-2", sleeper()),
            ("trigger", f"{ready}; {trigger}"),
            ("sleeper-3", sleeper()),
        )
    )


@pytest.mark.parametrize(
    ("options", "trigger", "returncode"),
    [
        (("--strategy", "first-n-succeed"), "exit 0", 0),
        (("--fail-fast",), "exit 1", 1),
    ],
    ids=["first-n-succeed", "fail-fast"],
)
def test_an_early_verdict_stops_the_remote_sleepers(
    cluster: Cluster, options: tuple[str, ...], trigger: str, returncode: int
) -> None:
    write_tasks(Path("tasks.toml"), early_stop_tasks(trigger))
    started = time.monotonic()
    completed = run_fanout(
        "run", "tasks.toml", "--executor", cluster.executor, "-j", "4", "--grace", "2s",
        *options,
    )  # fmt: skip
    assert completed.returncode == returncode, completed.stdout + completed.stderr
    assert time.monotonic() - started < 15
    assert completed.stdout.count("cancelled sleeper-") == 3
    pids = task_pids()
    assert len(pids) == 6
    assert not any(process_running(pid) for pid in pids)  # ended before fanout exited


def start_fanout(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(FANOUT), "run", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_ctrl_c_stops_the_remote_processes_within_the_grace(cluster: Cluster) -> None:
    # The shells ignore SIGTERM: only the SIGKILL after --grace ends them.
    command = f": {{}}; trap '' TERM; {sleeper()}"
    fanout = start_fanout("--executor", cluster.executor, "--grace", "1s", "--", command,
                          ":::", "a", "b")  # fmt: skip
    try:
        wait_until(lambda: len(task_pids()) == 4, "both tasks to start")
        interrupted = time.monotonic()
        fanout.send_signal(signal.SIGINT)
        stdout, stderr = fanout.communicate(timeout=WAIT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            fanout.kill()
        fanout.wait()
    assert fanout.returncode == 130, stderr
    assert 0.9 < time.monotonic() - interrupted < 10
    assert stdout.decode().count("interrupted by SIGINT") == 3  # two tasks, the verdict
    assert not any(process_running(pid) for pid in task_pids())


def test_a_second_ctrl_c_kills_the_remote_processes_at_once(cluster: Cluster) -> None:
    command = f": {{}}; trap '' TERM; {sleeper()}"
    fanout = start_fanout("--executor", cluster.executor, "--grace", "60s", "--", command,
                          ":::", "a", "b")  # fmt: skip
    try:
        wait_until(lambda: len(task_pids()) == 4, "both tasks to start")
        interrupted = time.monotonic()
        fanout.send_signal(signal.SIGINT)
        time.sleep(0.3)  # the first Ctrl-C's TERM went out: the shells ignore it
        fanout.send_signal(signal.SIGINT)
        _, stderr = fanout.communicate(timeout=WAIT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            fanout.kill()
        fanout.wait()
    assert fanout.returncode == 130, stderr
    assert time.monotonic() - interrupted < 8  # far inside the 60 s grace
    assert not any(process_running(pid) for pid in task_pids())


# --- resources ------------------------------------------------------------------------


@pytest.mark.slow
def test_without_a_worker_with_the_resource_a_task_waits_until_the_deadline(
    cluster: Cluster,
) -> None:
    started = time.monotonic()
    completed, document = run_json(
        "--resources", "GPU=1", "--deadline", "1500ms", "--", "echo {}", ":::", "a", "b",
        executor=cluster.executor,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert time.monotonic() - started < 10
    rows = [(task["status"], task["summary"]) for task in document["tasks"]]
    assert rows == [("timeout", "run deadline of 1.5s reached")] * 2


# --- connecting -----------------------------------------------------------------------


@pytest.mark.slow
def test_an_unreachable_scheduler_is_exit_2_within_seconds() -> None:
    port = free_port()
    started = time.monotonic()
    completed = run_fanout("run", "--executor", f"dask://127.0.0.1:{port}", "--", "true")
    assert completed.returncode == 2
    assert time.monotonic() - started < 10
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in lines[0]
    assert not completed.run_dirs()  # no run folder for a run that never began


def test_without_the_extra_the_option_names_it(tmp_path: Path) -> None:
    poisoned = tmp_path / "poisoned" / "distributed"
    poisoned.mkdir(parents=True)
    (poisoned / "__init__.py").write_text("raise ImportError('distributed is not installed')\n")
    completed = run_fanout(
        "run", "--executor", "dask://127.0.0.1:8786", "--", "true",
        env={"PYTHONPATH": str(poisoned.parent)},
    )  # fmt: skip
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "fanout: error: --executor dask://127.0.0.1:8786: needs the dask extra: "
        "pip install 'fanout-cli[dask]'"
    ]


@contextlib.contextmanager
def started(*argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A process stopped at the end whatever happens: terminate, wait, kill."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        yield process
    finally:
        stop_process(process, WAIT_SECONDS)


@pytest.mark.slow
def test_dask_scheduler_and_worker_commands_by_address(tmp_path: Path) -> None:
    """Resources run where a worker has them; a worker with another fanout is exit 2."""
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    executor = f"dask://127.0.0.1:{port}"
    marker = uuid.uuid4().hex
    other_fanout = copy_of_fanout(tmp_path / "other", version="0.0.0+other")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MARKER, marker)
        worker = (dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                  "--nthreads", "2", "--no-dashboard")  # fmt: skip
        with (
            started(dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                    "--no-dashboard", "--dashboard-address", "127.0.0.1:0"),
            started(*worker, "--local-directory", str(tmp_path / "gpu"), "--resources", "GPU=1"),
        ):  # fmt: skip
            wait_until(lambda: scheduler_listens(port), "the scheduler to listen")
            completed, document = run_json(
                "--", "echo value {}", ":::", "a", "b", executor=executor
            )
            assert completed.returncode == 0, completed.stderr
            assert [task["summary"] for task in document["tasks"]] == ["value a", "value b"]
            completed, document = run_json(
                "--resources", "GPU=1", "--", "echo gpu {}", ":::", "c", executor=executor
            )
            assert completed.returncode == 0, completed.stderr
            assert document["tasks"][0]["summary"] == "gpu c"

            with started(
                *worker, "--local-directory", str(tmp_path / "other-worker"),
                env={**os.environ, "PYTHONPATH": str(other_fanout)},
            ):  # fmt: skip
                with distributed.Client(address, set_as_default=False) as client:
                    client.wait_for_workers(2, timeout=WAIT_SECONDS)
                completed = run_fanout("run", "--executor", executor, "--", "true")
    assert completed.returncode == 2
    assert re.fullmatch(
        rf"fanout: error: --executor {executor}: worker tcp://127\.0\.0\.1:\d+ runs fanout "
        rf"0\.0\.0\+other; install fanout-cli=={re.escape(fanout_cli.__version__)} on every "
        r"worker\n",
        completed.stderr,
    ), completed.stderr
    assert_no_process_marked(marker)


def copy_of_fanout(directory: Path, version: str) -> Path:
    """A copy of the fanout_cli package that calls itself `version`, for PYTHONPATH."""
    source = Path(fanout_cli.__file__).parent
    copy = directory / "fanout_cli"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    init = copy / "__init__.py"
    text = init.read_text()
    assert f'__version__ = "{fanout_cli.__version__}"' in text
    init.write_text(text.replace(fanout_cli.__version__, version))
    return directory


def scheduler_listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- a worker dies --------------------------------------------------------------------
# Last in the module: the nanny restarts the worker, and the test waits for it.


@pytest.mark.slow
def test_a_worker_killed_mid_task_fails_the_attempt_and_the_run_goes_on(
    cluster: Cluster,
) -> None:
    write_tasks(
        Path("tasks.toml"),
        f"""
[[task]]
id = "doomed"
cmd = "{sleeper()}"

[[task]]
id = "next"
cmd = "echo next"
""",
    )
    fanout = start_fanout("tasks.toml", "--executor", cluster.executor, "--format", "json",
                          "-j", "1", "--grace", "1s")  # fmt: skip
    try:
        wait_until(lambda: len(task_pids()) == 2, "the doomed task to start")
        shell = task_pids()[0]
        stat = Path(f"/proc/{shell}/stat").read_bytes()
        worker_pid = int(stat[stat.rfind(b")") + 2 :].split()[1])  # the shell's parent
        workers = cluster.worker_pids()
        assert worker_pid in workers, (worker_pid, workers)
        os.kill(worker_pid, signal.SIGKILL)
        stdout, stderr = fanout.communicate(timeout=WAIT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            fanout.kill()
        fanout.wait()
    assert fanout.returncode == 1, stderr
    document = json.loads(stdout)
    rows = {task["task_id"]: (task["status"], task["summary"]) for task in document["tasks"]}
    assert rows == {
        "doomed": ("error", f"worker died: {workers[worker_pid]}"),
        "next": ("success", "next"),
    }
    assert document["verdict"]["reason"] == "1 error of 2"
    assert_gone(task_pids())  # the dead worker's guardian ended its group
    cluster.client.wait_for_workers(2, timeout=WAIT_SECONDS)  # the nanny restarts it


def test_outputs_a_worker_sent_back_are_0600_and_named_paths_exist(
    cluster: Cluster, open_umask: None
) -> None:
    """What the coordinator writes for a remote task (aop.write_output) is private, as
    a local task's outputs are, whatever the umask."""
    write_tasks(Path("tasks.toml"), MIXED_TASKS)
    completed, _ = run_json("tasks.toml", "--retries", "1", "--retry-delay", "0",
                            executor=cluster.executor)  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert_every_named_path_exists_private(completed.run_dir)


def test_a_task_on_a_worker_runs_at_the_niceness_asked(cluster: Cluster) -> None:
    """The worker renices the task's process right after its start: the task waits until
    it reads that niceness (at most 5 s), then prints it."""
    wait = ('for i in $(seq 100); do n=$(ps -o ni= -p $$ | tr -d " "); '
            '[ "$n" = 6 ] && break; sleep 0.05; done; echo "$n"')  # fmt: skip
    completed, document = run_json("--nice", "6", "--", "sh", "-c", wait, ":::", "a", "b",
                                   executor=cluster.executor)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert [task["summary"] for task in document["tasks"]] == ["6", "6"]
    assert completed.manifest()["options"]["nice"] == 6
    workers = cluster.worker_pids()
    assert all(os.getpriority(os.PRIO_PROCESS, pid) == 0 for pid in workers)  # not reniced
