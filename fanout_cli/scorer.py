"""--scorer CMD: a command given a task's details file, whose stdout is the task's score.

What it did is kept in the task's details file (`scorer`: the command, its exit code, the
end of its stderr and, when no score came of it, why), so that a scorer that fails (a
missing program, a non-zero exit, a timeout, no number on stdout) is on record rather
than read as "no score"."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio

from fanout_cli.interpret import cap, clean_line, decode, last_line, parse_number
from fanout_cli.redact import redact_text
from fanout_cli.values import format_duration

SCORER_TIMEOUT_SECONDS = 60.0
SCORER_GRACE_SECONDS = 1.0  # what a scorer left: SIGTERM, then SIGKILL after this
SCORER_OUTPUT_BYTES = 1 << 20
STDERR_EXCERPT_BYTES = 2048  # the end of the scorer's stderr kept in the record
ERROR_CHARS = 200  # of the stderr line or stdout quoted in `error`
_SHELL_MEANINGS = {126: "not executable", 127: "command not found"}


@dataclass(frozen=True)
class Scored:
    """The score a scorer gave (None when it gave none) and its record for the details
    file: {command, exit_code, stderr, error}; `error` is None when it gave a score."""

    score: float | None
    record: dict[str, Any]

    @property
    def error(self) -> str | None:
        error = self.record.get("error")
        return error if isinstance(error, str) else None


async def run_scorer(
    scorer: str, details_path: Path, timeout: float = SCORER_TIMEOUT_SECONDS
) -> Scored:
    """Run `scorer` on a task's details file; the number it prints, and what it did.

    Its stdout and stderr go to files, so that fanout waits for the scorer to exit, not
    for an EOF that a process it left behind could hold off; it runs in its own process
    group with a task's mark, and what it leaves is ended with it, as a task's is."""
    command = f"{scorer} {shlex.quote(str(details_path))}"
    record: dict[str, Any] = {"command": redact_text(scorer), "exit_code": None, "stderr": "",
                              "error": None}  # fmt: skip
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        try:
            returncode = await _run(command, output, errors, timeout)
        except OSError as exc:
            record["error"] = f"cannot start: {exc.strerror or exc}"
            return Scored(None, record)
        errors.seek(0)
        stderr = decode(_tail(errors, STDERR_EXCERPT_BYTES))
        record["stderr"] = stderr
        record["exit_code"] = returncode
        output.seek(0)
        stdout = decode(output.read(SCORER_OUTPUT_BYTES))
    score = parse_number(stdout) if returncode == 0 else None
    if returncode is None:
        record["error"] = f"timed out after {format_duration(timeout)}"
    elif returncode != 0:
        record["error"] = _failed(returncode, stderr)
    elif score is None:
        first = stdout.strip().splitlines()[0] if stdout.strip() else ""
        shown = cap(clean_line(first), ERROR_CHARS)
        record["error"] = f"printed no number: {shown}" if shown else "printed nothing"
    return Scored(score, record)


async def _run(command: str, output: IO[bytes], errors: IO[bytes], timeout: float) -> int | None:
    """The scorer's exit code; None when it ran past `timeout` (it is then killed)."""
    from fanout_cli.reaper import MARK_VARIABLE, Orphans, TermSeq  # only runs with --scorer

    orphans = Orphans()
    mark = orphans.new_mark()
    environment = {**os.environ, **({MARK_VARIABLE: mark} if mark else {})}
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=errors, env=environment,
                                       start_new_session=True)  # fmt: skip
    finished = False
    try:
        with anyio.move_on_after(timeout):
            await process.wait()
            finished = True
    finally:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # it, and what it left in its group
            await process.wait()
            orphans.task_ended(mark, process.pid, TermSeq.default(SCORER_GRACE_SECONDS))
            while orphans.sweep(()):
                await anyio.sleep(0.02)
    return process.returncode if finished else None


def _tail(handle: IO[bytes], limit: int) -> bytes:
    size = os.fstat(handle.fileno()).st_size
    if size > limit:
        handle.seek(size - limit)
    return handle.read(limit)


def _failed(returncode: int, stderr: str) -> str:
    """`exit 1: the last line of stderr`, `killed by signal 9`, `command not found: ...`."""
    if returncode < 0:
        reason = f"killed by signal {-returncode}"
    else:
        reason = f"exit {returncode}"
        if returncode in _SHELL_MEANINGS:
            reason += f" ({_SHELL_MEANINGS[returncode]})"
    line = last_line(stderr)
    return f"{reason}: {cap(line, ERROR_CHARS)}" if line else reason
