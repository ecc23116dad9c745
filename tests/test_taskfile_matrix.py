"""A [[task]] fanned out by `matrix` (every combination of its lists) or by `foreach`
tables (named values): the tasks it makes, the errors it names, and real runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanout_cli.errors import EXIT_USAGE, TaskFileError
from fanout_cli.models import TaskSpec
from fanout_cli.sources.taskfile import parse_task_file
from fanout_cli.sources.taskfile_expand import MAX_TASKS_PER_ENTRY
from tests.helpers import assert_clean, one_error_line, run_fanout, write_tasks


def specs_of(text: str) -> tuple[TaskSpec, ...]:
    return parse_task_file(text, "tasks.toml").specs


def error_of(text: str) -> TaskFileError:
    with pytest.raises(TaskFileError) as raised:
        parse_task_file(text, "tasks.toml")
    assert raised.value.exit_code == EXIT_USAGE
    return raised.value


# --- matrix ----------------------------------------------------------------------------

MATRIX = """\
[[task]]
id = "plain"
cmd = ["true"]

[[task]]
id = "test"
cmd = ["run", "--py={py}", "{os}", "{1}/{2}", "{#}"]
cwd = "work/{os}"
env = { PY = "python{py}", KEEP = "${HOME} {print}" }
matrix = { py = ["3.11", "3.12"], os = ["linux", "mac"] }
"""


def test_matrix_makes_a_task_per_combination_the_last_key_fastest() -> None:
    specs = specs_of(MATRIX)
    assert [spec.task_id for spec in specs] == [
        "plain", "test-3.11-linux", "test-3.11-mac", "test-3.12-linux", "test-3.12-mac",
    ]  # fmt: skip
    assert [spec.seq for spec in specs] == [1, 2, 3, 4, 5]
    assert {spec.origin for spec in specs[1:]} == {"tasks.toml:5"}
    assert [spec.input for spec in specs[1:]] == [
        {"py": "3.11", "os": "linux"}, {"py": "3.11", "os": "mac"},
        {"py": "3.12", "os": "linux"}, {"py": "3.12", "os": "mac"},
    ]  # fmt: skip


def test_matrix_values_fill_cmd_cwd_and_env() -> None:
    spec = specs_of(MATRIX)[3]
    assert spec.command == ("run", "--py=3.12", "linux", "3.12/linux", "4")
    assert spec.cwd == "work/linux"
    assert spec.env == {"PY": "python3.12", "KEEP": "${HOME} {print}"}  # unknown names: text


def test_matrix_without_an_id_is_named_by_its_values() -> None:
    specs = specs_of('[[task]]\ncmd = ["echo"]\nmatrix = { a = ["x", "y"], b = ["1"] }\n')
    assert [spec.task_id for spec in specs] == ["x 1", "y 1"]
    assert [spec.command for spec in specs] == [("echo", "x", "1"), ("echo", "y", "1")]


def test_an_id_with_replacement_strings_is_filled_in() -> None:
    specs = specs_of('[[task]]\nid = "{os}/{py.}-{#}"\ncmd = ["echo", "{}"]\n'
                     'matrix = { py = ["a.tar.gz"], os = ["lin", "mac"] }\n')  # fmt: skip
    assert [spec.task_id for spec in specs] == ["lin/a.tar-1", "mac/a.tar-2"]
    assert specs[0].command == ("echo", "a.tar.gz", "lin")  # {}: each value, an argument each


def test_modifiers_work_on_named_values() -> None:
    (spec,) = specs_of('[[task]]\ncmd = ["echo", "{f.}", "{f/}", "{f//}", "{f/.}", "{1/}"]\n'
                       'matrix = { f = ["dir/sub/x.tar.gz"] }\n')  # fmt: skip
    assert spec.command == ("echo", "dir/sub/x.tar", "x.tar.gz", "dir/sub", "x.tar", "x.tar.gz")


def test_numbers_in_a_matrix_are_text_as_toml_writes_them() -> None:
    specs = specs_of('[[task]]\nid = "n{n}"\ncmd = ["echo", "{n}"]\n'
                     'matrix = { n = [1, 2.5, -3] }\n')
    assert [spec.command for spec in specs] == [("echo", "1"), ("echo", "2.5"), ("echo", "-3")]


def test_a_matrix_sub_table_keeps_its_key_order() -> None:
    text = '[[task]]\ncmd = ["echo", "{1}"]\n[task.matrix]\nz = ["1", "2"]\na = ["x"]\n'
    assert [spec.task_id for spec in specs_of(text)] == ["1 x", "2 x"]


def test_a_shell_string_reads_matrix_values_as_parameters() -> None:
    (spec,) = specs_of("[[task]]\ncmd = \"awk '{print}' {f} | wc -l\"\n"
                       'matrix = { f = ["a b"] }\n')
    assert isinstance(spec.command, str)
    assert "a b" in spec.command and "awk '{print}'" in spec.command


def test_an_agent_prompt_and_attach_take_matrix_values() -> None:
    specs = specs_of('[[task]]\nkind = "agent"\nprompt = "Review {file} for {topic}"\n'
                     'attach = ["{file}"]\n'
                     'matrix = { file = ["a.py"], topic = ["bugs", "style"] }\n')  # fmt: skip
    assert [spec.task_id for spec in specs] == ["a.py bugs", "a.py style"]
    assert specs[1].agent is not None
    assert specs[1].agent.prompt == "Review a.py for style"
    assert specs[1].agent.attach == ("a.py",)


def test_the_task_count_is_the_whole_file() -> None:
    specs = specs_of('[[task]]\ncmd = ["echo", "{#}/{##}"]\nforeach = ["a", "b"]\n\n'
                     '[[task]]\ncmd = ["echo", "{#}/{##}"]\n'
                     'matrix = { x = ["1", "2", "3"] }\n')  # fmt: skip
    assert [spec.command[1] for spec in specs] == ["1/5", "2/5", "3/5", "4/5", "5/5"]


def test_the_slot_is_filled_in_when_the_task_starts() -> None:
    spec = specs_of('[[task]]\ncmd = ["echo", "{%}", "{x}"]\nmatrix = { x = ["a", "b"] }\n')[1]
    assert spec.command_for_slot(3) == ("echo", "3", "b")


# Any text TOML can hold (no NUL, DEL or lone surrogates, which it cannot write raw).
VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\x00\x7f"),
                 max_size=12)  # fmt: skip


@given(st.lists(VALUES, min_size=1, max_size=3, unique=True), VALUES)
def test_any_value_reaches_the_command_and_the_record_unchanged(
    firsts: list[str], second: str
) -> None:
    text = (f'[[task]]\nid = "t{{#}}"\ncmd = ["echo", "{{a}}", "<{{b}}>"]\n'
            f"matrix = {{ a = {json.dumps(firsts, ensure_ascii=False)}, "
            f"b = [{json.dumps(second, ensure_ascii=False)}] }}\n")  # fmt: skip
    specs = specs_of(text)
    assert [spec.command for spec in specs] == [("echo", first, f"<{second}>") for first in firsts]
    assert [spec.input for spec in specs] == [{"a": first, "b": second} for first in firsts]


# --- foreach tables --------------------------------------------------------------------

FOREACH_TABLES = """\
[[task]]
id = "convert-{src/.}"
cmd = ["convert", "{src}", "{dst}"]
foreach = [{ src = "img/a.png", dst = "a.webp" }, { dst = "b.webp", src = "img/b.png" }]
"""


def test_foreach_tables_make_a_task_per_table() -> None:
    specs = specs_of(FOREACH_TABLES)
    assert [spec.task_id for spec in specs] == ["convert-a", "convert-b"]
    assert [spec.command for spec in specs] == [
        ("convert", "img/a.png", "a.webp"), ("convert", "img/b.png", "b.webp"),
    ]  # fmt: skip
    assert specs[1].input == {"src": "img/b.png", "dst": "b.webp"}  # the first table's order


def test_foreach_tables_id_and_braces() -> None:
    specs = specs_of('[[task]]\nid = "job: {}"\ncmd = ["echo", "{1}", "{2}"]\n'
                     'foreach = [{ a = "x", b = 1 }]\n')  # fmt: skip
    assert specs[0].task_id == "job: x 1"
    assert specs[0].command == ("echo", "x", "1")


def test_foreach_as_an_array_of_tables() -> None:
    text = ('[[task]]\nid = "t"\ncmd = ["echo", "{n}"]\n'
            '[[task.foreach]]\nn = "one"\n[[task.foreach]]\nn = "two"\n')  # fmt: skip
    assert [spec.task_id for spec in specs_of(text)] == ["t-one", "t-two"]


def test_plain_foreach_values_keep_their_shape() -> None:
    specs = specs_of('[[task]]\nid = "x"\ncmd = ["echo", "{}"]\nforeach = ["a", 2]\n')
    assert [(spec.task_id, spec.input, spec.command) for spec in specs] == [
        ("x-a", "a", ("echo", "a")), ("x-2", "2", ("echo", "2")),
    ]  # fmt: skip


# --- errors ----------------------------------------------------------------------------

TWO_KEYS = 'matrix = { py = ["3.11"], os = ["linux"] }\n'
ERRORS = [
    pytest.param('cmd = ["e"]\nmatrix = { py = [] }\n', 3, "matrix.py is an empty list",
                 id="empty-list"),
    pytest.param('cmd = ["e"]\n[task.matrix]\npy = ["1"]\nos = []\n', 5,
                 "matrix.os is an empty list", id="empty-list-sub-table"),
    pytest.param('cmd = ["e"]\nmatrix = {}\n', 3, "matrix is empty", id="empty-matrix"),
    pytest.param('cmd = ["e"]\nmatrix = ["3.11"]\n', 3, "matrix must be a table of lists",
                 id="not-a-table"),
    pytest.param('cmd = ["e"]\nmatrix = { py = "3.11" }\n', 3,
                 "matrix.py must be a list of values, got a string", id="not-a-list"),
    pytest.param('cmd = ["e"]\nmatrix = { py-version = ["3.11"] }\n', 3,
                 "'py-version' is not a name", id="key-not-a-name"),
    pytest.param('cmd = ["e"]\n[task.matrix]\n"1x" = ["a"]\n', 4, "'1x' is not a name",
                 id="key-starts-with-a-digit"),
    pytest.param('cmd = ["e"]\nmatrix = { py = [true] }\n', 3,
                 "matrix.py: a value must be a string or a number, got a boolean", id="bool"),
    pytest.param('cmd = ["e"]\nmatrix = { py = [{ a = "1" }] }\n', 3,
                 "got a table", id="table-value"),
    pytest.param('cmd = ["e"]\nmatrix = { py = [["1"]] }\n', 3, "got an array",
                 id="array-value"),
    pytest.param('cmd = ["e"]\nmatrix = { py = ["a\\u0000"] }\n', 3,
                 "matrix.py: a value holds a NUL character", id="nul"),
    pytest.param('cmd = ["e"]\nforeach = ["a"]\nmatrix = { py = ["1"] }\n', 4,
                 "not foreach and matrix", id="with-foreach"),
    pytest.param('cmd = ["e"]\nglob = "*"\nmatrix = { py = ["1"] }\n', 4,
                 "not glob and matrix", id="with-glob"),
    pytest.param('cmd = ["e", "{3}"]\n' + TWO_KEYS, 2, "{3} is not a replacement string",
                 id="position-past-the-keys"),
    pytest.param('cmd = "echo {..}"\n' + TWO_KEYS, 2, "{..} is not a replacement string",
                 id="unsupported-in-a-shell-string"),
    pytest.param('id = "t{3}"\ncmd = ["e"]\n' + TWO_KEYS, 2, "id 't{3}': {3} is not",
                 id="in-the-id"),
    pytest.param('cmd = ["e"]\ncwd = "a/{..}"\n' + TWO_KEYS, 3, "cwd 'a/{..}'",
                 id="in-cwd"),
    pytest.param('cmd = ["e"]\nenv = { A = "{0}" }\n' + TWO_KEYS, 3, "env.A '{0}'",
                 id="in-env"),
    pytest.param('kind = "agent"\nprompt = "{+/}"\n' + TWO_KEYS, 3, "prompt '{+/}'",
                 id="in-a-prompt"),
    pytest.param('id = "same"\ncmd = ["e"]\nmatrix = { a = ["x-y", "x"], b = ["z", "y-z"] }\n',
                 2, "duplicate task id 'same-x-y-z'", id="ids-collide"),
    pytest.param('cmd = ["e"]\nforeach = [{ src = "a", dst = "b" }, { src = "c" }]\n', 3,
                 "foreach entry 2 has the keys src, entry 1 has src, dst", id="keys-differ"),
    pytest.param('cmd = ["e"]\nforeach = [{ src = "a" }, "b"]\n', 3,
                 "foreach entry 2 is a string, not a table", id="mixed"),
    pytest.param('cmd = ["e"]\nforeach = [{}]\n', 3, "foreach entry 1 is an empty table",
                 id="empty-table"),
    pytest.param('cmd = ["e"]\nforeach = [{ a = { b = "c" } }]\n', 3,
                 "foreach entry 1: a: a value must be a string or a number, got a table",
                 id="nested-table"),
    pytest.param('cmd = ["e"]\nforeach = [{ "a b" = "c" }]\n', 3, "'a b' is not a name",
                 id="table-key-not-a-name"),
    pytest.param('cmd = ["e"]\nforeach = []\n', 3, "foreach must be a non-empty list",
                 id="empty-foreach"),
    pytest.param('cmd = ["e", "{2}"]\nforeach = ["a"]\n', 2, "{2} is not a replacement string",
                 id="plain-foreach-position-two"),
]


@pytest.mark.parametrize(("body", "line", "problem"), ERRORS)
def test_a_bad_matrix_or_foreach_names_its_line(body: str, line: int, problem: str) -> None:
    error = error_of("[[task]]\n" + body)
    assert error.message.startswith(f"tasks.toml:{line}: "), error.message
    assert problem in error.message, error.message


def test_an_array_of_tables_entry_that_differs_names_its_own_line() -> None:
    error = error_of('[[task]]\ncmd = ["e"]\n[[task.foreach]]\na = "1"\n'
                     '[[task.foreach]]\nb = "2"\n')  # fmt: skip
    assert error.line == 5 and "foreach entry 2 has the keys b" in error.message, error.message


def test_a_bad_replacement_in_defaults_names_the_defaults_line() -> None:
    error = error_of('[defaults]\nenv = { A = "{..}" }\n\n[[task]]\nid = "t"\ncmd = ["e"]\n'
                     'matrix = { x = ["1"] }\n')  # fmt: skip
    assert error.message.startswith("tasks.toml:2: [[task]] 't': env.A '{..}'"), error.message


def test_a_matrix_too_large_is_refused_before_it_is_built() -> None:
    lists = ", ".join(f'k{n} = [{", ".join(str(v) for v in range(10))}]' for n in range(10))
    error = error_of(f'[[task]]\ncmd = ["e"]\nmatrix = {{ {lists} }}\n')
    assert f"matrix makes 10000000000 tasks, more than the {MAX_TASKS_PER_ENTRY}" in error.message


# --- end to end: the installed fanout, real processes ----------------------------------


def details(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(run_dir.glob("0*.json"))]


def saved_list(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "tasks.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if "task_id" in line]


def test_a_matrix_runs_a_process_per_combination(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", '[[task]]\nid = "t"\n'
                        'cmd = ["sh", "-c", "echo \\"$0 $1 $V\\"", "{py}", "{os}"]\n'
                        'env = { V = "v{py}" }\n'
                        'matrix = { py = ["3.11", "3.12"], os = ["a", "b"] }\n')  # fmt: skip
    completed = run_fanout("run", str(tasks))
    assert completed.returncode == 0, completed.stderr
    documents = details(completed.run_dir)
    assert [document["task_id"] for document in documents] == [
        "t-3.11-a", "t-3.11-b", "t-3.12-a", "t-3.12-b",
    ]  # fmt: skip
    assert documents[1]["input"] == {"py": "3.11", "os": "b"}
    assert documents[1]["origin"] == f"{tasks}:1"
    assert [(completed.run_dir / document["stdout"]["path"]).read_text()
            for document in documents] == ["3.11 a v3.11\n", "3.11 b v3.11\n", "3.12 a v3.12\n",
                                           "3.12 b v3.12\n"]  # fmt: skip
    assert [task["input"] for task in saved_list(completed.run_dir)] == [
        document["input"] for document in documents
    ]


def test_foreach_tables_run_with_their_named_values(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.txt").write_text("B")
    tasks = write_tasks(tmp_path / "tasks.toml",
                        '[[task]]\nid = "copy {src}"\ncmd = ["cp", "{src}", "{dst}"]\n'
                        'foreach = [{ src = "a.txt", dst = "a.out" },\n'
                        '           { src = "b.txt", dst = "b.out" }]\n')  # fmt: skip
    completed = run_fanout("run", str(tasks))
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "a.out").read_text() == "A" and (tmp_path / "b.out").read_text() == "B"
    assert [document["input"] for document in details(completed.run_dir)] == [
        {"src": "a.txt", "dst": "a.out"}, {"src": "b.txt", "dst": "b.out"},
    ]  # fmt: skip


def test_a_matrix_dry_run_prints_each_command(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml",
                        '[[task]]\ncmd = ["echo", "{x}-{y}"]\n'
                        'matrix = { x = ["1", "2"], y = ["a b"] }\n')  # fmt: skip
    completed = run_fanout("run", "--dry-run", str(tasks))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["echo '1-a b'", "echo '2-a b'"]


FLAKY = """\
[[task]]
id = "check"
cmd = "test -e done-{py}-{os} || { touch done-{py}-{os}; exit 1; }"
matrix = { py = ["3.11", "3.12"], os = ["linux"] }
"""


@pytest.mark.parametrize("with_file", [False, True], ids=["saved-list", "task-file"])
def test_resume_reruns_only_the_failed_combinations(tmp_path: Path, with_file: bool) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", FLAKY)
    (tmp_path / "done-3.12-linux").touch()  # that combination passes the first time
    first = run_fanout("run", str(tasks))
    assert first.returncode == 1, first.stderr
    run_id = first.run_dir.name
    source = [str(tasks)] if with_file else []
    again = run_fanout("run", *source, "--resume-failed", run_id, "--format", "json")
    assert again.returncode == 0, again.stderr
    rows = {row["task_id"]: row for row in json.loads(again.stdout)["tasks"]}
    assert set(rows) == {"check-3.11-linux", "check-3.12-linux"}
    assert {row["status"] for row in rows.values()} == {"success"}
    attempts = {document["task_id"]: document["attempts"] for document in details(first.run_dir)}
    assert len(attempts["check-3.12-linux"]) == 1  # kept, not run again
    assert [task["seq"] for task in saved_list(first.run_dir)] == [1, 2]


def test_a_bad_replacement_string_is_one_line(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml",
                        '[[task]]\nid = "t"\ncmd = ["echo", "{3}"]\n'
                        'matrix = { a = ["1"], b = ["2"] }\n')  # fmt: skip
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert line.startswith(f"fanout: error: {tasks}:3: [[task]] 't': "), line
    assert "{3} is not a replacement string" in line and "{a} {b}" in line, line


def test_hostile_matrix_values_stay_data(tmp_path: Path) -> None:
    values = ["$(touch pwned)", "`touch pwned`", "a;touch pwned", "'\"\\"]
    tasks = write_tasks(tmp_path / "tasks.toml",
                        f'[[task]]\ncmd = "printf \'<%s|%s>\' {{v}} {{w}}"\n'
                        f'matrix = {{ v = {json.dumps(values)}, w = ["{{x}}"] }}\n')  # fmt: skip
    completed = run_fanout("run", str(tasks))
    assert_clean(completed)
    assert completed.returncode == 0, completed.stderr
    outputs = [(completed.run_dir / document["stdout"]["path"]).read_text()
               for document in details(completed.run_dir)]  # fmt: skip
    assert outputs == [f"<{value}|{{x}}>" for value in values]
    assert not list(tmp_path.rglob("pwned*")), "a value ran as code"


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel is not installed")
def test_the_order_is_gnu_parallels(tmp_path: Path) -> None:
    """A matrix combines its lists as GNU parallel combines ::: sources."""
    oracle = subprocess.run(["parallel", "--will-cite", "-k", "echo", "{1}", "{2}", "{3}",
                             ":::", "a", "b", ":::", "1", "2", "3", ":::", "x", "y"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    tasks = write_tasks(tmp_path / "tasks.toml", '[[task]]\ncmd = ["echo", "{1}", "{2}", "{3}"]\n'
                        'matrix = { p = ["a", "b"], q = [1, 2, 3], r = ["x", "y"] }\n')  # fmt: skip
    completed = run_fanout("run", "--dry-run", str(tasks))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [f"echo {line}" for line in oracle.stdout.splitlines()]
