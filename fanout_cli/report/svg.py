"""The drawings, as SVG text: the timeline (a lane per slot, a bar per attempt) and the
histogram of durations. Everything is in the markup, so that it reads without script;
report.page adds the tables that say the same in words.

Three levels of detail, chosen by report.page to keep the file small:
- `full`: each bar is a link to its task's details file with a <title> (the browser's
  own tooltip, with no script) and can take the keyboard's focus;
- `compact`: each bar is a plain rectangle; the script's tooltip and the table's row
  (same index, `data-i`) say what it is;
- `aggregate`: each lane is cut into columns a unit wide, each drawn in the colour of
  the worst status that ran in it, and runs of alike columns are joined."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from fanout_cli.report.axis import Axis, seconds
from fanout_cli.report.model import Bar, Part

WIDTH = 1200.0
LEFT = 70.0  # lane labels
TOP = 8.0
AXIS = 22.0  # tick labels under the lanes
# Worst first: an aggregated column takes the colour of the worst status in it.
SEVERITY = ("failure", "timeout", "error", "unfinished", "cancelled", "requeued", "running",
            "success")  # fmt: skip
Lanes = dict[tuple[int, int | None], float]  # (part, slot) to the lane's top


def lane_height(lanes: int) -> float:
    return 18.0 if lanes <= 24 else max(4.0, 432.0 / lanes)


def lanes_of(parts: Sequence[Part]) -> list[tuple[int, int, str]]:
    """(part index, slot, label) of every lane, shard by shard."""
    lanes: list[tuple[int, int, str]] = []
    for index, part in enumerate(parts):
        prefix = f"{part.label} · " if part.label else ""
        lanes.extend((index, slot, f"{prefix}slot {slot}") for slot in range(1, part.slots + 1))
    return lanes


def timeline(parts: Sequence[Part], bars: Sequence[tuple[int, Bar]], mode: str) -> str:
    """The timeline; `bars` are (part index, bar) in the order of the attempts table."""
    lanes = lanes_of(parts)
    height = lane_height(len(lanes))
    axis = Axis([span for part in parts for span in part.sessions] or
                [(bar.start, bar.end) for _, bar in bars], LEFT, WIDTH - LEFT - 8)  # fmt: skip
    y_of: Lanes = {(part, slot): TOP + row * height for row, (part, slot, _) in enumerate(lanes)}
    total = TOP + len(lanes) * height + AXIS
    out = [f'<svg id="timeline" viewBox="0 0 {WIDTH:.0f} {total:.0f}" '
           f'width="{WIDTH:.0f}" height="{total:.0f}" role="group" '
           f'aria-label="Timeline: {len(bars)} attempts on {len(lanes)} slots; the table '
           f'Attempts says the same in words" data-lanes="{len(lanes)}" data-mode="{mode}">',
           _defs()]  # fmt: skip
    out.extend(_lanes(lanes, y_of, height))
    if mode == "aggregate":
        out.extend(_aggregate(bars, axis, y_of, height))
    else:
        out.extend(_bars(bars, axis, y_of, height, full=mode == "full"))
    out.extend(_axis(axis, TOP + len(lanes) * height))
    out.append("</svg>")
    return "".join(out)


def _defs() -> str:
    return ('<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="2" height="4" class="hatch"/>'
            "</pattern></defs>")  # fmt: skip


def _lanes(lanes: list[tuple[int, int, str]], y_of: Lanes, height: float) -> list[str]:
    out = []
    every = max(1, math.ceil(11 / height))  # a label on every lane, or every few
    for row, (part, slot, label) in enumerate(lanes):
        y = y_of[part, slot]
        out.append(f'<g class="lane" data-lane="{escape(label)}" data-part="{part}" '
                   f'data-slot="{slot}"><rect class="track" x="{LEFT}" y="{y:.1f}" '
                   f'width="{WIDTH - LEFT - 8:.0f}" height="{height - 1:.1f}"/>')  # fmt: skip
        if row % every == 0:
            out.append(f'<text class="label" x="{LEFT - 4}" y="{y + min(height, 14) - 3:.1f}">'
                       f"{escape(label[-14:])}</text>")  # fmt: skip
        out.append("</g>")
    return out


def _bars(
    bars: Sequence[tuple[int, Bar]], axis: Axis, y_of: Lanes, height: float, *, full: bool
) -> list[str]:
    """Each bar (the element with a `data-i`), and the back-off before it, in a group
    translated to its lane. `full`: a group a bar, in the table's order (the order Tab
    takes). Compact: a group a lane, its bars with no height (the style gives it) and a
    success's with no class."""
    lanes: dict[tuple[int, int | None], list[str]] = {}
    ordered: list[str] = []
    previous: dict[tuple[int, int], Bar] = {}
    size = f' height="{height - 1:.1f}"' if full else ""
    for index, (part, bar) in enumerate(bars):
        if (part, bar.slot) not in y_of:
            continue
        out = [] if full else lanes.setdefault((part, bar.slot), [])
        x0, x1 = axis.x(bar.start), axis.x(bar.end)
        before = previous.get((part, bar.seq))
        if before is not None and bar.start > before.end and before.slot == bar.slot:
            waited = bar.start - before.end
            out.append(_backoff(axis.x(before.end), x0, height / 2, waited, full))
        previous[part, bar.seq] = bar
        rect = f'x="{short(x0)}" width="{short(max(x1 - x0, 1.0))}"{size}'
        pauses = "".join(
            f'<rect class="pause" x="{axis.x(a):.1f}" '
            f'width="{max(axis.x(b) - axis.x(a), 1.0):.1f}"{size}/>' for a, b in bar.pauses
        )
        if full:
            href = f' href="{escape(bar.files.details)}"' if bar.files.details else ""
            title = escape(describe(bar))
            out.append(f'<a class="bar st-{bar.status}" data-i="{index}"{href}>'
                       f"<title>{title}</title><rect {rect}/>{pauses}</a>")  # fmt: skip
            ordered.append(_group(y_of[part, bar.slot], out))
        else:
            status = "" if bar.status == "success" else f' class="st-{bar.status}"'
            out.append(f'<rect{status} data-i="{index}" {rect}/>{pauses}')
    if full:
        return ordered
    style = f"<style>#timeline .bars rect{{height:{height - 1:.1f}px}}</style>"
    return [style, *(_group(y_of[lane], items) for lane, items in lanes.items())]


