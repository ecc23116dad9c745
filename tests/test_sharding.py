"""End to end: `fanout run --shard I/N`, `--timings`, `--order`, and the JUnit of a shard.

Plans are read from `--dry-run`, which prints every shard's size and estimate as `#`
lines and then the commands of the chosen shard; runs that need real results use
instant commands (`true`, `echo`, `sh -c 'test ...'`). Recorded durations are written
as files (`--timings`) wherever a real measurement is not the point, so that the
plans do not depend on how busy the machine is."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.helpers import Completed, read_journal, read_manifest, run_fanout

SHARD_LINE = re.compile(
    r"^# shard (\d+)/(\d+): (\d+) tasks?(?:, estimated (\S+))?(  <- this shard)?$"
)
NINE = [f"t{number}" for number in range(1, 10)]
# Without recorded durations a split is by count, dealt in id order: t1 t4 t7 / t2 t5 t8 / ...
COUNT_SPLIT_OF_NINE = [{"t1", "t4", "t7"}, {"t2", "t5", "t8"}, {"t3", "t6", "t9"}]


# --- helpers ----------------------------------------------------------------------------


Call = tuple[Sequence[str], bytes | None, dict[str, str] | None]


def run_all(calls: Sequence[Call]) -> list[Completed]:
    """Independent fanout invocations side by side (each is a process of its own)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(run_fanout, *args, input=data, env=env) for args, data, env in calls]
        return [future.result() for future in futures]


def source_call(kind: str, values: Sequence[str], folder: Path, name: str = "tasks") -> Call:
    """The same tasks (id = value, command `echo VALUE`) from ::: values, stdin or TOML."""
    if kind == ":::":
        return ["run", "--", "echo", ":::", *values], None, None
    if kind == "stdin":
        return ["run", "--", "echo"], "".join(f"{value}\n" for value in values).encode(), None
    lines = [f'[[task]]\nid = "{value}"\ncmd = ["echo", "{value}"]\n' for value in values]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines))
    return ["run", str(path)], None, None


def with_options(call: Call, *options: str) -> Call:
    """`options` go before the command (the `--`) or after the task file."""
    args, data, env = call
    if "--" in args:
        split = list(args).index("--")
        return [*args[:split], *options, *args[split:]], data, env
    return [*args, *options], data, env


def dry_run_ids(completed: Completed) -> list[str]:
    """The task ids of a --dry-run of `echo` tasks, in the order it prints them."""
    assert completed.returncode == 0, completed.stderr
    lines = [line for line in completed.stdout.splitlines() if not line.startswith("#")]
    assert all(line.startswith("echo ") for line in lines), lines
    return [line.removeprefix("echo ") for line in lines]


def shard_sets(call: Call, total: int, *options: str) -> list[set[str]]:
    calls = [with_options(call, "--dry-run", "--shard", f"{i}/{total}", *options)
             for i in range(1, total + 1)]  # fmt: skip
    return [set(dry_run_ids(completed)) for completed in run_all(calls)]


def parse_seconds(text: str) -> float:
    """format_seconds's `9.00s`, `21.4s`, `12m05s` back to seconds."""
    minutes, _, seconds = text.removesuffix("s").rpartition("m")
    return float(seconds) + 60 * float(minutes or 0)


def plan_lines(completed: Completed) -> list[re.Match[str]]:
    matches = [SHARD_LINE.match(line) for line in completed.stdout.splitlines()]
    return [match for match in matches if match is not None]


def write_timings(path: Path, durations: Mapping[str, Sequence[float]],
                  last_status: Mapping[str, str] | None = None) -> Path:  # fmt: skip
    tasks = {
        task_id: {"durations": list(seconds), "last_status": (last_status or {}).get(task_id)}
        for task_id, seconds in durations.items()
    }
    path.write_text(json.dumps({"fanout_timings_version": 1, "tasks": tasks}))
    return path


def manifest_ids(run_dir: Path) -> list[str]:
    return [row["task_id"] for row in read_manifest(run_dir)["tasks"]]


