"""JUnit XML: the report fanout writes, and durations read from any runner's report."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from fanout_cli.junit import junit_key_candidates, parse_seconds, read_junit_durations
from fanout_cli.render.junit import write_junit

STARTED = 1_763_806_530.75  # 2025-11-22T10:15:30.75Z


# The grammar CI systems read ------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    attributes: frozenset[str]
    required: frozenset[str] = frozenset()
    numeric: frozenset[str] = frozenset()
    children: frozenset[str] = frozenset()


def rule(attributes: str, required: str = "", numeric: str = "", children: str = "") -> Rule:
    return Rule(
        frozenset(attributes.split()),
        frozenset(required.split()),
        frozenset(numeric.split()),
        frozenset(children.split()),
    )


OUTCOMES = frozenset({"failure", "error", "skipped"})
# The Jenkins xunit plugin's junit-10.xsd (the release whose testcase has file and
# line), which is also the shape GitLab, dorny/test-reporter and
# mikepenz/action-junit-report read. One extension: `skipped` on <testsuites>, which
# junit-10.xsd lacks and the junit plugin, GitLab and both actions ignore.
SCHEMA = {
    "testsuites": rule(
        "name time tests failures errors disabled skipped",
        numeric="time tests failures errors skipped",
        children="testsuite",
    ),
    "testsuite": rule(
        "name tests failures errors group time disabled skipped skips timestamp hostname id"
        " package assertions file skip log url",
        required="name tests failures errors",
        numeric="tests failures errors skipped time id",
        children="testsuite properties testcase system-out system-err",
    ),
    "properties": rule("", children="property"),
    "property": rule("name value", required="name value"),
    "testcase": rule(
        "name assertions time timestamp classname status class file line log group url",
        required="name",
        numeric="time",
        children="skipped error failure rerunFailure rerunError system-out system-err",
    ),
    "failure": rule("type message"),
    "error": rule("type message"),
    "skipped": rule("type message"),
    "system-out": rule(""),
    "system-err": rule(""),
}
NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
# The Ant schema's pattern: Jenkins reads the stamp without a zone.
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


def check_grammar(element: ElementTree.Element) -> None:
    """Every element, attribute and child allowed; numbers parse; counts match."""
    allowed = SCHEMA.get(element.tag)
    assert allowed is not None, f"unknown element <{element.tag}>"
    attributes = set(element.attrib)
    assert attributes <= allowed.attributes, f"<{element.tag}> {attributes - allowed.attributes}"
    assert allowed.required <= attributes, f"<{element.tag}> lacks {allowed.required - attributes}"
    for name in allowed.numeric & attributes:
        assert NUMBER.fullmatch(element.attrib[name]), f"<{element.tag} {name}=...> not a number"
    tags = [child.tag for child in element]
    assert set(tags) <= allowed.children, f"<{element.tag}> holds {set(tags) - allowed.children}"
    if not allowed.children:
        assert not len(element)
    if element.tag == "testcase":
        assert sum(tag in OUTCOMES for tag in tags) <= 1
        order = [0 if tag in OUTCOMES else 1 if tag == "system-out" else 2 for tag in tags]
        assert order == sorted(order), f"outcome, system-out, system-err in that order: {tags}"
    if element.tag == "testsuite":
        assert TIMESTAMP.fullmatch(element.attrib["timestamp"])
        assert suite_counts(element) == counts_of(element)
    if element.tag == "testsuites":
        totals = [suite_counts(suite) for suite in element]
        summed = {key: sum(counts[key] for counts in totals) for key in ("tests", "failures")}
        summed |= {key: sum(counts[key] for counts in totals) for key in ("errors", "skipped")}
        assert counts_of(element) == summed
    for child in element:
        check_grammar(child)


def counts_of(element: ElementTree.Element) -> dict[str, int]:
    return {key: int(element.attrib[key]) for key in ("tests", "failures", "errors", "skipped")}


def suite_counts(suite: ElementTree.Element) -> dict[str, int]:
    """What a reader counts: testcases, and those holding each outcome."""
    cases = suite.findall("testcase")
    return {
        "tests": len(cases),
        "failures": sum(case.find("failure") is not None for case in cases),
        "errors": sum(case.find("error") is not None for case in cases),
        "skipped": sum(case.find("skipped") is not None for case in cases),
    }


# Writing ----------------------------------------------------------------------------


def task_row(seq: int, task_id: str, status: str, **fields: Any) -> dict[str, Any]:
    """A task row as manifest.json keeps it."""
    return {
        "task_id": task_id,
        "seq": seq,
        "status": status,
        "exit_code": 0 if status == "success" else None,
        "duration_ms": 1000 * seq + 5,
        "attempts": 1,
        "summary": f"{task_id} {status}",
        "details_file": f"{seq:04d}-{task_id}.json",
        "origin": f"tasks.toml:{seq * 4}",
        "reason": None,
    } | fields


def add_outputs(run_dir: Path, row: Mapping[str, Any], stdout: bytes, stderr: bytes) -> None:
    stem = str(row["details_file"]).removesuffix(".json")
    (run_dir / f"{stem}.json").write_text("{}")
    (run_dir / f"{stem}.stdout").write_bytes(stdout)
    (run_dir / f"{stem}.stderr").write_bytes(stderr)


def write(path: Path, rows: list[dict[str, Any]], **options: Any) -> ElementTree.Element:
    settings: dict[str, Any] = {
        "suite": "fanout run tasks.toml",
        "run_id": "20251122T101530-3f9a",
        "timestamp": STARTED,
        "duration": 64.25,
    } | options
    write_junit(str(path), rows, **settings)
    root = ElementTree.parse(path).getroot()
    check_grammar(root)
    return root


def case(root: ElementTree.Element, name: str) -> ElementTree.Element:
    found = [element for element in root.iter("testcase") if element.get("name") == name]
    assert len(found) == 1, name
    return found[0]


def test_one_testcase_per_task_with_status_counts_and_run_properties(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = [
        task_row(1, "lint", "success", run_dir=str(run_dir)),
        task_row(2, "unit", "failure", exit_code=1, reason="exit 1", run_dir=str(run_dir)),
        task_row(3, "e2e", "timeout", reason="timed out after 60s", origin="stdin:3"),
        task_row(4, "docs", "error", reason="command not found", details_file=None),
        task_row(5, "bench", "cancelled", reason="fail-fast", duration_ms=None, origin=":::5"),
        task_row(6, "slow", "cancelled", reason=None, origin="glob:src/a.py"),
    ]
    add_outputs(run_dir, rows[0], b"All checks passed!\n", b"")
    add_outputs(run_dir, rows[1], b"collected 3 items\n", b"FAILED tests/test_x.py::test_y\n")

    root = write(
        tmp_path / "junit.xml", rows, shard="2/4", properties={"ci_job": "1234", "git": "abc"}
    )

    assert root.tag == "testsuites"
    assert root.attrib == {
        "name": "fanout run tasks.toml",
        "tests": "6",
        "failures": "2",
        "errors": "1",
        "skipped": "2",
        "time": "64.250",
    }
    [suite] = root
    assert suite.attrib == {
        "name": "fanout run tasks.toml",
        "tests": "6",
        "failures": "2",
        "errors": "1",
        "skipped": "2",
        "time": "64.250",
        "timestamp": "2025-11-22T10:15:30",
        "hostname": os.uname().nodename,
        "id": "0",
    }
    properties = suite.find("properties")
    assert properties is not None and suite[0] is properties
    assert [(p.get("name"), p.get("value")) for p in properties] == [
        ("run_id", "20251122T101530-3f9a"),
        ("shard", "2/4"),
        ("ci_job", "1234"),
        ("git", "abc"),
    ]
    assert [element.get("name") for element in suite.iter("testcase")] == [
        "lint", "unit", "e2e", "docs", "bench", "slow",
    ]  # fmt: skip

    lint = case(root, "lint")
    assert lint.attrib == {
        "name": "lint",
        "classname": "tasks",  # the task file's stem
        "time": "1.005",
        "file": "tasks.toml",
    }
    assert [child.tag for child in lint] == ["system-out"]
    assert lint.findtext("system-out") == "All checks passed!\n"

    unit = case(root, "unit")
    assert [child.tag for child in unit] == ["failure", "system-out", "system-err"]
    failure = unit[0]
    assert failure.attrib == {"message": "failed: tests/test_x.py::test_y", "type": "failure"}
    assert failure.text == (
        "exit 1\nfailing tests:\ntests/test_x.py::test_y\n\nFAILED tests/test_x.py::test_y\n"
    )
    assert unit.findtext("system-err") == "FAILED tests/test_x.py::test_y\n"

    e2e = case(root, "e2e")
    assert "file" not in e2e.attrib  # stdin:3 is no file
    assert [(child.tag, child.attrib) for child in e2e] == [
        ("failure", {"message": "e2e timeout", "type": "timeout"})
    ]
    assert e2e[0].text == "timed out after 60s"

    docs = case(root, "docs")
    assert [(child.tag, child.attrib, child.text) for child in docs] == [
        ("error", {"message": "docs error", "type": "error"}, "command not found")
    ]

    bench = case(root, "bench")
    assert bench.attrib == {"name": "bench", "classname": "fanout", "time": "0.000"}
    assert [(child.tag, child.attrib) for child in bench] == [
        ("skipped", {"message": "cancelled: fail-fast"})
    ]
    assert case(root, "slow")[0].attrib == {"message": "cancelled"}
    assert "file" not in case(root, "slow").attrib


def test_no_rows_and_no_shard_is_still_a_valid_report(tmp_path: Path) -> None:
    root = write(tmp_path / "junit.xml", [])
    assert counts_of(root) == {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    properties = root[0].find("properties")
    assert properties is not None
    assert [p.get("name") for p in properties] == ["run_id"]


def test_messages_keep_their_line_breaks_and_markup(tmp_path: Path) -> None:
    summary = 'FAILED a <b> & "c"\n\tsecond line\r\n]]> end'
    rows = [task_row(1, "a&b <c>", "failure", summary=summary, reason="exit 1")]
    root = write(tmp_path / "junit.xml", rows, suite='quote " and <angle>')
    failure = case(root, "a&b <c>")[0]
    assert failure.get("message") == summary
    assert root.get("name") == 'quote " and <angle>'


def test_characters_xml_forbids_are_removed_everywhere(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dirty = "a\x00b\x01c\x08d\x0b\x0ce\x1b\x7ff\ud800g\udcffh\ufffei\uffffj\U0001f600k\tl"
    clean = "abcde\x7ffghij\U0001f600k\tl"
    rows = [
        task_row(
            1,
            dirty,
            "error",
            summary=dirty,
            reason=dirty,
            origin=f"{dirty}:3",
            run_dir=str(run_dir),
            details_file="0001-dirty.json",
        ),
        task_row(2, "cancel", "cancelled", reason=dirty),
    ]
    add_outputs(
        run_dir,
        rows[0],
        b"\x00\x01ok\x1b[1mbold\x1b[0m \x1b]0;title\x07\xff\xfe\xed\xa0\x80 \xef\xbf\xbe!\n",
        "fine\x0bline é\n".encode(),
    )
    root = write(tmp_path / "junit.xml", rows, suite=dirty, run_id=dirty, properties={dirty: dirty})
    assert root.get("name") == clean
    testcase = case(root, clean)
    assert testcase.get("file") == clean
    error = testcase[0]
    assert error.get("message") == clean
    assert error.text is not None and error.text.startswith(clean + "\n\n")
    # Terminal escapes go as a whole; bytes that are not UTF-8 become U+FFFD.
    stdout = testcase.findtext("system-out")
    assert stdout is not None
    assert stdout.startswith("okbold ")
    assert "\ufffd" in stdout and "\ufffe" not in stdout and stdout.endswith("!\n")
    assert testcase.findtext("system-err") == "fineline é\n"
    assert case(root, "cancel")[0].get("message") == f"cancelled: {clean}"
    properties = root[0].find("properties")
    assert properties is not None
    assert [(p.get("name"), p.get("value")) for p in properties][-1] == (clean, clean)
    assert properties[0].get("value") == clean


def test_excerpts_are_the_capped_tails_of_the_output_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = [
        task_row(1, "ascii", "failure", run_dir=str(run_dir)),
        task_row(2, "wide", "success", run_dir=str(run_dir)),
        task_row(3, "short", "success", run_dir=str(run_dir)),
    ]
    lines = b"".join(b"line %07d\n" % number for number in range(300_000))  # 3.9 MB
    add_outputs(run_dir, rows[0], lines, b"")
    # Two-byte characters: the tail window starts inside one, which must not show.
    add_outputs(run_dir, rows[1], "é".encode() * 100_001, b"")
    add_outputs(run_dir, rows[2], b"x" * 100, b"y" * 99)

    root = write(tmp_path / "junit.xml", rows, output_chars=100)

    ascii_out = case(root, "ascii").findtext("system-out")
    assert ascii_out is not None
    note, tail = ascii_out.split("\n", 1)
    assert tail == "".join(f"line {number:07d}\n" for number in range(299_991, 300_000))[-100:]
    assert len(tail) == 100
    assert note.startswith(f"[fanout: the last 100 characters of {len(lines)} bytes")
    assert note.endswith(f"full output: {run_dir / '0001-ascii.stdout'}]")
    failure_text = case(root, "ascii")[0].text
    assert failure_text is not None and failure_text.endswith(tail)  # no stderr: stdout

    wide = case(root, "wide").findtext("system-out")
    assert wide is not None
    assert wide.split("\n", 1)[1] == "é" * 100

    short = case(root, "short")
    assert short.findtext("system-out") == "x" * 100  # within the cap: no note
    assert short.findtext("system-err") == "y" * 99


def test_excerpts_read_only_the_end_of_a_huge_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    row = task_row(1, "huge", "success", run_dir=str(run_dir))
    add_outputs(run_dir, row, b"", b"")
    with open(run_dir / "0001-huge.stdout", "r+b") as handle:  # sparse: 8 GB, no disk used
        handle.seek(8 << 30)
        handle.write(b"the end\n")
    started = time.perf_counter()
    root = write(tmp_path / "junit.xml", [row], output_chars=50)
    assert time.perf_counter() - started < 2
    stdout = case(root, "huge").findtext("system-out")
    assert stdout is not None and stdout.endswith("\nthe end\n")  # the NULs are not XML


def test_no_excerpts_without_run_dir_details_file_or_budget(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with_files = task_row(1, "a", "failure", run_dir=str(run_dir))
    add_outputs(run_dir, with_files, b"out\n", b"err\n")
    rows = [
        {key: value for key, value in with_files.items() if key != "run_dir"},
        task_row(2, "b", "failure", run_dir=str(run_dir), details_file=None),
        task_row(3, "c", "failure", run_dir=str(run_dir), details_file="../0001-a.json"),
        task_row(4, "d", "failure", run_dir=str(tmp_path / "missing")),
    ]
    root = write(tmp_path / "junit.xml", rows)
    for name in ("a", "b", "d"):
        assert [child.tag for child in case(root, name)] == ["failure"]
    # A details path is taken by its file name: it names a file in run_dir, nothing else.
    assert case(root, "c").findtext("system-out") == "out\n"
    zero = write(tmp_path / "zero.xml", [with_files], output_chars=0)
    assert [child.tag for child in case(zero, "a")] == ["failure"]
    with pytest.raises(ValueError, match="output_chars"):
        write_junit(
            str(tmp_path / "x.xml"),
            [],
            suite="s",
            run_id="r",
            timestamp=0,
            duration=0,
            output_chars=-1,
        )


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("previous report")

    def failing_rows() -> Iterator[dict[str, Any]]:
        yield task_row(1, "a", "success")
        raise RuntimeError("manifest went away")

    with pytest.raises(RuntimeError, match="manifest went away"):
        write_junit(str(path), failing_rows(), suite="s", run_id="r", timestamp=0, duration=0)
    assert path.read_text() == "previous report"
    assert os.listdir(tmp_path) == ["junit.xml"]

    write(path, [task_row(1, "a", "success")])
    assert os.listdir(tmp_path) == ["junit.xml"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()

    with pytest.raises(FileNotFoundError):
        write_junit(
            str(tmp_path / "no" / "j.xml"), [], suite="s", run_id="r", timestamp=0, duration=0
        )


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_twenty_thousand_rows_stream_in_bounded_memory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    add_outputs(run_dir, task_row(1, "loud", "failure"), b"o" * 1_000_000, b"e" * 1_000_000)
    statuses = ("success", "failure", "timeout", "error", "cancelled")

    def rows() -> Iterator[dict[str, Any]]:
        for seq in range(1, 20_001):
            status = statuses[seq % 5]
            # One task in ten has 1 MB outputs; all of them share the same files.
            loud = {"run_dir": str(run_dir), "details_file": "0001-loud.json"}
            extra = loud if seq % 10 == 0 else {}
            yield task_row(seq, f"task-{seq}", status, summary="x" * 200, **extra)

    path = tmp_path / "junit.xml"
    tracemalloc.start()
    started = time.perf_counter()
    try:
        write_junit(str(path), rows(), suite="big", run_id="r", timestamp=STARTED, duration=1.0)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 30_000_000  # 2,000 tasks x two 8,192-character excerpts
    assert peak < 50_000_000 / 10, f"peak {peak / 1e6:.1f} MB"  # streamed: far below 50 MB
    assert elapsed < 8, f"{elapsed:.1f} s"  # about 2 s here; tracemalloc triples it
    root = ElementTree.parse(path).getroot()
    check_grammar(root)
    assert counts_of(root) == {
        "tests": 20_000,
        "failures": 8_000,
        "errors": 4_000,
        "skipped": 4_000,
    }


def test_importing_the_module_loads_no_xml_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import fanout_cli.junit; "
        "print(sorted(set(sys.modules) - before - {'fanout_cli', 'fanout_cli.junit'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    added = result.stdout.strip()
    assert not re.search(r"'(xml|urllib|json|tempfile|socket)\b", added), added


def test_importing_the_writer_loads_no_xml_library() -> None:
    code = (
        "import sys; import fanout_cli.models; before = set(sys.modules); "
        "import fanout_cli.render.junit; "
        "print(sorted(set(sys.modules) - before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    added = result.stdout.strip()
    assert not re.search(r"'(xml|urllib|tempfile|socket)\b", added), added


# Reading ----------------------------------------------------------------------------

# pytest 8, default junit_family (xunit2): one suite, classnames are dotted modules.
PYTEST_XUNIT2 = """\
<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite \
name="pytest" errors="0" failures="1" skipped="1" tests="5" time="3.310" \
timestamp="2025-11-22T10:15:30.123456+00:00" hostname="runner-7"><testcase \
classname="tests.unit.test_parser.TestParser" name="test_empty" time="0.001" /><testcase \
classname="tests.unit.test_parser.TestParser" name="test_nested[deep-3]" time="1.250" />\
<testcase classname="tests.unit.test_parser" name="test_module_level" time="0.500"><failure \
message="assert 1 == 2">def test_module_level():
&gt;       assert 1 == 2
E       assert 1 == 2

