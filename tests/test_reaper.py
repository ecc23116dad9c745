"""The subreaper's reading of /proc: a process's stat fields and its task mark. The
ending of escaped processes is tested end to end in tests/hostile/test_escapes.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fanout_cli import reaper

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; the subreaper is Linux only"
)


def test_stat_fields_are_read_past_a_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "a) b (c"
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "30"], start_new_session=True)
    try:
        process = reaper.read_process(child.pid)
        assert process == reaper.Process(child.pid, os.getpid(), child.pid, child.pid, False)
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie, not reaped
        zombie = reaper.read_process(child.pid)
        assert zombie is not None and zombie.zombie
    finally:
        child.kill()
        child.wait()
    assert reaper.read_process(child.pid) is None


def test_the_mark_is_read_from_the_environment() -> None:
    environment = {**os.environ, "X_FANOUT_TASK_MARK": "not-it", reaper.MARK_VARIABLE: "12.34"}
    marked = subprocess.Popen(["sleep", "30"], env=environment)
    unmarked = subprocess.Popen(["sleep", "30"], env={"PATH": os.environ["PATH"]})
    try:
        assert reaper.mark_of(marked.pid) == "12.34"
        assert reaper.mark_of(unmarked.pid) is None
    finally:
        for child in (marked, unmarked):
            child.kill()
            child.wait()
    assert reaper.mark_of(marked.pid) is None  # gone


def test_a_group_with_only_a_zombie_left_is_not_alive() -> None:
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert reaper.group_alive(child.pid)
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert not reaper.group_alive(child.pid)
    finally:
        child.wait()
    assert not reaper.signal_group(child.pid, 0)


def test_own_children_lists_this_process_s_children_only() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        children = reaper.own_children()
        assert children is not None and child.pid in children
        assert os.getppid() not in children and os.getpid() not in children
    finally:
        child.kill()
        child.wait()
    children = reaper.own_children()
    assert children is not None and child.pid not in children


def _no_pass_over_proc() -> list[reaper.Process]:
    raise AssertionError("a pass over /proc, where probes said nothing was left")


def _after_a_task_that_left_nothing() -> reaper.Orphans:
    """A subreaper's record of one task that ended and left nothing behind."""
    orphans = reaper.Orphans()
    if not orphans.active:
        pytest.skip("cannot become a subreaper here")
    task = subprocess.Popen(["true"], start_new_session=True)
    task.wait()
    orphans.task_ended(orphans.new_mark(), task.pid, reaper.TermSeq.default(1.0))
    return orphans


def test_a_sweep_after_a_task_that_left_nothing_reads_no_process_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orphans = _after_a_task_that_left_nothing()
    monkeypatch.setattr(reaper, "processes", _no_pass_over_proc)
    # What this test process already has as children (other tests' servers) stands in
    # for running tasks here: none of them is the ended task's.
    assert orphans.sweep(running=reaper.own_children() or set()) is False
    assert not orphans.pending


def test_a_sweep_with_a_stray_child_reads_the_process_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orphans = _after_a_task_that_left_nothing()
    stray = subprocess.Popen(["sleep", "30"])  # a child no running task leads
    passes: list[int] = []
    everyone = reaper.processes

    def counted() -> list[reaper.Process]:
        passes.append(1)
        return everyone()

    monkeypatch.setattr(reaper, "processes", counted)
    try:
        running = (reaper.own_children() or set()) - {stray.pid}
        orphans.sweep(running=running)
        assert passes  # a child that is no task's: the whole table is read, as before
    finally:
        stray.kill()
        stray.wait()