def started_order(run_dir: Path) -> list[str]:
    return [event["task_id"] for event in read_journal(run_dir) if event["event"] == "task_started"]


# --- the partition ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", [":::", "stdin", "toml"])
def test_shards_are_disjoint_cover_every_task_and_ignore_the_input_order(
    kind: str, tmp_path: Path
) -> None:
    values = [f"v{number:02d}" for number in range(1, 12)]  # 11: no N in 2..5 divides it
    canonical = source_call(kind, values, tmp_path)
    for total in range(2, 6):
        shards = shard_sets(canonical, total)
        assert set().union(*shards) == set(values), total
        assert sum(len(shard) for shard in shards) == len(values), f"overlap at N={total}"
        assert max(map(len, shards)) - min(map(len, shards)) <= 1  # a count split
    # Recorded durations for some tasks (with ties, and the rest at the median):
    # every machine plans the same shards whatever order its input came in.
    timings = write_timings(tmp_path / "t.json", {"v01": [3], "v02": [1], "v05": [1], "v07": [2]})
    expected = shard_sets(canonical, 3, "--timings", str(timings))
    for attempt in range(2):
        shuffled = random.Random(attempt).sample(values, len(values))
        reordered = source_call(kind, shuffled, tmp_path, f"shuffled{attempt}")
        assert shard_sets(reordered, 3, "--timings", str(timings)) == expected


def test_timing_split_of_a_skewed_suite_is_within_ten_percent_of_ideal(tmp_path: Path) -> None:
    durations = {f"t{number:02d}": round(20 / number, 2) for number in range(1, 41)}
    timings = write_timings(tmp_path / "t.json", {k: [v] for k, v in durations.items()})
    call = source_call(":::", list(durations), tmp_path)
    total, shards = sum(durations.values()), 4
    planned = run_fanout(*with_options(call, "--dry-run", "--shard", "1/4",
                                       "--timings", str(timings))[0])  # fmt: skip
    estimates = [parse_seconds(match.group(4)) for match in plan_lines(planned)]
    assert len(estimates) == shards
    assert sum(estimates) == pytest.approx(total, abs=0.2)
    assert max(estimates) <= 1.10 * total / shards
    by_count = shard_sets(call, shards)  # no recorded durations: a split by count
    slowest_by_count = max(sum(durations[task] for task in shard) for shard in by_count)
    assert max(estimates) < slowest_by_count
    assert f"# 4 shards by recorded durations of every task: {total:.1f}s" in planned.stdout


@pytest.mark.slow
def test_durations_come_from_earlier_runs_in_the_output_dir_or_a_manifest(
    tmp_path: Path,
) -> None:
    values = ["0.4", "0.3", "0.2", "0.05"]
    first = run_fanout("run", "-q", "-j", "4", "--", "sleep", ":::", *values)
    assert first.returncode == 0, first.stderr
    # LPT: 0.4 and 0.3 open the two shards, 0.2 joins the lighter, 0.05 the other.
    planned = run_fanout("run", "--dry-run", "--shard", "1/2", "--", "echo", ":::", *values)
    assert "by recorded durations of every task" in planned.stdout
    assert set(dry_run_ids(planned)) == {"0.4", "0.05"}
    from_manifest = run_fanout(
        "run", "--dry-run", "--shard", "2/2", "--output-dir", str(tmp_path / "empty"),
        "--timings", str(first.run_dir / "manifest.json"), "--", "echo", ":::", *values,
    )  # fmt: skip
    assert "by recorded durations of every task" in from_manifest.stdout
    assert set(dry_run_ids(from_manifest)) == {"0.3", "0.2"}


