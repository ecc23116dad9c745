"""Agent CLI presets: the argv of each tool, and reading what each tool prints. Pure: no
processes. The fixtures follow the formats the tools document (claude -p --output-format
json, codex exec --json, aider's token report); the text in them is made up."""

from __future__ import annotations

import argparse
import json
import math
import re

import click
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fanout_cli.agent_cli import (
    DESCRIPTIONS,
    TOOLS,
    CliReply,
    build_command,
    parse_output,
)

FUZZ = settings(max_examples=300, deadline=None)


def plain(text: str) -> CliReply:
    return CliReply(
        text=text, model=None, usage=None, cost_usd=None,
        is_error=False, error=None, session_id=None,
    )


def jsonl(*events: object) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


# --- the presets -----------------------------------------------------------------------


def test_tools_and_descriptions_name_the_same_presets() -> None:
    assert TOOLS == ("claude", "codex", "llm", "aider")
    assert tuple(DESCRIPTIONS) == TOOLS
    for tool, description in DESCRIPTIONS.items():
        assert description.startswith(tool + " ")
        assert "\n" not in description


@pytest.mark.parametrize(
    ("tool", "argv"),
    [
        ("claude", ("claude", "-p", "--output-format", "json", "--", "Is 7 a prime?")),
        ("codex", ("codex", "exec", "--json", "--", "Is 7 a prime?")),
        ("llm", ("llm", "prompt", "--no-log", "--", "Is 7 a prime?")),
        (
            "aider",
            (
                "aider", "--message=Is 7 a prime?", "--yes-always", "--no-pretty",
                "--no-stream", "--no-auto-commits",
            ),
        ),
    ],
)
def test_argv_with_only_a_prompt(tool: str, argv: tuple[str, ...]) -> None:
    assert build_command(tool, "Is 7 a prime?") == argv


@pytest.mark.parametrize(
    ("tool", "model", "extra", "argv"),
    [
        (
            "claude", "sonnet", ("--max-turns", "3"),
            (
                "claude", "-p", "--output-format", "json", "--model=sonnet",
                "--append-system-prompt=Answer in one word.", "--max-turns", "3",
                "--", "Is 7 a prime?",
            ),
        ),
        (
            "codex", "gpt-5-codex", ("--skip-git-repo-check",),
            (
                "codex", "exec", "--json", "--model=gpt-5-codex", "--skip-git-repo-check",
                "--", "Answer in one word.\n\nIs 7 a prime?",
            ),
        ),
        (
            "llm", "SmolLM2", ("-o", "temperature", "0"),
            (
                "llm", "prompt", "--no-log", "--model=SmolLM2",
                "--system=Answer in one word.", "-o", "temperature", "0", "--", "Is 7 a prime?",
            ),
        ),
        (
            "aider", "sonnet", ("primes.py",),
            (
                "aider", "--message=Answer in one word.\n\nIs 7 a prime?", "--yes-always",
                "--no-pretty", "--no-stream", "--no-auto-commits", "--model=sonnet",
                "primes.py",
            ),
        ),
    ],
)
def test_argv_with_model_system_and_extra_arguments(
    tool: str, model: str, extra: tuple[str, ...], argv: tuple[str, ...]
) -> None:
    built = build_command(
        tool, "Is 7 a prime?", model=model, system="Answer in one word.", extra_args=extra
    )
    assert built == argv


@pytest.mark.parametrize("tool", TOOLS)
def test_an_empty_model_or_system_counts_as_none(tool: str) -> None:
    assert build_command(tool, "hi", model="", system="") == build_command(tool, "hi")


@pytest.mark.parametrize(
    "prompt",
    ["-rf /", "--help", "--", "-", "--model=evil", "say \"hi\" and 'bye'", "line 1\nline 2\n"],
)
def test_a_prompt_is_one_argument_after_the_end_of_options(prompt: str) -> None:
    for tool in ("claude", "codex", "llm"):
        argv = build_command(tool, prompt)
        assert argv[-2] == "--"
        assert argv[-1].rstrip("\n") == prompt.rstrip("\n")
    assert build_command("aider", prompt)[1] == f"--message={prompt}"


