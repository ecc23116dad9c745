"""`fanout report` end to end: real runs of the installed `fanout` (retries, timeouts, a
--resume, shards and their merge, a run killed, a run still going, an old journal, a
corrupt journal line), the page they give read back (tests/report_pages.py), and the
errors: one line and a documented exit status."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import (
    FANOUT,
    assert_clean,
    fanout_in_background,
    one_error_line,
    output_dir,
    read_journal,
    run_fanout,
    wait_until,
)
from tests.report_pages import Page, assert_links_resolve, attempts_on_disk, report_of

MIXED = ["run", "-j", "3", "--retries", "1", "--retry-delay", "100ms", "--timeout", "2s",
         "--", "sleep 0.{}; case {} in 3) echo broke >&2; exit 4;; 8) sleep 9;; esac; echo ok {}",
         ":::", "1", "2", "3", "4", "5", "6", "7", "8"]  # fmt: skip


def test_a_run_with_retries_and_a_timeout_draws_a_bar_per_attempt_on_its_slots() -> None:
    run = run_fanout(*MIXED, timeout=60)
    assert run.returncode == 1, run.stderr
    completed, path, page = report_of()
    assert path == run.run_dir / "report.html"
    assert re.fullmatch(r"report: \S+/report\.html \(8 tasks, 10 attempts, \d+ KiB\)\n",
                        completed.stdout), completed.stdout
    assert completed.stderr == ""
    on_disk = attempts_on_disk(run.run_dir)
    assert len(on_disk) == 10  # 3 and 8 tried twice
    bars = page.bars()
    assert sorted((b.attrs["class"].split()[1].removeprefix("st-")) for b in bars) == sorted(
        status for _, _, status in on_disk)
    assert [lane.attrs["data-slot"] for lane in page.lanes()] == ["1", "2", "3"]
    assert len(page.attempt_rows()) == len(bars)
    # Failures first: the failure, then the timeout, with their summaries.
    failures = page.failures()
    assert [item.split()[:2] for item in failures] == [["failure", "3"], ["timeout", "8"]]
    assert "broke" in failures[0] and "timed out after 2s" in failures[1]
    assert page.by_id("verdict").words().startswith("FAIL all-succeed")
    counts = {e.attrs["data-status"]: e.words() for e in page.tags("dd", within="counts")}
    assert counts == {"tasks": "8", "success": "6", "failure": "1", "timeout": "1",
                      "cancelled": "0", "error": "0"}  # fmt: skip
    assert "fanout run -j 3" in page.by_id("command").words()
    assert_links_resolve(page, path.parent)
    # Each bar links to its own task's details file; its tooltip names the task.
    for bar in bars:
        row = page.attempt_rows()[int(bar.attrs["data-i"])]
        task_id, attempt = bar.words().split(" · ")[:2]
        assert row.words().split()[:2] == [task_id, attempt.removeprefix("attempt ")]
        assert bar.attrs["href"] == f"{int(bar.attrs['href'][:4]):04d}-{task_id}.json"
    assert len(page.with_class("backoff", within="timeline")) == 2


def test_the_journal_says_each_attempts_slot_and_no_two_at_once_share_one() -> None:
    run = run_fanout(*MIXED, timeout=60)
    assert run.returncode == 1, run.stderr
    starts = [e for e in read_journal(run.run_dir) if e["event"] == "task_started"]
    assert {e["slot"] for e in starts} == {1, 2, 3}
    details = {json.loads(p.read_text())["seq"]: json.loads(p.read_text())
               for p in run.run_dir.glob("*.json") if p.name != "manifest.json"}  # fmt: skip
    spans = []
    for event in starts:
        attempt = details[event["seq"]]["attempts"][event["attempt"] - 1]
        spans.append((event["slot"], attempt["started_at"], attempt["finished_at"]))
    for slot in (1, 2, 3):
        mine = sorted((a, b) for s, a, b in spans if s == slot)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(mine))


def test_the_report_elsewhere_links_back_into_the_run_folder(tmp_path: Path) -> None:
    run = run_fanout(*MIXED, timeout=60)
    (tmp_path / "public").mkdir()
    _, path, page = report_of("last", "-o", str(tmp_path / "public" / "r.html"))
    assert path == tmp_path / "public" / "r.html"
    assert_links_resolve(page, path.parent)
    assert any(link.startswith("../") for link in page.links())
    printed = run_fanout("report", "last", "-o", "-")
    assert printed.returncode == 0 and printed.stdout.startswith("<!DOCTYPE html>")
    assert_links_resolve(Page(printed.stdout), Path.cwd())
    assert not (run.run_dir / "report.html").exists()


def test_a_resumed_run_draws_both_sessions_and_cuts_the_idle_time_between() -> None:
    first = run_fanout("run", "--run-id", "r", "--", "test {} != 2", ":::", "1", "2", "3")
    assert first.returncode == 1
    journal = first.run_dir / "journal.jsonl"
    # As if the --resume came an hour later: every time in the journal moved back.
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    for event in lines:
        hour, rest = event["time"][11:13], event["time"][13:]
        event["time"] = f"{event['time'][:11]}{(int(hour) - 1) % 24:02d}{rest}"
    journal.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert run_fanout("run", "--resume-failed", "r").returncode == 1
    _, _, page = report_of("r")
    assert len(page.bars()) == 4  # 1, 2, 3, then 2 again
    breaks = page.with_class("break", within="timeline")
    assert len(breaks) == 1  # the hour between is cut out, and marked
    assert "2 sessions (resumed)" in page.by_id("summary").words()


def test_merged_shards_are_drawn_side_by_side_with_their_estimates(tmp_path: Path) -> None:
    values = [":::", *map(str, range(1, 7))]
    earlier = run_fanout("run", "--output-dir", str(tmp_path / "earlier"), "-j", "2", "--",
                         "sleep", "0.{}", *values)  # fmt: skip
    assert earlier.returncode == 0, earlier.stderr
    timings = next((tmp_path / "earlier").iterdir()) / "manifest.json"
    for shard in ("1/2", "2/2"):
        completed = run_fanout("run", "-j", "2", "--shard", shard, "--timings", str(timings),
                               "--", "sleep", "0.{}", *values)  # fmt: skip
        assert completed.returncode == 0, completed.stderr
    merged = run_fanout("merge", *map(str, output_dir().iterdir()))
    assert merged.returncode == 0, merged.stderr
    _, path, page = report_of("last")
    labels = [lane.attrs["data-lane"] for lane in page.lanes()]
    assert labels == ["shard 1/2 · slot 1", "shard 1/2 · slot 2",
                      "shard 2/2 · slot 1", "shard 2/2 · slot 2"]  # fmt: skip
    assert len(page.bars()) == 6
    rows = page.tags("tr", within="shard-table")[1:]
    assert [row.words().split()[:2] for row in rows] == [["shard", "1/2"], ["shard", "2/2"]]
    assert all(row.words().endswith("x") for row in rows), "estimated and actual, side by side"
    assert "summary" in page.by_id("shard-table").ancestors, "the shards are in the header"
    assert_links_resolve(page, path.parent)


def test_a_run_still_going_is_drawn_as_far_as_it_got_and_says_so() -> None:
    args = ("run", "-j", "2", "--", "sh", "-c", "test {} = 1 || sleep 30", ":::", "1", "2", "3")
    with fanout_in_background(*args):
        wait_until(lambda: _ended(1), "task 1 to end")
        completed, _, page = report_of()
    assert completed.stderr.startswith("fanout: warning: run ")
    assert "still going" in completed.stderr
    statuses = sorted(bar.attrs["class"].split()[1] for bar in page.bars())
    assert statuses == ["st-running", "st-running", "st-success"]
    assert page.by_id("verdict").words() == "RUNNING: no verdict yet"


def _ended(seq: int) -> bool:
    runs = list(output_dir().iterdir()) if output_dir().exists() else []
    return bool(runs) and any(e.get("event") == "task_ended" and e.get("seq") == seq
                              for e in read_journal(runs[0], running=True))  # fmt: skip


def test_a_killed_run_draws_its_unfinished_attempts() -> None:
    with fanout_in_background("run", "-j", "2", "--", "sleep 30; : {}", ":::", "a", "b") as process:
        wait_until(lambda: _started(2), "both tasks to start")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    completed, _, page = report_of()
    assert completed.stderr == ""
    assert [bar.attrs["class"] for bar in page.bars()] == ["bar st-unfinished"] * 2
    assert page.by_id("verdict").words().startswith("NO VERDICT")


def _started(count: int) -> bool:
    runs = list(output_dir().iterdir()) if output_dir().exists() else []
    return bool(runs) and sum(e.get("event") == "task_started"
                              for e in read_journal(runs[0], running=True)) >= count  # fmt: skip


def test_an_interrupted_run_draws_its_cancelled_attempts_and_says_so() -> None:
    args = ("run", "-j", "2", "--grace", "1s", "--", "sleep 30; : {}", ":::", "a", "b", "c")
    with fanout_in_background(*args) as process:
        wait_until(lambda: _started(2), "both slots to start a task")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
    completed, _, page = report_of()
    assert completed.stderr == ""
    assert [bar.attrs["class"] for bar in page.bars()] == ["bar st-cancelled"] * 2
    assert "This run was interrupted" in page.by_id("summary").words()
    # c never started: an interrupted run lists the tasks it began (its manifest too).
    assert "2 cancelled (ended by the verdict, a halt or a signal): a, b" in page.by_id(
        "failures").words()


def test_an_old_journal_without_slots_gets_lanes_worked_out_from_the_times() -> None:
    run = run_fanout("run", "-j", "2", "--", "sleep", "0.{}", ":::", "1", "3", "2", "4")
    journal = run.run_dir / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    journal.write_text("".join(json.dumps({k: v for k, v in e.items() if k != "slot"}) + "\n"
                               for e in events))  # fmt: skip
    _, _, page = report_of()
    assert "older than slot numbers" in page.by_id("summary").words()
    assert len(page.lanes()) == 2 and len(page.bars()) == 4


def test_a_corrupt_journal_line_is_named_left_out_and_the_rest_drawn() -> None:
    run = run_fanout("run", "--", "echo", ":::", "a", "b")
    journal = run.run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join([*lines[:2], "{not json\n", *lines[2:]]))
    completed, _, page = report_of()
    assert completed.stderr == f"fanout: warning: {journal}:3: not a JSON event; left out\n"
    assert f"{journal}:3: not a JSON event" in page.by_id("summary").words()
    assert len(page.bars()) == 2


@pytest.mark.parametrize(("args", "message"), [
    (("nope",), "no run 'nope' in"),
    (("last", "-o", "/no/such/folder/r.html"), "--output /no/such/folder/r.html: no such folder"),
    (("last", "-o", "."), "--output .: is a folder"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    run_fanout("run", "--", "echo", ":::", "a")
    line = one_error_line(run_fanout("report", *args))
    assert message in line, line


def test_no_run_at_all_is_one_line_and_exit_2() -> None:
    line = one_error_line(run_fanout("report", "last"))
    assert "no runs in" in line, line


def test_a_folder_that_is_not_a_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    line = one_error_line(run_fanout("report", str(tmp_path)))
    assert str(tmp_path) in line


def test_a_full_disk_is_exit_74_and_no_half_page() -> None:
    run_fanout("run", "--", "echo", ":::", "a")
    completed = run_fanout("report", "last", "-o", "/dev/full")
    assert_clean(completed)
    assert completed.returncode == 74, completed.stderr
    assert completed.stderr.count("\n") == 1 and "/dev/full" in completed.stderr


def test_an_agent_calls_wait_for_a_rate_limit_is_drawn_inside_its_bar() -> None:
    from tests.fake_llm import FakeLLM, Reply, go_offline, rate_limited

    with pytest.MonkeyPatch.context() as patch, FakeLLM() as server:
        go_offline(patch, "LOCAL_KEY")
        server.script(rate_limited(retry_after=0.4), Reply("yes"), Reply("yes"))
        completed = run_fanout("run", "-j", "1", "--prompt", "Say {}", "--model", "m", ":::",
                               "a", "b", env={**server.env(), "FANOUT_OUTPUT_DIR":
                                              str(output_dir())})  # fmt: skip
        assert completed.returncode == 0, completed.stderr
    _, _, page = report_of()
    pauses = page.with_class("pause", within="timeline")
    assert len(pauses) == 1
    first = page.bars()[0]
    assert re.search(r"waited 0\.[34]\ds for the rate limit", first.words()), first.words()
    assert first.attrs["href"].startswith("0001-a")


def test_the_page_on_a_full_standard_output_is_exit_74_in_one_line() -> None:
    run_fanout("run", "--", "echo", ":::", "a")
    with open("/dev/full", "wb") as full:
        completed = subprocess.run([str(FANOUT), "report", "last", "-o", "-"],
                                   stdout=full, stderr=subprocess.PIPE, text=True,
                                   timeout=30, check=False)  # fmt: skip
    assert completed.returncode == 74, completed.stderr
    assert completed.stderr == ("fanout: error: standard output: cannot write: "
                                "No space left on device\n")  # fmt: skip
