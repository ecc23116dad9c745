"""--pipe: standard input cut into blocks, each block one task's stdin.

End to end through the installed binary with real child processes, with GNU parallel
as the oracle for where the blocks are cut; the cutter itself is also tested alone
(it is pure), with a property test over random inputs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fanout_cli.errors import UsageError
from fanout_cli.executors.feed import start_fed, wait_feeding
from fanout_cli.models import StdinBlock
from fanout_cli.sources.blocks import BlockCutter
from fanout_cli.sources.pipe import parse_block_size, parse_recend
from tests.helpers import (
    FANOUT,
    PARALLEL,
    Completed,
    assert_clean,
    needs_parallel,
    one_error_line,
    output_dir,
    read_journal,
    run_fanout,
    stop_process,
    wait_until,
    write_tasks,
)

LINES = b"a\nbb\nccc\ndddd\neeeee\nffffff\nggggggg\nhhhhhhhh\n"


def block_outputs(completed: Completed) -> list[bytes]:
    """Each task's stdout, in block order."""
    rows = sorted(completed.manifest()["tasks"], key=lambda row: row["seq"])
    outputs = []
    for row in rows:
        details = completed.details(row["details_file"])
        outputs.append((completed.run_dir / details["stdout"]["path"]).read_bytes())
    return outputs


def fanout_counts(data: bytes, *options: str) -> list[int]:
    shutil.rmtree(output_dir(), ignore_errors=True)  # one run folder to read
    completed = run_fanout("run", "-q", "--pipe", *options, "--", "wc", "-c", input=data)
    assert completed.returncode == 0, completed.stderr
    return [int(output) for output in block_outputs(completed)]


def parallel_counts(data: bytes, *options: str) -> list[int]:
    assert PARALLEL is not None
    completed = subprocess.run([PARALLEL, "--pipe", "-k", *options, "wc", "-c"], input=data,
                               capture_output=True, check=True, timeout=60)  # fmt: skip
    return [int(line) for line in completed.stdout.split()]


# --- the cut points, with GNU parallel as the oracle --------------------------------------


@needs_parallel
@pytest.mark.parametrize("block", ["1", "3", "5", "10", "12", "20", "1k"])
def test_block_cut_points_are_gnu_parallels(block: str) -> None:
    # Small blocks hold a record or two; a record longer than the block grows it.
    assert fanout_counts(LINES, "--block", block) == parallel_counts(LINES, "--block", block)


@needs_parallel
def test_a_long_record_grows_the_block_as_gnu_parallel_does() -> None:
    data = b"a\n" + b"b" * 40 + b"\n" + b"c\nd\ne\nf\ng\nh\ni\nj\nk\n" + b"no end"
    assert fanout_counts(data, "--block", "4") == parallel_counts(data, "--block", "4")


@needs_parallel
def test_records_per_block_are_gnu_parallels_records() -> None:
    data = b"".join(b"%d\n" % n for n in range(1, 21))
    # GNU parallel names it -N with --pipe; fanout's -N is values per command.
    assert fanout_counts(data, "-L", "3") == parallel_counts(data, "-N", "3")
    assert fanout_counts(data, "--block-records", "7") == parallel_counts(data, "-N", "7")


@needs_parallel
def test_record_end_escapes_are_gnu_parallels() -> None:
    data = b"one\0two\0three\0" * 5 + b"four"
    assert (fanout_counts(data, "--block", "10", "--recend", "\\0")
            == parallel_counts(data, "--block", "10", "--recend", "\\0"))  # fmt: skip
    data = b"a;;b;;cc;;ddd;;" * 4
    assert (fanout_counts(data, "--block", "9", "--recend", ";;")
            == parallel_counts(data, "--block", "9", "--recend", ";;"))  # fmt: skip


@needs_parallel
def test_dry_run_prints_what_gnu_parallel_prints() -> None:
    completed = run_fanout("run", "--dry-run", "--pipe", "--block", "10", "--", "echo", "{#}",
                           input=LINES)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert PARALLEL is not None
    gnu = [PARALLEL, "-k", "--dry-run", "--pipe", "--block", "10", "echo", "{#}"]
    expected = subprocess.run(gnu, input=LINES, capture_output=True, check=True).stdout
    assert completed.stdout == expected.decode()
    assert completed.run_dirs() == []