tests/unit/test_parser.py:20: AssertionError</failure></testcase><testcase \
classname="tests.unit.test_cli" name="test_help" time="0.250"><skipped type="pytest.skip" \
message="needs a tty">/repo/tests/unit/test_cli.py:7: needs a tty</skipped></testcase>\
<testcase classname="tests.integration.test_api" name="test_roundtrip" time="1.200">\
<system-out>--------------------------------- Captured Log ---------------------------------
INFO     api:client.py:12 GET /health 200</system-out></testcase></testsuite></testsuites>"""

# pytest -o junit_family=xunit1: the same, plus file and line on each testcase.
PYTEST_XUNIT1 = """\
<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite \
name="pytest" errors="0" failures="0" skipped="0" tests="3" time="2.000" \
timestamp="2025-11-22T10:15:30.123456+00:00" hostname="runner-7"><testcase \
classname="tests.unit.test_parser.TestParser" name="test_empty" \
file="tests/unit/test_parser.py" line="9" time="0.250" /><testcase \
classname="tests.unit.test_parser" name="test_module_level" file="tests/unit/test_parser.py" \
line="19" time="0.500" /><testcase classname="tests.test_smoke" name="test_up" \
file="tests/test_smoke.py" line="3" time="1.000" /></testsuite></testsuites>"""

# jest-junit with addFileAttribute: one suite per test file, named by its describe.
JEST = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="4" failures="1" errors="0" time="2.345">
  <testsuite name="Button" errors="0" failures="0" skipped="0" \
timestamp="2025-11-22T10:15:31" time="1.2" tests="2">
    <testcase classname="Button renders a label" name="Button renders a label" time="0.4" \
file="src/components/Button.test.tsx">
    </testcase>
    <testcase classname="Button calls onClick" name="Button calls onClick" time="0.6" \
file="src/components/Button.test.tsx">
    </testcase>
  </testsuite>
  <testsuite name="api client" errors="0" failures="1" skipped="0" \
timestamp="2025-11-22T10:15:32" time="1.045" tests="2">
    <testcase classname="api client retries on 503" name="api client retries on 503" \
time="0.75" file="src/api/client.test.ts">
      <failure>Error: expect(received).toBe(expected) // Object.is equality

Expected: 3
Received: 2
    at Object.toBe (/work/src/api/client.test.ts:41:19)</failure>
    </testcase>
    <testcase classname="api client gives up" name="api client gives up" time="0.25" \
file="./src/api/client.test.ts">
    </testcase>
  </testsuite>
</testsuites>
"""

