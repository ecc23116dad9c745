"""`-j` and `[run] jobs` in GNU parallel's forms: N, N%, +N, -N, 0 (fanout_cli/jobs.py),
resolved when read; the parser with a chosen CPU count, then the real command line."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from fanout_cli import jobs
from fanout_cli.limits import jobs_that_fit
from fanout_cli.values import MAX_JOBS
from tests.helpers import one_error_line, run_fanout, write_tasks

CPUS = os.cpu_count() or 1


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "cpu_count", lambda: 8)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("3", 3), (3, 3), ("50%", 4), ("150%", 12), ("10.5%", 1), ("12.5%", 1), ("12.6%", 2),
     ("0.01%", 1), ("100%", 8), ("+2", 10), ("+0", 8), ("-0", 8), ("-3", 5), ("-7", 1),
     ("-8", 1), ("-100", 1), (" +2 ", 10), ("10000", MAX_JOBS)],
)  # fmt: skip
def test_relative_forms_are_resolved_against_the_cpu_count(
    eight_cpus: None, given: object, expected: int
) -> None:
    assert jobs.parse_jobs_spec(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [("0%", "above 0%"), ("0.0%", "above 0%"), ("1.5", "got '1.5'"), ("++2", "got '++2'"),
     ("abc", "got 'abc'"), ("10001", "from 1 to 10000"), ("+9993", "at most 10000"),
     ("125001%", "at most 10000"), ("%", "got '%'"), ("50 %", "got '50 %'"), ("", "got ''"),
     ("-", "got '-'"), ("+-2", "got '+-2'"), (-2, 'a string: jobs = "-2"'), (True, "True"),
     (1.5, "1.5"), (10_001, "from 1 to 10000"), ("9" * 30 + "%", "got '999"),
     ("+" + "9" * 30, "got '+999")],
)  # fmt: skip
def test_bad_values_say_what_is_expected(eight_cpus: None, given: object, problem: str) -> None:
    with pytest.raises(ValueError, match="expected") as caught:
        jobs.parse_jobs_spec(given)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_zero_is_what_the_hard_descriptor_and_process_limits_allow() -> None:
    _, hard_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    processes, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    expected = MAX_JOBS
    if hard_files != resource.RLIM_INFINITY:
        expected = min(expected, jobs_that_fit(hard_files))
    if processes != resource.RLIM_INFINITY:
        expected = min(expected, processes)
    assert jobs.parse_jobs_spec("0") == jobs.parse_jobs_spec(0) == expected
    assert jobs.parse_jobs_spec("000") == expected


def test_zero_is_bounded_by_a_low_process_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {resource.RLIMIT_NOFILE: (1024, 4096), resource.RLIMIT_NPROC: (50, 100)}
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits[which])
    assert jobs.parse_jobs_spec("0") == 50
    limits[resource.RLIMIT_NPROC] = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    assert jobs.parse_jobs_spec("0") == jobs_that_fit(4096)  # the hard limit, not the soft
    limits[resource.RLIMIT_NOFILE] = (1024, resource.RLIM_INFINITY)
    assert jobs.parse_jobs_spec("0") == MAX_JOBS


# --- the command line, a task file, the manifest, --dry-run ---------------------------------


def test_a_relative_jobs_is_resolved_and_the_manifest_keeps_the_number() -> None:
    completed = run_fanout("run", "-q", "-j", "+1", "--", "true", ":::", "a", "b")
    assert completed.returncode == 0, completed.stderr
    assert completed.manifest()["options"]["jobs"] == CPUS + 1


@pytest.mark.parametrize("given", ["0%", "-j", "1.5", "++2", "10001", "abc"])
def test_a_bad_jobs_is_one_line_and_exit_2(given: str) -> None:
    line = one_error_line(run_fanout("run", "-j", given, "--", "true", ":::", "a"),
                          no_run_folder=True)  # fmt: skip
    assert line.startswith("fanout: error: --jobs: expected"), line


def test_a_task_files_jobs_takes_the_same_forms(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml",
                        '[run]\njobs = "200%"\n[[task]]\nid = "a"\ncmd = "true"\n')  # fmt: skip
    completed = run_fanout("run", "-q", str(tasks))
    assert completed.returncode == 0, completed.stderr
    assert completed.manifest()["options"]["jobs"] == 2 * CPUS
    bad = write_tasks(tmp_path / "bad.toml", '[run]\njobs = -1\n[[task]]\ncmd = "true"\n')
    line = one_error_line(run_fanout("run", str(bad)))
    assert "jobs" in line and 'a string: jobs = "-1"' in line, line


def test_dry_run_gives_the_slots_of_a_relative_jobs() -> None:
    completed = run_fanout("run", "--dry-run", "-j", "+1", "--", "echo", "{%}",
                           ":::", *map(str, range(1, CPUS + 3)))  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    slots = [int(line.split()[1]) for line in completed.stdout.splitlines()]
    assert slots == [*range(1, CPUS + 2), 1]


def test_a_shard_is_planned_on_the_slots_a_relative_jobs_gives() -> None:
    completed = run_fanout("run", "--dry-run", "--shard", "1/2", "-j", "+1", "--", "echo",
                           ":::", *map(str, range(12)))  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert f"of {CPUS + 1} slots" in completed.stdout + completed.stderr
