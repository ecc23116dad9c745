"""From what the command line named to a source and a RunConfig, ready to run.

Option layers, lowest first: the options a resumed run was started with, the task
file's [run] table, the command line."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout_cli import sources
from fanout_cli.config import (
    OPTION_PARSERS,
    OptionError,
    RunConfig,
    build_config,
    default_output_dir,
)
from fanout_cli.errors import TaskFileError, UsageError
from fanout_cli.models import TaskSpec
from fanout_cli.runner import Resume
from fanout_cli.sources import SourceRequest

if TYPE_CHECKING:
    from fanout_cli.agents import AgentSettings
    from fanout_cli.timings import ShardPlan

# history, resume and taskfile are imported where they are needed: a plain run from
# stdin or ::: starts faster without them.

# Not carried over from the run being resumed: where it is, and how to print this time.
# A resumed shard run's saved task list is already that shard: never split it again.
# The shard stays: a resumed shard run is still that shard (its saved list is not
# split again; a task source given again is).
_NOT_RESUMED = ("run_id", "output_dir", "quiet", "format", "junit", "progress", "color")


@dataclass(frozen=True)
class PreparedRun:
    source: sources.Source
    config: RunConfig
    title: str
    resume: Resume | None
    agents: AgentSettings | None = None  # set when the run has agent or agent-cli tasks
    http_calls: bool = False  # some tasks are agent calls over HTTP
    shards: list[ShardPlan] | None = None  # --shard: every shard's plan (for --dry-run)
    known: int = 0  # how many tasks had recorded durations


def prepare_run(
    request: SourceRequest,
    command_line: dict[str, Any],
    resuming: tuple[str, bool] | None,
    stdin_is_terminal: bool,
    agent_options: dict[str, Any] | None = None,
) -> PreparedRun:
    names_a_source = bool(
        request.taskfile or request.values is not None or request.globs or request.command
    )
    # Resuming with no source named means the run's saved list, not a terminal stdin.
    sources.check_one_source(request, stdin_is_terminal and (names_a_source or not resuming))
    saved_options: dict[str, object] = {}
    saved_agent: dict[str, Any] = {}
    resume: Resume | None = None
    if resuming is not None:
        from fanout_cli import history
        from fanout_cli.resume import ResumeBook

        run_dir = history.resolve_run(_output_dir(command_line), resuming[0])
        if "merged_from" in history.read_manifest_header(run_dir):
            raise UsageError(f"run {run_dir.name} is a merge of other runs; resume those "
                             "(fanout merge them again afterwards)")
        saved_options = _saved_options(run_dir)
        saved_agent = _saved_agent_settings(run_dir)
        command_line = {**command_line, "output_dir": str(run_dir.parent), "run_id": run_dir.name}
        book = ResumeBook.load(run_dir, rerun_failed=resuming[1])
        resume = Resume(run_dir, book, from_saved_list=not names_a_source)
    agent_options = {k: v for k, v in (agent_options or {}).items() if v is not None}
    if request.agent is not None:
        request = _complete_request(request, agent_options, saved_agent)
    source, file_options, file_agent = _source(request, resume)
    try:
        config = build_config(saved_options, file_options, command_line)
    except OptionError as exc:
        raise UsageError(f"--{exc.name.replace('_', '-')}: {exc.problem}") from None
    title = sources.describe_source(request)
    if resume is not None:
        title = f"fanout run --resume {resume.run_dir.name}"
    agents = _agent_settings(source, request, file_agent or saved_agent, agent_options)
    if agents is not None and isinstance(source, sources.ListSource):
        completed = [_complete(spec, agents) for spec in source.specs()]
        source = sources.ListSource(source.name, completed)
        problem = agents.check(list(source.specs()))
        if problem is not None:
            raise UsageError(f"agent tasks cannot run: {problem}")
    http_calls = agents is not None and "agent" in _kinds(source, request)
    if config.junit is not None:
        folder = os.path.dirname(os.path.abspath(config.junit))
        if not os.path.isdir(folder):
            raise UsageError(f"--junit {config.junit}: no such folder {folder}")
    shards, known = None, 0
    from_saved_list = resume is not None and resume.from_saved_list
    if not from_saved_list:
        config = _shard_from_environment(config)
    if config.shard is not None or config.order != "input":
        source, shards, known = _split(source, config, resume)
        if config.shard is not None:
            title = f"{title} [shard {config.shard}]"
    return PreparedRun(source, config, title, resume, agents, http_calls, shards, known)


def _source(
    request: SourceRequest, resume: Resume | None
) -> tuple[sources.Source, dict[str, object], dict[str, Any]]:
    """The task source the request names, with the task file's [run] and [agent]."""
    if resume is not None and resume.from_saved_list:
        from fanout_cli.resume import saved_specs

        return sources.ListSource(resume.run_dir.name, saved_specs(resume.run_dir)), {}, {}
    if request.taskfile is not None:
        return _task_file_source(request.taskfile)
    tasks = sources.value_tasks(request)
    if request.values is not None:
        return sources.argument_source(tasks, list(request.values)), {}, {}
    if request.globs:
        return sources.glob_source(tasks, list(request.globs)), {}, {}
    return sources.StdinSource(tasks, request.null_separated), {}, {}


def _shard_from_environment(config: RunConfig) -> RunConfig:
    """--shard when given, else FANOUT_SHARD or a CI system's node index and total."""
    if config.shard is not None:
        return config
    from fanout_cli.timings import shard_from_environment

    try:
        found = shard_from_environment(os.environ)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return config if found is None else replace(config, shard=str(found[0]))


