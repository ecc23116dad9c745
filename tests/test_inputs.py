"""GNU parallel's input model: several sources, positional and named values, columns,
batches. Unit tests of the pieces (sources/inputs.py, sources/batch.py, template.py,
replacements.py) and end-to-end runs of the installed binary with real processes.
The byte-for-byte comparison with the real GNU parallel is tests/test_gnu_oracle.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from fanout_cli.errors import UsageError
from fanout_cli.replacements import Args, Grammar
from fanout_cli.sources.batch import Batcher
from fanout_cli.sources.inputs import Batching, InputList, InputPlan, Inputs, split_sources
from fanout_cli.template import Template, meant_for_a_shell
from tests.helpers import FANOUT, one_error_line, read_journal, run_fanout, wait_until

# --- the sources after the command ----------------------------------------------------


def test_markers_split_the_command_from_its_sources() -> None:
    command, sources = split_sources(
        ["echo", "{1}", ":::", "a", "b", ":::+", "1", "2", "::::", "f", "g", "::::+", "h"]
    )
    assert command == ("echo", "{1}")
    assert sources == (
        InputList(values=("a", "b")),
        InputList(values=("1", "2"), linked=True),
        InputList(path="f"),
        InputList(path="g"),
        InputList(path="h", linked=True),
    )


@pytest.mark.parametrize(
    ("words", "wanted"),
    [
        (["echo", ":::"], "::: (source 1) has no values"),
        (["echo", ":::", "a", ":::"], "::: (source 2) has no values"),
        (["echo", "::::"], ":::: (source 1) has no file names"),
        (["echo", ":::+", "a"], ":::+ links to the source before it, and there is none"),
    ],
)
def test_an_empty_or_dangling_source_is_refused(words: list[str], wanted: str) -> None:
    with pytest.raises(UsageError, match="^" + re.escape(wanted)):
        split_sources(words)


def records(*sources: InputList, **plan: object) -> list[tuple[str, ...]]:
    inputs = Inputs(InputPlan(tuple(sources), **plan))  # type: ignore[arg-type]
    return [values for values, _ in inputs.records()]


def values(*given: str, linked: bool = False) -> InputList:
    return InputList(values=given, linked=linked)


def test_every_combination_with_the_last_source_varying_fastest() -> None:
    assert records(values("a", "b"), values("1", "2"), values("x")) == [
        ("a", "1", "x"), ("a", "2", "x"), ("b", "1", "x"), ("b", "2", "x"),
    ]  # fmt: skip


def test_a_linked_source_pairs_by_position_and_the_shortest_decides() -> None:
    assert records(values("a", "b", "c"), values("1", "2", linked=True)) == [("a", "1"), ("b", "2")]
    # A linked pair is one source for the combinations.
    assert records(values("a", "b"), values("1", "2", linked=True), values("x", "y")) == [
        ("a", "1", "x"), ("a", "1", "y"), ("b", "2", "x"), ("b", "2", "y"),
    ]  # fmt: skip


def test_link_pairs_every_source_and_a_shorter_one_wraps() -> None:
    assert records(values("a", "b"), values("1", "2", "3"), link=True) == [
        ("a", "1"), ("b", "2"), ("a", "3"),
    ]  # fmt: skip


def test_origins_name_each_source_of_a_combination(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("x\n\ny\n")
    inputs = Inputs(InputPlan((InputList(path=str(listed)), values("a", "b"))))
    assert [origin for _, origin in inputs.records()] == [
        f"{listed}:1+:::1", f"{listed}:1+:::2", f"{listed}:3+:::1", f"{listed}:3+:::2",
    ]  # fmt: skip


def test_colsep_cuts_values_into_columns_and_header_names_them(tmp_path: Path) -> None:
    table = tmp_path / "jobs.tsv"
    table.write_text("src\tdst\na.png\ta.webp\nb.png\tb.webp\n")
    inputs = Inputs(InputPlan((InputList(path=str(table)),), colsep="\t", header=True))
    assert inputs.names == ("src", "dst")
    assert inputs.width == 2
    assert [values for values, _ in inputs.records()] == [("a.png", "a.webp"), ("b.png", "b.webp")]


def test_header_names_braces_cannot_spell_only_cannot_be_used() -> None:
    inputs = Inputs(InputPlan((values("first name", "ann"), values("x", "1")), header=True))
    assert inputs.names == ("first name", "x")
    assert Args((("ann", "1"),)).recorded(inputs.names) == {"first name": "ann", "x": "1"}
    # A name given twice that no {name} can spell is no ambiguity: the values are a list.
    twice = Inputs(InputPlan((values("a b", "1"), values("a b", "2")), header=True))
    assert Args((("1", "2"),)).recorded(twice.names) == ["1", "2"]


def test_header_of_value_lists_is_their_first_value() -> None:
    inputs = Inputs(InputPlan((values("a", "1", "2"), values("b", "3")), header=True))
    assert inputs.names == ("a", "b")
    assert [values for values, _ in inputs.records()] == [("1", "3"), ("2", "3")]


@pytest.mark.parametrize(
    ("sources", "wanted"),
    [
        ((values("x", "1"), values("x", "2")), "--header: the column name 'x' appears twice"),
    ],
)
def test_a_bad_header_is_refused(sources: tuple[InputList, ...], wanted: str) -> None:
    with pytest.raises(UsageError, match=f"^{wanted}"):
        Inputs(InputPlan(sources, header=True))


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"/nope\.txt: cannot read: No such file"):
        Inputs(InputPlan((InputList(path=str(tmp_path / "nope.txt")),)))


def test_stdin_named_twice_is_refused() -> None:
    with pytest.raises(UsageError, match=r"stdin .* twice"):
        Inputs(InputPlan((InputList(path="-"), InputList(path="-"))))


# --- batches ---------------------------------------------------------------------------


def batches(count: int, jobs: int, **batching: object) -> list[list[str]]:
    template = Template.parse(["echo"], repeat=batching.get("mode") == "X")
    limits = Batching(**batching).limits  # type: ignore[arg-type]
    batcher = Batcher(limits, jobs, template.size, template.increment, 1 << 20)
    made = []
    for n in range(1, count + 1):
        made += batcher.feed(((str(n),), f":::{n}"))
    made += batcher.finish()
    return [[values[0] for values, _ in batch] for batch in made]


def sizes(found: list[list[str]]) -> list[int]:
    return [len(batch) for batch in found]


def test_at_the_end_of_input_a_filling_batch_is_spread_over_the_slots() -> None:
    # As GNU parallel: `parallel -X -j3 echo ::: $(seq 10)` runs 4, 4 and 2 values.
    assert sizes(batches(10, 3, mode="X")) == [4, 4, 2]
    assert sizes(batches(10, 4, mode="m")) == [3, 3, 3, 1]
    assert batches(3, 1, mode="m") == [["1", "2", "3"]]


def test_a_character_limit_cuts_batches_and_only_the_last_is_spread() -> None:
    # As GNU parallel: `parallel -X -j4 -s 20 echo ::: $(seq 30)`.
    assert sizes(batches(30, 4, mode="X", max_chars=20)) == [7, 5, 5, 5, 5, 1, 1, 1]


def test_max_args_takes_n_values_and_a_batch_full_at_the_end_is_spread_with_x() -> None:
    assert sizes(batches(5, 2, max_args=2)) == [2, 2, 1]
    assert sizes(batches(4, 2, mode="X", max_args=4)) == [2, 2]


def test_a_value_too_long_for_any_command_goes_alone() -> None:
    template = Template.parse(["echo"])
    batcher = Batcher(Batching("m").limits, 1, template.size, template.increment, 100)
    made = batcher.feed((("a",), "1")) + batcher.feed((("x" * 500,), "2"))
    made += batcher.feed((("b",), "3")) + batcher.finish()
    assert [[values[0][:1] for values, _ in batch] for batch in made] == [["a"], ["x"], ["b"]]


# --- templates -------------------------------------------------------------------------

TWO = Grammar(2)


def combination(*given: str) -> Args:
    return Args((given,))


def test_all_values_of_a_combination_are_separate_arguments() -> None:
    template = Template.parse(["echo", "x{}y", "{1.}", "{2/}"], grammar=TWO)
    assert template.render(combination("a b.c", "d/e"), 1) == (
        "echo", "xa b.c", "d/ey", "a b", "e",
    )  # fmt: skip
    assert template.display(combination("a b.c", "d/e"), 1) == "echo x'a b.c' d/ey 'a b' e"


def test_with_no_replacement_string_every_value_is_appended() -> None:
    assert Template.parse(["wc", "-l"]).render(combination("a", "b"), 1) == ("wc", "-l", "a", "b")


def test_x_repeats_the_text_around_each_value() -> None:
    batch = Args((("a",), ("b",)))
    assert Template.parse(["echo", "-I{}"], repeat=True).render(batch, 1) == ("echo", "-Ia", "-Ib")
    assert Template.parse(["echo", "-I{}"]).render(batch, 1) == ("echo", "-Ia", "b")


def test_a_shell_script_reads_each_value_as_its_own_parameter() -> None:
    template = Template.parse(['printf "%s|" {} "{1}" && echo {2}'], grammar=TWO)
    script = template.render(combination("$(touch x)", "b c"), 1)
    assert script == (
        "set -- '$(touch x)' 'b c' '$(touch x)' 'b c'; "
        'printf "%s|" "$1" "$2" "${3+"$3"}" && echo "$4"'
    )
    result = subprocess.run(["sh", "-c", str(script)], capture_output=True, text=True, check=True)
    assert result.stdout == "$(touch x)|b c|$(touch x)|b c\n"


def test_x_with_text_around_a_value_in_a_shell_script_is_refused() -> None:
    with pytest.raises(UsageError, match=r"-X repeats the text around \{\} .* or use -m"):
        Template.parse(["echo a{} | cat"], repeat=True)
    assert Template.parse(["echo {} | cat"], repeat=True).shell


@pytest.mark.parametrize("written", ["{3}", "{0}", "{-1}", "{..}", "{+/}", "{= $_ =}", "{1..}"])
def test_replacement_strings_fanout_lacks_are_refused_naming_them(written: str) -> None:
    with pytest.raises(UsageError) as raised:
        Template.parse(["echo", written], grammar=TWO)
    message = str(raised.value)
    assert f"{written} is not a replacement string fanout supports here" in message
    assert "{1}..{2}" in message and "\n" not in message


def test_doubled_braces_are_the_text_and_other_braces_stay() -> None:
    template = Template.parse(["echo", "{{1}}", "{{}}", "{{x}}", "${HOME}", "{a,b}"], grammar=TWO)
    assert template.render(combination("a", "b"), 1) == (
        "echo", "{1}", "{}", "{{x}}", "${HOME}", "{a,b}", "a", "b",  # no replacement string
    )  # fmt: skip


def test_names_are_positions() -> None:
    template = Template.parse(["convert", "{src}", "{dst/.}"], grammar=Grammar(2, ("src", "dst")))
    assert template.render(combination("a.png", "out/a.webp"), 1) == ("convert", "a.png", "a")


@pytest.mark.parametrize(
    "words",
    [["echo", "{}", ">", "out"], ["cat", "{}", "|", "wc"], ["a={};", "echo"],
     ["exit", "3"], ["test", "-f", "{}", "&&", "echo", "yes"]],
)  # fmt: skip
def test_words_only_a_shell_can_run_run_under_a_shell(words: list[str]) -> None:
    assert meant_for_a_shell(words)
    assert Template.parse(words).shell


def test_ordinary_words_still_run_without_a_shell() -> None:
    assert not meant_for_a_shell(["grep", "-c", "a|b", "{}"])
    # find(1) takes these as arguments.
    assert not meant_for_a_shell(["find", "{}", "!", "(", "-name", "x", ")", "-exec", "ls", ";"])
    assert not Template.parse(["echo", ">x", "{}"]).shell


# --- end to end ------------------------------------------------------------------------


def task_inputs(completed: object) -> list[object]:
    manifest = completed.manifest()  # type: ignore[attr-defined]
    run_dir = completed.run_dir  # type: ignore[attr-defined]
    return [json.loads((run_dir / task["details_file"]).read_text())["input"]
            for task in manifest["tasks"]]  # fmt: skip


def test_a_combination_run_records_every_value_and_ids_join_them() -> None:
    completed = run_fanout("run", "-j", "1", "--", "echo", "{2}-{1}", ":::", "a", "b",
                           ":::", "1", "2")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    manifest = completed.manifest()
    assert [task["task_id"] for task in manifest["tasks"]] == ["a 1", "a 2", "b 1", "b 2"]
    assert [task["summary"] for task in manifest["tasks"]] == ["1-a", "2-a", "1-b", "2-b"]
    assert task_inputs(completed) == [["a", "1"], ["a", "2"], ["b", "1"], ["b", "2"]]


def test_named_columns_are_recorded_by_name(tmp_path: Path) -> None:
    table = tmp_path / "jobs.csv"
    table.write_text("src,dst\na.png,a.webp\n")
    completed = run_fanout("run", "--colsep", ",", "--header", ":", "--", "echo", "{dst}",
                           "::::", str(table))  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert task_inputs(completed) == [{"src": "a.png", "dst": "a.webp"}]
    assert completed.manifest()["tasks"][0]["summary"] == "a.webp"


def test_a_batch_is_one_task_named_by_its_first_value_and_count() -> None:
    completed = run_fanout("run", "-X", "-j", "2", "--", "echo", ":::", *"abcde")
    assert completed.returncode == 0, completed.stderr
    tasks = completed.manifest()["tasks"]
    assert [task["task_id"] for task in tasks] == ["a +2 more", "d +1 more"]
    assert [task["summary"] for task in tasks] == ["a b c", "d e"]
    assert task_inputs(completed) == [["a", "b", "c"], ["d", "e"]]


def test_arg_files_come_before_the_sources_after_the_command(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("1\n2\n")
    completed = run_fanout("run", "--dry-run", "-a", str(tmp_path / "f"), "--", "echo",
                           ":::", "A", "B")  # fmt: skip
    assert completed.stdout == "echo 1 A\necho 1 B\necho 2 A\necho 2 B\n"


def test_null_separated_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"a b\0c\nd\0")
    completed = run_fanout("run", "--dry-run", "-0", "--", "echo", "::::", str(tmp_path / "f"))
    assert completed.stdout == "echo 'a b'\necho 'c\nd'\n"


def test_total_count_is_known_to_every_task() -> None:
    completed = run_fanout("run", "--dry-run", "--", "echo", "{#}/{##}", ":::", "a", "b",
                           ":::", "x")  # fmt: skip
    assert completed.stdout == "echo 1/2\necho 2/2\n"


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["--", "echo", ":::"], "::: (source 1) has no values"),
        (["--", "echo", "::::", "/nonexistent/list"], "/nonexistent/list: cannot read"),
        (["--", "echo", "::::", "/"], "/: is a folder, not a file of values"),
        (["--", "echo", ":::", "a", "::::", "/"], "/: is a folder, not a file of values"),
        (["--colsep", "(", "--", "echo", ":::", "a"], "--colsep: not a valid regular expression"),
        (["--header", ":", "--", "echo", ":::", "x", "1", ":::", "x", "2"],
         "the column name 'x' appears twice"),
        (["-N", "0", "--", "echo", ":::", "a"], "--max-args: expected a whole number from 1"),
        (["-m", "-X", "--", "echo", ":::", "a"], "give -m or -X, not both"),
        (["-s", "100", "--", "echo", ":::", "a"], "-s limits the commands of -m, -X and -N"),
        (["--header", "1", "--", "echo", ":::", "a"], "--header: expected :"),
        (["--", "echo", "{3}", ":::", "a", ":::", "b"], "{3} is not a replacement string"),
        (["-N", "2", "--", "echo", ":::", "a", ":::", "b"], "-N groups the values of one"),
        (["--link", "--glob", "*", "--", "echo"], "--link applies to ::: / :::: / -a values"),
        (["-X"], "give the command after --"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args: list[str], wanted: str) -> None:
    line = one_error_line(run_fanout("run", *args), no_run_folder=True)
    assert wanted in line, line


def test_a_streamed_first_source_starts_tasks_before_its_input_ends(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "stream"
    env = {**os.environ, "FANOUT_OUTPUT_DIR": str(tmp_path / "out")}
    process = subprocess.Popen(
        [str(FANOUT), "run", "--run-id", "stream", "--", "echo", "{1}{2}", "::::", "-",
         ":::", "x", "y"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        assert process.stdin is not None
        process.stdin.write(b"a\n")
        process.stdin.flush()
        wait_until(
            lambda: process.poll() is not None
            or {e.get("task_id") for e in read_journal(run_dir, running=True)
                if e["event"] == "task_ended"} >= {"a x", "a y"},
            "tasks of the first line to end while stdin is still open",
            timeout=20,
        )  # fmt: skip
        assert process.poll() is None
        process.stdin.write(b"b\n")
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    ended = [e["task_id"] for e in read_journal(run_dir) if e["event"] == "task_ended"]
    assert sorted(ended) == ["a x", "a y", "b x", "b y"]


def test_a_combination_run_resumes_by_its_tasks() -> None:
    first = run_fanout("run", "--run-id", "r", "--", "sh", "-c", 'test "$1" != b2', "sh", "{1}{2}",
                       ":::", "a", "b", ":::", "1", "2")  # fmt: skip
    assert first.returncode == 1
    again = run_fanout("run", "--resume-failed", "r", "--", "echo", "{1}{2}", ":::", "a", "b",
                       ":::", "1", "2")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(again.manifest()["tasks"]) == 4


def test_a_saved_combination_renders_its_slot_again() -> None:
    from fanout_cli.aop.documents import spec_document, spec_from_document
    from fanout_cli.sources.values import ValueTasks

    template = Template.parse(["echo", "{%}", "{2}", "{1/}"], grammar=TWO)
    spec = ValueTasks(template, grammar=TWO).spec(3, combination("d/a", "b"), ":::1+:::2")
    back = spec_from_document(json.loads(json.dumps(spec_document(spec))))
    assert back == spec
    assert back.command_for_slot(2) == ("echo", "2", "b", "a")
    assert back.input == ["d/a", "b"]


def test_a_redirection_written_as_its_own_word_redirects(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    completed = run_fanout("run", "--", "echo", "{}", ">", str(target), ":::", "$(touch x) hi")
    assert completed.returncode == 0, completed.stderr
    assert target.read_text() == "$(touch x) hi\n"
    assert not Path("x").exists()


def test_a_shell_built_in_runs_as_one() -> None:
    completed = run_fanout("run", "--format", "json", "--", "exit", "{}", ":::", "3")
    tasks = json.loads(completed.stdout)["tasks"]
    assert [(task["status"], task["exit_code"]) for task in tasks] == [("failure", 3)]


def test_a_value_too_long_for_s_is_refused_and_the_run_says_why() -> None:
    alone = run_fanout("run", "--dry-run", "-m", "-s", "10", "--", "echo", ":::", "a" * 14)
    line = one_error_line(alone)
    assert line == ("fanout: error: -s 10: the command for :::1 ('aaaaaaaaaaaaaa') is 19 bytes, "
                    "more than -s allows")  # fmt: skip
    later = run_fanout("run", "-m", "-s", "10", "--", "echo", ":::", "a", "b" * 14)
    assert later.returncode == 2
    assert "-s 10: the command for :::2" in later.stderr
    assert later.manifest()["status"] == "input_error"


def test_s_counts_bytes_as_gnu_parallel_does() -> None:
    completed = run_fanout("run", "--dry-run", "-m", "-s", "22", "-j", "1", "--", "echo", ":::",
                           "é", "€", "ab", "éé", "cd", "e")  # fmt: skip
    assert completed.stdout == "echo 'é' '€' ab\necho 'éé' cd e\n"


def test_slot_and_total_together() -> None:
    completed = run_fanout("run", "-j", "1", "--", "echo", "{%}", "{#}/{##}", ":::", "a", "b")
    assert [task["summary"] for task in completed.manifest()["tasks"]] == ["1 1/2", "1 2/2"]


def test_with_pipe_n_is_records_a_block_as_in_gnu_parallel() -> None:
    by_n = run_fanout("run", "--pipe", "-N", "2", "--dry-run", "--", "wc", "-l",
                      input=b"1\n2\n3\n")  # fmt: skip
    by_l = run_fanout("run", "--pipe", "-L", "2", "--dry-run", "--", "wc", "-l", input=b"1\n2\n3\n")
    assert by_n.returncode == by_l.returncode == 0, by_n.stderr
    assert by_n.stdout == by_l.stdout == "wc -l\nwc -l\n"
