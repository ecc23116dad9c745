"""A corrupt run in the output folder (issue 14, class 7): `runs`, `show`, `clean`,
`merge` and `timings export` skip it with one warning naming the file and the problem
and do the rest of their work; `show` of that run is exit 2 with one line; `clean`
removes it.

Each test makes two real runs, `good` and `bad`, then spoils `bad` on disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Completed, assert_clean, one_error_line, output_dir, run_fanout


def _two_runs() -> tuple[Path, Path]:
    for run_id in ("bad", "good"):
        completed = run_fanout("run", "-q", "--shard", "1/1", "--run-id", run_id, "--",
                               "echo", ":::", run_id)  # fmt: skip
        assert completed.returncode == 0, completed.stderr
    return output_dir() / "good", output_dir() / "bad"


def _cut_short(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _writer(content: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(content)

    return write


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


SPOILED_MANIFESTS = {
    "not JSON": _writer("[1,2"),
    "a list": _writer("[1, 2]"),
    "cut short": _cut_short,
    "no status": _writer('{"run_id": "bad"}'),
    "counts not an object": _writer(
        '{"status": "finished", "verdict": {"passed": true, "counts": "x"}}'
    ),
    "tasks not a count": _writer(
        '{"status": "finished", "verdict": {"passed": true, "counts": {"tasks": "x"}}}'
    ),
    "argv of numbers": _writer('{"status": "finished", "argv": [1, 2]}'),
    "duration not a number": _writer('{"status": "finished", "duration_ms": "x"}'),
    "status a list": _writer('{"status": ["x"]}'),
    "a folder": _a_folder,
    "nested too deep": _writer("[" * 100_000 + "]" * 100_000),
}


def _warned_once(completed: Completed, path: Path) -> str:
    assert_clean(completed)
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("fanout: warning: ") and str(path) in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("spoil", list(SPOILED_MANIFESTS), ids=list(SPOILED_MANIFESTS))
def test_a_corrupt_manifest_is_skipped_with_a_warning_and_can_be_cleaned(
    spoil: str, tmp_path: Path
) -> None:
    good, bad = _two_runs()
    manifest = bad / "manifest.json"
    SPOILED_MANIFESTS[spoil](manifest)

    listed = run_fanout("runs")
    assert listed.returncode == 0
    _warned_once(listed, manifest)
    assert "good" in listed.stdout and "bad" not in listed.stdout

    assert str(manifest) in one_error_line(run_fanout("show", "bad"))
    shown = run_fanout("show", "good")
    assert shown.returncode == 0 and "good" in shown.stdout, shown.stderr
    assert run_fanout("show", "last").returncode == 0

    merged = run_fanout("merge", str(output_dir()))
    assert merged.returncode == 0, merged.stderr
    _warned_once(merged, manifest)
    assert str(manifest) in one_error_line(run_fanout("merge", "bad"))

    exported = run_fanout("timings", "export", "-o", str(tmp_path / "t.json"))
    assert exported.returncode == 0, exported.stderr
    assert "good" in json.loads((tmp_path / "t.json").read_text())["tasks"]

    cleaned = run_fanout("clean", "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert_clean(cleaned)
    assert not bad.exists() and not good.exists()


def test_a_corrupt_details_file_stops_show_of_that_task_only() -> None:
    _good, bad = _two_runs()
    details = bad / "0001-bad.json"
    details.write_text('{"task_id": "bad", "stdout": ')
    line = one_error_line(run_fanout("show", "bad", "bad"))
    assert str(details) in line and "not a details document" in line
    for args in (("show", "bad"), ("runs",), ("show", "good", "good")):
        completed = run_fanout(*args)
        assert completed.returncode == 0 and not completed.stderr, completed.stderr


def test_a_journal_with_no_event_makes_a_crashed_run_unreadable() -> None:
    _good, bad = _two_runs()
    (bad / "manifest.json").unlink()  # crashed before its manifest: the journal answers
    journal = bad / "journal.jsonl"
    journal.write_bytes(b"\x00\xff garbage\nmore garbage\n")
    listed = run_fanout("runs")
    assert listed.returncode == 0
    assert "no line is an event" in _warned_once(listed, journal)
    assert str(journal) in one_error_line(run_fanout("show", "bad"))
    assert str(journal) in one_error_line(run_fanout("run", "--resume", "bad"))


def test_a_task_row_of_the_wrong_shape_stops_show_and_merge_of_that_run() -> None:
    _good, bad = _two_runs()
    manifest = bad / "manifest.json"
    document = json.loads(manifest.read_text())
    document["tasks"][0]["duration_ms"] = "slow"
    manifest.write_text(json.dumps(document))
    line = one_error_line(run_fanout("show", "bad"))
    assert str(manifest) in line and "duration_ms" in line
    merged = run_fanout("merge", str(output_dir()))
    assert merged.returncode == 0
    _warned_once(merged, manifest)


def test_an_entry_named_like_a_run_that_is_a_file_or_a_link_is_warned_about_and_kept(
    tmp_path: Path,
) -> None:
    good, _ = _two_runs()
    as_file = output_dir() / "20260101T000000-abcd"
    as_file.write_text("not a run")
    as_link = output_dir() / "20260101T000000-ef01"
    as_link.symlink_to(good)
    listed = run_fanout("runs")
    assert listed.returncode == 0 and "good" in listed.stdout
    assert_clean(listed)
    warnings = listed.stderr.splitlines()
    assert len(warnings) == 2
    assert any(str(as_file) in line and "not a folder" in line for line in warnings)
    assert any(str(as_link) in line and "symbolic link" in line for line in warnings)
    cleaned = run_fanout("clean", "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert as_file.exists() and as_link.is_symlink() and good.exists() is False


def test_clean_keeps_a_corrupt_run_a_fanout_is_still_writing() -> None:
    """The lock is what says a run is in use, whatever its manifest holds."""
    import fcntl

    _, bad = _two_runs()
    (bad / "manifest.json").write_text("[1,2")
    with open(bad / "lock", "w") as lock:
        lock.write("12345\n")
        lock.flush()
        fcntl.flock(lock, fcntl.LOCK_EX)
        cleaned = run_fanout("clean", "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert bad.exists()
    assert "kept bad: still running" in cleaned.stdout


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"x": 1}', "no seq, task_id, command, origin"),
        ('{"seq": "1", "task_id": "a", "command": "true", "origin": "x"}', "seq is text"),
        ('{"seq": 1, "task_id": "a", "command": [1], "origin": "x"}', "command holds"),
        ('{"seq": 1, "task_id": "a", "command": "true", "origin": "x", "env": 5}', "env is a"),
        ("[1]", "not a saved task"),
        ('{"seq": 1, "task_id": "a", "command": "true", "origin": "x", "template": {"words": 5}}',
         "template has no words"),
        ('{"seq": 1, "task_id": "a", "command": "true", "origin": "x", "template": '
         '{"words": ["echo", "{%}"], "shell": false, "records": [5]}}', "template records hold"),
        ('{"seq": 1, "task_id": "a", "command": "true", "origin": "x", "template": '
         '{"words": ["echo"], "shell": false, "positions": "2"}}', "template positions"),
    ],
)
def test_a_corrupt_saved_task_list_stops_resume_with_one_line(line: str, problem: str) -> None:
    _, bad = _two_runs()
    task_list = bad / "tasks.jsonl"
    task_list.write_text(line + "\n")
    error = one_error_line(run_fanout("run", "-q", "--resume-failed", "bad"))
    assert str(task_list) in error and problem in error, error


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"status": "bogus"}, "status 'bogus' is not a task status"),
        ({"attempts": "x"}, "attempts is text"),
        ({"score": "x"}, "score is text"),
        ({"time": None}, "time is null"),
    ],
)
def test_a_task_ended_event_of_the_wrong_shape_stops_resume_and_merge_with_one_line(
    change: dict[str, object], problem: str
) -> None:
    _, bad = _two_runs()
    journal = bad / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    for event in events:
        if event["event"] == "task_ended":
            event.update(change)
    journal.write_text("".join(json.dumps(event) + "\n" for event in events))
    for args in (("run", "-q", "--resume-failed", "bad"), ("merge", "bad")):
        error = one_error_line(run_fanout(*args))
        assert str(journal) in error and problem in error, error


NESTED_LINE = "[" * 100_000 + "]" * 100_000 + "\n"


def test_json_nested_too_deep_in_the_journal_details_or_task_list_is_never_exit_70() -> None:
    _good, bad = _two_runs()
    details = bad / "0001-bad.json"
    details.write_text(NESTED_LINE)
    assert str(details) in one_error_line(run_fanout("show", "bad", "bad"))

    with (bad / "journal.jsonl").open("a") as journal:
        journal.write(NESTED_LINE)  # read as a line a crash left torn: skipped
    resumed = run_fanout("run", "--resume", "bad")
    assert resumed.returncode == 0, resumed.stderr
    assert_clean(resumed)

    saved = bad / "tasks.jsonl"
    saved.write_text(NESTED_LINE + saved.read_text())  # as a torn line: skipped
    again = run_fanout("run", "--resume-failed", "bad")
    assert again.returncode == 0, again.stderr
    assert_clean(again)


def test_an_empty_folder_named_like_a_run_says_the_run_never_began() -> None:
    # A kill -9 between creating a run folder and opening its journal leaves it empty.
    _two_runs()
    empty = output_dir() / "20260101T000000-0a0b"
    empty.mkdir(mode=0o700)
    listed = run_fanout("runs")
    assert listed.returncode == 0
    (warning,) = listed.stderr.splitlines()
    assert str(empty) in warning and "not a folder" not in warning
    assert "empty: the run was stopped before it began" in warning
    resumed = run_fanout("run", "--resume", empty.name)
    line = one_error_line(resumed)
    assert "empty: the run was stopped before it began" in line
    assert "nothing to resume" in line
