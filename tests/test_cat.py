"""`fanout cat RUN [TASK...]` end to end, with the installed `fanout` and real tasks:
the final attempt's stdout of every task, in input order, byte for byte; --tag as GNU
parallel's `-k --tag` prints it (the oracle, byte for byte); --status, --stderr, TASK
selection; resumed, merged and unfinished runs; a closed stdout; a planted link."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fake_llm import (
    FakeLLM,
    fake_llm_fixture,  # noqa: F401 -- the `fake_llm` fixture, found by pytest by name
)
from tests.helpers import (
    FANOUT,
    PARALLEL,
    Completed,
    assert_clean,
    fanout_in_background,
    needs_parallel,
    one_error_line,
    output_dir,
    run_fanout,
    wait_until,
)


def cat(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`fanout cat ARGS...`, its stdout as bytes."""
    return subprocess.run([str(FANOUT), "cat", *args], capture_output=True, timeout=60,
                          check=False)  # fmt: skip


def cat_out(*args: str) -> bytes:
    done = cat(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"", done.stderr
    return done.stdout


def run(*args: str, code: int = 0) -> Completed:
    completed = run_fanout("run", "-q", *args)
    assert completed.returncode == code, completed.stderr
    assert_clean(completed)
    return completed


def parallel_out(*args: str) -> bytes:
    assert PARALLEL is not None
    done = subprocess.run([PARALLEL, *args], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- order and bytes --------------------------------------------------------------------


def test_prints_every_tasks_stdout_in_input_order_though_they_end_out_of_order() -> None:
    # The first value sleeps longest: with -j 4 the tasks end in the reverse order.
    run("-j", "4", "--", "sh", "-c", 'sleep "0.$((5 - $1))"; echo "out $1"; echo "two $1"',
        "sh", "{}", ":::", "1", "2", "3", "4")  # fmt: skip
    assert cat_out("last") == b"".join(b"out %d\ntwo %d\n" % (n, n) for n in range(1, 5))


def test_only_the_final_attempt_of_a_retried_task() -> None:
    flaky = 'if [ -e tried ]; then echo final; else touch tried; echo first; exit 1; fi'
    completed = run("--retries", "1", "--retry-delay", "0", "--", "sh", "-c", flaky, ":::", "x")
    assert (completed.run_dir / "0001-x.a1.stdout").read_bytes() == b"first\n"
    assert cat_out("last") == b"final\n"


def test_binary_output_byte_for_byte_across_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 2000 + b"\r\n\x00no newline at the end"  # over 4 chunks
    (tmp_path / "blob").write_bytes(data)
    run("--", "cat", "{}", ":::", "blob", "blob")
    assert cat_out("last") == data + data


def test_a_task_without_output_prints_nothing() -> None:
    run("--", "sh", "-c", 'test "$1" = b || echo "$1"', "sh", "{}", ":::", "a", "b", "c")
    assert cat_out("last") == b"a\nc\n"


def test_agent_replies_are_the_tasks_stdout(fake_llm: FakeLLM) -> None:
    env = {**fake_llm.env(), "FANOUT_OUTPUT_DIR": str(output_dir())}
    completed = run_fanout("run", "-q", "--prompt", "Say {}", "--base-url", fake_llm.openai_url,
                           "--model", "m", ":::", "a", "b", env=env)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert cat_out("last") == b"echo: Say aecho: Say b"
    assert cat_out("last", "--tag") == b"a\techo: Say ab\techo: Say b"


# --- --tag, against GNU parallel --------------------------------------------------------


@needs_parallel
@pytest.mark.parametrize(
    ("command", "sources"),
    [
        pytest.param("printf 'x%s\\ny %s\\n' {} {}", [":::", "a", "b c", "d"], id="one-source"),
        pytest.param("printf '%s-%s\\n' {1} {2}", [":::", "a", "b", ":::", "1", "2"],
                     id="two-sources"),
        pytest.param("printf '%s\\nlast %s' {} {}", [":::", "a", "b"],
                     id="last-line-without-newline"),
        pytest.param("printf ''", [":::", "quiet", "also"], id="no-output"),
        pytest.param("printf '%s\\n' {} {}", [":::", "\u00e9t\u00e9", "a\tb"], id="utf-8-and-tab"),
    ],
)  # fmt: skip
def test_tag_prints_as_parallel_keep_order_tag(command: str, sources: list[str]) -> None:
    """The same shell command line for both: fanout runs it under sh -c, as parallel does."""
    run("-j", "3", "--", command, *sources)
    assert cat_out("last", "--tag") == parallel_out("-k", "--tag", command, *sources)


@needs_parallel
def test_tag_of_a_pipe_block_is_empty_as_in_parallel() -> None:
    lines = b"one\ntwo\nthree\n"
    completed = run_fanout("run", "-q", "--pipe", "-L", "1", "--", "cat", input=lines)
    assert completed.returncode == 0, completed.stderr
    expected = subprocess.run([str(PARALLEL), "-k", "--tag", "--pipe", "-L", "1", "cat"],
                              input=lines, capture_output=True, check=True).stdout  # fmt: skip
    assert cat_out("last", "--tag") == expected


def test_tag_of_a_task_file_task_is_its_id(tmp_path: Path) -> None:
    (tmp_path / "tasks.toml").write_text(
        '[[task]]\nid = "lint"\ncmd = "echo ok"\n\n[[task]]\nid = "unit"\n'
        "cmd = ['printf', 'a\\nb']\n"
    )
    run("tasks.toml")
    assert cat_out("last", "--tag") == b"lint\tok\nunit\ta\nunit\tb"


# --- choosing what to print -------------------------------------------------------------


def _mixed_run() -> Completed:
    """Four tasks: 1 and 3 succeed, 2 fails, 4 times out; each writes to both streams."""
    script = ('echo "out $1"; echo "err $1" >&2; '
              'case $1 in 2) exit 3;; 4) exec sleep 30;; esac')  # fmt: skip
    return run("--timeout", "1s", "--", "sh", "-c", script, "sh", "{}", ":::", "1", "2", "3", "4",
               code=1)  # fmt: skip


def test_status_stderr_and_their_combinations() -> None:
    _mixed_run()
    assert cat_out("last", "--status", "success") == b"out 1\nout 3\n"
    assert cat_out("last", "--status", "failure,timeout") == b"out 2\nout 4\n"
    assert cat_out("last", "--status", "timeout", "--status", "success") == b"out 1\nout 3\nout 4\n"
    assert cat_out("last", "--stderr") == b"err 1\nerr 2\nerr 3\nerr 4\n"
    assert cat_out("last", "--stderr", "--status", "failure", "--tag") == b"2\terr 2\n"
    assert cat_out("last", "--status", "cancelled") == b""


def test_tasks_named_by_id_seq_or_details_file_in_the_order_given() -> None:
    completed = run("--", "echo", "{}", ":::", "a", "b", "c")
    assert cat_out("last", "c", "1", "0002-b.json") == b"c\na\nb\n"
    assert cat_out(str(completed.run_dir), "0002-b", "--tag") == b"b\tb\n"
    assert cat_out(str(completed.run_dir / "manifest.json"), "a") == b"a\n"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(["nosuchrun"], "nosuchrun", id="unknown-run"),
        pytest.param(["last", "a", "zzz"], "zzz", id="unknown-task"),
        pytest.param(["last", "--status", "succeeded"], "succeeded", id="unknown-status"),
        pytest.param(["last", "--status", "success,"], "''", id="empty-status"),
    ],
)
def test_what_is_not_there_is_one_error_line(args: list[str], names: str) -> None:
    run("--", "echo", "{}", ":::", "a")
    completed = run_fanout("cat", *args)
    assert names in one_error_line(completed)
    assert completed.stdout == ""


