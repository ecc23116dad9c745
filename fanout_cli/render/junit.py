"""JUnit XML of a run or a merge, for CI test reporters.

`write_junit` renders manifest rows as JUnit XML. A task whose test runner wrote its
own JUnit (task-file `junit`, `--task-junit`; copied into the run folder by
fanout_cli.aop.runner_junit) contributes that file's suites, so CI shows each test;
every other task is one <testcase> of fanout's own suite, named by its value or task
file, its failure message naming the failing tests its output shows
(fanout_cli.render.test_names).

The shape: one <testsuites> root holding the runners' <testsuite> elements as they
wrote them (their testcases keep their own classname, file and outcome), then
fanout's <testsuite> with the run's properties. The Jenkins junit plugin, GitLab,
dorny/test-reporter and mikepenz/action-junit-report all read a <testsuites> root of
several suites and show every testcase of each, while a suite nested in another is
not read alike by all of them; so the runners' suites are siblings of fanout's, copied
whole, rather than put inside it. The root's counts are the sums over
all suites. Counts are known only at the end: the root's start tag is written with
room reserved and rewritten in place, and fanout's own testcases go to a spool file
(memory when small) until the runners' suites are written: one pass over the rows,
and memory flat however many testcases the run holds (the runners' files are copied
through a streaming parser).

Only `os`, `re` and `time` are imported up front: `xml.sax.saxutils` would pull in
urllib.request (30 ms measured), so the escaping is done here."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from fanout_cli.aop import RunFolder, output_names_of
from fanout_cli.aop.files import RunFolderError, UnsafeFile
from fanout_cli.errors import StoreError
from fanout_cli.models import RunReport
from fanout_cli.render.test_names import case_place, failing_tests, failure_message

if TYPE_CHECKING:
    from fanout_cli.junit import JUnitTotals

# What XML 1.0 forbids (the complement of production [2] "Char"): C0 controls other
# than tab, newline and return, lone surrogates (how Python holds undecodable bytes),
# U+FFFE and U+FFFF. Listed rather than negated: the negated class of the allowed
# ranges takes 5 ms to compile, paid by every fanout start.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Terminal colour and title sequences: their ESC is not XML, and the rest is noise.
_TERMINAL_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?)")

FAILED_STATUSES = frozenset({"failure", "timeout"})
# Digits reserved for each count in the two start tags, which are rewritten in place
# once the rows have been counted (a trillion tasks: more than any run holds).
_COUNT_DIGITS = 12
_UTF8_MAX_BYTES = 4


def strip_non_xml(text: str) -> str:
    """`text` without the characters XML 1.0 forbids."""
    return _NOT_XML_CHAR.sub("", text)


def escape_text(text: str) -> str:
    """Character data: forbidden characters dropped, markup escaped."""
    return _escape_markup(strip_non_xml(text))


def _escape_markup(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote_attribute(value: str) -> str:
    """An attribute value in double quotes. Tab, newline and return are written as
    character references, since a parser turns literal ones into spaces."""
    escaped = (
        escape_text(value)
        .replace('"', "&quot;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
        .replace("\t", "&#9;")
    )
    return f'"{escaped}"'


def _attributes(pairs: Iterable[tuple[str, str | None]]) -> str:
    """` name="value"` for each pair whose value is not None."""
    return "".join(f" {key}={quote_attribute(value)}" for key, value in pairs if value is not None)


class _Counts:
    """Testcases by outcome. (Plain classes here: a dataclass costs about a
    millisecond at import, and fanout's startup is measured.)"""

    def __init__(self) -> None:
        self.tests = 0
        self.failures = 0
        self.errors = 0
        self.skipped = 0

    def add(self, status: str) -> None:
        self.tests += 1
        if status in FAILED_STATUSES:
            self.failures += 1
        elif status == "cancelled":
            self.skipped += 1
        elif status != "success":
            self.errors += 1

    def add_counts(self, other: _Counts | JUnitTotals) -> None:
        """Add another count (a _Counts, or a runner report's JUnitTotals)."""
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped

    def numbers(self) -> list[tuple[str, str]]:
        return [("tests", str(self.tests)), ("failures", str(self.failures)),
                ("errors", str(self.errors)), ("skipped", str(self.skipped))]  # fmt: skip


def write_junit(
    path: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    suite: str,
    run_id: str,
    timestamp: float,
    duration: float,
    shard: str | None = None,
    properties: Mapping[str, str] | None = None,
    output_chars: int = 8192,
) -> None:
    """Write `rows` (manifest task rows) to `path` as JUnit XML, atomically.

    A row with a runner JUnit copied beside its files (`junit.file`, read from its
    `run_dir`) contributes that report's suites; every other row is one <testcase> of
    fanout's suite: failure and timeout are <failure>, error is <error>, cancelled is
    <skipped>, an unknown status counts as an error. A row that did not succeed
    although its runner's report shows no failure gets its own testcase as well, so
    the failure is not lost. With `run_dir` and `details_file`, the last
    `output_chars` characters of the task's .stdout and .stderr become <system-out>
    and <system-err>. fanout's suite's time is `duration` (the run's wall time).
    OSError (folder missing, not writable) propagates; the caller decides how to
    report it."""
    if output_chars < 0:
        raise ValueError(f"output_chars must be >= 0, not {output_chars}")
    import shutil  # not at import, as below
    import tempfile

    from fanout_cli.aop.runner_junit import copy_suites
    from fanout_cli.aop.writer import replacing  # not at import: it loads json and more

    head = _Head(suite, timestamp, duration)
    with (
        replacing(os.path.abspath(path), 0o644) as descriptor,
        open(descriptor, "wb", buffering=1 << 16, closefd=False) as out,
        tempfile.SpooledTemporaryFile(1 << 20) as own_cases,
    ):
        reserved = head.root(None)
        out.write(reserved)
        counts, total = _Counts(), _Counts()
        for row in rows:
            copied = copy_suites(out, row)
            if copied is not None:
                total.add_counts(copied)
            if copied is None or _failed_unseen(row, copied):
                own_cases.write(_render_testcase(row, output_chars, counts).encode("utf-8"))
        out.write(head.suite(counts))
        out.write(_properties(run_id, shard, properties))
        own_cases.seek(0)
        shutil.copyfileobj(own_cases, out)
        out.write(b"  </testsuite>\n</testsuites>\n")
        total.add_counts(counts)
        final = head.root(total)
        if len(final) != len(reserved):  # cannot happen while counts fit their digits
            raise RuntimeError("JUnit header outgrew its reserved space")
        out.seek(0)
        out.write(final)


def _failed_unseen(row: Mapping[str, Any], copied: JUnitTotals) -> bool:
    """The task did not succeed, and its runner's report shows no failing test."""
    return row.get("status") != "success" and copied.failures + copied.errors == 0


class _Head:
    """The XML declaration and the root's start tag, whose counts are known only at
    the end: written first with room reserved, then rewritten in place, so the file
    streams in one pass (whitespace before `>` is legal); and fanout's suite's start
    tag, written once its testcases are counted."""

    def __init__(self, suite: str, timestamp: float, duration: float) -> None:
        self.name = suite
        self.timestamp = timestamp
        self.seconds = f"{max(duration, 0.0):.3f}"

    def root(self, counts: _Counts | None) -> bytes:
        numbers = (counts or _Counts()).numbers()
        padding = " " * (4 * _COUNT_DIGITS - sum(len(value) for _, value in numbers))
        root = _attributes([("name", self.name), *numbers, ("time", self.seconds)])
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites{root}{padding}>\n'.encode()

    def suite(self, counts: _Counts) -> bytes:
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.timestamp))
        suite = _attributes([
            ("name", self.name), *counts.numbers(), ("time", self.seconds),
            ("timestamp", started), ("hostname", _hostname()), ("id", "0"),
        ])  # fmt: skip
        return f"  <testsuite{suite}>\n".encode()


