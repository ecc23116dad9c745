"""`fanout run`, wired in one place: settings -> plan -> executor -> runner -> render.

cli.py builds a RunRequest from the command line; `run_command` resolves it into a
plan (plan.py: the source, the options of every layer, resume matching, shards and
order), opens the executor the plan names, runs the tasks, and has the renderer print
the outcome. It returns the outcome; cli.py turns that into an exit status."""

from __future__ import annotations

import contextlib
import signal
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from fanout_cli.aop import RunFolder
    from fanout_cli.aop.writer import RunStore
    from fanout_cli.errors import FanoutError
    from fanout_cli.executors import Executor
    from fanout_cli.models import RunReport
    from fanout_cli.options import RunConfig
    from fanout_cli.pacing import Backoff, Clock
    from fanout_cli.plan import RunPlan, RunRequest
    from fanout_cli.reduce.execute import Reduce
    from fanout_cli.render import Renderer
    from fanout_cli.render.outputs import OutputPrinter
    from fanout_cli.runner import Listener, Runner
    from fanout_cli.sources import Resume, Source


@dataclass(frozen=True)
class RunOutcome:
    """How the run ended, for the exit status."""

    passed: bool
    interrupted: str | None = None  # the signal that stopped it: "SIGINT"


def run_command(request: RunRequest) -> RunOutcome:
    """Run (or resume, or only show with --dry-run) the tasks the request names."""
    # Imported here so that `fanout --help` does not pay for the engine.
    from fanout_cli.limits import fit_descriptor_limit
    from fanout_cli.plan import plan_run
    from fanout_cli.render import make_renderer
    from fanout_cli.render.console import Console, color_choice

    plan = plan_run(request)
    reduce = _prepare_reduce(plan)  # an agent reduce that cannot run is exit 2, before any task
    record = None  # --shard: the plan record (plan.json), for merge to prove coverage
    if plan.split is not None:
        from fanout_cli.shards.record import shard_plan_record

        record = shard_plan_record(plan)
    if request.dry_run:
        show_dry_run(plan, reduce, record)
        return RunOutcome(passed=True)
    config = fit_descriptor_limit(plan.config)  # may run fewer at once, with a warning
    if config.policy.nice is not None and config.policy.executor == "local":
        from fanout_cli.nice import renice_self  # before any task and any thread: they inherit

        renice_self(config.policy.nice)
    renderer = make_renderer(
        config.output,
        Console(color=color_choice(config.output.color)),
        # On --resume, results that stand are not reported again: no total to count to.
        total=None if plan.resume is not None else plan.source.total,
        jobs=config.policy.jobs,
    )
    if config.output.joblog is not None:
        from fanout_cli.render.joblog import Joblog

        renderer = Joblog(renderer, config.output.joblog, appending=plan.resume is not None)
    printer = output_printer(renderer, config)
    executor = open_executor(plan)  # before the run folder exists: a bad cluster is exit 2
    options = plan.config.document()  # as asked: a resume may have more descriptors
    if plan.agents is not None:
        options["agent"] = plan.agents.document()
    try:
        report = run_tasks(config, plan.source, executor, printer or renderer, title=plan.title,
                           options=options, resume=plan.resume, reduce=reduce,
                           plan_record=record,
                           opened=None if printer is None else printer.opened)  # fmt: skip
    finally:
        if printer is not None:
            printer.close()  # what the tasks printed is out before fanout's last lines
    (printer or renderer).finish(report)
    if config.output.junit is not None:
        from fanout_cli.render.junit import write_run_junit

        write_run_junit(config.output.junit, report)  # a StoreError (exit 2) if it cannot
    return RunOutcome(report.verdict.passed, report.interrupted)


def output_printer(renderer: Renderer, config: RunConfig) -> OutputPrinter | None:
    """-k, --group, --line-buffer, --tag: a renderer that also prints the tasks' output."""
    output = config.output
    if not output.shows_outputs:
        return None
    from fanout_cli.render.outputs import OutputPrinter, Shown

    shown = Shown(keep_order=output.keep_order, line_buffer=output.line_buffer,
                  tagstring=output.tagstring, tag=output.tag)  # fmt: skip
    return OutputPrinter(renderer, shown)


