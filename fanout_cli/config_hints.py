"""Where a task-file key given in the wrong table belongs: the hint an unknown-key
error carries, so that `model` in [run] says "put it in [agent]" instead of only
listing what [run] takes. Pure: names only, never a value (it may be a key)."""

from __future__ import annotations

from fanout_cli.options import AGENT_KEYS, RUN_KEYS
from fanout_cli.redact import is_secret_name

# A task's own agent keys, which [agent] also takes as defaults.
_CALL_KEYS = ("provider", "model", "system", "temperature", "max_tokens")
_AGENT_ONLY = (*AGENT_KEYS, "providers")
_BASE_URL = ("[agent] base_url (the chosen provider's URL), base_url in "
             "[agent.providers.NAME], or --base-url")  # fmt: skip


def misplaced(key: str, table: str) -> str | None:
    """Where `key`, unknown in `table` ("run", "agent" or "provider"), belongs; None
    when it belongs nowhere fanout knows."""
    if key in ("api_key", "key", "apikey") or (is_secret_name(key) and key != "api_key_env"):
        return ("fanout reads a key only from the environment: name its variable with "
                "api_key_env in [agent.providers.NAME] or --api-key-env")  # fmt: skip
    if key == "base_url":
        return f"base_url goes in {_BASE_URL}"
    if table == "provider" and key in _CALL_KEYS:
        return f"{key} goes in [agent] (the default of every agent task) or in a [[task]]"
    if table != "agent" and key in _AGENT_ONLY:
        place = "[agent.providers.NAME]" if key == "providers" else "[agent]"
        return f"{key} is an agent setting: it goes in {place}"
    if table != "run" and key in RUN_KEYS:
        return f"{key} is a run setting: it goes in [run]"
    return None