def _group(y: float, items: list[str]) -> str:
    return f'<g class="bars" transform="translate(0,{y:.1f})">{"".join(items)}</g>'


def short(value: float) -> str:
    """A coordinate to a tenth, without a trailing .0 (bytes count at 10,000 bars)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _backoff(x0: float, x1: float, y: float, waited: float, full: bool) -> str:
    title = f"<title>back-off {seconds(waited)}</title>" if full else ""
    return (f'<line class="backoff" x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}">'
            f"{title}</line>")  # fmt: skip


def describe(bar: Bar) -> str:
    """What a bar's tooltip says."""
    text = f"{bar.task_id} · attempt {bar.attempt} · {seconds(bar.duration)} · {bar.status}"
    if bar.exit_code is not None:
        text += f" (exit {bar.exit_code})"
    said = bar.summary or bar.reason
    if bar.pauses:
        said = f"waited {seconds(sum(b - a for a, b in bar.pauses))} for the rate limit; {said}"
    return f"{text}: {said}" if said else text


def _aggregate(
    bars: Sequence[tuple[int, Bar]], axis: Axis, y_of: Lanes, height: float
) -> list[str]:
    rank = {status: index for index, status in enumerate(SEVERITY)}
    columns: dict[tuple[int, int | None], dict[int, int]] = {}
    for part, bar in bars:
        lane = columns.setdefault((part, bar.slot), {})
        worst = rank.get(bar.status, 0)
        for column in range(int(axis.x(bar.start)), int(axis.x(bar.end)) + 1):
            lane[column] = min(lane.get(column, worst), worst)
    out: list[str] = []
    for (part, slot), lane in columns.items():
        y = y_of.get((part, slot))
        if y is None:
            continue
        runs: list[list[int]] = []  # [first column, last column, rank]
        for column in sorted(lane):
            if runs and runs[-1][1] == column - 1 and runs[-1][2] == lane[column]:
                runs[-1][1] = column
            else:
                runs.append([column, column, lane[column]])
        out.extend(f'<rect class="agg st-{SEVERITY[worst]}" x="{first}" y="{y:.1f}" '
                   f'width="{last - first + 1}" height="{height - 1:.1f}"/>'
                   for first, last, worst in runs)  # fmt: skip
    return out


def _axis(axis: Axis, y: float) -> list[str]:
    out = [f'<g class="axis"><line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>']
    for x, value in axis.ticks():
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y:.1f}" y2="{y + 4:.1f}"/>'
                   f'<text x="{x:.1f}" y="{y + 15:.1f}">{seconds(value)}</text>')  # fmt: skip
    out.extend(f'<text class="break" x="{x + 3:.1f}" y="{y - 2:.1f}">⋯<title>idle time cut '
               "out (a --resume later, or shards run apart)</title></text>" for x in axis.breaks)
    out.append("</g>")
    return out


def histogram(durations: Sequence[float]) -> str:
    """Task durations in 20 bins (log-spaced when the longest is over 50 times the shortest)."""
    values = [value for value in durations if value >= 0]
    if not values:
        return ""
    low, high = min(values), max(values)
    logarithmic = low > 0 and high / low > 50
    bins = 20
    edges = [low * (high / low) ** (i / bins) for i in range(bins + 1)] if logarithmic else [
        low + (high - low) * i / bins for i in range(bins + 1)]  # fmt: skip
    counts = [0] * bins
    for value in values:
        if logarithmic:
            index = int(math.log(value / low) / math.log(high / low) * bins) if high > low else 0
        else:
            index = int((value - low) / (high - low) * bins) if high > low else 0
        counts[min(index, bins - 1)] += 1
    tallest = max(counts)
    out = [f'<svg id="histogram" viewBox="0 0 420 150" width="420" height="150" role="img" '
           f'aria-label="Durations of {len(values)} tasks, {seconds(low)} to {seconds(high)}'
           f'{" (log scale)" if logarithmic else ""}">']  # fmt: skip
    for index, count in enumerate(counts):
        tall = 110 * count / tallest
        out.append(f'<rect class="hbin" x="{10 + index * 20}" y="{120 - tall:.1f}" width="18" '
                   f'height="{tall:.1f}"><title>{count} task{"s" * (count != 1)}: '
                   f"{seconds(edges[index])} to {seconds(edges[index + 1])}"
                   "</title></rect>")  # fmt: skip
    scale = "log scale" if logarithmic else ""
    out.append(f'<text x="10" y="138">{seconds(low)}</text><text x="210" y="138" '
               f'class="middle">{scale}</text><text x="410" y="138" class="end">{seconds(high)}'
               "</text></svg>")  # fmt: skip
    return "".join(out)
