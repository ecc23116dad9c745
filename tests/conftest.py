"""Shared fixtures: every test gets its own output folder and working directory.
The helpers the tests share (running fanout, reading a run folder) are in helpers.py."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import configuration, settings

from tests.helpers import SHARD_VARIABLES

# Property tests keep nothing in the checkout (.hypothesis/: an example database and
# a cache): their home is a temporary folder, removed when the test run ends.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="fanout-tests-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
settings.register_profile("fanout", database=None)
settings.load_profile("fanout")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test in tmp_path with the output dir inside it and no colour."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FANOUT_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("FANOUT_CHILD_WATCHER", raising=False)
    # This suite may itself run as one job of a CI matrix: no test is sharded by that.
    for name in SHARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@pytest.fixture
def open_umask() -> Iterator[None]:
    """fanout's children inherit umask 000: a file's mode is then what fanout asked."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# The real-model fixture (tier c) and the real-browser one live with their helpers.
pytest_plugins = ["tests.model_server", "tests.browser_fixtures"]
