"""The report's parts alone: the time axis, slots worked out for an old journal, the
size limit (10,000 tasks under 2 MB, aggregated above and said so), and what a page
must never hold (a request, an unescaped value)."""

from __future__ import annotations

import itertools
import math
import re

from hypothesis import given
from hypothesis import strategies as st

from fanout_cli.report.axis import Axis, nice_step, seconds
from fanout_cli.report.model import Bar, Files, Part, Report, Task
from fanout_cli.report.page import SIZE_LIMIT, render
from fanout_cli.report.slots import assign_slots
from tests.report_pages import Page


def run_of(count: int, *, jobs: int = 8, task_id: str = "tests/test_module_{}.py",
           summary: str = "{} passed, 0 failed in 0.42s", failing: int = 20) -> Report:  # fmt: skip
    """A run of `count` tasks on `jobs` slots, one in `failing` failed after a retry."""
    bars, tasks = [], []
    clock = [0.0] * jobs
    for seq in range(1, count + 1):
        slot = min(range(jobs), key=clock.__getitem__)
        name = task_id.format(seq)
        failed = seq % failing == 0
        files = Files(f"{seq:04d}-{name[:40]}.json", f"{seq:04d}.stdout", f"{seq:04d}.stderr")
        for attempt in (1, 2) if failed else (1,):
            start = clock[slot]
            clock[slot] += 0.5 + (seq % 7) / 10
            bars.append(Bar(seq, name, attempt, slot + 1, start, clock[slot],
                            "failure" if failed else "success", 1 if failed else 0,
                            summary=summary.format(seq), last=attempt == 2 or not failed,
                            files=files))  # fmt: skip
        tasks.append(Task(seq, name, bars[-1].status, 1.0, 2 if failed else 1, bars[-1].exit_code,
                          bars[-1].summary, files))  # fmt: skip
    end = max(clock)
    part = Part("r", "", "finished", bars, tasks, jobs, [(0.0, end)], started_at=0.0,
                finished_at=end)  # fmt: skip
    counts = {"tasks": count, "success": sum(t.status == "success" for t in tasks)}
    return Report("r", "finished", ["fanout", "run"], "all-succeed", None, counts, [part], 0.0,
                  end)  # fmt: skip


def test_ten_thousand_tasks_keep_a_bar_and_a_row_each_under_two_megabytes() -> None:
    page, mode = render(run_of(10_000, task_id="t{}"))
    assert mode == "compact"
    assert len(page.encode()) < SIZE_LIMIT == 2 * 1024 * 1024
    parsed = Page(page)
    assert len(parsed.bars()) == len(parsed.attempt_rows()) == 10_500
    assert len(parsed.lanes()) == 8


def test_tasks_named_by_test_file_keep_every_bar_and_row_with_summaries_cut() -> None:
    # A bar and a row with a 25-character id and its details file's name take about
    # 200 bytes: at 10,000 tasks the summaries are what gives way, and the page says so.
    page, mode = render(run_of(10_000))
    assert mode == "compact" and len(page.encode()) < SIZE_LIMIT
    parsed = Page(page)
    assert len(parsed.bars()) == len(parsed.attempt_rows()) == 10_500
    assert re.search(r"its summaries cut to \d+ characters|no summaries",
                     parsed.by_id("summary").words())  # fmt: skip


def test_a_page_that_would_pass_the_limit_is_aggregated_and_says_so() -> None:
    report = run_of(10_000, task_id="tests/integration/" + "x" * 46 + "/{}",
                    summary="E" * 500 + " {}", failing=1)  # fmt: skip
    page, mode = render(report)
    assert mode == "aggregate"
    assert len(page.encode()) < SIZE_LIMIT
    assert "Aggregated to stay under 2 MiB" in Page(page).by_id("summary").words()
    parsed = Page(page)
    assert parsed.bars() == [] and parsed.with_class("agg", within="timeline")
    assert len(parsed.lanes()) == 8


def test_a_small_run_gets_links_and_native_tooltips() -> None:
    page, mode = render(run_of(30))
    assert mode == "full"
    parsed = Page(page)
    bars = parsed.bars()
    assert all(bar.tag == "a" and bar.attrs["href"].endswith(".json") for bar in bars)
    assert all(bar.words().startswith(bar.attrs["href"].split("-", 1)[1][:10]) for bar in bars)


def test_the_page_asks_for_nothing_and_forbids_asking() -> None:
    page, _ = render(run_of(50))
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert not re.search(r"url\((?!#)", page), "no url() but the page's own patterns"
    assert "@import" not in page


def test_values_are_escaped_everywhere() -> None:
    page, _ = render(run_of(3, task_id="<script>alert({})</script>",
                            summary="</td><img src=x onerror=alert({})>"))  # fmt: skip
    assert "<script>alert(" not in page and "<img src=x" not in page


def test_the_axis_cuts_out_a_long_idle_stretch_and_keeps_short_gaps() -> None:
    axis = Axis([(0, 10), (11, 20), (3600, 3610)], left=0, width=1000)
    assert len(axis.segments) == 2 and len(axis.breaks) == 1
    assert axis.x(0) == 0 and axis.x(3610) <= 1000
    assert axis.x(20) < axis.x(3600) < axis.x(20) + 20  # an hour drawn as a break
    assert [round(value) for _, value in axis.ticks()][:3] == [0, 5, 10]


@given(st.floats(min_value=1e-3, max_value=1e6))
def test_a_nice_step_is_round_and_not_below(rough: float) -> None:
    step = nice_step(rough)
    assert rough * (1 - 1e-9) <= step < rough * 2.51  # the next of 1, 2, 5, 10, 20, ...
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 6) in (1, 2, 5)


def test_durations_read_as_a_person_reads_them() -> None:
    assert [seconds(v) for v in (0, 0.004, 0.42, 12.34, 245, 3720)] == [
        "0s", "4ms", "0.42s", "12.3s", "4m05s", "1h02m"]  # fmt: skip


def test_slots_worked_out_never_run_two_bars_at_once_on_one_lane() -> None:
    bars = [Bar(seq, str(seq), 1, None, start, start + length, "success")
            for seq, (start, length) in enumerate([(0, 5), (0, 2), (1, 1), (2.5, 1), (2, 3)], 1)]
    highest, worked_out = assign_slots(bars)
    assert worked_out and highest == 3
    for lane in range(1, highest + 1):
        spans = sorted((b.start, b.end) for b in bars if b.slot == lane)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_slots_from_the_journal_are_kept() -> None:
    bars = [Bar(1, "a", 1, 4, 0, 1, "success")]
    assert assign_slots(bars) == (4, False) and bars[0].slot == 4


def test_a_lone_surrogate_in_a_record_is_drawn_not_a_crash() -> None:
    # JSON may hold "\ud800"; Python reads it as a lone surrogate, which UTF-8 cannot encode.
    page, mode = render(run_of(3, task_id="bad\ud800{}", summary="\udcff {}"))
    assert mode == "full" and "bad" in page


def test_a_hundred_thousand_tasks_are_aggregated_under_the_limit() -> None:
    page, mode = render(run_of(100_000, task_id="t{}"))
    assert mode == "aggregate" and len(page.encode()) < SIZE_LIMIT
    parsed = Page(page)
    assert len(parsed.attempt_rows()) == 1_000  # the first attempts that did not succeed
    assert "fanout show r lists every task" in parsed.by_id("summary").words()
