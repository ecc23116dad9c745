"""The examples run as their READMEs say."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.conftest import run_fanout

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
def test_ci_sharding_example_splits_runs_and_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/ci-sharding/README.md: four shards, then one merge, then a plan from the
    merged timings. `python` there must be the one with pytest: this venv's."""
    example = tmp_path / "ci-sharding"
    shutil.copytree(EXAMPLES / "ci-sharding", example)
    monkeypatch.chdir(example)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    files = sorted(str(path.relative_to(example)) for path in example.glob("tests/test_*.py"))
    assert len(files) == 8

    ran: list[str] = []
    for shard in range(1, 5):
        completed = run_fanout(
            "run", "tasks.toml", "--shard", f"{shard}/4", "--output-dir", f"runs/{shard}",
            "--junit", f"junit-{shard}.xml", "-q", env=env, timeout=60,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert f"of shard {shard}/4" in completed.stdout
        cases = ElementTree.parse(example / f"junit-{shard}.xml").getroot().iter("testcase")
        ran += [case.attrib["name"] for case in cases]
    assert sorted(ran) == files  # disjoint, and every test file ran once

    merged = run_fanout(
        "merge", "runs/", "--junit", "report.xml", "--timings-out", "timings.json",
        "--output-dir", "merged", env=env,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    report = ElementTree.parse(example / "report.xml").getroot()
    assert report.attrib["tests"] == "8"
    assert report.attrib["failures"] == "0"
    recorded = json.loads((example / "timings.json").read_text())["tasks"]
    assert sorted(recorded) == files

    plan = run_fanout(
        "run", "tasks.toml", "--shard", "1/4", "--timings", "timings.json", "--dry-run",
        env=env,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[0].startswith("# 4 shards by recorded durations of every task")
    assert next(line for line in lines if line.startswith("# shard ")).endswith("<- this shard")
    commands = [line for line in lines if not line.startswith("#")]
    assert commands and all(line.startswith("python -m pytest") for line in commands)
