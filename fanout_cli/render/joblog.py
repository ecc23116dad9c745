"""--joblog FILE: GNU parallel's job log, for the tools that read one.

A TSV file with GNU parallel's header (Seq, Host, Starttime, JobRuntime, Send, Receive,
Exitval, Signal, Command), written over at the start of a run, as GNU parallel does, and
one row appended as each task ends (in the order they end; a task's last attempt); a
--resume appends to it, as GNU parallel's --resume does. The
fields are GNU parallel's: Host `:` (this machine), Starttime in epoch seconds with
three decimals, JobRuntime as `%10.3f`, Send the bytes given to the task's stdin
(--pipe), Receive its stdout's bytes, Exitval its exit code (-1 when it timed out or
could not start), Signal the signal that ended it (0 when none; a timeout is 15, as
GNU parallel's TERM). Command is the command as fanout ran it, each word quoted for a
shell only when it needs to be (GNU parallel quotes a value such as `x=1` that needs
none). Tasks that never started are not logged, as in GNU parallel."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from fanout_cli.errors import IOFailure, UsageError
from fanout_cli.models import TaskStatus

if TYPE_CHECKING:
    from fanout_cli.models import RunReport, TaskResult, TaskSpec
    from fanout_cli.render import Renderer

HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"


class Joblog:
    """A renderer that also writes the job log (it passes every event on to `inner`)."""

    def __init__(self, inner: Renderer, path: str, appending: bool = False) -> None:
        self.inner = inner
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if appending else os.O_TRUNC)
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise UsageError(f"--joblog {path}: cannot write: {exc.strerror}") from None
        if os.fstat(self._fd).st_size == 0 or not appending:
            self._write(HEADER)

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        try:
            while data:  # one row is one write; a short write goes on where it stopped
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            raise IOFailure.of(self.path, exc) from None

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        self.inner.task_started(spec, attempt, slot)

    def task_ended(self, result: TaskResult) -> None:
        self.inner.task_ended(result)
        if result.attempts:
            self._write(row(result))

    def finish(self, report: RunReport) -> None:
        os.close(self._fd)
        self.inner.finish(report)


def row(result: TaskResult) -> str:
    """One task's line of the job log."""
    from fanout_cli.replacements import shell_word  # with the rest of the templates

    last = result.attempts[-1]
    exit_value, signum = last.exit_code, last.signal or 0
    if result.status == TaskStatus.TIMEOUT:
        exit_value, signum = -1, signal.SIGTERM
    elif exit_value is None:
        exit_value = 0 if signum else -1  # killed by a signal; could not start
    spec = result.spec
    command = spec.command
    if spec.kind == "agent" and spec.agent is not None:
        shown = spec.agent.prompt
    else:
        shown = command if isinstance(command, str) else " ".join(map(shell_word, command))
    sent = 0 if spec.stdin is None else len(spec.stdin.data)
    received = 0 if result.stdout is None else result.stdout.bytes
    fields = [str(result.seq), ":", f"{last.started_at:.3f}", f"{last.duration:10.3f}",
              str(sent), str(received), str(exit_value), str(int(signum)),
              " ".join(shown.splitlines())]  # fmt: skip
    return "\t".join(fields) + "\n"
