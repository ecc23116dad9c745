"""Slot numbers for a journal older than them: worked out from the times.

A journal since issue 21 says on which slot ({%}) each attempt ran. For an older one,
each attempt takes the lowest slot free when it starts, the task's previous slot when
that is free (a task keeps its slot through its back-off): the lanes then show how
busy the slots were, if not which slot ran what."""

from __future__ import annotations

import heapq

from fanout_cli.report.model import Bar


def assign_slots(bars: list[Bar]) -> tuple[int, bool]:
    """(the highest slot used, whether the slots were worked out here)."""
    if all(bar.slot is not None for bar in bars):
        return max((bar.slot or 0 for bar in bars), default=0), False
    busy: list[tuple[float, int]] = []  # (end, slot) of the bars running
    free: list[int] = []
    highest = 0
    previous: dict[int, int] = {}
    for bar in sorted(bars, key=lambda bar: (bar.start, bar.seq)):
        while busy and busy[0][0] <= bar.start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        slot = previous.get(bar.seq)
        if slot is not None and slot in free:
            free.remove(slot)
            heapq.heapify(free)
        elif free:
            slot = heapq.heappop(free)
        else:
            highest += 1
            slot = highest
        bar.slot = previous[bar.seq] = slot
        heapq.heappush(busy, (bar.end, slot))
    return highest, True
