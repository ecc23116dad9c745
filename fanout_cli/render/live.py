"""The human format on a terminal: live progress while the run goes, a table at its end.

The live area is on stderr: a bar of tasks done / total, running and failed counts,
an ETA, and the slowest running tasks. Each task's line scrolls up above it as the task
ends. At the end the area goes away and stdout gets the run as one table that fits
the screen (render.tables), then the verdict line.

render.make_renderer decides when (progress_mode) and imports this module only
then; rich, which draws the area, is imported once the area is first shown. A piped
run and `fanout --help` load neither. What the area and the table show is decided by
plain functions, tested without a terminal."""

from __future__ import annotations

import atexit
import contextlib
import heapq
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from fanout_cli.models import RunReport, TaskResult, TaskSpec, TaskStatus
from fanout_cli.render.console import Console, terminal_text, use_color
from fanout_cli.render.lines import HumanRenderer, task_line
from fanout_cli.render.tables import cell_width, print_table

if TYPE_CHECKING:
    from rich.console import Console as RichConsole
    from rich.live import Live
    from rich.text import Text

    from fanout_cli.options import OutputOptions

REFRESH_SECONDS = 0.25  # at most four redraws a second, and only when something changed
SHOW_AFTER_SECONDS = 0.2  # the area appears once the run has gone on this long
SLOWEST_SHOWN = 3
BAR_CELLS = 30
MIN_BAR_CELLS = 8  # narrower than this, the counts go without a bar
RICH_STYLES = {  # the colours of render.lines' ANSI codes, by rich's names
    TaskStatus.SUCCESS: "green",
    TaskStatus.FAILURE: "red",
    TaskStatus.TIMEOUT: "yellow",
    TaskStatus.CANCELLED: "bright_black",
    TaskStatus.ERROR: "magenta",
}


def live_color(output: OutputOptions, stderr: TextIO) -> bool:
    """--color always|never decide, over NO_COLOR too; auto asks NO_COLOR and stderr."""
    if output.color in ("always", "never"):
        return output.color == "always"
    return use_color(stderr)


# --- what the live area shows ---------------------------------------------------------


@dataclass(frozen=True)
class RunningTask:
    task_id: str
    started: float  # monotonic clock, at its first attempt
    attempt: int


def slowest_running(
    running: Iterable[RunningTask], limit: int = SLOWEST_SHOWN
) -> list[RunningTask]:
    """The tasks running longest, longest first (ties: the one started first)."""
    return heapq.nsmallest(limit, running, key=lambda task: task.started)


def estimate_seconds_left(
    finished: int, finished_seconds: float, remaining: int | None, jobs: int
) -> float | None:
    """Mean duration of the finished tasks x tasks remaining / tasks in parallel.
    None before a task finished, or when the total is not known yet (a stream). The
    last few tasks do not run faster for the slots they leave free: the divisor is at
    most the tasks remaining."""
    if not finished or remaining is None:
        return None
    if remaining <= 0:
        return 0.0
    return finished_seconds / finished * remaining / max(min(jobs, remaining), 1)


