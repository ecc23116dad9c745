"""Per-value shards (fanout_cli/shards/batches.py): `--shard I/N -X` plans over the single
values (test ids) from their recorded durations, and runs each slot's share as one
command; start-up planned for; -s and -N cut a slot's command; -N alone unchanged."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from pathlib import Path

from fanout_cli.models import TaskSpec
from fanout_cli.shards.batches import commands_per_shard
from fanout_cli.shards.split import plan_shards
from tests.helpers import assert_clean, run_fanout


def timings_file(
    path: Path, durations: dict[str, float], startup: dict[str, float] | None = None
) -> str:
    tasks = {name: {"durations": [seconds], "last_status": "success"}
             for name, seconds in durations.items()}  # fmt: skip
    document: dict[str, object] = {"fanout_timings_version": 1, "tasks": tasks}
    if startup:
        document["startup"] = {program: [seconds] for program, seconds in startup.items()}
    path.write_text(json.dumps(document))
    return str(path)


def dry_run(*args: str, ids: list[str]) -> tuple[list[str], list[list[str]]]:
    """The plan's comment lines and the commands (as their words) of one --dry-run."""
    completed = run_fanout("run", "--dry-run", *args, input="".join(f"{i}\n" for i in ids).encode())
    assert_clean(completed)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    return [line for line in lines if line.startswith("#")], \
        [line.split()[1:] for line in lines if not line.startswith("#")]


def echo_shard(
    shard: str, timings: str, *options: str, ids: list[str]
) -> tuple[list[str], list[list[str]]]:
    """--dry-run of `--shard SHARD -X OPTIONS --timings TIMINGS -- echo {}`."""
    return dry_run("--shard", shard, "-X", *options, "--timings", timings, "--", "echo", "{}",
                   ids=ids)


def skewed(count: int) -> dict[str, float]:
    """Test ids with durations from 0.01 s to 3 s, a few long ones."""
    return {f"tests/test_m{n % 7}.py::test_{n}": round(0.01 + (n * 37 % 100) ** 3 / 1e6 * 3, 3)
            for n in range(count)}


def test_a_shard_plans_each_value_and_runs_one_command_a_slot(tmp_path: Path) -> None:
    durations = skewed(120)
    timings = timings_file(tmp_path / "t.json", durations)
    seen: list[str] = []
    estimates = []
    for index in range(1, 5):
        header, commands = dry_run("--shard", f"{index}/4", "-j", "2", "-X", "--timings", timings,
                                   "--", "echo", "{}", ids=list(durations))
        assert 1 <= len(commands) <= 2, commands  # one command a slot
        seen += [word for command in commands for word in command]
        assert "by recorded durations of every value" in header[0], header
        estimates = [float(re.search(r"estimated ([\d.]+)s", line).group(1))  # type: ignore[union-attr]
                     for line in header[1:]]
    assert sorted(seen) == sorted(durations)  # every value once, in one shard
    ideal = sum(durations.values()) / 8
    assert max(durations.values()) < ideal
    assert max(estimates) <= ideal * 1.05, (estimates, ideal)


def test_a_value_never_seen_is_planned_at_the_median(tmp_path: Path) -> None:
    timings = timings_file(tmp_path / "t.json", {"a": 1.0, "b": 1.0, "c": 1.0})
    header, commands = dry_run("--shard", "1/2", "-X", "--timings", timings, "--", "echo", "{}",
                               ids=["a", "b", "c", "new"])
    assert "recorded durations of 3 of 4 values (the rest at their median)" in header[0]
    assert [len(command) for command in commands] == [2]
    assert "estimated 2.00s" in header[1] and "estimated 2.00s" in header[2], header


def test_a_shard_runs_a_command_a_slot_with_its_start_up_planned(tmp_path: Path) -> None:
    # 1 s of tests a shard and 3 s of start-up: two commands (3.5 s) beat one (4 s); the
    # CPU a second start-up costs is the slot's, which -j gave. Estimates carry the
    # start-up, known or not.
    ids = [f"t{n}" for n in range(8)]
    short = timings_file(tmp_path / "short.json", dict.fromkeys(ids, 0.25), {"echo": 3.0})
    header, commands = echo_shard("1/2", short, "-j", "2", ids=ids)
    assert [len(command) for command in commands] == [2, 2], commands
    assert "; 3.00s start-up a command" in header[0] and "estimated 3.50s" in header[1], header
    unknown = timings_file(tmp_path / "none.json", dict.fromkeys(ids, 0.25))
    _, commands = echo_shard("1/2", unknown, "-j", "2", ids=ids)
    assert len(commands) == 2, commands


