"""--nice N: the tasks run at niceness N (-20 to 19; below fanout's own needs privilege).

Local tasks: fanout renices itself when the run starts, before any task, and its
children inherit it (GNU parallel renices each child between fork and exec; Python can
do that only in a preexec_fn, slow and unsafe with threads, and posix_spawn has no
niceness attribute). On Linux niceness is per thread: fanout renices its main thread
before the run's threads exist, and they inherit it too.

Dask tasks: the worker renices the task's process right after it starts
(fanout_cli/executors/dask_worker.py); a child the command forks in that first instant
keeps the worker's niceness.

When the system refuses (a lower niceness without privilege), the run goes on at the
niceness it has, with one warning; GNU parallel goes on silently. A worker that is
refused goes on silently."""

from __future__ import annotations

import os
import re

MIN_NICE, MAX_NICE = -20, 19
_NUMBER = re.compile(r"[+-]?\d{1,6}")


def parse_nice(value: object) -> int:
    """A niceness from -20 to 19: an int, or its digits with an optional sign."""
    number: object = value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = int(value.strip())
    if isinstance(number, int) and not isinstance(number, bool) and MIN_NICE <= number <= MAX_NICE:
        return number
    from fanout_cli.values import shown

    raise ValueError(f"expected a niceness from {MIN_NICE} to {MAX_NICE}, got {shown(value)}")


def renice_self(nice: int) -> None:
    """fanout (and so every task it starts) at niceness `nice`; a warning when refused."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as exc:
        from fanout_cli.render.console import warn

        current = os.getpriority(os.PRIO_PROCESS, 0)
        warn(f"--nice {nice}: the system refused it ({exc.strerror}; a niceness below "
             f"{current} needs privilege): tasks run at niceness {current}")  # fmt: skip


def renice(pid: int, nice: int) -> bool:
    """Process `pid` at niceness `nice`; False when refused or gone."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:
        return False
    return True