# gotestsum --junitfile: one suite per package, classname = package import path.
GOTESTSUM = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="1" errors="0" time="3.456000">
\t<testsuite tests="3" failures="1" time="2.100000" name="example.com/shop/pkg/cart" \
timestamp="2025-11-22T10:15:30Z">
\t\t<properties>
\t\t\t<property name="go.version" value="go1.22.1 linux/amd64"></property>
\t\t</properties>
\t\t<testcase classname="example.com/shop/pkg/cart" name="TestAdd" time="0.010000"></testcase>
\t\t<testcase classname="example.com/shop/pkg/cart" name="TestAdd/empty" \
time="0.000000"></testcase>
\t\t<testcase classname="example.com/shop/pkg/cart" name="TestCheckout" time="2.050000">
\t\t\t<failure message="Failed" type="">=== RUN   TestCheckout&#xA;    cart_test.go:42: \
total = 3, want 4&#xA;--- FAIL: TestCheckout (2.05s)&#xA;</failure>
\t\t</testcase>
\t</testsuite>
\t<testsuite tests="2" failures="0" time="0.900000" name="example.com/shop/pkg/money" \
timestamp="2025-11-22T10:15:30Z">
\t\t<properties>
\t\t\t<property name="go.version" value="go1.22.1 linux/amd64"></property>
\t\t</properties>
\t\t<testcase classname="example.com/shop/pkg/money" name="TestRound" time="0.800000">\
</testcase>
\t\t<testcase classname="example.com/shop/pkg/money" name="TestParse" time="0.050000">\
</testcase>
\t</testsuite>
\t<testsuite tests="0" failures="0" time="0.000000" name="example.com/shop/cmd/shop" \
timestamp="2025-11-22T10:15:30Z">
\t\t<properties>
\t\t\t<property name="go.version" value="go1.22.1 linux/amd64"></property>
\t\t</properties>
\t</testsuite>
</testsuites>
"""

# Maven surefire 2.x (TEST-com.example.shop.CartTest.xml): a bare <testsuite>, times
# written with the locale's thousands separator.
SUREFIRE = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/maven-surefire-plugin/xsd/\
surefire-test-report.xsd" name="com.example.shop.CartTest" time="1,234.567" tests="3" \
errors="0" skipped="1" failures="0">
  <properties>
    <property name="java.version" value="17.0.9"/>
    <property name="os.name" value="Linux"/>
  </properties>
  <testcase name="addsItem" classname="com.example.shop.CartTest" time="1,200.5"/>
  <testcase name="removesItem" classname="com.example.shop.CartTest" time="0.034"/>
  <testcase name="slowCheckout" classname="com.example.shop.CartTest" time="0">
    <skipped message="disabled until the payment mock is back"/>
  </testcase>
</testsuite>
"""