def test_no_second_command_where_no_split_shortens_the_shard(tmp_path: Path) -> None:
    # A 10 s test with three of 0.1 s a shard: a second command would save 0.3 s of
    # 13.3 s (2 %), for another 3 s start-up.
    ids = ["long1", "long2", *(f"t{n}" for n in range(6))]
    durations = {"long1": 10.0, "long2": 10.0, **dict.fromkeys(ids[2:], 0.1)}
    timings = timings_file(tmp_path / "t.json", durations, {"echo": 3.0})
    header, commands = echo_shard("1/2", timings, "-j", "2", ids=ids)
    assert len(commands) == 1 and len(commands[0]) == 4, commands
    assert "estimated 13.3s" in header[1], header


def test_a_command_more_while_it_saves_five_percent() -> None:
    specs = [TaskSpec(n, f"t{n}", ("true",), "test") for n in range(1, 13)]
    estimates = {spec.task_id: 1.0 for spec in specs}
    # 2 shards of 6 s: on 2 slots 3 s, on 3 slots 2 s, on 4 slots still 2 s; each with
    # the start-up added.
    assert commands_per_shard(specs, estimates, 2, 4, 0.0, plan_shards) == 3
    assert commands_per_shard(specs, estimates, 2, 4, 3.0, plan_shards) == 3  # 9, 6, 5 s
    assert commands_per_shard(specs, estimates, 2, 4, 30.0, plan_shards) == 2  # 36, 33, 32 s
    assert commands_per_shard(specs[:2], estimates, 2, 4, 0.0, plan_shards) == 1


def test_n_and_s_cut_a_slots_command(tmp_path: Path) -> None:
    ids = [f"v{n:02}" for n in range(12)]
    timings = timings_file(tmp_path / "t.json", dict.fromkeys(ids, 1.0))
    _, commands = echo_shard("1/2", timings, "-N", "4", ids=ids)
    assert sorted(len(command) for command in commands) == [2, 4], commands  # 6: 4 + 2
    _, commands = echo_shard("1/2", timings, "-s", "20", ids=ids)
    assert all(len(" ".join(["echo", *command])) < 20 for command in commands), commands
    assert sum(len(command) for command in commands) == 6 and len(commands) == 2, commands


def test_n_alone_keeps_its_fixed_groups_as_tasks() -> None:
    ids = [f"v{n}" for n in range(8)]
    header, commands = dry_run("--shard", "1/2", "-N", "2", "--", "echo", "{1}", "{2}", ids=ids)
    assert "holding" not in "\n".join(header)
    assert len(commands) == 2 and all(len(command) == 2 for command in commands), commands
    assert all(int(a[1:]) % 2 == 0 and int(b[1:]) == int(a[1:]) + 1 for a, b in commands), commands


def test_a_shard_runs_its_values_as_commands_and_the_rest_runs_elsewhere(tmp_path: Path) -> None:
    ids = [f"v{n}" for n in range(30)]
    timings = timings_file(tmp_path / "t.json", {f"v{n}": 0.01 * (n + 1) for n in range(30)})
    ran: list[str] = []
    for index in (1, 2, 3):
        out = tmp_path / f"shard{index}"
        completed = run_fanout("run", "-q", "--shard", f"{index}/3", "-j", "2", "-X", "--timings",
                               timings, "--output-dir", str(out), "--", "echo", "{}",
                               input="".join(f"{i}\n" for i in ids).encode())
        assert completed.returncode == 0, completed.stderr
        (run_dir,) = out.iterdir()
        rows = json.loads((run_dir / "manifest.json").read_text())["tasks"]
        assert 1 <= len(rows) <= 2, rows  # at most -j commands
        for row in rows:
            words = (run_dir / row["stdout_file"]).read_text().split()
            assert row["task_id"].split()[0] == words[0], row
            ran += words
    assert sorted(ran) == sorted(ids)


def test_commands_are_numbered_over_every_shard(tmp_path: Path) -> None:
    # {#} is unique over the shards (`--junitxml=reports/{#}.xml` never collides) and
    # {##} counts every shard's commands, as a shard of plain tasks numbers them.
    ids = [f"v{n}" for n in range(8)]
    timings = timings_file(tmp_path / "t.json", dict.fromkeys(ids, 1.0))
    numbers = []
    for shard in ("1/2", "2/2"):
        completed = run_fanout("run", "--dry-run", "--shard", shard, "-j", "2", "-X", "--timings",
                               timings, "--", "echo", "{##}", "{#}", "{}",
                               input="".join(f"{i}\n" for i in ids).encode())
        assert completed.returncode == 0, completed.stderr
        commands = [line.split() for line in completed.stdout.splitlines() if line[0] != "#"]
        assert {command[1] for command in commands} == {"4"}, commands
        numbers += [command[2] for command in commands]
    assert sorted(numbers) == ["1", "2", "3", "4"]


