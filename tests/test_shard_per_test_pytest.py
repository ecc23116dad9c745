"""The README's pytest recipe, end to end: a real pytest suite, timed once to JUnit, then
split per test over 2 shards of -j 2 with `pytest --collect-only -q | grep '::' |
fanout run --shard I/2 -j 2 -X --timings ...`."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from tests.helpers import FANOUT

CONFTEST = """
import os, pytest

@pytest.fixture(autouse=True)
def _record(request):
    with open(os.path.join(os.path.dirname(__file__), "ran.log"), "a") as log:
        log.write(request.node.nodeid + "\\n")
"""
SLOW = "import time\n\ndef test_slow():\n    time.sleep(0.8)\n"
FAST = """import time, pytest

@pytest.mark.parametrize("n", range(12))
def test_fast(n):
    time.sleep(0.1)

class TestGroup:
    def test_one(self):
        time.sleep(0.05)

    def test_two(self):
        time.sleep(0.05)
"""
# The README's line; each command's JUnit goes to new/ (on CI a shard's machine starts
# with the last pipeline's reports only).
RECIPE = ("python -m pytest -p no:cacheprovider --collect-only -q | grep '::' | "
          "fanout run --shard {shard}/2 -j 2 -X --timings 'reports/*.xml' "
          "--output-dir out/{shard} -q {extra} -- "
          "python -m pytest -p no:cacheprovider -q --junitxml='new/{{#}}.xml' {{}}")  # fmt: skip


def suite(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    (root / "tests" / "test_slow.py").write_text(SLOW)
    (root / "tests" / "test_fast.py").write_text(FAST)
    return root


def shell(root: Path, line: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(FANOUT.parent), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])  # fmt: skip
    environ = {**os.environ, "PATH": path, "FANOUT_OUTPUT_DIR": str(root / "out")}
    for name in ("FANOUT_SHARD", "CI_NODE_INDEX", "CI_NODE_TOTAL", "PYTEST_ADDOPTS"):
        environ.pop(name, None)
    return subprocess.run(["sh", "-c", line], cwd=root, env=environ, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def test_the_pytest_recipe_runs_every_test_once_in_at_most_j_processes_a_shard(
    tmp_path: Path,
) -> None:
    root = suite(tmp_path / "project")
    timed = shell(root, "python -m pytest -p no:cacheprovider -q --junitxml=reports/all.xml")
    assert timed.returncode == 0, timed.stdout + timed.stderr
    everything = (root / "tests" / "ran.log").read_text().split()
    assert len(everything) == 15
    (root / "tests" / "ran.log").unlink()

    plans = [shell(root, RECIPE.format(shard=shard, extra="--dry-run")) for shard in (1, 2)]
    for plan in plans:
        assert plan.returncode == 0, plan.stderr
        assert "by recorded durations of every value" in plan.stdout, plan.stdout
    # The plan used the recorded times: the 0.8 s test (more than a quarter of the 2.1 s
    # in all) goes alone on its slot, which a split by count would not do.
    commands = [line for plan in plans for line in plan.stdout.splitlines() if "::" in line]
    assert any(line.endswith(" tests/test_slow.py::test_slow") for line in commands), commands
    assert len(commands) == 4, commands

    rows = []
    for shard in (1, 2):
        ran = shell(root, RECIPE.format(shard=shard, extra=""))
        assert ran.returncode == 0, ran.stdout + ran.stderr
        (run_dir,) = (root / "out" / str(shard)).iterdir()
        shard_rows = json.loads((run_dir / "manifest.json").read_text())["tasks"]
        assert 1 <= len(shard_rows) <= 2, shard_rows  # at most -j pytest processes
        assert all(row["status"] == "success" for row in shard_rows), shard_rows
        rows += shard_rows
    counted = collections.Counter((root / "tests" / "ran.log").read_text().split())
    assert sorted(counted) == sorted(everything)
    assert set(counted.values()) == {1}, counted  # every test exactly once over the shards
    assert "tests/test_slow.py::test_slow" in {row["task_id"] for row in rows}
    # {#} numbers the commands over both shards: one report each, every test in one.
    reports = sorted((root / "new").glob("*.xml"))
    assert [path.name for path in reports] == [f"{n}.xml" for n in range(1, len(rows) + 1)]
    cases = [case for path in reports for case in ElementTree.parse(path).iter("testcase")]
    assert len(cases) == len(everything)


def test_start_up_learnt_from_the_shards_reports_is_planned_for_the_next_pipeline(
    tmp_path: Path,
) -> None:
    # Shards whose commands keep their JUnit (--task-junit), merged with --timings-out:
    # the next pipeline plans every test from its own duration and each command from
    # pytest's start-up (the command's wall time less its tests').
    root = suite(tmp_path / "project")
    line = ("python -m pytest -p no:cacheprovider --collect-only -q | grep '::' | fanout run "
            "--shard {shard}/2 -j 2 -X {timings} --task-junit 'new/{{#}}.xml' --output-dir "
            "{out} -q {extra} -- python -m pytest -p no:cacheprovider -q "
            "--junitxml='new/{{#}}.xml' {{}}")  # fmt: skip
    for shard in (1, 2):
        ran = shell(root, line.format(shard=shard, timings="", out=f"runs/{shard}", extra=""))
        assert ran.returncode == 0, ran.stdout + ran.stderr
    merged = shell(root, "fanout merge -q runs/1 runs/2 --timings-out timings.json")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    learnt = json.loads((root / "timings.json").read_text())["startup"]
    assert list(learnt) == ["python"] and all(0 < seconds < 10 for seconds in learnt["python"])
    plan = shell(root, line.format(shard=1, timings="--timings timings.json", out="next",
                                   extra="--dry-run"))  # fmt: skip
    header = plan.stdout.splitlines()[0]
    assert "by recorded durations of every value" in header, plan.stdout + plan.stderr
    assert header.endswith("start-up a command"), header
