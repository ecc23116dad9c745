"""What the reduce step is: a command, or one agent call, and when it runs.

The reduce is set by `--reduce CMD`, `--reduce-prompt TEMPLATE` or a task file's
`[reduce]` table; all three become the value of one of two run options (`reduce`,
`reduce_prompt`), so that the manifest keeps it and `--resume` runs the same reduce.
The parsers here check a value completely (an agent prompt's `{placeholders}`
included) before any task runs. Cheap to import: the option table's parsers call in."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

WHEN = ("pass", "always", "fail")
PLACEHOLDERS = ("results", "outputs", "verdict")
AGENT_TABLE_KEYS = ("prompt", "model", "provider", "system", "temperature", "max_tokens",
                    "max_bytes")
TABLE_KEYS = ("cmd", "kind", *AGENT_TABLE_KEYS)
KINDS = ("process", "agent")
# {outputs} and {results} each hold at most max_bytes: 64 KiB (about 16,000 tokens)
# unless the table says otherwise, and never more than 4 MiB, so that the whole
# request (the template, both of them) stays within 8 MiB and a model's context.
DEFAULT_MAX_BYTES = 64 << 10
MAX_BYTES_LIMIT = 4 << 20
# A doubled brace is a literal one; any other {...} without spaces is a placeholder.
_BRACES = re.compile(r"\{\{|\}\}|\{([^{}\s]*)\}")

Fail = Callable[[tuple[str, ...], str], Exception]


@dataclass(frozen=True)
class ReduceStep:
    """The reduce of a run, resolved: exactly one of `command` and `prompt` is set."""

    when: str = "pass"
    command: str | tuple[str, ...] | None = None  # str: sh -c; tuple: exec
    prompt: str | None = None
    provider: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    origin: str = "--reduce"  # where it was set, for its record

    @property
    def kind(self) -> str:
        return "process" if self.command is not None else "agent"

    def runs_after(self, passed: bool) -> bool:
        return self.when == "always" or (self.when == "pass") == passed

    def document(self) -> dict[str, Any]:
        """What the reduce is, as its record and its fingerprint keep it."""
        if self.command is not None:
            command = self.command if isinstance(self.command, str) else list(self.command)
            return {"kind": "process", "command": command, "when": self.when}
        return {"kind": "agent", "prompt": self.prompt, "provider": self.provider,
                "model": self.model, "system": self.system, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "max_bytes": self.max_bytes,
                "when": self.when}  # fmt: skip


def unknown_placeholder(template: str) -> str | None:
    """The first `{name}` of a reduce prompt that is not a placeholder, or None."""
    for match in _BRACES.finditer(template):
        name = match.group(1)
        if name is not None and name not in PLACEHOLDERS:
            return "{" + name + "}"
    return None


def fill(template: str, values: Mapping[str, str]) -> str:
    """The prompt with its placeholders filled (`{{` and `}}` are literal braces)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0)[0] if name is None else values[name]

    return _BRACES.sub(value, template)


def parse_prompt(value: object) -> str:
    """--reduce-prompt: a non-empty template whose placeholders all exist."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty prompt, got {value!r}")
    unknown = unknown_placeholder(value)
    if unknown is not None:
        known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        raise ValueError(f"unknown placeholder {unknown} in the reduce prompt (known: {known}; "
                         "write {{ and }} for a literal brace)")
    return value


def parse_command(value: object) -> str | tuple[str, ...]:
    """A reduce command: a shell string, or a list of words run without a shell."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("the reduce command is empty")
        if "\0" in value:
            raise ValueError("the reduce command holds a NUL character")
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(w, str) for w in value):
        if not value[0] or any("\0" in word for word in value):
            raise ValueError("the reduce command's program is empty or a word holds a NUL")
        return tuple(value)
    raise ValueError(f"expected a command (a shell string or a list of words), got {value!r}")


def parse_reduce(value: object) -> str | tuple[str, ...] | dict[str, Any]:
    """The `reduce` option: a command, or a [reduce] table (checked again when resumed)."""
    if isinstance(value, dict):
        return parse_table(value, _value_error)
    return parse_command(value)


