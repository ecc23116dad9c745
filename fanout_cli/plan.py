"""Plan a run: from what was asked (a RunRequest, which the command line builds) to the
tasks to run and the options to run them with.

One straight line: the run being resumed (if any) -> the task source -> the options
of every layer, lowest first (the options the resumed run was started with, the task
file's [run] table, the command line) -> the agent settings -> this shard's tasks in
their order. The environment comes in with the request, not from os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fanout_cli.errors import UsageError
from fanout_cli.layers import OptionError, build_config
from fanout_cli.models import AgentCall, TaskSpec
from fanout_cli.options import RUN_KEYS, RunConfig, flag_of
from fanout_cli.shards import shard_from_environment
from fanout_cli.sources import (
    Resume,
    Source,
    SourceRequest,
    check_one_source,
    describe_source,
    open_source,
)
from fanout_cli.sources.inputs import ArgumentSource
from fanout_cli.sources.values import ListSource
from fanout_cli.values import default_output_dir

if TYPE_CHECKING:
    from fanout_cli.agents import AgentSettings
    from fanout_cli.options import VerdictOptions
    from fanout_cli.shards.split import Split

# history, resume and taskfile are imported where needed: a plain run starts faster.
# Not carried over from the run being resumed: where it is, and how to print this time.
# The shard stays: a resumed shard run is still that shard (its saved list is not
# split again; a task source given again is).
_NOT_RESUMED = ("run_id", "output_dir", "quiet", "format", "junit", "joblog", "progress",
                "color", "group", "keep_order", "line_buffer", "tag", "tagstring")


@dataclass(frozen=True)
class RunRequest:
    """What `fanout run` was asked: the task source, the options as given (None: not
    given), and the environment it runs in."""

    source: SourceRequest
    run_options: Mapping[str, object]  # the command line's layer of [run] options
    agent_options: Mapping[str, object]  # the command line's [agent] settings
    dry_run: bool = False
    resuming: tuple[str, bool] | None = None  # (RUN, re-run failed tasks too)
    stdin_is_terminal: bool = False
    environ: Mapping[str, str] | None = None  # None: the process's environment


def agent_call(agent: bool, prompt: str | None, tool: str | None,
               attach: tuple[str, ...] | None, prompt_file: str | None = None) -> AgentCall | None:
    """The agent call the options describe (prompt and attach are templates), or None.
    With --prompt-file alone the prompt is the file's text: the template is empty."""
    if tool is not None:
        from fanout_cli.agent_cli import TOOLS, attach_problem

        if tool not in TOOLS:
            raise UsageError(f"--agent-cli: expected one of {', '.join(TOOLS)}, got {tool!r}")
        if prompt is None and prompt_file is None:
            raise UsageError("--agent-cli needs --prompt 'TEMPLATE' or --prompt-file FILE")
        if agent:
            raise UsageError("give --agent (HTTP calls) or --agent-cli TOOL, not both")
        problem = attach_problem(tool) if attach else None
        if problem is not None:
            raise UsageError(problem)
    elif not (agent or prompt is not None or prompt_file is not None):
        if attach:
            raise UsageError("--attach applies to agent tasks: add --prompt 'TEMPLATE'")
        return None
    if prompt is not None and not prompt.strip():
        raise UsageError("--prompt is empty")
    template = prompt if prompt is not None else "" if prompt_file is not None else "{}"
    return AgentCall(prompt=template, attach=tuple(attach or ()), tool=tool)


@dataclass(frozen=True)
class RunPlan:
    source: Source
    config: RunConfig
    title: str
    resume: Resume | None
    agents: AgentSettings | None = None  # set when the run has agent or agent-cli tasks
    kinds: frozenset[str] = frozenset()  # of agent tasks: "agent" (HTTP calls), "agent-cli"
    split: Split | None = None  # --shard, --order: the plan the tasks come from


@dataclass(frozen=True)
class _SavedRun:
    """What a resumed run brings: its folder's results and the settings it started with."""

    resume: Resume
    options: dict[str, object]
    agent: dict[str, Any]


