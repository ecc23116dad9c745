"""What `fanout run` was asked, as one frozen record: the command line's arguments and
the environment, before any setting is resolved. Light on purpose: the command line
builds it, the planner (plan.py) and the run command (commands/run.py) read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fanout_cli.errors import UsageError
from fanout_cli.models import AgentCall
from fanout_cli.sources.request import SourceRequest


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


def agent_call(
    agent: bool, prompt: str | None, tool: str | None, attach: tuple[str, ...] | None
) -> AgentCall | None:
    """The agent call the options describe (prompt and attach are templates), or None."""
    if tool is not None:
        from fanout_cli.agent_cli import TOOLS

        if tool not in TOOLS:
            raise UsageError(f"--agent-cli: expected one of {', '.join(TOOLS)}, got {tool!r}")
        if prompt is None:
            raise UsageError("--agent-cli needs --prompt 'TEMPLATE' (the values fill {})")
        if agent:
            raise UsageError("give --agent (HTTP calls) or --agent-cli TOOL, not both")
        if attach:
            raise UsageError("--attach applies to --agent calls; name the files in the "
                             "prompt for an agent CLI, which reads them itself")
    elif not (agent or prompt is not None):
        if attach:
            raise UsageError("--attach applies to agent tasks: add --prompt 'TEMPLATE'")
        return None
    if prompt is not None and not prompt.strip():
        raise UsageError("--prompt is empty")
    return AgentCall(prompt=prompt or "{}", attach=tuple(attach or ()), tool=tool)
