"""llm prompt: Simon Willison's llm, which prints the reply alone."""

from __future__ import annotations

from fanout_cli.agent_cli.common import (
    CliReply,
    Preset,
    plain_reply,
)


def command(
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


def parse(stdout: str) -> CliReply:
    """llm prints the reply and nothing else (usage only with -u, and then on stderr)."""
    return plain_reply(stdout)


PRESET = Preset(
    "llm",
    "llm prompt --no-log [--model=M] [--system=S] [--fragment=FILE] ARGS... -- PROMPT",
    command,
    parse,
    # -f/--fragment: a file's text added to the prompt (-a is for images and audio).
    attach_option="--fragment",
    # llm migrates its log database (logs.db) in every `llm prompt`, --no-log too: runs
    # started together on a fresh (or newly upgraded) llm home fail with "table ...
    # already exists". `fragments list` (llm 0.24+) opens, migrates and only reads it.
    prepare=("llm", "fragments", "list", "--aliases"),
    state_variables=("LLM_USER_PATH", "XDG_CONFIG_HOME", "HOME"),
)
