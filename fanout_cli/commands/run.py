"""`fanout run`, wired in one place: settings -> plan -> executor -> runner -> render.

cli.py builds a RunRequest from the command line; `run_command` resolves it into a
plan (plan.py: the source, the options of every layer, resume matching, shards and
order), opens the executor the plan names, runs the tasks, and has the renderer print
the outcome. It returns the outcome; cli.py turns that into an exit status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fanout_cli.executors import Executor
    from fanout_cli.plan import RunPlan, RunRequest


@dataclass(frozen=True)
class RunOutcome:
    """How the run ended, for the exit status."""

    passed: bool
    interrupted: str | None = None  # the signal that stopped it: "SIGINT"


def run_command(request: RunRequest) -> RunOutcome:
    """Run (or resume, or only show with --dry-run) the tasks the request names."""
    # Imported here so that `fanout --help` does not pay for the engine.
    from fanout_cli.aop.documents import options_document
    from fanout_cli.limits import fit_descriptor_limit
    from fanout_cli.plan import plan_run
    from fanout_cli.render import make_renderer
    from fanout_cli.render.console import Console, color_choice
    from fanout_cli.runner import run_tasks

    plan = plan_run(request)
    if request.dry_run:
        show_dry_run(plan)
        return RunOutcome(passed=True)
    config = fit_descriptor_limit(plan.config)  # may run fewer at once, with a warning
    renderer = make_renderer(
        config.output,
        Console(color=color_choice(config.output.color)),
        # On --resume, results that stand are not reported again: no total to count to.
        total=None if plan.resume is not None else plan.source.total,
        jobs=config.policy.jobs,
    )
    executor = open_executor(plan)  # before the run folder exists: a bad cluster is exit 2
    options = options_document(config)
    if plan.agents is not None:
        options["agent"] = plan.agents.document()
    report = run_tasks(config, plan.source, executor, renderer, title=plan.title,
                       options=options, resume=plan.resume)  # fmt: skip
    renderer.finish(report)
    if config.output.junit is not None:
        from fanout_cli.render.junit import write_run_junit

        write_run_junit(config.output.junit, report)  # a StoreError (exit 2) if it cannot
    return RunOutcome(report.verdict.passed, report.interrupted)


def show_dry_run(plan: RunPlan) -> None:
    from fanout_cli.render.console import Console
    from fanout_cli.render.lines import print_dry_run, print_shard_plan

    if plan.shards is not None:
        print_shard_plan(Console(), plan.shards, plan.config.sharding.shard, plan.known)
    print_dry_run(Console(), plan.source.commands(plan.config.policy.jobs))


def open_executor(plan: RunPlan) -> Executor:
    """The executor the options name (by its URL scheme); agent calls go through the
    agent executor, which hands it every task that is not an HTTP call."""
    from fanout_cli.executors import open_executor as open_by_scheme

    executor = open_by_scheme(plan.config.policy)  # a remote one connects or exits 2 at once
    if plan.agents is not None:
        from fanout_cli.executors.agent import AgentExecutor

        executor = AgentExecutor(plan.agents, executor, connections=plan.config.policy.jobs,
                                 http=plan.http_calls)  # fmt: skip
    return executor
