"""Property tests of the input model (issue 15): a value never becomes code, in any new
place a value can go.

For random small lists of hostile values, each test runs the installed `fanout` once
and reads what every task printed from the run folder: the task of each combination
must receive exactly its values, byte for byte, whether the command runs without a
shell (several words) or under sh -c (one word), as {1} {2}, {}, a word around {},
-X and -m batches, --colsep columns and --header names. Tasks print their arguments
NUL-terminated (printf '%s\\0'), so a newline in a value is just another byte."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import assert_clean, run_fanout

FRAGMENTS = [
    "$(touch pwned)", "`touch pwned`", "'", '"', "\\", "\\\\", "*", "?", "[a]", "~", "$HOME",
    "${IFS}", "$((1+1))", ";", "&", "|", ">", "<", "\n", "\t", " ", "-", "--n", "{}", "{1}",
    "{2}", "{=", "%s", "%%", "\\0", "!", "#", "a=b;", "é", "😀", "\u202e", ":::", ",", "/", ".",
    "../", ".tar.gz", "dir/",
    os.fsdecode(b"\xff"),  # not UTF-8: reaches the task as the byte it was
]  # fmt: skip
SEPARATORS = {":::", ":::+", "::::", "::::+"}  # as a word, these start a new source

_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=4)
value = (
    st.lists(st.sampled_from(FRAGMENTS) | _text, max_size=4)
    .map("".join)
    .filter(lambda text: text not in SEPARATORS)
)
values = st.lists(value, min_size=1, max_size=4)
# Columns and header values: no column separator, nothing a line-based file cannot hold
# (no \r at a cell's end either: a line's last cell ending in \r reads as a CRLF line
# end, which fanout strips, as the README says under "Where tasks come from").
cell = value.map(
    lambda text: text.replace(",", "").replace("\t", "").replace("\n", "").rstrip("\r")
)

PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    # The autouse fixture only changes directory and environment: nothing to reset.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTILE_PAIR = (["$(touch pwned)", "'; touch pwned; '"], ["`touch pwned`", '"$(touch pwned)"'])


def encoded(text: str) -> bytes:
    return os.fsencode(text)


def fields(*texts: str) -> bytes:
    """What printf '%s\\0' prints for these arguments."""
    return b"".join(encoded(text) + b"\0" for text in texts)


def run_tasks(tmp_path: Path, *args: str, stdin: bytes = b"") -> Path:
    """Run `fanout run ARGS` into a fresh output folder; the run folder."""
    output_dir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="out-"))
    completed = run_fanout("run", "-q", "--output-dir", str(output_dir), *args, input=stdin)
    assert_clean(completed)
    assert completed.returncode == 0, completed.stderr
    assert not (tmp_path / "pwned").exists(), "a value ran as code"
    (run_folder,) = output_dir.iterdir()
    return run_folder


def task_outputs(tmp_path: Path, *args: str, stdin: bytes = b"") -> list[bytes]:
    """Every task's stdout, in order."""
    run_folder = run_tasks(tmp_path, *args, stdin=stdin)
    return [path.read_bytes() for path in sorted(run_folder.glob("*.stdout"))]


def recorded_inputs(run_folder: Path) -> list[list[str]]:
    """The `input` each task's details file records, in order."""
    details = sorted(path for path in run_folder.glob("[0-9]*.json"))
    return [json.loads(path.read_text())["input"] for path in details]


def combinations(first: Sequence[str], second: Sequence[str]) -> list[tuple[str, str]]:
    return [(one, two) for one in first for two in second]  # the last source varies fastest


@given(first=values, second=values)
@example(*HOSTILE_PAIR)
@example(first=[os.fsdecode(b"\xff/\xfe.x"), ""], second=["\n", "-", "{1}"])
@PROPERTY_SETTINGS
def test_every_combination_gets_its_values_as_arguments(
    tmp_path: Path, first: list[str], second: list[str]
) -> None:
    run_folder = run_tasks(
        tmp_path, "--", "printf", "%s\\0", "{1}", "x{2}y", "{}", ":::", *first, ":::", *second
    )
    outputs = [path.read_bytes() for path in sorted(run_folder.glob("*.stdout"))]
    pairs = combinations(first, second)
    assert outputs == [fields(one, f"x{two}y", one, two) for one, two in pairs]
    assert recorded_inputs(run_folder) == [[one, two] for one, two in pairs]


@given(first=values, second=values)
@example(*HOSTILE_PAIR)
@PROPERTY_SETTINGS
def test_every_combination_gets_its_values_under_a_shell(
    tmp_path: Path, first: list[str], second: list[str]
) -> None:
    script = 'printf "%s\\0" {1} x{2}y "{1}" {} "<{}>"'
    outputs = task_outputs(tmp_path, "--", script, ":::", *first, ":::", *second)
    expected = [fields(one, f"x{two}y", one, one, two, f"<{one} {two}>")
                for one, two in combinations(first, second)]
    assert outputs == expected