def test_timings_from_pytest_junit_xml_are_matched_to_test_files(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<testsuites>'
        '<testsuite name="pytest" tests="4" time="12.0">'
        '<testcase classname="tests.test_a" name="test_one" time="5.0"/>'
        '<testcase classname="tests.test_a" name="test_two" time="4.0"/>'
        '<testcase classname="tests.test_b" name="test_x" time="0.5"/>'
        '<testcase classname="tests.test_c" name="test_y" time="2.5"/>'
        "</testsuite></testsuites>\n"
    )
    files = ["tests/test_a.py", "tests/test_b.py", "tests/test_c.py", "tests/test_d.py"]
    first, second = run_all([
        (["run", "--dry-run", "--shard", f"{i}/2", "--timings", str(report),
          "--", "echo", ":::", *files], None, None)
        for i in (1, 2)
    ])  # fmt: skip
    # test_a 9 s, test_b 0.5 s, test_c 2.5 s, test_d unknown: the median, 2.5 s.
    assert "recorded durations of 3 of 4 tasks (the rest at their median): 14.5s" in first.stdout
    assert dry_run_ids(first) == ["tests/test_a.py"]
    assert set(dry_run_ids(second)) == {"tests/test_b.py", "tests/test_c.py", "tests/test_d.py"}
    estimates = [parse_seconds(match.group(4)) for match in plan_lines(first)]
    assert estimates == [9.0, 5.5]


def test_a_task_with_no_recorded_duration_gets_the_median_of_the_known(tmp_path: Path) -> None:
    timings = write_timings(tmp_path / "t.json", {"a": [1], "b": [2], "c": [4], "d": [9]})
    planned = run_fanout("run", "--dry-run", "--shard", "1/2", "--timings", str(timings),
                         "--", "echo", ":::", "a", "b", "c", "d", "u", "v")  # fmt: skip
    # median of 1, 2, 4, 9 is 3: 1 + 2 + 4 + 9 + 3 + 3 = 22
    assert "recorded durations of 4 of 6 tasks (the rest at their median): 22.0s" in planned.stdout
    assert sorted(parse_seconds(m.group(4)) for m in plan_lines(planned)) == [11.0, 11.0]


def test_an_unreadable_timings_file_is_a_usage_error_and_a_missing_one_a_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.json").write_text("[1, 2]")
    (tmp_path / "bad.xml").write_text("<testsuites><testsuite>")
    for path in (tmp_path / "bad.json", tmp_path / "bad.xml"):
        completed = run_fanout("run", "--shard", "1/2", "--timings", str(path),
                               "--", "echo", ":::", "a", "b")  # fmt: skip
        assert completed.returncode == 2
        assert completed.stderr.startswith(f"fanout: error: --timings {path}")
        assert len(completed.stderr.splitlines()) == 1
    # A first CI pipeline has no cached timings yet: split by count, and say so.
    missing = tmp_path / "missing.json"
    completed = run_fanout("run", "--dry-run", "--shard", "1/2", "--timings", str(missing),
                           "--", "echo", ":::", "a", "b")  # fmt: skip
    assert completed.returncode == 0
    assert completed.stderr.startswith(f"fanout: warning: --timings {missing}: no such file")
    assert dry_run_ids(completed) == ["a"]


# --- choosing the shard -----------------------------------------------------------------


def test_dry_run_prints_the_plan_then_only_the_chosen_shards_commands() -> None:
    planned = run_fanout("run", "--dry-run", "--shard", "2/3", "--", "echo", ":::", *NINE)
    lines = planned.stdout.splitlines()
    assert lines[0] == "# 3 shards by task count: no recorded durations"
    shards = plan_lines(planned)
    assert [match.group(1, 2, 3) for match in shards] == [("1", "3", "3"), ("2", "3", "3"),
                                                          ("3", "3", "3")]  # fmt: skip
    assert [bool(match.group(5)) for match in shards] == [False, True, False]
    assert all(line.startswith("#") for line in lines[:4])
    assert dry_run_ids(planned) == ["t2", "t5", "t8"]
    ran = run_fanout("run", "--shard", "2/3", "--", "echo", ":::", *NINE)
    assert manifest_ids(ran.run_dir) == ["t2", "t5", "t8"]