def plan_run(request: RunRequest) -> RunPlan:
    """The plan of the run the request asks for. Raises UsageError / TaskFileError."""
    environ = os.environ if request.environ is None else request.environ
    wanted = request.source
    names_a_source = bool(wanted.taskfile or wanted.values or wanted.globs or wanted.command)
    # Resuming with no source named means the run's saved list, not a terminal stdin.
    check_one_source(
        wanted, request.stdin_is_terminal and (names_a_source or not request.resuming)
    )
    saved = _saved_run(request, names_a_source, environ)
    command_line = dict(request.run_options)
    if saved is not None:
        run_dir = saved.resume.run_dir
        command_line |= {"output_dir": str(run_dir.parent), "run_id": run_dir.name}
    agent_options = {k: v for k, v in request.agent_options.items() if v is not None}
    if wanted.agent is not None:
        wanted = _complete_request(wanted, agent_options, saved, environ)
    resume = None if saved is None else saved.resume
    saved_list = resume.run_dir if resume is not None and resume.from_saved_list else None
    source, file_options, file_agent = open_source(wanted, saved_list)
    try:
        config = build_config(
            {"output_dir": default_output_dir(environ)},
            {} if saved is None else saved.options,
            file_options,
            command_line,
        )
    except OptionError as exc:
        raise UsageError(f"{flag_of(exc.name)}: {exc.problem}") from None
    config = _shuffle_seed(config, saved)
    if isinstance(source, ArgumentSource):
        source = source.with_jobs(config.policy.jobs)  # -m/-X spread their last batches
    source = _counted_for_halt(source, config, wanted)
    title = describe_source(wanted)
    if resume is not None:
        title = f"fanout run --resume {resume.run_dir.name}"
    agents = _agent_settings(source, wanted, file_agent or ({} if saved is None else saved.agent),
                             agent_options, environ, config.verdict)  # fmt: skip
    if agents is not None and isinstance(source, ListSource):
        source = _completed_source(source, agents)
    kinds = set() if agents is None else _kinds(source, wanted)
    _check_junit_folder(config)
    # --pipe: a CI job's shard variables do not split (and so hold) stdin's blocks.
    if (resume is None or not resume.from_saved_list) and wanted.pipe is None:
        config = _shard_from_environment(config, environ)
    split = None
    config = config.replaced(order=config.sharding.run_order)  # the manifest says which
    if (config.sharding.shard is not None or config.sharding.run_order != "input"
            or config.sharding.shuf is not None):  # fmt: skip
        from fanout_cli.shards.split import split as split_source

        layers = (command_line, file_options, {} if saved is None else saved.options)
        jobs_given = any(layer.get("jobs") is not None for layer in layers)
        # The CPU count differs between machines, and every shard must plan alike: a
        # shard is planned on its slots only when -j says how many.
        split = split_source(source, config, resume, config.policy.jobs if jobs_given else 1)
        source = split.source
        if config.sharding.shard is not None:
            title = f"{title} [shard {config.sharding.shard}]"
    return RunPlan(source, config, title, resume, agents, frozenset(kinds), split)


def _counted_for_halt(source: Source, config: RunConfig, wanted: SourceRequest) -> Source:
    """--halt P% counts all tasks before the first starts: a stream is read whole first,
    as GNU parallel does (--pipe's blocks stay streamed)."""
    halt = config.policy.halt
    if halt is None or halt.percent is None or source.total is not None or wanted.pipe:
        return source
    return ListSource(source.name, list(source.specs()))


def _shuffle_seed(config: RunConfig, saved: _SavedRun | None) -> RunConfig:
    """--shuf's seed: a new one, or the resumed run's (the same order goes on)."""
    if config.sharding.shuf is None:
        return config
    from fanout_cli.shuffle import contradiction, seeded

    problem = contradiction(config)
    if problem is not None:
        raise UsageError(problem)
    return seeded(config, None if saved is None else saved.options.get("shuf"))


def _saved_run(
    request: RunRequest, names_a_source: bool, environ: Mapping[str, str]
) -> _SavedRun | None:
    """--resume RUN / --resume-failed RUN: that run's results and saved settings."""
    if request.resuming is None:
        return None
    from fanout_cli import history
    from fanout_cli.aop import reader
    from fanout_cli.resume import ResumeBook

    name, rerun_failed = request.resuming
    given = request.run_options.get("output_dir")
    output_dir = Path(given if isinstance(given, str) else default_output_dir(environ))
    run_dir = history.resolve_run(output_dir, name)
    if "merged_from" in reader.read_manifest_header(run_dir):
        raise UsageError(f"run {run_dir.name} is a merge of other runs; resume those "
                         "(fanout merge them again afterwards)")
    book = ResumeBook.load(run_dir, rerun_failed=rerun_failed)
    resume = Resume(run_dir, book, from_saved_list=not names_a_source)
    return _SavedRun(resume, _saved_options(run_dir), _saved_agent_settings(run_dir))


def _completed_source(source: ListSource, agents: AgentSettings) -> ListSource:
    specs = [_complete(spec, agents) for spec in source.specs()]
    completed = ListSource(source.name, specs)
    problem = agents.check(list(completed.specs()))
    if problem is not None:
        raise UsageError(f"agent tasks cannot run: {problem}")
    return completed


def _is_device(path: str) -> bool:
    """/dev/null and the like: written into, never replaced (a FIFO cannot be rewritten)."""
    import stat

    return stat.S_ISCHR(os.stat(path).st_mode)


