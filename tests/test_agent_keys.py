"""Keys go only where they belong (issue 17, part 1).

A built-in provider's key from the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY)
goes only to that provider's own API host over https; any other URL gets a key only
from a variable the user named for it (--api-key-env, api_key_env in a provider
table). The decision is unit-tested here without the network; the end-to-end cases
run the installed `fanout` against FakeLLM on 127.0.0.1 and read the headers the
server received."""

from __future__ import annotations

from pathlib import Path

import pytest

from fanout_cli.agents import build_settings, parse_agent_table
from fanout_cli.models import AgentCall
from fanout_cli.provider_keys import home_key, key_variable
from tests.fake_llm import FakeLLM, Recorded, go_offline
from tests.helpers import (
    Completed,
    details_by_id,
    one_error_line,
    output_dir,
    run_fanout,
    write_tasks,
)

OPENAI_SECRET = "sk-openai-meant-for-api-openai-com-1f2e"
ANTHROPIC_SECRET = "sk-ant-meant-for-api-anthropic-com-9c8d"
NAMED_SECRET = "sk-named-for-this-server-4b5a6c7d"

@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch, "MYKEY")


def fail(key_path: tuple[str, ...], problem: str) -> Exception:
    return ValueError(f"{'.'.join(key_path)}: {problem}")


# --- the decision: which key for which URL (no network) ---------------------------------


@pytest.mark.parametrize(
    "url, variable",
    [
        ("https://api.openai.com/v1", "OPENAI_API_KEY"),
        ("https://api.openai.com", "OPENAI_API_KEY"),
        ("https://API.OpenAI.com:443/v1/", "OPENAI_API_KEY"),
        ("https://api.anthropic.com", "ANTHROPIC_API_KEY"),
        ("https://api.anthropic.com/", "ANTHROPIC_API_KEY"),
        ("http://api.openai.com/v1", None),  # not https: the key would cross in clear
        ("https://api.openai.com:8443/v1", None),
        ("https://api.openai.com.example.test/v1", None),
        ("https://evil.test/api.openai.com/v1", None),
        ("https://user@api.openai.com/v1", None),
        ("http://127.0.0.1:8080/v1", None),
        ("https://openrouter.ai/api/v1", None),
        ("not a url", None),
    ],
)
def test_a_builtin_key_belongs_to_its_own_host_only(url: str, variable: str | None) -> None:
    assert home_key(url) == variable


def test_a_named_variable_goes_wherever_it_was_named_for() -> None:
    assert key_variable("http://127.0.0.1:8080/v1", "MYKEY") == "MYKEY"
    assert key_variable("https://api.openai.com/v1", "MYKEY") == "MYKEY"
    assert key_variable("https://api.openai.com/v1", None) == "OPENAI_API_KEY"
    assert key_variable("http://127.0.0.1:8080/v1", None) is None


def keys_of(**settings: object) -> dict[str, tuple[str | None, bool]]:
    """Each provider's (key variable, key required) after the layers are merged."""
    environ = settings.pop("environ", {})
    table = settings.pop("table", {})
    assert isinstance(environ, dict) and isinstance(table, dict)
    built = build_settings(parse_agent_table(table, fail), settings, environ)
    return {name: (p.api_key_env, p.key_required) for name, p in built.providers.items()}


def test_the_builtin_hosts_get_their_keys() -> None:
    keys = keys_of()
    assert keys["openai"] == ("OPENAI_API_KEY", True)
    assert keys["anthropic"] == ("ANTHROPIC_API_KEY", True)
    assert keys_of(base_url="https://api.openai.com/v1")["openai"] == ("OPENAI_API_KEY", True)


def test_base_url_elsewhere_withholds_the_builtin_key() -> None:
    assert keys_of(base_url="http://127.0.0.1:8080/v1")["openai"] == (None, False)
    assert keys_of(provider="anthropic", base_url="https://proxy.test")["anthropic"] == (
        None, False)  # fmt: skip
    table = {"providers": {"openai": {"base_url": "https://openrouter.ai/api/v1"}}}
    assert keys_of(table=table)["openai"] == (None, False)
    in_agent = {"base_url": "http://127.0.0.1:8080/v1"}
    assert keys_of(table=in_agent)["openai"] == (None, False)


