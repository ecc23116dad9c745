"""The option table (options.py) is the one declaration of `fanout run`'s options: the
command line, RunConfig, the task file's [run] and [agent] keys and the docs follow it."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pytest
import typer.main

from fanout_cli import manpage
from fanout_cli.cli import app
from fanout_cli.layers import OptionError, build_config
from fanout_cli.options import (
    AGENT_KEYS,
    BY_NAME,
    RUN_KEYS,
    RUN_OPTIONS,
    RunConfig,
    flag_of,
    parser,
)
from fanout_cli.sources.taskfile import load_task_file


def run_command_params() -> dict[str, object]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return {param.name: param for param in group.commands["run"].params if param.name}


def test_every_declared_option_is_a_parameter_of_run_and_nothing_else_is() -> None:
    params = run_command_params()
    assert set(params) - {"taskfile"} == set(BY_NAME)
    for option in RUN_OPTIONS:
        param = params[option.name]
        assert isinstance(param, typer.core.TyperOption)
        written = [*param.opts, *param.secondary_opts]
        assert option.flag in written, (option.name, written)


def test_names_flags_and_keys_are_unique() -> None:
    assert len(BY_NAME) == len(RUN_OPTIONS)
    flags = [flag for option in RUN_OPTIONS for flag in option.flags]
    assert len(flags) == len(set(flags))


def test_run_config_groups_hold_exactly_the_run_table_options_of_their_group() -> None:
    for group in fields(RunConfig):
        record = getattr(RunConfig(), group.name)
        names = {f.name for f in fields(record)}
        assert names == {o.name for o in RUN_OPTIONS if o.group == group.name}, group.name
    assert set(RunConfig().values()) == set(RUN_KEYS)


def test_a_config_is_built_and_changed_by_option_names() -> None:
    config = RunConfig.of(jobs=2, strategy="best-of-n", quiet=True, order="longest-first")
    assert (config.policy.jobs, config.verdict.strategy) == (2, "best-of-n")
    assert (config.output.quiet, config.sharding.order) == (True, "longest-first")
    assert config.replaced(jobs=5).policy.jobs == 5 and config.policy.jobs == 2


def test_every_option_has_help_and_every_value_option_a_metavar() -> None:
    for option in RUN_OPTIONS:
        assert option.help.strip(), option.name
        if option.kind in ("value", "repeat"):
            assert option.metavar, option.name


@pytest.mark.parametrize("name", RUN_KEYS)
def test_every_run_key_is_accepted_by_a_task_files_run_table(name: str, tmp_path: Path) -> None:
    # The config's own value, written back as TOML, is accepted: no key is refused.
    path = tmp_path / "tasks.toml"
    path.write_text(f'[run]\n{name} = "not a valid value ~~"\n[[task]]\ncmd = ["true"]\n')
    try:
        load_task_file(str(path))
    except Exception as exc:  # refused as a bad value, never as an unknown key
        assert "unknown key" not in str(exc), exc


def test_parsers_accept_what_the_command_line_gives() -> None:
    samples = {"jobs": "3", "timeout": "1m", "ok_exit": "0,1", "strategy": "best-of-n",
               "rate": "5/s", "shard": "2/4", "resources": ("GPU=1",)}  # fmt: skip
    config = build_config(samples)
    policy = config.policy
    assert policy.jobs == 3 and policy.timeout == 60 and policy.ok_exit == {0, 1}
    assert config.sharding.shard == "2/4" and config.policy.resources == ("GPU=1",)
    assert parser("vote_on")("summary") == "summary"


def test_flags_for_messages() -> None:
    assert flag_of("min_success_ratio") == "--min-success-ratio"
    assert flag_of("fail_fast") == "--fail-fast"
    assert flag_of("jobs") == "--jobs"


def test_agent_keys_are_the_agent_settings_of_the_command_line() -> None:
    assert AGENT_KEYS == ("provider", "model", "system", "temperature", "max_tokens", "base_url",
                          "http_retries", "api", "api_key_env")  # fmt: skip


def test_docs_list_every_declared_flag() -> None:
    documented = " ".join(flags for flags, _ in manpage.option_rows())
    for option in RUN_OPTIONS:
        assert option.flag in documented, option.name


# --- layers of options into one RunConfig ----------------------------------------------


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
        pytest.param({"jobs": "0%"}, "jobs", id="jobs-zero-percent"),
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
        build_config({"jobs": 2}, {"jobs": "0%"})
    assert raised.value.name == "jobs"
    assert "got '0%'" in raised.value.problem


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
