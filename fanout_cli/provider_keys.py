"""Which key a provider's calls may carry: the one rule, in one place.

A built-in provider's key from the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY)
goes only to that provider's own API host, over https on the standard port. Any
other URL gets a key only from a variable the user named for it (`--api-key-env
NAME`, `api_key_env` in a provider table); with none named, calls carry no key (a
local server needs none). Pure: no I/O, no HTTP client."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# The API host of each built-in provider, and the variable holding its key.
HOME_KEYS = {"api.openai.com": "OPENAI_API_KEY", "api.anthropic.com": "ANTHROPIC_API_KEY"}


def home_key(base_url: str) -> str | None:
    """The built-in key variable whose own host `base_url` is, or None."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or port not in (None, 443) or "@" in parts.netloc:
        return None
    return HOME_KEYS.get((parts.hostname or "").lower())


def key_variable(base_url: str, named: str | None) -> str | None:
    """The variable whose key calls to `base_url` carry: the one the user named, else
    the built-in one when the URL is its own host, else None (no key is sent)."""
    return named if named is not None else home_key(base_url)


def no_key_hint(base_url: str) -> str:
    """Why a 401 may have come: the key was withheld from this host, and how to send one."""
    host = urlsplit(base_url).hostname or base_url
    return (f"no API key was sent to {host} (a key from the environment goes only to its "
            "provider's own host): name the variable that holds this server's key with "
            "--api-key-env NAME, or api_key_env in [agent.providers.NAME]")  # fmt: skip


def parse_key_env(value: object) -> str:
    """The name of an environment variable (the key's, never the key itself)."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        # The value is not echoed: it may be the key itself, given by mistake.
        raise ValueError("expected the name of the environment variable that holds the "
                         "key (such as OPENROUTER_API_KEY), not the key itself")
    return value


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
