"""Durations, exit codes and the layering of run options into one RunConfig."""

from __future__ import annotations

import math

import pytest

from fanout_cli.options import OptionError, RunConfig, build_config
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


def test_build_config_without_layers_is_the_defaults() -> None:
    assert build_config() == RunConfig()


def test_build_config_defaults_follow_the_contract() -> None:
    config = build_config()
    assert config.policy.timeout is None
    assert config.policy.grace == 5.0
    assert config.policy.ok_exit == frozenset({0})
    assert config.policy.retries == 0
    assert config.verdict.strategy == "all-succeed"
    assert config.verdict.required_successes == 1
    assert config.verdict.vote_on == "stdout"
    assert config.output.format == "human"
    assert config.output.summary_chars == 500
    assert config.output.max_lines == 50
    assert config.policy.jobs >= 1


def test_output_dir_default_comes_from_environment() -> None:
    # conftest points FANOUT_OUTPUT_DIR at the test's own folder.
    assert build_config().output.output_dir.endswith("/out")


def test_later_layer_wins() -> None:
    toml_layer = {"jobs": 2, "timeout": "5m", "strategy": "best-of-n"}
    command_line = {"jobs": "8", "timeout": "30s"}
    config = build_config(toml_layer, command_line)
    assert config.policy.jobs == 8
    assert config.policy.timeout == 30.0
    assert config.verdict.strategy == "best-of-n"  # only set by the lower layer


def test_none_in_a_later_layer_is_skipped() -> None:
    config = build_config({"jobs": 3, "fail_fast": True}, {"jobs": None, "fail_fast": None})
    assert config.policy.jobs == 3
    assert config.verdict.fail_fast is True


def test_values_are_parsed() -> None:
    config = build_config(
        {"ok_exit": "0,1", "grace": "500ms", "retries": "2", "min_success_ratio": "0.5"}
    )
    assert config.policy.ok_exit == frozenset({0, 1})
    assert config.policy.grace == 0.5
    assert config.policy.retries == 2
    assert config.verdict.min_success_ratio == 0.5


@pytest.mark.parametrize(
    ("layer", "name"),
    [
        pytest.param({"jobs": 0}, "jobs", id="jobs-zero"),
        pytest.param({"jobs": "many"}, "jobs", id="jobs-word"),
        pytest.param({"timeout": "ten"}, "timeout", id="timeout-word"),
        pytest.param({"retries": -1}, "retries", id="retries-negative"),
        pytest.param({"strategy": "best-of-three"}, "strategy", id="strategy-unknown"),
        pytest.param({"format": "xml"}, "format", id="format-unknown"),
        pytest.param({"ok_exit": "256"}, "ok_exit", id="ok-exit-out-of-range"),
        pytest.param({"fail_fast": "yes"}, "fail_fast", id="flag-not-boolean"),
        pytest.param({"min_success_ratio": 1.5}, "min_success_ratio", id="ratio-above-one"),
        pytest.param({"min_success_ratio": 0}, "min_success_ratio", id="ratio-zero"),
        pytest.param({"score": "("}, "score", id="score-bad-regex"),
        pytest.param({"run_id": "../escape"}, "run_id", id="run-id-with-slash"),
        pytest.param({"summary_chars": 5}, "summary_chars", id="summary-chars-too-small"),
    ],
)
def test_option_error_names_the_option(layer: dict[str, object], name: str) -> None:
    with pytest.raises(OptionError) as raised:
        build_config(layer)
    assert raised.value.name == name
    assert raised.value.problem
    assert isinstance(raised.value, ValueError)


def test_option_error_names_the_failing_layer_value() -> None:
    with pytest.raises(OptionError) as raised:
        build_config({"jobs": 2}, {"jobs": "0"})
    assert raised.value.name == "jobs"
    assert "got 0" in raised.value.problem


def test_min_successes_and_ratio_conflict() -> None:
    with pytest.raises(OptionError) as raised:
        build_config({"min_successes": 2, "min_success_ratio": 0.5})
    assert raised.value.name in {"min_successes", "min_success_ratio"}
    assert "not both" in raised.value.problem


def test_score_and_scorer_conflict() -> None:
    with pytest.raises(OptionError) as raised:
        build_config({"score": r"score=(\d+)", "scorer": "./rate.sh"})
    assert raised.value.name in {"score", "scorer"}
    assert "not both" in raised.value.problem


def test_min_successes_alone_is_fine() -> None:
    config = build_config({"strategy": "partial-success", "min_successes": 2})
    assert config.verdict.min_successes == 2
    assert config.verdict.min_success_ratio is None


def test_durations_are_finite() -> None:
    config = build_config({"deadline": "1h", "timeout": 1.5})
    assert config.policy.deadline is not None
    assert math.isfinite(config.policy.deadline)
    assert config.policy.timeout == 1.5
