"""Option values: durations and exit codes as the command line and task files write them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fanout_cli import values
from fanout_cli.pacing import Backoff
from fanout_cli.sources.values import glob_matches
from fanout_cli.values import format_duration, parse_duration, parse_exit_codes


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("500ms", 0.5, id="milliseconds"),
        pytest.param("30s", 30.0, id="seconds"),
        pytest.param("5m", 300.0, id="minutes"),
        pytest.param("1h", 3600.0, id="hours"),
        pytest.param("1h30m", 5400.0, id="hours-and-minutes"),
        pytest.param("1m30s", 90.0, id="minutes-and-seconds"),
        pytest.param("1.5s", 1.5, id="fractional-seconds"),
        pytest.param("0s", 0.0, id="zero-with-unit"),
        pytest.param("30S", 30.0, id="upper-case-unit"),
        pytest.param(" 5m ", 300.0, id="surrounding-space"),
        pytest.param("10", 10.0, id="bare-integer-string"),
        pytest.param("2.5", 2.5, id="bare-float-string"),
        pytest.param("0", 0.0, id="bare-zero"),
        pytest.param(10, 10.0, id="toml-int"),
        pytest.param(0.25, 0.25, id="toml-float"),
        pytest.param(0, 0.0, id="toml-zero"),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    parsed = parse_duration(value)
    assert parsed == pytest.approx(seconds)
    assert isinstance(parsed, float)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(-1, id="negative-int"),
        pytest.param(-0.5, id="negative-float"),
        pytest.param("-1", id="negative-string"),
        pytest.param("-5m", id="negative-with-unit"),
        pytest.param("abc", id="letters"),
        pytest.param("ten", id="word"),
        pytest.param("", id="empty"),
        pytest.param("5x", id="unknown-unit"),
        pytest.param("1h30", id="trailing-bare-number"),
        pytest.param("s", id="unit-without-number"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(float("inf"), id="float-inf"),
        pytest.param(float("nan"), id="float-nan"),
        pytest.param("inf", id="string-inf"),
        pytest.param("nan", id="string-nan"),
        pytest.param("infinity", id="string-infinity"),
        pytest.param(None, id="none"),
        pytest.param([30], id="list"),
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.5, "500ms", id="milliseconds"),
        pytest.param(0.0, "0ms", id="zero"),
        pytest.param(30.0, "30s", id="whole-seconds"),
        pytest.param(1.5, "1.5s", id="fractional-seconds"),
        pytest.param(60.0, "1m", id="one-minute"),
        pytest.param(90.0, "1m30s", id="minutes-and-seconds"),
        pytest.param(300.0, "5m", id="minutes"),
        pytest.param(3600.0, "1h", id="hour"),
        pytest.param(3720.0, "1h2m", id="hours-and-minutes"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["500ms", "30s", "5m", "1h", "1h30m", "1m30s"])
def test_format_duration_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    ("value", "codes"),
    [
        pytest.param("0,1", {0, 1}, id="comma-string"),
        pytest.param(" 0 , 1 ", {0, 1}, id="comma-string-with-spaces"),
        pytest.param([0, 1], {0, 1}, id="toml-list"),
        pytest.param("0-2", {0, 1, 2}, id="range"),
        pytest.param("0,3-4", {0, 3, 4}, id="code-and-range"),
        pytest.param("255", {255}, id="highest"),
        pytest.param(1, {1}, id="toml-int"),
        pytest.param(["0", "1"], {0, 1}, id="list-of-strings"),
    ],
)
def test_parse_exit_codes(value: object, codes: set[int]) -> None:
    assert parse_exit_codes(value) == frozenset(codes)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("256", id="string-256"),
        pytest.param(256, id="int-256"),
        pytest.param([0, 256], id="list-with-256"),
        pytest.param("0-256", id="range-past-255"),
        pytest.param("x", id="letter"),
        pytest.param("0,x", id="code-and-letter"),
        pytest.param("-1", id="negative"),
        pytest.param([-1], id="negative-in-list"),
        pytest.param("", id="empty-string"),
        pytest.param([], id="empty-list"),
        pytest.param("2-0", id="backwards-range"),
        pytest.param(True, id="boolean"),
        pytest.param([True], id="boolean-in-list"),
        pytest.param(1.0, id="float"),
    ],
)
def test_parse_exit_codes_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="exit codes"):
        parse_exit_codes(value)


# --- build_config --------------------------------------------------------------------


# --- ranges (issue 14, class 7): every number is checked against a documented range ---


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        pytest.param(values.parse_jobs, "99999999999999999999", id="jobs-huge"),
        pytest.param(values.parse_jobs, "1" * 5000, id="jobs-5000-digits"),
        pytest.param(values.parse_jobs, 10_001, id="jobs-over"),
        pytest.param(values.parse_jobs, "0", id="jobs-zero"),
        pytest.param(values.parse_retries, 101, id="retries-over"),
        pytest.param(values.parse_count, 10**30, id="count-huge-int"),
        pytest.param(values.summary_chars, "100001", id="summary-over"),
        pytest.param(values.parse_max_tokens, "²", id="superscript-digit"),
        pytest.param(values.parse_exit_codes, "0-99999999", id="exit-range"),
        pytest.param(values.parse_exit_codes, "1" * 5000, id="exit-digits"),
        pytest.param(values.parse_exit_codes, [10**400], id="exit-huge-int"),
        pytest.param(values.parse_shard, "1/99999999999", id="shard-total"),
        pytest.param(values.parse_shard, "1/" + "9" * 5000, id="shard-digits"),
        pytest.param(values.parse_rate, "9" * 5000 + "/s", id="rate-digits"),
        pytest.param(values.parse_rate, "1/31d", id="rate-period"),
        pytest.param(values.parse_duration, 10**400, id="duration-huge-int"),
        pytest.param(values.parse_run_duration, "31d", id="run-duration-over"),
        pytest.param(values.parse_duration, "3651d", id="duration-over"),
        pytest.param(values.parse_duration, "1e308", id="duration-1e308"),
        pytest.param(values.parse_temperature, 10**400, id="temperature-huge-int"),
        pytest.param(values.parse_resources, ["GPU=1e7"], id="resource-over"),
    ],
)
def test_out_of_range_numbers_are_refused_quickly(
    parse: Callable[[object], object], value: object
) -> None:
    started = time.monotonic()
    with pytest.raises(ValueError) as raised:
        parse(value)
    assert time.monotonic() - started < 0.1
    assert len(str(raised.value)) < 200, str(raised.value)


@pytest.mark.parametrize(
    ("parse", "value", "expected"),
    [
        pytest.param(values.parse_jobs, "10000", 10_000, id="jobs-at-limit"),
        pytest.param(values.parse_retries, 100, 100, id="retries-at-limit"),
        pytest.param(values.parse_exit_codes, "0-255", frozenset(range(256)), id="all-codes"),
        pytest.param(values.parse_run_duration, "30d", 30 * 86400.0, id="run-duration-limit"),
        pytest.param(values.parse_duration, "90d", 90 * 86400.0, id="clean-older-than-90d"),
        pytest.param(values.parse_limit, "1ms", 0.001, id="limit-small"),
        pytest.param(values.parse_shard_text, "10000/10000", "10000/10000", id="shard-limit"),
    ],
)
def test_numbers_at_the_limits_are_accepted(
    parse: Callable[[object], object], value: object, expected: object
) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize("failures", [1, 64, 1025, 10**6])
def test_backoff_is_capped_at_any_number_of_failures(failures: int) -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=lambda: 1.0)
    assert 0 < backoff.delay(failures) <= 60.0


# --- globs (fanout_cli.sources.values.glob_matches): loops end, each file once ---------


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("g/a.txt", "g/sub/b.txt", "g/sub/deep/c.txt", "g/.hid/x.txt", "g/.h.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    os.symlink(".", tmp_path / "g/here")
    os.symlink("..", tmp_path / "g/sub/up")
    os.symlink("../..", tmp_path / "g/sub/deep/top")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("g/**/*.txt", ["g/a.txt", "g/sub/b.txt", "g/sub/deep/c.txt"]),
        ("**/c.txt", ["g/sub/deep/c.txt"]),
        ("g/**/**/c.txt", ["g/sub/deep/c.txt"]),
        ("g/**/", ["g/", "g/sub/", "g/sub/deep/"]),
        ("g/*", ["g/a.txt", "g/here", "g/sub"]),
        ("g/*/", ["g/here/", "g/sub/"]),
        ("g/.*", ["g/.h.txt", "g/.hid"]),
        ("g/.hid/*", ["g/.hid/x.txt"]),
        ("g/s?b/[bc].txt", ["g/sub/b.txt"]),
        ("g/nothing/*", []),
        ("g/a.txt", ["g/a.txt"]),
        ("g/missing.txt", []),
    ],
)
def test_glob_follows_each_real_folder_once(tree: Path, pattern: str, expected: list[str]) -> None:
    started = time.monotonic()
    assert glob_matches(pattern) == expected
    assert time.monotonic() - started < 1


def test_a_trailing_double_star_lists_each_name_once(tree: Path) -> None:
    found = glob_matches("g/**")
    assert found == sorted(set(found))
    assert found[:2] == ["g/", "g/a.txt"] and "g/sub/deep/c.txt" in found


def test_an_absolute_glob_keeps_its_root(tree: Path) -> None:
    assert glob_matches(f"{tree}/g/*.txt") == [f"{tree}/g/a.txt"]


@pytest.mark.parametrize("value", ["1e999", "31d", "-1"])
def test_a_limit_out_of_range_names_the_range_a_limit_has(value: str) -> None:
    """--timeout and --deadline take 0 (no limit) to 30d, and their range says so."""
    with pytest.raises(ValueError, match=r"from 0 to 30d"):
        values.parse_limit(value)


@pytest.mark.parametrize("value", ["0", 0, 0.0, "0s", "0ms"])
def test_a_limit_of_zero_is_no_limit(value: object) -> None:
    """As in GNU parallel: --timeout 0 and --deadline 0 mean no limit."""
    assert values.parse_limit(value) is None
