"""Class 3 of issue 14: a value never becomes code, in any shell context a template holds.

Each test runs the installed `fanout` with values that would create a file named
`pwned` (or empty a fake HOME) if any of them ran, in the places where quoting a value
into the script is not enough: a here-document body, arithmetic, and the nested places
where quoting is easy to get wrong. The value must arrive byte for byte wherever the
place passes it through, and `--dry-run` must print a command that does the same."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_clean, one_error_line, run_fanout, write_tasks

HOSTILE = [
    "$(touch pwned)",
    "`touch pwned`",
    "x\nEOF\ntouch pwned\nEOF",  # ends the here-document early, if it can
    "'\"; touch pwned; echo \"'",
    "$((1+$(touch pwned)))",
    "a[$(touch pwned)]",
    "${IFS}$(touch${IFS}pwned)",
    "\\\\$(touch pwned)\\",
]
ARITHMETIC_HOSTILE = [
    "1+$(touch pwned)",  # the issue's reproduction
    "a[$(touch pwned)]",  # bash (/bin/sh on Fedora and macOS) runs a subscript's $(...)
    "x[`touch pwned`]",
    "1; touch pwned",
    "PATH=0",  # a name: arithmetic could assign it
]


def assert_nothing_ran(tmp_path: Path) -> None:
    assert not list(tmp_path.rglob("pwned*")), "a value ran as code"


def task_stdout(run_dir: Path, seq: int) -> bytes:
    (path,) = run_dir.glob(f"{seq:04d}-*.stdout")
    return path.read_bytes()


@pytest.mark.parametrize("delimiter", ["<<EOF", "<< EOF", "<<-EOF"])
def test_value_in_an_unquoted_here_document_is_text(tmp_path: Path, delimiter: str) -> None:
    tab = "\t" if delimiter == "<<-EOF" else ""
    command = f"cat {delimiter}\n{tab}[{{}}]\n{tab}EOF\necho after"
    completed = run_fanout("run", "--", command, ":::", *HOSTILE)
    assert completed.returncode == 0, completed.stderr
    for seq, value in enumerate(HOSTILE, start=1):
        assert task_stdout(completed.run_dir, seq) == f"[{value}]\nafter\n".encode()
    assert_nothing_ran(tmp_path)


def test_the_issues_here_document_reproduction(tmp_path: Path) -> None:
    completed = run_fanout("run", "--", "cat <<EOF\n{}\nEOF", ":::", "$(touch pwned)")
    assert completed.returncode == 0, completed.stderr
    assert task_stdout(completed.run_dir, 1) == b"$(touch pwned)\n"
    assert_nothing_ran(tmp_path)


def test_arithmetic_reads_numbers_and_refuses_anything_else(tmp_path: Path) -> None:
    values = ["21", " -4 ", "0x10", "(1+2)*3", *ARITHMETIC_HOSTILE]
    completed = run_fanout("run", "--format", "json", "--", "echo $(( {} * 2 ))", ":::", *values)
    assert completed.returncode == 1, completed.stderr
    assert_clean(completed)
    for seq, expected in enumerate([b"42\n", b"-8\n", b"32\n", b"18\n"], start=1):
        assert task_stdout(completed.run_dir, seq) == expected
    rows = completed.manifest()["tasks"]
    for row in rows[4:]:
        assert row["status"] == "failure", row
        assert "refused" in row["summary"] and "arithmetic" in row["summary"], row
    assert_nothing_ran(tmp_path)


@pytest.mark.parametrize(
    "command",
    [
        "echo $(( {} ))",  # the issue's reproduction
        "echo $(( $(echo {}) + 1 ))",  # what a command inside arithmetic prints
        "echo $(( 1 + {} )) $[{}]",
        "x=$(( {} )); echo $x",
    ],
)
def test_value_in_arithmetic_never_runs(tmp_path: Path, command: str) -> None:
    completed = run_fanout("run", "--", command, ":::", *ARITHMETIC_HOSTILE)
    assert completed.returncode == 1, completed.stderr
    assert_clean(completed)
    assert_nothing_ran(tmp_path)


NESTED = [
    ("printf '[%s]' {}", "[{v}]"),
    ("printf '[%s]' '{}'", "[{v}]"),
    ('printf "[%s]" "x{}y"', "[x{v}y]"),
    ('printf \'[%s]\' "$(printf %s "$(printf %s {})")"', "[{v}]"),
    ("printf '[%s]' \"`printf %s {}`\"", "[{v}]"),
    ("printf '[%s]' ${unset_variable:-{}}", "[{v}]"),
    ("printf '[%s]' \"${unset_variable:-{}}\"", "[{v}]"),
    ("case {} in {}) printf '[%s]' {};; *) exit 3;; esac", "[{v}]"),
    ("f() { printf '[%s]' \"$1\"; }; f {}", "[{v}]"),
    ("printf '[%s]' {} # it's a comment: {}", "[{v}]"),
]


@pytest.mark.parametrize(("command", "shown"), NESTED, ids=[c for c, _ in NESTED])
def test_value_in_nested_places_arrives_exactly(tmp_path: Path, command: str, shown: str) -> None:
    values = [value for value in HOSTILE if not value.endswith("\n")]
    completed = run_fanout("run", "--", command, ":::", *values)
    assert completed.returncode == 0, completed.stderr
    for seq, value in enumerate(values, start=1):
        assert task_stdout(completed.run_dir, seq) == shown.format(v=value).encode()
    assert_nothing_ran(tmp_path)


@pytest.mark.parametrize("delimiter", ["<<'EOF'", '<<"EOF"', "<<\\EOF", "<<E'O'F", "<<-'EOF'"])
def test_value_in_a_quoted_here_document_is_text_and_the_rest_stays_literal(
    tmp_path: Path, delimiter: str
) -> None:
    """The body of <<'EOF' is printed as written ($HOME, `cmd`, backslashes), with the
    value in it exactly."""
    body = "$HOME `touch pwned` \\ \\\\ [{}] $(touch pwned)"
    completed = run_fanout("run", "--", f"cat {delimiter}\n{body}\nEOF", ":::", *HOSTILE)
    assert completed.returncode == 0, completed.stderr
    for seq, value in enumerate(HOSTILE, start=1):
        expected = body.replace("{}", value) + "\n"
        assert task_stdout(completed.run_dir, seq) == expected.encode()
    assert_nothing_ran(tmp_path)


@pytest.mark.parametrize("command", ["cat <<'E O F'\n{}\nE O F", "cat <<'EOF'\n{}", "cat <<{}\nx"])
def test_value_no_reference_can_reach_is_a_usage_error(command: str) -> None:
    completed = run_fanout("run", "--", command, ":::", "v")
    line = one_error_line(completed, no_run_folder=True)
    assert "here-document" in line, line


def test_numbers_fanout_makes_may_stand_in_a_quoted_here_document() -> None:
    completed = run_fanout("run", "--", "cat <<'EOF'\n{#} $x\nEOF", ":::", "a", "b")
    assert completed.returncode == 0, completed.stderr
    assert task_stdout(completed.run_dir, 2) == b"2 $x\n"


@pytest.mark.parametrize(
    "command", ["cat <<EOF\n{}\nEOF", "echo $(( {} ))", "printf %s \"$(echo '{}')\""]
)
def test_dry_run_prints_a_command_that_does_the_same(tmp_path: Path, command: str) -> None:
    value = "7" if "((" in command else "$(touch pwned)\n`touch pwned`'\""
    completed = run_fanout("run", "-0", "--dry-run", "--", command, input=value.encode() + b"\0")
    assert completed.returncode == 0, completed.stderr
    pasted = subprocess.run(
        ["/bin/sh", "-c", completed.stdout], cwd=tmp_path, capture_output=True, check=False
    )
    ran = run_fanout("run", "-0", "--", command, input=value.encode() + b"\0")
    assert ran.returncode == 0, ran.stderr
    assert pasted.returncode == 0, pasted.stderr
    assert pasted.stdout == task_stdout(ran.run_dir, 1)
    assert value.encode() in pasted.stdout
    assert_nothing_ran(tmp_path)


def test_details_file_records_the_command_that_ran(tmp_path: Path) -> None:
    completed = run_fanout("run", "--", "cat <<EOF\n{}\nEOF", ":::", "$(touch pwned)")
    assert completed.returncode == 0, completed.stderr
    (details,) = completed.run_dir.glob("0001-*.json")
    document = completed.details(details.name)
    assert document["command"] == "set -- '$(touch pwned)'; cat <<EOF\n${1+\"$1\"}\nEOF"
    again = subprocess.run(
        ["/bin/sh", "-c", document["command"]], cwd=tmp_path, capture_output=True, check=True
    )
    assert again.stdout == b"$(touch pwned)\n"
    assert_nothing_ran(tmp_path)


def test_task_file_fan_out_keeps_values_out_of_the_script(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.toml",
        '[[task]]\nid = "t"\ncmd = "cat <<EOF\\n{}\\nEOF\\necho $(( {#} * 2 ))"\n'
        'foreach = ["$(touch pwned)", "a[$(touch pwned)]"]\n',
    )
    completed = run_fanout("run", str(tasks))
    assert completed.returncode == 0, completed.stderr
    assert task_stdout(completed.run_dir, 1) == b"$(touch pwned)\n2\n"
    assert task_stdout(completed.run_dir, 2) == b"a[$(touch pwned)]\n4\n"
    assert_nothing_ran(tmp_path)


def test_task_file_quoted_here_document_error_names_the_file(tmp_path: Path) -> None:
    tasks = write_tasks(
        tmp_path / "tasks.toml",
        '[[task]]\nid = "t"\ncmd = "cat <<\'E F\'\\n{}\\nE F"\nforeach = ["a"]\n',
    )
    line = one_error_line(run_fanout("run", str(tasks)), no_run_folder=True)
    assert line.startswith(f"fanout: error: {tasks}:3: ") and "here-document" in line, line


@pytest.mark.parametrize("command", ["cat <<EOF\nhello\nEOF", "cat <<'EOF'\nhello\nEOF"])
def test_value_appended_to_a_script_ending_in_a_here_document_is_a_usage_error(
    command: str,
) -> None:
    line = one_error_line(run_fanout("run", "--", command, ":::", "v"), no_run_folder=True)
    assert "here-document" in line and "write {}" in line, line
