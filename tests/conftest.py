"""Shared fixtures: every test gets its own output folder and working directory."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import configuration, settings

# Property tests keep nothing in the checkout (.hypothesis/: an example database and
# a cache): their home is a temporary folder, removed when the test run ends.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="fanout-tests-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
settings.register_profile("fanout", database=None)
settings.load_profile("fanout")

FANOUT = Path(sys.executable).with_name("fanout")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test in tmp_path with the output dir inside it and no colour."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FANOUT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("FANOUT_CHILD_WATCHER", raising=False)
    # This suite may itself run as one job of a CI matrix: no test is sharded by that.
    for name in ("FANOUT_SHARD", "CI_NODE_INDEX", "CI_NODE_TOTAL", "CIRCLE_NODE_INDEX",
                 "CIRCLE_NODE_TOTAL", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT",
                 "SEMAPHORE_JOB_INDEX", "SEMAPHORE_JOB_COUNT"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path

    def run_dirs(self) -> list[Path]:
        if not self.output_dir.exists():
            return []
        return sorted(p for p in self.output_dir.iterdir() if p.is_dir())

    @property
    def run_dir(self) -> Path:
        dirs = self.run_dirs()
        assert len(dirs) == 1, f"expected one run folder, found {dirs}"
        return dirs[0]

    def manifest(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.run_dir / "manifest.json").read_text())
        return document

    def details(self, name: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.run_dir / name).read_text())
        return document


def run_fanout(
    *args: str, input: bytes | None = None, timeout: float = 30, env: dict[str, str] | None = None
) -> Completed:
    """Run the installed `fanout` console script as a user would."""
    completed = subprocess.run(
        [str(FANOUT), *args],
        input=input if input is not None else b"",
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Completed(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
        Path(os.environ["FANOUT_OUTPUT_DIR"]),
    )


def write_tasks(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a server or worker a test started; kill it if it does not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def process_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may linger when PID 1 does not reap)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    state = raw[raw.rfind(b")") + 2 :].split()[0]
    return state not in (b"Z", b"X")


# The real-model fixture (tier c) lives with its server helper.
pytest_plugins = ["tests.model_server"]
