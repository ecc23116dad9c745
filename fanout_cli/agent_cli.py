"""Presets for headless agent CLIs (claude, codex, llm, aider) run as ordinary processes.

Pure: `build_command` turns a prompt into the argv of one non-interactive run and
`parse_output` reads what the tool printed. Nothing here starts a process or touches
a file. A tool's output is untrusted text: `parse_output` never raises on it and falls
back to the plain text when the tool's own format cannot be read.

The runner gives every child an empty stdin (/dev/null). llm reads a non-tty stdin
and puts it before the prompt; with /dev/null that adds nothing."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

TOOLS: tuple[str, ...] = ("claude", "codex", "llm", "aider")

# One line per preset for the man page and the README. ARGS are the task's extra arguments.
DESCRIPTIONS: Mapping[str, str] = MappingProxyType({
    "claude": "claude -p --output-format json [--model=M] [--append-system-prompt=S] "
    "ARGS... -- PROMPT",
    "codex": "codex exec --json [--model=M] ARGS... -- PROMPT (system text put before it)",
    "llm": "llm prompt --no-log [--model=M] [--system=S] ARGS... -- PROMPT",
    "aider": "aider --message=PROMPT --yes-always --no-pretty --no-stream --no-auto-commits "
    "[--model=M] ARGS... (system text put before it)",
})


@dataclass(frozen=True)
class CliReply:
    """What an agent CLI said, read from its stdout."""

    text: str  # the agent's final answer ("" when none found)
    model: str | None
    # Token counts as the tool reported them: input_tokens and output_tokens (None when
    # the tool left one out) and any tool-specific counts. None when it reported none.
    usage: dict[str, int | None] | None
    cost_usd: float | None
    is_error: bool  # the tool itself said the run failed
    error: str | None  # its message when is_error
    session_id: str | None


def build_command(
    tool: str,
    prompt: str,
    *,
    model: str | None = None,
    system: str | None = None,
    extra_args: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """argv for a non-interactive run; raises ValueError naming the tool and the choices
    when unknown.

    An empty model or system counts as none. Options that carry text use the
    `--option=value` form, so a value starting with `-` cannot be read as an option."""
    builder = _BUILDERS.get(tool)
    if builder is None:
        raise ValueError(_unknown_tool(tool))
    return builder(prompt, model or None, system or None, tuple(extra_args))


def parse_output(tool: str, stdout: str) -> CliReply:
    """Never raises on any input (garbage, truncated JSON, empty): falls back to the plain text.

    Raises ValueError only for an unknown tool, like `build_command`."""
    parser = _PARSERS.get(tool)
    if parser is None:
        raise ValueError(_unknown_tool(tool))
    return parser(stdout)


def _unknown_tool(tool: str) -> str:
    return f"unknown agent CLI {tool!r}: choose one of {', '.join(TOOLS)}"


# --- command lines -------------------------------------------------------------------

# A single bare word: the only shape a subcommand name can have.
_BARE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _with_system(prompt: str, system: str | None) -> str:
    """For tools without a system-prompt option: the system text goes first, then a blank line."""
    return prompt if system is None else f"{system}\n\n{prompt}"


def _claude_command(
    prompt: str, model: str | None, system: str | None, extra_args: tuple[str, ...]
) -> tuple[str, ...]:
    argv = ["claude", "-p", "--output-format", "json"]
    if model is not None:
        argv.append(f"--model={model}")
    if system is not None:
        argv.append(f"--append-system-prompt={system}")
    # claude parses with commander, which honours `--`: after it a prompt starting with
    # `-` is not an option, and variadic options in ARGS (--allowedTools A B, --add-dir)
    # cannot swallow the prompt. Commander still matches the first operand against its
    # subcommands even after `--`, so a one-word prompt such as "update" or "install"
    # would run that subcommand: a trailing newline keeps it a prompt.
    if _BARE_WORD.fullmatch(prompt):
        prompt += "\n"
    return (*argv, *extra_args, "--", prompt)


def _codex_command(
    prompt: str, model: str | None, system: str | None, extra_args: tuple[str, ...]
) -> tuple[str, ...]:
    argv = ["codex", "exec", "--json"]
    if model is not None:
        argv.append(f"--model={model}")
    # codex exec has no system-prompt option. Its clap parser honours `--`: after it a
    # prompt starting with `-` is a positional, and the subcommands (resume, review) are
    # no longer matched. A prompt of exactly `-` means "read stdin", so it gets a newline.
    full_prompt = _with_system(prompt, system)
    if full_prompt == "-":
        full_prompt += "\n"
    return (*argv, *extra_args, "--", full_prompt)


def _llm_command(
    prompt: str, model: str | None, system: str | None, extra_args: tuple[str, ...]
) -> tuple[str, ...]:
    # The `prompt` subcommand is named: bare `llm WORD` runs WORD when it is one of llm's
    # commands ("models", "logs", ...). --no-log keeps parallel runs out of llm's SQLite
    # log. click honours `--`, so a prompt starting with `-` stays the prompt.
    argv = ["llm", "prompt", "--no-log"]
    if model is not None:
        argv.append(f"--model={model}")
    if system is not None:
        argv.append(f"--system={system}")
    return (*argv, *extra_args, "--", prompt)


def _aider_command(
    prompt: str, model: str | None, system: str | None, extra_args: tuple[str, ...]
) -> tuple[str, ...]:
    # aider has no system-prompt option. `--message=PROMPT` (argparse) keeps a prompt that
    # starts with `-` the message. --yes-always answers its confirmations (stdin is empty);
    # --no-pretty and --no-stream print the reply once, without colour codes.
    # --no-auto-commits: parallel runs in one checkout would race on git (index.lock) and
    # each commit its own edits; fanout keeps every run's output but leaves the history
    # alone. ARGS come last, so `--auto-commits` there wins (argparse keeps the last one).
    argv = [
        "aider",
        f"--message={_with_system(prompt, system)}",
        "--yes-always",
        "--no-pretty",
        "--no-stream",
        "--no-auto-commits",
    ]
    if model is not None:
        argv.append(f"--model={model}")
    return (*argv, *extra_args)


_Builder = Callable[[str, str | None, str | None, tuple[str, ...]], tuple[str, ...]]
_BUILDERS: Mapping[str, _Builder] = MappingProxyType({
    "claude": _claude_command,
    "codex": _codex_command,
    "llm": _llm_command,
    "aider": _aider_command,
})


# --- reading replies -----------------------------------------------------------------


def _plain_reply(stdout: str) -> CliReply:
    return CliReply(
        text=stdout.strip(), model=None, usage=None, cost_usd=None,
        is_error=False, error=None, session_id=None,
    )


def _load_json(text: str) -> object:
    """The JSON value in text, or None when it is not JSON (deep nesting included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_objects(lines: str) -> Iterator[dict[str, object]]:
    """The JSON objects of a JSON Lines text; other lines (torn, plain text) are skipped."""
    for line in lines.splitlines():
        if line.lstrip().startswith("{"):
            value = _load_json(line)
            if isinstance(value, dict):
                yield value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _finite_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def _token_counts(value: object) -> dict[str, int | None] | None:
    """The integer counts of a usage object, input_tokens and output_tokens first."""
    if not isinstance(value, dict):
        return None
    counts = {
        key: count
        for key, count in value.items()
        if isinstance(key, str) and isinstance(count, int) and not isinstance(count, bool)
    }
    if not counts:
        return None
    usage: dict[str, int | None] = {
        "input_tokens": counts.pop("input_tokens", None),
        "output_tokens": counts.pop("output_tokens", None),
    }
    usage.update(counts)
    return usage


def _parse_claude(stdout: str) -> CliReply:
    """`claude -p --output-format json`: one result object.

    {"type": "result", "subtype": "success", "is_error": false, "result": "...",
     "session_id": "...", "total_cost_usd": 0.01, "usage": {...}, "modelUsage": {...}}
    Also read: the array `--verbose` prints and the JSON Lines of stream-json (the last
    "result" object, the model from the "system"/"init" one), and `cost_usd` of older
    versions. An API failure comes as subtype "success" with is_error true and the
    message in "result"; error_* subtypes put their messages in "errors"."""
    result, init_model = _claude_result(stdout)
    if result is None:
        return _plain_reply(stdout)
    subtype = _text(result.get("subtype"))
    is_error = result.get("is_error") is True or (subtype or "").startswith("error")
    answer = _text(result.get("result")) or ""
    error = None
    if is_error:
        messages = result.get("errors")
        details = [m for m in messages if isinstance(m, str)] if isinstance(messages, list) else []
        error = answer.strip() or "; ".join(details) or subtype or "claude reported an error"
    cost = _finite_number(result.get("total_cost_usd"))
    return CliReply(
        text="" if is_error else answer,
        model=init_model or _main_model(result.get("modelUsage")),
        usage=_token_counts(result.get("usage")),
        cost_usd=cost if cost is not None else _finite_number(result.get("cost_usd")),
        is_error=is_error,
        error=error,
        session_id=_text(result.get("session_id")),
    )


def _claude_result(stdout: str) -> tuple[dict[str, object] | None, str | None]:
    """The result object and the model named by an init message, if any."""
    whole = _load_json(stdout)
    if isinstance(whole, dict):
        if "result" in whole or whole.get("type") == "result":
            return whole, None
        return None, None
    messages: list[object] = whole if isinstance(whole, list) else list(_json_objects(stdout))
    result: dict[str, object] | None = None
    init_model: str | None = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("type") == "result":
            result = message
        elif message.get("type") == "system" and message.get("subtype") == "init":
            init_model = _text(message.get("model")) or init_model
    return result, init_model


def _main_model(model_usage: object) -> str | None:
    """modelUsage is keyed by model name. Claude Code also calls a small model on the side
    (titles, command checks); the model that answered read the system prompt and the
    tools, so it is the one with the most tokens."""
    if not isinstance(model_usage, dict):
        return None
    best: str | None = None
    best_tokens = -1.0
    for name, entry in model_usage.items():
        if not isinstance(name, str):
            continue
        tokens = 0.0
        if isinstance(entry, dict):
            for key in _MODEL_USAGE_TOKENS:
                tokens += _finite_number(entry.get(key)) or 0.0
        if tokens > best_tokens:
            best, best_tokens = name, tokens
    return best


_MODEL_USAGE_TOKENS = (
    "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens",
)


def _parse_codex(stdout: str) -> CliReply:
    """`codex exec --json`: JSON Lines of thread events.

    {"type": "thread.started", "thread_id": "..."}
    {"type": "item.completed", "item": {"id": "item_3", "type": "agent_message", "text": "..."}}
    {"type": "turn.completed", "usage": {"input_tokens": 9, "cached_input_tokens": 0,
                                         "output_tokens": 2}}
    {"type": "turn.failed", "error": {"message": "..."}} / {"type": "error", "message": "..."}
    An "error" event followed by turn.completed was a retry that recovered. Also read:
    the interim format (session.created, item_type "assistant_message") and the legacy
    one ({"id": ..., "msg": {"type": "agent_message" | "token_count" | "task_complete" |
    "error" | "session_configured", ...}} after a config summary line naming the model)."""
    events = list(_json_objects(stdout))
    if not events:
        return _plain_reply(stdout)
    state = _CodexState()
    for event in events:
        message = event.get("msg")
        if isinstance(message, dict):
            state.read_legacy(message)
        else:
            state.read(event)
    return CliReply(
        text="" if state.failure is not None else state.answer,
        model=state.model,
        usage=state.usage,
        cost_usd=None,
        is_error=state.failure is not None,
        error=state.failure,
        session_id=state.session_id,
    )


class _CodexState:
    """What the events of one codex run said so far."""

    def __init__(self) -> None:
        self.answer = ""
        self.model: str | None = None
        self.usage: dict[str, int | None] | None = None
        self.failure: str | None = None
        self.session_id: str | None = None

    def read(self, event: dict[str, object]) -> None:
        kind = event.get("type")
        if kind == "thread.started":
            self.session_id = _text(event.get("thread_id")) or self.session_id
        elif kind == "session.created":
            self.session_id = _text(event.get("session_id")) or self.session_id
        elif kind == "item.completed":
            item = event.get("item")
            if isinstance(item, dict):
                item_type = item.get("type", item.get("item_type"))
                text = _text(item.get("text"))
                if item_type in {"agent_message", "assistant_message"} and text is not None:
                    self.answer = text
        elif kind == "turn.completed":
            self.usage = _token_counts(event.get("usage")) or self.usage
            self.failure = None
        elif kind == "turn.failed":
            error = event.get("error")
            reported = _text(error.get("message")) if isinstance(error, dict) else None
            self.failure = reported or self.failure or "turn failed"
        elif kind == "error":
            self.failure = _text(event.get("message")) or "codex reported an error"
        elif kind is None:
            # The legacy format starts with a config summary: {"model": "gpt-5", ...}.
            self.model = _text(event.get("model")) or self.model

    def read_legacy(self, message: dict[object, object]) -> None:
        kind = message.get("type")
        if kind == "session_configured":
            self.session_id = _text(message.get("session_id")) or self.session_id
            self.model = _text(message.get("model")) or self.model
        elif kind == "agent_message":
            self.answer = _text(message.get("message")) or self.answer
        elif kind == "task_complete":
            self.answer = _text(message.get("last_agent_message")) or self.answer
            self.failure = None
        elif kind == "token_count":
            info = message.get("info")
            totals = info.get("total_token_usage") if isinstance(info, dict) else message
            self.usage = _token_counts(totals) or self.usage
        elif kind == "error":
            self.failure = _text(message.get("message")) or "codex reported an error"


def _parse_llm(stdout: str) -> CliReply:
    """llm prints the reply and nothing else (usage only with -u, and then on stderr)."""
    return _plain_reply(stdout)


# aider's bookkeeping, from Coder.calculate_and_show_tokens_and_cost:
#   Tokens: 2.1k sent, 1.0k cache write, 3.2k cache hit, 150 received. Cost: $0.0012 message,
#   $0.0034 session.   <- one line
# (the Cost part moves to its own line when there are both cache writes and hits, and is
# absent when aider knows no price for the model). Counts over 999 are shortened:
# 2.1k below 10 000, then whole thousands (15k).
# The counts end at the first full stop followed by a space or the end of the line.
_AIDER_TOKENS = re.compile(r"Tokens: (?P<counts>.+?)(?:\.(?=\s|$)|$)")
_AIDER_COUNT = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<suffix>[kKmM]?) (?P<label>[a-z ]+)")
_AIDER_COST = re.compile(
    r"Cost: \$(?P<message>\d+(?:\.\d+)?) message, \$(?P<session>\d+(?:\.\d+)?) session\."
)
_AIDER_COUNT_KEYS = {
    "sent": "input_tokens",
    "received": "output_tokens",
    "cache write": "cache_write_tokens",
    "cache hit": "cache_hit_tokens",
    "cache read": "cache_hit_tokens",
}
_AIDER_MODEL = re.compile(r"(?:Main model|Model|Models): (?P<model>\S+) with ")
# The banner aider prints before the reply (Coder.get_announcements) starts with its
# version and goes on with lines like these.
_AIDER_VERSION = re.compile(r"Aider v\d")
_AIDER_BANNER = (
    "Aider v", "Model:", "Models:", "Main model:", "Weak model:", "Editor model:",
    "Git repo:", "Repo-map:", "Added ", "Cur working dir:", "Git working dir:",
    "Multiline mode:", "Restored previous conversation history",
)


