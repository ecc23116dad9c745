"""Run the reduce step once the last task has ended and the verdict is known: a command
fed one JSON line a task on stdin, or one agent call; then record it like a task
(`reduce.json`, `reduce.stdout`, `reduce.stderr`) and say what it does to the verdict.

The reduce runs through the executors tasks use (executors.process, executors.agent):
its own process group, --timeout and --termseq (TERM, --grace, KILL), agent calls with
their retries. Only its stdin differs: a pipe fed from the journal, a chunk at a time."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from fanout_cli.errors import STOP_SIGNALS, FanoutError, UsageError
from fanout_cli.executors import AttemptPlan, Executor, ended_attempt
from fanout_cli.executors.process import ProcessExecutor
from fanout_cli.executors.watchers import ChildProcess
from fanout_cli.models import AgentCall, Attempt, ReduceResult, RunReport, TaskSpec, TaskStatus
from fanout_cli.reduce.record import KEPT, STDERR, STDOUT, read_kept, reduce_entry, write_record
from fanout_cli.reduce.spec import ReduceStep, fill, reduce_step

Rows = Callable[[], Iterator[dict[str, Any]]]

if TYPE_CHECKING:
    from fanout_cli.agents import AgentSettings
    from fanout_cli.aop.writer import RunStore
    from fanout_cli.options import RunConfig
    from fanout_cli.plan import RunPlan



@dataclass(frozen=True)
class Reduce:
    """A run's reduce, ready: what it is, and the agent settings an agent reduce uses."""

    step: ReduceStep
    agents: AgentSettings | None = None

    def call(self, prompt: str) -> AgentCall:
        assert self.agents is not None
        step = self.step
        return self.agents.complete(AgentCall(
            prompt=prompt, provider=step.provider, model=step.model, system=step.system,
            temperature=step.temperature, max_tokens=step.max_tokens))  # fmt: skip

    def after_tasks(
        self, store: RunStore, report: RunReport, header: dict[str, Any], config: RunConfig,
        *, resumed: bool,
    ) -> tuple[RunReport, FanoutError | None]:  # fmt: skip
        """Run the reduce when --reduce-when says so (or keep the recorded one when
        resuming changed nothing): the report with its outcome, and fanout's own failure
        if it had one (reduce.json could not be written: the run ends with it, as with a
        task's record). The reduce's manifest entry is set in `header`."""
        header["reduce"] = None
        if not self.step.runs_after(report.verdict.passed):
            return report, None
        try:
            return self._run(store, report, header, config, resumed), None
        except FanoutError as exc:
            failed = replace(report.verdict, passed=False, reason=exc.message)
            return replace(report, verdict=failed), exc

    def _run(
        self, store: RunStore, report: RunReport, header: dict[str, Any], config: RunConfig,
        resumed: bool,
    ) -> RunReport:  # fmt: skip
        from fanout_cli.reduce.inputs import fingerprint, prompt_values, verdict_text

        folder, rows = store.folder, report.rows
        prompt = None
        if self.step.prompt is not None:
            values = prompt_values(self.step.prompt, report.verdict, folder, rows,
                                   self.step.max_bytes)  # fmt: skip
            prompt = fill(self.step.prompt, values)
        # What the reduce does and is given; not when it runs (--reduce-when).
        step_document = {**self.step.document(), "when": None, "request": prompt}
        stamp = fingerprint(step_document, verdict_text(report.verdict), folder, rows)
        result = read_kept(folder, stamp) if resumed else None
        interrupted = None
        if result is None:
            started = time.time()
            spec = self._spec(store, prompt)
            executor, feed = self._executor(store, rows)
            attempt, interrupted = anyio.run(_attempt, executor, spec, _plan(store, config), feed)
            if attempt is None:
                reason = f"interrupted by {interrupted}"
                attempt = ended_attempt(_plan(store, config), started, TaskStatus.CANCELLED, reason)
            result = write_record(store, spec, attempt, config.output.summary_chars,
                                  {KEPT: stamp, "reduce": self.step.document()})  # fmt: skip
        header["reduce"] = reduce_entry(result)
        if not result.kept:  # the run's time is the tasks' and the reduce's
            report = replace(report, finished_at=max(report.finished_at, time.time()))
        return with_reduce(report, result, interrupted)

    def _spec(self, store: RunStore, prompt: str | None) -> TaskSpec:
        environment = {"FANOUT_RUN_DIR": str(store.run_dir)}
        if prompt is None:
            assert self.step.command is not None
            return TaskSpec(seq=0, task_id="reduce", command=self.step.command,
                            origin=self.step.origin, env=environment)  # fmt: skip
        return TaskSpec(seq=0, task_id="reduce", command=(), origin=self.step.origin,
                        env=environment, agent=self.call(prompt))  # fmt: skip

    def _executor(self, store: RunStore, rows: Rows) -> tuple[Executor, _Feed | None]:
        """A command: a process fed the JSON lines. An agent: one HTTP call."""
        if self.step.prompt is None:
            from fanout_cli.reduce.inputs import line_chunks

            feed = _Feed(line_chunks(store.folder, rows))
            return _FedProcesses(feed), feed
        from fanout_cli.executors.agent import AgentExecutor

        assert self.agents is not None
        return AgentExecutor(self.agents, ProcessExecutor(), connections=1), None


