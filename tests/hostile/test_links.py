"""Links planted inside a run folder are never followed (issue 14, class 2).

Each test makes a real run with the installed `fanout`, plants a symbolic link (or a
FIFO, or a details record naming a path outside the folder) where fanout keeps one of
its files, runs the real command, and checks that the file outside the folder was
neither written nor read nor printed, and what fanout said and how it exited."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import FANOUT, Completed, assert_clean, one_error_line, output_dir, run_fanout

PRECIOUS = "precious: this file is outside the run folder\n"
SECRET = "SECRET-7c1e-outside-the-run-folder"


def _victim(tmp_path: Path, text: str = PRECIOUS) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_text(text)
    return victim


def _run(run_id: str, *args: str) -> Completed:
    completed = run_fanout("run", "-q", "--run-id", run_id, *args)
    assert_clean(completed)
    return completed


def _plant(run_dir: Path, name: str, target: Path | str) -> None:
    path = run_dir / name
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def _refused(completed: Completed, name: str) -> str:
    line = one_error_line(completed)
    assert name in line and "symbolic link" in line, line
    return line


def test_a_lock_link_makes_resume_stop_and_leaves_its_target_alone(tmp_path: Path) -> None:
    _run("r", "--", "sh", "-c", "exit {}", ":::", "0", "1")
    victim = _victim(tmp_path)
    _plant(output_dir() / "r", "lock", victim)
    completed = run_fanout("run", "-q", "--resume", "r")
    _refused(completed, "lock")
    assert victim.read_text() == PRECIOUS


def test_journal_and_task_list_links_make_resume_stop(tmp_path: Path) -> None:
    _run("r", "--", "sh", "-c", "exit {}", ":::", "0", "1")
    run_dir = output_dir() / "r"
    for name in ("journal.jsonl", "tasks.jsonl"):
        saved = (run_dir / name).read_bytes()
        victim = _victim(tmp_path)
        _plant(run_dir, name, victim)
        completed = run_fanout("run", "-q", "--resume-failed", "r")
        _refused(completed, name)
        assert victim.read_text() == PRECIOUS
        (run_dir / name).unlink()
        (run_dir / name).write_bytes(saved)


def test_resume_failed_does_not_truncate_a_stdout_link(tmp_path: Path) -> None:
    _run("r", "--", "sh", "-c", "echo out-{}; exit 1", ":::", "a")
    victim = _victim(tmp_path, f"{SECRET}\n")
    _plant(output_dir() / "r", "0001-a.stdout", victim)
    completed = run_fanout("run", "--format", "json", "--resume-failed", "r")
    assert_clean(completed)
    assert completed.returncode == 1, completed.stderr
    assert victim.read_text() == f"{SECRET}\n"
    (row,) = json.loads(completed.stdout)["tasks"]
    assert row["status"] == "error"
    assert "0001-a.stdout" in row["summary"] and "symbolic link" in row["summary"]
    details = (output_dir() / "r" / "0001-a.json").read_text()
    assert SECRET not in details


def test_a_task_that_plants_a_link_for_a_later_task_fails_only_that_task(
    tmp_path: Path,
) -> None:
    """The first task finds the run folder through its own stdout and plants a link
    where the second task's stdout will go; -j 1 runs them one after the other."""
    victim = _victim(tmp_path, f"{SECRET}\n")
    plant = f'ln -s {victim} "$(dirname "$(readlink /proc/$$/fd/1)")/0002-b.stdout"'
    tasks = tmp_path / "tasks.toml"
    tasks.write_text(
        f"[[task]]\nid = 'a'\ncmd = {json.dumps(plant)}\n"
        "[[task]]\nid = 'b'\ncmd = 'echo written-by-b'\n"
    )
    completed = run_fanout("run", "--format", "json", "-j", "1", str(tasks))
    assert_clean(completed)
    assert victim.read_text() == f"{SECRET}\n"
    rows = {row["task_id"]: row for row in json.loads(completed.stdout)["tasks"]}
    assert rows["a"]["status"] == "success"
    assert rows["b"]["status"] == "error"
    assert "symbolic link" in rows["b"]["summary"]
    assert SECRET not in completed.stdout


def test_show_does_not_print_a_stdout_link(tmp_path: Path) -> None:
    _run("r", "--", "echo", ":::", "a")
    victim = _victim(tmp_path, f"{SECRET}\n")
    _plant(output_dir() / "r", "0001-a.stdout", victim)
    completed = run_fanout("show", "r", "a")
    _refused(completed, "0001-a.stdout")
    assert SECRET not in completed.stdout


def test_show_refuses_a_details_file_naming_a_path_outside_the_folder() -> None:
    _run("r", "--", "echo", ":::", "a")
    details_path = output_dir() / "r" / "0001-a.json"
    for outside in ("/proc/self/environ", "../r/0001-a.stdout", "/etc/passwd"):
        details = json.loads(details_path.read_text())
        details["stdout"]["path"] = outside
        details_path.write_text(json.dumps(details))
        completed = run_fanout("show", "r", "a", env={"FANOUT_TEST_MARKER": SECRET})
        line = one_error_line(completed)
        assert "0001-a.json" in line and outside in line, line
        assert SECRET not in completed.stdout
        assert "root:" not in completed.stdout


