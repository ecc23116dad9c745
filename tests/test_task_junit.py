"""A task's own test-runner JUnit (issue 18, part 4): named by the task file's `junit`
key or --task-junit, read after each attempt only when written during it, copied into
the run folder, recorded in the task's row, and merged into --junit."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from tests.helpers import (
    assert_clean,
    manifest_rows,
    one_error_line,
    read_journal,
    run_fanout,
    run_json,
    write_tasks,
)

PASSING_AND_FAILING = """\
def test_adds():
    assert 1 + 1 == 2


def test_subtracts():
    assert 2 - 1 == 0


def test_multiplies():
    assert 2 * 2 == 4
"""
PASSING = """\
def test_up():
    assert True
"""

PYTEST_TASKS = f"""\
[defaults]
junit = "reports/{{#}}.xml"

[[task]]
id = "{{}}"
cmd = ["{sys.executable}", "-m", "pytest", "-q", "-p", "no:cacheprovider", "{{}}",
       "--junitxml=reports/{{#}}.xml"]
glob = "tests/test_*.py"
"""

SMALL_REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="old" tests="1" failures="1" errors="0" skipped="0" time="1">
<testcase classname="stale" name="test_from_yesterday" time="1.0"><failure message="x"/>
</testcase></testsuite></testsuites>
"""


def pytest_suite(root: Path) -> Path:
    (root / "tests").mkdir()
    (root / "tests" / "test_math.py").write_text(PASSING_AND_FAILING)
    (root / "tests" / "test_up.py").write_text(PASSING)
    return write_tasks(root / "tasks.toml", PYTEST_TASKS)


def junit_cases(path: Path) -> dict[str, ElementTree.Element]:
    root = ElementTree.parse(path).getroot()
    return {f"{case.get('classname')}::{case.get('name')}": case for case in root.iter("testcase")}


def test_pytest_junit_is_copied_counted_and_merged_into_the_runs_junit(tmp_path: Path) -> None:
    tasks = pytest_suite(tmp_path)

    completed = run_fanout("run", str(tasks), "--junit", "junit.xml", "-j", "2")

    assert completed.returncode == 1, completed.stderr  # test_subtracts fails
    assert_clean(completed)
    rows = manifest_rows(completed)
    math = rows["tests/test_math.py"]
    assert math["status"] == "failure"
    assert math["program"] == Path(sys.executable).name  # as timings.program_of names it
    record = math["junit"]
    assert record["file"] == "0001-tests_test_math.py.junit.xml"
    assert {key: record[key] for key in ("tests", "failures", "errors", "skipped")} == {
        "tests": 3, "failures": 1, "errors": 0, "skipped": 0,
    }  # fmt: skip
    assert 0 <= record["seconds"] < math["duration_ms"] / 1000
    copy = completed.run_dir / record["file"]
    assert copy.read_bytes() == (tmp_path / "reports" / "1.xml").read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600  # private, as the run's other files
    assert rows["tests/test_up.py"]["junit"]["tests"] == 1

    ended = {event["task_id"]: event for event in read_journal(completed.run_dir)
             if event["event"] == "task_ended"}  # fmt: skip
    assert ended["tests/test_math.py"]["junit"] == record

    cases = junit_cases(tmp_path / "junit.xml")
    assert set(cases) == {
        "tests.test_math::test_adds", "tests.test_math::test_subtracts",
        "tests.test_math::test_multiplies", "tests.test_up::test_up",
    }  # fmt: skip: each test, not each task; no fanout testcase for a task with a report
    assert cases["tests.test_math::test_subtracts"].find("failure") is not None
    root = ElementTree.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "0")
    suites = root.findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["pytest", "pytest", suites[-1].get("name")]
    assert suites[-1].find("properties") is not None  # fanout's own suite, last, now empty
    assert suites[-1].get("tests") == "0"


def test_the_json_envelope_shows_the_junit_record(tmp_path: Path) -> None:
    tasks = pytest_suite(tmp_path)

    completed, document = run_json(str(tasks))

    assert_clean(completed)
    rows = {row["task_id"]: row for row in document["tasks"]}
    assert rows["tests/test_up.py"]["junit"]["tests"] == 1
    assert rows["tests/test_up.py"]["program"] == Path(sys.executable).name


def test_a_stale_report_from_an_earlier_run_is_never_taken(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "1.xml").write_text(SMALL_REPORT)
    fresh_but_before = time.time() - 0.2  # written just before the run: still stale
    os.utime(reports / "1.xml", (fresh_but_before, fresh_but_before))
    tasks = write_tasks(tmp_path / "tasks.toml", """\
[[task]]
id = "forgets"
cmd = "echo ran"
junit = "reports/1.xml"
""")

    completed = run_fanout("run", str(tasks), "--junit", "junit.xml")

    assert completed.returncode == 0, completed.stderr  # the status is not changed by it
    row = manifest_rows(completed)["forgets"]
    assert row["junit"] == {
        "file": None, "reason": "reports/1.xml: not written during this attempt (an older file)"
    }
    assert not list(completed.run_dir.glob("*.junit.xml"))
    cases = junit_cases(tmp_path / "junit.xml")
    assert list(cases) == ["tasks::forgets"]  # fanout's own testcase, not yesterday's tests