def _check_junit_folder(config: RunConfig) -> None:
    """--junit is written when the run ends: what would stop it is said before it starts."""
    path = config.output.junit
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UsageError(f"--junit {path}: no such folder {folder}")
        if os.path.isdir(path):
            raise UsageError(f"--junit {path}: is a folder; give a file name such as "
                             f"{os.path.join(path, 'junit.xml')}")  # fmt: skip
        if os.path.exists(path) and not (os.path.isfile(path) or _is_device(path)):
            raise UsageError(f"--junit {path}: is not a regular file or a device")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"--junit {path}: cannot write in {folder}")


def _shard_from_environment(config: RunConfig, environ: Mapping[str, str]) -> RunConfig:
    """--shard when given, else FANOUT_SHARD or a CI system's node index and total."""
    if config.sharding.shard is not None:
        return config
    try:
        found = shard_from_environment(environ)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return config if found is None else config.replaced(shard=str(found[0]))


def _settings(
    file_agent: dict[str, Any], agent_options: dict[str, Any], environ: Mapping[str, str]
) -> AgentSettings:
    from fanout_cli.agents import build_settings

    try:
        return build_settings(file_agent, agent_options, environ)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _complete_request(
    request: SourceRequest,
    agent_options: dict[str, Any],
    saved: _SavedRun | None,
    environ: Mapping[str, str],
) -> SourceRequest:
    """Values become agent calls: fill the call template's open fields now, so that the
    tasks (and their keys, saved for --resume) say exactly what is asked."""
    assert request.agent is not None
    call = request.agent
    if call.tool is None:
        settings = _settings({} if saved is None else saved.agent, agent_options, environ)
        call = settings.complete(call)
        problem = settings.problem(call)
        if problem is not None:
            raise UsageError(f"agent tasks cannot run: {problem}")
    else:  # an agent CLI: only what the command line says; the tool has its defaults
        unused = [name for name in agent_options if name not in ("model", "system")]
        if unused:
            names = ", ".join(flag_of(name) for name in unused)
            raise UsageError(f"{names}: not for --agent-cli, which takes --model and --system "
                             "(pass other settings to the tool in a task file's args)")
        call = replace(call, model=agent_options.get("model"), system=agent_options.get("system"))
    return replace(request, agent=call)


def _agent_settings(
    source: Source,
    request: SourceRequest,
    file_agent: dict[str, Any],
    agent_options: dict[str, Any],
    environ: Mapping[str, str],
    verdict: VerdictOptions | None = None,
) -> AgentSettings | None:
    """The run's agent settings when it has agent tasks or an agent reduce (HTTP calls)."""
    kinds = _kinds(source, request)
    if verdict is not None and (verdict.reduce or verdict.reduce_prompt) is not None:
        from fanout_cli.reduce.spec import wants_agent  # only a run with a reduce loads it
        kinds |= {"agent"} if wants_agent(verdict) else set()
    if kinds == {"process"}:
        if agent_options:
            names = ", ".join(flag_of(name) for name in agent_options)
            raise UsageError(f"{names}: only for agent tasks (add --prompt, or kind = "
                             '"agent" in the task file)')
        return None
    if "agent" in kinds:
        from fanout_cli.executors.agent import missing_http_client

        problem = missing_http_client()
        if problem is not None:
            raise UsageError(problem)
    return _settings(file_agent, agent_options, environ)


def _kinds(source: Source, request: SourceRequest) -> set[str]:
    if isinstance(source, ListSource):
        return {spec.kind for spec in source.specs()}
    if request.agent is None:
        return {"process"}
    return {"agent" if request.agent.tool is None else "agent-cli"}


def _complete(spec: TaskSpec, agents: AgentSettings) -> TaskSpec:
    if spec.agent is None or spec.agent.tool is not None:
        return spec
    return replace(spec, agent=agents.complete(spec.agent))


def _saved_options(run_dir: Path) -> dict[str, object]:
    from fanout_cli.aop import reader

    options = reader.read_manifest_header(run_dir).get("options")
    if not isinstance(options, dict):
        return {}
    saved = {
        name: value
        for name, value in options.items()
        if name in RUN_KEYS and name not in _NOT_RESUMED
    }
    try:
        build_config(saved)
    except OptionError:
        return {}  # written by another version of fanout: start from the defaults
    return saved


def _saved_agent_settings(run_dir: Path) -> dict[str, Any]:
    """The agent settings a resumed run started with, as settings values."""
    from fanout_cli.agents import settings_values
    from fanout_cli.aop import reader

    options = reader.read_manifest_header(run_dir).get("options")
    saved = options.get("agent") if isinstance(options, dict) else None
    return settings_values(saved) if isinstance(saved, dict) else {}
