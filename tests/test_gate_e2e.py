"""--memfree, --load and --delay with real processes: the installed `fanout`, and (for
the memory watcher, whose trigger is the machine running short) the scheduler with a
real process executor and a memory reader the test controls."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from fanout_cli.aop.writer import RunStore
from fanout_cli.executors.process import ProcessExecutor
from fanout_cli.gate import Machine
from fanout_cli.models import TaskSpec, TaskStatus
from fanout_cli.options import RunConfig
from fanout_cli.render.outputs import OutputPrinter, Shown
from fanout_cli.runner import Runner
from tests.helpers import (
    journal_time,
    one_error_line,
    read_journal,
    rows_by_id,
    run_fanout,
    run_json,
    write_tasks,
)
from tests.test_runner_unit import Recorder, items_of

GIB = 1 << 30


def test_memfree_more_than_the_machine_has_starts_nothing_until_the_deadline(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    completed, document = run_json("--memfree", "1P", "--deadline", "1s", "--",
                                   "touch", f"{tmp_path}/{{}}", ":::", "a", "b")  # fmt: skip
    assert time.monotonic() - began < 15
    assert completed.returncode == 1
    rows = rows_by_id(document)
    assert {row["status"] for row in rows.values()} == {"timeout"}
    assert {row["summary"] for row in rows.values()} == {"not started (run deadline of 1s reached)"}
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    events = read_journal(completed.run_dir)
    assert not [event for event in events if event["event"] == "task_started"]


def test_memfree_the_machine_has_runs_every_task() -> None:
    completed = run_fanout("run", "-q", "-j", "2", "--memfree", "1k", "--load", "100000",
                           "--", "echo", "{}", ":::", "a", "b", "c")  # fmt: skip
    assert completed.returncode == 0, completed.stderr


def test_delay_spaces_the_starts_of_quick_tasks() -> None:
    completed = run_fanout("run", "-q", "-j", "4", "--delay", "300ms", "--", "true", ":::",
                           "1", "2", "3", "4")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    events = read_journal(completed.run_dir)
    starts = [journal_time(event) for event in events if event["event"] == "task_started"]
    assert len(starts) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 0.29, gaps  # the journal keeps milliseconds


def test_delay_spaces_a_retry_from_the_start_before_it() -> None:
    completed = run_fanout("run", "-q", "--delay", "1s", "--retries", "1", "--retry-delay", "0",
                           "--", "false", ":::", "a")  # fmt: skip
    assert completed.returncode == 1
    events = read_journal(completed.run_dir)
    starts = [journal_time(event) for event in events if event["event"] == "task_started"]
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.99


def test_run_table_sets_them_and_the_manifest_keeps_them(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", '[run]\nmemfree = "100k"\nload = "1000%"\n'
                        'delay = "10ms"\n\n[[task]]\nid = "a"\ncmd = ["true"]\n')  # fmt: skip
    completed = run_fanout("run", "-q", str(tasks))
    assert completed.returncode == 0, completed.stderr
    options = completed.manifest()["options"]
    assert (options["memfree"], options["load"], options["delay"]) == (100_000, "1000%", 0.01)
    resumed = run_fanout("run", "-q", "--resume", "last")  # reads them back
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.parametrize("args", [
    ("--memfree", "-1G"), ("--memfree", "0"), ("--memfree", "lots"), ("--memfree", "1 G"),
    ("--load", "0"), ("--load", "-2"), ("--load", "x%"), ("--delay", "-1s"),
    ("--delay", "2sauto"),
])  # fmt: skip
def test_bad_values_are_one_line_and_exit_2(args: tuple[str, str]) -> None:
    completed = run_fanout("run", *args, "--", "true", ":::", "a")
    line = one_error_line(completed, no_run_folder=True)
    assert line.startswith(f"fanout: error: {args[0]}: "), line


def test_a_bad_value_in_the_run_table_is_one_line(tmp_path: Path) -> None:
    text = '[run]\nmemfree = -1\n\n[[task]]\ncmd = ["true"]\n'
    tasks = write_tasks(tmp_path / "tasks.toml", text)
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert "memfree" in line, line


def test_a_plain_run_loads_none_of_it() -> None:
    script = ("import sys\nfrom fanout_cli.entry import main\n"
              "sys.argv = ['fanout', 'run', '-q', '--', 'true', ':::', 'a']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('fanout_cli.gate', 'fanout_cli.machine', "
              "'fanout_cli.sizes') if m in sys.modules))\n")  # fmt: skip
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               check=True, timeout=60)  # fmt: skip
    assert completed.stdout.splitlines()[-1] == "[]", completed.stderr


# --- the memory watcher, with real processes ----------------------------------------------


class ShortOnce:
    """The machine's memory as the test tells it: plenty, except for one reading once
    both tasks run for the first time (b.starts holds one line, a.started exists)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.told_short = False

    def available(self) -> int:
        starts = self.folder / "b.starts"
        both_running = (self.folder / "a.started").exists() and starts.exists()
        if both_running and not self.told_short and starts.read_text().count("\n") == 1:
            self.told_short = True
            return GIB // 4
        return GIB


