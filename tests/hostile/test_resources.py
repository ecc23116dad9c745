"""Class 6 of issue 14: fanout's own resources. A low descriptor limit must never make
a task fail: fanout raises the soft limit to the hard one, and when `-j` still does not
fit it runs fewer tasks at once, with one warning. Each test runs the installed binary
under a limit set in the child before it starts."""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import pytest

from tests.helpers import FANOUT


def run_limited(soft: int, hard: int, *args: str) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run(
        [str(FANOUT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,  # the limit is set in the child, before fanout starts
        check=False,
    )


def statuses(output_dir: Path) -> list[str]:
    (manifest,) = output_dir.glob("*/manifest.json")
    return [task["status"] for task in json.loads(manifest.read_text())["tasks"]]


def test_a_low_hard_limit_runs_fewer_at_once_with_one_warning_and_no_task_fails() -> None:
    values = [str(number) for number in range(200)]
    completed = run_limited(64, 64, "run", "-q", "-j", "200", "--", "echo", ":::", *values)
    assert completed.returncode == 0, (completed.stdout, completed.stderr[-2000:])
    assert "Traceback" not in completed.stderr
    (warning,) = completed.stderr.splitlines()
    assert warning.startswith("fanout: warning: "), warning
    assert "-j 200" in warning and "64" in warning, warning
    assert "at once" in warning, warning
    assert statuses(Path("out")) == ["success"] * 200
    # The run records the -j asked for: a resume with more descriptors runs that many.
    (manifest,) = Path("out").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["options"]["jobs"] == 200


def test_a_low_soft_limit_is_raised_to_the_hard_one_without_a_warning() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard descriptor limit here is only {hard}")
    values = [str(number) for number in range(200)]
    completed = run_limited(
        64, 2048, "run", "-q", "-j", "200", "--", "sleep 0.2; echo", ":::", *values
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr[-2000:])
    assert completed.stderr == ""
    assert statuses(Path("out")) == ["success"] * 200


def test_a_warning_is_given_even_when_the_limit_fits_only_one_task() -> None:
    completed = run_limited(20, 20, "run", "-q", "-j", "8", "--", "echo", ":::", "a", "b", "c")
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    (warning,) = completed.stderr.splitlines()
    assert "1 at once" in warning, warning
    assert statuses(Path("out")) == ["success"] * 3