def _split(
    source: sources.Source, config: RunConfig, resume: Resume | None
) -> tuple[sources.ListSource, list[ShardPlan] | None, int]:
    """This shard's tasks (all of them without --shard), in --order, planned from the
    recorded durations: --timings files, else the output folder's earlier runs."""
    from fanout_cli import timings as recorded

    specs = list(source.specs())  # a shard needs the whole list: stdin is read to its end
    if config.timings:
        timings = recorded.Timings()
        for path in config.timings:
            if not os.path.exists(path):  # a first CI pipeline has no cached timings yet
                sys.stderr.write(f"fanout: warning: --timings {path}: no such file; "
                                 "tasks it does not cover are estimated alike\n")
                continue
            try:
                timings.merge(recorded.load_timings(path))
            except ValueError as exc:
                raise UsageError(f"--timings {exc}") from None
    else:
        runs = Path(config.output_dir) if resume is None else resume.run_dir.parent
        timings = recorded.timings_from_runs(runs)
    estimates = timings.estimates(specs)
    known = sum(1 for spec in specs if timings.known(spec.task_id) is not None)
    plans = None
    if config.shard is not None and not (resume is not None and resume.from_saved_list):
        shard = recorded.parse_shard(config.shard)
        plans = recorded.plan_shards(specs, estimates, shard.total)
        specs = list(plans[shard.index - 1].tasks)
    specs = recorded.ordered(specs, config.order, estimates, timings)
    return sources.ListSource(source.name, specs), plans, known


def _settings(file_agent: dict[str, Any], agent_options: dict[str, Any]) -> AgentSettings:
    from fanout_cli.agents import build_settings

    try:
        return build_settings(file_agent, agent_options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _complete_request(
    request: SourceRequest, agent_options: dict[str, Any], saved_agent: dict[str, Any]
) -> SourceRequest:
    """Values become agent calls: fill the call template's open fields now, so that the
    tasks (and their keys, saved for --resume) say exactly what is asked."""
    assert request.agent is not None
    call = request.agent
    if call.tool is None:
        settings = _settings(saved_agent, agent_options)
        call = settings.complete(call)
        problem = settings.problem(call)
        if problem is not None:
            raise UsageError(f"agent tasks cannot run: {problem}")
    else:  # an agent CLI: only what the command line says; the tool has its defaults
        unused = [name for name in agent_options if name not in ("model", "system")]
        if unused:
            names = ", ".join(f"--{name.replace('_', '-')}" for name in unused)
            raise UsageError(f"{names}: not for --agent-cli, which takes --model and --system "
                             "(pass other settings to the tool in a task file's args)")
        call = replace(call, model=agent_options.get("model"), system=agent_options.get("system"))
    return replace(request, agent=call)


def _agent_settings(
    source: sources.Source,
    request: SourceRequest,
    file_agent: dict[str, Any],
    agent_options: dict[str, Any],
) -> AgentSettings | None:
    """The run's agent settings when it has agent tasks (which need the HTTP client)."""
    kinds = _kinds(source, request)
    if kinds == {"process"}:
        if agent_options:
            names = ", ".join(f"--{name.replace('_', '-')}" for name in agent_options)
            raise UsageError(f"{names}: only for agent tasks (add --prompt, or kind = "
                             '"agent" in the task file)')
        return None
    if "agent" in kinds:
        from fanout_cli.executors.agent import missing_http_client

        problem = missing_http_client()
        if problem is not None:
            raise UsageError(problem)
    return _settings(file_agent, agent_options)


def _kinds(source: sources.Source, request: SourceRequest) -> set[str]:
    if isinstance(source, sources.ListSource):
        return {spec.kind for spec in source.specs()}
    if request.agent is None:
        return {"process"}
    return {"agent" if request.agent.tool is None else "agent-cli"}


def _complete(spec: TaskSpec, agents: AgentSettings) -> TaskSpec:
    if spec.agent is None or spec.agent.tool is not None:
        return spec
    return replace(spec, agent=agents.complete(spec.agent))


def _output_dir(command_line: dict[str, Any]) -> Path:
    given = command_line.get("output_dir")
    return Path(given if isinstance(given, str) else default_output_dir())


def _saved_options(run_dir: Path) -> dict[str, object]:
    from fanout_cli import history

    options = history.read_manifest_header(run_dir).get("options")
    if not isinstance(options, dict):
        return {}
    saved = {
        name: value
        for name, value in options.items()
        if name in OPTION_PARSERS and name not in _NOT_RESUMED
    }
    try:
        build_config(saved)
    except OptionError:
        return {}  # written by another version of fanout: start from the defaults
    return saved


def _saved_agent_settings(run_dir: Path) -> dict[str, Any]:
    """The agent settings a resumed run started with, as settings values."""
    from fanout_cli import history
    from fanout_cli.agents import settings_values

    options = history.read_manifest_header(run_dir).get("options")
    saved = options.get("agent") if isinstance(options, dict) else None
    return settings_values(saved) if isinstance(saved, dict) else {}


def _task_file_source(
    path: str,
) -> tuple[sources.ListSource, dict[str, object], dict[str, Any]]:
    from fanout_cli.taskfile import load_task_file

    task_file = load_task_file(path)
    file_options = dict(task_file.run_options)
    try:
        build_config(file_options)  # alone first, so that its errors name the file
    except OptionError as exc:
        line = task_file.run_option_lines.get(exc.name)
        raise TaskFileError(path, line, f"[run] {exc.name}: {exc.problem}") from None
    return sources.ListSource(path, task_file.specs), file_options, dict(task_file.agent)
