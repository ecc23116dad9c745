"""--nice N (fanout_cli/nice.py): the value, then real tasks reading their own niceness;
a refused niceness (an unprivileged user asking for less than its own) is a warning and
the run goes on, as GNU parallel goes on. The Dask worker's side is in tests/test_dask.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fanout_cli import nice
from tests.helpers import FANOUT, one_error_line, run_fanout, write_tasks

# The task prints the niceness of its shell and of a child of it.
READ_NICENESS = ("sh", "-c", "ps -o ni= -p $$; cut -d' ' -f19 /proc/$$/stat")


@pytest.mark.parametrize(
    ("given", "expected"), [("5", 5), ("-20", -20), ("19", 19), ("+3", 3), (0, 0), (-4, -4)]
)
def test_a_niceness_is_read_from_text_or_toml(given: object, expected: int) -> None:
    assert nice.parse_nice(given) == expected


@pytest.mark.parametrize("given", ["20", "-21", "1.5", "abc", "", "--3", True, 2.0, 10**30])
def test_a_bad_niceness_says_what_is_expected(given: object) -> None:
    with pytest.raises(ValueError, match="expected a niceness from -20 to 19"):
        nice.parse_nice(given)


def test_local_tasks_run_at_the_niceness_asked() -> None:
    completed = run_fanout("run", "-q", "--group", "--nice", "7", "--", *READ_NICENESS,
                           ":::", "a", "b")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["7"] * 4
    assert completed.manifest()["options"]["nice"] == 7


def test_a_task_files_nice_is_used_and_kept(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "t.toml",
                        "[run]\nnice = 4\n[[task]]\ncmd = \"ps -o ni= -p $$\"\n")  # fmt: skip
    completed = run_fanout("run", "-q", "--group", str(tasks))
    assert completed.stdout.split() == ["4"], completed.stderr
    assert completed.manifest()["options"]["nice"] == 4


@pytest.mark.parametrize("given", ["20", "-21", "abc"])
def test_a_bad_nice_is_one_line_and_exit_2(given: str) -> None:
    line = one_error_line(run_fanout("run", "--nice", given, "--", "true", ":::", "a"),
                          no_run_folder=True)  # fmt: skip
    assert line.startswith("fanout: error: --nice: expected a niceness from -20 to 19"), line


def test_without_nice_the_tasks_keep_fanouts_niceness() -> None:
    completed = run_fanout("run", "-q", "--group", "--", *READ_NICENESS, ":::", "a")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert completed.stdout.split() == [str(own)] * 2, completed.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run fanout as an unprivileged user")  # fmt: skip
def test_a_refused_niceness_is_one_warning_and_the_run_goes_on() -> None:
    with tempfile.TemporaryDirectory(prefix="fanout-nice-") as folder:  # nobody may enter it
        os.chmod(folder, 0o777)
        completed = _as_nobody(Path(folder), "--nice", "-5")
    assert completed.returncode == 0, completed.stderr
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert completed.stdout.split() == [str(own)] * 2
    warnings = [line for line in completed.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("fanout: warning: --nice -5: the "
                                                         "system refused it"), warnings  # fmt: skip


def _as_nobody(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    out = folder / "out"
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(FANOUT), "run",
         "-q", "--group", "--output-dir", str(out), *options, "--", *READ_NICENESS,
         ":::", "a"],
        capture_output=True, text=True, timeout=60, check=False, cwd=folder,
    )  # fmt: skip
