"""The timeline's time axis: seconds to x, with the idle hours between a run and its
--resume (or between shards run at different times) cut out and marked, so that each
stretch of work keeps the width it needs."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

BREAK = 14.0  # the width of a cut-out stretch, in the drawing's units
STEPS = (1, 2, 5)


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    x: float  # where it begins in the drawing


class Axis:
    """Maps epoch seconds to x in [left, left + width]."""

    def __init__(self, spans: list[tuple[float, float]], left: float, width: float) -> None:
        merged = _merge(spans)
        self.origin = merged[0][0] if merged else 0.0
        busy = sum(end - start for start, end in merged) or 1.0
        breaks = max(0, len(merged) - 1)
        self.scale = max(width - breaks * BREAK, width / 2) / busy
        self.segments: list[Segment] = []
        x = left
        for start, end in merged:
            self.segments.append(Segment(start, end, x))
            x += (end - start) * self.scale + BREAK
        self._starts = [segment.start for segment in self.segments]

    def x(self, at: float) -> float:
        if not self.segments:
            return 0.0
        index = max(0, bisect.bisect_right(self._starts, at) - 1)
        segment = self.segments[index]
        return segment.x + (min(at, segment.end) - segment.start) * self.scale

    @property
    def breaks(self) -> list[float]:
        """Where each cut-out stretch is drawn (its left edge)."""
        return [s.x + (s.end - s.start) * self.scale for s in self.segments[:-1]]

    def ticks(self, count: int = 8) -> list[tuple[float, float]]:
        """(x, seconds since the run began) at round numbers of seconds."""
        total = sum(s.end - s.start for s in self.segments)
        step = nice_step(total / count) if total > 0 else 1.0
        ticks = []
        for segment in self.segments:
            elapsed = segment.start - self.origin
            first = math.ceil(elapsed / step) * step
            value = first
            while value <= elapsed + (segment.end - segment.start) + 1e-9:
                ticks.append((self.x(segment.start + value - elapsed), value))
                value += step
        return ticks


def nice_step(rough: float) -> float:
    """The round step (1, 2 or 5 times a power of ten) at or above `rough`."""
    power = 10.0 ** math.floor(math.log10(rough))
    for step in STEPS:
        if step * power >= rough:
            return step * power
    return 10.0 * power


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The spans joined where they overlap or the gap between them is small beside the
    whole (under 5 % of it, or 2 s): only long idle stretches are cut out."""
    ordered = sorted((start, max(start, end)) for start, end in spans)
    if not ordered:
        return []
    total = max(end for _, end in ordered) - ordered[0][0]
    slack = max(2.0, 0.05 * total)
    merged = [list(ordered[0])]
    for start, end in ordered[1:]:
        if start - merged[-1][1] <= slack:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def seconds(value: float) -> str:
    """A duration as a person reads it: 0s, 4ms, 0.42s, 12.3s, 4m05s, 1h02m."""
    if value == 0:
        return "0s"
    if value < 0.1:
        return f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{int(value // 3600)}h{int(value % 3600 // 60):02d}m"
