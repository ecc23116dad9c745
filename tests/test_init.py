"""`fanout init`: a commented starter task file that runs as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.helpers import run_fanout


def test_init_writes_a_commented_file_that_runs(tmp_path: Path) -> None:
    written = run_fanout("init")
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == "wrote tasks.toml; run it with: fanout run tasks.toml"
    text = (tmp_path / "tasks.toml").read_text()
    data = tomllib.loads(text)
    assert data["run"] == {"jobs": 4, "timeout": "10m", "strategy": "all-succeed"}
    assert [task["id"] for task in data["task"]] == ["hello", "python", "todo-count", "greet-{}"]
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) >= 15
    assert "# ok_exit: exit codes that count as success" in text
    assert '# kind = "agent"' in text  # the agent example stays a comment
    assert (tmp_path / "tasks.toml").stat().st_mode & 0o777 == 0o644

    ran = run_fanout("run", "tasks.toml", "--format", "json")
    assert ran.returncode == 0, ran.stderr
    assert '"passed": true' in ran.stdout


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "tasks.toml").write_text("# mine\n")
    refused = run_fanout("init")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "fanout: error: tasks.toml exists; keep it, or overwrite it with --force"
    )
    assert (tmp_path / "tasks.toml").read_text() == "# mine\n"
    forced = run_fanout("init", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "[[task]]" in (tmp_path / "tasks.toml").read_text()


def test_init_into_a_folder_or_a_named_file(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    assert run_fanout("init", "ci").returncode == 0
    assert run_fanout("init", "ci/checks.toml").returncode == 0
    assert run_fanout("run", "ci/checks.toml", "-q").returncode == 0
    checks = (tmp_path / "ci" / "checks.toml").read_text()
    assert checks.startswith("# fanout task file. Run it with:   fanout run ci/checks.toml")
    assert (tmp_path / "ci" / "tasks.toml").is_file()
    missing = run_fanout("init", "nowhere/tasks.toml")
    assert missing.returncode == 2
    assert "no such folder" in missing.stderr