async def _attempt(
    executor: Executor, spec: TaskSpec, plan: AttemptPlan, feed: _Feed | None
) -> tuple[Attempt | None, str | None]:
    """The reduce's one attempt (None when a signal stopped it), and that signal's name.
    A first SIGINT, SIGTERM or SIGHUP stops it (--termseq); a second kills it."""
    stopped: list[str] = []
    attempt = None
    scope = anyio.CancelScope()
    try:
        async with executor.session(), anyio.create_task_group() as group:
            if threading.current_thread() is threading.main_thread():
                await group.start(_watch_signals, scope, executor, stopped)
            if feed is not None:
                group.start_soon(feed.write)
            with scope:
                attempt = await executor.run_attempt(spec, plan)
            group.cancel_scope.cancel()
    finally:
        if feed is not None:
            feed.close()
    return attempt, (stopped[0] if stopped else None)


async def _watch_signals(
    scope: anyio.CancelScope, executor: Executor, stopped: list[str],
    *, task_status: anyio.abc.TaskStatus[None],
) -> None:  # fmt: skip
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            if stopped:
                executor.kill_all()
                continue
            stopped.append(signal.Signals(signum).name)
            scope.cancel()


class _Feed:
    """The reduce command's stdin: a pipe whose write end is filled from `chunks`
    without blocking the event loop, then closed. A command that stops reading (or
    never starts) ends the feed: the rest is not written."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.read_end, self.write_end = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.write_end, False)

    async def write(self) -> None:
        try:
            for chunk in self.chunks:
                view = memoryview(chunk)
                while view:
                    try:
                        view = view[os.write(self.write_end, view) :]
                    except BlockingIOError:
                        await anyio.wait_writable(self.write_end)
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            self._close("write_end")

    def child_started(self) -> None:
        self._close("read_end")  # the child has its own; ours would keep the pipe open

    def close(self) -> None:
        self._close("read_end")
        self._close("write_end")

    def _close(self, end: str) -> None:
        descriptor = getattr(self, end)
        if descriptor >= 0:
            setattr(self, end, -1)
            os.close(descriptor)


class _FedProcesses(ProcessExecutor):
    """The process executor, with the feed's pipe as the child's stdin."""

    def __init__(self, feed: _Feed) -> None:
        super().__init__()
        self.feed = feed

    async def _spawn(
        self, argv: list[str], cwd: str | None, extra: Mapping[str, str], plan: AttemptPlan,
        stdin: int | None,
    ) -> ChildProcess:  # fmt: skip
        child = await super()._spawn(argv, cwd, extra, plan, self.feed.read_end)
        self.feed.child_started()
        return child


def with_reduce(report: RunReport, result: ReduceResult, interrupted: str | None) -> RunReport:
    """The report with the reduce's outcome: a reduce that did not succeed fails the run."""
    verdict = report.verdict
    if interrupted is not None:
        verdict = replace(verdict, passed=False, reason=f"interrupted by {interrupted} during "
                          "the reduce")  # fmt: skip
    elif result.status is not TaskStatus.SUCCESS:
        verb = "could not start" if result.status is TaskStatus.ERROR else "failed"
        reason = f"{verdict.reason}; the reduce {verb}: {result.reason or result.status}"
        verdict = replace(verdict, passed=False, reason=reason)
    if result.tokens is not None:  # an agent reduce: its call counts in the run's totals
        from fanout_cli.tokens import with_call

        report = replace(report, tokens=with_call(report.tokens, result.tokens))
    return replace(report, verdict=verdict, reduce=result,
                   interrupted=interrupted or report.interrupted)  # fmt: skip


def prepare_reduce(plan: RunPlan) -> Reduce | None:
    """The run's reduce, checked before any task runs: UsageError (exit 2) when an agent
    reduce could not be made (no model, an unknown provider, no API key)."""
    verdict = plan.config.verdict
    step = reduce_step(verdict.reduce, verdict.reduce_prompt, verdict.reduce_when)
    if step is None:
        return None
    reduce = Reduce(step, plan.agents)
    if step.prompt is not None:
        assert plan.agents is not None, "plan_run makes agent settings for an agent reduce"
        problem = plan.agents.problem(reduce.call(step.prompt))
        if problem is not None:
            raise UsageError(f"the reduce cannot run: {problem}")
    return reduce


def _plan(store: RunStore, config: RunConfig) -> AttemptPlan:
    timeout = config.policy.timeout  # P% of the tasks' median (a RelativeTimeout) is not its
    return AttemptPlan(number=1, slot=1, stdout_path=store.folder.member(STDOUT),
                       stderr_path=store.folder.member(STDERR),
                       timeout=timeout if isinstance(timeout, int | float) else None,
                       grace=config.policy.grace, ok_exit=frozenset({0}),
                       termseq=config.policy.termseq)  # fmt: skip