def show_dry_run(
    plan: RunPlan, reduce: Reduce | None = None, record: Mapping[str, Any] | None = None
) -> None:
    from fanout_cli.render.console import Console
    from fanout_cli.render.lines import print_dry_run, print_shard_plan

    seed = plan.config.sharding.shuf
    if seed is not None:  # stdout holds the commands; how to see this order again: stderr
        Console(sys.stderr).line(f"fanout: shuffled with seed {seed} ([run] shuf = {seed} "
                                 "gives this order again)")  # fmt: skip
    if record is not None and plan.config.output.format == "json":
        from fanout_cli.render.machine import print_dry_run_plan

        print_dry_run_plan(Console(), record, plan.source.commands(plan.config.policy.jobs))
        return
    if plan.split is not None and plan.split.plans is not None:
        print_shard_plan(Console(), plan.split, plan.config.sharding.shard)
    print_dry_run(Console(), plan.source.commands(plan.config.policy.jobs))
    if reduce is not None:
        from fanout_cli.render.reduce import print_dry_run_reduce

        print_dry_run_reduce(Console(), reduce)


def _prepare_reduce(plan: RunPlan) -> Reduce | None:
    if plan.config.verdict.reduce is None and plan.config.verdict.reduce_prompt is None:
        return None  # a run without a reduce does not load it
    from fanout_cli.reduce.execute import prepare_reduce

    return prepare_reduce(plan)


def open_executor(plan: RunPlan) -> Executor:
    """The executor the options name (by its URL scheme); agent calls go through the
    agent executor, which hands it every task that is not an HTTP call."""
    from fanout_cli.executors import open_executor as open_by_scheme

    executor = open_by_scheme(plan.config.policy)  # a remote one connects or exits 2 at once
    if plan.agents is not None:
        from fanout_cli.executors.agent import AgentExecutor

        policy = plan.config.policy
        if "agent-cli" in plan.kinds and policy.jobs > 1 and policy.executor == "local":
            from fanout_cli.agent_cli.prepare import Preparing

            executor = Preparing(executor)

        executor = AgentExecutor(plan.agents, executor, connections=plan.config.policy.jobs,
                                 http="agent" in plan.kinds)  # fmt: skip
    return executor


def run_tasks(
    config: RunConfig,
    source: Source,
    executor: Executor,
    listener: Listener,
    *,
    title: str,
    options: dict[str, Any],
    resume: Resume | None = None,
    clock: Clock | None = None,
    backoff: Backoff | None = None,
    reduce: Reduce | None = None,
    opened: Callable[[RunFolder], None] | None = None,
    plan_record: Mapping[str, Any] | None = None,
) -> RunReport:
    """Create the run folder (or reopen it, to resume), run the tasks, return the report.

    `title` is completed with the task count and strategy: "fanout run x.toml: 12
    tasks, all-succeed". On Ctrl-C the manifest is still written (status interrupted)
    before the KeyboardInterrupt goes on. When fanout's own I/O fails (a full disk),
    what can still be written is, and the IOFailure goes on (exit 74). A bug leaves
    the manifest `running`, as a crash does, so that --resume runs the rest."""
    import anyio

    from fanout_cli.pacing import SYSTEM_CLOCK
    from fanout_cli.runner import Runner
    from fanout_cli.sources import planned_items

    clock = clock or SYSTEM_CLOCK
    started_at = clock.wall()
    store, header = _open_run(config, resume, options, started_at, plan_record)
    try:
        if opened is not None:  # the run folder exists (-k and the like print from it)
            opened(store.folder)
        items = planned_items(store, source, resume)
    except BaseException:
        store.close()
        raise
    runner = Runner(config, executor, store, listener, source.total, clock=clock, backoff=backoff)
    ended = False  # the run came back (or Ctrl-C stopped it), rather than a bug
    try:
        anyio.run(runner.run, items)
        ended = True
    except KeyboardInterrupt:
        runner.interrupted = runner.interrupted or signal.SIGINT
        ended = True
        raise
    finally:
        if ended:
            report = _report(runner, config, store, title, started_at, clock.wall())
            if reduce is not None and runner.failure is None and report.interrupted is None:
                report, runner.failure = reduce.after_tasks(store, report, header, config,
                                                            resumed=resume is not None)
            _close_run(store, header, report, runner.failure, resume)
        else:
            store.close()
    if runner.failure is not None:
        raise runner.failure
    return report


