"""The option table (options.py) is the one declaration of `fanout run`'s options: the
command line, RunConfig, the task file's [run] and [agent] keys and the docs follow it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
import typer.main

from fanout_cli import manpage
from fanout_cli.cli import app
from fanout_cli.options import (
    AGENT_KEYS,
    BY_NAME,
    RUN_KEYS,
    RUN_OPTIONS,
    RunConfig,
    build_config,
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
    assert AGENT_KEYS == ("provider", "model", "system", "temperature", "max_tokens", "base_url")


def test_docs_list_every_declared_flag() -> None:
    documented = " ".join(flags for flags, _ in manpage.option_rows())
    for option in RUN_OPTIONS:
        assert option.flag in documented, option.name
