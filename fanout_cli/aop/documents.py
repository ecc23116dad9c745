"""The JSON documents of a run folder, in both directions: built from the models when a
run is written, parsed back when it is read. Their keys and key order are the format."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fanout_cli.models import AgentCall, Attempt, OutputInfo, RunReport, TaskResult, TaskSpec
from fanout_cli.redact import redact_env, redact_text, redact_words
from fanout_cli.replacements import Args
from fanout_cli.template import Template

if TYPE_CHECKING:
    pass

AOP_VERSION = "1.0.0"
MANIFEST_VERSION = 1
# Where a manifest's task list starts (see json_with_tasks): a reader that wants the
# header only stops there.
TASKS_MARKER = b'\n  "tasks": ['
REPORT_ROW_KEYS = (
    "task_id", "seq", "status", "exit_code", "duration_ms", "attempts", "summary", "details_file",
    "stdout_file", "stdout_bytes", "stdout_lines",
)  # fmt: skip


# --- stamps and bytes -------------------------------------------------------------------


def iso_time(epoch: float | None) -> str | None:
    """2026-11-22T10:15:30.123Z (UTC, milliseconds)."""
    if epoch is None:
        return None
    seconds = int(epoch)
    return f"{_iso_seconds(seconds)}.{int((epoch - seconds) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)
def _iso_seconds(seconds: int) -> str:
    # Thousands of stamps a second share this part; formatting it once saves real time.
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_time(stamp: object) -> float | None:
    """Epoch seconds of a stamp that iso_time wrote; None for anything else."""
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def json_bytes(document: object, indent: int | None = None) -> bytes:
    """UTF-8 JSON. Values from input that are not valid UTF-8 (held as surrogates so
    commands get the exact bytes) are written as \\udcXX escapes, which Python reads
    back to the same bytes, instead of making the file invalid UTF-8."""
    text = json.dumps(document, indent=indent, ensure_ascii=False) if indent else _ENCODE(document)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, indent=indent, ensure_ascii=True).encode("ascii")


# One encoder for the compact documents (journal lines, details, the task list): a
# record is a tree of plain values, built here, so the check for cycles is not needed.
_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


# --- a task's details document ----------------------------------------------------------


def details_document(result: TaskResult, run_id: str) -> dict[str, Any]:
    spec = result.spec
    last = result.attempts[-1] if result.attempts else None
    return {
        "aop_version": AOP_VERSION,
        "agent_id": spec.task_id,
        "task": redact_text(spec.display_command()[:200]),
        "timestamp": iso_time(result.finished_at or time.time()),
        "duration_ms": round(result.duration * 1000),
        "run_id": run_id,
        "task_id": spec.task_id,
        "seq": spec.seq,
        "kind": spec.kind,
        **_command_fields(spec),
        "cwd": spec.cwd,
        "env": redact_env(spec.env),
        "input": task_input(spec),
        "origin": spec.origin,
        "status": str(result.status),
        "reason": result.reason,
        "exit_code": result.exit_code,
        "signal": result.signal,
        "attempts": [attempt_document(attempt) for attempt in result.attempts],
        "started_at": iso_time(result.started_at),
        "finished_at": iso_time(result.finished_at),
        "summary": result.summary,
        "reported_status": result.reported_status,
        "metrics": dict(result.metrics),
        "score": result.score,
        "scorer": None if result.scorer is None else dict(result.scorer),
        "vote_key": result.vote_key,
        "stdout": output_document(result.stdout),
        "stderr": output_document(result.stderr),
        "agent": None if last is None or last.agent is None else dict(last.agent),
        "error": result.reason if result.status == "error" else None,
    }


def _command_fields(spec: TaskSpec) -> dict[str, Any]:
    command: dict[str, Any]
    if spec.kind == "agent":
        command = {"prompt": spec.display_command()}
    elif isinstance(spec.command, str):
        command = {"command": redact_text(spec.command), "shell": True}
    else:
        command = {"command": redact_words(list(spec.command)), "shell": False}
    if spec.kind == "agent-cli":
        assert spec.agent is not None
        command["prompt"] = spec.agent.prompt
    return command


def attempt_document(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.number,
        "status": str(attempt.status),
        "exit_code": attempt.exit_code,
        "signal": attempt.signal,
        "reason": attempt.reason,
        "started_at": iso_time(attempt.started_at),
        "finished_at": iso_time(attempt.finished_at),
        "duration_ms": round(attempt.duration * 1000),
        "stdout": attempt.stdout_path,
        "stderr": attempt.stderr_path,
        "timeout": attempt.timeout, "timeout_rule": attempt.timeout_rule,  # the limit as it ended
        **({"exchanges": attempt.agent.get("exchanges")}
           if attempt.agent and "exchanges" in attempt.agent else {}),
    }


def output_document(info: OutputInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "path": info.path,
        "bytes": info.bytes,
        "lines": info.lines,
        "excerpt": info.excerpt,
        "excerpt_truncated": info.truncated,
    }


def task_input(spec: TaskSpec) -> Any:
    """What a task was made from: its value, or (--pipe) which block of stdin it read."""
    if spec.stdin is None:
        return spec.input
    return {"block": spec.seq, "bytes": len(spec.stdin.data), "records": spec.stdin.records}


# --- the saved task list: one document a task -------------------------------------------


def spec_document(spec: TaskSpec) -> dict[str, Any]:
    template = spec.template
    return {
        "seq": spec.seq,
        "task_id": spec.task_id,
        "key": spec.key,
        "command": spec.command if isinstance(spec.command, str) else list(spec.command),
        "cwd": spec.cwd,
        "env": redact_env(spec.env),
        "timeout": spec.timeout,
        "retries": spec.retries,
        "ok_exit": None if spec.ok_exit is None else sorted(spec.ok_exit),
        "input": task_input(spec),
        "origin": spec.origin,
        "template": None if template is None else _template_document(template, spec.args),
        "agent": None if spec.agent is None else agent_call_document(spec.agent),
        **({} if spec.junit is None else {"junit": spec.junit}),
    }


def _template_document(template: Template, args: Args | None) -> dict[str, Any]:
    """A command to render again once its slot is known ({%}), and its values."""
    records = None if args is None else [list(record) for record in args.records]
    return {**template.document(), "records": records, "flat": bool(args and args.flat)}


def _saved_args(template: dict[str, Any], recorded: object) -> Args | None:
    records = template.get("records")
    if isinstance(records, list):
        return Args(tuple(tuple(str(value) for value in record) for record in records),
                    bool(template.get("flat")))  # fmt: skip
    return Args.one(recorded) if isinstance(recorded, str) else None  # an older saved list


def task_list_end(count: int) -> dict[str, Any]:
    """The saved list's last line once its source was read to the end; a list without
    it (a full disk, a stream cut short) holds only a part of the run's tasks."""
    return {"end_of_list": True, "tasks": count}


