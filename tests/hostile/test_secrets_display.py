"""Class 8 of issue 14: secrets never reach what fanout writes down (details, manifest,
journal, saved task list), and control characters or bidirectional overrides in ids,
summaries and errors never reach the terminal raw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fake_llm import (  # the `fake_llm` fixture is found by pytest by name
    FakeLLM,
    fake_llm_fixture,  # noqa: F401
    invalid_api_key,
)
from tests.helpers import assert_clean, one_error_line, output_dir, run_fanout, write_tasks

PASSWORD = "hunter2-url-password"
QUERY_SECRET = "q-secret-9f8e7d"
PROVIDER_KEY = "sk-ant-api03-" + "x" * 24


def everything_written() -> str:
    """Every file fanout wrote in the output folder, as one text."""
    return "\n".join(
        path.read_text(errors="replace") for path in output_dir().rglob("*") if path.is_file()
    )


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                 "FANOUT_PROVIDER", "FANOUT_MODEL", "HTTP_PROXY", "http_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a stray https call fails fast


@pytest.mark.usefixtures("offline")
def test_a_password_in_the_base_url_is_never_written(fake_llm: FakeLLM) -> None:
    url = fake_llm.openai_url.replace("http://", f"http://user:{PASSWORD}@")
    completed = run_fanout("run", "--prompt", "Say {}", "--model", "m", "--base-url", url,
                           ":::", "a")  # fmt: skip
    assert_clean(completed)
    assert completed.returncode == 0, completed.stderr
    written = everything_written()
    assert "details" in " ".join(p.name for p in output_dir().rglob("*")) or written
    assert PASSWORD not in written
    assert "http://***@127.0.0.1" in written  # the host stays: what was called is known
    assert PASSWORD not in completed.stdout + completed.stderr


@pytest.mark.usefixtures("offline")
def test_a_secret_query_parameter_in_the_base_url_is_never_written(fake_llm: FakeLLM) -> None:
    url = f"{fake_llm.openai_url}?api_key={QUERY_SECRET}&token={QUERY_SECRET}"
    completed = run_fanout("run", "--prompt", "Say {}", "--model", "m", "--base-url", url,
                           ":::", "a")  # fmt: skip
    assert_clean(completed)
    written = everything_written()
    assert written and QUERY_SECRET not in written
    assert "api_key=***" in written


def test_secret_env_names_and_values_are_redacted_everywhere(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "t.toml",
        "[[task]]\nid = 'one'\ncmd = ['true']\n[task.env]\n"
        "GITHUB_PAT = 'pat-value-1'\nPASSWD = 'passwd-value-2'\nAUTH = 'auth-value-3'\n"
        "DATABASE_URL = 'postgres://app:db-value-4@db/app'\n"
        f"HARMLESS = '{PROVIDER_KEY}'\nMY_PATH = '/keep/this'\nPATTERN = 'keep-too'\n",
    )
    completed = run_fanout("run", str(tasks))
    assert completed.returncode == 0, completed.stderr
    written = everything_written()
    for secret in ("pat-value-1", "passwd-value-2", "auth-value-3", "db-value-4", PROVIDER_KEY):
        assert secret not in written, secret
    details = next(output_dir().rglob("*one*.json"))
    env = json.loads(details.read_text())["env"]
    assert env["MY_PATH"] == "/keep/this" and env["PATTERN"] == "keep-too"
    assert env["GITHUB_PAT"] == env["DATABASE_URL"] == env["HARMLESS"] == "***"


def test_a_provider_key_on_the_command_line_is_not_recorded() -> None:
    """Details, manifest and journal; the saved task list (tasks.jsonl) keeps commands
    exactly as they run, for --resume (a documented limit: keep secrets in env)."""
    completed = run_fanout("run", "--", "true", f"--api-key={PROVIDER_KEY}", "{}", ":::", "a")
    assert completed.returncode == 0, completed.stderr
    written = "\n".join(path.read_text() for path in output_dir().rglob("*")
                        if path.is_file() and path.name != "tasks.jsonl")  # fmt: skip
    assert "--api-key=***" in written
    assert PROVIDER_KEY not in written


# --- display: C1 controls and bidirectional overrides are shown escaped -------------

HOSTILE = "a\u202eb\u009bc\u2066d\u200fe\u061cf\x1bg"


def test_hostile_characters_in_ids_and_summaries_are_escaped_on_human_lines() -> None:
    completed = run_fanout("run", "--", "printf", "%s\\n", "{}", ":::", HOSTILE)
    assert completed.returncode == 0, completed.stderr
    for char in "\u202e\u009b\u2066\u200f\u061c\x1b":
        assert char not in completed.stdout, (char, completed.stdout)
    assert "\\u202e" in completed.stdout and "\\u009b" in completed.stdout, completed.stdout


def test_hostile_characters_in_the_runs_and_show_tables_are_escaped() -> None:
    run_fanout("run", "--run-id", "bidi", "--", "printf", "%s\\n", "{}", ":::", HOSTILE)
    for args in (("runs",), ("show", "bidi")):
        shown = run_fanout(*args)
        assert shown.returncode == 0, shown.stderr
        for char in "\u202e\u009b\u2066\u200f\u061c\x1b":
            assert char not in shown.stdout, (args, char, shown.stdout)


def test_hostile_characters_in_an_error_line_are_escaped() -> None:
    completed = run_fanout("run", "--run-id", "x\u202ey", "--", "true", ":::", "a")
    assert completed.returncode == 2
    assert "\u202e" not in completed.stderr and "\\u202e" in completed.stderr, completed.stderr


def test_json_output_and_raw_outputs_keep_the_characters() -> None:
    completed = run_fanout("run", "--format", "json", "--", "printf", "%s", "{}", ":::", HOSTILE)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["tasks"][0]["summary"] == HOSTILE.replace("\x1b", "")
    stdout_file = next(output_dir().rglob("*.stdout"))
    assert stdout_file.read_text() == HOSTILE


@pytest.mark.usefixtures("offline")
def test_resuming_a_run_whose_url_held_a_password_asks_for_the_url_again(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.script(invalid_api_key())
    url = fake_llm.openai_url.replace("http://", f"http://user:{PASSWORD}@")
    first = run_fanout("run", "--run-id", "r", "--prompt", "Say {}", "--model", "m",
                       "--base-url", url, ":::", "a")  # fmt: skip
    assert first.returncode == 1, first.stderr
    again = run_fanout("run", "--resume-failed", "r")
    assert "give --base-url again" in one_error_line(again)
    assert len(fake_llm.requests) == 1  # nothing was sent with *** as the password
    fixed = run_fanout("run", "--resume-failed", "r", "--base-url", url)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert PASSWORD not in everything_written()