# Suites inside suites (Ant's junitreport, Cypress, PHPUnit), with times missing,
# unusable, negative, or written with a decimal comma; a suite name used twice.
NESTED = """\
<?xml version="1.0"?>
<testsuites>
  <testsuite name="all">
    <testsuite name="unit" time="2.0">
      <testcase classname="a.B" name="x" time="1.5"/>
    </testsuite>
    <testsuite name="e2e">
      <testcase classname="a.C" name="y" time="3"/>
      <testcase classname="a.C" name="no_time"/>
      <testcase classname="a.C" name="bad_time" time="abc"/>
      <testcase classname="a.C" name="negative" time="-1"/>
      <testcase classname="a.C" name="not_a_number" time="NaN"/>
      <testcase name="bare" time="0.25"/>
    </testsuite>
  </testsuite>
  <testsuite name="unit" time="oops">
    <testcase classname="d" name="q" time="1,5"/>
  </testsuite>
</testsuites>
"""


def read_sample(tmp_path: Path, text: str, name: str = "report.xml") -> dict[str, float]:
    path = tmp_path / name
    path.write_text(text)
    return read_junit_durations(str(path))


def lookup(durations: Mapping[str, float], task_id: str) -> float | None:
    """What --shard does: the first candidate key that the report holds."""
    for key in junit_key_candidates(task_id):
        if key in durations:
            return durations[key]
    return None