def _hostname() -> str:
    try:
        return os.uname().nodename or "localhost"
    except OSError:
        return "localhost"


def _properties(run_id: str, shard: str | None, extra: Mapping[str, str] | None) -> bytes:
    entries = [("run_id", run_id)]
    if shard is not None:
        entries.append(("shard", shard))
    entries.extend((str(name), str(value)) for name, value in (extra or {}).items())
    lines = [
        f"      <property{_attributes([('name', name), ('value', value)])}/>\n"
        for name, value in entries
    ]
    return ("    <properties>\n" + "".join(lines) + "    </properties>\n").encode("utf-8")


def _render_testcase(row: Mapping[str, Any], output_chars: int, counts: _Counts) -> str:
    """One task row as a <testcase> element; `counts` takes the row's status."""
    status = str(row.get("status") or "")
    counts.add(status)
    task_id = str(row.get("task_id") or f"task-{row.get('seq', '?')}")
    summary = str(row.get("summary") or "")
    reason = str(row.get("reason") or "")
    stdout, stderr = _excerpts(row, output_chars)
    classname, file = case_place(row)
    opening = "    <testcase" + _attributes(
        [
            ("name", task_id),
            ("classname", classname),
            ("time", _seconds_text(row.get("duration_ms"))),
            ("file", file),
        ]
    )
    body: list[str] = []
    if status != "success":
        failing = failing_tests(stdout, stderr) if status in FAILED_STATUSES else []
        if failing:
            summary = failure_message(failing)
            reason = "\n".join([*filter(None, [reason]), "failing tests:", *failing])
        body.append(_outcome(status, summary, reason, stderr or stdout))
    # Excerpts come from read_tail, already free of non-XML characters.
    if stdout:
        body.append(f"      <system-out>{_escape_markup(stdout)}</system-out>\n")
    if stderr:
        body.append(f"      <system-err>{_escape_markup(stderr)}</system-err>\n")
    if not body:
        return opening + "/>\n"
    return opening + ">\n" + "".join(body) + "    </testcase>\n"