def test_a_named_variable_is_sent_and_required() -> None:
    keys = keys_of(base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY")
    assert keys["openai"] == ("OPENROUTER_API_KEY", True)
    table = {"providers": {"openai": {"base_url": "http://x.test/v1", "api_key_env": "MYKEY"}}}
    assert keys_of(table=table)["openai"] == ("MYKEY", True)
    # The named variable stays with its provider when --base-url moves it.
    local = {"provider": "local", "providers": {"local": {
        "api": "openai", "base_url": "http://a.test/v1", "api_key_env": "LOCAL_KEY"}}}
    assert keys_of(table=local, base_url="http://b.test/v1")["local"] == ("LOCAL_KEY", True)
    built = build_settings({}, {"base_url": "http://x.test/v1", "api_key_env": "MYKEY"}, {})
    assert built.problem(AgentCall("hi", provider="openai", model="m")) == (
        "no API key: set MYKEY (provider openai)")  # fmt: skip


def test_the_sdk_pair_of_base_url_and_key_variables_stands() -> None:
    """OPENAI_BASE_URL and OPENAI_API_KEY, both in the environment, are read as the
    official SDKs read them: the key goes to that URL (when set; not required)."""
    environ = {"OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "ANTHROPIC_BASE_URL": "http://h.test"}
    keys = keys_of(environ=environ)
    assert keys["openai"] == ("OPENAI_API_KEY", False)
    assert keys["anthropic"] == ("ANTHROPIC_API_KEY", False)
    # --base-url moves the provider away from the pair: no key there.
    assert keys_of(environ=environ, base_url="http://127.0.0.1:2/v1")["openai"] == (None, False)


def test_a_named_provider_at_a_builtin_host_gets_that_hosts_key() -> None:
    table = {"providers": {"slow": {"api": "openai", "rate": "10/min"},
                           "here": {"api": "openai", "base_url": "http://127.0.0.1:3/v1"}}}
    keys = keys_of(table=table)
    assert keys["slow"] == ("OPENAI_API_KEY", True)
    assert keys["here"] == (None, False)


def test_a_provider_defined_on_the_command_line() -> None:
    built = build_settings({}, {"provider": "router", "base_url": "https://openrouter.ai/api/v1",
                                "api": "openai", "api_key_env": "OPENROUTER_API_KEY"}, {})
    router = built.providers["router"]
    assert (router.api, router.base_url, router.api_key_env, router.key_required) == (
        "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", True)  # fmt: skip
    assert built.provider == "router"
    keyless = build_settings({}, {"provider": "here", "base_url": "http://127.0.0.1:4",
                                  "api": "anthropic"}, {})  # fmt: skip
    assert keyless.providers["here"].api_key_env is None
    with pytest.raises(ValueError, match=r"^--provider: unknown provider 'router'.*--base-url "
                       r"URL and --api openai\|anthropic"):
        build_settings({}, {"provider": "router", "api": "openai"}, {})
    with pytest.raises(ValueError, match=r"^--api: provider openai speaks openai"):
        build_settings({}, {"api": "anthropic"}, {})
    with pytest.raises(ValueError, match=r"^--api: expected one of openai, anthropic"):
        build_settings({}, {"provider": "x", "base_url": "http://x.test", "api": "gemini"}, {})
    with pytest.raises(ValueError, match=r"^--api-key-env: "):
        build_settings({}, {"api_key_env": "NOT A NAME"}, {})


def test_the_settings_document_round_trips_the_named_key() -> None:
    from fanout_cli.agents import settings_values

    original = build_settings({}, {"provider": "router", "base_url": "http://r.test/v1",
                                   "api": "openai", "api_key_env": "MYKEY"}, {})  # fmt: skip
    restored = build_settings(settings_values(original.document()), {}, {})
    assert restored.providers["router"] == original.providers["router"]
    moved = build_settings(settings_values(original.document()),
                           {"provider": "router", "base_url": "http://s.test/v1"}, {})
    assert moved.providers["router"].api_key_env == "MYKEY"


# --- end to end: what the server received ---------------------------------------------


def fanout(*args: str, **env: str) -> Completed:
    completed = run_fanout(*args, env={"FANOUT_OUTPUT_DIR": str(output_dir()), **env})
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def received(server: FakeLLM) -> list[Recorded]:
    return [r for r in server.requests if r.method == "POST"]


def files_holding(secret: str) -> list[Path]:
    return [path for path in output_dir().rglob("*")
            if path.is_file() and secret.encode() in path.read_bytes()]  # fmt: skip


ASK = ("run", "--prompt", "Say {}", "--model", "m")


def test_the_openai_key_never_reaches_a_base_url_elsewhere() -> None:
    with FakeLLM() as server:
        completed = fanout(*ASK, "--base-url", server.openai_url, ":::", "a", "b",
                           OPENAI_API_KEY=OPENAI_SECRET)  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    sent = received(server)
    assert len(sent) == 2
    for request in sent:
        assert "authorization" not in request.headers
        assert OPENAI_SECRET.encode() not in repr(request.headers).encode()
    record = details_by_id(completed, "a")["agent"]
    assert "authorization" not in record["request"]["headers"]
    providers = completed.manifest()["options"]["agent"]["providers"]
    assert providers["openai"]["api_key_env"] is None


def test_api_key_env_names_the_key_for_that_url() -> None:
    with FakeLLM(api_key=NAMED_SECRET) as server:  # answers 401 to any other key
        completed = fanout(*ASK, "--base-url", server.openai_url, "--api-key-env", "MYKEY",
                           ":::", "a", OPENAI_API_KEY=OPENAI_SECRET, MYKEY=NAMED_SECRET)
    assert completed.returncode == 0, completed.stderr
    [request] = received(server)
    assert request.headers["authorization"] == f"Bearer {NAMED_SECRET}"
    assert details_by_id(completed, "a")["agent"]["request"]["headers"]["authorization"] == "***"
    assert completed.manifest()["options"]["agent"]["providers"]["openai"]["api_key_env"] == (
        "MYKEY")  # fmt: skip
    assert files_holding(NAMED_SECRET) == [] and files_holding(OPENAI_SECRET) == []


def test_a_named_variable_that_is_unset_stops_the_run() -> None:
    with FakeLLM() as server:
        completed = fanout(*ASK, "--base-url", server.openai_url, "--api-key-env", "MYKEY",
                           ":::", "a", OPENAI_API_KEY=OPENAI_SECRET)
    line = one_error_line(completed)
    assert "no API key: set MYKEY" in line
    assert received(server) == []


def test_overriding_the_builtin_providers_base_url_in_a_table_sends_no_key() -> None:
    with FakeLLM() as server:
        write_tasks(Path("tasks.toml"), f'[agent.providers.openai]\nbase_url = '
                    f'"{server.openai_url}"\n\n[[task]]\nkind = "agent"\nprompt = "hi"\n'
                    'model = "m"\n')  # fmt: skip
        completed = fanout("run", "tasks.toml", OPENAI_API_KEY=OPENAI_SECRET)
    assert completed.returncode == 0, completed.stderr
    [request] = received(server)
    assert "authorization" not in request.headers


def test_a_provider_tables_api_key_env_is_its_key() -> None:
    with FakeLLM(api_key=NAMED_SECRET) as server:
        write_tasks(Path("tasks.toml"), '[agent]\nprovider = "mine"\nmodel = "m"\n\n'
                    f'[agent.providers.mine]\napi = "openai"\nbase_url = "{server.openai_url}"\n'
                    'api_key_env = "MYKEY"\n\n[[task]]\nkind = "agent"\nprompt = "hi"\n')
        completed = fanout("run", "tasks.toml", OPENAI_API_KEY=OPENAI_SECRET, MYKEY=NAMED_SECRET)
    assert completed.returncode == 0, completed.stderr
    [request] = received(server)
    assert request.headers["authorization"] == f"Bearer {NAMED_SECRET}"


def test_the_anthropic_key_likewise() -> None:
    with FakeLLM() as server:
        keyless = fanout(*ASK, "--provider", "anthropic", "--base-url", server.anthropic_url,
                         ":::", "a", ANTHROPIC_API_KEY=ANTHROPIC_SECRET)
        named = fanout(*ASK, "--provider", "anthropic", "--base-url", server.anthropic_url,
                       "--api-key-env", "MYKEY", ":::", "b",
                       ANTHROPIC_API_KEY=ANTHROPIC_SECRET, MYKEY=NAMED_SECRET)
    assert keyless.returncode == 0, keyless.stderr
    assert named.returncode == 0, named.stderr
    first, second = received(server)
    assert "x-api-key" not in first.headers and "authorization" not in first.headers
    assert second.headers["x-api-key"] == NAMED_SECRET
    assert files_holding(NAMED_SECRET) == [] and files_holding(ANTHROPIC_SECRET) == []


def test_a_401_after_no_key_was_sent_says_how_to_name_one() -> None:
    with FakeLLM(api_key=NAMED_SECRET) as server:
        completed = fanout(*ASK, "--base-url", server.openai_url, ":::", "a",
                           OPENAI_API_KEY=OPENAI_SECRET)  # fmt: skip
    assert completed.returncode == 1
    reason = details_by_id(completed, "a")["reason"]
    assert reason.startswith("HTTP 401: ")
    assert "no API key was sent to 127.0.0.1" in reason
    assert "--api-key-env NAME" in reason
    [request] = received(server)
    assert "authorization" not in request.headers


def test_a_provider_defined_on_the_command_line_end_to_end() -> None:
    with FakeLLM(api_key=NAMED_SECRET) as server:
        completed = fanout(*ASK, "--provider", "router", "--api", "openai", "--base-url",
                           server.openai_url, "--api-key-env", "MYKEY", ":::", "a",
                           OPENAI_API_KEY=OPENAI_SECRET, MYKEY=NAMED_SECRET)
    assert completed.returncode == 0, completed.stderr
    [request] = received(server)
    assert request.headers["authorization"] == f"Bearer {NAMED_SECRET}"
    assert details_by_id(completed, "a")["agent"]["provider"] == "router"


def test_an_unknown_provider_without_a_url_is_one_error_line() -> None:
    completed = fanout(*ASK, "--provider", "router", ":::", "a")
    line = one_error_line(completed, no_run_folder=True)
    assert "unknown provider 'router'" in line and "--base-url URL and --api" in line
