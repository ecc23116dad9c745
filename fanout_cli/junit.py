"""JUnit XML reports of any runner, read for their durations and their counts.

`read_junit_durations` reads a report written by any runner (pytest, Jest, gotestsum,
Maven surefire, fanout itself) and returns seconds under every name a fanout task may
go by; `junit_key_candidates` lists those names for one task id. --shard uses both to
balance shards by recorded durations. `scan_junit` reads a report in one streaming
pass: it counts the testcases by outcome, and can copy the report's <testsuite>
elements into another document (`fanout run --junit` merging a task's runner JUnit)
or hand each testcase to a callback (timings per test). (Writing a run as JUnit XML is
rendering: fanout_cli.render.junit.)

Only `posixpath` and `re` are imported up front: ElementTree and expat are imported
when a report is read."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Protocol

_THOUSANDS = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]*)?")
_DECIMAL_COMMA = re.compile(r"[0-9]+,[0-9]+")


def parse_seconds(text: str | None) -> float | None:
    """A time attribute in seconds: `0.5`, `1,234.5` (surefire's grouping), `0,5` (a
    decimal comma); None for anything else, negative or not finite."""
    if text is None:
        return None
    text = text.strip()
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    elif _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    try:
        seconds = float(text)
    except ValueError:
        return None
    if not 0 <= seconds < float("inf") or "_" in text:
        return None
    return seconds


class _OpenSuite:
    def __init__(self, name: str, own_time: float | None) -> None:
        self.name = name
        self.own_time = own_time
        self.case_time = 0.0
        self.fanouts = False  # fanout's own suite: a testcase's name is a task id


# The key kinds, each summed on its own; where two kinds name the same key (gotestsum
# uses the package as suite name and as classname), the larger sum wins rather than
# counting the same tests twice.
_CASE, _CLASS, _FILE, _SUITE = range(4)


class _DurationSums:
    """Sums per key kind, fed one testcase or finished testsuite at a time."""

    def __init__(self) -> None:
        self.kinds: list[dict[str, float]] = [{}, {}, {}, {}]
        self.open_suites: list[_OpenSuite] = []
        self.testcases = 0

    def add(self, kind: int, key: str, seconds: float) -> None:
        sums = self.kinds[kind]
        sums[key] = sums.get(key, 0.0) + seconds

    def open_suite(self, attributes: Mapping[str, str]) -> None:
        name = attributes.get("name") or ""
        self.open_suites.append(_OpenSuite(name, parse_seconds(attributes.get("time"))))

    def close_suite(self) -> None:
        if not self.open_suites:
            return
        suite = self.open_suites.pop()
        if suite.name:
            seconds = suite.case_time if suite.own_time is None else suite.own_time
            self.add(_SUITE, suite.name, seconds)

    def testcase(self, attributes: Mapping[str, str]) -> None:
        self.testcases += 1
        seconds = parse_seconds(attributes.get("time"))
        if seconds is None:
            return
        for suite in self.open_suites:
            suite.case_time += seconds
        classname = attributes.get("classname") or ""
        name = attributes.get("name") or ""
        if name and self.open_suites and self.open_suites[-1].fanouts:
            self.add(_CASE, f"fanout.{name}", seconds)  # whatever its classname
        if name and classname:
            self.add(_CASE, f"{classname}.{name}", seconds)
            self.add(_CASE, f"{classname}::{name}", seconds)
        elif name:
            self.add(_CASE, name, seconds)
        parts = classname.split(".") if classname else []
        for end in range(1, len(parts) + 1):
            self.add(_CLASS, ".".join(parts[:end]), seconds)
        file = (attributes.get("file") or "").removeprefix("./")
        if file:
            self.add(_FILE, file, seconds)

    def durations(self) -> dict[str, float]:
        merged: dict[str, float] = {}
        for sums in self.kinds:
            for key, seconds in sums.items():
                merged[key] = max(merged.get(key, 0.0), round(seconds, 6))
        return merged


def read_junit_durations(path: str) -> dict[str, float]:
    """Seconds per name from a JUnit XML report of any runner.

    Keys: `CLASSNAME.NAME` and `CLASSNAME::NAME` per testcase (`NAME` when it has no
    classname); every dotted prefix of a classname (summed over its cases); a
    testcase's `file` attribute (leading ./ dropped); a testsuite's name (its own
    time attribute, else its cases' sum), summed over suites of that name; in
    fanout's own suite (the one with a `run_id` property) `fanout.NAME` too, NAME
    being the task id whatever classname the testcase was given.
    Testcases without a usable time are left out. Raises ValueError("PATH: not
    JUnit XML: ...") when the file is not XML or holds no testcase; OSError when it
    cannot be read.

    ElementTree (expat) never fetches external entities or DTDs: a reference to one
    is a parse error, so a report cannot make fanout read another file, and expat's
    amplification limit stops entity bombs."""
    from xml.etree import ElementTree

    sums = _DurationSums()
    open_elements: list[ElementTree.Element] = []
    try:
        with open(path, "rb") as source:
            for event, element in ElementTree.iterparse(source, events=("start", "end")):
                tag = element.tag.rpartition("}")[2]  # namespaced reports: {ns}testcase
                if event == "start":
                    open_elements.append(element)
                    if tag == "testsuite":
                        sums.open_suite(element.attrib)
                    elif tag == "testcase":
                        sums.testcase(element.attrib)
                    elif tag == "property" and element.get("name") == "run_id" and sums.open_suites:
                        sums.open_suites[-1].fanouts = True  # fanout's suite says its run
                    continue
                open_elements.pop()
                if tag == "testsuite":
                    sums.close_suite()
                # Attributes were read at "start"; dropping each finished element
                # keeps memory flat however many testcases the file holds.
                element.clear()
                if open_elements:
                    open_elements[-1].remove(element)
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not JUnit XML: {error}") from None
    if sums.testcases == 0:
        raise ValueError(f"{path}: not JUnit XML: no <testcase> element")
    return sums.durations()


def parse_junit_template(value: object) -> str:
    """A task's `junit` (or --task-junit): a path whose replacement strings are ones a
    task has ({#} {%} {} {1} {.} ...); ValueError saying what is wrong."""
    from fanout_cli.errors import UsageError
    from fanout_cli.replacements import Grammar

    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError(f"expected a file path such as reports/{{#}}.xml, got {value!r}")
    try:
        Grammar(positions=None).split(value, repr(value))
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return value


def junit_key_candidates(task_id: str) -> list[str]:
    """Keys of `read_junit_durations` that may hold this task's time, best first:
    the id; `fanout.ID` (fanout's own reports); for a file or folder path its
    normalised form and, for Python files and folders, the dotted module; for a
    pytest node id `mod.Class.test` and `mod.Class::test`. A Go package's
    module-qualified name (`example.com/mod/pkg/foo`) cannot be known from `./pkg/foo`."""
    if not task_id:
        return []
    candidates = [task_id, f"fanout.{task_id}"]
    text = task_id.strip()
    if "::" in text:
        file_part, _, rest = text.partition("::")
        module = _dotted_module(_normal_path(file_part))
        parts = rest.split("::")
        if module and all(parts):
            candidates.append(".".join([module, *parts]))
            candidates.append(".".join([module, *parts[:-1]]) + "::" + parts[-1])
    elif "/" in text or text.endswith(".py"):
        normal = _normal_path(text)
        candidates.append(normal)
        module = _dotted_module(normal)
        if module:
            candidates.append(module)
    return list(dict.fromkeys(candidate for candidate in candidates if candidate))


def _normal_path(path: str) -> str:
    """`./pkg/foo/` -> `pkg/foo`; "" for no path at all."""
    normal = posixpath.normpath(path) if path else ""
    return "" if normal == "." else normal


def _dotted_module(path: str) -> str | None:
    """`tests/unit/test_x.py` and `tests/unit` -> `tests.unit.test_x` / `tests.unit`;
    None for other files and for paths outside the project (absolute, `..`)."""
    if not path or path.startswith(("/", "..")):
        return None
    if path.endswith(".py"):
        path = path[: -len(".py")]
    elif "." in posixpath.basename(path):
        return None
    return path.replace("/", ".")


# --- one streaming pass over a report ---------------------------------------------------

_CHUNK = 1 << 16
_OUTCOMES = ("failure", "error", "skipped")  # a testcase with several counts as the first
# A testcase's classname, name, seconds (0 without a usable time) and outcome ("" passed).
CaseCallback = Callable[[str, str, float, str], None]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class JUnitTotals:
    """Testcases of a report by outcome, and the sum of their times."""

    def __init__(self) -> None:
        self.tests = 0
        self.failures = 0
        self.errors = 0
        self.skipped = 0
        self.seconds = 0.0

    def add(self, outcome: str, seconds: float) -> None:
        self.tests += 1
        self.seconds += seconds
        if outcome == "failure":
            self.failures += 1
        elif outcome == "error":
            self.errors += 1
        elif outcome == "skipped":
            self.skipped += 1

    def document(self) -> dict[str, int | float]:
        return {"tests": self.tests, "failures": self.failures, "errors": self.errors,
                "skipped": self.skipped, "seconds": round(self.seconds, 6)}  # fmt: skip


class _Refused(Exception):
    """What a runner's report may not hold (a DTD and its entities)."""


class _Scan:
    """expat's handlers for one report: counts, and the copy of its suites."""

    def __init__(self, copy: Callable[[str], None] | None, case: CaseCallback | None) -> None:
        self.totals = JUnitTotals()
        self.copy = copy
        self.case = case
        self.depth = 0
        self.copy_from: int | None = None  # the depth of the element being copied
        self.case_at: int | None = None  # the depth of the open testcase
        self.case_fields = ("", "", 0.0)
        self.outcome = ""

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        name = tag.rpartition(":")[2]
        if self.depth == 1 and name not in ("testsuites", "testsuite"):
            raise _Refused(f"the root element is <{tag}>, not <testsuites> or <testsuite>")
        if self.copy_from is None and name == "testsuite" and self.depth <= 2:
            self.copy_from = self.depth
        if self.copy is not None and self.copy_from is not None:
            self.copy(f"<{tag}{_attribute_text(attributes)}>")
        if name == "testcase" and self.case_at is None:
            self.case_at = self.depth
            seconds = parse_seconds(attributes.get("time")) or 0.0
            self.case_fields = (attributes.get("classname") or "", attributes.get("name") or "",
                                seconds)  # fmt: skip
            self.outcome = ""
        elif self.case_at == self.depth - 1 and name in _OUTCOMES and (
            not self.outcome or _OUTCOMES.index(name) < _OUTCOMES.index(self.outcome)
        ):
            self.outcome = name

    def end(self, tag: str) -> None:
        if self.copy is not None and self.copy_from is not None:
            self.copy(f"</{tag}>")
        if self.copy_from == self.depth:
            self.copy_from = None
        if self.case_at == self.depth:
            self.case_at = None
            classname, name, seconds = self.case_fields
            self.totals.add(self.outcome, seconds)
            if self.case is not None:
                self.case(classname, name, seconds, self.outcome)
        self.depth -= 1

    def text(self, data: str) -> None:
        if self.copy is not None and self.copy_from is not None:
            self.copy(data.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))

    @staticmethod
    def refuse(*_: object) -> None:
        raise _Refused("a DTD (<!DOCTYPE ...>) is not allowed in a JUnit report")


def _attribute_text(attributes: Mapping[str, str]) -> str:
    return "".join(
        f' {key}="{_attribute_value(value)}"' for key, value in attributes.items()
    )


def _attribute_value(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
            .replace("\t", "&#9;"))  # fmt: skip


def scan_junit(
    source: Readable,
    shown: str,
    *,
    copy: Callable[[str], None] | None = None,
    case: CaseCallback | None = None,
) -> JUnitTotals:
    """Count the testcases of the report read from `source`, in one streaming pass of
    bounded memory whatever its size. `copy` receives the report's <testsuite>
    elements (every one directly under a <testsuites> root, or the root itself) as XML
    text, piece by piece; `case` receives each testcase as it ends.

    Raises ValueError("SHOWN: not JUnit XML: ...") for a file that is not XML, whose
    root is not <testsuites> or <testsuite>, or that holds a DTD: refusing any DTD
    means no entity is ever defined, so none can be expanded (an entity bomb) or
    fetched from outside (expat never fetches them; fanout sets no handler that
    would). OSError when `source` cannot be read."""
    from xml.parsers import expat

    scan = _Scan(copy, case)
    parser = expat.ParserCreate()
    parser.buffer_text = True  # one call per run of text, not one per line
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    if copy is not None:
        parser.CharacterDataHandler = scan.text
    parser.StartDoctypeDeclHandler = scan.refuse
    parser.EntityDeclHandler = scan.refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        while chunk := source.read(_CHUNK):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as error:
        raise ValueError(f"{shown}: not JUnit XML: {error}") from None
    except _Refused as refused:
        raise ValueError(f"{shown}: not JUnit XML: {refused}") from None
    return scan.totals
