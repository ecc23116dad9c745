"""The TOML task file: what a valid file becomes, and `FILE:LINE: problem` for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from fanout_cli.errors import EXIT_USAGE, TaskFileError
from fanout_cli.models import TaskSpec
from fanout_cli.sources.taskfile import load_task_file, parse_task_file
from fanout_cli.sources.toml_lines import nesting_problem

FULL_FILE = """\
# a complete task file
[run]
jobs = 4
strategy = "partial-success"
min_successes = 2

[defaults]
timeout = "5m"
retries = 2
env = { CI = "1", LANG = "C" }

[[task]]
id = "unit"
cmd = ["pytest", "-q", "tests/unit"]
cwd = "services/api"
timeout = "10m"
retries = 1
env = { LANG = "C.UTF-8", EXTRA = "x" }

[[task]]
cmd = "grep -c TODO src/*.py | sort"
ok_exit = "0,1"
timeout = 30

[[task]]
id = "lint"
cmd = ["ruff", "check"]
ok_exit = [0, 2]
retries = 0
"""


def test_full_file_run_options() -> None:
    task_file = parse_task_file(FULL_FILE)
    assert task_file.path == "tasks.toml"
    assert dict(task_file.run_options) == {
        "jobs": 4,
        "strategy": "partial-success",
        "min_successes": 2,
    }
    assert dict(task_file.run_option_lines) == {"jobs": 3, "strategy": 4, "min_successes": 5}


def test_full_file_specs() -> None:
    specs = parse_task_file(FULL_FILE).specs
    assert specs == (
        TaskSpec(
            seq=1,
            task_id="unit",
            command=("pytest", "-q", "tests/unit"),
            origin="tasks.toml:12",
            cwd="services/api",
            env={"CI": "1", "LANG": "C.UTF-8", "EXTRA": "x"},
            timeout=600.0,
            retries=1,
            ok_exit=None,
        ),
        TaskSpec(
            seq=2,
            task_id="task-2",
            command="grep -c TODO src/*.py | sort",
            origin="tasks.toml:20",
            cwd=None,
            env={"CI": "1", "LANG": "C"},
            timeout=30.0,
            retries=2,
            ok_exit=frozenset({0, 1}),
        ),
        TaskSpec(
            seq=3,
            task_id="lint",
            command=("ruff", "check"),
            origin="tasks.toml:25",
            cwd=None,
            env={"CI": "1", "LANG": "C"},
            timeout=300.0,
            retries=0,
            ok_exit=frozenset({0, 2}),
        ),
    )


def test_list_cmd_is_exec_and_string_cmd_is_shell() -> None:
    unit, shell, _ = parse_task_file(FULL_FILE).specs
    assert isinstance(unit.command, tuple)
    assert isinstance(shell.command, str)


def test_minimal_file_leaves_options_unset() -> None:
    (spec,) = parse_task_file('[[task]]\ncmd = ["echo", "hi"]\n').specs
    assert spec.task_id == "task-1"
    assert spec.origin == "tasks.toml:1"
    assert (spec.cwd, spec.timeout, spec.retries, spec.ok_exit) == (None, None, None, None)
    assert dict(spec.env) == {}


def test_env_as_sub_table_of_defaults_merges() -> None:
    text = '[defaults.env]\nA = "1"\nB = "2"\n\n[[task]]\ncmd = ["x"]\nenv = { B = "3" }\n'
    (spec,) = parse_task_file(text).specs
    assert dict(spec.env) == {"A": "1", "B": "3"}


def test_load_task_file_reads_from_disk(tmp_path: Path) -> None:
    (tmp_path / "tasks.toml").write_text(FULL_FILE, encoding="utf-8")
    task_file = load_task_file("tasks.toml")
    assert task_file.specs == parse_task_file(FULL_FILE).specs
    assert task_file.specs[0].origin == "tasks.toml:12"


def test_origin_names_the_file_given(tmp_path: Path) -> None:
    path = tmp_path / "ci" / "shards.toml"
    path.parent.mkdir()
    path.write_text('\n\n[[task]]\ncmd = "true"\n', encoding="utf-8")
    (spec,) = load_task_file(str(path)).specs
    assert spec.origin == f"{path}:3"


# --- errors --------------------------------------------------------------------------

MULTILINE_STRING_THEN_BAD_KEY = '''\
[[task]]
id = "a"
cmd = """
echo [[task]]
timout = 3
[run]
"""

[[task]]
id = "b"
cmd = ["true"]
timout = "5s"
'''

MULTILINE_ARRAY_THEN_BAD_KEY = """\
[[task]]
id = "a"
cmd = [
  "echo",   # a ] in a comment
  "x = 1",
  "[[task]]",
  "]",
]
bogus = 2
"""

MULTILINE_LITERAL_THEN_BAD_KEY = """\
[[task]]
id = 'a'
cmd = '''
[[task]]
bogus = 1
'''
retries = 1
bogus = 2
"""

ERROR_CASES = [
    pytest.param(
        '[[task]]\ncmd = ["a"]\ntimout = "5s"\n',
        3,
        "unknown key 'timout'",
        "did you mean 'timeout'?",
        id="unknown-task-key-did-you-mean",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\n"cwdd" = "x"\n',
        3,
        "unknown key 'cwdd'",
        "did you mean 'cwd'?",
        id="unknown-quoted-key",
    ),
    pytest.param(
        'jobs = 4\n[[task]]\ncmd = ["a"]\n',
        1,
        "unknown key 'jobs' at the top level",
        "run, defaults, agent, reduce, task",
        id="unknown-top-level-key",
    ),
    pytest.param(
        '[taks]\nx = 1\n[[task]]\ncmd = ["a"]\n',
        1,
        "unknown key 'taks' at the top level",
        "",
        id="misspelt-top-level-table",
    ),
    pytest.param(
        '[run]\njobs = 2\nstrategey = "best-of-n"\n[[task]]\ncmd = ["a"]\n',
        3,
        "unknown key 'strategey' in [run]",
        "did you mean 'strategy'?",
        id="unknown-run-key",
    ),
    pytest.param(
        '[run]\njobs = 2\nmodel = "m"\n[[task]]\ncmd = ["a"]\n',
        3,
        "unknown key 'model' in [run]: model is an agent setting: it goes in [agent]",
        "",
        id="model-in-run-goes-in-agent",
    ),
    pytest.param(
        '[run]\nbase_url = "http://127.0.0.1:8080/v1"\n[[task]]\ncmd = ["a"]\n',
        2,
        "unknown key 'base_url' in [run]: base_url goes in [agent] base_url",
        "base_url in [agent.providers.NAME], or --base-url",
        id="base-url-in-run",
    ),
    pytest.param(
        '[agent]\nmodel = "m"\njobs = 4\n[[task]]\ncmd = ["a"]\n',
        3,
        "unknown key 'jobs' in [agent] (jobs is a run setting: it goes in [run])",
        "",
        id="run-key-in-agent",
    ),
    pytest.param(
        '[agent]\napi_key = "sk-not-here-0123456789abcdef"\n[[task]]\ncmd = ["a"]\n',
        2,
        "unknown key 'api_key' in [agent] (fanout reads a key only from the environment",
        "api_key_env in [agent.providers.NAME] or --api-key-env",
        id="a-key-in-the-file",
    ),
    pytest.param(
        '[agent.providers.local]\nbase_url = "http://127.0.0.1:8080/v1"\n[[task]]\ncmd = ["a"]\n',
        1,
        '[agent.providers.local]: api is required: api = "openai" (Chat Completions',
        'or api = "anthropic" (Messages)',
        id="provider-without-api",
    ),
    pytest.param(
        '[agent.providers.local]\napi = "openai"\nmodel = "m"\n[[task]]\ncmd = ["a"]\n',
        3,
        "unknown key 'model' in [agent.providers.local] (model goes in [agent]",
        "or in a [[task]]",
        id="model-in-a-provider-table",
    ),
    pytest.param(
        '[defaults]\ntimeout = "5s"\ncmd = ["a"]\n[[task]]\ncmd = ["a"]\n',
        3,
        "unknown key 'cmd' in [defaults]",
        "",
        id="unknown-defaults-key",
    ),
    pytest.param(
        '[[task]]\nid = "x"\ncmd = 5\n',
        3,
        "cmd must be a list of words or a shell string",
        "got a number",
        id="cmd-number",
    ),
    pytest.param(
        '[[task]]\ncmd = ["echo", 1]\n',
        2,
        "every word of cmd must be a string",
        "",
        id="cmd-list-with-number",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\ntimeout = "ten"\n',
        3,
        "timeout",
        "'ten'",
        id="timeout-ten",
    ),
    pytest.param(
        '[defaults]\ntimeout = "ten"\n[[task]]\ncmd = ["a"]\n',
        2,
        "[defaults]: timeout",
        "'ten'",
        id="defaults-timeout-ten",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\nretries = -1\n',
        3,
        "retries",
        "from 0 to 100",
        id="retries-negative",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\nenv = { CI = 1 }\n',
        3,
        "env.CI must be a string",
        "got a number",
        id="env-value-not-a-string",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\n[task.env]\nA = "1"\nCI = true\n',
        5,
        "env.CI must be a string",
        "got a boolean",
        id="env-value-not-a-string-in-task-sub-table",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\nenv = "CI=1"\n',
        3,
        "env must be a table",
        "",
        id="env-not-a-table",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\nok_exit = [0, 300]\n',
        3,
        "ok_exit",
        "0 to 255",
        id="ok-exit-300",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\ncwd = 3\n',
        3,
        "cwd must be a non-empty string",
        "",
        id="cwd-number",
    ),
    pytest.param(
        '[[task]]\nid = "a"\ncmd = ["a"]\n\n[[task]]\nid = "a"\ncmd = ["b"]\n',
        6,
        "duplicate task id 'a'",
        "line 2",
        id="duplicate-id",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\n\n[[task]]\ncmd = ["b"]\n\n[[task]]\nid = "task-2"\ncmd = ["c"]\n',
        8,
        "duplicate task id 'task-2'",
        "line 4",
        id="explicit-id-collides-with-default",
    ),
    pytest.param(
        '[[task]]\nid = "task-2"\ncmd = ["a"]\n\n[[task]]\ncmd = ["b"]\n',
        5,
        "duplicate task id 'task-2'",
        "line 2",
        id="default-id-collides-with-earlier-explicit",
    ),
    pytest.param(
        '[[task]]\nid = ""\ncmd = ["a"]\n',
        2,
        "id must be a non-empty string",
        "",
        id="empty-id",
    ),
    pytest.param(
        '[[task]]\nid = "a"\ncmd = ["a"]\n\n[[task]]\nid = "b"\ncwd = "src"\n',
        5,
        "missing cmd",
        "'b'",
        id="missing-cmd",
    ),
    pytest.param(
        "[[task]]\ncmd = []\n",
        2,
        "cmd is an empty list",
        "",
        id="empty-cmd-list",
    ),
    pytest.param(
        '[[task]]\ncmd = "   "\n',
        2,
        "cmd is an empty string",
        "",
        id="empty-cmd-string",
    ),
    pytest.param(
        '[[task]]\ncmd = [""]\n',
        2,
        "program name in cmd is empty",
        "",
        id="empty-program-name",
    ),
    pytest.param(
        '[run]\njobs = 1\n\n[task]\ncmd = ["a"]\n',
        4,
        "[[task]]",
        "array of tables",
        id="task-as-single-table",
    ),
    pytest.param(
        'run = 3\n[[task]]\ncmd = ["a"]\n',
        1,
        "'run' must be a table",
        "",
        id="run-not-a-table",
    ),
    pytest.param(
        "task = []\n",
        1,
        "no tasks",
        "empty",
        id="empty-task-array",
    ),
    pytest.param(
        "[run]\njobs = 2\n",
        None,
        "no tasks",
        "[[task]]",
        id="no-tasks",
    ),
    pytest.param("", None, "no tasks", "", id="empty-file"),
    pytest.param(
        '[[task]]\ncmd = ["a"\nid = "x"\n',
        3,
        "invalid TOML",
        "",
        id="broken-toml-unclosed-array",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\nid = \n',
        3,
        "invalid TOML",
        "",
        id="broken-toml-missing-value",
    ),
    pytest.param(
        '[[task]]\ncmd = ["a"]\ncmd = ["b"]\n',
        3,
        "invalid TOML",
        "",
        id="broken-toml-duplicate-key",
    ),
    pytest.param(
        MULTILINE_STRING_THEN_BAD_KEY,
        12,
        "unknown key 'timout' in [[task]] 'b'",
        "did you mean 'timeout'?",
        id="bad-key-after-multiline-string-with-header-and-key-text",
    ),
    pytest.param(
        MULTILINE_ARRAY_THEN_BAD_KEY,
        9,
        "unknown key 'bogus' in [[task]] 'a'",
        "",
        id="bad-key-after-multiline-array",
    ),
    pytest.param(
        MULTILINE_LITERAL_THEN_BAD_KEY,
        8,
        "unknown key 'bogus' in [[task]] 'a'",
        "",
        id="bad-key-after-multiline-literal-string",
    ),
]


@pytest.mark.parametrize(("text", "line", "problem", "detail"), ERROR_CASES)
def test_errors_name_file_and_line(text: str, line: int | None, problem: str, detail: str) -> None:
    with pytest.raises(TaskFileError) as raised:
        parse_task_file(text, "tasks.toml")
    error = raised.value
    prefix = f"tasks.toml:{line}: " if line is not None else "tasks.toml: "
    assert error.message.startswith(prefix), error.message
    assert error.line == line
    assert problem in error.message
    assert detail in error.message
    assert error.exit_code == EXIT_USAGE
    assert "sk-not-here" not in error.message  # a key given by mistake is never echoed


def test_tomllib_line_is_kept(tmp_path: Path) -> None:
    text = '[[task]]\ncmd = ["a"]\n\n\n\nid = "unterminated\n'
    with pytest.raises(TaskFileError) as raised:
        parse_task_file(text, "shards.toml")
    assert raised.value.message.startswith("shards.toml:6: invalid TOML: ")
    # tomllib's own "(at line N, column M)" suffix is folded into the prefix.
    assert "at line" not in raised.value.message


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "tasks.toml").write_bytes(b'[[task]]\ncmd = ["a"]\nid = "caf\xe9"\n')
    with pytest.raises(TaskFileError) as raised:
        load_task_file("tasks.toml")
    assert raised.value.message == "tasks.toml:3: the task file is not valid UTF-8"
    assert raised.value.line == 3


@pytest.mark.parametrize(
    ("name", "make", "detail"),
    [
        pytest.param("missing.toml", False, "No such file", id="missing-file"),
        pytest.param("a-directory", True, "Is a directory", id="directory"),
    ],
)
def test_unreadable_file_has_no_line(tmp_path: Path, name: str, make: bool, detail: str) -> None:
    if make:
        (tmp_path / name).mkdir()
    with pytest.raises(TaskFileError) as raised:
        load_task_file(name)
    assert raised.value.line is None
    assert raised.value.message.startswith(f"{name}: cannot read the task file")
    assert detail in raised.value.message


# --- bounded structures (issue 14, class 7) ------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("x = " + "[" * 33 + "]" * 33, (1, "nesting deeper than 32 levels"),
                     id="arrays-33-deep"),
        pytest.param("x = 1\n[a]\ny = " + "{b = " * 40 + "1" + "}" * 40,
                     (3, "nesting deeper than 32 levels"), id="inline-tables-on-line-3"),
        pytest.param(".".join("k" * 33) + " = 1", (1, "a dotted key of more than 32 parts"),
                     id="dotted-key-33-parts"),
        pytest.param('x = """\n\n' + "[" * 40 + '\n"""\n[' + ".".join("k" * 40) + "]",
                     (5, "a dotted key of more than 32 parts"), id="after-a-multiline-string"),
    ],
)
def test_nesting_problem_finds_deep_structures(text: str, expected: tuple[int, str]) -> None:
    assert nesting_problem(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x = " + "[" * 32 + "]" * 32, id="arrays-32-deep"),
        pytest.param(".".join("k" * 32) + " = 1", id="dotted-key-32-parts"),
        pytest.param('x = "' + "[" * 100 + '"', id="brackets-in-a-string"),
        pytest.param("x = '" + "{" * 100 + "'", id="braces-in-a-literal-string"),
        pytest.param("# " + "[" * 100 + "\nx = 1", id="brackets-in-a-comment"),
        pytest.param('x = "' + "." * 100 + '"', id="dots-in-a-string"),
        pytest.param("x = [" + ", ".join(["1.5"] * 100) + "]", id="many-floats"),
        pytest.param("x = '''\n" + "[" * 100 + "\n'''", id="brackets-in-a-multiline-string"),
    ],
)
def test_nesting_problem_passes_ordinary_files(text: str) -> None:
    assert nesting_problem(text) is None


def test_a_deep_task_file_is_refused_before_the_toml_parser(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"t\.toml:1: nesting deeper than 32 levels"):
        parse_task_file("x = " + "[" * 5000 + "]" * 5000, str(tmp_path / "t.toml"))
