"""Class 5 of issue 14: a task's descendants that leave its process group (setsid,
setpgid, a double-forking daemon) must not outlive the task.

On Linux fanout is a child subreaper: what a task leaves behind is re-parented to
fanout, which ends it (TERM, grace, KILL) and reaps it when the task ends, however it
ends. Each test runs the installed binary with real processes and reads the pids the
escaped processes wrote."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import (
    assert_all_gone,
    assert_clean,
    fanout_in_background,
    read_pids,
    run_fanout,
    wait_until,
    zombie_children,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a child subreaper is Linux only"
)

# Each escape writes its pid to ./pids from inside the escaped process, once it has
# escaped; `then_wait(n)` holds the task until n pids are there, so that the escape
# always happens before the task ends.
# A descendant that starts a new session and goes on running after its shell exits.
SETSID = "setsid sh -c 'echo $$ >> pids; exec sleep 300' &"
# One that only moves to a new process group of the same session.
SETPGID = (
    "python3 -c 'import os, time\n"
    "if os.fork() == 0:\n"
    "    os.setpgid(0, 0)\n"
    '    open("pids", "a").write(f"{os.getpid()}\\n")\n'
    "    time.sleep(300)\n'"
)
# A classic daemon: fork, setsid, fork again; the middle process exits at once.
DAEMON = "( setsid sh -c 'sleep 300 & echo $! >> pids' & )"
# A new session whose leader ignores SIGTERM: only SIGKILL ends it.
STUBBORN = "setsid sh -c 'trap \"\" TERM; echo $$ >> pids; while :; do sleep 0.1; done' &"


def then_wait(count: int) -> str:
    return f"\nwhile [ $(cat pids 2>/dev/null | wc -l) -lt {count} ]; do sleep 0.02; done\n"


def task_file(*commands: str) -> str:
    """tasks.toml with one task per shell command (ids t1, t2, ...)."""
    text = "".join(
        f'[[task]]\nid = "t{number}"\ncmd = {json.dumps(command)}\n\n'
        for number, command in enumerate(commands, 1)
    )
    Path("tasks.toml").write_text(text)
    return "tasks.toml"


def wait_for_pids(count: int) -> list[int]:
    wait_until(lambda: len(read_pids(Path("pids"), missing_ok=True)) >= count, f"{count} pids")
    return read_pids(Path("pids"))


def gone_entirely(pid: int) -> bool:
    """Not running and not a zombie either: reaped."""
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("escape", [SETSID, SETPGID, DAEMON], ids=["setsid", "setpgid", "daemon"])
def test_what_a_task_leaves_running_ends_with_the_task(escape: str) -> None:
    started = time.monotonic()
    completed = run_fanout("run", "-q", "--grace", "5s", task_file(escape + then_wait(1)))
    took = time.monotonic() - started
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    assert_clean(completed)
    pids = read_pids(Path("pids"))
    assert len(pids) == 1
    assert_all_gone(pids)
    # They obey SIGTERM: the grace is not waited out, and nothing waited for them.
    assert took < 4.5, took


def test_a_descendant_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    completed = run_fanout("run", "-q", "--grace", "0.3s", task_file(STUBBORN + then_wait(1)))
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    assert_all_gone(read_pids(Path("pids")))


def test_escaped_processes_are_ended_and_reaped_while_the_run_goes_on() -> None:
    # t1 leaves a daemon and ends; t2 keeps the run going until ./go exists. While
    # fanout still runs, the daemon must be gone, zombie included.
    waiter = "while [ ! -e go ]; do sleep 0.05; done"
    tasks = task_file(DAEMON + then_wait(1), waiter)
    with fanout_in_background("run", "-q", "-j", "2", tasks) as fanout:
        (pid,) = wait_for_pids(1)
        wait_until(lambda: gone_entirely(pid), "the daemon to be ended and reaped", process=fanout)
        # Its parent, which exited at once, was reaped too: fanout holds no zombie.
        wait_until(lambda: not zombie_children(fanout.pid), "no zombies", process=fanout)
        Path("go").touch()
        assert fanout.wait(timeout=30) == 0


def test_what_a_running_task_left_and_has_exited_is_reaped_while_the_task_runs() -> None:
    # Each subshell exits at once: its `true` is re-parented to fanout and exits, a
    # zombie until fanout reaps it. A long task must not pile them up.
    task = "for i in $(seq 30); do ( true & ); done; echo 30 >> pids; " + then_wait(2)
    with fanout_in_background("run", "-q", task_file(task)) as fanout:
        wait_for_pids(1)
        wait_until(lambda: not zombie_children(fanout.pid), "no zombies", process=fanout)
        Path("pids").write_text("30\n30\n")
        assert fanout.wait(timeout=30) == 0


def test_a_timed_out_task_takes_its_escaped_descendants_with_it() -> None:
    tasks = task_file(SETSID + then_wait(1) + "sleep 300")
    completed = run_fanout("run", "--timeout", "0.5s", "--grace", "1s", tasks)
    assert completed.returncode == 1, (completed.stdout, completed.stderr)
    assert "timed out" in completed.stdout, completed.stdout
    assert_all_gone(read_pids(Path("pids")))


def test_fail_fast_cancels_a_task_and_its_escaped_descendants() -> None:
    # t1 escapes twice and waits; t2 fails once both escapes happened.
    slow = f"{SETSID} {DAEMON}" + then_wait(2) + "sleep 300"
    bad = then_wait(2) + "exit 3"
    completed = run_fanout("run", "-q", "-j", "2", "--fail-fast", task_file(slow, bad))
    assert completed.returncode == 1, (completed.stdout, completed.stderr)
    assert_clean(completed)
    pids = read_pids(Path("pids"))
    assert len(pids) == 2
    assert_all_gone(pids)


def test_an_early_majority_cancels_the_rest_and_their_escaped_descendants() -> None:
    # Two votes decide a majority of three once the third task escaped; it is cancelled.
    vote = then_wait(1) + "echo yes"
    tasks = task_file(vote, vote, SETSID + then_wait(1) + "sleep 300")
    completed = run_fanout("run", "-q", "-j", "3", "--strategy", "majority-vote", tasks)
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    assert_all_gone(read_pids(Path("pids")))


def test_a_second_ctrl_c_kills_escaped_descendants_at_once() -> None:
    task = STUBBORN + then_wait(1) + "sleep 300"
    with fanout_in_background("run", "-q", "--grace", "60s", task_file(task)) as fanout:
        pids = wait_for_pids(1)
        os.kill(fanout.pid, signal.SIGINT)
        time.sleep(0.3)  # the TERM went out; the escaped shell ignores it
        assert fanout.poll() is None, "fanout must wait out the grace after one Ctrl-C"
        interrupted = time.monotonic()
        os.kill(fanout.pid, signal.SIGINT)
        assert fanout.wait(timeout=30) == 130
        assert time.monotonic() - interrupted < 8  # far inside the 60 s grace
    assert_all_gone(pids)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_fanout_ends_escaped_descendants_too(signum: signal.Signals) -> None:
    task = f"{SETSID} {DAEMON}" + then_wait(4) + "sleep 300"
    with fanout_in_background("run", "-q", "-j", "2", task_file(task, task)) as fanout:
        pids = wait_for_pids(4)
        os.kill(fanout.pid, signum)
        assert fanout.wait(timeout=30) == 128 + signum
    assert_all_gone(pids)


def test_a_scorer_that_leaves_a_process_holding_its_stdout_is_not_waited_for() -> None:
    # The scorer prints its score and exits; what it started in a new session keeps
    # its stdout open. fanout reads the score when the scorer exits, not at an EOF
    # that would come only when that process ends.
    Path("scorer.sh").write_text("echo 0.5\n" + SETSID + then_wait(1))
    scorer = "sh scorer.sh"
    started = time.monotonic()
    completed = run_fanout(
        "run", "--format", "json", "--strategy", "best-of-n", "--scorer", scorer,
        task_file("echo hello"),
    )  # fmt: skip
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    assert time.monotonic() - started < 20
    assert json.loads(completed.stdout)["verdict"]["winner"]["score"] == 0.5
    assert_all_gone(read_pids(Path("pids")))
