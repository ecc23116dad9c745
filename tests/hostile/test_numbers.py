"""Class 7 of issue 14: hostile numbers and structures. Every number from the command
line, the environment or a task file is range-checked (exit 2, one line naming the value
and the allowed range, at once), TOML nesting and dotted keys are bounded, and `**`
globs end over symlink loops, listing each file once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import assert_clean, one_error_line, run_fanout, write_tasks

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param(("--jobs", HUGE), ("--jobs", "10000"), id="jobs-huge"),
        pytest.param(("--jobs", "100000000"), ("--jobs", "10000"), id="jobs-hundred-million"),
        pytest.param(("--jobs", "1" * 5000), ("--jobs", "10000"), id="jobs-5000-digits"),
        pytest.param(("--ok-exit", "0-99999999"), ("--ok-exit", "255"), id="ok-exit-range"),
        pytest.param(("--shard", "1/99999999999"), ("--shard", "10000"), id="shard-total"),
        pytest.param(("--retries", "1100"), ("--retries", "100"), id="retries"),
        pytest.param(("--timeout", "0%"), ("--timeout", "more than 0%"), id="timeout-zero-pct"),
        pytest.param(("--timeout", "100001%"), ("--timeout", "100000%"), id="timeout-huge-pct"),
        pytest.param(("--timeout", "1e308"), ("--timeout", "30d"), id="timeout-huge"),
        pytest.param(("--grace", "99999d"), ("--grace", "30d"), id="grace-huge"),
        pytest.param(("--retry-delay", "1" * 400), ("--retry-delay", "30d"), id="retry-delay"),
        pytest.param(("--rate", HUGE + "/s"), ("--rate", "1000000"), id="rate-count"),
        pytest.param(("--rate", "1/99999d"), ("--rate", "30d"), id="rate-period"),
        pytest.param(("--summary-chars", HUGE), ("--summary-chars", "100000"), id="summary"),
        pytest.param(("--max-lines", HUGE), ("--max-lines", "1000000"), id="max-lines"),
        pytest.param(
            ("--required-successes", HUGE),
            ("--required-successes", "1000000000"),
            id="required-successes",
        ),
        pytest.param(
            ("--min-successes", HUGE), ("--min-successes", "1000000000"), id="min-successes"
        ),
        pytest.param(
            ("--prompt", "say {}", "--max-tokens", HUGE),
            ("--max-tokens", "1000000"),
            id="max-tokens",
        ),
        pytest.param(
            ("--prompt", "say {}", "--temperature", "1e999"),
            ("--temperature", "2"),
            id="temperature",
        ),
        pytest.param(("--resources", "GPU=1e999"), ("--resources", "GPU"), id="resources"),
    ],
)
def test_a_number_out_of_range_is_one_line_at_once(
    args: tuple[str, ...], names: tuple[str, ...]
) -> None:
    started = time.monotonic()
    command = () if "--prompt" in args else ("--", "true")
    completed = run_fanout("run", *args, *command, ":::", "a")
    elapsed = time.monotonic() - started
    line = one_error_line(completed, no_run_folder=True)
    for name in names:
        assert name in line, line
    assert len(line) < 300, line
    assert elapsed < 5, elapsed


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        pytest.param({"FANOUT_SHARD": "1/99999999999"}, "FANOUT_SHARD", id="fanout-shard"),
        pytest.param(
            {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": HUGE}, "CI_NODE_TOTAL", id="ci-node-total"
        ),
        pytest.param(
            {"CI_NODE_INDEX": "1" * 5000, "CI_NODE_TOTAL": "2"},
            "CI_NODE_INDEX",
            id="ci-node-index-digits",
        ),
    ],
)
def test_a_shard_from_the_environment_is_range_checked(
    variables: dict[str, str], name: str
) -> None:
    completed = run_fanout("run", "--", "true", ":::", "a", env=variables)
    line = one_error_line(completed, no_run_folder=True)
    assert name in line, line
    assert "10000" in line or "outside 1..2" in line, line
    assert len(line) < 300, line


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("[run]\njobs = 99999999999999999999\n", ("jobs", "10000")),
        pytest.param("[run]\nretries = 1100\n", ("retries", "100")),
        pytest.param("[defaults]\nretries = 1100\n", ("retries", "100")),
        pytest.param("[run]\ntimeout = '0%'\n", ("timeout", "more than 0%")),
        pytest.param("[defaults]\ntimeout = 1e308\n", ("timeout", "30d")),
        pytest.param(f"[defaults]\ntimeout = {'9' * 400}\n", ("timeout", "30d")),
        pytest.param("[defaults]\nok_exit = '0-99999999'\n", ("ok_exit", "255")),
        pytest.param("[agent]\nmax_tokens = 99999999999\n", ("max_tokens", "1000000")),
    ],
)
def test_a_task_file_number_out_of_range_names_file_and_line(
    tmp_path: Path, text: str, words: tuple[str, ...]
) -> None:
    tasks = write_tasks(tmp_path / "t.toml", text + "[[task]]\ncmd = ['true']\n")
    completed = run_fanout("run", str(tasks))
    line = one_error_line(completed, no_run_folder=True)
    assert f"{tasks}:" in line, line
    for word in words:
        assert word in line, line


@pytest.mark.parametrize(
    ("text", "word"),
    [
        pytest.param("x = " + "[" * 5000 + "]" * 5000 + "\n", "nesting", id="arrays"),
        pytest.param(
            "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", "nesting", id="inline-tables"
        ),
        pytest.param(".".join(["a"] * 50000) + " = 1\n", "dotted key", id="dotted-key"),
        pytest.param("[" + ".".join(["a"] * 50000) + "]\n", "dotted key", id="dotted-header"),
        pytest.param(
            "x = {" + ".".join(["a"] * 50000) + " = 1}\n", "dotted key", id="dotted-key-inline"
        ),
    ],
)
def test_toml_structures_are_bounded(tmp_path: Path, text: str, word: str) -> None:
    tasks = write_tasks(tmp_path / "t.toml", text + "[[task]]\ncmd = ['true']\n")
    started = time.monotonic()
    completed = run_fanout("run", str(tasks))
    assert time.monotonic() - started < 5
    line = one_error_line(completed, no_run_folder=True)
    assert f"{tasks}:1:" in line and word in line and "32" in line, line


def test_retries_at_the_limit_back_off_without_overflow() -> None:
    completed = run_fanout(
        "run", "-q", "--retries", "100", "--retry-delay", "0", "--", "false", ":::", "a"
    )
    assert_clean(completed)
    assert completed.returncode == 1, completed.stderr
    assert "1 failure of 1" in completed.stdout, completed.stdout


def test_glob_over_symlink_loops_ends_and_lists_each_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    os.symlink(".", folder / "here")
    os.symlink("..", folder / "sub" / "up")
    os.symlink(".", folder / "sub" / "again")
    started = time.monotonic()
    completed = run_fanout("run", "--dry-run", "--glob", f"{folder}/**/*.txt", "--", "echo", "{}")
    assert time.monotonic() - started < 10
    assert_clean(completed)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [f"echo {folder}/a.txt", f"echo {folder}/sub/b.txt"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param("1" * 5000, ("a number is too long",), id="decimal-5000-digits"),
        pytest.param("0x" + "f" * 5000, ("jobs", "10000", "more than 24 digits"), id="hex"),
    ],
)
def test_a_task_file_number_too_long_to_convert_is_one_line(
    tmp_path: Path, value: str, words: tuple[str, ...]
) -> None:
    tasks = write_tasks(tmp_path / "t.toml", f"[run]\njobs = {value}\n[[task]]\ncmd = ['true']\n")
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert f"{tasks}:2:" in line and len(line) < 300, line
    for word in words:
        assert word in line, line


def test_a_timings_file_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    timings = tmp_path / "deep.json"
    timings.write_text("[" * 100_000 + "]" * 100_000)
    completed = run_fanout("run", "--shard", "1/2", "--timings", str(timings),
                           "--", "true", ":::", "a", "b")  # fmt: skip
    line = one_error_line(completed, no_run_folder=True)
    assert str(timings) in line and "nested too deep" in line, line


def test_recorded_durations_past_any_limit_are_ignored(tmp_path: Path) -> None:
    timings = tmp_path / "t.json"
    timings.write_text('{"fanout_timings_version": 1, "tasks": {"a": {"durations": '
                       '[1e308, 1e308, -5]}, "b": {"durations": [1]}}}')  # fmt: skip
    completed = run_fanout("run", "--dry-run", "--shard", "1/2", "--timings", str(timings),
                           "--", "echo", "{}", ":::", "a", "b")  # fmt: skip
    assert_clean(completed)
    first = completed.stdout.splitlines()[0]
    assert "recorded durations of 1 of 2 tasks" in first and len(first) < 150, first


def test_a_task_file_glob_over_a_symlink_loop_ends(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.txt").write_text("b")
    os.symlink("..", folder / "sub" / "up")
    text = f'[[task]]\nid = "t-{{/.}}"\ncmd = ["true"]\nglob = "{folder}/**/*.txt"\n'
    tasks = write_tasks(tmp_path / "t.toml", text)
    completed = run_fanout("run", str(tasks), "--dry-run", timeout=10)
    assert_clean(completed)
    assert completed.stdout.splitlines() == [f"true {folder}/sub/b.txt"], completed.stdout
