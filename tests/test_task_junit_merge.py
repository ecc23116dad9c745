"""Runner JUnit across shards (issue 18, part 4): `fanout merge --junit` merges each
task's copied report from its run folder (CI artifacts on another machine), and
`merge --timings-out`, `fanout timings export` and a run's own planning learn one
duration per test and the start-up of the program that ran them."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tracemalloc
from pathlib import Path
from xml.etree import ElementTree

from fanout_cli.junit import scan_junit
from fanout_cli.render.junit import write_junit
from fanout_cli.timings import Timings, load_timings, timings_from_runs
from tests.helpers import assert_clean, manifest_rows, one_error_line, run_fanout, write_tasks

TEST_FILES = {
    "test_alpha.py": "import time\n\n\ndef test_slow():\n    time.sleep(0.3)\n\n\n"
                     "def test_quick():\n    pass\n",
    "test_beta.py": "def test_one():\n    pass\n\n\ndef test_two():\n    assert 0\n",
    "test_gamma.py": "def test_three():\n    pass\n",
}  # fmt: skip

TASKS = f"""\
[[task]]
id = "{{}}"
cmd = ["{sys.executable}", "-m", "pytest", "-q", "-p", "no:cacheprovider", "{{}}",
       "--junitxml=reports/{{#}}.xml"]
