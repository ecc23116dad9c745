"""What fanout never writes down: the one place the redaction rules live.

Everything fanout records (details files, the manifest, the journal, the saved task
list) passes secrets through here, written as `***`:

- an environment variable (or query parameter) whose name says it holds a secret: a
  name containing KEY, TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE, CREDENTIAL, PRIVATE
  or SIGNATURE anywhere, in any case (APIKEY, GH_TOKEN), or with a whole part, between
  `_`, `-` or `.`, that is PASS, PAT, AUTH, AUTHORIZATION or SIG (GITHUB_PAT, AUTH,
  DB_PASS); PATH, PATTERN, AUTHOR or COMPASS are not parts that match, and camelCase
  is not split;
- the credentials of a URL (`scheme://user:pass@host` -> `scheme://***@host`) and the
  value of a query parameter named like a secret (`?api_key=***`, `&token=***`);
- values that look like a provider's key wherever they appear: `sk-...` (OpenAI,
  Anthropic's `sk-ant-...`), GitHub's `ghp_...`/`github_pat_...`, Slack's `xoxb-...`,
  AWS access key ids `AKIA...`, Google's `AIza...`, GitLab's `glpat-...`, and the word
  after `Bearer`;
- in a recorded command line (argv), the value of an option whose name has a secret
  part (`--api-key VALUE`, `--token=VALUE`).

The patterns are heuristics: a word such as `sk-` followed by 16 letters is redacted
even when it is no key, and a key of another shape is not found by its look (only by
the name of the variable or option that holds it).

An env value that holds any of these is replaced whole, so that `--resume` (which
refuses a task whose saved env holds `***`) never runs with half a value."""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "***"

_SECRET_WORDS = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|PRIVATE|SIGNATURE", re.IGNORECASE
)
_SECRET_PARTS = frozenset({"PASS", "PAT", "AUTH", "AUTHORIZATION", "SIG"})
# An option of a command line hides the word after it when a whole part of its name is
# one of these (--api-key, --password; not --max-tokens).
_SECRET_OPTION_PARTS = frozenset({
    "KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "PAT",
    "AUTH", "CREDENTIAL", "CREDENTIALS",
})  # fmt: skip
_NAME_PARTS = re.compile(r"[_.\-]+")

# Bounded repeats where a match could start at many places: linear time on any text.
_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]{0,31}://)[^/\s@?#]{1,1024}@")
_QUERY_PARAMETER = re.compile(r"([?&;])([^=&;?\s#]{1,128})=([^&;\s#]*)")
_PROVIDER_KEY = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_\-]{35}"
    r"|\bglpat-[A-Za-z0-9_\-]{20,}"
)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
# What each pattern above must find to match at all (`@`, `=`, a key's prefix, the
# word): a text without any of them (nearly every command) is searched once, not four
# times.
_MAY_HOLD_SECRET = re.compile(
    r"[@=]|sk-|gh[pousr]_|github_pat_|xox[abposr]-|AKIA|ASIA|AIza|glpat-|bearer|basic",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether a variable or parameter named `name` holds a secret (see the module)."""
    if _SECRET_WORDS.search(name):
        return True
    return any(part.upper() in _SECRET_PARTS for part in _NAME_PARTS.split(name))


def redact_text(text: str) -> str:
    """`text` with URL credentials, secret query values and key-like words as `***`."""
    if not text or not _MAY_HOLD_SECRET.search(text):
        return text
    text = _URL_CREDENTIALS.sub(lambda match: f"{match.group(1)}{REDACTED}@", text)
    text = _QUERY_PARAMETER.sub(_query_parameter, text)
    text = _PROVIDER_KEY.sub(REDACTED, text)
    return _BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", text)


def _query_parameter(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    if value and is_secret_name(name):
        return f"{separator}{name}={REDACTED}"
    return match.group(0)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """The env as fanout records it: a secret's value, or a value holding one, is `***`."""
    if not env:
        return {}
    return {
        name: REDACTED if is_secret_name(name) or redact_text(value) != value else value
        for name, value in env.items()
    }


def redact_words(words: list[str]) -> list[str]:
    """A command line (argv) as fanout records it: each word through redact_text, and
    the value of an option named like a secret (`--api-key VALUE`, `--token=VALUE`)
    as `***`."""
    redacted: list[str] = []
    for index, word in enumerate(words):
        name, equals, _value = word.partition("=")
        if equals and _secret_option(name):
            redacted.append(f"{name}={REDACTED}")
        elif index and _secret_option(words[index - 1]) and "=" not in words[index - 1]:
            redacted.append(REDACTED)
        else:
            redacted.append(redact_text(word))
    return redacted


def _secret_option(word: str) -> bool:
    if not word.startswith("-"):
        return False
    return any(part.upper() in _SECRET_OPTION_PARTS for part in _NAME_PARTS.split(word))
