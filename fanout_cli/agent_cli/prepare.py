"""Set up an agent CLI's own state once, before parallel runs of it race to do it.

llm migrates its SQLite log database at the start of every run (`--no-log` too): on a
fresh llm home, or after an upgrade that adds a migration, runs started together fail
with "table ... already exists". A preset names a command that does that set-up alone
(`Preset.prepare`); `Preparing` runs it once, before the first task of that tool starts,
and every other task of the tool waits for it. Runs that disagree on where the tool
keeps its state (`Preset.state_variables`, such as LLM_USER_PATH in a task's env) are
set up once each, one after another. The set-up runs on this machine: with --executor
dask the tools run on the workers, and this wrapper is not used."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from fanout_cli.agent_cli import PRESETS
from fanout_cli.agent_cli.common import Preset
from fanout_cli.executors import AttemptPlan, Executor
from fanout_cli.models import Attempt, TaskSpec

PREPARE_TIMEOUT_SECONDS = 120.0
_REASON_CHARS = 300


class Preparing:
    """An executor that runs each agent CLI's set-up command once before handing its
    tasks on to `inner` (which runs every task, set up or not)."""

    def __init__(self, inner: Executor, environ: Mapping[str, str] | None = None) -> None:
        self.inner = inner
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = anyio.Lock()  # set-ups run one at a time: they may share a home
        self._done: set[tuple[str, ...]] = set()

    def session(self) -> AbstractAsyncContextManager[None]:
        return self._session()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[None]:
        async with self.inner.session():
            yield

    def kill_all(self) -> None:
        self.inner.kill_all()

    def abandoned(self, spec: TaskSpec) -> Mapping[str, Any] | None:
        return self.inner.abandoned(spec)

    async def run_attempt(self, spec: TaskSpec, plan: AttemptPlan) -> Attempt:
        tool = spec.agent.tool if spec.agent is not None else None
        preset = PRESETS.get(tool) if tool is not None else None
        if preset is not None and preset.prepare:
            environ = {**self._environ, **spec.env}
            key = state_key(preset, environ, spec.cwd)
            if key not in self._done:
                async with self._lock:
                    if key not in self._done:
                        await _prepare(preset, environ, spec.cwd)
                        self._done.add(key)
        return await self.inner.run_attempt(spec, plan)


def state_key(preset: Preset, environ: Mapping[str, str], cwd: str | None) -> tuple[str, ...]:
    """Where a run of the tool keeps its state: its variables' values, and the folder
    when one of them is a relative path (read from the task's cwd)."""
    values = tuple(environ.get(name, "") for name in preset.state_variables)
    relative = any(value and not os.path.isabs(value) for value in values)
    return (preset.name, *values, os.path.abspath(cwd or ".") if relative else "")


async def _prepare(preset: Preset, environ: Mapping[str, str], cwd: str | None) -> None:
    """Run the set-up command; a failure is one warning and the tasks go on (each then
    says what is wrong, as it would have without the set-up)."""
    import subprocess

    from fanout_cli.render.console import warn

    command = " ".join(preset.prepare)
    what = f"{command} (run once before parallel {preset.name} tasks, to set up its state)"
    try:
        with anyio.move_on_after(PREPARE_TIMEOUT_SECONDS) as timer:
            done = await anyio.run_process(
                list(preset.prepare), stdin=subprocess.DEVNULL, env=dict(environ), cwd=cwd,
                check=False,
            )  # fmt: skip
    except FileNotFoundError:
        return  # not installed: every task says so
    except OSError as exc:
        warn(f"{what} could not start: {exc.strerror}")
        return
    if timer.cancelled_caught:
        warn(f"{what} did not end within {PREPARE_TIMEOUT_SECONDS:.0f} s; the tasks go on")
        return
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        said = lines[-1].strip()[:_REASON_CHARS] if lines else "no message"
        warn(f"{what} failed (exit {done.returncode}): {said}; the tasks go on, and may "
             "race on its state")  # fmt: skip
