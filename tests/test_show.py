"""`fanout show` finds what a person types, then prints a compact header and the output.

End to end with the installed `fanout`: every form of RUN (id, prefix, `last`, the
manifest path a verdict line prints, a run folder inside or outside the output dir, a
task file's path) and of TASK (id, id with or without its trailing slash, seq number,
details or output file name or path, unique prefix), the errors (ambiguous prefix,
unknown task), the header and the output after it, binary output, `--json`, and a
link planted at the stdout file's name."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from tests.helpers import FANOUT, Completed, assert_clean, one_error_line, output_dir, run_fanout

SEPARATOR = b"----- stdout -----"


def show(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`fanout show ARGS` with its raw bytes."""
    return subprocess.run([str(FANOUT), "show", *args], capture_output=True, timeout=30,
                          check=False)  # fmt: skip


def shown_ok(*args: str) -> bytes:
    completed = show(*args)
    assert completed.returncode == 0, (args, completed.stderr)
    assert not completed.stderr, completed.stderr
    return completed.stdout


def header_of(output: bytes) -> list[str]:
    """The lines before the output."""
    assert SEPARATOR in output, output
    return output[: output.index(SEPARATOR)].decode().splitlines()


def task_shown(output: bytes) -> str:
    """The id of the task the header shows (its first line: `STATUS  ID  seq N ...`)."""
    first = header_of(output)[0]
    return first.split("  ")[1]


def run(run_id: str, *args: str, env: dict[str, str] | None = None) -> Completed:
    completed = run_fanout("run", "--run-id", run_id, *args, env=env)
    assert_clean(completed)
    assert completed.returncode in (0, 1), completed.stderr
    return completed


IDS = ("lint", "lint-docs", "src/a.py", "repos/billing/", "e2e", "unit")


def run_named_tasks(run_id: str = "r") -> Completed:
    """One task an id of IDS, each printing its own id."""
    return run(run_id, "--", "echo", "out:{}", ":::", *IDS)


# --- RUN --------------------------------------------------------------------------------


def test_run_by_the_manifest_path_the_verdict_line_prints(tmp_path: Path) -> None:
    completed = run_named_tasks()
    verdict = completed.stdout.splitlines()[-1]
    printed = verdict.rsplit(" · ", 1)[1]
    assert printed.endswith("manifest.json"), verdict
    manifest = output_dir() / "r" / "manifest.json"
    relative = str(manifest.relative_to(tmp_path))
    for name in (printed, relative, str(manifest), f"./{relative}"):
        assert task_shown(shown_ok(name, "lint")) == "lint", name
        table = shown_ok(name).decode()
        assert "lint-docs" in table and table.splitlines()[-1].startswith("pass"), name