glob = "tests/test_*.py"
junit = "reports/{{#}}.xml"
"""
ALL_TESTS = {
    "tests.test_alpha::test_slow", "tests.test_alpha::test_quick", "tests.test_beta::test_one",
    "tests.test_beta::test_two", "tests.test_gamma::test_three",
}  # fmt: skip


def suite(root: Path) -> Path:
    (root / "tests").mkdir()
    for name, text in TEST_FILES.items():
        (root / "tests" / name).write_text(text)
    return write_tasks(root / "tasks.toml", TASKS)


def run_shards(root: Path, tasks: Path) -> None:
    for index in (1, 2):
        completed = run_fanout("run", str(tasks), "--shard", f"{index}/2", "--output-dir",
                               str(root / "prev" / str(index)), "-q")  # fmt: skip
        assert completed.returncode in (0, 1), completed.stderr
        assert_clean(completed)


def test_merge_on_another_machine_shows_every_test_and_learns_per_test_timings(
    tmp_path: Path,
) -> None:
    tasks = suite(tmp_path)
    run_shards(tmp_path, tasks)
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tmp_path / "prev", artifacts)  # downloaded CI artifacts
    shutil.rmtree(tmp_path / "reports")  # the runner's own files stayed on the CI machines

    completed = run_fanout("merge", str(artifacts), "--junit", "report.xml",
                           "--timings-out", "timings.json")  # fmt: skip

    assert completed.returncode == 1, completed.stderr  # test_two fails
    assert_clean(completed)
    root = ElementTree.parse(tmp_path / "report.xml").getroot()
    cases = {f"{case.get('classname')}::{case.get('name')}" for case in root.iter("testcase")}
    assert cases == ALL_TESTS
    assert (root.get("tests"), root.get("failures")) == ("5", "1")
    merged_rows = manifest_rows(completed)
    assert merged_rows["tests/test_beta.py"]["junit"]["failures"] == 1

    document = json.loads((tmp_path / "timings.json").read_text())
    per_test = {key: entry["durations"] for key, entry in document["tasks"].items()}
    assert set(per_test) >= ALL_TESTS
    assert per_test["tests.test_alpha::test_slow"][0] >= 0.3
    assert document["tasks"]["tests.test_beta::test_two"]["last_status"] == "failure"
    program = Path(sys.executable).name
    samples = document["startup"][program]
    assert len(samples) == 3  # one a task: its wall time less its tests'
    assert all(sample > 0 for sample in samples)

    timings = load_timings(str(tmp_path / "timings.json"))
    assert timings.known("tests/test_alpha.py::test_slow") == per_test[
        "tests.test_alpha::test_slow"][0]  # fmt: skip: a pytest node id finds its test
    assert timings.startup_estimate(program) is not None


def test_timings_export_and_planning_read_the_copies_too(tmp_path: Path) -> None:
    tasks = suite(tmp_path)
    completed = run_fanout("run", str(tasks), "-q")
    assert completed.returncode == 1, completed.stderr

    exported = run_fanout("timings", "export")
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert set(document["tasks"]) >= ALL_TESTS
    assert Path(sys.executable).name in document["startup"]

    from_runs = timings_from_runs(completed.output_dir)
    assert from_runs.known("tests.test_gamma::test_three") is not None


def test_a_retried_task_gives_test_durations_but_no_start_up_sample(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "0001-t.junit.xml").write_text(
        '<testsuite><testcase classname="m" name="t" time="0.5"/></testsuite>'
    )
    row = {"task_id": "t", "status": "success", "duration_ms": 2500, "program": "pytest",
           "junit": {"file": "0001-t.junit.xml"}}  # fmt: skip
    once, twice = Timings(), Timings()
    once.add_rows([{**row, "attempts": 1}], str(run_dir))
    twice.add_rows([{**row, "attempts": 2}], str(run_dir))
    assert once.durations["m::t"] == [0.5] == twice.durations["m::t"]
    assert once.startup == {"pytest": [2.0]}
    assert twice.startup == {}
    short = Timings()
    short.add_rows([{**row, "attempts": 1, "duration_ms": 100}], str(run_dir))
    assert short.startup == {"pytest": [0.0]}  # never negative


def test_a_link_planted_for_a_copied_report_is_never_followed(tmp_path: Path) -> None:
    tasks = suite(tmp_path)
    completed = run_fanout("run", str(tasks), "-q")
    assert completed.returncode == 1, completed.stderr
    secret = tmp_path / "secret.xml"
    secret.write_text('<testsuite><testcase classname="SECRET" name="x"/></testsuite>')
    copy = completed.run_dir / manifest_rows(completed)["tests/test_gamma.py"]["junit"]["file"]
    copy.unlink()
    os.symlink(secret, copy)

    merged = run_fanout("merge", str(completed.run_dir), "--junit", "report.xml")

    line = one_error_line(merged)
    assert copy.name in line
    assert not (tmp_path / "report.xml").exists() or "SECRET" not in (
        tmp_path / "report.xml").read_text()  # fmt: skip


def test_a_corrupt_copy_falls_back_to_fanouts_own_testcase(tmp_path: Path) -> None:
    tasks = suite(tmp_path)
    completed = run_fanout("run", str(tasks), "-q")
    rows = manifest_rows(completed)
    copy = completed.run_dir / rows["tests/test_gamma.py"]["junit"]["file"]
    copy.write_text('<testsuites><testsuite name="x"><testcase name="half"')

    merged = run_fanout("merge", str(completed.run_dir), "--junit", "report.xml")

    assert merged.returncode == 1, merged.stderr
    root = ElementTree.parse(tmp_path / "report.xml").getroot()
    names = [case.get("name") for case in root.iter("testcase")]
    assert "half" not in names and "tests/test_gamma.py" in names
    assert root.get("tests") == str(len(names))


def big_report(path: Path, cases: int) -> None:
    with path.open("w") as out:
        out.write(f'<?xml version="1.0"?>\n<testsuites><testsuite name="big" tests="{cases}">\n')
        for number in range(cases):
            failure = '<failure message="boom">trace</failure>' if number % 1000 == 0 else ""
            out.write(f'<testcase classname="pkg.mod{number % 97}" name="test_{number}" '
                      f'time="0.001">{failure}</testcase>\n')  # fmt: skip
        out.write("</testsuite></testsuites>\n")


def test_100k_testcases_merge_in_flat_memory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    big_report(run_dir / "0001-big.junit.xml", 100_000)
    assert (run_dir / "0001-big.junit.xml").stat().st_size > 5_000_000
    rows = [{"task_id": "big", "seq": 1, "status": "failure", "duration_ms": 99_000,
             "run_dir": str(run_dir), "junit": {"file": "0001-big.junit.xml"}}]  # fmt: skip

    tracemalloc.start()
    try:
        write_junit(str(tmp_path / "out.xml"), rows, suite="s", run_id="r", timestamp=0,
                    duration=1.0)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 8_000_000, f"peak {peak} bytes: not streaming"
    with (tmp_path / "out.xml").open("rb") as merged:
        totals = scan_junit(merged, "out.xml")
    assert (totals.tests, totals.failures) == (100_000, 100)
    root_tag = (tmp_path / "out.xml").read_bytes()[:400].decode()
    assert 'tests="100000" failures="100"' in root_tag
