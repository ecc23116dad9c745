"""Presets for headless agent CLIs (claude, codex, llm, aider) run as ordinary processes.

Pure: `build_command` turns a prompt into the argv of one non-interactive run and
`parse_output` reads what the tool printed. Nothing here starts a process or touches
a file. A tool's output is untrusted text: `parse_output` never raises on it and falls
back to the plain text when the tool's own format cannot be read.

The runner gives every child an empty stdin (/dev/null). llm reads a non-tty stdin
and puts it before the prompt; with /dev/null that adds nothing."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fanout_cli.agent_cli import aider, claude, codex, llm
from fanout_cli.agent_cli.common import CliReply, Preset

__all__ = ["DESCRIPTIONS", "PRESETS", "TOOLS", "CliReply", "Preset", "attach_problem",
           "build_command", "parse_output"]  # fmt: skip

# The one registry of agent CLIs: adding one is a module beside these and one entry here.
PRESETS: Mapping[str, Preset] = MappingProxyType({
    preset.name: preset for preset in (claude.PRESET, codex.PRESET, llm.PRESET, aider.PRESET)
})
TOOLS: tuple[str, ...] = tuple(PRESETS)
# One line per preset for the man page and the README. ARGS are the task's extra arguments.
DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {name: preset.description for name, preset in PRESETS.items()}
)


def build_command(
    tool: str,
    prompt: str,
    *,
    model: str | None = None,
    system: str | None = None,
    extra_args: tuple[str, ...] = (),
    attach: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """argv for a non-interactive run; raises ValueError naming the tool and the choices
    when unknown, or why the tool cannot take `attach`.

    An empty model or system counts as none. Options that carry text use the
    `--option=value` form, so a value starting with `-` cannot be read as an option.
    Attached files go in the tool's own file option, before the task's ARGS."""
    preset = PRESETS.get(tool)
    if preset is None:
        raise ValueError(_unknown_tool(tool))
    if attach:
        problem = attach_problem(tool)
        if problem is not None:
            raise ValueError(problem)
        extra_args = (*(f"{preset.attach_option}={path}" for path in attach), *extra_args)
    return preset.command(prompt, model or None, system or None, tuple(extra_args))


def attach_problem(tool: str) -> str | None:
    """Why `--attach` cannot work with this tool (one line), or None."""
    preset = PRESETS.get(tool)
    if preset is None:
        return _unknown_tool(tool)
    return None if preset.attach_option is not None else f"--attach: {preset.no_attach}"


def parse_output(tool: str, stdout: str) -> CliReply:
    """Never raises on any input (garbage, truncated JSON, empty): falls back to the plain text.

    Raises ValueError only for an unknown tool, like `build_command`."""
    preset = PRESETS.get(tool)
    if preset is None:
        raise ValueError(_unknown_tool(tool))
    return preset.parse(stdout)


def _unknown_tool(tool: str) -> str:
    return f"unknown agent CLI {tool!r}: choose one of {', '.join(TOOLS)}"