def test_no_runs_at_all_is_one_error_line() -> None:
    assert "no runs" in one_error_line(run_fanout("cat", "last"))


# --- runs resumed, merged, unfinished ---------------------------------------------------


def test_a_resumed_run_prints_each_tasks_latest_result(tmp_path: Path) -> None:
    script = 'if [ "$1" = b ] && [ ! -e fixed ]; then echo broken; exit 1; fi; echo "ok $1"'
    run("--run-id", "r", "--", "sh", "-c", script, "sh", "{}", ":::", "a", "b", "c", code=1)
    assert cat_out("r") == b"ok a\nbroken\nok c\n"
    (tmp_path / "fixed").touch()
    again = run_fanout("run", "-q", "--resume-failed", "r")
    assert again.returncode == 0, again.stderr
    assert cat_out("r") == b"ok a\nok b\nok c\n"


def test_a_merged_run_prints_each_task_from_the_run_it_came_from() -> None:
    values = [str(n) for n in range(1, 9)]
    for index in (1, 2):
        run("--shard", f"{index}/2", "--run-id", f"shard-{index}", "--", "echo", "v{}",
            ":::", *values)  # fmt: skip
    merged = run_fanout("merge", "shard-1", "shard-2", "--format", "json")
    assert merged.returncode == 0, merged.stderr
    assert cat_out("last") == b"".join(b"v%s\n" % value.encode() for value in values)
    assert cat_out("last", "--tag", "7") == b"7\tv7\n"
    shutil.rmtree(output_dir() / "shard-2")
    gone = run_fanout("cat", "last")
    assert "shard-2: no such folder" in one_error_line(gone)
    assert gone.stdout == "v1\n"  # task 2 is the first of shard 2


