"""End to end: timings history across CI pipelines (`fanout merge --timings OLD`), several
files and globs in one `--timings`, and `fanout merge -q`.

A pipeline here is what the README's CI recipe does: every shard plans from the one
timings file the last pipeline wrote, then one merge of the shards' run folders
writes the next one with `--timings` of that same file."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Completed, assert_clean, one_error_line, run_fanout
from tests.test_sharding import dry_run_ids, run_all, write_timings

TASKS = ["a", "b", "c", "d", "e"]
SLEEPS = ["sh", "-c", "sleep 0.01; : {}"]


def pipeline(folder: Path, number: int, timings: str = "t.json") -> dict[str, Any]:
    """Two shards side by side into artifacts-NUMBER/shard-I, then their merge with
    `--timings` and `--timings-out` of the same file; the merge's JSON envelope."""
    artifacts = folder / f"artifacts-{number}"
    first = not (folder / timings).exists()
    shards = run_all([
        (["run", "-q", "--shard", f"{index}/2", "--timings", timings,
          "--output-dir", str(artifacts / f"shard-{index}"), "--", *SLEEPS, ":::", *TASKS],
         None, None)
        for index in (1, 2)
    ])  # fmt: skip
    for shard in shards:
        assert shard.returncode == 0, shard.stderr
    merged = run_fanout("merge", str(artifacts), "--timings", timings, "--timings-out", timings,
                        "--format", "json")  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    if first:  # the first pipeline has no timings yet: a warning, not an error
        assert merged.stderr == f"fanout: warning: --timings {timings}: no such file\n"
    else:
        assert merged.stderr == ""
    document: dict[str, Any] = json.loads(merged.stdout)
    return document


def seconds_by_task(document: Mapping[str, Any]) -> dict[str, float]:
    return {row["task_id"]: row["duration_ms"] / 1000 for row in document["tasks"]}


def durations(path: Path) -> dict[str, list[float]]:
    tasks = json.loads(path.read_text())["tasks"]
    return {task: entry["durations"] for task, entry in tasks.items()}


# --- merge --timings OLD: history across pipelines ---------------------------------------


def test_three_pipelines_leave_three_samples_per_task_the_newest_last(tmp_path: Path) -> None:
    documents = [pipeline(tmp_path, number) for number in (1, 2, 3)]
    measured = [seconds_by_task(document) for document in documents]
    history = durations(tmp_path / "t.json")
    assert sorted(history) == TASKS
    for task in TASKS:
        assert history[task] == [run[task] for run in measured], task
    # The merged run folder keeps the same timings as --timings-out.
    assert durations(Path(documents[-1]["details_dir"]) / "timings.json") == history


def test_history_keeps_the_last_20_durations_with_the_newest_last(tmp_path: Path) -> None:
    write_timings(tmp_path / "t.json", {task: [90.0 + n for n in range(20)] for task in TASKS})
    measured = seconds_by_task(pipeline(tmp_path, 2))
    history = durations(tmp_path / "t.json")
    for task in TASKS:
        assert history[task] == [91.0 + n for n in range(19)] + [measured[task]]


def test_merge_timings_compose_with_globs_commas_and_several_flags(tmp_path: Path) -> None:
    write_timings(tmp_path / "old.json", {"a": [1.0], "z": [7.0]})
    (tmp_path / "hist").mkdir()
    write_timings(tmp_path / "hist" / "2.json", {"a": [3.0]})
    write_timings(tmp_path / "hist" / "1.json", {"a": [2.0]})
    write_timings(tmp_path / "last.json", {"a": [4.0]})
    document = pipeline(tmp_path, 2, timings="unused.json")  # shards plan by count
    merged = run_fanout("merge", str(tmp_path / "artifacts-2"), "--timings", "old.json,hist/*.json",
                        "--timings", "last.json", "--timings-out", "out.json")  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    history = durations(tmp_path / "out.json")
    assert history["a"] == [1.0, 2.0, 3.0, 4.0, seconds_by_task(document)["a"]]
    assert history["z"] == [7.0]  # a task of the history that did not run this time stays


def test_merge_with_a_timings_file_that_is_not_timings_is_a_usage_error(tmp_path: Path) -> None:
    pipeline(tmp_path, 1)
    before = sorted((tmp_path / "out").iterdir())
    (tmp_path / "bad.json").write_text("[1, 2]")
    bad = run_fanout("merge", str(tmp_path / "artifacts-1"), "--timings", "t.json,bad.json")
    line = one_error_line(bad)
    assert line.startswith("fanout: error: --timings bad.json: not a fanout timings file")
    assert sorted((tmp_path / "out").iterdir()) == before  # no merged run was written
    empty = run_fanout("merge", str(tmp_path / "artifacts-1"), "--timings", "t.json,")
    assert one_error_line(empty) == (
        "fanout: error: --timings t.json,: an empty file name between commas"
    )


def test_timings_export_composes_history_the_same_way(tmp_path: Path) -> None:
    write_timings(tmp_path / "t.json", {task: [5.0] for task in TASKS})
    document = pipeline(tmp_path, 2)  # t.json now holds [5.0, this pipeline's]
    exported = run_fanout("timings", "export", str(tmp_path / "artifacts-2"),
                          "--timings", "t.json,none/*.json", "-o", "-")  # fmt: skip
    assert exported.returncode == 0
    assert exported.stderr == "fanout: warning: --timings none/*.json: no file matches\n"
    tasks = json.loads(exported.stdout)["tasks"]
    measured = seconds_by_task(document)
    for task in TASKS:  # the file's history, then the runs' durations again
        assert tasks[task]["durations"] == [5.0, measured[task], measured[task]]


