"""--group, -k, --line-buffer, --tag, --tagstring: the tasks' own output on fanout's
stdout and stderr, byte for byte as GNU parallel prints it.

- --group: each task's stdout, whole, then its stderr, as the task ends (its last
  attempt: a failed try that was retried is not printed, as in GNU parallel).
- -k: the same, in the order the tasks started (the input order; with --order, that
  order); a task's output waits for the tasks before it.
- --line-buffer: whole lines as they come, from every running task (every attempt,
  as in GNU parallel). A line ends at a newline, or, in a chunk with none, at a
  carriage return (GNU parallel's rule, which lets progress lines through); a task's
  last line goes out without an end when the task ends. A line that has gone
  LINE_CAP bytes without an end is printed as it is, so one task cannot hold back its
  output for ever. With -k, the first unfinished task is the one printed live.
- --tag / --tagstring: each line prefixed (render.tags).

An agent call's reply (an HTTP agent task's stdout file holds the reply's text) is
followed by a newline when it has none, so that replies do not run into each other;
a process's output, an agent CLI's included, is printed exactly as it is.

Memory stays flat: nothing is held in memory but a read chunk. The tasks write their
output to the run folder (as always); one thread reads it back from there and prints
it, while the run goes on, so a slow reader of fanout's stdout (`| less`) slows the
printing and never the run. The files are opened relative to the printer's own
descriptor on the run folder, without following links (aop.files). --line-buffer
polls the files of running tasks: every 10 ms while they write, less often (up to
200 ms) while they are quiet.

Fanout's own lines (summaries, verdict, live progress) go to stderr in these modes
(render.make_renderer); they are not ordered with the tasks' output. A reduce's output
is data: it follows the tasks' on stdout."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fanout_cli.aop import RunFolder, files
from fanout_cli.errors import FanoutError, IOFailure, OutputClosedError
from fanout_cli.render.console import Console
from fanout_cli.render.tags import Tagger, render_tagstring, tag_of

if TYPE_CHECKING:
    from fanout_cli.models import RunReport, TaskResult, TaskSpec
    from fanout_cli.render import Renderer

LINE_CAP = 1 << 20  # --line-buffer: a line this long with no end yet is printed as it is
CHUNK = 1 << 16
POLL_BUSY, POLL_QUIET = 0.01, 0.2  # seconds between reads of running tasks' files


@dataclass(frozen=True)
class Shown:
    """What the output options ask to print of the tasks."""

    keep_order: bool = False
    line_buffer: bool = False
    tagstring: str | None = None  # the tag template (--tag: "{}" in effect)
    tag: bool = False


_Event = tuple[str, "TaskSpec | None", int, int]  # start|end, the task, attempt, slot


class _Stream:
    """One output file of one attempt, and how far it has been printed."""

    __slots__ = ("fd", "last", "printed", "scanned", "tagger", "to_stderr")

    def __init__(self, fd: int, tagger: Tagger | None, to_stderr: bool) -> None:
        self.fd = fd
        self.printed = 0  # bytes before this offset are out
        self.scanned = 0  # no line end between `printed` and this offset
        self.tagger = tagger
        self.to_stderr = to_stderr
        self.last = b"\n"  # the last byte printed


class _Task:
    __slots__ = ("attempt", "ended", "prefix", "spec", "streams")

    def __init__(self, spec: TaskSpec, attempt: int, prefix: bytes | None) -> None:
        self.spec = spec
        self.attempt = attempt
        self.prefix = prefix
        self.streams: list[_Stream | None] = [None, None]  # stdout, stderr, once opened
        self.ended = False


class OutputPrinter:
    """A renderer that also prints the tasks' output (it passes every event on to
    `inner`, which prints fanout's own lines)."""

    def __init__(self, inner: Renderer, shown: Shown) -> None:
        self.inner = inner
        self.shown = shown
        self._events: queue.SimpleQueue[_Event | None] = queue.SimpleQueue()
        self._tasks: dict[int, _Task] = {}
        self._order: deque[int] = deque()  # -k: the tasks by when they started; else ended
        self._folder: int | None = None
        self._root = ""
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None  # the printing thread's, raised in the run's
        self._consoles: dict[int, Console] = {}

    # --- the run's events (the run's thread) ---------------------------------------

    def opened(self, folder: RunFolder) -> None:
        """The run folder exists: start printing from it."""
        self._root = folder.root
        self._folder = files.open_folder(folder.root)
        self._thread = threading.Thread(target=self._print_all, name="fanout-outputs", daemon=True)
        self._thread.start()

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        self._check()
        self.inner.task_started(spec, attempt, slot)
        self._events.put(("start", spec, attempt, slot))

    def task_ended(self, result: TaskResult) -> None:
        self._check()
        self.inner.task_ended(result)
        if result.attempts:  # a task never started printed nothing
            self._events.put(("end", result.spec, len(result.attempts), 0))

    def close(self) -> None:
        """Print what is left (the run has ended) and stop the printing thread."""
        if self._thread is not None:
            self._events.put(None)
            self._thread.join()
            self._thread = None
        if self._folder is not None:
            os.close(self._folder)
            self._folder = None

    def finish(self, report: RunReport) -> None:
        """fanout's last lines (on stderr), then the reduce's output: data, like the
        tasks', it goes to stdout, after theirs."""
        self.close()
        self.inner.finish(replace(report, reduce=None))
        if report.reduce is not None and self._error is None:
            from fanout_cli.render.reduce import print_reduce_output

            print_reduce_output(Console(sys.stdout, color=False), report)
        if self._error is not None:
            raise self._error  # stdout closed (exit 141), or failed (a full disk: exit 74)

    def _check(self) -> None:
        """The printing thread found stdout closed (`fanout run -k | head`): the run
        stops as for SIGPIPE; it failed to write: the run stops with that error."""
        if self._error is not None:
            raise OutputClosedError("stdout") if isinstance(
                self._error, OutputClosedError) else self._error  # fmt: skip

    # --- the printing thread --------------------------------------------------------

    def _print_all(self) -> None:
        wait = POLL_BUSY
        stop = False
        try:
            while not stop:
                tailing = self.shown.line_buffer and bool(self._tasks)
                try:
                    event = self._events.get(timeout=wait if tailing else None)
                except queue.Empty:
                    event = ("tick", None, 0, 0)
                while True:  # every event waiting, before any file is read
                    if event is None:
                        stop = True
                    else:
                        self._take(*event)
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        break
                moved = self._print_ready(final=stop)
                wait = POLL_BUSY if moved else min(wait * 2, POLL_QUIET)
        except (OutputClosedError, FanoutError) as exc:
            self._error = exc
        except OSError as exc:  # reading the run folder failed (EIO): say so, stop the run
            self._error = IOFailure.of(self._root, exc, "cannot read")
        finally:
            for task in self._tasks.values():
                self._close_streams(task)

    def _take(self, kind: str, spec: TaskSpec | None, attempt: int, slot: int) -> None:
        if spec is None:  # a tick: only time to read the files again
            return
        task = self._tasks.get(spec.seq)
        if kind == "end":
            if task is None:  # ended at once, before its start was seen
                task = self._new(spec, attempt, slot)
            task.ended = True
            if not self.shown.keep_order:
                self._order.append(spec.seq)
            return
        if task is None:
            self._new(spec, attempt, slot)
        elif attempt != task.attempt:  # a retry: the last attempt's files were set aside
            if self.shown.line_buffer:
                self._finish_attempt(task)
            else:
                self._close_streams(task)
            task.attempt = attempt
        else:  # the same attempt again (--memfree queued it again): its files are new
            self._close_streams(task)

    def _new(self, spec: TaskSpec, attempt: int, slot: int) -> _Task:
        prefix = None
        if self.shown.tag or self.shown.tagstring is not None:
            prefix = (self._tag(spec, slot) + "\t").encode("utf-8", "surrogateescape")
        task = self._tasks[spec.seq] = _Task(spec, attempt, prefix)
        if self.shown.keep_order:
            self._order.append(spec.seq)
        return task

    def _tag(self, spec: TaskSpec, slot: int) -> str:
        if self.shown.tagstring is None:  # a --pipe block has no values: no tag, as there
            return "" if spec.stdin is not None else tag_of(spec.task_id, spec.input)
        return render_tagstring(self.shown.tagstring, spec, slot)

    def _print_ready(self, *, final: bool) -> bool:
        """Print what can be printed now; True when anything was."""
        moved = False
        if self.shown.line_buffer and not self.shown.keep_order:
            for seq, task in list(self._tasks.items()):
                moved |= self._print_lines(task, whole=task.ended or final)
                if task.ended or final:
                    self._done(seq)
            return moved
        while self._order:
            task = self._tasks[self._order[0]]
            if not task.ended and not final:
                if self.shown.line_buffer:  # the first unfinished task is printed live
                    moved |= self._print_lines(task, whole=False)
                return moved
            moved |= self._print_lines(task, whole=True)
            self._done(self._order.popleft())
        return moved

    def _done(self, seq: int) -> None:
        task = self._tasks.pop(seq)
        self._close_streams(task)

    # --- reading a task's files -----------------------------------------------------

    def _paths(self, task: TaskSpec, attempt: int | None = None) -> tuple[str, str]:
        return RunFolder(self._root).outputs(task, attempt)

    def _stream(self, task: _Task, which: int, path: str | None = None) -> _Stream | None:
        """The task's stdout (0) or stderr (1), opened when it exists."""
        stream = task.streams[which]
        if stream is None:
            path = path or self._paths(task.spec)[which]
            assert self._folder is not None
            try:
                fd = files.open_at(self._folder, os.path.basename(path), files.READ, path)
            except OSError:  # not there (yet), or a link planted there: nothing to print
                return None
            tagger = None if task.prefix is None else Tagger(task.prefix)
            stream = task.streams[which] = _Stream(fd, tagger, to_stderr=which == 1)
        return stream

    def _finish_attempt(self, task: _Task) -> None:
        """--line-buffer, before a retry: the rest of the attempt that ended, whose
        files now have their `.aN` names, then the new attempt's from their start."""
        for which in (0, 1):
            stream = task.streams[which]
            current = self._paths(task.spec)[which]
            if stream is not None and _same_file(stream.fd, self._folder, current):
                continue  # opened after the rename: it is already the new attempt's
            if stream is None:
                stream = self._stream(task, which, self._paths(task.spec, task.attempt)[which])
            if stream is not None:
                self._copy(stream, _end_of(stream.fd))
                os.close(stream.fd)
            task.streams[which] = None

    def _print_lines(self, task: _Task, *, whole: bool) -> bool:
        """Print the task's whole lines so far (`whole`: everything); stdout first."""
        moved = False
        for which in (0, 1):
            stream = self._stream(task, which)
            if stream is None:
                continue
            end = _end_of(stream.fd) if whole else _line_end(stream)
            moved |= end > stream.printed
            self._copy(stream, end)
            if whole and which == 0 and task.spec.kind == "agent" and stream.last != b"\n":
                self._write(stream, b"\n")  # a model's reply seldom ends its last line
        return moved

    def _copy(self, stream: _Stream, end: int) -> None:
        """Print the stream's bytes from where it got to up to `end`, a chunk at a time."""
        while stream.printed < end:
            data = os.pread(stream.fd, min(CHUNK * 4, end - stream.printed), stream.printed)
            if not data:
                break
            stream.printed += len(data)
            self._write(stream, data)
        stream.scanned = max(stream.scanned, stream.printed)

    def _write(self, stream: _Stream, data: bytes) -> None:
        stream.last = data[-1:]
        if stream.tagger is not None:
            data = stream.tagger(data)
        target = sys.stderr if stream.to_stderr else sys.stdout
        console = self._consoles.get(id(target))
        if console is None or console.stream is not target:
            console = self._consoles[id(target)] = Console(target, color=False)
        console.write_bytes(data)

    def _close_streams(self, task: _Task) -> None:
        for number, stream in enumerate(task.streams):
            if stream is not None:
                os.close(stream.fd)
                task.streams[number] = None


def _line_end(stream: _Stream) -> int:
    """The offset just past the stream's last line end (in a chunk with no newline, a
    carriage return ends a line, as GNU parallel has it); past everything when the
    line after it has gone LINE_CAP bytes without one; `printed` when no line ended."""
    end = stream.printed
    while True:
        data = os.pread(stream.fd, CHUNK, stream.scanned)
        cut = data.rfind(b"\n") + 1 or data.rfind(b"\r") + 1
        if cut:
            end = stream.scanned + cut
        stream.scanned += len(data)
        if len(data) < CHUNK:
            break
    return stream.scanned if stream.scanned - end >= LINE_CAP else end


def _end_of(fd: int) -> int:
    return os.fstat(fd).st_size


def _same_file(fd: int, folder: int | None, path: str) -> bool:
    try:
        here = os.stat(os.path.basename(path), dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    there = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
