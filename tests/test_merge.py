"""End to end: `fanout merge` fans shard runs back into one run, and `fanout timings
export` writes the durations the next pipeline plans its shards from.

Each test runs its own shards (side by side: they are independent processes) with
one fixed `--timings` file, so every shard plans the same split by count:
t1 t4 t7 / t2 t5 t8 / t3 t6 t9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.helpers import FANOUT, Completed, run_fanout, wait_until
from tests.test_sharding import NINE, run_all

SHARDS = ["shard-1", "shard-2", "shard-3"]
SHARD_TASKS = [["t1", "t4", "t7"], ["t2", "t5", "t8"], ["t3", "t6", "t9"]]
MERGED_ORDER = [task for shard in SHARD_TASKS for task in shard]
# Prints a line, and fails for t5 unless a file `fixed` is in the current folder.
T5_FAILS = ["sh", "-c", "echo out-{}; test {} != t5 || test -e fixed"]


def run_shards(folder: Path, *options: str, run_ids: Sequence[str] = SHARDS,
               shards: Sequence[int] = (1, 2, 3)) -> list[Completed]:  # fmt: skip
    timings = folder / "even.json"
    tasks = {task: {"durations": [1.0], "last_status": None} for task in NINE}
    timings.write_text(json.dumps({"fanout_timings_version": 1, "tasks": tasks}))
    calls = [
        (["run", "-q", "--shard", f"{index}/3", "--run-id", run_id, "--timings", str(timings),
          "--junit", str(folder / f"junit-{index}.xml"), *options, "--", *T5_FAILS, ":::", *NINE],
         None, None)
        for index, run_id in zip(shards, run_ids, strict=True)
    ]  # fmt: skip
    completed = run_all(calls)
    for run in completed:
        assert run.returncode in (0, 1), run.stderr
    return completed


def merged_folder(output_dir: Path, before: Sequence[Path] = ()) -> Path:
    """The one run folder that is a merge (and not among `before`)."""
    merges = [
        path for path in output_dir.iterdir()
        if path not in before and "merged_from" in manifest_of(path)
    ]  # fmt: skip
    assert len(merges) == 1, merges
    return merges[0]


def manifest_of(run_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return document


def ids(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [row["task_id"] for row in rows]


def epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# --- the merge --------------------------------------------------------------------------


def test_three_shards_merge_into_one_run_verdict_junit_and_timings(tmp_path: Path) -> None:
    runs = run_shards(tmp_path)
    output_dir = runs[0].output_dir
    merged = run_fanout("merge", *SHARDS, "--junit", "all.xml", "--timings-out", "t.json")
    assert merged.returncode == 1, merged.stderr
    lines = merged.stdout.splitlines()
    assert lines[:3] == [
        f"merged {run_id} (shard {index}/3, finished): 3 tasks · out/{run_id}"
        for index, run_id in enumerate(SHARDS, start=1)
    ]
    assert lines[3].startswith("failure   t5  ")
    folder = merged_folder(output_dir)
    assert lines[4].startswith("FAIL all-succeed: 1 failure of 9 · 9 tasks in ")
    assert lines[4].endswith(f" · out/{folder.name}/manifest.json")
    assert len(lines) == 5
    # The manifest: every task once, in shard then input order, pointing at its files.
    manifest = manifest_of(folder)
    assert manifest["status"] == "finished"
    assert manifest["merged_from"] == [str(output_dir / run_id) for run_id in SHARDS]
    assert ids(manifest["tasks"]) == MERGED_ORDER
    for index, shard in enumerate(SHARD_TASKS):
        for row in manifest["tasks"]:
            if row["task_id"] in shard:
                assert row["run_dir"] == str(output_dir / SHARDS[index])
                assert row["shard"] == f"{index + 1}/3"
                assert (Path(row["run_dir"]) / row["details_file"]).is_file()
    assert manifest["verdict"]["passed"] is False
    assert manifest["verdict"]["counts"] == {"tasks": 9, "success": 8, "failure": 1,
                                             "timeout": 0, "cancelled": 0, "error": 0}  # fmt: skip
    sources = [manifest_of(output_dir / run_id) for run_id in SHARDS]
    assert manifest["started_at"] == min(source["started_at"] for source in sources)
    assert manifest["finished_at"] == max(source["finished_at"] for source in sources)
    span = epoch(manifest["finished_at"]) - epoch(manifest["started_at"])
    assert manifest["duration_ms"] == pytest.approx(span * 1000, abs=2)
    assert manifest["options"]["strategy"] == "all-succeed"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    events = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    assert [event["event"] for event in events] == ["run_started", "run_ended"]
    assert events[1]["passed"] is False
    # JUnit: one suite of nine cases, the failure with its output from the shard's folder.
    root = ElementTree.parse(tmp_path / "all.xml").getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert (suites[0].get("tests"), suites[0].get("failures")) == ("9", "1")
    cases = suites[0].findall("testcase")
    assert [case.get("name") for case in cases] == MERGED_ORDER
    (failed,) = [case for case in cases if case.find("failure") is not None]
    assert failed.get("name") == "t5"
    assert "out-t5" in (failed.findtext("system-out") or "")
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties == {"run_id": folder.name, "merged_from": "3"}
    # The timings, in the merged folder and at --timings-out, plan the next pipeline.
    for timings_file in (tmp_path / "t.json", folder / "timings.json"):
        timings = json.loads(timings_file.read_text())
        assert sorted(timings["tasks"]) == NINE
        assert timings["tasks"]["t5"]["last_status"] == "failure"
    planned = run_fanout("run", "--shard", "1/3", "--timings", "t.json", "--dry-run",
                         "--", *T5_FAILS, ":::", *NINE)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith("# 3 shards by recorded durations of every task: ")


def test_the_merged_run_is_listed_and_shown(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    assert run_fanout("merge", *SHARDS).returncode == 1
    merged_id = merged_folder(output_dir).name
    listed = run_fanout("runs", "--json")
    rows = {row["run_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert set(rows) == {*SHARDS, merged_id}
    assert (rows[merged_id]["tasks"], rows[merged_id]["passed"]) == (9, False)
    assert rows[merged_id]["status"] == "finished"
    table = run_fanout("runs")
    assert any(
        line.startswith(merged_id) and " fail " in line for line in table.stdout.splitlines()
    )
    shown = run_fanout("show", merged_id)
    assert shown.returncode == 0, shown.stderr
    body = shown.stdout.splitlines()
    assert body[0].startswith(f"run {merged_id}: merge shard-1 shard-2 shard-3  (finished, ")
    assert [line.split()[2] for line in body[1:-2]] == MERGED_ORDER
    assert body[-2] == f"report: fanout report {merged_id} draws its timeline as an HTML page"
    assert body[-1] == f"fail: 9 tasks · {output_dir / merged_id}"


def test_show_of_a_merged_task_prints_its_output_from_the_shard_folder(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    run_fanout("merge", *SHARDS)
    shown = run_fanout("show", merged_folder(output_dir).name, "t5")
    assert shown.returncode == 0, shown.stderr
    assert "----- stdout" in shown.stdout
    assert "out-t5" in shown.stdout


def test_last_names_the_merge_just_made(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    run_fanout("merge", *SHARDS)
    shown = run_fanout("show", "last")
    assert shown.stdout.startswith(f"run {merged_folder(output_dir).name}: merge ")


def test_a_merged_run_can_be_merged_again(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    run_fanout("merge", *SHARDS)
    first = merged_folder(output_dir)
    again = run_fanout("merge", first.name, "shard-1", "--format", "json")
    assert again.returncode == 1, again.stderr
    result = json.loads(again.stdout)
    assert result["verdict"]["reason"] == "1 failure of 9"  # no shard is missing
    assert ids(result["tasks"]) == MERGED_ORDER
    rows = manifest_of(Path(result["details_dir"]))["tasks"]
    assert [row["shard"] for row in rows] == ["1/3"] * 3 + ["2/3"] * 3 + ["3/3"] * 3
    for row in rows:
        assert row["run_dir"] == str(output_dir / f"shard-{row['shard'][0]}")


def test_resume_of_a_merged_run_is_refused(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    run_fanout("merge", *SHARDS)
    merged = merged_folder(output_dir)
    resumed = run_fanout("run", "-q", "--resume", merged.name, "--", *T5_FAILS, ":::", *NINE)
    assert resumed.returncode == 2
    assert ids(manifest_of(merged)["tasks"]) == MERGED_ORDER


def test_partial_success_is_judged_over_all_the_shards(tmp_path: Path) -> None:
    run_shards(tmp_path, "--strategy", "partial-success", "--min-success-ratio", "0.6")
    merged = run_fanout("merge", *SHARDS)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.splitlines()[-1].startswith(
        "PASS partial-success: 8 of 9 succeeded (needed 6) · 9 tasks in "
    )
    stricter = run_fanout("merge", *SHARDS, "--min-successes", "9")
    assert stricter.returncode == 1
    assert "FAIL partial-success: 8 of 9 succeeded (needed 9)" in stricter.stdout
    assert run_fanout("merge", *SHARDS, "--min-successes", "x").returncode == 2


def test_differing_strategies_are_refused_unless_one_is_given(tmp_path: Path) -> None:
    run_shards(tmp_path, "--strategy", "best-of-n")
    run_shards(tmp_path, "--strategy", "all-succeed", run_ids=["all-3"], shards=[3])
    refused = run_fanout("merge", "shard-1", "shard-2", "all-3")
    assert refused.returncode == 2
    assert refused.stderr == (
        "fanout: error: the runs used different --strategy (all-succeed, best-of-n); "
        "choose one with --strategy\n"
    )
    chosen = run_fanout("merge", "shard-1", "shard-2", "all-3", "--strategy", "all-succeed")
    assert chosen.returncode == 1
    best = run_fanout("merge", "shard-1", "shard-2", "all-3", "--strategy", "best-of-n")
    assert best.returncode == 0
    # No scores: the winner is the succeeded task that came first in the input.
    assert "PASS best-of-n: t1 wins with no score (8 of 9 succeeded)" in best.stdout
    assert run_fanout("merge", *SHARDS[:2], "all-3", "--strategy", "x").returncode == 2


def test_a_folder_of_downloaded_artifacts_is_searched_for_runs(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    artifacts = tmp_path / "artifacts"
    for index, run_id in enumerate(SHARDS, start=1):
        target = artifacts / f"shard-{index}" / ".cache" / "agent-outputs" / run_id
        shutil.copytree(output_dir / run_id, target)
        (artifacts / f"shard-{index}" / "pytest.log").write_text("not a run\n")
    merged = run_fanout("merge", "artifacts", "--format", "json")
    assert merged.returncode == 1, merged.stderr
    manifest = manifest_of(merged_folder(output_dir))
    assert manifest["merged_from"] == [
        str(artifacts / f"shard-{index}" / ".cache" / "agent-outputs" / run_id)
        for index, run_id in enumerate(SHARDS, start=1)
    ]
    assert ids(manifest["tasks"]) == MERGED_ORDER
    assert all(row["run_dir"].startswith(str(artifacts)) for row in manifest["tasks"])
    # Merging the output dir again finds the three shards, not the merge made above.
    again = run_fanout("merge", str(output_dir))
    assert again.returncode == 1
    assert "9 tasks in" in again.stdout.splitlines()[-1]
    (tmp_path / "empty" / "a" / "b").mkdir(parents=True)
    nothing = run_fanout("merge", "empty")
    assert nothing.returncode == 2
    assert nothing.stderr.startswith("fanout: error: empty: no run folders in it")


def test_a_task_in_several_runs_counts_once_with_the_newest_result(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    (tmp_path / "fixed").write_text("")
    run_shards(tmp_path, run_ids=["shard-2-again"], shards=[2])  # CI re-ran a shard
    merged = run_fanout("merge", "shard-2-again", *SHARDS, "--format", "json")
    assert merged.returncode == 0, merged.stdout
    result = json.loads(merged.stdout)
    assert result["verdict"]["counts"]["tasks"] == 9
    assert result["verdict"]["reason"] == "9 of 9 succeeded"
    rows = manifest_of(merged_folder(output_dir))["tasks"]
    assert ids(rows) == MERGED_ORDER
    again = str(output_dir / "shard-2-again")
    assert [row["task_id"] for row in rows if row["run_dir"] == again] == SHARD_TASKS[1]


def test_a_missing_shard_fails_the_verdict(tmp_path: Path) -> None:
    (tmp_path / "fixed").write_text("")
    run_shards(tmp_path)
    merged = run_fanout("merge", "shard-1", "shard-3")
    assert merged.returncode == 1
    assert merged.stdout.splitlines()[-1].startswith(
        "FAIL all-succeed: 6 of 6 succeeded; shard 2/3 missing · 6 tasks in "
    )
    complete = run_fanout("merge", *SHARDS)
    assert complete.returncode == 0
    mixed = run_fanout("run", "-q", "--shard", "1/2", "--run-id", "half", "--", "true", ":::", "a")
    assert mixed.returncode == 0
    refused = run_fanout("merge", "half", *SHARDS)
    assert refused.returncode == 2
    assert "shards of different splits (1/2, 1/3, 2/3, 3/3)" in refused.stderr


def test_json_and_aop_formats(tmp_path: Path) -> None:
    output_dir = run_shards(tmp_path)[0].output_dir
    as_json = run_fanout("merge", *SHARDS, "--format", "json")
    assert as_json.returncode == 1
    result = json.loads(as_json.stdout)
    folder = merged_folder(output_dir)
    assert result["fanout_result_version"] == 1
    assert result["run_id"] == folder.name
    assert result["details_dir"] == str(folder)
    assert result["verdict"]["passed"] is False
    assert result["verdict"]["strategy"] == "all-succeed"
    assert ids(result["tasks"]) == MERGED_ORDER
    # details_dir is the merged folder: the details files are named by absolute path.
    for row in result["tasks"]:
        assert os.path.isabs(row["details_file"]) and os.path.isfile(row["details_file"])
    as_aop = run_fanout("merge", *SHARDS, "--format", "aop")
    assert as_aop.returncode == 1
    lines = as_aop.stdout.splitlines()
    assert lines[0].startswith("[AOP:START] ") and lines[-1].startswith("[AOP:END] ")
    assert lines[1] == "[AOP:TASK] fanout merge of 3 runs: 9 tasks, all-succeed"
    assert lines[3].startswith("- failure t5: ")
    shard = output_dir / "shard-2"
    assert f" -> {shard / '0005-t5.json'}; stdout {shard / '0005-t5.stdout'} (" in lines[3]
    assert "[AOP:VERDICT] fail strategy=all-succeed" in lines
    assert "[AOP:STATUS] failure" in lines
    bad = run_fanout("merge", *SHARDS, "--format", "jsonl")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


# --- runs that cannot be merged, or only with a warning ---------------------------------


def test_running_crashed_and_unended_runs_are_refused_and_an_interrupted_one_marked(
    tmp_path: Path,
) -> None:
    output_dir = Path(os.environ["FANOUT_OUTPUT_DIR"])
    busy = subprocess.Popen(
        [str(FANOUT), "run", "-q", "--run-id", "busy", "--", "sleep", ":::", "10"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        journal = output_dir / "busy" / "journal.jsonl"
        wait_until(lambda: journal.exists() and "task_started" in journal.read_text(),
                   "the busy run to start a task", timeout=10)
        refused = run_fanout("merge", "busy")
        assert refused.returncode == 2
        assert (
            refused.stderr == f"fanout: error: {output_dir / 'busy'}: still running; "
            "merge it once it has ended\n"
        )
        busy.send_signal(signal.SIGINT)
        assert busy.wait(timeout=10) == 130
    finally:
        busy.kill()
        busy.wait()
    interrupted = run_fanout("merge", "busy")
    assert interrupted.returncode == 1
    assert "run busy was interrupted" in interrupted.stdout.splitlines()[-1]
    assert "(interrupted)" in interrupted.stdout.splitlines()[0]
    # A run whose fanout died (kill -9): its manifest still says running, nobody holds it.
    crashed = output_dir / "crashed"
    shutil.copytree(output_dir / "busy", crashed)
    manifest = manifest_of(crashed)
    (crashed / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    refused = run_fanout("merge", str(crashed))
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"fanout: error: {crashed}: did not end (crashed)")
    (crashed / "manifest.json").unlink()
    refused = run_fanout("merge", "busy", str(crashed))
    assert refused.returncode == 2
    assert (
        refused.stderr == f"fanout: error: {crashed}: no manifest.json; "
        "not a run that ended, cannot merge it\n"
    )
    unknown = run_fanout("merge", "nosuchrun")
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1


# --- fanout timings export --------------------------------------------------------------


def test_timings_export_from_the_output_dir_or_named_runs(tmp_path: Path) -> None:
    run_shards(tmp_path)
    everything = run_fanout("timings", "export", "-o", "-")
    assert everything.returncode == 0, everything.stderr
    document = json.loads(everything.stdout)
    assert document["fanout_timings_version"] == 1
    assert sorted(document["tasks"]) == NINE
    assert all(len(entry["durations"]) == 1 for entry in document["tasks"].values())
    one = json.loads(run_fanout("timings", "export", "shard-1", "-o", "-").stdout)
    assert sorted(one["tasks"]) == SHARD_TASKS[0]
    # --timings files come first: the runs' durations are the newer ones.
    earlier = tmp_path / "earlier.json"
    earlier.write_text(
        json.dumps({"tasks": {"t1": {"durations": [42.0]}, "old": {"durations": [7]}}})
    )
    written = run_fanout("timings", "export", "shard-1", "--timings", str(earlier), "-o", "t.json")
    assert (written.returncode, written.stdout) == (0, "")
    combined = json.loads((tmp_path / "t.json").read_text())["tasks"]
    assert sorted(combined) == ["old", *SHARD_TASKS[0]]
    assert combined["t1"]["durations"][0] == 42.0 and len(combined["t1"]["durations"]) == 2
    missing = run_fanout("timings", "export", "--timings", "nope.json", "-o", "-")
    assert missing.returncode == 0
    assert missing.stderr.startswith("fanout: warning: --timings nope.json: no such file")
    (tmp_path / "bad.json").write_text("[]")
    bad = run_fanout("timings", "export", "--timings", "bad.json", "-o", "-")
    assert bad.returncode == 2
    assert bad.stderr.startswith("fanout: error: --timings bad.json: ")
    nowhere = run_fanout("timings", "export", "-o", "no/such/folder/t.json")
    assert nowhere.returncode == 2 and len(nowhere.stderr.splitlines()) == 1


def test_a_merge_in_the_output_dir_does_not_count_durations_twice(tmp_path: Path) -> None:
    run_shards(tmp_path)
    run_fanout("merge", *SHARDS)
    document = json.loads(run_fanout("timings", "export", "-o", "-").stdout)
    assert all(len(entry["durations"]) == 1 for entry in document["tasks"].values())