@given(given_values=st.lists(value, min_size=1, max_size=12), jobs=st.integers(1, 4))
@example(given_values=[*HOSTILE_PAIR[0], *HOSTILE_PAIR[1]], jobs=2)
@PROPERTY_SETTINGS
def test_x_repeats_the_word_around_each_value(
    tmp_path: Path, given_values: list[str], jobs: int
) -> None:
    outputs = task_outputs(
        tmp_path, "-X", "-j", str(jobs), "-s", "400", "--", "printf", "%s\\0", "<{}>", "{}",
        ":::", *given_values,
    )
    assert b"".join(outputs) == b"".join(
        fields(*[f"<{text}>" for text in batch], *batch) for batch in batches(outputs)
    )
    assert [text for batch in batches(outputs) for text in batch] == given_values


def batches(outputs: list[bytes]) -> list[list[str]]:
    """The values of each -X task above: its fields are N wrapped values then the N values."""
    found = []
    for output in outputs:
        texts = [os.fsdecode(field) for field in output.split(b"\0")[:-1]]
        assert len(texts) % 2 == 0, texts
        found.append(texts[len(texts) // 2:])
    return found


@given(
    given_values=st.lists(value, min_size=1, max_size=12),
    jobs=st.integers(1, 4),
    batching=st.sampled_from(["-m", "-X"]),
)
@example(given_values=[*HOSTILE_PAIR[0], *HOSTILE_PAIR[1]], jobs=2, batching="-m")
@PROPERTY_SETTINGS
def test_a_batch_puts_every_value_in_a_shell_command_once(
    tmp_path: Path, given_values: list[str], jobs: int, batching: str
) -> None:
    outputs = task_outputs(
        tmp_path, batching, "-j", str(jobs), "--", 'printf "%s\\0" {}', ":::", *given_values
    )
    assert b"".join(outputs) == fields(*given_values)
    per_task = -(-len(given_values) // jobs)  # the input is known: spread over the -j slots
    assert len(outputs) == -(-len(given_values) // per_task)


@given(rows=st.lists(st.tuples(cell, cell), min_size=1, max_size=6))
@example(rows=[("$(touch pwned)", "`touch pwned`"), ("'", '"')])
@PROPERTY_SETTINGS
def test_colsep_columns_are_values(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    lines = [f"{one},{two}" for one, two in rows]
    exec_outputs = task_outputs(
        tmp_path, "--colsep", ",", "--", "printf", "%s\\0", "{2}", "{1}", "{}", ":::", *lines
    )
    assert exec_outputs == [fields(two, one, one, two) for one, two in rows]
    shell_outputs = task_outputs(
        tmp_path, "--colsep", ",", "--", 'printf "%s\\0" {2} "{1}"', ":::", *lines
    )
    assert shell_outputs == [fields(two, one) for one, two in rows]


@given(rows=st.lists(st.tuples(cell, cell), min_size=1, max_size=6))
@example(rows=[("$(touch pwned)", "`touch pwned`")])
@PROPERTY_SETTINGS
def test_header_names_give_the_column_values(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    table = tmp_path / "table.tsv"
    table.write_bytes(b"".join(encoded(f"{one}\t{two}\n") for one, two in [("src", "dst"), *rows]))
    outputs = task_outputs(
        tmp_path, "--colsep", "\t", "--header", ":", "--",
        'printf "%s\\0" {dst} x{src}y', "::::", str(table),
    )  # fmt: skip
    assert outputs == [fields(two, f"x{one}y") for one, two in rows]
    first, second = [one for one, _ in rows], [two for _, two in rows]
    outputs = task_outputs(
        tmp_path, "--header", ":", "--", "printf", "%s\\0", "{b}", "{a}",
        ":::", "a", *first, ":::", "b", *second,
    )  # fmt: skip
    assert outputs == [fields(two, one) for one, two in combinations(first, second)]


@given(first=st.lists(value.filter(bool), min_size=1, max_size=4), second=values)
@example(first=["a\nb", "$(touch pwned)\n"], second=["\n", "'"])
@PROPERTY_SETTINGS
def test_nul_separated_stdin_is_a_source_like_any_other(
    tmp_path: Path, first: list[str], second: list[str]
) -> None:
    stdin = b"".join(encoded(text) + b"\0" for text in first)
    outputs = task_outputs(
        tmp_path, "-0", "--", "printf", "%s\\0", "{2}", "{1}", "::::", "-", ":::", *second,
        stdin=stdin,
    )  # fmt: skip
    assert outputs == [fields(two, one) for one, two in combinations(first, second)]


@given(first=values, second=values)
@example(first=["$(touch pwned)/x.y", "a.`touch pwned`"], second=["'/.'", "\"$(touch pwned).d\"/"])
@PROPERTY_SETTINGS
def test_path_modifiers_under_a_shell_give_what_they_give_without_one(
    tmp_path: Path, first: list[str], second: list[str]
) -> None:
    words = ["{1.}", "{1/}", "{1//}", "{1/.}", "{2/.}", "x{2.}y"]
    sources = [":::", *first, ":::", *second]
    without_shell = task_outputs(tmp_path, "--", "printf", "%s\\0", *words, *sources)
    under_shell = task_outputs(tmp_path, "--", 'printf "%s\\0" ' + " ".join(words), *sources)
    assert under_shell == without_shell
    assert len(without_shell) == len(first) * len(second)
    assert all(output.count(b"\0") == len(words) for output in without_shell)
