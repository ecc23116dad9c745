"""The man page and README are generated from the parser; they must not drift."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from fanout_cli import manpage


def test_man_page_matches_the_parser() -> None:
    assert manpage.MAN_PATH.read_text() == manpage.render_manpage(), (
        "man/fanout.1 is stale: run python -m fanout_cli.manpage --write"
    )


def test_readme_option_table_matches_the_parser() -> None:
    readme = manpage.README_PATH.read_text()
    assert manpage.readme_with_table(readme) == readme, (
        "README.md's option table is stale: run python -m fanout_cli.manpage --write"
    )


def test_every_run_option_is_documented() -> None:
    rows = manpage.option_rows()
    flags = " ".join(flag for flag, _ in rows)
    for option in ("--jobs", "--timeout", "--grace", "--deadline", "--ok-exit", "--retries",
                   "--strategy", "--fail-fast", "--required-successes", "--min-successes",
                   "--min-success-ratio", "--score", "--scorer", "--vote-on", "--output-dir",
                   "--run-id", "--format", "--summary-chars", "--max-lines", "--quiet"):
        assert option in flags
    assert all(help_text for _, help_text in rows), "an option has no help text"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_warnings() -> None:
    rendered = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", str(manpage.MAN_PATH)],
        capture_output=True, text=True, check=False,
    )
    assert rendered.returncode == 0
    assert rendered.stderr == ""
    plain = re.sub(r".\x08", "", rendered.stdout)  # drop the overstrike used for bold
    assert "EXIT STATUS" in plain


def test_readme_first_screen_has_the_two_setup_commands() -> None:
    readme = manpage.README_PATH.read_text()
    block = readme.split("<!-- setup:begin", 1)[1].split("<!-- setup:end", 1)[0]
    commands = [line for line in block.splitlines()[1:] if line and not line.startswith("```")]
    assert len(commands) == 2
    assert "pip install" in commands[0] and "fanout run examples/" in commands[0]
    assert "pytest" in commands[1]
    first_screen = 1500  # characters: about 25 lines of prose
    assert readme.index("<!-- setup:begin") < first_screen, "set-up commands off the first screen"


def test_man_page_covers_every_command_and_section() -> None:
    page = manpage.MAN_PATH.read_text()
    for name in manpage.commands():
        assert f".SS fanout {name}\n" in page, f"fanout {name} is not in the man page"
        for flags, help_text in manpage.option_rows(name):
            assert help_text, f"fanout {name} {flags} has no help text"
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS AND OPTIONS", "TASK FILE",
                    "AGENT TASKS", "SHARDING", "FILES", "STRATEGIES", "TASK STATUS",
                    "EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "SEE ALSO"):
        assert f"\n.SH {section}\n" in page, f"no {section} section"


def test_the_wheel_installs_the_man_page() -> None:
    """`pip install fanout-cli` puts man/fanout.1 in share/man/man1 (checked by hand in
    a built wheel: fanout_cli-*.data/data/share/man/man1/fanout.1); the declaration:"""
    pyproject = tomllib.loads((manpage.MAN_PATH.parent.parent / "pyproject.toml").read_text())
    data_files = pyproject["tool"]["setuptools"]["data-files"]
    assert data_files == {"share/man/man1": ["man/fanout.1"]}


def test_every_commands_help_has_examples() -> None:
    for name, command in manpage.commands().items():
        assert "Example" in (command.help or ""), f"fanout {name} --help shows no example"
