"""The command line in-process: Typer's CliRunner for help and version, `run_cli` for the
exit codes and the one-line errors that scripts depend on."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fanout_cli import __version__
from fanout_cli import cli as cli_module
from fanout_cli.cli import app, run_cli
from fanout_cli.options import RunConfig
from tests.helpers import FANOUT, write_tasks

RUN_OPTIONS = [
    "-j", "--jobs", "--timeout", "--grace", "--deadline", "--ok-exit", "--retries",
    "--retry-delay", "--strategy", "--fail-fast", "--required-successes", "--min-successes",
    "--min-success-ratio", "--score", "--scorer", "--vote-on", "--output-dir", "--run-id",
    "--format", "--summary-chars", "--max-lines", "-q", "--quiet",
]  # fmt: skip

PASSING = '[[task]]\nid = "ok"\ncmd = ["echo", "fine"]\n'
FAILING = '[[task]]\nid = "ok"\ncmd = ["echo", "fine"]\n\n[[task]]\nid = "bad"\ncmd = ["false"]\n'


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def error_lines(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr, stderr
    assert all(line.startswith("fanout: error: ") for line in lines), stderr
    return lines


# --- through CliRunner ----------------------------------------------------------------


def test_version(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"fanout {__version__}\n"


def test_root_help_lists_the_run_command(cli: CliRunner) -> None:
    result = cli.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output.split()
    assert cli.invoke(app, ["-h"]).output == result.output


def test_run_help_lists_every_option(cli: CliRunner) -> None:
    result = cli.invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    words = set(result.output.replace(",", " ").replace("/", " ").split())
    missing = [option for option in RUN_OPTIONS if option not in words]
    assert not missing, f"run --help does not list {missing}"
    assert "Exit status" in result.output


def test_run_through_cli_runner_passes(cli: CliRunner, tmp_path: Path) -> None:
    write_tasks(tmp_path / "tasks.toml", PASSING)
    result = cli.invoke(app, ["run", "tasks.toml"])
    assert result.exit_code == 0, result.output
    assert "success" in result.output
    assert result.output.splitlines()[-1].startswith("PASS")


# --- run_cli: exit codes and errors ---------------------------------------------------


def test_run_cli_version_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out == f"fanout {__version__}\n"


def test_run_cli_returns_0_on_pass_and_1_on_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tasks(tmp_path / "pass.toml", PASSING)
    write_tasks(tmp_path / "fail.toml", FAILING)
    assert run_cli(["run", "pass.toml", "-q"]) == 0
    assert capsys.readouterr().out.startswith("PASS")
    assert run_cli(["run", "fail.toml", "-q"]) == 1
    assert capsys.readouterr().out.startswith("FAIL")


@pytest.mark.parametrize("argv", [["run"], ["run", "-q"], ["run", "-j", "2", "--format", "json"]])
def test_run_without_a_source_on_a_terminal_is_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "stdin_is_terminal", lambda: True)
    assert run_cli(argv) == 2
    captured = capsys.readouterr()
    assert len(error_lines(captured.err)) == 1, captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "tasks.toml", "--", "echo", "{}"],
        ["run", "tasks.toml", "--glob", "*.toml"],
        ["run", "--glob", "*.toml", "--", "echo", "{}", ":::", "a"],
        ["run", "-q", "echo", ":::", "a"],
    ],
)
def test_two_task_sources_are_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tasks(tmp_path / "tasks.toml", PASSING)
    assert run_cli(argv) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert "usage" in lines[0].lower() or "--" in lines[0]
    assert not (tmp_path / "out").exists()


def test_two_errors_are_printed_as_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tasks(tmp_path / "tasks.toml", '[[task]]\ncmd = ["true"]\nretries = "many"\n')
    assert run_cli(["run", "tasks.toml"]) == 2
    assert run_cli(["run", "missing.toml"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 2, lines
    assert "tasks.toml:3" in lines[0]
    assert "retries" in lines[0]
    assert "missing.toml" in lines[1]


def test_two_bad_options_in_one_command_give_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tasks(tmp_path / "tasks.toml", PASSING)
    assert run_cli(["run", "tasks.toml", "--jobs", "0", "--strategy", "sometimes"]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "tasks.toml", "--no-such-option"], "--no-such-option"),
        (["no-such-command"], "no-such-command"),
        (["run", "tasks.toml", "--jobs"], "--jobs"),
    ],
)
def test_click_usage_errors_are_one_line_exit_2(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tasks(tmp_path / "tasks.toml", PASSING)
    assert run_cli(argv) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert fragment in lines[0]


def test_shell_completion_offers_commands_and_options() -> None:
    """Typer's completion, as `fanout --install-completion` sets it up for bash."""
    def complete(words: str, index: int) -> list[str]:
        completed = subprocess.run(
            [str(FANOUT)],
            env={**os.environ, "_FANOUT_COMPLETE": "complete_bash",
                 "COMP_WORDS": words, "COMP_CWORD": str(index)},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        return completed.stdout.split()

    assert complete("fanout ru", 1) == ["run", "runs"]
    assert complete("fanout run --str", 2) == ["--strategy"]
    assert "export" in complete("fanout timings ", 2)
    # Without a shell among its ancestors (a detached CI job), Typer's shell detection
    # finds none; this variable makes --show-completion take the shell as its value.
    script = subprocess.run([str(FANOUT), "--show-completion", "bash"], capture_output=True,
                            env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
                            text=True, timeout=30, check=False)  # fmt: skip
    assert "_FANOUT_COMPLETE=complete_bash" in script.stdout


# --- options not given on the command line leave the task file's [run] alone ---------


def test_run_table_quiet_applies_when_the_command_line_does_not_say(
    cli: CliRunner, tmp_path: Path
) -> None:
    write_tasks(tmp_path / "tasks.toml", "[run]\nquiet = true\n\n" + FAILING)
    result = cli.invoke(app, ["run", "tasks.toml"])
    assert result.exit_code == 1, result.output
    assert [line.split()[0] for line in result.output.splitlines()] == ["FAIL"]


@pytest.mark.parametrize(
    ("toml", "read"),
    [
        ('timings = ["recorded.json"]', lambda c: c.sharding.timings == ("recorded.json",)),
        ('resources = ["GPU=1"]', lambda c: c.policy.resources == ("GPU=1",)),
        ("quiet = true", lambda c: c.output.quiet is True),
        ("fail_fast = true", lambda c: c.verdict.fail_fast is True),
    ],
)
def test_run_table_values_stand_when_their_flags_are_not_given(
    tmp_path: Path, toml: str, read: Callable[[RunConfig], bool]
) -> None:
    from fanout_cli.cli import run_request
    from fanout_cli.options import RUN_OPTIONS
    from fanout_cli.plan import plan_run

    path = tmp_path / "tasks.toml"
    write_tasks(path, f"[run]\n{toml}\n\n{PASSING}")
    not_given = {o.name: {"flag": False, "repeat": ()}.get(o.kind) for o in RUN_OPTIONS}
    request = run_request(str(path), not_given, None, None)
    config = plan_run(request).config
    assert read(config), config
