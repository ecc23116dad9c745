"""--shuf and [run] shuf: the value and the seed (fanout_cli/shuffle.py), the order
(fanout_cli/shards/shuffled.py), then the real command line: --dry-run, the manifest,
--resume going on in the same order, --shard, and the contradictions (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fanout_cli.models import TaskSpec
from fanout_cli.options import AGENT_KEYS, RUN_KEYS, RunConfig
from fanout_cli.plan import RunRequest, plan_run
from fanout_cli.shards.shuffled import shuffled
from fanout_cli.shuffle import MAX_SEED, contradiction, parse_shuf, seeded
from fanout_cli.sources import SourceRequest
from fanout_cli.sources.inputs import InputList
from tests.helpers import one_error_line, run_fanout, write_tasks

# random.Random(42).shuffle of 1..10 on CPython 3.6 to 3.13 (checked with each): the
# order a seed gives must not change with the machine or the Python version.
SEED_42_OF_TEN = [8, 4, 3, 9, 6, 7, 10, 5, 1, 2]


def spec(seq: int) -> TaskSpec:
    return TaskSpec(seq=seq, task_id=f"t{seq}", command=("true",), origin=f"test:{seq}")


@pytest.mark.parametrize(("given", "expected"),
                         [(True, True), (False, None), (0, 0), (42, 42), ("42", 42),
                          (MAX_SEED, MAX_SEED)])  # fmt: skip
def test_shuf_is_true_false_or_a_seed(given: object, expected: object) -> None:
    assert parse_shuf(given) == expected


@pytest.mark.parametrize("given", [-1, MAX_SEED + 1, "abc", 1.5, "", "-3", None])
def test_a_bad_shuf_says_what_is_expected(given: object) -> None:
    with pytest.raises(ValueError, match="expected true, false or a seed from 0 to"):
        parse_shuf(given)


def test_a_seed_gives_one_order_whatever_order_the_tasks_come_in() -> None:
    tasks = [spec(seq) for seq in range(1, 11)]
    assert [s.seq for s in shuffled(tasks, 42)] == SEED_42_OF_TEN
    assert [s.seq for s in shuffled(list(reversed(tasks)), 42)] == SEED_42_OF_TEN
    assert [s.seq for s in shuffled(tasks, 43)] != SEED_42_OF_TEN


def test_true_draws_a_new_seed_unless_the_resumed_run_holds_one() -> None:
    asked = RunConfig.of(shuf=True)
    assert seeded(asked, 1234).sharding.shuf == 1234
    drawn = {seeded(asked, None).sharding.shuf for _ in range(5)}
    assert all(isinstance(seed, int) and 0 <= seed < 2**32 for seed in drawn) and len(drawn) > 1
    assert seeded(RunConfig.of(shuf=7), 1234).sharding.shuf == 7  # a seed given stands


def test_shuf_contradicts_longest_first_and_failed_first_not_input() -> None:
    for order in ("longest-first", "failed-first"):
        problem = contradiction(RunConfig.of(shuf=7, order=order))
        assert problem is not None and f"--order {order}" in problem
    assert contradiction(RunConfig.of(shuf=7, order="input")) is None
    assert contradiction(RunConfig.of(order="longest-first")) is None


def request(*values: str, **options: object) -> RunRequest:
    return RunRequest(
        source=SourceRequest(command=("echo", "{}"), inputs=(InputList(values=values),)),
        run_options={name: options.get(name) for name in RUN_KEYS},
        agent_options={name: None for name in AGENT_KEYS},
        environ={},
    )


def test_values_are_shuffled_as_tasks_would_be_and_keep_their_numbers() -> None:
    values = [f"v{n}" for n in range(1, 11)]
    plan = plan_run(request(*values, shuf="42"))
    planned = list(plan.source.specs())
    assert [s.seq for s in planned] == SEED_42_OF_TEN
    assert [s.task_id for s in planned] == [f"v{seq}" for seq in SEED_42_OF_TEN]
    assert plan.config.sharding.shuf == 42 and plan.config.sharding.run_order == "input"


# --- the command line ---------------------------------------------------------------------


def dry_run_values(completed_stdout: str) -> list[str]:
    return [line.split()[1] for line in completed_stdout.splitlines()]


def test_dry_run_shows_the_order_and_the_seed_that_gives_it_again(tmp_path: Path) -> None:
    values = [str(n) for n in range(1, 11)]
    completed = run_fanout("run", "--dry-run", "--shuf", "--", "echo", ":::", *values)
    assert completed.returncode == 0, completed.stderr
    shown = dry_run_values(completed.stdout)
    assert sorted(shown, key=int) == values
    seed = int(completed.stderr.split("seed ")[1].split()[0])
    assert f"[run] shuf = {seed} gives this order again" in completed.stderr
    lines = "".join(f'[[task]]\nid = "{v}"\ncmd = "echo {v}"\n' for v in values)
    tasks = write_tasks(tmp_path / "tasks.toml", f"[run]\nshuf = {seed}\n{lines}")
    again = run_fanout("run", "--dry-run", str(tasks))
    assert dry_run_values(again.stdout) == shown, (shown, again.stdout)


def test_stdin_is_read_whole_and_shuffled_and_slots_follow_the_run_order() -> None:
    completed = run_fanout("run", "--dry-run", "-j", "3", "--shuf", "--", "echo", "{}", "{%}",
                           input=b"".join(b"%d\n" % n for n in range(1, 31)))  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = [line.split() for line in completed.stdout.splitlines()]
    assert sorted(int(value) for _, value, _ in lines) == list(range(1, 31))
    assert [int(value) for _, value, _ in lines] != list(range(1, 31))
    assert [slot for _, _, slot in lines] == ["1", "2", "3"] * 10


def test_the_manifest_keeps_the_seed_and_resume_goes_on_in_the_same_order(
    tmp_path: Path,
) -> None:
    log = tmp_path / "started"
    command = ("sh", "-c", f'echo "$1" >> {log}; [ $(($1 % 2)) = 0 ]', "sh", "{}")
    values = [str(n) for n in range(1, 13)]
    first = run_fanout("run", "-q", "-j1", "--shuf", "--run-id", "r1", "--", *command,
                       ":::", *values)  # fmt: skip
    assert first.returncode == 1, first.stderr
    seed = first.manifest()["options"]["shuf"]
    assert isinstance(seed, int)
    started = log.read_text().split()
    assert sorted(started, key=int) == values and started != values
    failed_in_order = [value for value in started if int(value) % 2]
    for again in (("--resume-failed", "r1"),
                  ("--shuf", "--resume-failed", "r1", "--", *command, ":::", *values)):  # fmt: skip
        log.unlink()
        resumed = run_fanout("run", "-q", "-j1", *again)
        assert resumed.returncode == 1, resumed.stderr
        assert log.read_text().split() == failed_in_order
        manifest = json.loads((first.output_dir / "r1" / "manifest.json").read_text())
        assert manifest["options"]["shuf"] == seed


def test_a_shard_is_planned_as_before_and_its_own_tasks_are_shuffled() -> None:
    values = [str(n) for n in range(1, 21)]
    plain = run_fanout("run", "--dry-run", "--shard", "1/2", "--order", "input", "--",
                       "echo", ":::", *values)  # fmt: skip
    shuffled_run = run_fanout("run", "--dry-run", "--shard", "1/2", "--shuf", "--", "echo",
                              ":::", *values)  # fmt: skip
    assert shuffled_run.returncode == 0, shuffled_run.stderr
    mine = [line for line in plain.stdout.splitlines() if not line.startswith("#")]
    shown = [line for line in shuffled_run.stdout.splitlines() if not line.startswith("#")]
    assert sorted(shown) == sorted(mine) and shown != mine


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("--shuf", "--order", "longest-first"), "--order longest-first"),
     (("--shuf", "--order", "failed-first"), "--order failed-first")],
)  # fmt: skip
def test_shuf_with_a_contradicting_order_is_exit_2(args: tuple[str, ...], expected: str) -> None:
    line = one_error_line(run_fanout("run", *args, "--", "true", ":::", "a"),
                          no_run_folder=True)  # fmt: skip
    assert expected in line and "--shuf" in line, line


def test_shuf_does_not_apply_to_pipe() -> None:
    line = one_error_line(run_fanout("run", "--pipe", "--shuf", "--", "cat", input=b"a\n"))
    assert "--shuf does not apply to --pipe" in line


def test_a_bad_shuf_in_a_task_file_is_exit_2(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "t.toml", '[run]\nshuf = -4\n[[task]]\ncmd = "true"\n')
    line = one_error_line(run_fanout("run", str(tasks)))
    assert "shuf" in line and "expected true, false or a seed" in line, line


def test_no_shuf_turns_off_a_task_files_shuf(tmp_path: Path) -> None:
    lines = "".join(f'[[task]]\nid = "{n}"\ncmd = "echo {n}"\n' for n in range(1, 9))
    tasks = write_tasks(tmp_path / "t.toml", f"[run]\nshuf = 5\n{lines}")
    completed = run_fanout("run", "--dry-run", "--no-shuf", str(tasks))
    assert dry_run_values(completed.stdout) == [str(n) for n in range(1, 9)]
    assert "seed" not in completed.stderr
