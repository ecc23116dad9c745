"""The TOML task file: [run], [defaults] and [[task]] tables, validated strictly.

tomllib gives values but no line numbers, so a small scanner records the line of every
table header and key; every error names `FILE:LINE`."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from fanout_cli.agents import AGENT_VALUE_PARSERS, CALL_KEYS, parse_agent_table
from fanout_cli.errors import TaskFileError
from fanout_cli.junit import parse_junit_template
from fanout_cli.models import AgentCall, TaskSpec
from fanout_cli.options import RUN_KEYS
from fanout_cli.sources.taskfile_expand import FAN_OUT_KEYS, Expansion, kind_of, read_fan_out
from fanout_cli.sources.toml_lines import MAX_NESTING, KeyLines, KeyPath, nesting_problem
from fanout_cli.sources.values import agent_command, with_literal
from fanout_cli.values import parse_exit_codes, parse_limit, parse_retries, shown

TOP_LEVEL_KEYS = ("run", "defaults", "agent", "reduce", "task")
DEFAULT_KEYS = ("cwd", "env", "timeout", "retries", "ok_exit", "junit")
KINDS = ("process", "agent", "agent-cli")
AGENT_KEYS = ("prompt", "prompt_file", *CALL_KEYS, "attach")
AGENT_CLI_KEYS = ("prompt", "prompt_file", "tool", "model", "system", "args", "attach")
TASK_KEYS = ("id", "kind", "cmd", *FAN_OUT_KEYS, *DEFAULT_KEYS, *AGENT_KEYS, "tool", "args")

@dataclass(frozen=True)
class TaskFile:
    path: str
    run_options: Mapping[str, object]  # the [run] table, names with _
    run_option_lines: Mapping[str, int]
    specs: tuple[TaskSpec, ...]
    agent: Mapping[str, Any]  # the [agent] table, validated (agents.parse_agent_table)


def load_task_file(path: str) -> TaskFile:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise TaskFileError(path, None, f"cannot read the task file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TaskFileError(path, line, "the task file is not valid UTF-8") from None
    return parse_task_file(text, path)


def parse_task_file(text: str, path: str = "tasks.toml") -> TaskFile:
    problem = nesting_problem(text)
    if problem is not None:
        raise TaskFileError(path, *problem)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _decode_error(path, str(exc), text.count("\n") + 1) from None
    except RecursionError:  # nesting_problem bounds the depth; this is the backstop
        raise TaskFileError(path, None, f"nesting deeper than {MAX_NESTING} levels") from None
    except ValueError:  # a number of more than 4300 digits (Python's int limit)
        long_number = re.search(r"[0-9_]{4300,}", text)
        line = None if long_number is None else text.count("\n", 0, long_number.start()) + 1
        raise TaskFileError(path, line, "invalid TOML: a number is too long") from None
    lines = KeyLines(text)
    return _Validator(path, lines).task_file(data)


def _decode_error(path: str, message: str, last_line: int) -> TaskFileError:
    match = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
    if match:
        return TaskFileError(path, int(match.group(1)), f"invalid TOML: {message[: match.start()]}")
    match = re.search(r"\s*\(at end of document\)$", message)
    if match:
        return TaskFileError(path, last_line, f"invalid TOML: {message[: match.start()]}")
    return TaskFileError(path, None, f"invalid TOML: {message}")


class _Validator:
    def __init__(self, path: str, lines: KeyLines) -> None:
        self.path = path
        self.lines = lines

    def fail(self, key_path: KeyPath, problem: str) -> TaskFileError:
        return TaskFileError(self.path, self.lines.find(key_path), problem)

    def task_file(self, data: dict[str, Any]) -> TaskFile:
        self.reject_unknown(data, TOP_LEVEL_KEYS, (), "at the top level")
        run = self.table(data, "run")
        for name in run:
            if name not in RUN_KEYS:
                from fanout_cli.config_hints import misplaced

                hint = misplaced(name, "run")  # model, base_url ...: where they belong
                problem = f"unknown key {name!r} in [run]: {hint}" if hint else None
                raise self.fail(("run", name), problem or self.unknown(name, RUN_KEYS, "in [run]"))
        agent_table = self.table(data, "agent")
        self.agent = parse_agent_table(
            agent_table, lambda key_path, problem: self.fail(("agent", *key_path), problem)
        )
        self.providers = {"openai", "anthropic", *self.agent.get("providers", {})}
        defaults = self.table(data, "defaults")
        self.reject_unknown(defaults, DEFAULT_KEYS, ("defaults",), "in [defaults]")
        default_values = self.task_values(defaults, ("defaults",), "[defaults]")

        entries = data.get("task")
        if entries is None:
            raise TaskFileError(
                self.path, None, "no tasks: add a [[task]] table with a cmd (or a prompt)"
            )
        if isinstance(entries, dict):
            raise self.fail(("task",), "write each task as [[task]] (an array of tables)")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise self.fail(("task",), "'task' must be an array of [[task]] tables")
        if not entries:
            raise self.fail(("task",), "no tasks: the [[task]] list is empty")

        expansions: list[Expansion] = []
        count = 0
        for index, entry in enumerate(entries):
            expansions.append(self.tasks(index, entry, default_values, first_seq=count + 1))
            count += expansions[-1].count
        specs: list[TaskSpec] = []
        first_line_of_id: dict[str, int | None] = {}
        for expansion in expansions:
            for spec in expansion.specs(count, self.fail):
                if spec.task_id in first_line_of_id:
                    first = first_line_of_id[spec.task_id]
                    raise self.fail(
                        (*expansion.where, "id"),
                        f"duplicate task id {spec.task_id!r}"
                        + (f" (first used on line {first})" if first else ""),
                    )
                first_line_of_id[spec.task_id] = self.lines.find((*expansion.where, "id"))
                specs.append(spec)
        run_lines = {name: self.lines.find(("run", name)) or 0 for name in run}
        if "reduce" in data:  # the [reduce] table is the value of the `reduce` option
            run = {**run, "reduce": self.reduce_table(data, run)}
            run_lines["reduce"] = self.lines.find(("reduce",)) or 0
        return TaskFile(self.path, dict(run), run_lines, tuple(specs), self.agent)

    def reduce_table(self, data: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
        from fanout_cli.reduce.spec import parse_table

        table = parse_table(self.table(data, "reduce"),
                            lambda key_path, problem: self.fail(("reduce", *key_path), problem))
        for name in ("reduce", "reduce_prompt"):
            if name in run:
                raise self.fail(("run", name), f"[run] {name} and a [reduce] table: give one")
        provider = table.get("provider")
        if provider is not None and provider not in self.providers:
            raise self.fail(("reduce", "provider"), f"[reduce] provider: unknown provider "
                            f"{provider!r} (known: {', '.join(sorted(self.providers))})")
        return table

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail((name,), f"'{name}' must be a table: write [{name}]")
        return value

    def tasks(
        self, index: int, entry: dict[str, Any], defaults: dict[str, Any], first_seq: int
    ) -> Expansion:
        """One [[task]] entry: one task, or one per value of its glob, foreach or matrix."""
        where: KeyPath = ("task", index)
        task_id, label = self.task_id(entry, index, first_seq)
        self.reject_unknown(entry, TASK_KEYS, where, f"in {label}")
        kind = entry.get("kind", "process")
        if kind not in KINDS:
            raise self.fail((*where, "kind"), f"{label}: kind must be one of {', '.join(KINDS)}, "
                            f"got {kind!r}")
        call, command = self.what_runs(kind, entry, where, label)
        literal = self.prompt_file(entry, where, label)
        fan_out = read_fan_out(entry, where, label, self.fail)
        if call is not None and literal and fan_out is None:  # one task: its prompt is whole
            call = replace(call, prompt=with_literal(call.prompt, literal))
            command = agent_command(call)
        own = self.task_values(entry, where, label)
        values = {**defaults, **own}
        env = {**defaults.get("env", {}), **own.get("env", {})}
        base = TaskSpec(
            seq=first_seq,
            task_id=task_id,
            command=command,
            origin=f"{self.path}:{self.lines.find(where) or 0}",
            cwd=values.get("cwd"),
            env=env,
            timeout=values.get("timeout"),
            retries=values.get("retries"),
            ok_exit=values.get("ok_exit"),
            agent=call,
            junit=values.get("junit"),
        )
        inherited: set[KeyPath] = {("env", name) for name in env if name not in own.get("env", {})}
        inherited |= {(key,) for key in ("cwd", "junit") if key not in own}
        return Expansion(base, fan_out, entry.get("id"), where, label, frozenset(inherited),
                         literal)

    def task_id(self, entry: dict[str, Any], index: int, first_seq: int) -> tuple[str, str]:
        """The entry's id (checked) and the label that names it in messages."""
        where: KeyPath = ("task", index)
        task_id = entry.get("id", f"task-{first_seq}")
        label = f"[[task]] #{index + 1}"
        if not isinstance(task_id, str) or not task_id:
            raise self.fail((*where, "id"), f"{label}: id must be a non-empty string")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in task_id):
            raise self.fail((*where, "id"), f"{label}: id must not contain control characters")
        if "id" in entry:
            label = f"[[task]] {task_id!r}"
        return task_id, label

    def what_runs(
        self, kind: str, entry: dict[str, Any], where: KeyPath, label: str
    ) -> tuple[AgentCall | None, tuple[str, ...] | str]:
        """The agent call (None for a process) and the command of an entry."""
        if kind != "process":
            call = self.agent_call(kind, entry, where, label)
            return call, agent_command(call)
        for key in entry:
            if key in AGENT_KEYS or key in ("tool", "args"):
                raise self.fail((*where, key), f"{label}: {key} is for agent tasks; add "
                                'kind = "agent" (or "agent-cli")')
        if "cmd" not in entry:
            raise self.fail(where, f"{label}: missing cmd (a list of words, or a shell string)")
        return None, self.command(entry["cmd"], (*where, "cmd"), label)

    def agent_call(
        self, kind: str, entry: dict[str, Any], where: KeyPath, label: str
    ) -> AgentCall:
        """The call of an `agent` or `agent-cli` task; fields it leaves out come later
        from [agent] and the command line."""
        allowed = AGENT_KEYS if kind == "agent" else AGENT_CLI_KEYS
        for key in entry:
            if key in ("cmd", *AGENT_KEYS, "tool", "args") and key not in allowed:
                raise self.fail((*where, key), f"{label}: {key} does not apply to kind "
                                f"{kind!r} (it takes {', '.join(allowed)})")
        prompt = entry.get("prompt", "" if "prompt_file" in entry else None)
        if not isinstance(prompt, str) or not (prompt.strip() or "prompt" not in entry):
            raise self.fail((*where, "prompt") if "prompt" in entry else where,
                            f"{label}: kind {kind!r} needs a prompt (a non-empty string) "
                            "or a prompt_file")
        fields: dict[str, Any] = {}
        for key in CALL_KEYS:
            if key in entry:
                try:
                    fields[key] = AGENT_VALUE_PARSERS[key](entry[key])
                except ValueError as exc:
                    raise self.fail((*where, key), f"{label}: {key}: {exc}") from None
        provider = fields.get("provider")
        if provider is not None and provider not in self.providers:
            raise self.fail((*where, "provider"), f"{label}: unknown provider {provider!r} "
                            f"(known: {', '.join(sorted(self.providers))}; define others in "
                            "[agent.providers.NAME])")
        if kind == "agent-cli":
            from fanout_cli.agent_cli import TOOLS

            tool = entry.get("tool")
            if tool not in TOOLS:
                raise self.fail((*where, "tool") if "tool" in entry else where,
                                f"{label}: tool must be one of {', '.join(TOOLS)}, got {tool!r}")
            fields["tool"] = tool
            fields["args"] = self.words(entry.get("args", []), (*where, "args"), label, "args")
        if "attach" in entry:
            attach = entry["attach"]
            fields["attach"] = self.words(
                [attach] if isinstance(attach, str) else attach, (*where, "attach"), label, "attach"
            )
            if kind == "agent-cli":
                from fanout_cli.agent_cli import attach_problem

                problem = attach_problem(fields["tool"])
                if problem is not None:
                    raise self.fail((*where, "attach"), f"{label}: {problem.replace('--', '', 1)}")
        return AgentCall(prompt=prompt, **fields)

    def prompt_file(self, entry: dict[str, Any], where: KeyPath, label: str) -> str:
        """The text of the entry's prompt_file (relative to the task file), as it is."""
        name = entry.get("prompt_file")
        if name is None:
            return ""
        if not isinstance(name, str) or not name:
            raise self.fail((*where, "prompt_file"), f"{label}: prompt_file must be a path")
        from fanout_cli.agents import read_prompt_file

        try:
            return read_prompt_file(os.path.join(os.path.dirname(self.path), name))
        except (OSError, ValueError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise self.fail((*where, "prompt_file"), f"{label}: prompt_file {name}: "
                            f"{problem}") from None

    def words(self, value: object, where: KeyPath, label: str, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(w, str) and w for w in value):
            raise self.fail(where, f"{label}: {key} must be a list of non-empty strings")
        self.no_nul(value, where, f"{label}: {key}")
        return tuple(value)

    def no_nul(self, words: str | list[str], where: KeyPath, what: str) -> None:
        """A NUL cannot reach a process (argv, cwd): said here, not as a crash later."""
        if any("\0" in word for word in ([words] if isinstance(words, str) else words)):
            raise self.fail(where, f"{what} holds a NUL character, which a command line "
                            "cannot carry")  # fmt: skip

    def command(self, value: object, where: KeyPath, label: str) -> tuple[str, ...] | str:
        if isinstance(value, str):
            if not value.strip():
                raise self.fail(where, f"{label}: cmd is an empty string")
            self.no_nul(value, where, f"{label}: cmd")
            return value
        if isinstance(value, list):
            if not value:
                raise self.fail(where, f"{label}: cmd is an empty list")
            if not all(isinstance(word, str) for word in value):
                raise self.fail(where, f"{label}: every word of cmd must be a string")
            if not value[0]:
                raise self.fail(where, f"{label}: the program name in cmd is empty")
            self.no_nul(value, where, f"{label}: cmd")
            return tuple(value)
        raise self.fail(
            where, f"{label}: cmd must be a list of words or a shell string, got {kind_of(value)}"
        )

    def task_values(self, table: dict[str, Any], where: KeyPath, label: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, parse in (
            ("timeout", task_timeout),
            ("retries", parse_retries),
            ("ok_exit", parse_exit_codes),
            ("junit", parse_junit_template),  # its runner's JUnit file: rendered as cmd is
        ):
            if key in table:
                try:
                    values[key] = parse(table[key])
                except ValueError as exc:
                    raise self.fail((*where, key), f"{label}: {key}: {exc}") from None
        if "cwd" in table:
            if not isinstance(table["cwd"], str) or not table["cwd"]:
                raise self.fail((*where, "cwd"), f"{label}: cwd must be a non-empty string")
            self.no_nul(table["cwd"], (*where, "cwd"), f"{label}: cwd")
            values["cwd"] = table["cwd"]
        if "env" in table:
            env = table["env"]
            if not isinstance(env, dict):
                raise self.fail((*where, "env"), f"{label}: env must be a table of strings")
            for name, value in env.items():
                if not isinstance(value, str):
                    raise self.fail(
                        (*where, "env", name),
                        f"{label}: env.{name} must be a string, got {kind_of(value)}",
                    )
                if not name or "=" in name or "\0" in name:
                    raise self.fail((*where, "env", name), f"{label}: bad env name {name!r} "
                                    "(it may not be empty or hold = or NUL)")  # fmt: skip
                if "\0" in value:
                    raise self.fail((*where, "env", name),
                                    f"{label}: env.{name}: the value holds a NUL character, "
                                    "which an environment variable cannot carry")  # fmt: skip
            values["env"] = dict(env)
        return values

    def reject_unknown(
        self, table: Mapping[str, Any], allowed: tuple[str, ...], where: KeyPath, place: str
    ) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail((*where, key), self.unknown(key, allowed, place))

    @staticmethod
    def unknown(key: str, allowed: Mapping[str, object] | tuple[str, ...], place: str) -> str:
        choices = list(allowed)
        close = difflib.get_close_matches(key.replace("-", "_"), choices, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(choices)})"
        return f"unknown key {key!r} {place}{hint}"



def task_timeout(value: object) -> float:
    """A task's (or [defaults]') timeout in seconds; 0 is no limit, and lifts the one
    [defaults] or the run sets. A percentage of the median is the run's alone: the
    median is taken over the run's tasks, so it is set for the run, in [run]."""
    if isinstance(value, str) and value.strip().endswith("%"):
        raise ValueError(f"a percentage of the median applies to the whole run: set it in "
                         f"[run] or with --timeout (a task takes seconds, or 0 for no limit), "
                         f"got {shown(value)}")  # fmt: skip
    return parse_limit(value) or 0.0