def coarse_seconds(seconds: float) -> str:
    """Whole seconds: the live area changes once a second, not at every redraw."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass(frozen=True)
class Snapshot:
    """What the live area shows at one moment; equal snapshots look the same."""

    done: int
    total: int | None
    running: int
    failed: int  # failure, timeout, error
    cancelled: int
    eta: str | None
    slowest: tuple[tuple[str, str, int], ...]  # (task id, time running, attempt)


class ProgressState:
    """The run's counts: written by the runner's thread, read by the redrawing thread."""

    def __init__(
        self, total: int | None, jobs: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.jobs = jobs
        self.clock = clock
        self._lock = threading.Lock()
        self._running: dict[int, RunningTask] = {}  # by seq: at most --jobs of them
        self._done = self._failed = self._cancelled = 0
        self._finished = 0  # tasks that ran (not the ones never started)
        self._finished_seconds = 0.0
        self._lines: list[tuple[TaskStatus, str, str]] = []  # to scroll up at the next redraw

    def started(self, spec: TaskSpec, attempt: int) -> None:
        with self._lock:
            earlier = self._running.get(spec.seq)
            began = self.clock() if earlier is None else earlier.started
            self._running[spec.seq] = RunningTask(spec.task_id, began, attempt)

    def ended(self, result: TaskResult, *, scroll: bool) -> None:
        line = task_line(result)
        with self._lock:
            self._running.pop(result.seq, None)
            self._done += 1
            if result.status is TaskStatus.CANCELLED:
                self._cancelled += 1
            elif result.status is not TaskStatus.SUCCESS:
                self._failed += 1
            if result.attempts:
                self._finished += 1
                self._finished_seconds += result.duration
                if scroll:  # never-started tasks are one line of the final table instead
                    self._lines.append((result.status, *line))

    def take_lines(self) -> list[tuple[TaskStatus, str, str]]:
        """The lines of tasks ended since the last call: (status, status text, the rest)."""
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def snapshot(self) -> Snapshot:
        now = self.clock()
        with self._lock:
            remaining = None if self.total is None else self.total - self._done
            eta = estimate_seconds_left(
                self._finished, self._finished_seconds, remaining, self.jobs
            )
            slowest = slowest_running(self._running.values())
            return Snapshot(
                done=self._done,
                total=self.total,
                running=len(self._running),
                failed=self._failed,
                cancelled=self._cancelled,
                eta=None if eta is None else coarse_seconds(eta + 0.999),  # rounded up
                slowest=tuple(
                    (task.task_id, coarse_seconds(now - task.started), task.attempt)
                    for task in slowest
                ),
            )


Segment = tuple[str, str]  # text, rich style ("" for none)


def live_lines(snapshot: Snapshot, columns: int) -> list[list[Segment]]:
    """The live area, as lines of styled segments: the bar and counts, then the
    slowest running tasks. The bar gets what the counts leave of the width (none on a
    narrow terminal, nor for a stream of unknown length)."""
    head: list[Segment] = []
    if snapshot.total is None:
        head.append((f"{snapshot.done} done", "bold"))
    else:
        percent = 100 if not snapshot.total else snapshot.done * 100 // snapshot.total
        head += [(f"{snapshot.done}/{snapshot.total}", "bold"), (f" {percent}%", "")]
    head += [
        (" · ", ""),
        (f"{snapshot.running} running", "cyan"),
        (" · ", ""),
        (f"{snapshot.failed} failed", "red" if snapshot.failed else ""),
    ]
    if snapshot.cancelled:
        head += [(" · ", ""), (f"{snapshot.cancelled} cancelled", "bright_black")]
    if snapshot.eta is not None:
        head += [(" · ", ""), (f"ETA {snapshot.eta}", "")]
    # One cell for the space after the bar, one left free: some terminals wrap a full line.
    bar_cells = min(BAR_CELLS, columns - 2 - sum(cell_width(text) for text, _ in head))
    if snapshot.total is not None and bar_cells >= MIN_BAR_CELLS:
        filled = bar_cells
        if snapshot.total:
            filled = min(bar_cells, snapshot.done * bar_cells // snapshot.total)
        head[:0] = [
            ("━" * filled, "red" if snapshot.failed else "green"),
            ("─" * (bar_cells - filled), "bright_black"),
            (" ", ""),
        ]
    lines = [head]
    for task_id, running_for, attempt in snapshot.slowest:
        tries = f" (attempt {attempt})" if attempt > 1 else ""
        lines.append([(f"  {running_for:>6}  ", "bright_black"), (task_id + tries, "")])
    return lines


# --- drawing it -----------------------------------------------------------------------


class LiveArea:
    """rich's Live on stderr, redrawn by one thread at most every REFRESH_SECONDS, and
    only when what it shows has changed or task lines wait to scroll up."""

    def __init__(self, state: ProgressState, *, color: bool) -> None:
        self.state = state
        self.color = color
        self._live: Live | None = None
        self._console: RichConsole | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._shown: Snapshot | None = None
        self._broken = False  # the terminal went away: stop drawing, keep running

    def start(self) -> None:
        """Show the area soon. rich is loaded, and the area drawn, by the area's own
        thread: the task being started does not wait for it."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="fanout-progress", daemon=True)
        self._thread.start()
        atexit.register(self.stop)  # an exception past finish() still restores the cursor

    def stop(self) -> None:
        """Scroll up the last lines and take the area off the screen."""
        if self._thread is None or self._stopping.is_set():
            return
        self._stopping.set()
        atexit.unregister(self.stop)
        self._thread.join()
        if self._live is not None:
            self._draw()
            with contextlib.suppress(OSError):  # the terminal closed under us
                self._live.stop()

    def _run(self) -> None:
        # A run over this soon shows no area (it would only flash) and loads no rich.
        if self._stopping.wait(SHOW_AFTER_SECONDS):
            return
        self._open()
        while self._live is not None and not self._stopping.is_set():
            self._draw()
            self._stopping.wait(REFRESH_SECONDS)

    def _open(self) -> None:
        from rich.console import Console as RichConsole
        from rich.live import Live

        if self._stopping.is_set():  # the run ended while rich loaded: the table says it all
            return
        console = RichConsole(
            stderr=True,
            force_terminal=True,  # only shown on a terminal; --color always keeps it so
            no_color=not self.color,
            color_system="auto" if self.color else None,
            highlight=False,
        )
        # stderr writes (warnings) go above the area instead of through it.
        live = Live(
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        try:
            live.start()
        except OSError:
            return
        self._console, self._live = console, live

    def _draw(self) -> None:
        assert self._live is not None and self._console is not None
        if self._broken:
            return
        lines = self.state.take_lines()
        snapshot = self.state.snapshot()
        if not lines and snapshot == self._shown:
            return
        self._shown = snapshot
        try:
            self._live.update(self._text(live_lines(snapshot, self._console.width)), refresh=True)
            if lines:
                self._console.print(self._scrolled(lines), soft_wrap=True)
        except OSError:  # the terminal closed under us (EIO): the run goes on
            self._broken = True

    def _text(self, lines: list[list[Segment]]) -> Text:
        from rich.text import Text

        text = Text(no_wrap=True, overflow="ellipsis")
        for number, segments in enumerate(lines):
            if number:
                text.append("\n")
            for part, style in segments:
                text.append(terminal_text(part), style if self.color else "")
        return text

    def _scrolled(self, lines: list[tuple[TaskStatus, str, str]]) -> Text:
        from rich.text import Text

        text = Text()
        for number, (status, label, rest) in enumerate(lines):
            if number:
                text.append("\n")
            text.append(label, RICH_STYLES[status] if self.color else "")
            text.append(terminal_text(rest))
        return text


class LiveRenderer:
    """The human format when stderr is a terminal: the live area while tasks run, then
    the run as a table on stdout (or, when stdout goes elsewhere, its usual lines)."""

    def __init__(
        self,
        console: Console,
        output: OutputOptions,
        total: int | None,
        jobs: int,
        *,
        lines_on_stdout: bool,
    ) -> None:
        self.console = console
        self.state = ProgressState(total, jobs)
        self.area = LiveArea(self.state, color=live_color(output, sys.stderr))
        self.plain = HumanRenderer(console, output) if lines_on_stdout else None

    def task_started(self, spec: TaskSpec, attempt: int, slot: int) -> None:
        self.state.started(spec, attempt)
        self.area.start()

    def task_ended(self, result: TaskResult) -> None:
        self.state.ended(result, scroll=self.plain is None)
        self.area.start()
        if self.plain is not None:
            self.plain.task_ended(result)

    def finish(self, report: RunReport) -> None:
        self.area.stop()
        if self.plain is not None:
            self.plain.finish(report)
        else:
            print_table(self.console, report, shutil.get_terminal_size())
            if report.reduce is not None:
                from fanout_cli.render.reduce import print_reduce_output

                print_reduce_output(self.console, report)
