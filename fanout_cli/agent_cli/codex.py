"""codex exec: OpenAI's Codex CLI, headless, with JSON Lines of thread events."""

from __future__ import annotations

from fanout_cli.agent_cli.common import (
    CliReply,
    Preset,
    json_objects,
    plain_reply,
    text_of,
    token_counts,
    with_system,
)


def command(
    prompt: str, model: str | None, system: str | None, extra_args: tuple[str, ...]
) -> tuple[str, ...]:
    argv = ["codex", "exec", "--json"]
    if model is not None:
        argv.append(f"--model={model}")
    # codex exec has no system-prompt option. Its clap parser honours `--`: after it a
    # prompt starting with `-` is a positional, and the subcommands (resume, review) are
    # no longer matched. A prompt of exactly `-` means "read stdin", so it gets a newline.
    full_prompt = with_system(prompt, system)
    if full_prompt == "-":
        full_prompt += "\n"
    return (*argv, *extra_args, "--", full_prompt)


def parse(stdout: str) -> CliReply:
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
    events = list(json_objects(stdout))
    if not events:
        return plain_reply(stdout)
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
            self.session_id = text_of(event.get("thread_id")) or self.session_id
        elif kind == "session.created":
            self.session_id = text_of(event.get("session_id")) or self.session_id
        elif kind == "item.completed":
            item = event.get("item")
            if isinstance(item, dict):
                item_type = item.get("type", item.get("item_type"))
                text = text_of(item.get("text"))
                if item_type in {"agent_message", "assistant_message"} and text is not None:
                    self.answer = text
        elif kind == "turn.completed":
            self.usage = token_counts(event.get("usage")) or self.usage
            self.failure = None
        elif kind == "turn.failed":
            error = event.get("error")
            reported = text_of(error.get("message")) if isinstance(error, dict) else None
            self.failure = reported or self.failure or "turn failed"
        elif kind == "error":
            self.failure = text_of(event.get("message")) or "codex reported an error"
        elif kind is None:
            # The legacy format starts with a config summary: {"model": "gpt-5", ...}.
            self.model = text_of(event.get("model")) or self.model

    def read_legacy(self, message: dict[object, object]) -> None:
        kind = message.get("type")
        if kind == "session_configured":
            self.session_id = text_of(message.get("session_id")) or self.session_id
            self.model = text_of(message.get("model")) or self.model
        elif kind == "agent_message":
            self.answer = text_of(message.get("message")) or self.answer
        elif kind == "task_complete":
            self.answer = text_of(message.get("last_agent_message")) or self.answer
            self.failure = None
        elif kind == "token_count":
            info = message.get("info")
            totals = info.get("total_token_usage") if isinstance(info, dict) else message
            self.usage = token_counts(totals) or self.usage
        elif kind == "error":
            self.failure = text_of(message.get("message")) or "codex reported an error"


PRESET = Preset(
    "codex",
    "codex exec --json [--model=M] ARGS... -- PROMPT (system text put before it)",
    command,
    parse,
    no_attach="codex has no option that attaches a text file (-i takes images); name the "
    "file in the prompt (codex reads it with its tools)",
)