@pytest.mark.parametrize(
    ("env", "options"),
    [
        ({}, ["--shard", "2/3"]),
        ({"FANOUT_SHARD": "2/3"}, []),
        ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, []),  # GitLab: 1-based
        ({"CIRCLE_NODE_INDEX": "1", "CIRCLE_NODE_TOTAL": "3"}, []),  # CircleCI: 0-based
        ({"FANOUT_SHARD": "1/3", "CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "3"}, ["--shard", "2/3"]),
    ],
    ids=["option", "FANOUT_SHARD", "CI_NODE", "CIRCLE_NODE", "option-beats-env"],
)
def test_the_environment_selects_the_same_shard_as_the_option(
    env: dict[str, str], options: list[str]
) -> None:
    planned = run_fanout("run", "--dry-run", *options, "--", "echo", ":::", *NINE, env=env)
    assert set(dry_run_ids(planned)) == COUNT_SPLIT_OF_NINE[1]
    assert "# shard 2/3: 3 tasks  <- this shard" in planned.stdout


def test_fanout_shard_beats_the_ci_variables() -> None:
    env = {"FANOUT_SHARD": "3/3", "CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "3"}
    planned = run_fanout("run", "--dry-run", "--", "echo", ":::", *NINE, env=env)
    assert set(dry_run_ids(planned)) == COUNT_SPLIT_OF_NINE[2]


@pytest.mark.parametrize(
    ("options", "env", "named"),
    [
        (["--shard", "0/3"], {}, "--shard"),
        (["--shard", "4/3"], {}, "--shard"),
        (["--shard", "x"], {}, "--shard"),
        (["--shard", "3"], {}, "--shard"),
        ([], {"FANOUT_SHARD": "9/2"}, "FANOUT_SHARD"),
        ([], {"CI_NODE_INDEX": "4", "CI_NODE_TOTAL": "3"}, "CI_NODE_INDEX"),
    ],
)
def test_a_bad_shard_is_a_usage_error_of_one_line(
    options: list[str], env: dict[str, str], named: str
) -> None:
    completed = run_fanout("run", *options, "--", "echo", ":::", "a", "b", env=env)
    assert completed.returncode == 2
    assert completed.stderr.startswith("fanout: error: ")
    assert named in completed.stderr
    assert len(completed.stderr.splitlines()) == 1
    assert completed.run_dirs() == []


# --- order within a shard ---------------------------------------------------------------


def test_order_longest_first_and_failed_first_change_the_start_order(tmp_path: Path) -> None:
    # d has no history: the median of 0.1, 0.3, 0.5 is 0.3, level with c (ties: input order)
    timings = write_timings(tmp_path / "t.json", {"a": [0.1], "b": [0.5], "c": [0.3]},
                            {"a": "success", "b": "success", "c": "failure"})  # fmt: skip
    runs = run_all([
        (["run", "-q", "-j", "1", "--timings", str(timings), *order,
          "--", "true", ":::", "a", "b", "c", "d"], None, None)
        for order in ([], ["--order", "longest-first"], ["--order", "failed-first"])
    ])  # fmt: skip
    folders = {}
    for completed in runs:
        assert completed.returncode == 0, completed.stderr
    for run_dir in runs[0].run_dirs():
        folders[json.loads((run_dir / "manifest.json").read_text())["options"]["order"]] = run_dir
    assert started_order(folders["input"]) == ["a", "b", "c", "d"]
    assert started_order(folders["longest-first"]) == ["b", "c", "d", "a"]
    assert started_order(folders["failed-first"]) == ["c", "b", "d", "a"]


def test_order_applies_within_the_shard(tmp_path: Path) -> None:
    timings = write_timings(tmp_path / "t.json", {"t2": [1], "t5": [2], "t8": [3]})
    command = ["--order", "longest-first", "--timings", str(timings), "--", "echo", ":::"]
    first, second = run_all([
        (["run", "--dry-run", "--shard", f"{i}/2", *command, "t2", "t5", "t8"], None, None)
        for i in (1, 2)
    ])  # fmt: skip
    assert dry_run_ids(first) == ["t8"]
    assert dry_run_ids(second) == ["t5", "t2"]


# --- a shard's run ----------------------------------------------------------------------


def test_a_shard_run_says_so_in_its_verdict_manifest_and_junit(tmp_path: Path) -> None:
    junit = tmp_path / "shard-2.xml"
    completed = run_fanout("run", "--shard", "2/3", "--junit", str(junit),
                           "--", "sh", "-c", "test {} != t5", ":::", *NINE)  # fmt: skip
    assert completed.returncode == 1
    verdict = completed.stdout.splitlines()[-1]
    assert verdict.startswith("FAIL all-succeed: 1 failure of 3 · 3 tasks of shard 2/3 in ")
    manifest = completed.manifest()
    assert manifest["options"]["shard"] == "2/3"
    assert [row["task_id"] for row in manifest["tasks"]] == ["t2", "t5", "t8"]
    root = ElementTree.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert sorted(str(case.get("name")) for case in cases) == ["t2", "t5", "t8"]
    assert [case.get("name") for case in cases if case.find("failure") is not None] == ["t5"]
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["shard"] == "2/3"
    assert properties["run_id"] == completed.run_dir.name


def test_resume_of_a_shard_run_does_not_split_it_again() -> None:
    first = run_fanout("run", "-q", "--shard", "2/3", "--run-id", "s2",
                       "--", "sh", "-c", "test {} != t5", ":::", *NINE)  # fmt: skip
    assert first.returncode == 1
    # Another shard in the environment does not matter: the run's saved list is its shard.
    resumed = run_fanout("run", "-q", "--resume-failed", "s2", env={"FANOUT_SHARD": "1/3"})
    assert resumed.returncode == 1
    assert manifest_ids(first.run_dir) == ["t2", "t5", "t8"]
    events = read_journal(first.run_dir)
    resumed_at = [event["event"] for event in events].index("run_resumed")
    restarted = [e["task_id"] for e in events[resumed_at:] if e["event"] == "task_started"]
    assert restarted == ["t5"]


def test_resume_with_the_same_shard_option_keeps_every_task_of_the_shard() -> None:
    run_fanout("run", "-q", "--shard", "2/3", "--run-id", "s2",
               "--", "sh", "-c", "test {} != t5", ":::", *NINE)  # fmt: skip
    resumed = run_fanout("run", "-q", "--resume-failed", "s2", "--shard", "2/3")
    assert resumed.returncode == 1
    assert manifest_ids(resumed.run_dir) == ["t2", "t5", "t8"]


def test_a_resumed_shard_run_still_says_which_shard_it_is() -> None:
    run_fanout("run", "-q", "--shard", "2/3", "--run-id", "s2",
               "--", "sh", "-c", "test {} != t5", ":::", *NINE)  # fmt: skip
    resumed = run_fanout("run", "-q", "--resume-failed", "s2")
    assert " of shard 2/3 " in resumed.stdout
    assert resumed.manifest()["options"]["shard"] == "2/3"


def test_resume_with_the_source_again_takes_the_shard_from_the_environment() -> None:
    command = ["--", "sh", "-c", "test {} != t5", ":::", *NINE]
    run_fanout("run", "-q", "--run-id", "s2", *command, env={"FANOUT_SHARD": "2/3"})
    resumed = run_fanout("run", "-q", "--resume-failed", "s2", *command,
                         env={"FANOUT_SHARD": "2/3"})  # fmt: skip
    assert manifest_ids(resumed.run_dir) == ["t2", "t5", "t8"]


def test_shards_run_one_after_another_in_one_output_dir_are_disjoint(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.toml"
    tasks.write_text('[[task]]\nid = "a"\ncmd = ["sleep", "0.4"]\n' + "".join(
        f'[[task]]\nid = "{name}"\ncmd = ["true"]\n' for name in "bcdef"
    ))  # fmt: skip
    first = run_fanout("run", "-q", str(tasks), "--shard", "1/2", "--run-id", "one")
    second = run_fanout("run", "-q", str(tasks), "--shard", "2/2", "--run-id", "two")
    assert first.returncode == second.returncode == 0
    one = set(manifest_ids(first.output_dir / "one"))
    two = set(manifest_ids(first.output_dir / "two"))
    assert one | two == set("abcdef")
    assert not one & two