def _parse_aider(stdout: str) -> CliReply:
    """aider prints text: a banner, the reply, then a Tokens/Cost line per model call.

    One run can make several calls (edit retries, lint fixes): their token counts are
    added up, and the cost is the session total of the last Cost line. text is the
    output without the banner and those lines."""
    model, lines = _without_aider_banner(stdout.splitlines())
    usage: dict[str, int | None] | None = None
    cost: float | None = None
    kept: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith(("Tokens: ", "Cost: $")):
            kept.append(line)
            continue
        counted = _aider_counts(stripped)
        if counted:
            usage = _add_counts(usage, counted)
        cost_match = _AIDER_COST.search(stripped)
        if cost_match is not None:
            cost = _finite_number(float(cost_match["session"]))
        if not counted and cost_match is None:
            kept.append(line)  # not aider's bookkeeping after all
    return CliReply(
        text="\n".join(kept).strip(), model=model, usage=usage, cost_usd=cost,
        is_error=False, error=None, session_id=None,
    )


def _without_aider_banner(lines: list[str]) -> tuple[str | None, list[str]]:
    """The model named in the banner, and the lines after it (all lines when there is no
    banner). Warnings aider prints before its banner go with it: they are not the reply."""
    start = next(
        (index for index, line in enumerate(lines) if _AIDER_VERSION.match(line)), None
    )
    if start is None:
        return None, lines
    index = start + 1
    model = None
    while index < len(lines) and lines[index].startswith(_AIDER_BANNER):
        found = _AIDER_MODEL.match(lines[index])
        if found is not None and model is None:
            model = found["model"]
        index += 1
    return model, lines[index:]