def test_a_system_prompt_starting_with_a_dash_stays_one_value() -> None:
    assert "--append-system-prompt=- be terse" in build_command("claude", "q", system="- be terse")
    assert "--system=- be terse" in build_command("llm", "q", system="- be terse")


def test_a_one_word_claude_prompt_cannot_run_a_claude_subcommand() -> None:
    # commander dispatches to a subcommand named by the first operand, even after `--`.
    assert build_command("claude", "update")[-1] == "update\n"
    assert build_command("claude", "mcp")[-1] == "mcp\n"
    assert build_command("claude", "update now")[-1] == "update now"
    assert build_command("claude", "42")[-1] == "42"


def test_a_codex_prompt_of_only_a_dash_is_not_read_from_stdin() -> None:
    assert build_command("codex", "-")[-1] == "-\n"
    assert build_command("codex", "-", system="S")[-1] == "S\n\n-"


@given(prompt=st.text(), system=st.text(), model=st.text())
@example(prompt="-x", system="--", model="--help")
@FUZZ
def test_llm_argv_reads_back_exactly_through_click(prompt: str, system: str, model: str) -> None:
    """llm's `prompt` command parses with click: the same options must give back the values."""
    seen: dict[str, object] = {}

    @click.command()
    @click.argument("prompt", required=False)
    @click.option("-s", "--system")
    @click.option("model_id", "-m", "--model")
    @click.option("-n", "--no-log", is_flag=True)
    def llm_prompt(
        prompt: str | None, system: str | None, model_id: str | None, no_log: bool
    ) -> None:
        seen.update(prompt=prompt, system=system, model=model_id, no_log=no_log)

    argv = build_command("llm", prompt, model=model, system=system)
    assert argv[:2] == ("llm", "prompt")
    llm_prompt.main(args=list(argv[2:]), standalone_mode=False)
    assert seen == {
        "prompt": prompt, "system": system or None, "model": model or None, "no_log": True,
    }


