"""The start gate alone (--memfree, --load, --delay) and in the scheduler: an injected
machine (memory and load readers) and clock, a fake executor; no processes, no real
waiting. The values' parsers and the readers of /proc and vm_stat's text."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from fanout_cli.gate import POLL_SECONDS, Machine, StartGate
from fanout_cli.machine import (
    load_threshold,
    loadavg_running,
    meminfo_available,
    parse_load,
    parse_memfree,
    vm_stat_available,
)
from fanout_cli.models import TaskStatus
from fanout_cli.options import RunConfig
from fanout_cli.pacing import Clock, RateLimiter
from fanout_cli.runner import Runner
from fanout_cli.values import parse_rate
from tests.test_runner_unit import FakeClock, FakeExecutor, Recorder, items_of, specs, until

GIB = 1 << 30

# --- the values ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "size"), [
    ("1G", GIB), ("512M", 512 << 20), ("100k", 100_000), ("100K", 102_400), ("1Ki", 1024),
    ("1.5G", 3 << 29), ("1g", 10**9), ("1T", 1 << 40), ("4096", 4096), (1024, 1024),
    ("1P", 1 << 50),
])  # fmt: skip
def test_memfree_sizes_read_as_gnu_parallel_reads_them(value: object, size: int) -> None:
    assert parse_memfree(value) == size


@pytest.mark.parametrize("value", ["-1G", "0", 0, -5, "garbage", "", "1 G", "1GB", "2P", True,
                                   1.5, "nan", None, "9" * 30])  # fmt: skip
def test_bad_memfree_sizes_are_refused_in_one_line(value: object) -> None:
    with pytest.raises(ValueError, match="expected a size") as caught:
        parse_memfree(value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("value", "cpus", "threshold"), [
    ("4", 8, 4.0), ("2.5", 8, 2.5), (3, 1, 3.0), (0.5, 4, 0.5), ("100%", 8, 8.0),
    ("50%", 2, 1.0), ("150%", 4, 6.0), ("0.001%", 2, 0.01),
])  # fmt: skip
def test_load_is_a_number_or_a_share_of_the_cpus(
    value: object, cpus: int, threshold: float
) -> None:
    load = parse_load(value)
    assert load_threshold(load, cpus) == pytest.approx(threshold)
    assert parse_load(load) == load  # the manifest keeps the text, read back the same


@pytest.mark.parametrize("value", ["0", "0%", "-1", "+2", "x", "", "nan", "inf", "4 %", True,
                                   None, "1e3"])  # fmt: skip
def test_bad_loads_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="expected a load"):
        parse_load(value)


def test_the_manifests_values_are_read_back_by_the_same_parsers() -> None:
    from fanout_cli.layers import build_config
    from fanout_cli.options import parser

    config = build_config({"memfree": "1G", "load": "100%", "delay": "300ms"})
    document = json.loads(json.dumps(config.document()))
    assert (document["memfree"], document["load"], document["delay"]) == (GIB, "100%", 0.3)
    again = build_config({name: document[name] for name in ("memfree", "load", "delay")})
    assert again.policy == config.policy
    assert parser("load")(document["load"]) == "100%"


# --- reading the machine ------------------------------------------------------------------

MEMINFO = """MemTotal:       16318412 kB
MemFree:          812344 kB
MemAvailable:    9120000 kB
Buffers:          100000 kB
Cached:          7000000 kB
SwapCached:         1000 kB
"""

VM_STAT = """Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                               10000.
Pages active:                            500000.
Pages inactive:                           20000.
Pages speculative:                         3000.
Pages wired down:                        100000.
"""


def test_available_memory_is_memavailable() -> None:
    assert meminfo_available(MEMINFO) == 9_120_000 * 1024


def test_without_memavailable_it_is_gnu_parallels_sum() -> None:
    old_kernel = "\n".join(line for line in MEMINFO.splitlines() if "MemAvailable" not in line)
    assert meminfo_available(old_kernel) == (812_344 + 100_000 + 7_000_000 + 1000) * 1024


def test_macos_available_memory_is_free_inactive_and_speculative_pages() -> None:
    assert vm_stat_available(VM_STAT) == (10_000 + 20_000 + 3000) * 16384


@pytest.mark.parametrize(("text", "running"), [
    ("0.52 0.58 0.59 3/1150 12345\n", 2), ("4.00 1.00 0.50 1/200 7", 0), ("garbage", None),
])  # fmt: skip
def test_the_load_is_the_running_count_less_the_reader(text: str, running: float | None) -> None:
    assert loadavg_running(text) == running


# --- the gate alone -----------------------------------------------------------------------


@dataclass
class Readings:
    """A machine whose memory and load are what the test says, in turn (the last one
    stays); counts the readings."""

    memory: list[int] = field(default_factory=lambda: [GIB])
    load: list[float] = field(default_factory=lambda: [0.0])
    read: int = 0

    def next_memory(self) -> int:
        self.read += 1
        return self.memory.pop(0) if len(self.memory) > 1 else self.memory[0]

    def next_load(self) -> float:
        self.read += 1
        return self.load.pop(0) if len(self.load) > 1 else self.load[0]

    def machine(self, cpus: int = 2) -> Machine:
        return Machine(self.next_memory, self.next_load, lambda: cpus)


@dataclass
class ManualClock:
    """Time moves only when someone sleeps: sleeping t seconds moves it t on."""

    time: float = 0.0

    async def sleep(self, seconds: float) -> None:
        self.time += seconds
        await anyio.lowlevel.checkpoint()

    def clock(self) -> Clock:
        return Clock(now=lambda: self.time, sleep=self.sleep, wall=lambda: 1000.0 + self.time)


def test_a_start_waits_while_memory_is_short() -> None:
    readings = Readings(memory=[GIB // 4, GIB // 2, GIB - 1, GIB])
    time = ManualClock()
    gate = StartGate(memfree=GIB, clock=time.clock(), machine=readings.machine())
    anyio.run(gate.ready)
    assert readings.read == 4  # three short readings, each followed by a poll's wait
    assert time.time == pytest.approx(3 * POLL_SECONDS)


def test_a_start_waits_while_the_load_is_at_the_limit_or_above() -> None:
    readings = Readings(load=[3.0, 2.0, 1.9])  # GNU parallel waits at load >= the limit
    time = ManualClock()
    gate = StartGate(max_load=2.0, clock=time.clock(), machine=readings.machine())
    anyio.run(gate.ready)
    assert time.time == pytest.approx(2 * POLL_SECONDS)


def test_a_gate_of_delay_only_reads_nothing_of_the_machine() -> None:
    readings = Readings()
    gate = StartGate(delay=1.0, clock=ManualClock().clock(), machine=readings.machine())
    anyio.run(gate.ready)
    assert readings.read == 0


def _start_times(gate: StartGate, time: ManualClock, waiters: int) -> list[float]:
    """When each of `waiters` arriving together at `gate` was let start."""
    starts: list[float] = []

    async def start() -> None:
        await gate.ready()
        starts.append(time.time)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(waiters):
                group.start_soon(start)

    anyio.run(main)
    return starts


def test_delay_spaces_the_starts_of_waiters_arriving_together() -> None:
    time = ManualClock()
    gate = StartGate(delay=0.3, clock=time.clock())
    assert _start_times(gate, time, 4) == pytest.approx([0.0, 0.3, 0.6, 0.9])


def test_rate_keeps_its_spacing_after_a_wait_for_memory() -> None:
    # --rate is kept by the gate, after the memory wait: waiters that were held back
    # together still start one a second, not all at once when memory comes back.
    readings = Readings(memory=[1] * 6 + [GIB])
    time = ManualClock()
    policy = RunConfig.of(memfree=GIB).policy
    rate = RateLimiter(parse_rate("1/s"), time.clock())
    gate = StartGate.of(policy, time.clock(), readings.machine(), rate)
    starts = _start_times(gate, time, 3)
    assert starts[0] >= 5 * POLL_SECONDS
    assert [later - earlier for earlier, later in itertools.pairwise(starts)] == pytest.approx(
        [1.0, 1.0])


def test_a_waiting_gate_gives_way_at_once_when_cancelled() -> None:
    readings = Readings(memory=[1])  # never enough
    gate = StartGate(memfree=GIB, clock=FakeClock().clock(), machine=readings.machine())
    started: list[bool] = []

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(_ready_then, gate, started)
                await until(lambda: readings.read >= 3)
                scope.cancel()

    anyio.run(main)
    assert started == []


async def _ready_then(gate: StartGate, started: list[bool]) -> None:
    await gate.ready()
    started.append(True)


# --- in the scheduler ---------------------------------------------------------------------


def gated_run(
    tmp_path: Path, executor: FakeExecutor, readings: Readings, script: Callable[[Runner], Any],
    count: int = 2, **options: object,
) -> tuple[Runner, Recorder]:  # fmt: skip
    """Run `count` tasks through a runner whose gate reads `readings`, beside `script`."""
    config = RunConfig.of(output_dir=str(tmp_path), **options)
    from fanout_cli.aop.writer import RunStore

    store = RunStore(config.output.output_dir, "unit")
    listener = Recorder()
    runner = Runner(config, executor, store, listener, count, clock=FakeClock().clock(),
                    machine=readings.machine())  # fmt: skip

    async def main() -> None:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(runner.run, items_of(specs(count)))
                await script(runner)

    try:
        anyio.run(main)
    finally:
        store.close()
    return runner, listener


def journal(tmp_path: Path) -> Iterator[dict[str, Any]]:
    for line in (tmp_path / "unit" / "journal.jsonl").read_text().splitlines():
        yield json.loads(line)


def test_memory_short_ends_the_youngest_attempt_and_runs_it_again_uncharged(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2"))
    readings = Readings(memory=[GIB])  # enough to start both

    async def script(runner: Runner) -> None:
        await until(lambda: executor.running == {"t1", "t2"})
        readings.memory = [GIB // 4, GIB]  # below half of --memfree, once
        await until(lambda: executor.cancelled == ["t2"] and executor.running == {"t1", "t2"})
        executor.release("t1")
        executor.release("t2")

    _, listener = gated_run(tmp_path, executor, readings, script, memfree=GIB)
    assert executor.started == [("t1", 1), ("t2", 1), ("t2", 1)]
    assert {result.task_id: len(result.attempts) for result in listener.ended} == {"t1": 1, "t2": 1}
    assert set(listener.statuses().values()) == {TaskStatus.SUCCESS}
    events = [(e["event"], e.get("task_id"), e.get("attempt")) for e in journal(tmp_path)]
    requeued = events.index(("task_requeued", "t2", 1))
    assert events[requeued + 1:].count(("task_started", "t2", 1)) == 1
    reason = next(e["reason"] for e in journal(tmp_path) if e["event"] == "task_requeued")
    assert reason == "256.0M available < half of --memfree 1.0G"


def test_the_only_running_attempt_is_never_ended_for_memory(tmp_path: Path) -> None:
    executor = FakeExecutor({}, held=("t1", "t2"))
    readings = Readings(memory=[GIB])

    async def script(runner: Runner) -> None:
        await until(lambda: executor.running == {"t1", "t2"})
        readings.memory = [1]  # short from now on: t2 is ended, and waits at the gate
        await until(lambda: executor.cancelled == ["t2"])
        before = readings.read
        await until(lambda: readings.read > before + 10)
        assert executor.cancelled == ["t2"] and executor.running == {"t1"}
        readings.memory = [GIB]
        executor.release("t1")
        executor.release("t2")

    _, listener = gated_run(tmp_path, executor, readings, script, memfree=GIB)
    assert executor.started == [("t1", 1), ("t2", 1), ("t2", 1)]
    assert set(listener.statuses().values()) == {TaskStatus.SUCCESS}


def test_a_stop_while_the_gate_waits_starts_nothing(tmp_path: Path) -> None:
    executor = FakeExecutor({})
    readings = Readings(memory=[1])

    async def script(runner: Runner) -> None:
        await until(lambda: readings.read >= 3)
        runner.stop("run deadline of 1s reached", TaskStatus.TIMEOUT)

    _, listener = gated_run(tmp_path, executor, readings, script, memfree=GIB)
    assert executor.started == []
    assert [result.summary for result in listener.ended] == [
        "not started (run deadline of 1s reached)"] * 2
    assert [e["event"] for e in journal(tmp_path)] == ["task_ended", "task_ended"]


def test_delay_spaces_retries_too(tmp_path: Path) -> None:
    executor = FakeExecutor({"t1": [TaskStatus.FAILURE, TaskStatus.SUCCESS]})
    config = RunConfig.of(output_dir=str(tmp_path), retries=1, retry_delay=0, delay=2.0)
    from fanout_cli.aop.writer import RunStore

    store = RunStore(config.output.output_dir, "unit")
    time = ManualClock()
    runner = Runner(config, executor, store, Recorder(), 1, clock=time.clock())
    anyio.run(runner.run, items_of(specs(1)))
    store.close()
    assert executor.started == [("t1", 1), ("t1", 2)]
    assert time.time >= 2.0  # the retry waited for the delay since the first start