def _outcome(status: str, summary: str, reason: str, excerpt: str) -> str:
    if status == "cancelled":
        message = f"cancelled: {reason}" if reason else "cancelled"
        return f"      <skipped{_attributes([('message', message)])}/>\n"
    tag = "failure" if status in FAILED_STATUSES else "error"
    kind = status if status in ("failure", "timeout", "error") else "error"
    message = summary or reason or (f"status {status}" if status else "no status recorded")
    # GitLab shows only this element's text for a failed case, not system-out; the
    # excerpt is stderr's tail, else stdout's, as a task's summary is chosen.
    text = "\n\n".join(part for part in (reason, excerpt) if part)
    attributes = _attributes([("message", message), ("type", kind)])
    return f"      <{tag}{attributes}>{escape_text(text)}</{tag}>\n"


def _seconds_text(duration_ms: object) -> str:
    """Milliseconds as seconds with three decimals; 0 for a missing or bad value."""
    valid = isinstance(duration_ms, int | float) and not isinstance(duration_ms, bool)
    seconds = float(duration_ms) / 1000 if valid else 0.0  # type: ignore[arg-type]  # checked above
    if not 0 <= seconds < float("inf"):  # negative or NaN
        seconds = 0.0
    return f"{seconds:.3f}"


def _excerpts(row: Mapping[str, Any], output_chars: int) -> tuple[str, str]:
    run_dir = row.get("run_dir")
    details_file = row.get("details_file")
    if output_chars == 0 or not isinstance(run_dir, str) or not isinstance(details_file, str):
        return "", ""
    # Output files always sit in the run folder; a manifest cannot point elsewhere.
    names = output_names_of(details_file)
    if names is None:
        return "", ""
    stdout, stderr = (os.path.join(run_dir, name) for name in names)
    return read_tail(stdout, output_chars), read_tail(stderr, output_chars)


def read_tail(path: str, chars: int) -> str:
    """The last `chars` characters of a file of any size, UTF-8 with replacement,
    terminal escapes and non-XML characters removed. A cut-off excerpt starts with a
    one-line note (not counted in `chars`) naming the full file. "" when unreadable;
    RunFolderError (exit 2) for a link, FIFO or device planted in its place."""
    if chars <= 0:
        return ""
    folder, name = os.path.split(path)
    try:
        with open(RunFolder(folder).open(name), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = max(0, size - chars * _UTF8_MAX_BYTES)
            handle.seek(start)
            raw = handle.read(size - start)
    except UnsafeFile as exc:
        raise RunFolderError(str(exc)) from None
    except OSError:
        return ""
    if start:
        raw = _skip_partial_character(raw)
    decoded = raw.decode("utf-8", "replace")
    # Twice the cap leaves room for the escapes removed below, and spares the regexes
    # the other half of a window sized for four-byte characters.
    text = strip_non_xml(_TERMINAL_ESCAPE.sub("", decoded[-2 * chars :]))
    if start == 0 and len(decoded) <= chars:
        return text
    tail = text[-chars:]
    return f"[fanout: the last {len(tail)} characters of {size} bytes; full output: {path}]\n{tail}"


def _skip_partial_character(raw: bytes) -> bytes:
    """Drop the continuation bytes of a character cut in two by the start of `raw`."""
    skip = 0
    while skip < min(len(raw), _UTF8_MAX_BYTES - 1) and 0x80 <= raw[skip] <= 0xBF:
        skip += 1
    return raw[skip:]


def write_run_junit(
    path: str,
    report: RunReport,
    rows: Iterable[Mapping[str, Any]] | None = None,
    properties: Mapping[str, str] | None = None,
) -> None:
    """--junit FILE of a run (its rows read back from disk, each with its folder) or of a
    merge (`rows` given). Raises StoreError naming the file when it cannot be written."""
    if rows is None:
        rows = ({**row, "run_dir": report.run_dir} for row in report.rows())
    try:
        write_junit(
            path,
            rows,
            suite=report.title,
            run_id=report.run_id,
            timestamp=report.started_at,
            duration=report.duration,
            shard=report.shard,
            properties=properties,
        )
    except OSError as exc:
        raise StoreError(f"--junit {path}: cannot write: {exc.strerror}") from None
