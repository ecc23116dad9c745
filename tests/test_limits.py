"""Descriptors: how many tasks fit a limit, and a start that meets EMFILE is retried
instead of recorded as an error. The end-to-end runs under a real limit are in
tests/hostile/test_resources.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import anyio
import pytest

from fanout_cli import limits
from fanout_cli.executors import AttemptPlan
from fanout_cli.executors.process import ProcessExecutor
from fanout_cli.executors.watchers import ChildProcess
from fanout_cli.models import TaskSpec, TaskStatus
from fanout_cli.options import PolicyOptions, RunConfig


@pytest.mark.parametrize(("limit", "jobs"), [(64, 13), (20, 1), (1024, 333), (27, 1), (30, 2)])
def test_jobs_that_fit_leave_fanout_its_own_descriptors(limit: int, jobs: int) -> None:
    assert limits.jobs_that_fit(limit) == jobs
    if jobs > 1:
        assert limits.descriptors_needed(jobs) <= limit < limits.descriptors_needed(jobs + 1)


def test_a_config_that_fits_is_returned_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "raise_descriptor_limit", lambda needed: needed)
    config = RunConfig(policy=PolicyOptions(jobs=200))
    assert limits.fit_descriptor_limit(config) is config


def test_a_config_that_does_not_fit_runs_fewer_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(limits, "raise_descriptor_limit", lambda needed: 64)
    fitted = limits.fit_descriptor_limit(RunConfig(policy=PolicyOptions(jobs=200)))
    assert fitted.policy.jobs == 13
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "fanout: warning: -j 200 needs about 624 open files but the limit is 64 "
        "(ulimit -n): running 13 at once"
    ]


def test_a_start_that_meets_emfile_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    executor = ProcessExecutor()
    real_spawn = executor._spawn
    failures = [errno.EMFILE, errno.ENFILE]

    async def spawn(*args: object) -> ChildProcess:
        if failures:
            raise OSError(failures.pop(0), "Too many open files")
        return await real_spawn(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(executor, "_spawn", spawn)
    plan = AttemptPlan(1, 1, str(tmp_path / "out"), str(tmp_path / "err"), None, 1.0,
                       frozenset({0}))  # fmt: skip

    async def attempt() -> TaskStatus:
        async with executor.session():
            spec = TaskSpec(seq=1, task_id="t", command="echo started", origin="test")
            return (await executor.run_attempt(spec, plan)).status

    assert anyio.run(attempt) is TaskStatus.SUCCESS
    assert not failures
    assert (tmp_path / "out").read_text() == "started\n"


def test_another_start_failure_is_still_an_error(tmp_path: Path) -> None:
    plan = AttemptPlan(1, 1, str(tmp_path / "out"), str(tmp_path / "err"), None, 1.0,
                       frozenset({0}))  # fmt: skip

    async def attempt() -> str:
        executor = ProcessExecutor()
        async with executor.session():
            spec = TaskSpec(seq=1, task_id="t", command=("no-such-program-here",), origin="test")
            result = await executor.run_attempt(spec, plan)
            assert result.status is TaskStatus.ERROR
            return result.reason

    assert anyio.run(attempt) == "command not found: no-such-program-here"


def test_a_blocking_start_that_meets_emfile_is_tried_again(tmp_path: Path) -> None:
    failures = [errno.EMFILE]

    def start(name: str, *, mode: str) -> str:
        if failures:
            raise OSError(failures.pop(), "Too many open files")
        (tmp_path / name).write_text(mode)
        return name

    assert limits.when_descriptors_allow_blocking(start, "started", mode="w") == "started"
    assert (tmp_path / "started").read_text() == "w"
    with pytest.raises(IsADirectoryError):  # any other error stands at once
        limits.when_descriptors_allow_blocking(os.open, "/", os.O_WRONLY)
