"""Each renderer on its own, without a run: what it prints for given data, byte for byte.

The commands' data comes in as records (fanout_cli.results); the renderers print it
through a Console on a StringIO, without colour unless a test asks for it."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fanout_cli.aop.reader import RunInfo
from fanout_cli.errors import OutputClosedError, UsageError
from fanout_cli.models import Attempt, RunReport, TaskResult, TaskSpec, TaskStatus
from fanout_cli.options import OutputOptions
from fanout_cli.render import console as console_module
from fanout_cli.render import make_renderer
from fanout_cli.render.console import Console, error_line, plain_text, terminal_text, warn
from fanout_cli.render.lines import (
    HumanRenderer,
    display_path,
    format_seconds,
    print_dry_run,
    task_line,
    verdict_line,
)
from fanout_cli.render.machine import (
    RESULT_VERSION,
    JsonLinesRenderer,
    SilentRenderer,
    aop_lines,
    json_chunks,
)
from fanout_cli.render.merge import print_timings, render_merge
from fanout_cli.render.runs import print_clean, print_run, print_runs, print_task
from fanout_cli.results import (
    CleanResult,
    MergeResult,
    RunView,
    SourceRun,
    TaskOutput,
    TaskView,
)
from fanout_cli.timings import Timings
from fanout_cli.values import Shard
from tests.helpers import report_of

ROWS = [
    {"task_id": "a", "seq": 1, "status": "success", "duration_ms": 1500, "attempts": 1,
     "summary": "fine", "details_file": "1-a.json"},
    {"task_id": "b", "seq": 2, "status": "failure", "duration_ms": 12_000, "attempts": 2,
     "summary": "broke", "details_file": "2-b.json"},
]  # fmt: skip


def dated_report(rows: list[dict[str, Any]], *, passed: bool = False) -> RunReport:
    return report_of(rows, passed=passed, started_at=1_763_806_530.0, finished_at=1_763_806_532.5)




def plain() -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    return Console(stream, color=False), stream


def result_of(seq: int, status: str, seconds: float, attempts: int = 1) -> TaskResult:
    spec = TaskSpec(seq=seq, task_id=f"t{seq}", command=("true",), origin=f"test:{seq}")
    tries = tuple(
        Attempt(number, 100.0, 100.0 + seconds, TaskStatus(status), 0, None, "", "o", "e")
        for number in range(1, attempts + 1)
    )
    return TaskResult(
        spec=spec, status=TaskStatus(status), summary=f"summary {seq}", attempts=tries,
        started_at=100.0 if attempts else None,
        finished_at=100.0 + seconds if attempts else None,
    )  # fmt: skip


# --- console ---------------------------------------------------------------------------


def test_warnings_and_errors_go_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    warn("--timings t.json: no such file")
    Console(io.StringIO()).warning("second")
    error_line("bad")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "fanout: warning: --timings t.json: no such file\n"
        "fanout: warning: second\n"
        "fanout: error: bad\n"
    )


def test_the_console_stops_writing_once_its_reader_is_gone() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    console = Console(Closed(), color=False)
    with pytest.raises(OutputClosedError):
        console.line("x")
    assert console.closed
    console.line("y")  # nothing more is tried


def test_color_choice() -> None:
    assert console_module.color_choice("always") is True
    assert console_module.color_choice("never") is False
    assert console_module.color_choice("auto") is None


# --- human lines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.5, "0.50s"), (12.34, "12.3s"), (725, "12m05s")]
)
def test_format_seconds(seconds: float, shown: str) -> None:
    assert format_seconds(seconds) == shown


def test_task_line_and_verdict_line() -> None:
    assert task_line(result_of(3, "failure", 2.0, attempts=2)) == (
        "failure  ", " t3  2.00s [2 attempts]  summary 3"
    )
    console, _ = plain()
    line = verdict_line(dated_report(ROWS), console)
    assert line == (
        f"FAIL all-succeed: 1 failure · 2 tasks in 2.50s · {display_path('/runs/r1/manifest.json')}"
    )
    coloured = verdict_line(dated_report(ROWS, passed=True), Console(io.StringIO(), color=True))
    assert coloured.startswith("\x1b[1;32mPASS\x1b[0m all-succeed")


def test_human_renderer_counts_tasks_never_started_in_one_line() -> None:
    console, stream = plain()
    renderer = HumanRenderer(console, OutputOptions())
    renderer.task_ended(result_of(1, "success", 1.0))
    for seq in (2, 3):
        never = replace(result_of(seq, "cancelled", 0.0, attempts=0), summary="not started")
        renderer.task_ended(never)
    renderer.finish(dated_report(ROWS))
    lines = stream.getvalue().splitlines()
    assert lines[:2] == ["success   t1  1.00s  summary 1", "cancelled 2 tasks not started"]
    assert lines[2].startswith("FAIL all-succeed")


def test_quiet_prints_the_verdict_line_only() -> None:
    console, stream = plain()
    renderer = HumanRenderer(console, OutputOptions(quiet=True))
    renderer.task_ended(result_of(1, "success", 1.0))
    renderer.finish(dated_report(ROWS))
    assert stream.getvalue().count("\n") == 1


def test_dry_run_lines_are_pasteable() -> None:
    console, stream = plain()
    print_dry_run(console, [(("echo", "a b"), None), ("ls | wc -l", "/tmp/x y")])
    assert stream.getvalue() == "echo 'a b'\ncd '/tmp/x y' && ls | wc -l\n"


# --- machine formats -------------------------------------------------------------------


def test_the_json_envelope_is_versioned_and_lists_the_promised_row_fields() -> None:
    document = json.loads(b"".join(json_chunks(dated_report(ROWS))))
    assert document["fanout_result_version"] == RESULT_VERSION == 1
    assert list(document)[:6] == [
        "fanout_result_version", "run_id", "details_dir", "manifest", "duration_ms", "verdict",
    ]  # fmt: skip
    assert document["duration_ms"] == 2500
    assert [task["task_id"] for task in document["tasks"]] == ["a", "b"]


def test_aop_block_lists_failures_first() -> None:
    lines = aop_lines(dated_report(ROWS), max_lines=50, line_chars=500)
    assert lines[:5] == [
        "[AOP:START] 2025-11-22T10:15:30Z",
        "[AOP:TASK] fanout run: test",
        "[AOP:SUMMARY]",
        "- failure b: broke -> 2-b.json",
        "- success a: fine -> 1-a.json",
    ]
    assert lines[-3:] == [
        "[AOP:VERDICT] fail strategy=all-succeed",
        "[AOP:STATUS] failure",
        "[AOP:END] 2025-11-22T10:15:32Z",
    ]
    capped = aop_lines(dated_report(ROWS), max_lines=1, line_chars=500)
    assert "... 1 more succeeded" in capped


def test_json_lines_renderer_emits_one_event_a_line() -> None:
    console, stream = plain()
    renderer = JsonLinesRenderer(console)
    spec = TaskSpec(seq=1, task_id="t1", command=("true",), origin="test:1")
    renderer.task_started(spec, 1, 0)
    renderer.task_ended(result_of(1, "success", 1.0))
    renderer.finish(dated_report(ROWS))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [event["event"] for event in events] == ["task_started", "task_ended", "run_ended"]
    assert events[0] == {"event": "task_started", "seq": 1, "task_id": "t1", "attempt": 1,
                         "slot": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("output_format", "kind"),
    [("json", SilentRenderer), ("aop", SilentRenderer), ("jsonl", JsonLinesRenderer)],
)
def test_make_renderer_by_format(output_format: str, kind: type) -> None:
    renderer = make_renderer(OutputOptions(format=output_format), Console(io.StringIO()))
    assert isinstance(renderer, kind)


# --- runs, show, clean -----------------------------------------------------------------


def run_info(run_id: str, **changes: Any) -> RunInfo:
    values: dict[str, Any] = {
        "run_id": run_id, "path": Path("/out") / run_id, "started_at": None,
        "status": "finished", "tasks": 2, "passed": False, "duration_ms": 2500, "title": "t",
    }  # fmt: skip
    return RunInfo(**{**values, **changes})


def test_print_runs_table_and_json() -> None:
    console, stream = plain()
    running = run_info("r2", status="running", passed=None, duration_ms=None)
    print_runs(console, [run_info("long-run-id"), running], as_json=False)
    assert stream.getvalue().splitlines() == [
        "RUN          STARTED               TASKS  VERDICT      DURATION",
        "long-run-id  -                         2  fail         2.50s",
        "r2           -                         2  running      -",
    ]
    console, stream = plain()
    print_runs(console, [run_info("r1")], as_json=True)
    assert json.loads(stream.getvalue())["duration_ms"] == 2500
    console, stream = plain()
    print_runs(console, [], as_json=False)
    assert stream.getvalue() == "no runs yet\n"


def test_print_run_lists_its_rows() -> None:
    console, stream = plain()
    print_run(console, RunView(run_info("r1"), ROWS))
    assert stream.getvalue().splitlines() == [
        "run r1: t  (finished, started -)",
        "success   1  a  1.50s  fine",
        "failure   2  b  12.0s [2 attempts]  broke",
        "report: fanout report r1 draws its timeline as an HTML page",
        f"fail: 2 tasks · {Path('/out/r1')}",
    ]


def test_print_task_shows_a_compact_header_then_the_output_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "1-a.stdout"
    out.write_bytes(b"no newline \xff")
    record = {
        "task_id": "a\nb", "seq": 1, "status": "failure", "exit_code": None, "signal": 9,
        "reason": "killed by signal 9", "duration_ms": 1500, "attempts": [{}, {}],
        "command": ["sh", "-c", "echo $1; kill -9 $$", "it's"], "cwd": "/w d",
        "summary": "x\x1b[2J", "stdout": {"path": "1-a.stdout", "bytes": 12, "lines": 1},
    }  # fmt: skip
    outputs = (TaskOutput("stdout", 12, tmp_path, out.name, 1),
               TaskOutput("stderr", 0, tmp_path, "gone"))  # fmt: skip
    view = TaskView(record, outputs, tmp_path / "1-a.json")
    stream = io.BytesIO()
    console = Console(io.TextIOWrapper(stream, encoding="utf-8"), color=False)
    print_task(console, view)
    assert stream.getvalue() == (
        b"failure  a\\nb  seq 1  signal 9 (SIGKILL), killed by signal 9  1.50s  2 attempts\n"
        b"command: cd '/w d' && sh -c 'echo $1; kill -9 $$' 'it'\"'\"'s'\n"
        b"summary: x\\x1b[2J\n"
        b"details: 1-a.json\n"  # paths relative to the current folder (tmp_path) when in it
        b"stdout: 1-a.stdout (12 bytes, 1 line)\n"
        b"stderr: gone (empty)\n"
        b"----- stdout -----\nno newline \xff\n"
    )


def test_print_clean() -> None:
    removed = (run_info("r1"), run_info("r2"))
    busy = (run_info("r3", status="running"),)
    console, stream = plain()
    print_clean(console, CleanResult(Path("/out"), removed, busy, 3 * 1_048_576, dry_run=False))
    assert stream.getvalue().splitlines() == [
        "removed r1", "removed r2", "kept r3: still running", "removed 2 runs, 3.0 MiB from /out",
    ]  # fmt: skip
    console, stream = plain()
    print_clean(console, CleanResult(Path("/out"), removed[:1], (), 0, dry_run=True))
    assert stream.getvalue().splitlines() == ["would remove r1", "would remove 1 run from /out"]
    console, stream = plain()
    stopped = UsageError("r2: not a run folder")
    print_clean(console, CleanResult(Path("/out"), removed[:1], busy, 10, False, stopped))
    assert stream.getvalue() == "removed r1\n"  # then the caller raises the error


# --- merge, timings export -------------------------------------------------------------


def merge_result() -> MergeResult:
    source = SourceRun(Path("/elsewhere/s1"), "finished", 1.0, 2.0, {}, Shard(1, 2), ROWS)
    return MergeResult(dated_report(ROWS), (source,), tuple(ROWS))


def test_render_merge_human_lists_runs_and_tasks_that_did_not_succeed() -> None:
    console, stream = plain()
    render_merge(console, merge_result(), "human")
    lines = stream.getvalue().splitlines()
    assert lines[:2] == [
        f"merged s1 (shard 1/2, finished): 2 tasks · {display_path('/elsewhere/s1')}",
        "failure   b  12.0s  broke",
    ]
    assert lines[2].startswith("FAIL all-succeed") and len(lines) == 3


def test_render_merge_machine_formats() -> None:
    console, stream = plain()
    render_merge(console, merge_result(), "json")
    assert json.loads(stream.getvalue())["run_id"] == "r1"
    console, stream = plain()
    render_merge(console, merge_result(), "aop")
    assert stream.getvalue().startswith("[AOP:START]")


def test_print_timings_writes_the_timings_document() -> None:
    console, stream = plain()
    print_timings(console, Timings())
    assert json.loads(stream.getvalue()) == Timings().document()
    assert stream.getvalue().endswith("\n")


def test_no_renderer_module_imports_a_command() -> None:
    render = Path(__file__).resolve().parent.parent / "fanout_cli" / "render"
    for module in render.glob("*.py"):
        assert "fanout_cli.commands" not in module.read_text(), module.name
    assert os.path.exists(render / "console.py")


# --- C1 controls and bidirectional overrides on the terminal (issue 14, class 8) -----


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\u202eb", "a\\u202eb"),
        ("\u009b2J", "\\u009b2J"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("\u0085next", "\\u0085next"),
        ("\x7f", "\\u007f"),
        ("plain ascii \x1b[31mred\x1b[0m", "plain ascii \x1b[31mred\x1b[0m"),  # fanout's colours
        ("ünïcödé 日本", "ünïcödé 日本"),
    ],
)
def test_terminal_text_escapes_c1_and_bidi(text: str, shown: str) -> None:
    assert terminal_text(text) == shown


def test_plain_text_escapes_every_control_but_tab() -> None:
    assert plain_text("a\x1b]0;title\x07b\tc\nd\u202e") == "a\\x1b]0;title\\x07b\tc\\nd\\u202e"


def test_console_lines_show_bidi_escaped() -> None:
    console, stream = plain()
    console.line("id \u202eevil")
    assert stream.getvalue() == "id \\u202eevil\n"


def test_error_lines_escape_controls(capsys: pytest.CaptureFixture[str]) -> None:
    error_line("bad value 'a\x1b[2Jb\u202ec'")
    assert capsys.readouterr().err == "fanout: error: bad value 'a\\x1b[2Jb\\u202ec'\n"


def test_a_raw_c1_byte_of_non_utf8_input_is_escaped() -> None:
    console, stream = plain()
    console.line("id \udc9b2J")  # byte 0x9B of input that is not UTF-8
    assert stream.getvalue() == "id \\udc9b2J\n"


def test_the_live_area_shows_bidi_and_c1_escaped() -> None:
    from fanout_cli.models import TaskStatus
    from fanout_cli.render.live import LiveArea, ProgressState

    area = LiveArea(ProgressState(total=1, jobs=1), color=False)
    scrolled = area._scrolled([(TaskStatus.SUCCESS, "success  ", " a\u202eb  \u009b2J")])
    drawn = area._text([[("slowest: a\u2066b", "")]])
    assert scrolled.plain == "success   a\\u202eb  \\u009b2J"
    assert drawn.plain == "slowest: a\\u2066b"


def test_print_task_of_a_record_with_values_of_the_wrong_type_does_not_crash() -> None:
    """A details file is read from disk: whatever its fields hold, show prints it."""
    record = {"task_id": ["x"], "seq": "1", "status": 3, "attempts": "two", "duration_ms": "9",
              "signal": 10**30, "exit_code": {}, "command": 5, "summary": None}  # fmt: skip
    console, stream = plain()
    print_task(console, TaskView(record, ()))
    assert stream.getvalue().splitlines() == [
        "3  ['x']  seq 1  signal 1000000000000000000000000000000  0.00s  0 attempts",
        "summary: None",
    ]