def test_empty_input_is_no_task() -> None:
    completed = run_fanout("run", "--pipe", "--format", "json", "--", "wc", "-c", input=b"")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["verdict"]["counts"]["tasks"] == 0


# --- the blocks reach the tasks whole -----------------------------------------------------


def test_each_task_gets_its_block_as_stdin_with_number_id_and_record() -> None:
    data = b"".join(b"line %d\n" % n for n in range(1, 1001))  # 9 + 90*... bytes
    completed = run_fanout("run", "--pipe", "--block", "1k", "-j", "3", "--",
                           "sh", "-c", "cat; echo block {#}", input=data)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    outputs = block_outputs(completed)
    blocks = [output.rsplit(b"block ", 1) for output in outputs]
    assert b"".join(block for block, _ in blocks) == data
    assert [int(number) for _, number in blocks] == list(range(1, len(outputs) + 1))
    rows = sorted(completed.manifest()["tasks"], key=lambda row: row["seq"])
    assert [row["task_id"] for row in rows] == [f"block-{n}" for n in range(1, len(rows) + 1)]
    details = completed.details(rows[1]["details_file"])
    block = blocks[1][0]
    assert details["input"] == {"block": 2, "bytes": len(block), "records": block.count(b"\n")}
    assert details["command"] == ["sh", "-c", "cat; echo block 2"]


def test_binary_blocks_pass_byte_for_byte() -> None:
    data = bytes(range(256)) * 300 + b"\r\n\0\xff"
    completed = run_fanout("run", "-q", "--pipe", "--block", "2k", "--", "cat", input=data)
    assert completed.returncode == 0, completed.stderr
    outputs = block_outputs(completed)
    assert b"".join(outputs) == data
    assert all(output.endswith(b"\n") for output in outputs[:-1])


def test_a_task_that_does_not_read_its_stdin_ends_cleanly() -> None:
    data = b"x" * 1023 + b"\n"
    started = time.monotonic()
    completed = run_fanout("run", "--pipe", "--block", "4M", "-j", "2", "--", "true",
                           input=data * 8192)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert_clean(completed)
    assert "Broken pipe" not in completed.stderr and "EPIPE" not in completed.stderr
    assert len(completed.manifest()["tasks"]) == 2
    assert time.monotonic() - started < 20


def test_a_retry_gets_the_same_block_again() -> None:
    data = b"".join(b"%04d\n" % n for n in range(1, 401))
    # The first attempt reads a part of its block and fails; the second copies it.
    script = "if [ -e tried{#} ]; then cat; else touch tried{#}; head -c 7 >/dev/null; exit 1; fi"
    completed = run_fanout("run", "-q", "--pipe", "--block", "1k", "--retries", "1",
                           "--retry-delay", "1ms", "--", script, input=data)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert b"".join(block_outputs(completed)) == data


def first_task_started() -> bool:
    journals = list(output_dir().glob("*/journal.jsonl"))
    return any(event["event"] == "task_started" for journal in journals
               for event in read_journal(journal.parent, running=True))  # fmt: skip


