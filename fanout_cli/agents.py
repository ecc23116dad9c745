"""Agent settings: the providers a run can call and the defaults of its agent tasks.

Layers, lowest first: built-in providers and environment variables, the task file's
[agent] table, the command line; a task's own keys win over all of them. Nothing
here imports the HTTP client: a run without agent tasks never pays for it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fanout_cli.config_hints import misplaced
from fanout_cli.models import AgentCall, TaskSpec
from fanout_cli.options import AGENT_KEYS, flag_of, parser
from fanout_cli.provider_keys import home_key, key_variable, no_key_hint, parse_key_env
from fanout_cli.providers import WIRE_FORMATS
from fanout_cli.redact import REDACTED, redact_text
from fanout_cli.values import Rate, int_in_range, is_url, parse_rate

APIS = tuple(WIRE_FORMATS)  # a provider's `api`: the wire format its calls use
OPENAI_URL = WIRE_FORMATS["openai"].default_url
ANTHROPIC_URL = WIRE_FORMATS["anthropic"].default_url
DEFAULT_PROVIDER = "openai"
DEFAULT_RETRIES = 4
MAX_RETRIES = 20
ATTACH_LIMIT_BYTES = 1 << 20

# A task's own agent keys: the call's fields.
CALL_KEYS = ("provider", "model", "system", "temperature", "max_tokens")
# [agent]: every agent option of the command line (options.py), and what only a file sets.
AGENT_TABLE_KEYS = (*AGENT_KEYS, "retries", "rate", "providers")
PROVIDER_KEYS = ("api", "base_url", "api_key_env", "rate")


@dataclass(frozen=True)
class Provider:
    """Where agent calls go and how they authenticate. The key itself is read from the
    environment when a call is made, and never stored, written or printed. Which
    variable that is follows provider_keys: a built-in key only to its own host."""

    name: str
    api: str  # a key of WIRE_FORMATS: openai (Chat Completions), anthropic (Messages)
    base_url: str
    api_key_env: str | None  # None: send no key
    key_required: bool
    rate: Rate | None = None
    key_named: bool = False  # the user named api_key_env: it follows the provider's URL

    @property
    def endpoint(self) -> str:
        return WIRE_FORMATS[self.api].endpoint(self.base_url)

    def api_key(self) -> str | None:
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env) or None

    def missing_key(self) -> str | None:
        """Why a call cannot be made ("no API key: set OPENAI_API_KEY"), or None."""
        if f"://{REDACTED}@" in self.base_url:  # a resumed run's URL: its password was not saved
            return (f"the password of provider {self.name}'s URL is never saved: "
                    "give --base-url again")  # fmt: skip
        if self.key_required and self.api_key() is None:
            return f"no API key: set {self.api_key_env} (provider {self.name})"
        return None

    def no_key_sent(self) -> str | None:
        """When a call carries no key: why, and how to send one (for a 401's reason)."""
        return no_key_hint(self.base_url) if self.api_key() is None else None

    def moved(self, base_url: str | None, named: str | None) -> Provider:
        """This provider at another URL and/or with a key variable the user named. A
        key variable it had only for its host (a built-in's) does not follow it."""
        if named is None and self.key_named:
            named = self.api_key_env
        url = self.base_url if base_url is None else base_url
        if named is None and base_url is None:
            return self
        variable = key_variable(url, named)
        return replace(self, base_url=url, api_key_env=variable,
                       key_required=variable is not None, key_named=named is not None)  # fmt: skip

    def document(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "base_url": redact_text(self.base_url),  # given again to resume with its password
            "api_key_env": self.api_key_env,
            "api_key_named": self.key_named,
            "key_required": self.key_required,
            "rate": None if self.rate is None else str(self.rate),
        }


def builtin_providers(environ: Mapping[str, str]) -> dict[str, Provider]:
    """openai and anthropic as their SDKs see them: a base URL from OPENAI_BASE_URL /
    ANTHROPIC_BASE_URL goes with the key variable beside it (the key is then sent
    when set, not required), as the official SDKs pair them."""
    providers = {}
    for name, variable, default in (("openai", "OPENAI_API_KEY", OPENAI_URL),
                                    ("anthropic", "ANTHROPIC_API_KEY", ANTHROPIC_URL)):
        url = environ.get(f"{name.upper()}_BASE_URL") or default
        providers[name] = Provider(name, name, url, variable, home_key(url) == variable)
    return providers


BUILTIN_NAMES = ("openai", "anthropic")


@dataclass(frozen=True)
class AgentSettings:
    """The merged defaults of a run's agent tasks and the providers they may name."""

    provider: str = DEFAULT_PROVIDER
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    retries: int = DEFAULT_RETRIES  # HTTP retries of transient errors, within an attempt
    rate: Rate | None = None  # from [agent] rate: a cap on all agent requests
    providers: Mapping[str, Provider] = field(default_factory=dict)

    def complete(self, call: AgentCall) -> AgentCall:
        """The call with every field it leaves open taken from these defaults."""
        return replace(
            call,
            provider=call.provider or self.provider,
            model=call.model if call.model is not None else self.model,
            system=call.system if call.system is not None else self.system,
            temperature=call.temperature if call.temperature is not None else self.temperature,
            max_tokens=call.max_tokens if call.max_tokens is not None else self.max_tokens,
        )

    def check(self, specs: list[TaskSpec]) -> str | None:
        """A problem that stops every agent task of a list before anything starts
        (unknown provider, no model, no API key), or None. Problems of some tasks
        only are left to those tasks, which end as `error`."""
        calls = [spec.agent for spec in specs if spec.agent is not None and spec.agent.tool is None]
        if not calls:
            return None
        problems = [self.problem(call) for call in calls]
        if all(problems):
            return problems[0]
        return None

    def problem(self, call: AgentCall) -> str | None:
        """Why this (completed) call cannot be made, or None."""
        provider = self.providers.get(call.provider or self.provider)
        if provider is None:
            known = ", ".join(sorted(self.providers))
            return f"unknown provider {call.provider!r} (known: {known}); {DEFINE_HINT}"
        if not call.model:
            return "no model: set --model, model in [agent] or the task, or FANOUT_MODEL"
        return provider.missing_key()

    def document(self) -> dict[str, Any]:
        """For the manifest's options (names of key variables, never keys)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "system": self.system,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "retries": self.retries,
            "rate": None if self.rate is None else str(self.rate),
            "providers": {name: p.document() for name, p in self.providers.items()},
        }


Fail = Callable[[tuple[str, ...], str], Exception]


def parse_agent_table(table: Mapping[str, Any], fail: Fail) -> dict[str, Any]:
    """Validate a task file's [agent] table into settings values; `fail(key_path,
    problem)` builds the error that names the line."""
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in AGENT_TABLE_KEYS:
            hint = misplaced(key, "agent") or f"allowed: {', '.join(AGENT_TABLE_KEYS)}"
            raise fail((key,), f"unknown key {key!r} in [agent] ({hint})")
        if key == "providers":
            values["providers"] = _parse_providers(raw, fail)
            continue
        try:
            values[key] = AGENT_VALUE_PARSERS[key](raw)
        except ValueError as exc:
            raise fail((key,), f"[agent] {key}: {exc}") from None
    return values


def _parse_providers(raw: object, fail: Fail) -> dict[str, Provider]:
    if not isinstance(raw, dict):
        raise fail(("providers",), "[agent] providers must be tables: [agent.providers.NAME]")
    providers: dict[str, Provider] = {}
    for name, table in raw.items():
        where = ("providers", name)
        label = f"[agent.providers.{name}]"
        if not isinstance(table, dict):
            raise fail(where, f"{label} must be a table")
        for key in table:
            if key not in PROVIDER_KEYS:
                hint = misplaced(key, "provider") or f"allowed: {', '.join(PROVIDER_KEYS)}"
                raise fail((*where, key), f"unknown key {key!r} in {label} ({hint})")
        api = table.get("api", name if name in APIS else None)
        if api is None:
            raise fail(where, f"{label}: api is required: api = \"openai\" (Chat Completions: "
                       "OpenAI, vLLM, llama.cpp, Ollama, LM Studio, LiteLLM) or api = "
                       "\"anthropic\" (Messages)")
        if api not in APIS:
            raise fail((*where, "api"), f"{label}: api must be one of {', '.join(APIS)}, "
                       f"got {api!r}")
        base_url = table.get("base_url")
        if base_url is not None and not is_url(base_url):
            raise fail((*where, "base_url"), f"{label}: base_url must be an http(s) URL, "
                       f"got {base_url!r}")
        key_env = table.get("api_key_env")
        try:
            key_env = None if key_env is None else parse_key_env(key_env)
        except ValueError as exc:
            raise fail((*where, "api_key_env"), f"{label}: api_key_env: {exc}") from None
        try:
            rate = None if "rate" not in table else parse_rate(table["rate"])
        except ValueError as exc:
            raise fail((*where, "rate"), f"{label}: rate: {exc}") from None
        providers[name] = _provider(name, api, base_url, key_env, rate)
    return providers


def _provider(
    name: str, api: str, base_url: str | None, key_env: str | None, rate: Rate | None
) -> Provider:
    builtin = builtin_providers(os.environ).get(name)
    if builtin is None or builtin.api != api:
        # A new provider: at its wire format's home URL unless told otherwise.
        builtin = Provider(name, api, WIRE_FORMATS[api].default_url, None, False)
        base_url = base_url or builtin.base_url
    # A key goes only where it belongs: a local server must never receive the
    # OPENAI_API_KEY meant for api.openai.com (provider_keys).
    return replace(builtin.moved(base_url, key_env), rate=rate)


def _retries(value: object) -> int:
    return int_in_range(value, 0, MAX_RETRIES)


# The parsers of [agent]'s values: the command line's, from the option table, and the rest.
AGENT_VALUE_PARSERS: Mapping[str, Callable[[object], Any]] = {
    **{name: parser(name) for name in AGENT_KEYS},
    "retries": _retries,
    "rate": parse_rate,
}


def build_settings(
    file_values: Mapping[str, Any],
    command_line: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> AgentSettings:
    """Merge: built-ins and FANOUT_PROVIDER / FANOUT_MODEL, then [agent], then the
    command line (`base_url`, from either, applies to the chosen provider). Raises
    ValueError naming the option."""
    environ = os.environ if environ is None else environ
    providers: dict[str, Provider] = builtin_providers(environ)
    providers.update(file_values.get("providers", {}))
    merged: dict[str, Any] = {}
    for name, variable in (("provider", "FANOUT_PROVIDER"), ("model", "FANOUT_MODEL")):
        if environ.get(variable):
            merged[name] = environ[variable]
    merged.update({k: v for k, v in file_values.items() if k != "providers"})
    for name, raw in command_line.items():
        if raw is None:
            continue
        try:
            merged[name] = AGENT_VALUE_PARSERS[name](raw)
        except ValueError as exc:
            raise ValueError(f"{flag_of(name)}: {exc}") from None
    if "http_retries" in merged:  # --http-retries, [agent] http_retries (or its older name)
        merged["retries"] = merged.pop("http_retries")
    pointing = {key: merged.pop(key, None) for key in ("base_url", "api_key_env", "api")}
    settings = AgentSettings(**merged, providers=providers)
    _point_at(providers, settings.provider, **pointing)
    return settings


def _point_at(
    providers: dict[str, Provider],
    name: str,
    base_url: str | None,
    api_key_env: str | None,
    api: str | None,
) -> None:
    """--base-url, --api-key-env (or the same keys of [agent]): the chosen provider's
    calls go to that URL, with the key of that variable; a built-in's own key does not
    follow it elsewhere. With --api, a name not yet known defines a provider."""
    chosen = providers.get(name)
    if chosen is None:
        if base_url is None or api is None:
            if base_url is None and api is None and api_key_env is None:
                return  # left to AgentSettings.problem: only agent tasks need a provider
            raise ValueError(f"--provider: unknown provider {name!r}; {DEFINE_HINT}")
        chosen = Provider(name, api, base_url, None, False)
    elif api is not None and api != chosen.api:
        raise ValueError(f"--api: provider {name} speaks {chosen.api}; --api defines a "
                         "new provider: --provider NAME --base-url URL --api API")
    providers[name] = chosen.moved(base_url, api_key_env)


DEFINE_HINT = ("to define it give --provider NAME --base-url URL and --api openai|anthropic "
               "(or add an [agent.providers.NAME] table)")


def settings_values(document: Mapping[str, Any]) -> dict[str, Any]:
    """`AgentSettings.document()` read back (a resumed run's saved settings), as values
    for `build_settings`. Anything unreadable is left out: defaults apply."""
    values: dict[str, Any] = {}
    for key, parse in AGENT_VALUE_PARSERS.items():
        if document.get(key) is not None:
            with contextlib.suppress(ValueError):
                values[key] = parse(document[key])
    providers: dict[str, Provider] = {}
    saved = document.get("providers")
    for name, fields in (saved.items() if isinstance(saved, dict) else ()):
        if not isinstance(fields, dict) or fields.get("api") not in APIS:
            continue
        if not is_url(fields.get("base_url")):
            continue
        with contextlib.suppress(KeyError, TypeError, ValueError):
            rate = None if fields.get("rate") is None else parse_rate(fields["rate"])
            providers[name] = Provider(
                name,
                fields["api"],
                fields["base_url"],
                fields.get("api_key_env"),
                bool(fields.get("key_required")),
                rate,
                bool(fields.get("api_key_named")),
            )
    values["providers"] = providers
    return values


def read_prompt_file(path: str) -> str:
    """A prompt file's text, as it is (no replacement string in it is filled), without
    its trailing white space. Raises OSError / ValueError."""
    size = os.path.getsize(path)
    if size > ATTACH_LIMIT_BYTES:
        raise ValueError(f"the file is {size} bytes; the limit is {ATTACH_LIMIT_BYTES} bytes")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8").rstrip()
    except UnicodeDecodeError:
        raise ValueError("the file is not UTF-8 text") from None


def read_attachments(paths: tuple[str, ...], cwd: str | None) -> str:
    """The attached files as text to follow the prompt. Raises OSError / ValueError
    with a message that names the file."""
    parts = []
    for path in paths:
        full = os.path.join(cwd, path) if cwd else path
        size = os.path.getsize(full)
        if size > ATTACH_LIMIT_BYTES:
            raise ValueError(f"attachment {path} is {size} bytes; the limit is "
                             f"{ATTACH_LIMIT_BYTES} bytes")
        with open(full, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
        parts.append(f'<file path="{path}">\n{text.rstrip()}\n</file>')
    return "\n\n".join(parts)