def test_show_refuses_a_details_link_and_a_details_name_outside_the_folder(
    tmp_path: Path,
) -> None:
    _run("r", "--", "echo", ":::", "a")
    run_dir = output_dir() / "r"
    victim = _victim(tmp_path, json.dumps({"task_id": SECRET}))
    _plant(run_dir, "0001-a.json", victim)
    completed = run_fanout("show", "r", "a")
    _refused(completed, "0001-a.json")
    assert SECRET not in completed.stdout


def test_show_of_a_fifo_planted_as_stdout_does_not_hang() -> None:
    _run("r", "--", "echo", ":::", "a")
    stdout = output_dir() / "r" / "0001-a.stdout"
    stdout.unlink()
    os.mkfifo(stdout)
    completed = run_fanout("show", "r", "a", timeout=10)
    line = one_error_line(completed)
    assert "0001-a.stdout" in line and "not a regular file" in line, line


def test_a_manifest_link_is_not_read(tmp_path: Path) -> None:
    _run("r", "--", "echo", ":::", "a")
    _run("good", "--", "echo", ":::", "b")
    victim = _victim(tmp_path, json.dumps({"status": "finished", "argv": ["x", SECRET]}))
    _plant(output_dir() / "r", "manifest.json", victim)
    listed = run_fanout("runs")
    assert listed.returncode == 0, listed.stderr
    assert "good" in listed.stdout and SECRET not in listed.stdout
    (warning,) = listed.stderr.splitlines()
    assert "manifest.json" in warning and "symbolic link" in warning
    _refused(run_fanout("show", "r"), "manifest.json")
    _refused(run_fanout("run", "--resume", "r"), "manifest.json")
    assert victim.read_text().count(SECRET) == 1


def test_merge_does_not_read_a_stdout_link_into_its_junit_report(tmp_path: Path) -> None:
    _run("s1", "--shard", "1/1", "--", "echo", ":::", "a")
    victim = _victim(tmp_path, f"{SECRET}\n")
    _plant(output_dir() / "s1", "0001-a.stdout", victim)
    report = tmp_path / "report.xml"
    completed = run_fanout("merge", "s1", "--junit", str(report))
    _refused(completed, "0001-a.stdout")
    assert not report.exists() or SECRET not in report.read_text()
    assert SECRET not in completed.stdout


def test_clean_removes_a_run_with_planted_links_and_not_their_targets(tmp_path: Path) -> None:
    _run("r", "--", "echo", ":::", "a")
    victim = _victim(tmp_path)
    for name in ("lock", "0001-a.stdout", "0001-a.json"):
        _plant(output_dir() / "r", name, victim)
    completed = run_fanout("clean", "--all")
    assert_clean(completed)
    assert completed.returncode == 0, completed.stderr
    assert not (output_dir() / "r").exists()
    assert victim.read_text() == PRECIOUS


def test_the_atomic_write_of_junit_does_not_follow_a_planted_temporary_name(
    tmp_path: Path,
) -> None:
    """A shell plants a link at the temporary name fanout used to pick (its pid) and
    execs fanout, which keeps that pid: temporary names must be unpredictable and
    created exclusively."""
    victim = _victim(tmp_path)
    reports = tmp_path / "reports"
    reports.mkdir()
    script = (
        'ln -s "$1" "$2/.report.xml.$$.tmp" && '
        'exec "$3" run -q --junit "$2/report.xml" -- true ::: a'
    )
    completed = subprocess.run(
        ["sh", "-c", script, "sh", str(victim), str(reports), str(FANOUT)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert victim.read_text() == PRECIOUS
    assert "<testcase" in (reports / "report.xml").read_text()


def test_a_symlinked_output_dir_chosen_by_the_user_is_allowed(tmp_path: Path) -> None:
    real = tmp_path / "real-out"
    real.mkdir()
    linked = tmp_path / "linked-out"
    linked.symlink_to(real)
    env = {"FANOUT_OUTPUT_DIR": str(linked)}
    first = run_fanout("run", "-q", "--run-id", "r", "--", "sh", "-c", "echo {}; exit 1",
                       ":::", "a", env=env)  # fmt: skip
    assert first.returncode == 1, first.stderr
    assert (real / "r" / "0001-a.stdout").read_text() == "a\n"
    shown = run_fanout("show", "r", "a", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "a\n" in shown.stdout
    resumed = run_fanout("run", "-q", "--resume-failed", "r", env=env)
    assert resumed.returncode == 1, resumed.stderr
    assert_clean(resumed)
    listed = run_fanout("runs", env=env)
    assert listed.returncode == 0 and "r " in listed.stdout and not listed.stderr


def test_a_task_that_swaps_its_own_stdout_for_a_link_gets_nothing_read_through_it(
    tmp_path: Path,
) -> None:
    """fanout reads a task's output after it ends (summary, excerpt, vote): the link the
    task left in place of its stdout is not read, and `show` refuses it."""
    victim = _victim(tmp_path, f"{SECRET}\n")
    swap = f'f=$(readlink /proc/$$/fd/1); rm "$f"; ln -s {victim} "$f"; echo done'
    completed = run_fanout("run", "--format", "json", "--run-id", "r", "--strategy",
                           "majority-vote", "--", "sh", "-c", swap, ":::", "a")  # fmt: skip
    assert_clean(completed)
    assert SECRET not in completed.stdout
    assert SECRET not in (output_dir() / "r" / "0001-a.json").read_text()
    assert SECRET not in (output_dir() / "r" / "manifest.json").read_text()
    assert victim.read_text() == f"{SECRET}\n"
    _refused(run_fanout("show", "r", "a"), "0001-a.stdout")
