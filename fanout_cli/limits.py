"""Open files: a run must fit in the descriptor limit, so that no task fails for
fanout's own lack of descriptors.

fanout holds a few descriptors of its own (the journal, the lock, the event loop, the
terminal) and a few per running task (a pidfd while it runs, its output files while it
starts, a scorer's pipes or an HTTP connection). At the start of a run, a soft limit
lower than that need is raised (as far as needed, up to the hard limit); when `-j`
still does not fit, fewer tasks run at once, with one warning. And the local executor
starts a task through `when_descriptors_allow`, which waits and retries when a start
meets EMFILE anyway."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import anyio

from fanout_cli.run_config import RunConfig

T = TypeVar("T")
OWN_DESCRIPTORS = 24  # fanout's own, with room to spare (about 12 in use)
PER_TASK_DESCRIPTORS = 3
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
# A start that fails for want of descriptors is tried again, for up to a minute.
_RETRY_FIRST_SECONDS = 0.01
_RETRY_MAX_SECONDS = 0.5
_RETRY_GIVE_UP_SECONDS = 60.0


def descriptors_needed(jobs: int) -> int:
    return OWN_DESCRIPTORS + PER_TASK_DESCRIPTORS * jobs


def jobs_that_fit(limit: int) -> int:
    return max(1, (limit - OWN_DESCRIPTORS) // PER_TASK_DESCRIPTORS)


def raise_descriptor_limit(needed: int) -> int:
    """The soft descriptor limit, raised (up to the hard limit) when below `needed`."""
    soft = os.sysconf("SC_OPEN_MAX")  # the soft limit, without importing `resource`
    if soft < 0 or soft >= needed:
        return needed if soft < 0 else soft  # -1: no limit
    import resource  # only when the limit is low

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if raised > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        except (ValueError, OSError):  # macOS: a hard limit above OPEN_MAX is refused
            return soft
    return max(soft, raised)


def fit_descriptor_limit(config: RunConfig) -> RunConfig:
    """`config`, with fewer jobs when the descriptor limit cannot hold `-j` (one
    warning says so); the soft limit raised as far as needed and allowed."""
    jobs = config.policy.jobs
    limit = raise_descriptor_limit(descriptors_needed(jobs))
    fitting = jobs_that_fit(limit)
    if fitting >= jobs:
        return config
    from fanout_cli.render.console import warn

    warn(
        f"-j {jobs} needs about {descriptors_needed(jobs)} open files but the limit is "
        f"{limit} (ulimit -n): running {fitting} at once"
    )
    return replace(config, policy=replace(config.policy, jobs=fitting))


def _retry_delays() -> Iterator[float]:
    delay, waited = _RETRY_FIRST_SECONDS, 0.0
    while waited < _RETRY_GIVE_UP_SECONDS:
        yield delay
        waited += delay
        delay = min(delay * 2, _RETRY_MAX_SECONDS)


def _out_of_descriptors(error: OSError) -> bool:
    return error.errno in OUT_OF_DESCRIPTORS


async def when_descriptors_allow(start: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`await start(*args)`; while it fails for want of descriptors (EMFILE, ENFILE:
    other tasks still hold them), wait and try again, so that a task does not fail for
    fanout's lack. After a minute of that, the error stands."""
    for delay in _retry_delays():
        try:
            return await start(*args)
        except OSError as exc:
            if not _out_of_descriptors(exc):
                raise
        await anyio.sleep(delay)
    return await start(*args)


def when_descriptors_allow_blocking(start: Callable[..., T], *args: Any, **options: Any) -> T:
    """`when_descriptors_allow` for a thread that may block (a Dask worker's task)."""
    for delay in _retry_delays():
        try:
            return start(*args, **options)
        except OSError as exc:
            if not _out_of_descriptors(exc):
                raise
        time.sleep(delay)
    return start(*args, **options)
