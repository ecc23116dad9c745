"""Reading a finished task's outputs into its result: the summary, the markers it
printed (status, score, metrics), its score and its vote key.

The runner decides when a task ends and with which status; this module says what
the task's outputs mean. An agent's reply is what its summary, score and vote come
from (for an agent CLI, the answer parsed out of the tool's JSON, not the JSON)."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import anyio

from fanout_cli import summaries
from fanout_cli.aop.writer import RunStore
from fanout_cli.config import RunConfig
from fanout_cli.models import Attempt, OutputInfo, TaskResult, TaskSpec, TaskStatus
from fanout_cli.strategies.base import uses_votes

THREAD_ANALYSIS_BYTES = 4 << 20  # a larger stdout is hashed for its vote off the event loop
SCORER_TIMEOUT_SECONDS = 60.0
_REPORTED_FAILURE = ("failure", "failed", "error")


@dataclass(frozen=True)
class Ending:
    """How the scheduler saw the task end: its status and why."""

    status: TaskStatus
    reason: str
    interrupted: bool = False  # a signal stopped the run while the task was running


@dataclass(frozen=True)
class _Outputs:
    """The ends of a task's stdout and stderr, and the text its verdict is read from."""

    stdout_path: str
    stdout: OutputInfo
    stderr: OutputInfo
    text: str  # the end of stdout, or the agent's reply
    stderr_text: str
    reply: str | None  # an agent's reply text


def _read_outputs(store: RunStore, spec: TaskSpec, last: Attempt) -> _Outputs:
    stdout_path, stderr_path = store.output_paths(spec)
    stdout_tail, stdout_size = summaries.read_tail(stdout_path)
    stderr_tail, stderr_size = summaries.read_tail(stderr_path)
    text = summaries.decode(stdout_tail)
    reply = last.agent.get("text") if last.agent else None
    if isinstance(reply, str):
        text = reply[-summaries.TAIL_BYTES :]
    return _Outputs(
        stdout_path=stdout_path,
        stdout=store.describe_output(stdout_path, stdout_tail, stdout_size),
        stderr=store.describe_output(stderr_path, stderr_tail, stderr_size),
        text=text,
        stderr_text=summaries.decode(stderr_tail),
        reply=reply if isinstance(reply, str) else None,
    )


async def read_result(
    config: RunConfig,
    store: RunStore,
    spec: TaskSpec,
    attempts: list[Attempt],
    ending: Ending | None,
) -> TaskResult:
    """The result of a task that ran at least one attempt. `ending` is None when its
    last attempt ended by itself (the attempt's status stands)."""
    last = attempts[-1]
    status, reason = (ending.status, ending.reason) if ending else (last.status, last.reason)
    outputs = _read_outputs(store, spec, last)
    markers = summaries.parse_markers(outputs.text)
    if status is TaskStatus.SUCCESS and markers.status in _REPORTED_FAILURE:
        status, reason = TaskStatus.FAILURE, f"reported {markers.status}"
    succeeded = status is TaskStatus.SUCCESS
    summary = summaries.build_summary(
        succeeded,
        outputs.text,
        outputs.stderr_text,
        reason,
        markers,
        config.summary_chars,
        first_lines=outputs.reply is not None,
    )
    if succeeded and summary == "(no output)" and reason:
        summary = f"(no output, {reason})"
    vote_key = None
    if succeeded and uses_votes(config.strategy):
        vote_key = await vote_key_of(config.vote_on, summary, last, outputs)
    return TaskResult(
        spec=spec,
        status=status,
        summary=summary,
        attempts=tuple(attempts),
        exit_code=last.exit_code,
        signal=last.signal,
        reason=reason,
        started_at=attempts[0].started_at,
        finished_at=last.finished_at,
        stdout=outputs.stdout,
        stderr=outputs.stderr,
        score=score_of(config.score, markers, outputs.text),
        vote_key=vote_key,
        metrics=markers.metrics,
        reported_status=markers.status,
        interrupted=ending is not None and ending.interrupted,
    )


def score_of(pattern: str | None, markers: summaries.Markers, text: str) -> float | None:
    """--score REGEX when given, else the score the task printed (FANOUT_SCORE)."""
    if pattern:
        return summaries.score_from_regex(pattern, text)
    return markers.score


async def vote_key_of(vote_on: str, summary: str, last: Attempt, outputs: _Outputs) -> str | None:
    """What a successful task votes for (--vote-on): its summary, exit code, whole
    stdout (normalised) or the first group of a regex."""
    if vote_on == "summary":
        return summary
    if vote_on == "exit-code":
        return str(last.exit_code)
    if vote_on == "stdout" and outputs.reply is not None:
        return summaries.normalised_text_key(outputs.reply)
    if vote_on == "stdout":
        path = outputs.stdout_path
        if os.path.getsize(path) > THREAD_ANALYSIS_BYTES:
            return await anyio.to_thread.run_sync(summaries.normalised_stdout_key, path)
        return summaries.normalised_stdout_key(path)
    return summaries.vote_from_regex(vote_on, outputs.text)


async def run_scorer(scorer: str, details_path: Path) -> float | None:
    """Run the --scorer command on a task's details file; the number it prints."""
    command = f"{scorer} {shlex.quote(str(details_path))}"
    with anyio.move_on_after(SCORER_TIMEOUT_SECONDS):
        completed = await anyio.run_process(command, check=False)
        if completed.returncode == 0:
            return summaries.parse_number(summaries.decode(completed.stdout))
    return None
