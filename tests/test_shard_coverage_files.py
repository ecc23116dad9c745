"""End to end: the plan record as a file of the run folder (plan.json) and as a JSON
document (`--dry-run --format json`): kept on --resume, read without following a
planted link, refused in one line when corrupt, absent for older runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.helpers import one_error_line, run_fanout
from tests.test_sharding import NINE, run_all

# Fails for t5 until a file `fixed` is in the current folder.
T5_FAILS = ["sh", "-c", "echo {}; test {} != t5 || test -e fixed"]


def three_shards(*options: str) -> list[Path]:
    """Shards 1-3 of NINE (planned by count), run ids s1..s3; their run folders."""
    calls = [(["run", "-q", "--shard", f"{index}/3", "--run-id", f"s{index}", *options,
               "--", *T5_FAILS, ":::", *NINE], None, None) for index in (1, 2, 3)]  # fmt: skip
    run_all(calls)
    return [Path(os.environ["FANOUT_OUTPUT_DIR"]) / f"s{index}" for index in (1, 2, 3)]


def plan_of(run_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((run_dir / "plan.json").read_text())
    return document


def test_a_shard_run_records_its_plan_before_its_tasks_start() -> None:
    folders = three_shards()
    plan = plan_of(folders[1])
    assert list(plan) == ["fanout_plan_version", "fingerprint", "shards", "shard", "slots",
                          "order", "timings", "shard_estimates", "units"]  # fmt: skip
    assert plan["fingerprint"].startswith("sha256:") and len(plan["fingerprint"]) == 71
    assert (plan["shards"], plan["shard"], plan["slots"], plan["order"]) == (3, 2, 1,
                                                                             "longest-first")
    assert plan["timings"] == {"files": [], "known": 0, "units": 9}
    assert [unit["id"] for unit in plan["units"]] == NINE  # the whole list, input order
    assert {unit["id"] for unit in plan["units"] if unit["shard"] == 2} == {"t2", "t5", "t8"}
    manifest = json.loads((folders[1] / "manifest.json").read_text())
    assert manifest["plan"] == {"fingerprint": plan["fingerprint"], "shard": 2, "units": 9}
    rows = {row["task_id"]: row for row in manifest["tasks"]}
    keys = {unit["id"]: unit["key"] for unit in plan["units"]}
    journal = [json.loads(line) for line in (folders[1] / "journal.jsonl").read_text().splitlines()]
    assert all(keys[event["task_id"]] == event["key"] for event in journal
               if event["event"] == "task_ended")  # fmt: skip
    assert set(rows) == {"t2", "t5", "t8"}
    # Every shard planned alike: one fingerprint.
    assert {plan_of(folder)["fingerprint"] for folder in folders} == {plan["fingerprint"]}
    # Not a shard run: no plan record.
    plain = run_fanout("run", "-q", "--run-id", "plain", "--", "true", ":::", "a")
    assert not (plain.output_dir / "plain" / "plan.json").exists()
    assert "plan" not in json.loads((plain.output_dir / "plain" / "manifest.json").read_text())


def test_a_resumed_shard_keeps_its_plan_and_merges_proven(tmp_path: Path) -> None:
    folders = three_shards()
    before = (folders[1] / "plan.json").read_bytes()
    (tmp_path / "fixed").touch()
    # Another shard and timings in the environment do not make it plan again.
    resumed = run_fanout("run", "-q", "--resume-failed", "s2", env={"FANOUT_SHARD": "1/3"})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (folders[1] / "plan.json").read_bytes() == before
    manifest = json.loads((folders[1] / "manifest.json").read_text())
    assert manifest["plan"]["fingerprint"] == plan_of(folders[1])["fingerprint"]
    again = run_fanout("run", "-q", "--resume", "s2", "--", *T5_FAILS, ":::", *NINE)
    assert again.returncode == 0, again.stderr
    assert (folders[1] / "plan.json").read_bytes() == before
    merged = run_fanout("merge", "s1", "s2", "s3")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert merged.stderr == ""


def test_a_planted_link_as_plan_json_is_refused(tmp_path: Path) -> None:
    folders = three_shards()
    (tmp_path / "fixed").touch()
    real = tmp_path / "elsewhere.json"
    real.write_bytes((folders[0] / "plan.json").read_bytes())
    (folders[0] / "plan.json").unlink()
    (folders[0] / "plan.json").symlink_to(real)
    refused = run_fanout("merge", "s1", "s2", "s3")
    line = one_error_line(refused)
    assert line.startswith(f"fanout: error: {folders[0] / 'plan.json'}: ")
    # Found in a folder: skipped with a warning, as a run whose manifest is a link.
    found = run_fanout("merge", str(folders[0].parent))
    assert found.stderr.startswith(f"fanout: warning: {folders[0] / 'plan.json'}: ")
    assert found.stderr.splitlines()[0].endswith("; skipped")
    assert "shard 1/3 missing" in found.stdout.splitlines()[-1]


def test_a_corrupt_plan_json_is_one_line_and_exit_2() -> None:
    folders = three_shards()
    for content, problem in (
        (b"{not json", "not a fanout plan: not valid JSON: "),
        (b'{"fanout_plan_version": 1, "fingerprint": "sha256:0", "shards": 3, "shard": 1,'
         b' "slots": 1, "units": [{"id": "t1"}]}', "not a fanout plan: units[1].key is missing"),
        (b'{"fanout_plan_version": 7}', "not a fanout plan: fanout_plan_version 7 is not 1"),
        (b"[]", "not a fanout plan: not a JSON object"),
    ):
        (folders[0] / "plan.json").write_bytes(content)
        refused = run_fanout("merge", "s1", "s2", "s3")
        line = one_error_line(refused)
        assert line.startswith(f"fanout: error: {folders[0] / 'plan.json'}: {problem}"), line
    found = run_fanout("merge", str(folders[0].parent))
    assert found.returncode == 1
    assert found.stderr.startswith(f"fanout: warning: {folders[0] / 'plan.json'}: not a fanout")


def test_shard_runs_without_plan_records_are_merged_with_a_warning() -> None:
    """Runs of an older fanout: today's checks stand, and a warning says the coverage
    could not be proven."""
    folders = three_shards()
    for folder in folders[:2]:
        (folder / "plan.json").unlink()
    merged = run_fanout("merge", "s1", "s2", "s3")
    assert merged.returncode == 1  # t5 failed
    assert merged.stderr == ("fanout: warning: coverage could not be proven: shards 1/3, 2/3 "
                             "kept no plan record (plan.json: an older fanout ran them)\n")
    assert merged.stdout.splitlines()[-1].startswith("FAIL all-succeed: 1 failure of 9 · ")


def test_dry_run_json_prints_the_shard_plan_and_its_commands(tmp_path: Path) -> None:
    timings = tmp_path / "timings.json"
    durations = {task: {"durations": [float(number)]} for number, task in enumerate(NINE, 1)}
    timings.write_text(json.dumps({"fanout_timings_version": 1, "tasks": durations}))
    completed = run_fanout("run", "--dry-run", "--format", "json", "--shard", "2/3", "-j", "2",
                           "--timings", str(timings), "--", "echo", ":::", *NINE)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["shard"] == 2 and document["shards"] == 3 and document["slots"] == 2
    assert document["timings"] == {"files": [str(timings)], "known": 9, "units": 9}
    assert [unit["estimate"] for unit in document["units"]] == [float(n) for n in range(1, 10)]
    assert len(document["shard_estimates"]) == 3
    mine = [unit["id"] for unit in document["units"] if unit["shard"] == 2]
    # The commands of this shard, in the order they start: longest first.
    assert document["commands"] == [f"echo {task}" for task in sorted(mine, reverse=True)]
    assert completed.output_dir.exists() is False or completed.run_dirs() == []
    # The same plan a run of that shard records.
    ran = run_fanout("run", "-q", "--shard", "2/3", "-j", "2", "--run-id", "r",
                     "--timings", str(timings), "--", "echo", ":::", *NINE)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    recorded = plan_of(ran.output_dir / "r")
    assert recorded == {key: value for key, value in document.items() if key != "commands"}
    # Without --shard: the commands, as before.
    plain = run_fanout("run", "--dry-run", "--format", "json", "--", "echo", ":::", "a", "b")
    assert plain.stdout == "echo a\necho b\n"
