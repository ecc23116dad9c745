"""claude -p: Claude Code, headless, with a JSON result."""

from __future__ import annotations

from fanout_cli.agent_cli.common import (
    BARE_WORD,
    CliReply,
    Preset,
    finite_number,
    json_objects,
    load_json,
    plain_reply,
    text_of,
    token_counts,
)


def command(
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
    if BARE_WORD.fullmatch(prompt):
        prompt += "\n"
    return (*argv, *extra_args, "--", prompt)


def parse(stdout: str) -> CliReply:
    """`claude -p --output-format json`: one result object.

    {"type": "result", "subtype": "success", "is_error": false, "result": "...",
     "session_id": "...", "total_cost_usd": 0.01, "usage": {...}, "modelUsage": {...}}
    Also read: the array `--verbose` prints and the JSON Lines of stream-json (the last
    "result" object, the model from the "system"/"init" one), and `cost_usd` of older
    versions. An API failure comes as subtype "success" with is_error true and the
    message in "result"; error_* subtypes put their messages in "errors"."""
    result, init_model = _claude_result(stdout)
    if result is None:
        return plain_reply(stdout)
    subtype = text_of(result.get("subtype"))
    is_error = result.get("is_error") is True or (subtype or "").startswith("error")
    answer = text_of(result.get("result")) or ""
    error = None
    if is_error:
        messages = result.get("errors")
        details = [m for m in messages if isinstance(m, str)] if isinstance(messages, list) else []
        error = answer.strip() or "; ".join(details) or subtype or "claude reported an error"
    cost = finite_number(result.get("total_cost_usd"))
    return CliReply(
        text="" if is_error else answer,
        model=init_model or _main_model(result.get("modelUsage")),
        usage=token_counts(result.get("usage")),
        cost_usd=cost if cost is not None else finite_number(result.get("cost_usd")),
        is_error=is_error,
        error=error,
        session_id=text_of(result.get("session_id")),
    )


def _claude_result(stdout: str) -> tuple[dict[str, object] | None, str | None]:
    """The result object and the model named by an init message, if any."""
    whole = load_json(stdout)
    if isinstance(whole, dict):
        if "result" in whole or whole.get("type") == "result":
            return whole, None
        return None, None
    messages: list[object] = whole if isinstance(whole, list) else list(json_objects(stdout))
    result: dict[str, object] | None = None
    init_model: str | None = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("type") == "result":
            result = message
        elif message.get("type") == "system" and message.get("subtype") == "init":
            init_model = text_of(message.get("model")) or init_model
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
                tokens += finite_number(entry.get(key)) or 0.0
        if tokens > best_tokens:
            best, best_tokens = name, tokens
    return best


_MODEL_USAGE_TOKENS = (
    "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheCreationInputTokens",
)


PRESET = Preset(
    "claude",
    "claude -p --output-format json [--model=M] [--append-system-prompt=S] ARGS... -- PROMPT",
    command,
    parse,
    no_attach="claude has no option that attaches a file; name the file in the prompt "
    "(claude reads it with its tools)",
)