# --- several files and globs in one --timings, on fanout run -----------------------------


def planned(*timings: str) -> Completed:
    completed = run_fanout("run", "--dry-run", "--shard", "1/2", *timings,
                           "--", "echo", ":::", "a", "b", "c", "d")  # fmt: skip
    assert_clean(completed)
    return completed


def test_run_reads_every_file_a_glob_and_a_comma_list_name(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    write_timings(tmp_path / "reports" / "1.json", {"a": [8.0]})
    (tmp_path / "reports" / "2.xml").write_text(
        '<testsuite><testcase classname="fanout" name="b" time="4.0"/></testsuite>'
    )
    write_timings(tmp_path / "old.json", {"c": [2.0], "d": [1.0]})
    # LPT over a 8, b 4, c 2, d 1: a alone, then b c d.
    for flags in (["--timings", "old.json,reports/*"],
                  ["--timings", "reports/*", "--timings", "old.json"]):  # fmt: skip
        completed = planned(*flags)
        assert completed.returncode == 0, completed.stderr
        assert completed.stderr == ""
        assert "recorded durations of every task: 15.0s" in completed.stdout
        assert dry_run_ids(completed) == ["a"]


def test_run_warns_for_a_glob_that_matches_nothing_and_splits_by_what_it_has(
    tmp_path: Path,
) -> None:
    write_timings(tmp_path / "old.json", {"a": [8.0], "b": [4.0], "c": [2.0], "d": [1.0]})
    completed = planned("--timings", "reports/*.xml,old.json")
    assert completed.returncode == 0
    assert completed.stderr.startswith("fanout: warning: --timings reports/*.xml: no file matches")
    assert len(completed.stderr.splitlines()) == 1
    assert dry_run_ids(completed) == ["a"]
    nothing = planned("--timings", "reports/*.xml")
    assert "by task count" in nothing.stdout


def test_run_takes_a_file_with_a_comma_in_its_name_as_that_file(tmp_path: Path) -> None:
    write_timings(tmp_path / "a,b.json", {"a": [8.0], "b": [4.0], "c": [2.0], "d": [1.0]})
    completed = planned("--timings", "a,b.json")
    assert (completed.returncode, completed.stderr) == (0, "")
    assert "recorded durations of every task: 15.0s" in completed.stdout


def test_run_refuses_an_empty_name_between_commas(tmp_path: Path) -> None:
    write_timings(tmp_path / "old.json", {"a": [8.0]})
    completed = planned("--timings", "old.json,,x.json")
    assert one_error_line(completed, no_run_folder=True) == (
        "fanout: error: --timings old.json,,x.json: an empty file name between commas"
    )


def test_a_task_file_can_name_a_glob_of_timings(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    write_timings(tmp_path / "reports" / "1.json", {"a": [8.0], "b": [4.0]})
    write_timings(tmp_path / "reports" / "2.json", {"c": [2.0], "d": [1.0]})
    tasks = "".join(f'[[task]]\nid = "{task}"\ncmd = ["echo", "{task}"]\n' for task in "abcd")
    (tmp_path / "tasks.toml").write_text(f'[run]\ntimings = ["reports/*.json"]\n{tasks}')
    completed = run_fanout("run", "tasks.toml", "--dry-run", "--shard", "1/2")
    assert (completed.returncode, completed.stderr) == (0, "")
    assert "recorded durations of every task: 15.0s" in completed.stdout


# --- fanout merge -q ------------------------------------------------------------------


def shard_runs(folder: Path, command: Sequence[str]) -> None:
    for index in (1, 2):
        shard = run_fanout("run", "-q", "--shard", f"{index}/2", "--output-dir",
                           str(folder / f"shard-{index}"), "--", *command, ":::",
                           *TASKS)  # fmt: skip
        assert shard.returncode in (0, 1), shard.stderr


@pytest.mark.parametrize("quiet", ["-q", "--quiet"])
def test_merge_quiet_prints_the_verdict_line_only_with_the_same_exit_status(
    tmp_path: Path, quiet: str
) -> None:
    shard_runs(tmp_path / "ok", ["true"])
    loud = run_fanout("merge", str(tmp_path / "ok"))
    assert len(loud.stdout.splitlines()) == 3  # a line a shard run, then the verdict
    passed = run_fanout("merge", str(tmp_path / "ok"), quiet)
    assert (passed.returncode, passed.stderr) == (0, "")
    assert len(passed.stdout.splitlines()) == 1
    assert passed.stdout.startswith("PASS all-succeed: 5 of 5 succeeded · 5 tasks in ")
    assert passed.stdout.endswith("/manifest.json\n")
    shard_runs(tmp_path / "bad", ["sh", "-c", "test {} != c"])
    failed = run_fanout("merge", str(tmp_path / "bad"), quiet, "--format", "json")
    assert failed.returncode == 1
    assert len(failed.stdout.splitlines()) == 1  # -q wins over --format, as in fanout run
    assert failed.stdout.startswith("FAIL all-succeed: 1 failure of 5 · 5 tasks in ")
