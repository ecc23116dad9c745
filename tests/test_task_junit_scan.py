"""fanout_cli.junit.scan_junit: one streaming pass over any runner's report that
counts its testcases and copies its suites (issue 18, part 4)."""

from __future__ import annotations

import io
from xml.etree import ElementTree

import pytest

from fanout_cli.junit import scan_junit

JEST = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1" errors="0" time="1.2">
  <properties><property name="ci" value="1"/></properties>
  <testsuite name="Cart" errors="0" failures="1" skipped="1" timestamp="2025-11-22T10:15:30"
             time="1.2" tests="3">
    <testcase classname="Cart adds" name="Cart adds" time="0,5"/>
    <testcase classname="Cart removes" name="Cart removes" time="0.25">
      <failure message="expected 0 &lt; 1">Error: expected 0 &amp; "1"
    at cart.test.js:12</failure>
    </testcase>
    <testcase classname="Cart todo" name="Cart todo" time="">
      <skipped/>
    </testcase>
  </testsuite>
</testsuites>
"""


def scan(text: str) -> tuple[dict[str, float | int], str, list[tuple[str, str, float, str]]]:
    copied: list[str] = []
    cases: list[tuple[str, str, float, str]] = []
    totals = scan_junit(io.BytesIO(text.encode()), "r.xml", copy=copied.append,
                        case=lambda *fields: cases.append(fields))  # fmt: skip
    return totals.document(), "".join(copied), cases


def test_counts_times_and_cases_of_a_jest_report() -> None:
    totals, copied, cases = scan(JEST)
    assert totals == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1, "seconds": 0.75}
    assert cases == [
        ("Cart adds", "Cart adds", 0.5, ""),
        ("Cart removes", "Cart removes", 0.25, "failure"),
        ("Cart todo", "Cart todo", 0.0, "skipped"),
    ]
    # Only the suite is copied (not the root, nor the root's own properties), and it
    # reads back as the same suite, its text and attributes escaped again.
    suite = ElementTree.fromstring(copied)
    assert suite.tag == "testsuite" and suite.get("name") == "Cart"
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("message") == "expected 0 < 1"
    assert failure.text == 'Error: expected 0 & "1"\n    at cart.test.js:12'
    assert "ci" not in copied


def test_a_suite_as_root_is_copied_whole_with_nested_suites() -> None:
    report = ('<testsuite name="outer" tests="2"><testsuite name="inner">'
              '<testcase name="a" time="1"><error message="e"/><failure message="f"/></testcase>'
              '</testsuite><testcase name="b" time="2"/></testsuite>')  # fmt: skip
    totals, copied, _ = scan(report)
    assert totals == {"tests": 2, "failures": 1, "errors": 0, "skipped": 0, "seconds": 3.0}
    assert ElementTree.fromstring(copied).get("name") == "outer"
    assert copied.count("<testsuite ") == 2


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ("<html><testcase/></html>",
         "the root element is <html>, not <testsuites> or <testsuite>"),
        ('<!DOCTYPE t SYSTEM "file:///etc/passwd"><testsuite/>',
         "a DTD (<!DOCTYPE ...>) is not allowed in a JUnit report"),
        ("<testsuites><testsuite>", "no element found"),
        ("", "no element found"),
    ],
)  # fmt: skip
def test_what_is_not_a_runners_report(report: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^r\.xml: not JUnit XML: ") as raised:
        scan(report)
    assert problem in str(raised.value)


def test_an_empty_report_is_zero_tests() -> None:
    assert scan('<testsuites><testsuite name="pytest" tests="0"/></testsuites>')[0]["tests"] == 0