def agent_call_document(call: AgentCall) -> dict[str, Any]:
    return {**dataclasses.asdict(call), "attach": list(call.attach), "args": list(call.args)}


def spec_from_document(document: dict[str, Any]) -> TaskSpec:
    """A task of the saved task list back as the TaskSpec that spec_document wrote."""
    command = document["command"]
    template = document.get("template")
    ok_exit = document.get("ok_exit")
    agent = document.get("agent")
    return TaskSpec(
        seq=int(document["seq"]),
        task_id=str(document["task_id"]),
        command=command if isinstance(command, str) else tuple(command),
        origin=str(document["origin"]),
        cwd=document.get("cwd"),
        env=dict(document.get("env") or {}),
        timeout=document.get("timeout"),
        retries=document.get("retries"),
        ok_exit=None if ok_exit is None else frozenset(ok_exit),
        input=document.get("input"),
        template=None if template is None else Template.from_document(template),
        args=None if template is None else _saved_args(template, document.get("input")),
        agent=None if agent is None else AgentCall(
            **{**agent, "attach": tuple(agent["attach"]), "args": tuple(agent["args"])}
        ),
        junit=document.get("junit"),
    )


# --- journal rows -----------------------------------------------------------------------


def journal_event(event: str, stamp: str | None, fields: Mapping[str, object]) -> dict[str, Any]:
    """One line of the journal: the event's name and time first."""
    argv = fields.get("argv")
    if isinstance(argv, list):
        fields = {**fields, "argv": redact_words([str(word) for word in argv])}
    return {"event": event, "time": stamp, **fields}