def _value_error(key_path: tuple[str, ...], problem: str) -> Exception:
    return ValueError(problem)


def parse_table(table: Mapping[str, Any], fail: Fail) -> dict[str, Any]:
    """A [reduce] table checked and normalised: `{"cmd": ...}`, or `{"kind": "agent",
    "prompt": ..., ...}`. `fail(key_path, problem)` builds the error naming its line."""
    for key in table:
        if key not in TABLE_KEYS:
            raise fail((key,), f"unknown key {key!r} in [reduce] (allowed: "
                       f"{', '.join(TABLE_KEYS)})")
    kind = table.get("kind", "process")
    if kind not in KINDS:
        raise fail(("kind",), f"[reduce] kind must be process or agent, got {kind!r}")
    allowed = ("kind", "cmd") if kind == "process" else ("kind", *AGENT_TABLE_KEYS)
    for key in table:
        if key not in allowed:
            raise fail((key,), f"[reduce] {key} does not apply to kind {kind!r} "
                       f"(it takes {', '.join(allowed[1:])})")
    needed = "cmd" if kind == "process" else "prompt"
    if needed not in table:
        raise fail((), f"[reduce] needs {needed}" + (' (or kind = "agent" with a prompt)'
                                                      if needed == "cmd" else ""))
    checked: dict[str, Any] = {"kind": kind}
    for key, raw in table.items():
        if key == "kind":
            continue
        try:
            checked[key] = _TABLE_PARSERS[key](raw)
        except ValueError as exc:
            raise fail((key,), f"[reduce] {key}: {exc}") from None
    if isinstance(checked.get("cmd"), tuple):
        checked["cmd"] = list(checked["cmd"])  # as TOML and JSON keep it
    return checked


def _string(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def parse_max_bytes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number of bytes, got {value!r}")
    if not 1 <= value <= MAX_BYTES_LIMIT:
        raise ValueError(f"expected 1 to {MAX_BYTES_LIMIT} (4 MiB), got {value}")
    return value


def _temperature(value: object) -> float:
    from fanout_cli.values import parse_temperature

    return parse_temperature(value)


def _max_tokens(value: object) -> int:
    from fanout_cli.values import parse_max_tokens

    return parse_max_tokens(value)


_TABLE_PARSERS: Mapping[str, Callable[[object], Any]] = {
    "cmd": parse_command, "prompt": parse_prompt, "model": _string, "provider": _string,
    "system": _string, "temperature": _temperature, "max_tokens": _max_tokens,
    "max_bytes": parse_max_bytes,
}  # fmt: skip


def reduce_step(
    reduce: str | tuple[str, ...] | Mapping[str, Any] | None, prompt: str | None, when: str
) -> ReduceStep | None:
    """The run's reduce from its options (at most one of `reduce` and `prompt` is set)."""
    if prompt is not None:
        return ReduceStep(when, prompt=prompt, origin="--reduce-prompt")
    if reduce is None:
        return None
    if not isinstance(reduce, Mapping):
        return ReduceStep(when, command=reduce)
    if reduce.get("kind", "process") == "process":
        command = reduce["cmd"]
        return ReduceStep(when, command=command if isinstance(command, str) else tuple(command),
                          origin="[reduce]")  # fmt: skip
    return ReduceStep(when, prompt=reduce["prompt"], provider=reduce.get("provider"),
                      model=reduce.get("model"), system=reduce.get("system"),
                      temperature=reduce.get("temperature"), max_tokens=reduce.get("max_tokens"),
                      max_bytes=reduce.get("max_bytes", DEFAULT_MAX_BYTES), origin="[reduce]")


def wants_agent(verdict: Any) -> bool:
    """Whether the run's reduce (options.VerdictOptions) is an agent call."""
    table = verdict.reduce
    return verdict.reduce_prompt is not None or (
        isinstance(table, Mapping) and table.get("kind") == "agent"
    )
