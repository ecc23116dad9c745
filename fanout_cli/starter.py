"""`fanout init`: a commented starter task file.

The data of each table is written by tomli-w, so every value is valid TOML however it
is spelled; the comments around it are ours, and stay in the file for its reader."""

from __future__ import annotations

import os
from typing import Any

from fanout_cli.errors import UsageError

DEFAULT_NAME = "tasks.toml"

_HEADER = """\
# fanout task file. Run it with:   fanout run {name}
# Every [[task]] runs in parallel (a sliding window of `jobs`); each task's full output
# is kept under .cache/agent-outputs/, and one verdict is printed for the whole set.
# Reference: `man fanout` (TASK FILE) or `fanout run --help`.
"""

# (comment, the data of one table), in file order.
_BLOCKS: list[tuple[str, dict[str, Any]]] = [
    (
        "# Any option of `fanout run`, with _ for -; the command line wins over these.\n"
        "# strategy: all-succeed, first-n-succeed, best-of-n, majority-vote, partial-success.",
        {"run": {"jobs": 4, "timeout": "10m", "strategy": "all-succeed"}},
    ),
    (
        "# Keys every task gets unless it sets its own: cwd, env, timeout, retries, ok_exit.",
        {"defaults": {"retries": 0, "env": {"PYTHONUNBUFFERED": "1"}}},
    ),
    (
        "# A list of words runs directly, without a shell; id names the task everywhere.",
        {"task": [{"id": "hello", "cmd": ["echo", "hello from fanout"]}]},
    ),
    (
        "# A string runs under sh -c, pipes and all.",
        {"task": [{"id": "python", "cmd": "python3 --version 2>&1 | head -1"}]},
    ),
    (
        "# ok_exit: exit codes that count as success (grep exits 1 when nothing matched).",
        {"task": [{"id": "todo-count", "cmd": ["grep", "-c", "TODO", "{name}"],
                   "ok_exit": [0, 1]}]},
    ),
    (
        "# One task per value: {} is the value ({/} its basename, {.} without extension,\n"
        "# {#} its number). glob = \"src/**/*.py\" makes one task per matching file.",
        {"task": [{"id": "greet-{}", "cmd": ["echo", "hello", "{}"],
                   "foreach": ["alpha", "beta", "gamma"]}]},
    ),
]

_AGENT_EXAMPLE = """
# An LLM call instead of a process (needs: pip install 'fanout-cli[agent]' and a key
# in OPENAI_API_KEY, or a local server: see README, "Agent tasks"). Uncomment to try:
# [[task]]
# id = "review"
# kind = "agent"
# prompt = "In one sentence, what does a task runner do?"
# model = "gpt-4o-mini"
"""


def starter_text(name: str = DEFAULT_NAME) -> str:
    parts = [_HEADER.format(name=name)]
    for comment, data in _BLOCKS:
        parts.append(f"\n{comment}\n{_table(data)}".replace("{name}", name))
    parts.append(_AGENT_EXAMPLE)
    return "".join(parts)


def _table(data: dict[str, Any]) -> str:
    """`{"run": {...}}` as [run], `{"task": [{...}]}` as [[task]]: one key a line, short
    lists and tables inline (tomli-w alone would spread every list over lines)."""
    [(name, body)] = data.items()
    header, fields = (f"[[{name}]]", body[0]) if isinstance(body, list) else (f"[{name}]", body)
    lines = [header, *(f"{key} = {_inline(value)}" for key, value in fields.items())]
    return "\n".join(lines) + "\n"


def _inline(value: Any) -> str:
    import tomli_w

    if isinstance(value, list):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_inline(item)}" for key, item in value.items()) + " }"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()  # tomli-w quotes it


def write_starter(path: str | None, *, force: bool) -> str:
    """Write the starter file (PATH, or PATH/tasks.toml for a folder); return its path.
    An existing file is kept unless `force`."""
    target = path or DEFAULT_NAME
    if os.path.isdir(target):
        target = os.path.join(target, DEFAULT_NAME)
    if os.path.exists(target) and not force:
        raise UsageError(f"{target} exists; keep it, or overwrite it with --force")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise UsageError(f"{target}: no such folder {folder}")
    from fanout_cli.aop.writer import write_atomic

    try:
        write_atomic(target, [starter_text(target).encode("utf-8")])
    except OSError as exc:
        from fanout_cli.errors import IOFailure

        raise IOFailure.of(target, exc) from None
    os.chmod(target, 0o644)  # write_atomic makes private files; this one is for the project
    return target
