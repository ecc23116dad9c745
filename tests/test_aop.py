"""The run folder package: a run written with aop.writer reads back with aop.reader,
and what a crash leaves behind (a corrupt manifest, torn last lines) reads as before."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fanout_cli.aop import RunFolder, details_name, output_names_of, reader
from fanout_cli.aop.documents import (
    journal_event,
    journal_row,
    json_with_tasks,
    manifest_header,
    manifest_header_from,
    spec_document,
    spec_from_document,
)
from fanout_cli.aop.files import RunFolderError
from fanout_cli.aop.writer import RowIndex, RunStore, create_run_folder, write_whole_run
from fanout_cli.errors import StoreError
from fanout_cli.models import AgentCall, RunReport, TaskResult, TaskSpec, TaskStatus, Verdict
from fanout_cli.replacements import Args
from fanout_cli.template import Template


def spec(seq: int, task_id: str) -> TaskSpec:
    return TaskSpec(seq=seq, task_id=task_id, command=("echo", task_id), origin=f"test:{seq}")


def result(task: TaskSpec, status: TaskStatus = TaskStatus.SUCCESS) -> TaskResult:
    return TaskResult(
        spec=task, status=status, summary=f"{task.task_id} done", exit_code=0,
        started_at=1_700_000_000.0, finished_at=1_700_000_001.5,
        details_file=details_name(task),
    )  # fmt: skip


def write_run(output_dir: Path, run_id: str, specs: list[TaskSpec]) -> Path:
    """A finished run of `specs`, all successful, written as the runner writes one."""
    store = RunStore(str(output_dir), run_id)
    header = manifest_header(run_id=run_id, argv=["fanout", "run"], options={}, started_at=1e9)
    store.write_manifest(header, None, "running")
    store.save_specs(specs)
    store.journal("run_started", run_id=run_id, argv=["fanout", "run"], options={})
    index = RowIndex()
    for task in specs:
        ended = result(task)
        store.write_details(ended, run_id)
        index.add(task.seq, store.journal("task_ended", **journal_row(ended)))
    counts = {"tasks": len(specs), "success": len(specs)}
    report = RunReport(
        run_id=run_id, run_dir=str(store.run_dir), manifest_path=str(store.manifest_path),
        verdict=Verdict(True, "all-succeed", "all succeeded", counts),
        rows=lambda: store.rows(index), started_at=1e9, finished_at=1e9 + 2, title="t",
    )  # fmt: skip
    store.journal("run_ended", status="finished")
    store.write_manifest(header, report, "finished")
    store.close()
    return store.run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    yield write_run(tmp_path / "out", "run-1", [spec(1, "a"), spec(2, "b/c")])


# --- layout -------------------------------------------------------------------------


def test_run_folder_names() -> None:
    folder = RunFolder("/out/r1")
    assert folder.manifest == Path("/out/r1/manifest.json")
    assert folder.journal == Path("/out/r1/journal.jsonl")
    assert folder.task_list == Path("/out/r1/tasks.jsonl")
    assert folder.lock == Path("/out/r1/lock")
    assert folder.timings == Path("/out/r1/timings.json")
    assert folder.details(spec(7, "a/b")) == "/out/r1/0007-a_b.json"
    assert folder.outputs(spec(7, "x")) == ("/out/r1/0007-x.stdout", "/out/r1/0007-x.stderr")
    assert folder.outputs(spec(7, "x"), 2) == ("/out/r1/0007-x.a2.stdout", "/out/r1/0007-x.a2.stderr")  # noqa: E501
    assert folder.member("0007-x.json") == "/out/r1/0007-x.json"


@pytest.mark.parametrize(
    ("details_file", "names"),
    [
        ("0001-a.json", ("0001-a.stdout", "0001-a.stderr")),
        ("elsewhere/0001-a.json", ("0001-a.stdout", "0001-a.stderr")),
        ("0001-a.txt", None),
        (".json", None),
    ],
)
def test_output_names_of_a_details_file(details_file: str, names: tuple[str, str] | None) -> None:
    assert output_names_of(details_file) == names


def test_create_run_folder_is_private_and_refuses_a_taken_id(tmp_path: Path) -> None:
    made = create_run_folder(tmp_path / "deep" / "out", "r1")
    assert made == tmp_path / "deep" / "out" / "r1"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    with pytest.raises(StoreError, match="a run with this id already exists"):
        create_run_folder(tmp_path / "deep" / "out", "r1")
    assert create_run_folder(tmp_path / "deep" / "out").parent == made.parent


# --- a run written and read back ----------------------------------------------------


def test_a_written_run_reads_back(run_dir: Path) -> None:
    assert reader.is_run_folder(run_dir)
    assert reader.has_manifest(run_dir)
    header = reader.read_manifest_header(run_dir)
    assert header["status"] == "finished"
    assert header["verdict"]["passed"] is True
    assert "tasks" not in header
    info = reader.run_info(run_dir)
    assert (info.run_id, info.status, info.tasks, info.passed) == ("run-1", "finished", 2, True)
    assert info.title == "run"
    rows = reader.task_rows(run_dir)
    assert [(row["seq"], row["task_id"], row["status"]) for row in rows] == [
        (1, "a", "success"), (2, "b/c", "success"),
    ]  # fmt: skip
    assert reader.read_manifest(run_dir) == {**header, "tasks": rows}
    details = reader.read_details(run_dir, rows[1]["details_file"])
    assert (details["task_id"], details["seq"], details["summary"]) == ("b/c", 2, "b/c done")
    assert reader.read_details(run_dir, "0009-missing.json") == {}
    assert reader.held_by(run_dir) is None
    assert [run.run_id for run in reader.list_runs(run_dir.parent)] == ["run-1"]


def test_journal_events_and_offsets(run_dir: Path) -> None:
    events = list(reader.read_journal_at(run_dir))
    assert [event["event"] for event, _ in events] == [
        "run_started", "task_ended", "task_ended", "run_ended",
    ]  # fmt: skip
    raw = RunFolder(run_dir).journal.read_bytes()
    for event, offset in events:
        assert json.loads(raw[offset:].split(b"\n", 1)[0]) == event
    assert sorted(reader.ended_rows(run_dir)) == [1, 2]


def test_saved_task_list_round_trips(tmp_path: Path) -> None:
    agent = AgentCall(prompt="hi", tool="claude", attach=("f.txt",), args=("-p",))
    specs = [
        spec(1, "a"),
        TaskSpec(seq=2, task_id="t", command="echo {}", origin="tasks.toml:3", cwd="sub",
                 env={"A": "1"}, timeout=2.5, retries=1, ok_exit=frozenset({0, 3}), input="v",
                 template=Template(("echo", "{}"), True), args=Args.one("v"), agent=agent),
    ]  # fmt: skip
    run_dir = write_run(tmp_path / "out", "r", specs)
    documents = reader.read_task_list(run_dir)
    assert documents is not None
    assert [spec_from_document(document) for document in documents] == specs


def test_no_saved_task_list_reads_as_none(tmp_path: Path) -> None:
    assert reader.read_task_list(tmp_path) is None


def test_a_lock_held_by_a_running_store_names_its_pid(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "out"), "r")
    try:
        assert reader.held_by(store.run_dir) == os.getpid()
    finally:
        store.close()
    assert reader.held_by(store.run_dir) is None


def test_a_merged_run_written_whole_reads_back(tmp_path: Path) -> None:
    folder = RunFolder(create_run_folder(tmp_path / "out", "merged"))
    header = {"run_id": "merged", "status": "finished", "merged_from": ["/x"], "verdict": None}
    rows = [{"task_id": "a", "seq": 1, "status": "success"}]
    events = [journal_event("run_started", "T", {"run_id": "merged"})]
    write_whole_run(folder, header, rows, events)
    assert reader.read_manifest_header(folder.path) == header
    assert reader.task_rows(folder.path) == rows
    assert list(reader.read_journal(folder.path)) == [
        {"event": "run_started", "time": "T", "run_id": "merged"}
    ]


def test_manifest_header_is_cut_before_the_task_list() -> None:
    head = {"run_id": "r", "status": "finished", "options": {"jobs": 2}}
    text = b"".join(json_with_tasks(head, [{"seq": n} for n in range(1, 4)]))
    assert manifest_header_from(text) == head
    assert json.loads(text)["tasks"] == [{"seq": 1}, {"seq": 2}, {"seq": 3}]


def test_spec_document_keys_in_order() -> None:
    assert list(spec_document(spec(1, "a"))) == [
        "seq", "task_id", "key", "command", "cwd", "env", "timeout", "retries", "ok_exit",
        "input", "origin", "template", "agent",
    ]  # fmt: skip


# --- what a crash leaves behind -----------------------------------------------------


def test_an_empty_manifest_reads_as_none_and_the_journal_answers(run_dir: Path) -> None:
    """What a power cut after the rename may leave: the journal has the tasks."""
    RunFolder(run_dir).manifest.write_bytes(b"")
    assert reader.read_manifest_header(run_dir) == {}
    assert reader.read_manifest(run_dir) is None
    info = reader.run_info(run_dir)
    assert (info.status, info.tasks, info.passed) == ("crashed", 2, None)
    assert [row["task_id"] for row in reader.task_rows(run_dir)] == ["a", "b/c"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not a JSON object"),
        (b'["a list"]\n', "not a JSON object"),
        (b'{"run_id": "r", "st', "not a JSON object"),
        (b'{"run_id": "r"}', "no status"),
        (b'{"status": "finished", "verdict": {"passed": true, "counts": "x"}}', "verdict.counts"),
        (b'{"status": "finished", "verdict": {"passed": true, "counts": {"tasks": "x"}}}',
         "verdict.counts.tasks"),
        (b'{"status": "finished", "argv": [1, 2]}', "argv"),
        (b'{"status": "finished", "duration_ms": "x"}', "duration_ms is text"),
        (b'{"status": ["finished"]}', "status is a list"),
        (b'{"status": "weird"}', "status 'weird'"),
    ],
)  # fmt: skip
def test_a_corrupt_manifest_is_an_error_naming_it_and_listed_with_its_problem(
    run_dir: Path, content: bytes, problem: str
) -> None:
    manifest = RunFolder(run_dir).manifest
    manifest.write_bytes(content)
    with pytest.raises(RunFolderError, match=re.escape(f"{manifest}: not a fanout manifest")):
        reader.run_info(run_dir)
    with pytest.raises(RunFolderError, match=re.escape(problem)):
        reader.read_manifest_header(run_dir)
    (listed,) = reader.list_runs(run_dir.parent)
    assert listed.status == "corrupt" and listed.problem is not None
    assert str(manifest) in listed.problem and problem in listed.problem


def test_a_manifest_cut_short_after_its_header_is_an_error(run_dir: Path) -> None:
    manifest = RunFolder(run_dir).manifest
    whole = manifest.read_bytes()
    manifest.write_bytes(whole[: len(whole) - 10])
    with pytest.raises(RunFolderError, match="cut short"):
        reader.read_manifest_header(run_dir)


def test_a_missing_manifest_and_journal(tmp_path: Path) -> None:
    assert reader.read_manifest_header(tmp_path) == {}
    assert reader.read_manifest(tmp_path) is None
    assert list(reader.read_journal(tmp_path)) == []
    assert not reader.is_run_folder(tmp_path)


def test_a_torn_last_journal_line_is_left_out(run_dir: Path) -> None:
    journal = RunFolder(run_dir).journal
    complete = list(reader.read_journal(run_dir))
    with open(journal, "ab") as handle:
        handle.write(b'{"event": "task_ended", "seq": 3, "task_')
    assert list(reader.read_journal(run_dir)) == complete


def test_a_torn_line_ended_by_a_resume_is_skipped_and_later_events_read(run_dir: Path) -> None:
    with open(RunFolder(run_dir).journal, "ab") as handle:
        handle.write(b'{"event": "task_ended", "se')
    store = RunStore.reopen(run_dir)  # ends the torn line before appending
    store.journal("run_resumed", run_id="run-1")
    store.close()
    events = [event["event"] for event in reader.read_journal(run_dir)]
    assert events == ["run_started", "task_ended", "task_ended", "run_ended", "run_resumed"]


def test_a_torn_task_list_line_is_left_out(run_dir: Path) -> None:
    with open(RunFolder(run_dir).task_list, "ab") as handle:
        handle.write(json.dumps(spec_document(spec(3, "c"))).encode())  # no newline
    documents = reader.read_task_list(run_dir)
    assert documents is not None
    assert [document["task_id"] for document in documents] == ["a", "b/c"]
