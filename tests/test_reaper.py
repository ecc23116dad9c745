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