def _aider_counts(line: str) -> dict[str, int]:
    found = _AIDER_TOKENS.match(line)
    if found is None:
        return {}
    counts: dict[str, int] = {}
    for part in found["counts"].split(", "):
        count = _AIDER_COUNT.fullmatch(part.strip())
        if count is None:
            continue
        key = _AIDER_COUNT_KEYS.get(count["label"])
        number = _shortened_count(count["number"], count["suffix"])
        if key is not None and number is not None:
            counts[key] = counts.get(key, 0) + number
    return counts


def _shortened_count(number: str, suffix: str) -> int | None:
    """'2.1', 'k' -> 2100: the count as aider rounded it for display."""
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[suffix.lower()]
    try:
        return int(Decimal(number) * scale)
    except InvalidOperation:
        return None


def _add_counts(
    usage: dict[str, int | None] | None, counts: dict[str, int]
) -> dict[str, int | None]:
    total: dict[str, int | None] = (
        dict(usage) if usage is not None else {"input_tokens": None, "output_tokens": None}
    )
    for key, count in counts.items():
        total[key] = (total.get(key) or 0) + count
    return total


_PARSERS: Mapping[str, Callable[[str], CliReply]] = MappingProxyType({
    "claude": _parse_claude,
    "codex": _parse_codex,
    "llm": _parse_llm,
    "aider": _parse_aider,
})