def journal_row(result: TaskResult) -> dict[str, Any]:
    """One ended task as the journal keeps it; the manifest and reports read it back."""
    return {
        "task_id": result.task_id,
        "seq": result.seq,
        "kind": result.spec.kind,
        "status": str(result.status),
        "exit_code": result.exit_code,
        "duration_ms": round(result.duration * 1000),
        "attempts": len(result.attempts),
        "summary": result.summary,
        "details_file": result.details_file,
        "stdout_file": None if result.stdout is None else result.stdout.path,
        "stdout_bytes": None if result.stdout is None else result.stdout.bytes,
        "stdout_lines": None if result.stdout is None else result.stdout.lines,
        "key": result.spec.key,
        "origin": result.spec.origin,
        "reason": result.reason,
        "score": result.score,
        "scorer_error": result.scorer_error,
        "vote_key": result.vote_key,
        "interrupted": result.interrupted,
        "input": task_input(result.spec),  # for a reduce's JSON lines
        **_tokens_field(result),
        **_runner_junit(result.attempts[-1] if result.attempts else None),
    }


def _runner_junit(last: Attempt | None) -> dict[str, Any]:
    """The task's runner JUnit (fanout_cli.aop.runner_junit) and the program it ran."""
    if last is None or last.junit is None:
        return {}
    record = dict(last.junit)
    return {"junit": record, "program": record.pop("program", None)}


def _tokens_field(result: TaskResult) -> dict[str, Any]:
    """An agent task's token usage (a process task's row has no such key)."""
    if result.spec.agent is None:
        return {}
    from fanout_cli.tokens import task_tokens  # only runs with agent tasks

    return {"tokens": task_tokens(result.attempts)}


def report_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a task that the JSON result envelope promises."""
    fields = {key: row.get(key) for key in REPORT_ROW_KEYS}
    fields.update((key, row[key]) for key in ("junit", "program") if key in row)
    return fields


# --- the manifest -----------------------------------------------------------------------


def manifest_header(
    *, run_id: str, argv: list[str], options: Mapping[str, Any], started_at: float
) -> dict[str, Any]:
    return {
        "fanout_manifest_version": MANIFEST_VERSION,
        "run_id": run_id,
        "status": "running",  # then finished or interrupted
        "argv": redact_words(argv),
        "cwd": os.getcwd(),
        "options": dict(options),
        "started_at": iso_time(started_at),
        "finished_at": None,
        "duration_ms": None,
        "verdict": None,
        "tokens": None,
    }


def manifest_chunks(
    header: Mapping[str, Any], report: RunReport | None, status: str
) -> Iterator[bytes]:
    """manifest.json, its task list streamed one compact line a task."""
    document = {**header, "status": status}
    if report is not None:
        document["finished_at"] = iso_time(report.finished_at)
        document["duration_ms"] = round(report.duration * 1000)
        document["verdict"] = verdict_document(report)
        document["tokens"] = None if report.tokens is None else dict(report.tokens)
    rows = report.rows() if report is not None else iter(())
    yield from json_with_tasks(
        document, ({**report_row(row), "origin": row.get("origin")} for row in rows)
    )


def json_with_tasks(head: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """An indented JSON object ending in a "tasks" list that is streamed one compact
    line a task: a million tasks never sit in memory at once."""
    opening = json_bytes(head, indent=2)
    yield opening[: opening.rindex(b"}")].rstrip() + b"," + TASKS_MARKER
    separator = b"\n    "
    for task in tasks:
        yield separator + json_bytes(task)
        separator = b",\n    "
    yield b"\n  ]\n}\n"


def parse_json(data: bytes | str) -> Any:
    """A document of a run folder. ValueError for what is not JSON, including JSON
    nested deeper than the parser can follow (a planted file: never exit 70)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def manifest_header_from(head: bytes) -> dict[str, Any]:
    """The manifest without its task list, from the file's first bytes (up to and
    past TASKS_MARKER, or the whole file); {} when they are not a manifest."""
    cut = head.find(TASKS_MARKER)
    text = head[:cut].rstrip().rstrip(b",") + b"\n}" if cut >= 0 else head
    try:
        document = parse_json(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def verdict_document(report: RunReport) -> dict[str, Any]:
    verdict = report.verdict
    winner: dict[str, Any] | None = None
    if verdict.winner is not None and verdict.winner.vote_key is not None:
        winner = {
            "vote_key": verdict.winner.vote_key,
            "votes": verdict.winner.votes,
            "task_ids": list(verdict.winner.task_ids),
        }
    elif verdict.winner is not None:
        winner = {"task_id": verdict.winner.task_id, "score": verdict.winner.score}
    return {
        "passed": verdict.passed,
        "strategy": verdict.strategy,
        "reason": verdict.reason,
        "winner": winner,
        "counts": dict(verdict.counts),
        **({"problems": list(verdict.problems)} if verdict.problems else {}),
    }