def test_a_run_still_going_prints_what_has_ended_and_says_so() -> None:
    script = 'if [ "$1" = 2 ]; then touch started; exec sleep 30; fi; echo "v$1"'
    with fanout_in_background("run", "-q", "-j", "2", "--run-id", "going", "--", "sh", "-c",
                              script, "sh", "{}", ":::", "1", "2", "3") as process:  # fmt: skip
        wait_until(lambda: Path("started").exists() and b"v3" in cat("going").stdout,
                   "tasks 1 and 3 to end while 2 runs", process=process)
        done = cat("going")
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"v1\nv3\n"
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1 and "still running" in lines[0], lines
        process.kill()
        process.wait()
    crashed = cat("going")
    assert crashed.stdout == b"v1\nv3\n"
    assert b"did not finish" in crashed.stderr


# --- its own output, and what it will not read ------------------------------------------


def test_a_closed_stdout_ends_it_quietly() -> None:
    run("--", "sh", "-c", 'yes "line $1" | head -n 20000', "sh", "{}", ":::", "1", "2", "3")
    reader = subprocess.Popen([str(FANOUT), "cat", "last"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)  # fmt: skip
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline() == b"line 1\n"
    reader.stdout.close()
    stderr = reader.stderr.read()
    reader.stderr.close()
    assert reader.wait(timeout=30) == 141
    assert stderr == b""


def test_a_link_planted_as_a_stdout_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("do not print me\n")
    completed = run("--", "echo", "{}", ":::", "a", "b", "c")
    planted = completed.run_dir / "0002-b.stdout"
    planted.unlink()
    planted.symlink_to(secret)
    done = run_fanout("cat", "last")
    assert "0002-b.stdout" in one_error_line(done) and "link" in done.stderr
    assert done.stdout == "a\n"  # the tasks before it; nothing of the link's target
    os.mkfifo(completed.run_dir / "0003-c.stdout.fifo")
    planted.unlink()
    os.rename(completed.run_dir / "0003-c.stdout.fifo", planted)
    started = time.monotonic()
    assert "not a regular file" in one_error_line(run_fanout("cat", "last", "b"))
    assert time.monotonic() - started < 10  # a FIFO is not waited on


# --- past 9,999 tasks -------------------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_and_more_tasks_in_order_by_cat_and_by_a_glob() -> None:
    count = 10_050
    values = "".join(f"{n}\n" for n in range(1, count + 1)).encode()
    completed = run_fanout("run", "-q", "-j", "8", "--", "echo", input=values, timeout=240)
    assert completed.returncode == 0, completed.stderr
    expected = values
    assert cat_out("last") == expected
    globbed = subprocess.run("cat -- *.stdout", shell=True, cwd=completed.run_dir,
                             env={**os.environ, "LC_ALL": "C"}, capture_output=True,
                             check=True).stdout  # fmt: skip
    assert globbed == expected
    assert cat_out("last", "10000", "9999") == b"10000\n9999\n"
    assert (completed.run_dir / "a10000-10000.stdout").read_bytes() == b"10000\n"
    shown = run_fanout("show", "last", "a10000-10000")
    assert shown.returncode == 0 and "10000" in shown.stdout, shown.stderr