def _report(
    runner: Runner, config: RunConfig, store: RunStore, title: str, started: float, ended: float
) -> RunReport:
    import functools

    from fanout_cli.models import RunReport

    outcome = runner.verdict()
    count = outcome.counts["tasks"]
    interrupted = None if runner.interrupted is None else signal.Signals(runner.interrupted).name
    if interrupted is not None:
        reason = f"interrupted by {interrupted} after {count} tasks ended"
        outcome = replace(outcome, passed=False, reason=reason)
    elif runner.failure is not None:
        outcome = replace(outcome, passed=False, reason=runner.failure.message)
    return RunReport(
        run_id=store.run_id,
        run_dir=str(store.run_dir),
        manifest_path=str(store.manifest_path),
        verdict=outcome,
        rows=functools.partial(store.rows, runner.rows),
        started_at=started,
        finished_at=ended,
        title=f"{title}: {count} task{'s' * (count != 1)}, {config.verdict.strategy}",
        interrupted=interrupted,
        shard=config.sharding.shard,
        tokens=runner.token_totals(),
    )


def _open_run(
    config: RunConfig,
    resume: Resume | None,
    options: dict[str, Any],
    started_at: float,
    plan_record: Mapping[str, Any] | None = None,
) -> tuple[RunStore, dict[str, Any]]:
    """The run's store and manifest header: a new run folder (with a shard's plan
    record), or the resumed one (whose record stands)."""
    from fanout_cli.aop.documents import iso_time, manifest_header
    from fanout_cli.aop.writer import RunStore

    argv = list(sys.argv)
    if resume is None:
        store = RunStore(config.output.output_dir, config.output.run_id)
        header = manifest_header(
            run_id=store.run_id, argv=argv, options=options, started_at=started_at
        )
        event = "run_started"
    else:
        from fanout_cli.aop.reader import read_manifest_header  # only when resuming

        store = RunStore.reopen(resume.run_dir)
        header = {**read_manifest_header(store.run_dir), "options": options}
        header["resumed_at"] = iso_time(started_at)
        event = "run_resumed"
    try:
        if plan_record is not None and resume is None:
            from fanout_cli.shards.record import plan_summary, write_plan

            write_plan(store.folder, plan_record)
            header["plan"] = plan_summary(plan_record)
        store.journal(event, run_id=store.run_id, argv=argv, options=options)
        store.write_manifest(header, None, "running")
    except BaseException:
        store.close()
        raise
    return store, header


def _close_run(
    store: RunStore,
    header: dict[str, Any],
    report: RunReport,
    failure: FanoutError | None,
    resume: Resume | None,
) -> None:
    """The run's last journal line and its final manifest. After an I/O failure (or
    input found bad while the run went, such as a value too long for -s) they are
    written if they still can be (the failure itself is what is reported)."""
    from fanout_cli.errors import FanoutError, IOFailure

    failed = failure is not None
    status = "interrupted" if report.interrupted else "finished"
    if failed:
        status = "io_error" if isinstance(failure, IOFailure) else "input_error"
    outcome = report.verdict
    kept = {} if resume is None else {"resume": resume.book.summary()}
    try:
        with contextlib.suppress(*((FanoutError,) if failed else ())):
            store.journal("run_ended", **kept, status=status, passed=outcome.passed,
                          reason=outcome.reason, counts=dict(outcome.counts))  # fmt: skip
            store.write_manifest(header, report, status)
    finally:
        store.close()
