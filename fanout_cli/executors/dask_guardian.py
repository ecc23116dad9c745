"""The guardian of a Dask worker's tasks: no orphans when a worker dies.

A process of its own (own session), started by a worker on its first task
(dask_worker.py). The worker tells it each attempt's process group and --termseq on a
pipe; when the worker's end closes (the worker died, even of SIGKILL, or exited), the
guardian ends the groups still running with their sequence."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time

from fanout_cli.reaper import TermSeq, group_alive, signal_group

_GROUP_POLL_SECONDS = 0.02


class _Guardian:
    """A process of its own (own session), started by a worker on its first task. The
    worker tells it each attempt's process group; when the worker's end of the pipe
    closes (the worker died, even of SIGKILL, or exited) it ends the groups still
    running with their --termseq. It also sweeps what a finished command left running
    in its group, as the local executor does."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fanout_cli.executors.dask_guardian import guard_process_groups as g; g()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._lock = threading.Lock()

    def tell(self, line: str) -> None:
        with self._lock:
            assert self.process.stdin is not None
            with contextlib.suppress(OSError):  # it died: the next task starts another
                self.process.stdin.write(line.encode() + b"\n")
                self.process.stdin.flush()


_guardian_lock = threading.Lock()
_guardian_process: _Guardian | None = None


def guardian_of_this_worker() -> _Guardian:
    global _guardian_process  # noqa: PLW0603  # one per worker process, made on first use
    with _guardian_lock:
        if _guardian_process is None or _guardian_process.process.poll() is not None:
            _guardian_process = _Guardian()
        return _guardian_process


def guard_process_groups() -> None:
    """The guardian's main loop. Reads "watch PGID SEQUENCE" and "done PGID" lines."""
    watched: dict[int, TermSeq] = {}  # group -> how it is ended
    doomed: dict[int, list[tuple[float, int]]] = {}  # group being ended -> (when, signal)
    stdin = sys.stdin.buffer.fileno()
    pending = b""
    open_ = True

    def end(group: int, sequence: TermSeq) -> None:
        if group_alive(group):
            doomed[group] = sequence.schedule(time.monotonic())

    while open_ or doomed:
        ready = [stdin]
        if open_:
            ready, _, _ = select.select([stdin], [], [], _GROUP_POLL_SECONDS if doomed else None)
        else:
            time.sleep(_GROUP_POLL_SECONDS)
        if open_ and ready:
            chunk = os.read(stdin, 65536)
            if not chunk:  # the worker is gone
                open_ = False
                for group, sequence in watched.items():
                    end(group, sequence)
                watched.clear()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                words = line.split()
                if len(words) == 3 and words[0] == b"watch":
                    watched[int(words[1])] = decoded_termseq(words[2].decode())
                elif len(words) == 2 and words[0] == b"done":
                    group = int(words[1])
                    end(group, watched.pop(group, TermSeq.kill_now()))
        for group, steps in list(doomed.items()):
            while steps and group_alive(group) and time.monotonic() >= steps[0][0]:
                signal_group(group, steps.pop(0)[1])
            if not steps or not group_alive(group):
                del doomed[group]


def encoded_termseq(sequence: TermSeq) -> str:
    """A sequence as one word of the guardian's lines: `15:5.0,9:0.0`."""
    return ",".join(f"{signum}:{wait!r}" for signum, wait in sequence.steps)


def decoded_termseq(word: str) -> TermSeq:
    steps = (item.partition(":") for item in word.split(","))
    return TermSeq(tuple((int(signum), float(wait)) for signum, _, wait in steps))
