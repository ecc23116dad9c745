"""Unit: what one `--timings` value stands for (fanout_cli.timings_files).

A value is a file, a glob fanout expands (sorted), or several of those separated by
commas; a value that names an existing file as a whole is that file. Each test runs
in its own tmp_path (conftest), so the names below are relative to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fanout_cli.errors import UsageError
from fanout_cli.timings_files import expand_timings, read_timings


def touch(*names: str) -> None:
    for name in names:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_text("")


def timings_file(path: str, durations: dict[str, list[float]]) -> str:
    tasks = {task: {"durations": seconds, "last_status": "success"}
             for task, seconds in durations.items()}  # fmt: skip
    Path(path).write_text(json.dumps({"fanout_timings_version": 1, "tasks": tasks}))
    return path


def test_a_plain_name_is_that_file_and_a_missing_one_is_reported() -> None:
    touch("old.json")
    expanded = expand_timings(["old.json", "nope.json"])
    assert expanded.files == ("old.json",)
    assert expanded.missing == ("nope.json: no such file",)


def test_a_glob_is_expanded_sorted_by_name_and_only_to_files() -> None:
    touch("reports/3.xml", "reports/1.xml", "reports/2.xml", "reports/other.txt")
    Path("reports/dir.xml").mkdir()  # a folder the glob matches is not a timings file
    assert expand_timings(["reports/*.xml"]).files == (
        "reports/1.xml", "reports/2.xml", "reports/3.xml",
    )  # fmt: skip
    assert expand_timings(["reports/?.xml"]).files == (
        "reports/1.xml", "reports/2.xml", "reports/3.xml",
    )  # fmt: skip
    assert expand_timings(["reports/[12].xml"]).files == ("reports/1.xml", "reports/2.xml")


def test_a_double_star_goes_into_subfolders() -> None:
    touch("reports/a/1.xml", "reports/b/c/2.xml", "reports/0.xml")
    assert expand_timings(["reports/**/*.xml"]).files == (
        "reports/0.xml", "reports/a/1.xml", "reports/b/c/2.xml",
    )  # fmt: skip


def test_a_glob_matching_nothing_is_reported_not_an_error() -> None:
    expanded = expand_timings(["reports/*.xml"])
    assert expanded.files == ()
    assert expanded.missing == ("reports/*.xml: no file matches",)


def test_commas_separate_names_and_globs_in_the_order_given() -> None:
    touch("old.json", "reports/b.xml", "reports/a.xml")
    expanded = expand_timings(["old.json,reports/*.xml,gone.json"])
    assert expanded.files == ("old.json", "reports/a.xml", "reports/b.xml")
    assert expanded.missing == ("gone.json: no such file",)


def test_an_existing_file_with_a_comma_or_a_glob_character_in_its_name_is_that_file() -> None:
    touch("a,b.json", "a", "b.json", "t[1].json", "t1.json")
    assert expand_timings(["a,b.json"]).files == ("a,b.json",)
    assert expand_timings(["t[1].json"]).files == ("t[1].json",)
    # Not a file as a whole: split at the commas, and each part is a name or a glob.
    assert expand_timings(["a,t[1].json"]).files == ("a", "t[1].json")
    assert expand_timings(["b.json,t[1]*.json"]).files == ("b.json", "t1.json")


def test_a_file_named_twice_is_read_once_where_it_first_appears() -> None:
    touch("old.json", "reports/a.xml")
    expanded = expand_timings(["reports/a.xml", "old.json,./reports/*.xml", "old.json"])
    assert expanded.files == ("reports/a.xml", "old.json")


@pytest.mark.parametrize("value", ["a.json,", ",a.json", "a.json,,b.json", ","])
def test_an_empty_name_between_commas_is_a_usage_error_naming_the_value(value: str) -> None:
    with pytest.raises(UsageError) as raised:
        expand_timings([value])
    assert str(raised.value) == f"--timings {value}: an empty file name between commas"


def test_read_timings_keeps_the_order_given_as_the_order_of_history() -> None:
    timings_file("a.json", {"t": [1.0, 2.0]})
    timings_file("b.json", {"t": [3.0], "u": [5.0]})
    timings = read_timings(["b.json,a.json"])
    assert timings.durations == {"t": [3.0, 1.0, 2.0], "u": [5.0]}
    timings = read_timings(["a.json", "b.json"])
    assert timings.durations["t"] == [1.0, 2.0, 3.0]


def test_read_timings_keeps_the_last_20_durations_of_a_task() -> None:
    timings_file("old.json", {"t": [100.0] * 20})
    timings_file("new.json", {"t": [1.0, 2.0]})
    timings = read_timings(["old.json,new.json"])
    assert timings.durations["t"] == [100.0] * 18 + [1.0, 2.0]


def test_read_timings_warns_once_per_missing_name_and_fails_on_an_unreadable_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    timings_file("a.json", {"t": [1.0]})
    timings = read_timings(["a.json,none/*.xml", "gone.json", "gone.json"], note="estimated alike")
    assert timings.durations == {"t": [1.0]}
    assert capsys.readouterr().err.splitlines() == [
        "fanout: warning: --timings none/*.xml: no file matches; estimated alike",
        "fanout: warning: --timings gone.json: no such file; estimated alike",
    ]
    Path("bad.json").write_text("[1, 2]")
    with pytest.raises(UsageError) as raised:
        read_timings(["a.json,bad.json"])
    assert str(raised.value).startswith("--timings bad.json: not a fanout timings file")