def test_a_missing_or_broken_report_is_a_reason_not_a_status(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><testsuites>&b;</testsuites>'
    )
    (tmp_path / "bomb.xml").write_text(bomb)
    tasks = write_tasks(tmp_path / "tasks.toml", f"""\
[[task]]
id = "missing"
cmd = "true"
junit = "nowhere/r.xml"

[[task]]
id = "garbage"
cmd = "echo 'not xml' > g.xml"
junit = "g.xml"

[[task]]
id = "entities"
cmd = "cp {tmp_path / 'bomb.xml'} e.xml"
junit = "e.xml"

[[task]]
id = "not-junit"
cmd = "echo '<html/>' > h.xml"
junit = "h.xml"

[[task]]
id = "folder"
cmd = "mkdir -p d.xml"
junit = "d.xml"
""")

    completed = run_fanout("run", str(tasks), "--junit", "junit.xml")

    assert completed.returncode == 0, completed.stderr
    rows = manifest_rows(completed)
    reasons = {task_id: row["junit"]["reason"] for task_id, row in rows.items()}
    assert reasons["missing"] == "nowhere/r.xml: not written"
    assert reasons["garbage"].startswith("g.xml: not JUnit XML: syntax error")
    assert reasons["entities"] == (
        "e.xml: not JUnit XML: a DTD (<!DOCTYPE ...>) is not allowed in a JUnit report"
    )
    assert reasons["not-junit"] == (
        "h.xml: not JUnit XML: the root element is <html>, not <testsuites> or <testsuite>"
    )
    assert reasons["folder"] == "d.xml: not a regular file"
    assert all(row["status"] == "success" for row in rows.values())
    assert not list(completed.run_dir.glob("*.junit.xml"))
    assert not list(completed.run_dir.glob(".*.tmp"))  # no half-written copy left behind
    assert set(junit_cases(tmp_path / "junit.xml")) == {f"tasks::{task}" for task in rows}


def test_value_tasks_name_their_report_with_task_junit(tmp_path: Path) -> None:
    script = (
        "mkdir -p out && printf '<testsuite name=\"s\"><testcase classname=\"c\" "
        "name=\"%s\" time=\"0.25\"/></testsuite>' \"$1\" > out/$2.xml"
    )

    completed = run_fanout(
        "run", "--task-junit", "out/{#}.xml", "--junit", "junit.xml", "--",
        "sh", "-c", script, "sh", "{}", "{#}", ":::", "alpha", "beta",
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    rows = manifest_rows(completed)
    assert rows["alpha"]["junit"]["file"] == "0001-alpha.junit.xml"
    assert rows["beta"]["junit"]["seconds"] == 0.25
    assert rows["alpha"]["program"] == "sh"
    assert set(junit_cases(tmp_path / "junit.xml")) == {"c::alpha", "c::beta"}


def test_each_attempt_is_judged_alone_a_retry_that_writes_none_drops_the_copy(
    tmp_path: Path,
) -> None:
    # The first attempt writes a report and fails; the retry writes none and fails.
    script = (
        "if [ ! -e tried ]; then touch tried; printf '<testsuite name=\"s\"><testcase "
        "name=\"t\"/></testsuite>' > r.xml; fi; exit 1"
    )

    completed = run_fanout(
        "run", "--retries", "1", "--retry-delay", "300ms", "--task-junit", "r.xml",
        "--", "sh", "-c", script, ":::", "x",
    )  # fmt: skip

    assert completed.returncode == 1, completed.stderr
    row = manifest_rows(completed)["x"]
    assert row["attempts"] == 2
    assert row["junit"] == {"file": None,
                            "reason": "r.xml: not written during this attempt (an older file)"}
    assert not list(completed.run_dir.glob("*.junit.xml"))


def test_a_bad_junit_key_is_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", """\
[[task]]
id = "a"
cmd = "true"
junit = 5
""")
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert "tasks.toml:4" in line and "junit" in line and "5" in line

    fanned = write_tasks(tmp_path / "fanned.toml", """\
[[task]]
cmd = "true {}"
foreach = ["a", "b"]
junit = "r/{=1=}.xml"
""")
    line = one_error_line(run_fanout("run", str(fanned)), no_run_folder=True)
    assert "fanned.toml:4" in line and "{=1=}" in line


def test_a_bad_task_junit_template_is_one_line(tmp_path: Path) -> None:
    completed = run_fanout("run", "--task-junit", "r/{=1=}.xml", "--", "true", ":::", "a")
    line = one_error_line(completed, no_run_folder=True)  # said before anything runs
    assert line.startswith("fanout: error: --task-junit: 'r/{=1=}.xml': {=1=} is not")


def test_the_task_list_keeps_junit_for_resume(tmp_path: Path) -> None:
    tasks = pytest_suite(tmp_path)
    completed = run_fanout("run", str(tasks))
    lines = (completed.run_dir / "tasks.jsonl").read_text().splitlines()
    saved = [json.loads(line) for line in lines]
    junits: list[Any] = [entry.get("junit") for entry in saved if "seq" in entry]
    assert junits == ["reports/1.xml", "reports/2.xml"]


def test_run_table_task_junit_applies_to_a_task_files_tasks_with_the_slot(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", '''\
[run]
task_junit = "slot-{%}/{}.xml"
jobs = 1

[[task]]
cmd = """mkdir -p slot-{%} && \\
       printf '<testsuite><testcase name="%s"/></testsuite>' {} > slot-{%}/{}.xml"""
foreach = ["one", "two"]
''')

    completed = run_fanout("run", str(tasks), "--junit", "junit.xml")

    assert completed.returncode == 0, completed.stderr
    rows = manifest_rows(completed)
    assert rows["one"]["junit"]["tests"] == 1 and rows["two"]["junit"]["tests"] == 1
    assert set(junit_cases(tmp_path / "junit.xml")) == {"None::one", "None::two"}