def test_pytest_report_by_test_class_module_and_package(tmp_path: Path) -> None:
    durations = read_sample(tmp_path, PYTEST_XUNIT2)
    assert durations["tests.unit.test_parser.TestParser.test_empty"] == 0.001
    assert durations["tests.unit.test_parser.TestParser::test_nested[deep-3]"] == 1.25
    assert durations["tests.unit.test_parser.TestParser"] == 1.251
    assert durations["tests.unit.test_parser"] == 1.751
    assert durations["tests.unit"] == 2.001
    assert durations["tests"] == 3.201
    assert durations["pytest"] == 3.31  # the suite's own time, setup included
    assert lookup(durations, "tests/unit/test_parser.py") == 1.751
    assert lookup(durations, "./tests/unit/") == 2.001
    assert lookup(durations, "tests/unit/test_parser.py::TestParser::test_empty") == 0.001
    assert lookup(durations, "tests/unit/test_parser.py::test_module_level") == 0.5
    assert lookup(durations, "tests/unit/test_parser.py::TestParser") == 1.251
    assert lookup(durations, "tests/unit/test_gone.py") is None


def test_pytest_xunit1_report_by_file(tmp_path: Path) -> None:
    durations = read_sample(tmp_path, PYTEST_XUNIT1)
    assert durations["tests/unit/test_parser.py"] == 0.75
    assert durations["tests/test_smoke.py"] == 1.0
    assert lookup(durations, "tests/test_smoke.py") == 1.0


