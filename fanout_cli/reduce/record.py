"""The reduce's record in the run folder: `reduce.json` (a task's details document, with
what the reduce is and the fingerprint of what it was given), read back by --resume to
keep a reduce whose input did not change; and its entry in the manifest and reports."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fanout_cli.aop.documents import details_document, json_bytes, parse_json
from fanout_cli.aop.writer import write_member
from fanout_cli.errors import IOFailure
from fanout_cli.interpret import build_summary, decode, parse_markers, read_tail
from fanout_cli.models import Attempt, OutputInfo, ReduceResult, TaskResult, TaskSpec, TaskStatus
from fanout_cli.tokens import calls_tokens

if TYPE_CHECKING:
    from fanout_cli.aop import RunFolder
    from fanout_cli.aop.writer import RunStore

DETAILS, STDOUT, STDERR = "reduce.json", "reduce.stdout", "reduce.stderr"
KEPT = "fingerprint"  # the key of reduce.json that --resume compares
_SHELL_COULD_NOT_START = (126, 127)  # sh -c: not executable, command not found
_REPORTED_FAILURE = ("failure", "failed", "error")
_DOCUMENT_LIMIT = 64 << 20


def write_record(
    store: RunStore, spec: TaskSpec, attempt: Attempt, summary_chars: int, extra: dict[str, Any]
) -> ReduceResult:
    """Read the attempt's outputs into a result, write reduce.json, return the outcome."""
    folder = store.folder
    stdout_tail, stdout_size = read_tail(folder.member(STDOUT))
    stderr_tail, stderr_size = read_tail(folder.member(STDERR))
    reply = attempt.agent.get("text") if attempt.agent else None
    text = reply if isinstance(reply, str) else decode(stdout_tail)
    markers = parse_markers(text)
    status, reason = attempt.status, attempt.reason
    if (status is TaskStatus.FAILURE and isinstance(spec.command, str)
            and attempt.exit_code in _SHELL_COULD_NOT_START):  # fmt: skip
        status = TaskStatus.ERROR  # the shell started; the reduce's command did not
    if status is TaskStatus.SUCCESS and markers.status in _REPORTED_FAILURE:
        status, reason = TaskStatus.FAILURE, f"reported {markers.status}"
    succeeded = status is TaskStatus.SUCCESS
    summary = build_summary(succeeded, text, decode(stderr_tail), reason, markers, summary_chars,
                            first_lines=isinstance(reply, str))  # fmt: skip
    result = TaskResult(
        spec=spec, status=status, summary=summary, attempts=(attempt,),
        exit_code=attempt.exit_code, signal=attempt.signal, reason=reason,
        started_at=attempt.started_at, finished_at=attempt.finished_at,
        stdout=_described(store, folder.member(STDOUT), stdout_tail, stdout_size),
        stderr=_described(store, folder.member(STDERR), stderr_tail, stderr_size),
        metrics=markers.metrics, reported_status=markers.status, details_file=DETAILS,
    )  # fmt: skip
    document = {**details_document(result, store.run_id), **extra}
    try:
        write_member(folder, DETAILS, [json_bytes(document), b"\n"])
    except OSError as exc:
        raise IOFailure.of(folder.member(DETAILS), exc) from None
    return ReduceResult(status, attempt.exit_code, summary, reason, result.duration,
                        stdout_bytes=stdout_size, tokens=calls_tokens([attempt.agent]))  # fmt: skip


def read_kept(folder: RunFolder, stamp: str) -> ReduceResult | None:
    """The recorded reduce, when it succeeded on exactly this input; else None (it runs
    again). A link planted at reduce.json is not read."""
    try:
        with open(folder.open(DETAILS), "rb") as handle:
            document = parse_json(handle.read(_DOCUMENT_LIMIT))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get(KEPT) != stamp:
        return None
    if document.get("status") != "success":
        return None
    stdout = document.get("stdout")
    size = stdout.get("bytes") if isinstance(stdout, dict) else 0
    duration = document.get("duration_ms")
    exit_code = document.get("exit_code")
    agent = document.get("agent")
    return ReduceResult(
        TaskStatus.SUCCESS,
        exit_code if isinstance(exit_code, int) else None,
        str(document.get("summary", "")),
        str(document.get("reason", "")),
        duration / 1000 if isinstance(duration, int | float) else 0.0,
        stdout_bytes=size if isinstance(size, int) else 0,
        kept=True,
        tokens=calls_tokens([agent]) if isinstance(agent, dict) else None,
    )


def reduce_entry(result: ReduceResult) -> dict[str, Any]:
    """The reduce in the manifest, the JSON envelope and the jsonl run_ended event."""
    return {
        "status": str(result.status),
        "exit_code": result.exit_code,
        "summary": result.summary,
        "reason": result.reason,
        "duration_ms": round(result.duration * 1000),
        "details_file": result.details_file,
        "stdout_file": result.stdout_file,
        "stdout_bytes": result.stdout_bytes,
        "kept": result.kept,
    }


def _described(store: RunStore, path: str, tail: bytes, size: int) -> OutputInfo:
    """An output of the reduce as a task's is described, its lines counted (from the
    tail when that is all of it, else a block at a time: the reduce runs once)."""
    from fanout_cli.scan import count_lines

    info = store.describe_output(path, tail, size)
    return info if info.lines is not None else replace(info, lines=count_lines(path))