@given(prompt=st.text(), system=st.text(), model=st.text(), auto_commits=st.booleans())
@example(prompt="--yes-always", system="", model="-m", auto_commits=True)
@FUZZ
def test_aider_argv_reads_back_exactly_through_argparse(
    prompt: str, system: str, model: str, auto_commits: bool
) -> None:
    """aider parses with (config)argparse; ARGS come last, so they override the preset."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--message", "--msg", "-m")
    parser.add_argument("--model")
    parser.add_argument("--yes-always", action="store_true")
    parser.add_argument("--pretty", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--auto-commits", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("files", nargs="*")
    extra = ("--auto-commits",) if auto_commits else ()
    argv = build_command("aider", prompt, model=model, system=system, extra_args=extra)
    parsed = parser.parse_args(argv[1:])
    assert parsed.message == (f"{system}\n\n{prompt}" if system else prompt)
    assert parsed.model == (model or None)
    assert (parsed.yes_always, parsed.pretty, parsed.stream) == (True, False, False)
    assert parsed.auto_commits is auto_commits


@given(prompt=st.text(), system=st.text())
@example(prompt="review", system="")
@example(prompt="-", system="")
@FUZZ
def test_codex_and_claude_argv_end_with_the_whole_prompt(prompt: str, system: str) -> None:
    claude = build_command("claude", prompt, system=system)
    one_word = re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", prompt) is not None
    assert claude[-2:] == ("--", prompt + "\n" if one_word else prompt)
    codex = build_command("codex", prompt, system=system)
    full = f"{system}\n\n{prompt}" if system else prompt
    assert codex[-2:] == ("--", "-\n" if full == "-" else full)


def test_an_unknown_tool_is_named_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'gemini'.*claude, codex, llm, aider"):
        build_command("gemini", "hi")
    with pytest.raises(ValueError, match=r"'gemini'.*claude, codex, llm, aider"):
        parse_output("gemini", "hi")


# --- claude ----------------------------------------------------------------------------

CLAUDE_SUCCESS = json.dumps({
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "duration_ms": 2841,
    "duration_api_ms": 3962,
    "num_turns": 1,
    "result": "Yes. 7 is a prime number.",
    "session_id": "3f6a9a4e-8d1c-4f5e-9b0a-2c7d1e6f8a90",
    "total_cost_usd": 0.0241865,
    "usage": {
        "input_tokens": 4,
        "cache_creation_input_tokens": 5180,
        "cache_read_input_tokens": 13958,
        "output_tokens": 12,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 5180},
    },
    "modelUsage": {
        "claude-haiku-4-5-20251001": {
            "inputTokens": 392, "outputTokens": 21, "cacheReadInputTokens": 0,
            "cacheCreationInputTokens": 0, "webSearchRequests": 0, "costUSD": 0.000497,
            "contextWindow": 200000,
        },
        "claude-sonnet-4-5-20250929": {
            "inputTokens": 4, "outputTokens": 12, "cacheReadInputTokens": 13958,
            "cacheCreationInputTokens": 5180, "webSearchRequests": 0, "costUSD": 0.0236895,
            "contextWindow": 200000,
        },
    },
    "permission_denials": [],
    "uuid": "b1f2c3d4-0000-4000-8000-000000000001",
}, indent=2) + "\n"


def test_claude_result_object() -> None:
    assert parse_output("claude", CLAUDE_SUCCESS) == CliReply(
        text="Yes. 7 is a prime number.",
        # The side model wrote more output tokens; the main one read the system prompt.
        model="claude-sonnet-4-5-20250929",
        usage={
            "input_tokens": 4,
            "output_tokens": 12,
            "cache_creation_input_tokens": 5180,
            "cache_read_input_tokens": 13958,
        },
        cost_usd=0.0241865,
        is_error=False,
        error=None,
        session_id="3f6a9a4e-8d1c-4f5e-9b0a-2c7d1e6f8a90",
    )


def test_claude_api_failure_is_an_error_with_its_message() -> None:
    stdout = json.dumps({
        "type": "result", "subtype": "success", "is_error": True, "duration_ms": 412,
        "duration_api_ms": 0, "num_turns": 1, "result": "Invalid API key · Please run /login",
        "session_id": "0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f00", "total_cost_usd": 0,
        "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": 0},
        "modelUsage": {}, "permission_denials": [],
    })
    reply = parse_output("claude", stdout)
    assert reply.is_error is True
    assert reply.error == "Invalid API key · Please run /login"
    assert reply.text == ""
    assert reply.cost_usd == 0.0
    assert reply.usage == {
        "input_tokens": 0, "output_tokens": 0,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
    }
    assert reply.model is None
    assert reply.session_id == "0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f00"


def test_claude_error_subtypes_are_errors_even_when_is_error_is_false() -> None:
    max_turns = json.dumps({
        "type": "result", "subtype": "error_max_turns", "is_error": False, "num_turns": 2,
        "session_id": "s-1", "total_cost_usd": 0.051, "usage": {"input_tokens": 10,
                                                                "output_tokens": 300},
    })
    reply = parse_output("claude", max_turns)
    assert (reply.is_error, reply.error, reply.text) == (True, "error_max_turns", "")
    assert reply.cost_usd == 0.051
    during = json.dumps({
        "type": "result", "subtype": "error_during_execution", "is_error": True,
        "errors": ["No conversation found with session ID: 123", 7],
        "session_id": "s-2", "total_cost_usd": 0,
    })
    reply = parse_output("claude", during)
    assert reply.error == "No conversation found with session ID: 123"
    assert reply.usage is None


def test_claude_verbose_array_and_stream_json_take_the_last_result_and_init_model() -> None:
    init = {"type": "system", "subtype": "init", "cwd": "/tmp/w", "session_id": "s-3",
            "tools": ["Bash", "Read"], "model": "claude-opus-4-1-20250805",
            "permissionMode": "default"}
    assistant = {"type": "assistant", "session_id": "s-3", "message": {
        "id": "msg_01", "type": "message", "role": "assistant",
        "model": "claude-opus-4-1-20250805", "content": [{"type": "text", "text": "4"}],
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }}
    result = {"type": "result", "subtype": "success", "is_error": False, "result": "4",
              "session_id": "s-3", "total_cost_usd": 0.1, "usage": {"input_tokens": 3,
                                                                    "output_tokens": 1}}
    expected = CliReply(
        text="4", model="claude-opus-4-1-20250805",
        usage={"input_tokens": 3, "output_tokens": 1}, cost_usd=0.1,
        is_error=False, error=None, session_id="s-3",
    )
    assert parse_output("claude", json.dumps([init, assistant, result])) == expected
    assert parse_output("claude", jsonl(init, assistant, result)) == expected


def test_claude_older_cost_field_and_missing_usage() -> None:
    stdout = json.dumps({
        "type": "result", "subtype": "success", "cost_usd": 0.003, "is_error": False,
        "duration_ms": 1234, "duration_api_ms": 1100, "num_turns": 1, "result": "4",
        "total_cost": 0.003, "session_id": "old-1",
    })
    assert parse_output("claude", stdout) == CliReply(
        text="4", model=None, usage=None, cost_usd=0.003,
        is_error=False, error=None, session_id="old-1",
    )


def test_claude_usage_keeps_a_missing_count_as_none_never_zero() -> None:
    stdout = json.dumps({"type": "result", "result": "ok", "usage": {"output_tokens": 5}})
    assert parse_output("claude", stdout).usage == {"input_tokens": None, "output_tokens": 5}


@pytest.mark.parametrize(
    "stdout",
    [
        "",
        "4\n",
        '{"type": "result", "subtype": "success", "result": "trunc',
        '{"unrelated": true}',
        "[1, 2, 3]",
        "Error: Invalid API key\n",
    ],
)
def test_claude_output_that_is_not_a_result_is_plain_text(stdout: str) -> None:
    assert parse_output("claude", stdout) == plain(stdout.strip())


def test_claude_odd_values_are_dropped_not_trusted() -> None:
    stdout = json.dumps({
        "type": "result", "result": 42, "is_error": "yes", "total_cost_usd": True,
        "session_id": 9, "usage": {"input_tokens": True, "output_tokens": 2.5},
        "modelUsage": {"m": "not an object"},
    })
    assert parse_output("claude", stdout) == CliReply(
        text="", model="m", usage=None, cost_usd=None,
        is_error=False, error=None, session_id=None,
    )
    huge = '{"type": "result", "result": "x", "total_cost_usd": ' + "9" * 400 + "}"
    assert parse_output("claude", huge).cost_usd is None
    assert parse_output("claude", '{"type": "result", "total_cost_usd": NaN}').cost_usd is None


# --- codex -----------------------------------------------------------------------------

CODEX_SUCCESS = jsonl(
    {"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"},
    {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "item_0", "type": "reasoning",
                                        "text": "**Checking divisors of 7**"}},
    {"type": "item.started", "item": {"id": "item_1", "type": "command_execution",
                                      "command": "bash -lc 'factor 7'", "aggregated_output": "",
                                      "exit_code": None, "status": "in_progress"}},
    {"type": "item.completed", "item": {"id": "item_1", "type": "command_execution",
                                        "command": "bash -lc 'factor 7'",
                                        "aggregated_output": "7: 7\n", "exit_code": 0,
                                        "status": "completed"}},
    {"type": "item.completed", "item": {"id": "item_2", "type": "agent_message",
                                        "text": "Checking with `factor`."}},
    {"type": "item.completed", "item": {"id": "item_3", "type": "agent_message",
                                        "text": "Yes — 7 is prime."}},
    {"type": "turn.completed", "usage": {"input_tokens": 24763, "cached_input_tokens": 24448,
                                         "output_tokens": 122}},
)


def test_codex_events_give_the_last_agent_message_and_turn_usage() -> None:
    assert parse_output("codex", CODEX_SUCCESS) == CliReply(
        text="Yes — 7 is prime.",
        model=None,
        usage={"input_tokens": 24763, "output_tokens": 122, "cached_input_tokens": 24448},
        cost_usd=None,
        is_error=False,
        error=None,
        session_id="0199a213-81c0-7800-8aa1-bbab2a035a53",
    )


def test_codex_turn_failed_is_an_error_with_its_message() -> None:
    stdout = jsonl(
        {"type": "thread.started", "thread_id": "t-9"},
        {"type": "turn.started"},
        {"type": "error", "message": "Reconnecting... 1/5 (stream disconnected before completion)"},
        {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message",
                                            "text": "Let me look."}},
        {"type": "turn.failed", "error": {"message": "unexpected status 401 Unauthorized: "
                                                     "Missing bearer authentication in header"}},
    )
    assert parse_output("codex", stdout) == CliReply(
        text="",
        model=None,
        usage=None,
        cost_usd=None,
        is_error=True,
        error="unexpected status 401 Unauthorized: Missing bearer authentication in header",
        session_id="t-9",
    )


def test_codex_error_event_alone_is_an_error_but_a_recovered_retry_is_not() -> None:
    fatal = jsonl({"type": "thread.started", "thread_id": "t"},
                  {"type": "error", "message": "quota exceeded"})
    assert (parse_output("codex", fatal).is_error, parse_output("codex", fatal).error) == (
        True, "quota exceeded"
    )
    recovered = jsonl(
        {"type": "thread.started", "thread_id": "t"},
        {"type": "error", "message": "Reconnecting... 1/5"},
        {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "ok"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "cached_input_tokens": 0,
                                             "output_tokens": 1}},
    )
    reply = parse_output("codex", recovered)
    assert (reply.is_error, reply.error, reply.text) == (False, None, "ok")
    failed_without_message = jsonl({"type": "turn.failed", "error": {}})
    assert parse_output("codex", failed_without_message).error == "turn failed"


def test_codex_interim_event_format() -> None:
    stdout = jsonl(
        {"type": "session.created", "session_id": "s-interim"},
        {"type": "item.completed", "item": {"id": "itm_0", "item_type": "reasoning",
                                            "text": "**Thinking**"}},
        {"type": "item.completed", "item": {"id": "itm_1", "item_type": "assistant_message",
                                            "text": "Yes"}},
    )
    assert parse_output("codex", stdout) == CliReply(
        text="Yes", model=None, usage=None, cost_usd=None,
        is_error=False, error=None, session_id="s-interim",
    )


def test_codex_legacy_event_format() -> None:
    stdout = jsonl(
        {"model": "gpt-5", "provider": "openai", "approval": "never", "sandbox": "read-only",
         "reasoning effort": "medium", "workdir": "/tmp/w"},
        {"prompt": "Is 7 a prime?"},
        {"id": "0", "msg": {"type": "session_configured", "session_id": "legacy-1",
                            "model": "gpt-5", "history_log_id": 0, "history_entry_count": 0}},
        {"id": "0", "msg": {"type": "task_started", "model_context_window": 272000}},
        {"id": "0", "msg": {"type": "agent_reasoning", "text": "**Checking primality**"}},
        {"id": "0", "msg": {"type": "agent_message", "message": "Yes — 7 is prime."}},
        {"id": "0", "msg": {"type": "token_count", "info": {
            "total_token_usage": {"input_tokens": 2710, "cached_input_tokens": 2432,
                                  "output_tokens": 76, "reasoning_output_tokens": 64,
                                  "total_tokens": 2786},
            "last_token_usage": {"input_tokens": 2710, "cached_input_tokens": 2432,
                                 "output_tokens": 76, "reasoning_output_tokens": 64,
                                 "total_tokens": 2786},
            "model_context_window": 272000}}},
        {"id": "0", "msg": {"type": "task_complete", "last_agent_message": "Yes — 7 is prime."}},
    )
    assert parse_output("codex", stdout) == CliReply(
        text="Yes — 7 is prime.",
        model="gpt-5",
        usage={"input_tokens": 2710, "output_tokens": 76, "cached_input_tokens": 2432,
               "reasoning_output_tokens": 64, "total_tokens": 2786},
        cost_usd=None,
        is_error=False,
        error=None,
        session_id="legacy-1",
    )
    flat = jsonl({"id": "0", "msg": {"type": "token_count", "input_tokens": 9, "output_tokens": 3}},
                 {"id": "0", "msg": {"type": "error", "message": "stream error"}})
    reply = parse_output("codex", flat)
    assert reply.usage == {"input_tokens": 9, "output_tokens": 3}
    assert (reply.is_error, reply.error) == (True, "stream error")


def test_codex_torn_lines_are_skipped() -> None:
    torn = CODEX_SUCCESS + '{"type": "item.completed", "item": {"id": "item_4", "ty'
    assert parse_output("codex", torn) == parse_output("codex", CODEX_SUCCESS)
    noisy = "warning: something on stdout\n" + CODEX_SUCCESS
    assert parse_output("codex", noisy).text == "Yes — 7 is prime."


@pytest.mark.parametrize("stdout", ["", "Yes — 7 is prime.\n", "[1]\n", "{trunc"])
def test_codex_output_without_events_is_plain_text(stdout: str) -> None:
    assert parse_output("codex", stdout) == plain(stdout.strip())


# --- llm -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "text"),
    [
        ("Yes\n", "Yes"),
        ("\n  Seven is prime.\nNine is not.\n\n", "Seven is prime.\nNine is not."),
        ("", ""),
        ('{"looks": "like json"}\n', '{"looks": "like json"}'),
    ],
)
def test_llm_output_is_the_reply(stdout: str, text: str) -> None:
    assert parse_output("llm", stdout) == plain(text)


# --- aider -----------------------------------------------------------------------------

AIDER_BANNER = (
    "Aider v0.86.1\n"
    "Main model: anthropic/claude-sonnet-4-20250514 with diff edit format, infinite output\n"
    "Weak model: anthropic/claude-3-5-haiku-20241022\n"
    "Git repo: .git with 12 files\n"
    "Repo-map: using 4096 tokens, auto refresh\n"
    "\n"
)


def test_aider_reply_usage_and_cost() -> None:
    stdout = (
        AIDER_BANNER
        + "Seven is a prime number: its only divisors are 1 and 7.\n\n"
        + "Tokens: 2.1k sent, 150 received. Cost: $0.0012 message, $0.0034 session.\n"
    )
    assert parse_output("aider", stdout) == CliReply(
        text="Seven is a prime number: its only divisors are 1 and 7.",
        model="anthropic/claude-sonnet-4-20250514",
        usage={"input_tokens": 2100, "output_tokens": 150},
        cost_usd=0.0034,
        is_error=False,
        error=None,
        session_id=None,
    )


def test_aider_several_calls_add_up_and_cost_is_the_session_total() -> None:
    stdout = (
        "Aider v0.85.2\nModel: gpt-4o with diff edit format\nGit repo: none\n\n"
        "I will edit primes.py.\n\n"
        "Tokens: 15k sent, 1.0k cache write, 3.2k cache hit, 312 received.\n"
        "Cost: $0.05 message, $0.05 session.\n"
        "Applied edit to primes.py\n"
        "Tokens: 16k sent, 40 received. Cost: $0.0041 message, $0.05 session.\n"
    )
    assert parse_output("aider", stdout) == CliReply(
        text="I will edit primes.py.\n\nApplied edit to primes.py",
        model="gpt-4o",
        usage={"input_tokens": 31_000, "output_tokens": 352, "cache_write_tokens": 1000,
               "cache_hit_tokens": 3200},
        cost_usd=0.05,
        is_error=False,
        error=None,
        session_id=None,
    )


def test_aider_without_a_price_reports_tokens_only() -> None:
    stdout = AIDER_BANNER + "Yes.\n\nTokens: 812 sent, 3 received.\n"
    reply = parse_output("aider", stdout)
    assert (reply.text, reply.usage, reply.cost_usd) == (
        "Yes.", {"input_tokens": 812, "output_tokens": 3}, None
    )


def test_aider_warnings_before_the_banner_are_not_the_reply() -> None:
    stdout = (
        "Warning for local/SmolLM2: Unknown context window size and costs, using sane defaults.\n"
        "You can skip this check with --no-show-model-warnings\n\n"
        "Aider v0.86.1\nModel: openai/SmolLM2 with whole edit format\nGit repo: none\n"
        "Repo-map: disabled\n\nNo.\n"
    )
    reply = parse_output("aider", stdout)
    assert (reply.text, reply.model, reply.usage) == ("No.", "openai/SmolLM2", None)


def test_aider_lines_that_only_look_like_bookkeeping_stay() -> None:
    stdout = "Tokens: are the unit of billing\nCost: $ varies by model\n"
    assert parse_output("aider", stdout) == plain(stdout.strip())


@pytest.mark.parametrize("stdout", ["", "plain answer\n", "\n\nAider was mentioned.\n"])
def test_aider_output_without_a_banner_is_kept_whole(stdout: str) -> None:
    assert parse_output("aider", stdout) == plain(stdout.strip())


# --- nothing a tool prints makes parse_output raise --------------------------------------

_KEYS = st.sampled_from([
    "type", "subtype", "msg", "item", "item_type", "text", "message", "result", "is_error",
    "errors", "error", "usage", "modelUsage", "outputTokens", "inputTokens",
    "total_cost_usd", "cost_usd", "session_id", "thread_id", "model", "info",
    "total_token_usage", "last_agent_message", "input_tokens", "output_tokens",
])
_VALUES = st.sampled_from([
    "result", "system", "init", "error_max_turns", "thread.started", "session.created",
    "item.completed", "turn.completed", "turn.failed", "error", "agent_message",
    "assistant_message", "session_configured", "token_count", "task_complete",
])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | _VALUES,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_KEYS | st.text(max_size=4), children, max_size=6),
    max_leaves=25,
)


@given(tool=st.sampled_from(TOOLS), stdout=st.text())
@FUZZ
def test_any_text_parses_without_raising(tool: str, stdout: str) -> None:
    reply = parse_output(tool, stdout)
    assert isinstance(reply.text, str)
    assert reply.is_error == (reply.error is not None)


@given(tool=st.sampled_from(TOOLS), events=st.lists(_JSON, max_size=8), torn=st.integers(0, 50))
@settings(max_examples=150, deadline=None)
def test_any_json_or_json_lines_parse_without_raising(
    tool: str, events: list[object], torn: int
) -> None:
    lines = "\n".join(json.dumps(event) for event in events)
    for stdout in (lines, lines[: len(lines) - torn], json.dumps(events)):
        reply = parse_output(tool, stdout)
        assert reply.is_error == (reply.error is not None)
        if reply.usage is not None:
            assert {"input_tokens", "output_tokens"} <= set(reply.usage)
            assert all(v is None or type(v) is int for v in reply.usage.values())
        if reply.cost_usd is not None:
            assert math.isfinite(reply.cost_usd)


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("stdout", ["[" * 100_000, "{" * 100_000, '{"a":' * 50_000])
def test_deeply_nested_json_is_plain_text(tool: str, stdout: str) -> None:
    assert parse_output(tool, stdout).text == stdout


# --- --attach, and the set-up step before parallel runs ----------------------------


def test_attach_becomes_the_tools_file_option_before_the_tasks_args() -> None:
    assert build_command("llm", "p", extra_args=("-x",), attach=("a.md", "-b.md")) == (
        "llm", "prompt", "--no-log", "--fragment=a.md", "--fragment=-b.md", "-x", "--", "p",
    )  # fmt: skip
    argv = build_command("aider", "p", attach=("a.md",))
    assert argv[-1] == "--read=a.md"


@pytest.mark.parametrize("tool", ["claude", "codex"])
def test_attach_for_a_tool_without_a_file_option_says_why(tool: str) -> None:
    from fanout_cli.agent_cli import attach_problem

    problem = attach_problem(tool)
    assert problem is not None and problem.startswith(f"--attach: {tool} has no option")
    with pytest.raises(ValueError, match="name the file in the prompt"):
        build_command(tool, "p", attach=("a.md",))
    assert attach_problem("llm") is None and attach_problem("aider") is None


def test_only_llm_has_a_set_up_step_keyed_by_where_it_keeps_state() -> None:
    from fanout_cli.agent_cli import PRESETS
    from fanout_cli.agent_cli.prepare import state_key

    assert [name for name, preset in PRESETS.items() if preset.prepare] == ["llm"]
    llm = PRESETS["llm"]
    home = {"HOME": "/home/u"}
    same = state_key(llm, {**home, "X": "1"}, "/a") == state_key(llm, {**home, "X": "2"}, "/b")
    assert same  # other variables and an absolute home's cwd do not matter
    assert state_key(llm, {**home, "LLM_USER_PATH": "/h1"}, None) != state_key(
        llm, {**home, "LLM_USER_PATH": "/h2"}, None
    )
    relative = {**home, "LLM_USER_PATH": "h"}
    assert state_key(llm, relative, "/a") != state_key(llm, relative, "/b")