def test_the_first_block_runs_before_input_ends_and_reading_waits_for_a_slot() -> None:
    block = 256 * 1024
    written = [0]
    with subprocess.Popen(  # a task that holds its slot until told
        [str(FANOUT), "run", "-q", "--pipe", "--block", "256k", "-j", "1", "--",
         "sh", "-c", "cat >/dev/null; while [ ! -e go ]; do sleep 0.05; done"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ) as process:  # fmt: skip
        assert process.stdin is not None

        def feed() -> None:
            assert process.stdin is not None
            try:
                chunk = (b"y" * 1023 + b"\n") * (block // 1024)
                for _ in range(64):  # 16 MiB in all
                    process.stdin.write(chunk)
                    written[0] += len(chunk)
                process.stdin.close()
            except (BrokenPipeError, ValueError):
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        wait_until(first_task_started, "the first block's task to start", process=process)
        time.sleep(1.0)
        # The running block, the one waiting for a slot, the one being cut, the pipes.
        assert written[0] < 6 * block, written[0]
        Path("go").touch()
        writer.join(timeout=60)
        process.wait(timeout=60)
        stop_process(process)
    assert process.returncode == 0


# --- the blocks' concatenation is stdin: a property ---------------------------------------

recends = st.sampled_from([b"\n", b"\0", b";;", b"\r\n", b"ab"])
inputs = st.lists(st.sampled_from([b"\n", b"\0", b";", b"a", b"b", b"\r", b"xyz", b"\xff"]),
                  max_size=200).map(b"".join)  # fmt: skip


def cut(data: bytes, size: int, recend: bytes, records: int | None = None,
        chunk: int = 7) -> list[bytes]:  # fmt: skip
    cutter = BlockCutter(size, recend, records)
    blocks = []
    for start in range(0, len(data), chunk):
        blocks += [block for block, _ in cutter.feed(data[start : start + chunk])]
    return blocks + [block for block, _ in cutter.finish()]


@given(data=inputs, size=st.integers(1, 40), recend=recends, chunk=st.integers(1, 50))
def test_blocks_concatenate_to_the_input_and_never_split_a_record(
    data: bytes, size: int, recend: bytes, chunk: int
) -> None:
    blocks = cut(data, size, recend, chunk=chunk)
    assert b"".join(blocks) == data
    assert all(blocks)
    for block in blocks[:-1]:
        assert block.endswith(recend)


@given(data=inputs, records=st.integers(1, 6), recend=recends)
def test_records_per_block_concatenate_to_the_input(
    data: bytes, records: int, recend: bytes
) -> None:
    blocks = cut(data, 16, recend, records)
    assert b"".join(blocks) == data
    for block in blocks[:-1]:
        assert block.endswith(recend)
        assert block.count(recend) == records


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=inputs, size=st.integers(1, 30))
def test_blocks_through_real_tasks_concatenate_to_stdin(data: bytes, size: int) -> None:
    shutil.rmtree(output_dir(), ignore_errors=True)  # one run folder to read
    completed = run_fanout("run", "-q", "--pipe", "--block", str(size), "--", "cat", input=data)
    assert completed.returncode == 0, completed.stderr
    blocks = block_outputs(completed) if data else []
    assert b"".join(blocks) == data
    assert all(block.endswith(b"\n") for block in blocks[:-1])


# --- the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [
    ("1", 1), ("10", 10), ("1k", 1000), ("1K", 1024), ("1Ki", 1024), ("1M", 1 << 20),
    ("1m", 10**6), ("2G", None), ("1G", 1 << 30), ("1g", 10**9), ("1.5k", 1500),
])  # fmt: skip
def test_block_sizes_read_as_gnu_parallel_reads_them(text: str, size: int | None) -> None:
    if size is None:
        with pytest.raises(UsageError, match="at most 1G"):
            parse_block_size(text)
    else:
        assert parse_block_size(text) == size


@pytest.mark.parametrize("text", ["0", "", "x", "-1", "1KB", "0.1", "1 M", "nan"])
def test_bad_block_sizes_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--block"):
        parse_block_size(text)


def test_record_ends_take_gnu_parallels_escapes() -> None:
    assert parse_recend("\\n") == b"\n"
    assert parse_recend("\\0") == b"\0"
    assert parse_recend("\\r\\n") == b"\r\n"
    assert parse_recend("\\t|\\\\") == b"\t|\\"
    assert parse_recend("\\x") == b"\\x"
    assert parse_recend("é") == "é".encode()
    with pytest.raises(UsageError, match="--recend"):
        parse_recend("")


# --- what --pipe refuses ------------------------------------------------------------------


@pytest.mark.parametrize(("args", "named"), [
    (("--block", "0"), "--block"),
    (("--block", "3G"), "--block"),
    (("--block", "lots"), "--block"),
    (("-L", "0"), "--block-records"),
    (("--block-records", "x"), "--block-records"),
    (("--block", "1k", "-L", "2"), "--block-records"),
    (("--recend", ""), "--recend"),
    (("-0",), "--recend"),
    (("--executor", "dask://127.0.0.1:1"), "--executor"),
    (("--shard", "1/2"), "--shard"),
    (("--order", "longest-first"), "--order"),
])  # fmt: skip
def test_bad_pipe_options_are_one_line(args: tuple[str, ...], named: str) -> None:
    completed = run_fanout("run", "--pipe", *args, "--", "wc", "-c", input=b"a\n")
    assert named in one_error_line(completed, no_run_folder=True)