def test_the_plan_does_not_depend_on_the_input_order(tmp_path: Path) -> None:
    durations = skewed(60)
    timings = timings_file(tmp_path / "t.json", durations)
    shuffled = list(durations)
    random.Random(5).shuffle(shuffled)
    for shard in ("1/3", "2/3", "3/3"):
        plans = [echo_shard(shard, timings, "-j", "2", ids=order)[1]
                 for order in (list(durations), shuffled)]  # fmt: skip
        given, other = (sorted(map(sorted, plan)) for plan in plans)
        assert given == other


def test_the_plan_records_each_commands_values_by_the_key_of_their_own_task() -> None:
    from fanout_cli.shards.batches import plan_tasks, plan_values
    from fanout_cli.sources import SourceRequest, open_source
    from fanout_cli.sources.inputs import ArgumentSource, Batching, InputList
    from fanout_cli.timings import Timings

    values = tuple(f"tests/t.py::test_{n}" for n in range(10))
    request = SourceRequest(command=("pytest", "-q", "{}"), inputs=(InputList(values=values),))
    alone, _, _ = open_source(request)
    keys = {spec.task_id: spec.key for spec in alone.specs()}
    batched, _, _ = open_source(replace(request, batching=Batching("X")))
    assert isinstance(batched, ArgumentSource)
    timings = Timings(junit={f"tests.t.test_{n}": 0.1 * (n + 1) for n in range(10)})
    plan = plan_values(batched, timings, 2, 2, plan_shards)
    assert plan.known == 10 and plan.width == 2
    assert plan.estimates["tests/t.py::test_9"] == 1.0
    commands = [command for shard in plan.shards for slot in shard for command in slot]
    recorded = plan_tasks(commands)
    assert [row["seq"] for row in recorded] == [1, 2, 3, 4]
    assert sorted(key for row in recorded for key in row["units"]) == sorted(keys.values())
    for command, row in zip(sorted(commands, key=lambda c: c.spec.seq), recorded, strict=True):
        assert row["units"] == [keys[value] for value in command.spec.args.values]  # type: ignore[union-attr]
        assert command.spec.command == ("pytest", "-q", *command.spec.args.values)  # type: ignore[union-attr]


def shard_run(tmp_path: Path, name: str, shard: str, ids: list[str], *options: str) -> Path:
    """One shard run in its own output folder: its run folder."""
    out = tmp_path / name
    completed = run_fanout("run", "-q", "--shard", shard, "-j", "2", *options, "--output-dir",
                           str(out), "--", "echo", "{}",
                           input="".join(f"{i}\n" for i in ids).encode())  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    (run_dir,) = out.iterdir()
    return run_dir


def test_the_plan_record_proves_a_per_test_sharded_run_covered_every_value(
    tmp_path: Path,
) -> None:
    ids = [f"v{n}" for n in range(20)]
    runs = [shard_run(tmp_path, f"s{i}", f"{i}/3", ids, "-X") for i in (1, 2, 3)]
    plans = [json.loads((run / "plan.json").read_text()) for run in runs]
    plain = json.loads((shard_run(tmp_path, "plain", "1/3", ids) / "plan.json").read_text())
    # The units are the values, keyed as the tasks they would make without -X.
    assert plans[0]["units"] == plain["units"]
    assert len({plan["fingerprint"] for plan in plans}) == 1
    for index, (run, plan) in enumerate(zip(runs, plans, strict=True), start=1):
        rows = json.loads((run / "manifest.json").read_text())["tasks"]
        assert sorted(task["seq"] for task in plan["tasks"]) == sorted(row["seq"] for row in rows)
        mine = {unit["key"] for unit in plan["units"] if unit["shard"] == index}
        assert sorted(key for task in plan["tasks"] for key in task["units"]) == sorted(mine)
    merged = run_fanout("merge", *map(str, runs))
    assert merged.returncode == 0, merged.stdout + merged.stderr
    other = shard_run(tmp_path, "other", "3/3", ids[:-1], "-X")  # planned from another list
    differ = run_fanout("merge", str(runs[0]), str(runs[1]), str(other))
    assert differ.returncode == 1 and "plans differ" in differ.stdout, differ.stdout