class SeesOutputs(Recorder):
    """Notes, at each start, whether the task's stdout file from before is still there:
    a printer told of the start must not find the cut attempt's output and print it."""

    def __init__(self, store: RunStore) -> None:
        super().__init__()
        self.store = store
        self.stale: list[tuple[str, bool]] = []

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        super().task_started(spec, attempt, slot)
        self.stale.append((spec.task_id, Path(self.store.output_paths(spec)[0]).exists()))


def test_memory_short_ends_the_younger_task_and_runs_it_again(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "b.starts").touch()
    # a waits until b has started twice; b's first run waits to be ended.
    older = (f"touch {folder}/a.started; until [ $(wc -l < {folder}/b.starts) -ge 2 ]; "
             "do sleep 0.05; done; echo a done")  # fmt: skip
    younger = (f"echo x >> {folder}/b.starts; if [ $(wc -l < {folder}/b.starts) -ge 2 ]; "
               "then echo second run; else echo first run; exec sleep 60; fi")  # fmt: skip
    tasks = [TaskSpec(seq=1, task_id="a", command=older, origin="test:1"),
             TaskSpec(seq=2, task_id="b", command=younger, origin="test:2")]  # fmt: skip
    config = RunConfig.of(output_dir=str(tmp_path / "out"), jobs=2, memfree=GIB, grace=5.0)
    store = RunStore(config.output.output_dir, "requeue")
    memory = ShortOnce(folder)
    listener = SeesOutputs(store)
    printer = OutputPrinter(listener, Shown(line_buffer=True))  # type: ignore[arg-type]  # records
    printer.opened(store.folder)
    runner = Runner(config, ProcessExecutor(), store, printer, 2,
                    machine=Machine(available_memory=memory.available))  # fmt: skip

    async def main() -> None:
        with anyio.fail_after(30):
            await runner.run(items_of(tasks))

    try:
        anyio.run(main)
    finally:
        printer.close()
        store.close()
    assert memory.told_short
    assert listener.statuses() == {"a": TaskStatus.SUCCESS, "b": TaskStatus.SUCCESS}
    run_dir = Path(store.run_dir)
    events = read_journal(run_dir)
    requeued = [event for event in events if event["event"] == "task_requeued"]
    assert [(event["task_id"], event["attempt"]) for event in requeued] == [("b", 1)]
    assert requeued[0]["reason"] == "256.0M available < half of --memfree 1.0G"
    assert set(requeued[0]) == {"event", "time", "seq", "task_id", "attempt", "reason"}
    b_events = [(e["event"], e.get("attempt")) for e in events if e.get("task_id") == "b"]
    assert b_events == [("task_started", 1), ("task_requeued", 1), ("task_started", 1),
                        ("task_ended", None)]  # fmt: skip
    b_row = next(e for e in events if e["event"] == "task_ended" and e["task_id"] == "b")
    assert b_row["attempts"] == 1
    details: dict[str, Any] = json.loads((run_dir / b_row["details_file"]).read_text())
    assert len(details["attempts"]) == 1
    assert (run_dir / b_row["stdout_file"]).read_text() == "second run\n"
    # The cut output is gone before the start is told: --line-buffer prints only the
    # new attempt's, and follows it into its new files.
    assert ("b", True) not in listener.stale[1:], listener.stale
    printed = capfd.readouterr().out
    assert "second run\n" in printed and printed.count("first run\n") <= 1, printed