def test_jest_report_by_file_and_suite(tmp_path: Path) -> None:
    durations = read_sample(tmp_path, JEST)
    assert durations["src/components/Button.test.tsx"] == 1.0
    assert durations["src/api/client.test.ts"] == 1.0  # ./ dropped, both cases summed
    assert durations["Button"] == 1.2
    assert durations["api client"] == 1.045
    assert durations["Button renders a label.Button renders a label"] == 0.4
    assert lookup(durations, "src/components/Button.test.tsx") == 1.0
    assert lookup(durations, "Button") == 1.2


def test_gotestsum_report_by_package(tmp_path: Path) -> None:
    durations = read_sample(tmp_path, GOTESTSUM)
    # Suite and classname are both the package: the larger sum, never the two added.
    assert durations["example.com/shop/pkg/cart"] == 2.1
    assert durations["example.com/shop/pkg/money"] == 0.9
    assert durations["example.com/shop/cmd/shop"] == 0.0
    assert durations["example.com/shop/pkg/cart.TestAdd/empty"] == 0.0
    assert durations["example.com/shop/pkg/cart::TestCheckout"] == 2.05
    assert junit_key_candidates("./pkg/cart")[:3] == ["./pkg/cart", "fanout../pkg/cart", "pkg/cart"]
    assert lookup(durations, "example.com/shop/pkg/cart") == 2.1
    # The module path (example.com/shop) cannot be known from ./pkg/cart.
    assert lookup(durations, "./pkg/cart") is None