@pytest.mark.parametrize("word", ["{}", "{1}", "{.}", "x{/}", "{//}", "{/.}", "{2/.}", "{##}"])
def test_a_value_replacement_string_has_no_value_with_pipe(word: str) -> None:
    completed = run_fanout("run", "--pipe", "--", "echo", word, input=b"a\n")
    line = one_error_line(completed, no_run_folder=True)
    assert "--pipe" in line and word.lstrip("x") in line


@pytest.mark.parametrize("args", [
    ("--", "echo", ":::", "a"),
    ("--glob", "*", "--", "echo"),
    ("tasks.toml",),
    ("--prompt", "say {}"),
    ("--agent-cli", "claude", "--prompt", "x"),
    ("--",),
])  # fmt: skip
def test_pipe_reads_stdin_and_runs_a_command(args: tuple[str, ...]) -> None:
    write_tasks(Path("tasks.toml"), '[[task]]\ncmd = ["true"]\n')
    completed = run_fanout("run", "--pipe", *args, input=b"a\n")
    assert "--pipe" in one_error_line(completed, no_run_folder=True)


@pytest.mark.parametrize("option", [("--block", "1k"), ("--recend", ";"), ("-L", "2")])
def test_block_options_need_pipe(option: tuple[str, ...]) -> None:
    completed = run_fanout("run", *option, "--", "echo", input=b"a\n")
    assert "--pipe" in one_error_line(completed, no_run_folder=True)


def test_resume_of_a_pipe_run_is_refused_with_its_reason() -> None:
    first = run_fanout("run", "-q", "--pipe", "--block", "2", "--", "sh", "-c", "exit {#}",
                       input=b"a\nb\n")  # fmt: skip
    assert first.returncode == 1
    run_id = first.run_dir.name
    for args in (("--resume-failed", run_id), ("--resume", run_id, "--pipe", "--", "true")):
        completed = run_fanout("run", *args, input=b"a\nb\n")
        line = one_error_line(completed)
        assert "--pipe" in line and "resume" in line, line
    assert first.run_dirs() == [first.run_dir]


def test_a_ci_shard_variable_does_not_split_the_blocks() -> None:
    # A CI job's shard would hold every block in memory to split them: --pipe runs all.
    completed = run_fanout("run", "--format", "json", "--pipe", "-L", "1", "--", "cat",
                           input=b"a\nb\nc\nd\n", env={"FANOUT_SHARD": "2/2"})  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["verdict"]["counts"]["tasks"] == 4


def details_inputs(completed: Completed) -> list[Any]:
    rows = sorted(completed.manifest()["tasks"], key=lambda row: row["seq"])
    return [completed.details(row["details_file"])["input"] for row in rows]


def test_records_per_block_are_recorded() -> None:
    completed = run_fanout("run", "-q", "--pipe", "-L", "2", "--", "cat", input=b"a\nb\nc\n")
    assert completed.returncode == 0, completed.stderr
    assert details_inputs(completed) == [{"block": 1, "bytes": 4, "records": 2},
                                         {"block": 2, "bytes": 2, "records": 1}]  # fmt: skip


# --- feeding a block to a child ------------------------------------------------------------


def test_a_feed_stops_quietly_when_its_child_does_not_read() -> None:
    async def spawn(stdin: int | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["true"], stdin=stdin)

    async def attempt() -> int:
        process, feed = await start_fed(spawn, StdinBlock(b"x" * (8 << 20), 1))
        return await wait_feeding(feed, lambda: anyio.to_thread.run_sync(process.wait))

    open_before = len(os.listdir("/proc/self/fd"))
    assert anyio.run(attempt) == 0
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_a_start_that_fails_leaves_no_pipe_open() -> None:
    async def spawn(stdin: int | None) -> subprocess.Popen[bytes]:
        raise OSError(errno.ENOENT, "not found", "nothing")

    open_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        anyio.run(start_fed, spawn, StdinBlock(b"x", 1))
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_a_shell_operator_written_as_a_word_runs_under_a_shell_with_pipe() -> None:
    completed = run_fanout("run", "--pipe", "-L", "2", "--format", "json", "--", "cat", "|",
                           "wc", "-l", input=b"a\nb\nc\n")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    tasks = json.loads(completed.stdout)["tasks"]
    assert [task["summary"] for task in tasks] == ["2", "1"]