def test_run_by_its_folder_with_or_without_a_slash_and_outside_the_output_dir(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    run("far", "--output-dir", str(elsewhere), "--", "echo", "far:{}", ":::", "x")
    run_named_tasks()  # the output dir has another run, newer
    folder = elsewhere / "far"
    for name in (str(folder), f"{folder}/", "elsewhere/far", "elsewhere/far/",
                 "elsewhere/far/manifest.json"):  # fmt: skip
        output = shown_ok(name, "x")
        assert task_shown(output) == "x", name
        assert output.endswith(b"far:x\n"), output


def test_run_by_id_prefix_and_last() -> None:
    run_named_tasks("20261122T101530-3f9a")
    for name in ("20261122T101530-3f9a", "20261122T1015", "last"):
        assert task_shown(shown_ok(name, "unit")) == "unit", name


def test_a_task_file_path_alone_names_its_run_and_task() -> None:
    run_named_tasks()
    folder = output_dir() / "r"
    details = sorted(folder.glob("*-e2e.json"))[0]
    for path in (details, details.with_suffix(".stdout")):
        output = shown_ok(str(path))
        assert task_shown(output) == "e2e", path
        assert output.endswith(b"out:e2e\n")


def test_an_unknown_run_or_path_is_one_error_line(tmp_path: Path) -> None:
    run_named_tasks()
    (tmp_path / "plain").mkdir()
    for name in ("no-such-run", str(tmp_path / "plain"), str(tmp_path / "plain" / "manifest.json")):
        line = one_error_line(Completed(*_as_text(show(name, "lint")), output_dir()))
        assert name in line or repr(name) in line, line


# --- TASK -------------------------------------------------------------------------------


def test_task_by_id_slash_seq_file_name_and_prefix(tmp_path: Path) -> None:
    run_named_tasks()
    folder = output_dir() / "r"
    e2e_details = sorted(folder.glob("*-e2e.json"))[0]
    forms = {
        "lint": "lint",
        "lint/": "lint",  # tab completion of a folder-like id
        "src/a.py": "src/a.py",
        "src/a.py/": "src/a.py",
        "repos/billing/": "repos/billing/",
        "repos/billing": "repos/billing/",  # a glob '*/' id without its slash
        "2": "lint-docs",  # seq
        e2e_details.name: "e2e",
        e2e_details.stem: "e2e",
        e2e_details.with_suffix(".stdout").name: "e2e",
        e2e_details.with_suffix(".a1.stderr").name: "e2e",  # an earlier attempt's
        str(e2e_details): "e2e",
        str(e2e_details.relative_to(tmp_path)): "e2e",
        "un": "unit",  # a unique prefix
        "src/": "src/a.py",
        "lint-d": "lint-docs",
    }
    for typed, task_id in forms.items():
        output = shown_ok("r", typed)
        assert task_shown(output) == task_id, (typed, header_of(output))
        assert output.endswith(f"out:{task_id}\n".encode()), (typed, output)


def test_an_exact_id_wins_over_a_prefix_and_an_ambiguous_prefix_lists_candidates() -> None:
    run_named_tasks()
    assert task_shown(shown_ok("r", "lint")) == "lint"  # also a prefix of lint-docs
    line = one_error_line(Completed(*_as_text(show("r", "li")), output_dir()))
    assert "'li'" in line and "lint" in line and "lint-docs" in line, line
    assert "2 tasks" in line, line


def test_an_unknown_task_is_one_error_line() -> None:
    run_named_tasks()
    for typed in ("nope", "99", "0099-x.json", "lint-docs-more"):
        line = one_error_line(Completed(*_as_text(show("r", typed)), output_dir()))
        assert repr(typed) in line and "r" in line, line


def test_an_ambiguous_prefix_names_at_most_a_few_candidates() -> None:
    values = [f"job-{number:02d}" for number in range(12)]
    run("many", "--", "true", ":::", *values)
    line = one_error_line(Completed(*_as_text(show("many", "job-")), output_dir()))
    assert "12 tasks" in line and "job-00" in line and "job-11" not in line, line


# --- what it prints ---------------------------------------------------------------------


def test_a_compact_header_then_stdout_then_stderr(tmp_path: Path) -> None:
    script = "printf 'line one\\nline two\\n'; echo oops >&2; exit 3"
    run("r", "--retries", "1", "--", "sh", "-c", script, "{}", ":::", "it's a b;c")
    output = shown_ok("r", "it's a b;c")
    header = header_of(output)
    assert len(header) <= 7, header
    first = header[0]
    assert first.startswith("failure  it's a b;c  seq 1"), first
    assert "exit 3" in first and "2 attempts" in first, first
    command = next(line for line in header if line.startswith("command: "))
    words = shlex.split(command.removeprefix("command: "))
    assert words == ["sh", "-c", script, "it's a b;c"], command
    assert any(line.startswith("summary: oops") for line in header), header
    folder = output_dir() / "r"
    paths = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in header[1:]}
    assert Path(paths["details"]).resolve() == (folder / "0001-it_s_a_b_c.json").resolve()
    stdout_path, stdout_size = paths["stdout"].split(" (", 1)
    assert Path(stdout_path).resolve() == (folder / "0001-it_s_a_b_c.stdout").resolve()
    assert stdout_size == "18 bytes, 2 lines)", paths["stdout"]
    body = output[output.index(SEPARATOR) :]
    assert body == b"----- stdout -----\nline one\nline two\n----- stderr -----\noops\n", body


def test_an_empty_stream_gets_no_section_and_a_last_line_without_newline_is_ended() -> None:
    run("r", "--", "printf", "%.0sno newline", ":::", "a")
    output = shown_ok("r", "a")
    assert output.endswith(b"----- stdout -----\nno newline\n"), output
    assert b"----- stderr" not in output
    assert any(line.startswith("stderr: ") and "(empty)" in line for line in header_of(output))


def test_binary_output_is_printed_byte_for_byte(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64 + b"\xff\xfe\x00tail\n"
    (tmp_path / "blob").write_bytes(data)
    run("r", "--", "cat", "{}", ":::", str(tmp_path / "blob"))
    output = shown_ok("r", "1")
    assert output.endswith(SEPARATOR + b"\n" + data), output[-300:]


def test_json_prints_the_details_document_and_the_run_rows() -> None:
    run_named_tasks()
    folder = output_dir() / "r"
    details = json.loads(sorted(folder.glob("*-e2e.json"))[0].read_text())
    assert json.loads(shown_ok("r", "e2e", "--json")) == details
    rows = [json.loads(line) for line in shown_ok("r", "--json").splitlines()]
    assert [row["task_id"] for row in rows] == list(IDS)
    assert rows[0]["details_file"] == "0001-lint.json"


def test_a_control_character_in_an_id_is_escaped_in_the_header_not_in_the_output() -> None:
    run("r", "--", "printf", "%s\\n", ":::", "a\x1b[31mred")
    output = shown_ok("r", "1")
    header = "\n".join(header_of(output))
    assert "\x1b" not in header and "a\\x1b[31mred" in header, header
    assert output.endswith(b"a\x1b[31mred\n"), "the task's own bytes are its own"


def test_a_link_planted_at_the_stdout_file_name_is_not_followed(tmp_path: Path) -> None:
    run("r", "--", "echo", ":::", "a")
    victim = tmp_path / "victim.txt"
    victim.write_text("SECRET-VICTIM\n")
    stdout = output_dir() / "r" / "0001-a.stdout"
    stdout.unlink()
    stdout.symlink_to(victim)
    for args in (("r", "a"), (str(stdout),)):
        completed = Completed(*_as_text(show(*args)), output_dir())
        line = one_error_line(completed)
        assert "0001-a.stdout" in line and "symbolic link" in line, line
        assert "SECRET-VICTIM" not in completed.stdout


def _as_text(completed: subprocess.CompletedProcess[bytes]) -> tuple[int, str, str]:
    return (completed.returncode, completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"))  # fmt: skip