def test_surefire_report_with_grouped_thousands(tmp_path: Path) -> None:
    durations = read_sample(tmp_path, SUREFIRE, "TEST-com.example.shop.CartTest.xml")
    assert durations["com.example.shop.CartTest"] == 1234.567  # suite time beats case sum
    assert durations["com.example.shop.CartTest.addsItem"] == 1200.5
    assert durations["com.example.shop.CartTest.slowCheckout"] == 0.0
    assert durations["com.example"] == 1200.534


def test_nested_suites_and_unusable_times(tmp_path: Path) -> None:
    durations = read_sample(tmp_path, NESTED)
    assert durations["all"] == 4.75  # no time of its own: its cases, nested ones too
    assert durations["unit"] == 3.5  # 2.0 + 1.5 (the second has no usable time)
    assert durations["e2e"] == 3.25
    assert durations["a"] == 4.5
    assert durations["d.q"] == 1.5
    assert durations["bare"] == 0.25
    for name in ("no_time", "bad_time", "negative", "not_a_number"):
        assert f"a.C.{name}" not in durations


def test_namespaced_report(tmp_path: Path) -> None:
    text = (
        '<r:testsuites xmlns:r="urn:x"><r:testsuite name="s" time="1">'
        '<r:testcase classname="m" name="t" time="0.5"/></r:testsuite></r:testsuites>'
    )
    assert read_sample(tmp_path, text) == {"m.t": 0.5, "m::t": 0.5, "m": 0.5, "s": 1.0}


def test_a_doctype_naming_a_remote_dtd_is_not_fetched(tmp_path: Path) -> None:
    text = (
        '<?xml version="1.0"?><!DOCTYPE testsuite SYSTEM "http://192.0.2.1/junit.dtd">'
        '<testsuite name="s"><testcase classname="m" name="t" time="2"/></testsuite>'
    )
    started = time.perf_counter()
    assert read_sample(tmp_path, text)["m.t"] == 2.0
    assert time.perf_counter() - started < 1  # no connection attempted


