"""The redaction rules (fanout_cli.redact): which names, URLs and values are secrets."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanout_cli import redact
from fanout_cli.redact import REDACTED, is_secret_name, redact_env, redact_text, redact_words


@pytest.mark.parametrize(
    "name",
    ["OPENAI_API_KEY", "apikey", "GH_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "PASSWD",
     "MY_PASS", "GITHUB_PAT", "PAT", "AUTH", "http-auth", "X-Amz-Credential", "SSH_PRIVATE",
     "db.pass", "Authorization"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["PATH", "LD_LIBRARY_PATH", "PATTERN", "GIT_AUTHOR_NAME", "AUTHOR", "COMPASS", "HOME",
     "PWD", "page", "PATHEXT", "TZ"],
)  # fmt: skip
def test_names_that_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:pass@host/v1", "http://***@host/v1"),
        ("https://ghtoken@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("postgres://app:pw@db:5432/app", "postgres://***@db:5432/app"),
        ("http://h/v1?api_key=abc&x=1&token=zz", "http://h/v1?api_key=***&x=1&token=***"),
        ("http://h/a?page=2&sort=name", "http://h/a?page=2&sort=name"),
        ("key sk-proj-abcdefghijklmnop1234", "key ***"),
        ("sk-ant-api03-abcdefghijklmnopqrstuv", "***"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123", "***"),
        ("github_pat_11ABCDEFG0123456789_abcdefghij", "***"),
        ("xoxb-1234567890-abcdefghij", "***"),
        ("AKIAIOSFODNN7EXAMPLE", "***"),
        ("Authorization: Bearer abc.def.ghi-123", "Authorization: Bearer ***"),
        ("plain words, http://host/v1 and a path/to/file.txt", None),
        ("", None),
    ],
)
def test_redact_text(text: str, expected: str | None) -> None:
    assert redact_text(text) == (text if expected is None else expected)


def test_an_env_value_holding_a_secret_is_replaced_whole() -> None:
    env = {"DATABASE_URL": "postgres://u:pw@h/db", "PATH": "/bin", "NOTE": "sk-" + "a" * 20,
           "GITHUB_PAT": "x", "LANG": "C"}  # fmt: skip
    assert redact_env(env) == {"DATABASE_URL": "***", "PATH": "/bin", "NOTE": "***",
                               "GITHUB_PAT": "***", "LANG": "C"}  # fmt: skip


def test_redact_words_hides_secret_options_and_keeps_the_rest() -> None:
    words = ["fanout", "run", "--base-url", "http://a:b@h/v1", "--max-tokens", "100",
             "--api-key", "X", "--token=abc", "--", "curl", "-u", "x", "{}"]  # fmt: skip
    assert redact_words(words) == [
        "fanout", "run", "--base-url", "http://***@h/v1", "--max-tokens", "100",
        "--api-key", "***", "--token=***", "--", "curl", "-u", "x", "{}",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text", ["a." * 500_000, "?a" * 500_000, "a:" * 500_000 + "@", "x://" + "a" * 1_000_000]
)
def test_redaction_takes_linear_time_on_hostile_text(text: str) -> None:
    started = time.monotonic()
    redact_text(text)
    assert time.monotonic() - started < 2


def _every_pattern(text: str) -> str:
    """redact_text without its quick look: every pattern applied."""
    text = redact._URL_CREDENTIALS.sub(lambda match: f"{match.group(1)}{REDACTED}@", text)
    text = redact._QUERY_PARAMETER.sub(redact._query_parameter, text)
    text = redact._PROVIDER_KEY.sub(REDACTED, text)
    return redact._BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", text)


_PIECES = st.sampled_from([
    "https://", "user:pw@", "host", "?", "&", "api_key=", "token=", "x=", "sk-", "ghp_",
    "github_pat_", "xoxb-", "AKIA", "ASIA", "AIza", "glpat-", "Bearer ", "basic ", "bEaReR ",
    "A" * 16, "abcdefghij0123456789", " ", "/", "-", "_", "=", "@", "é", "\n",
])  # fmt: skip


@given(st.lists(_PIECES, max_size=12).map("".join))
def test_the_quick_look_never_skips_a_text_a_pattern_would_change(text: str) -> None:
    assert redact_text(text) == _every_pattern(text)
