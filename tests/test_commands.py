"""The commands other than `run` return data and print nothing: merge, timings export,
runs, show and clean, called directly on run folders made by real (quick) runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fanout_cli.cli import run_cli
from fanout_cli.commands.merge import export_timings, merge_runs
from fanout_cli.commands.runs import clean_runs, list_runs, show_run, show_task
from fanout_cli.errors import UsageError
from fanout_cli.results import CleanResult, MergeResult


@pytest.fixture
def output_dir(capsys: pytest.CaptureFixture[str]) -> Path:
    """Two shard runs of `true`/`false` over four values, then nothing printed yet."""
    for shard in ("1/2", "2/2"):
        code = run_cli(["run", "-q", "--shard", shard, "--", "test", "{}", "!=", "c", ":::",
                        "a", "b", "c", "d"])  # fmt: skip
        assert code in (0, 1)
    capsys.readouterr()
    return Path(os.environ["FANOUT_OUTPUT_DIR"])


def no_output(capsys: pytest.CaptureFixture[str]) -> None:
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_merge_returns_a_result_and_prints_nothing(
    output_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = merge_runs([str(output_dir)], output_dir, {}, junit=None, timings_out=None)
    no_output(capsys)
    assert isinstance(result, MergeResult)
    assert not result.passed  # c fails
    assert [str(run.shard) for run in result.sources] == ["1/2", "2/2"]
    assert sorted(row["task_id"] for row in result.rows) == ["a", "b", "c", "d"]
    assert Path(result.report.manifest_path).is_file()


def test_timings_export_returns_the_timings_and_writes_only_a_named_file(
    output_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    timings = export_timings([], output_dir, "-", [])
    no_output(capsys)
    assert len(timings.document()["tasks"]) == 4
    export_timings([], output_dir, str(tmp_path / "t.json"), [str(tmp_path / "missing.json")])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"fanout: warning: --timings {tmp_path / 'missing.json'}: no such file\n"
    assert json.loads((tmp_path / "t.json").read_bytes()) == timings.document()


def test_runs_and_show_return_data(output_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = list_runs(output_dir)
    view = show_run(output_dir, "last")
    first = view.rows[0]["task_id"]
    task = show_task(output_dir, "last", first)
    no_output(capsys)
    assert len(runs) == 2 and view.info.run_id == runs[0].run_id
    assert task.record["task_id"] == first
    assert [output.stream for output in task.outputs] == ["stdout", "stderr"]


def test_clean_removes_the_runs_and_prints_nothing(
    output_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planned = clean_runs(output_dir, older_than=None, keep=1, everything=False, dry_run=True)
    assert len(list_runs(output_dir)) == 2
    result = clean_runs(output_dir, older_than=None, keep=1, everything=False, dry_run=False)
    no_output(capsys)
    assert isinstance(result, CleanResult)
    assert [run.run_id for run in result.removed] == [run.run_id for run in planned.removed]
    assert result.freed_bytes > 0 and result.error is None
    assert len(list_runs(output_dir)) == 1


def test_clean_needs_to_be_told_what_to_remove(output_dir: Path) -> None:
    with pytest.raises(UsageError, match="say what to remove"):
        clean_runs(output_dir, older_than=None, keep=None, everything=False, dry_run=False)
    with pytest.raises(UsageError, match="--older-than"):
        clean_runs(output_dir, older_than="soon", keep=None, everything=False, dry_run=False)
