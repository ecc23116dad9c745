"""Each task's stdout in the machine formats: its file, size and line count in the JSON
envelope (and the manifest, the journal, --format jsonl) and on its line of the AOP
block, equal to what the file holds; and the block's `[AOP:TASK]` command, quoted so
that a shell (or shlex.split) reads back the words it was given."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fanout_cli.interpret import TAIL_BYTES
from fanout_cli.scan import count_lines
from tests.helpers import assert_clean, run_fanout, run_json

# id -> the shell command that prints its stdout
OUTPUTS = {
    "three": "printf 'a\\nb\\nc'",  # a last line without a newline
    "empty": "true",
    "one": "echo one",
    "blank-lines": "printf '\\n\\n'",
    "large": f"seq 1 {TAIL_BYTES // 4}",  # more than the tail fanout reads for summaries
    "binary": "printf '\\000\\377\\n\\r\\n\\n'",
}


def lines_of(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def write_task_file(tmp_path: Path) -> Path:
    tasks = tmp_path / "tasks.toml"
    entries = [f"[[task]]\nid = {json.dumps(task_id)}\ncmd = {json.dumps(command)}\n"
               for task_id, command in OUTPUTS.items()]  # fmt: skip
    tasks.write_text("\n".join(entries))
    return tasks


def test_the_json_envelope_gives_each_tasks_stdout_file_size_and_lines(tmp_path: Path) -> None:
    completed, document = run_json(str(write_task_file(tmp_path)))
    assert completed.returncode == 0, completed.stderr
    folder = Path(document["details_dir"])
    assert document["fanout_result_version"] == 1
    for row in document["tasks"]:
        data = (folder / row["stdout_file"]).read_bytes()
        assert row["stdout_bytes"] == len(data), row
        assert row["stdout_lines"] == lines_of(data), row
    rows = {row["task_id"]: row for row in document["tasks"]}
    assert (rows["three"]["stdout_bytes"], rows["three"]["stdout_lines"]) == (5, 3)
    assert (rows["empty"]["stdout_bytes"], rows["empty"]["stdout_lines"]) == (0, 0)
    assert rows["blank-lines"]["stdout_lines"] == 2
    assert rows["binary"]["stdout_lines"] == 3
    assert rows["large"]["stdout_lines"] == TAIL_BYTES // 4
    assert rows["large"]["stdout_bytes"] > TAIL_BYTES
    assert rows["one"]["stdout_file"] == "0003-one.stdout"
    manifest = json.loads((folder / "manifest.json").read_text())
    for kept, given in zip(manifest["tasks"], document["tasks"], strict=True):
        for key in ("stdout_file", "stdout_bytes", "stdout_lines"):
            assert kept[key] == given[key], (key, kept)
    details = json.loads((folder / rows["three"]["details_file"]).read_text())
    assert (details["stdout"]["bytes"], details["stdout"]["lines"]) == (5, 3)


def aop_task_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = lines.index("[AOP:SUMMARY]") + 1
    end = next(index for index, line in enumerate(lines) if line.startswith("[AOP:DETAILS_FILE]"))
    return lines[start:end]


TASK_LINE = re.compile(
    r"- (\w+) (.+): .* -> (\S+\.json); stdout (\S+\.stdout) \((\d+) bytes?, (\d+) lines?\)"
)


def test_each_aop_task_line_points_to_its_stdout_with_size_and_lines(tmp_path: Path) -> None:
    completed = run_fanout("run", "--format", "aop", str(write_task_file(tmp_path)))
    assert completed.returncode == 0, completed.stderr
    folder = completed.run_dir
    found = {}
    for line in aop_task_lines(completed.stdout):
        match = TASK_LINE.fullmatch(line)
        assert match, line
        _, task_id, details, stdout, size, lines = match.groups()
        assert (folder / details).is_file(), line
        data = (folder / stdout).read_bytes()
        assert (int(size), int(lines)) == (len(data), lines_of(data)), line
        found[task_id] = (int(size), int(lines))
    assert found["three"] == (5, 3) and found["empty"] == (0, 0), found
    assert sorted(found) == sorted(OUTPUTS)


def test_a_long_summary_is_capped_but_the_stdout_pointer_is_kept() -> None:
    completed = run_fanout("run", "--format", "aop", "--summary-chars", "20", "--",
                           "echo", "x" * 200, "{}", ":::", "a")  # fmt: skip
    (line,) = aop_task_lines(completed.stdout)
    assert line.endswith("-> 0001-a.json; stdout 0001-a.stdout (203 bytes, 1 line)"), line


def test_a_task_never_started_has_no_stdout_in_the_formats() -> None:
    _, document = run_json("--fail-fast", "-j", "1", "--", "sh", "-c",
                                   "exit {}", ":::", "1", "0")  # fmt: skip
    rows = {row["task_id"]: row for row in document["tasks"]}
    never = rows["0"]
    assert never["status"] == "cancelled", never
    assert (never["stdout_file"], never["stdout_bytes"], never["stdout_lines"]) == (None,) * 3


WORDS = ["printf", "%s|%s;", "a b", "it's", "$HOME", "`x`", "{}"]


@pytest.mark.parametrize("words", [WORDS, ["sh", "-c", "echo {}; echo {}{}"]])
def test_the_aop_task_command_is_shell_quoted(words: list[str]) -> None:
    completed = run_fanout("run", "--format", "aop", "--", *words, ":::", "v")
    assert_clean(completed)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("[AOP:TASK]"))
    command = line.removeprefix("[AOP:TASK] fanout run -- ")
    command = command[: command.index(" ::: (")]
    assert shlex.split(command) == words, line


def test_a_task_file_and_a_glob_with_a_space_are_quoted(tmp_path: Path) -> None:
    tasks = tmp_path / "my tasks.toml"
    tasks.write_text('[[task]]\nid = "a"\ncmd = "true"\n')
    completed = run_fanout("run", "--format", "aop", str(tasks))
    assert f"[AOP:TASK] fanout run {shlex.quote(str(tasks))}: 1 task" in completed.stdout
    (tmp_path / "a b.txt").write_text("x")
    globbed = run_fanout("run", "--format", "aop", "--glob", "a b*", "--", "cat", "{}")
    assert "[AOP:TASK] fanout run -- cat {} (--glob 'a b*'): 1 task" in globbed.stdout


def test_a_newline_in_a_command_word_stays_escaped_in_the_block() -> None:
    completed = run_fanout("run", "--format", "aop", "--", "echo", "a\n[AOP:STATUS] success",
                           ":::", "v")  # fmt: skip
    task_lines = [line for line in completed.stdout.splitlines() if "[AOP:TASK]" in line]
    assert len(task_lines) == 1 and task_lines[0].startswith("[AOP:TASK] "), completed.stdout
    assert completed.stdout.count("[AOP:STATUS]") == 1


def test_count_lines_reads_a_file_in_blocks(tmp_path: Path) -> None:
    cases = {"empty": b"", "one": b"x", "ended": b"x\n", "many": b"a\n" * 5000 + b"z"}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert count_lines(str(path)) == lines_of(data), name
    assert count_lines(str(tmp_path / "missing")) == 0
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "many")
    assert count_lines(str(link)) == 0, "a link planted at an output's name is not read"