def test_big_report_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    testcase = (
        '<testcase classname="m.C" name="t" time="0.001"><system-out>%s</system-out></testcase>'
    )
    with open(path, "w") as out:
        out.write('<testsuites><testsuite name="s">')
        out.writelines(testcase % ("x" * 200) for _ in range(40_000))
        out.write("</testsuite></testsuites>")
    tracemalloc.start()
    try:
        durations = read_junit_durations(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert durations["m.C"] == 40.0
    size = path.stat().st_size
    assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no element found"),
        ("not xml at all", "syntax error"),
        ('<testsuite name="s"><testcase name="t" time="1">', "no element found"),
        ("<testsuites><testsuite name='s' tests='0'/></testsuites>", "no <testcase> element"),
        ("<html><body>404</body></html>", "no <testcase> element"),
    ],
)
def test_not_junit_is_one_value_error(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "report.xml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"not JUnit XML") as raised:
        read_junit_durations(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: not JUnit XML: ")
    assert reason in message and "\n" not in message


def test_external_entities_are_never_fetched(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    text = (
        f'<!DOCTYPE testsuite [<!ENTITY leak SYSTEM "file://{secret}">]>'
        '<testsuite name="s"><testcase name="t" time="1">&leak;</testcase></testsuite>'
    )
    with pytest.raises(ValueError, match="undefined entity &leak;") as raised:
        read_sample(tmp_path, text)
    assert "TOPSECRET" not in str(raised.value)


def test_an_entity_bomb_is_refused(tmp_path: Path) -> None:
    import pyexpat

    if pyexpat.version_info < (2, 4, 0):
        pytest.skip("expat before 2.4 has no amplification limit")
    entities = '<!ENTITY a0 "xxxxxxxxxx">' + "".join(
        f'<!ENTITY a{n} "{f"&a{n - 1};" * 10}">' for n in range(1, 10)
    )
    text = f'<!DOCTYPE t [{entities}]><testsuite><testcase name="&a9;" time="1"/></testsuite>'
    with pytest.raises(ValueError, match="not JUnit XML"):
        read_sample(tmp_path, text)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_junit_durations(str(tmp_path / "nope.xml"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0.5", 0.5),
        (" 2 ", 2.0),
        ("1e3", 1000.0),
        ("1,234.5", 1234.5),
        ("12,345,678", 12345678.0),
        ("0,5", 0.5),
        (None, None),
        ("", None),
        ("abc", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("1_000", None),
        ("12,34,5", None),
        ("0,123,456", None),
    ],
)
def test_time_attributes(text: str | None, seconds: float | None) -> None:
    assert parse_seconds(text) == seconds


def test_fanouts_own_report_reads_back_by_task_id(tmp_path: Path) -> None:
    rows = [task_row(1, "unit", "success"), task_row(2, "tests/test_x.py", "failure")]
    write(tmp_path / "junit.xml", rows)
    durations = read_junit_durations(str(tmp_path / "junit.xml"))
    assert lookup(durations, "unit") == 1.005
    assert lookup(durations, "tests/test_x.py") == 2.005
    assert durations["fanout run tasks.toml"] == 64.25
    assert durations["tasks.toml"] == 3.01


@pytest.mark.parametrize(
    ("task_id", "candidates"),
    [
        ("unit", ["unit", "fanout.unit"]),
        (
            "tests/unit/test_x.py",
            ["tests/unit/test_x.py", "fanout.tests/unit/test_x.py", "tests.unit.test_x"],
        ),
        ("./tests/unit/", ["./tests/unit/", "fanout../tests/unit/", "tests/unit", "tests.unit"]),
        (
            "tests/test_x.py::TestA::test_b",
            [
                "tests/test_x.py::TestA::test_b",
                "fanout.tests/test_x.py::TestA::test_b",
                "tests.test_x.TestA.test_b",
                "tests.test_x.TestA::test_b",
            ],
        ),
        (
            "test_x.py::test_b[1-2]",
            [
                "test_x.py::test_b[1-2]",
                "fanout.test_x.py::test_b[1-2]",
                "test_x.test_b[1-2]",
                "test_x::test_b[1-2]",
            ],
        ),
        ("./pkg/foo", ["./pkg/foo", "fanout../pkg/foo", "pkg/foo", "pkg.foo"]),
        ("./pkg/...", ["./pkg/...", "fanout../pkg/...", "pkg/..."]),
        ("src/Button.test.tsx", ["src/Button.test.tsx", "fanout.src/Button.test.tsx"]),
        ("/abs/tests/test_x.py", ["/abs/tests/test_x.py", "fanout./abs/tests/test_x.py"]),
        ("../other/test_x.py", ["../other/test_x.py", "fanout.../other/test_x.py"]),
        ("", []),
    ],
)
def test_key_candidates(task_id: str, candidates: list[str]) -> None:
    assert junit_key_candidates(task_id) == candidates
