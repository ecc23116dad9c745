"""aop.rows: a run's task rows one at a time in input order, for a finished run (its
manifest read line by line), a merged run (by seq, from a manifest listed by shard), a
run still going or crashed (its journal), and manifests not laid out as fanout writes
them; with memory that does not grow with the task count."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fanout_cli.aop import JOURNAL, MANIFEST, RunFolder, reader
from fanout_cli.aop.documents import journal_event, json_with_tasks, manifest_header
from fanout_cli.aop.files import RunFolderError
from fanout_cli.aop.rows import rows_in_input_order
from fanout_cli.aop.writer import write_whole_run


def row(seq: int, status: str = "success", **extra: Any) -> dict[str, Any]:
    return {"task_id": f"t{seq}", "seq": seq, "status": status, "exit_code": 0,
            "duration_ms": 1, "attempts": 1, "summary": f"s{seq}",
            "details_file": f"{seq:04d}-t{seq}.json", **extra}  # fmt: skip


def header(status: str, **extra: Any) -> dict[str, Any]:
    document = manifest_header(run_id="r", argv=["fanout"], options={}, started_at=0.0)
    return {**document, "status": status, **extra}


def finished_run(tmp_path: Path, rows: Iterable[dict[str, Any]], **extra: Any) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_whole_run(RunFolder(run_dir), header("finished", **extra), rows, [])
    return run_dir


def test_a_finished_run_gives_its_manifest_rows_in_order(tmp_path: Path) -> None:
    run_dir = finished_run(tmp_path, [row(n) for n in range(1, 40)])
    assert list(rows_in_input_order(run_dir)) == reader.task_rows(run_dir)
    assert [r["seq"] for r in rows_in_input_order(run_dir)] == list(range(1, 40))


def test_a_run_without_tasks(tmp_path: Path) -> None:
    assert list(rows_in_input_order(finished_run(tmp_path, []))) == []


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "indented"])
def test_a_manifest_reshaped_by_hand_is_read_whole(tmp_path: Path, indent: int | None) -> None:
    run_dir = finished_run(tmp_path, [])
    rows = [row(n) for n in (1, 2, 3)]
    document = {**header("finished"), "tasks": rows}
    (run_dir / MANIFEST).write_text(json.dumps(document, indent=indent))
    assert list(rows_in_input_order(run_dir)) == rows


def test_a_merged_run_gives_its_rows_by_seq_ties_in_the_merges_order(tmp_path: Path) -> None:
    shard_one, shard_two = "/runs/s1", "/runs/s2"
    rows = [row(seq, run_dir=shard_one) for seq in (1, 3, 4)]
    rows += [row(seq, run_dir=shard_two) for seq in (2, 4, 5)]
    run_dir = finished_run(tmp_path, rows, merged_from=[shard_one, shard_two])
    ordered = list(rows_in_input_order(run_dir))
    assert [(r["seq"], r["run_dir"]) for r in ordered] == [
        (1, shard_one), (2, shard_two), (3, shard_one), (4, shard_one), (4, shard_two),
        (5, shard_two),
    ]  # fmt: skip
    assert ordered == sorted(reader.task_rows(run_dir), key=lambda r: r["seq"])


def test_a_manifest_cut_inside_its_task_list_is_refused_naming_it(tmp_path: Path) -> None:
    run_dir = finished_run(tmp_path, [row(n) for n in (1, 2, 3)])
    text = (run_dir / MANIFEST).read_bytes()
    (run_dir / MANIFEST).write_bytes(text[: text.rindex(b"\n  ]")] + b"\n")  # ends in a row
    with pytest.raises(RunFolderError, match=r"manifest\.json: .*cut short"):
        list(rows_in_input_order(run_dir))


def test_a_row_that_is_not_json_is_refused_at_its_line(tmp_path: Path) -> None:
    run_dir = finished_run(tmp_path, [row(n) for n in (1, 2, 3)])
    text = (run_dir / MANIFEST).read_bytes()
    (run_dir / MANIFEST).write_bytes(text.replace(b'"seq": 2,', b'"seq": 2 oops,'))
    rows = rows_in_input_order(run_dir)
    assert next(rows)["seq"] == 1
    with pytest.raises(RunFolderError, match=r"manifest\.json: task row 2 is not one JSON line"):
        next(rows)


def running_run(tmp_path: Path, seqs: Iterable[int]) -> Path:
    """A run still marked running whose journal ended the tasks of `seqs`, in that
    order (a seq twice: ended twice, the later row counts)."""
    run_dir = tmp_path / "going"
    run_dir.mkdir()
    (run_dir / MANIFEST).write_bytes(b"".join(json_with_tasks(header("running"), [])))
    lines = [json.dumps(journal_event("run_started", None, {"run_id": "going"}))]
    for position, seq in enumerate(seqs):
        event = journal_event("task_ended", "2026-11-22T10:15:30.000Z",
                              {**row(seq), "summary": f"s{seq} #{position}"})  # fmt: skip
        lines.append(json.dumps(event))
    (run_dir / JOURNAL).write_text("\n".join(lines) + "\n" + '{"event": "task_en')  # torn
    return run_dir


def test_a_running_runs_rows_come_from_its_journal_by_seq_the_last_of_each(tmp_path: Path) -> None:
    run_dir = running_run(tmp_path, [3, 1, 2, 1, 10**12, 0, -4, 5])
    rows = list(rows_in_input_order(run_dir))
    assert [r["seq"] for r in rows] == [-4, 0, 1, 2, 3, 5, 10**12]
    assert rows[2]["summary"] == "s1 #3"  # ended again (a resume): the later row
    assert [(r["seq"], r["summary"]) for r in rows] == [
        (r["seq"], r["summary"]) for r in reader.task_rows(run_dir)
    ]


def _rows(count: int) -> Iterable[dict[str, Any]]:
    return (row(n) for n in range(1, count + 1))


@pytest.mark.parametrize("kind", ["finished", "merged", "running"])
def test_memory_does_not_grow_with_the_task_count(tmp_path: Path, kind: str) -> None:
    """40,000 rows: the whole list would take tens of MiB; one at a time takes little
    (the merged run's index and the journal's: a few bytes a task)."""
    count = 40_000
    if kind == "running":
        run_dir = running_run(tmp_path, range(1, count + 1))
    else:
        extra = {"merged_from": ["/runs/s1"]} if kind == "merged" else {}
        run_dir = finished_run(tmp_path, _rows(count), **extra)
    tracemalloc.start()
    try:
        seen = sum(1 for _ in rows_in_input_order(run_dir))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == count
    limit = {"finished": 1, "merged": 4, "running": 2}[kind]  # MiB
    assert peak < limit << 20, f"{peak / 2**20:.1f} MiB"
