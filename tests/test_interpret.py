"""What a task's output says about it: AOP markers, summary, score, vote key, tails."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanout_cli import scan
from fanout_cli.interpret import (
    TAIL_BYTES,
    Markers,
    build_summary,
    parse_markers,
    parse_number,
    read_tail,
)
from fanout_cli.scan import last_match_group, normalised_stdout_key, normalised_text_key


def score_from_regex(pattern: str, text: str) -> float | None:
    group = last_match_group(pattern, text)[1]
    return None if group is None else parse_number(group)


def vote_from_regex(pattern: str, text: str) -> str | None:
    group = last_match_group(pattern, text)[1]
    return None if group is None else normalised_text_key(group)

CHUNK = 1 << 20  # normalised_stdout_key reads the file 1 MiB at a time


# --- parse_markers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        pytest.param("build ok\n[AOP:SUMMARY] 3 files changed\n", "3 files changed", id="inline"),
        pytest.param(
            "[AOP:SUMMARY] 3 files changed\n[AOP:STATUS] success\n",
            "3 files changed",
            id="inline-followed-by-marker",
        ),
        pytest.param(
            "[AOP:SUMMARY]\n- found 2 issues\n- fixed 1\n[AOP:DETAILS_FILE] out.json\n",
            "- found 2 issues; - fixed 1",
            id="block-ended-by-marker",
        ),
        pytest.param(
            "[AOP:SUMMARY]\n\n  first  \n\n  second\n",
            "first; second",
            id="block-at-end-skips-blanks",
        ),
        pytest.param(
            "  [AOP:SUMMARY] indented marker\n", "indented marker", id="leading-whitespace"
        ),
        pytest.param(
            "[AOP:SUMMARY] first\n[AOP:STATUS] success\n[AOP:SUMMARY] second\n[AOP:END] x\n",
            "second",
            id="last-summary-wins",
        ),
        pytest.param(
            "[AOP:SUMMARY]\n\x1b[32mall green\x1b[0m\n[AOP:END] x\n",
            "all green",
            id="block-colour-stripped",
        ),
        pytest.param("no markers here\n", None, id="none"),
        pytest.param(
            "[AOP:SUMMARY] real\n[AOP:SUMMARY]\n[AOP:END] x\n", "real", id="empty-block-ignored"
        ),
    ],
)
def test_parse_markers_summary(text: str, summary: str | None) -> None:
    assert parse_markers(text).summary == summary


def test_inline_summary_does_not_swallow_later_output() -> None:
    # `[AOP:SUMMARY] text` is a complete one-line summary; log lines printed after it
    # are not part of it.
    text = "[AOP:SUMMARY] 3 files changed\ncleanup done\n"
    assert parse_markers(text).summary == "3 files changed"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        pytest.param("[AOP:STATUS] success\n", "success", id="plain"),
        pytest.param("[AOP:STATUS] FAILURE\n", "failure", id="lower-cased"),
        pytest.param("[AOP:STATUS] partial (2 of 3)\n", "partial", id="first-word"),
        pytest.param(
            "[AOP:STATUS] failure\nretrying\n[AOP:STATUS] success\n", "success", id="last-wins"
        ),
        pytest.param("[AOP:STATUS]\n", None, id="empty"),
        pytest.param("STATUS success\n", None, id="not-a-marker"),
    ],
)
def test_parse_markers_status(text: str, status: str | None) -> None:
    assert parse_markers(text).status == status


@pytest.mark.parametrize(
    ("text", "score"),
    [
        pytest.param("[AOP:SCORE] 0.93\n", 0.93, id="float"),
        pytest.param("[AOP:SCORE] 7\n", 7.0, id="int"),
        pytest.param("[AOP:SCORE] -2.5\n", -2.5, id="negative"),
        pytest.param("[AOP:SCORE] 1e3\n", 1000.0, id="exponent"),
        pytest.param("[AOP:SCORE] 0.1\nmore\n[AOP:SCORE] 0.8\n", 0.8, id="last-wins"),
        pytest.param("[AOP:SCORE] high\n", None, id="not-a-number"),
        pytest.param("no score\n", None, id="absent"),
    ],
)
def test_parse_markers_score(text: str, score: float | None) -> None:
    assert parse_markers(text).score == score


@pytest.mark.parametrize(
    ("text", "metrics"),
    [
        pytest.param("[AOP:METRICS] tests: 12, failed: 0\n", {"tests": 12, "failed": 0}, id="ints"),
        pytest.param(
            "[AOP:METRICS] ratio: 0.5, took: 1.25\n", {"ratio": 0.5, "took": 1.25}, id="floats"
        ),
        pytest.param("[AOP:METRICS] delta: -3\n", {"delta": -3}, id="negative-int"),
        pytest.param("[AOP:METRICS] whole: 2.0\n", {"whole": 2.0}, id="float-with-point"),
        pytest.param(
            "[AOP:METRICS] lane: fast lane, ver: 1.2.3\n",
            {"lane": "fast lane", "ver": "1.2.3"},
            id="strings",
        ),
        pytest.param(
            "[AOP:METRICS] files: 3, junk, : 4\n", {"files": 3}, id="malformed-items-skipped"
        ),
    ],
)
def test_parse_markers_metrics(text: str, metrics: dict[str, Any]) -> None:
    parsed = parse_markers(text).metrics
    assert parsed == metrics
    for key, value in metrics.items():
        assert type(parsed[key]) is type(value), key


def test_parse_markers_metrics_last_value_wins() -> None:
    text = "[AOP:METRICS] tests: 10, failed: 2\nrerun\n[AOP:METRICS] failed: 0\n"
    assert parse_markers(text).metrics["failed"] == 0


def test_parse_markers_full_block() -> None:
    text = (
        "[AOP:START] 2026-11-22T10:15:30Z\n"
        "[AOP:TASK] review\n"
        "working...\n"
        "[AOP:SUMMARY]\n"
        "- 2 issues\n"
        "[AOP:DETAILS_FILE] out.json\n"
        "[AOP:METRICS] issues: 2\n"
        "[AOP:SCORE] 0.75\n"
        "[AOP:STATUS] partial\n"
        "[AOP:END] 2026-11-22T10:16:30Z\n"
    )
    assert parse_markers(text) == Markers(
        summary="- 2 issues", status="partial", score=0.75, metrics={"issues": 2}
    )


# --- build_summary -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("succeeded", "stdout", "stderr", "reason", "markers", "expected"),
    [
        pytest.param(
            True,
            "noise\nlast line\n",
            "",
            "",
            Markers(summary="3 passed"),
            "3 passed",
            id="own-summary-on-success",
        ),
        pytest.param(
            True, "one\ntwo\n\n   \n", "warn\n", "", Markers(), "two", id="last-nonempty-stdout"
        ),
        pytest.param(
            True,
            "\x1b[32mPASS\x1b[0m 3 tests\n",
            "",
            "",
            Markers(),
            "PASS 3 tests",
            id="success-colour-stripped",
        ),
        pytest.param(
            False,
            "progress\n",
            "warning: x\nError: boom\n\n",
            "exit 2",
            Markers(),
            "Error: boom (exit 2)",
            id="failure-last-stderr-plus-reason",
        ),
        pytest.param(
            False,
            "FAILED test_y\n",
            "",
            "exit 1",
            Markers(),
            "FAILED test_y (exit 1)",
            id="failure-falls-back-to-stdout",
        ),
        pytest.param(
            False,
            "",
            "\x1b[1;31mFAILED\x1b[0m test_x\n",
            "exit 1",
            Markers(),
            "FAILED test_x (exit 1)",
            id="failure-colour-stripped",
        ),
        pytest.param(
            False,
            "",
            "",
            "timed out after 30s",
            Markers(),
            "timed out after 30s",
            id="reason-alone-when-no-output",
        ),
        pytest.param(
            False,
            "\n  \n",
            "\n",
            "command not found: foo",
            Markers(),
            "command not found: foo",
            id="reason-alone-when-blank-output",
        ),
    ],
)
def test_build_summary(
    succeeded: bool, stdout: str, stderr: str, reason: str, markers: Markers, expected: str
) -> None:
    assert build_summary(succeeded, stdout, stderr, reason, markers, 500) == expected


def test_own_summary_wins_on_failure_too() -> None:
    summary = build_summary(
        False, "out\n", "Traceback\n", "exit 1", Markers(summary="2 of 5 checks failed"), 500
    )
    assert summary.startswith("2 of 5 checks failed")
    assert "Traceback" not in summary


@pytest.mark.parametrize("limit", [20, 50, 500])
@pytest.mark.parametrize(
    ("succeeded", "stdout", "stderr", "reason", "markers"),
    [
        pytest.param(True, "x" * 2000 + "\n", "", "", Markers(), id="success-line"),
        pytest.param(False, "", "y" * 2000 + "\n", "exit 2", Markers(), id="failure-line"),
        pytest.param(True, "", "", "", Markers(summary="z" * 2000), id="own-summary"),
        pytest.param(False, "", "", "r" * 2000, Markers(), id="long-reason"),
    ],
)
def test_summary_is_capped_with_ellipsis(
    limit: int, succeeded: bool, stdout: str, stderr: str, reason: str, markers: Markers
) -> None:
    summary = build_summary(succeeded, stdout, stderr, reason, markers, limit)
    assert len(summary) <= limit
    assert "…" in summary


def test_capped_failure_keeps_the_reason() -> None:
    summary = build_summary(False, "", "E" * 300 + "\n", "exit 2", Markers(), 50)
    assert len(summary) <= 50
    assert summary.endswith("… (exit 2)")
    assert summary.startswith("EEEE")


def test_short_summary_is_not_capped() -> None:
    assert build_summary(True, "exactly\n", "", "", Markers(), 7) == "exactly"


# --- score and vote from a regex ---------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "score"),
    [
        pytest.param(r"score=(\S+)", "score=1\nscore=0.5\nscore=7.25\n", 7.25, id="last-match"),
        pytest.param(r"accuracy: (.*)", "accuracy: 93.5%\n", 93.5, id="group-with-suffix"),
        pytest.param(r"\d+\.\d+", "took 1.5s\nbest 2.75\n", 2.75, id="no-group-whole-match"),
        pytest.param(r"(\d+) of (\d+)", "3 of 9\n5 of 9\n", 5.0, id="group-one-not-two"),
        pytest.param(r"^total (\d+)$", "total 4\ntotal 6\nend\n", 6.0, id="multiline-anchors"),
        pytest.param(r"score=(\S+)", "no score here\n", None, id="no-match"),
        pytest.param(r"score=(\S+)", "score=high\n", None, id="not-a-number"),
        pytest.param(r"score=(\d+)?x", "score=x\n", None, id="optional-group-unmatched"),
    ],
)
def test_score_from_regex(pattern: str, text: str, score: float | None) -> None:
    assert score_from_regex(pattern, text) == score


@pytest.mark.parametrize(
    ("pattern", "text", "vote"),
    [
        pytest.param(r"answer: (\w+)", "answer: 4\nanswer: 5\n", "5", id="last-match"),
        pytest.param(r"answer: (.*)", "answer:   a   b \n", "a b", id="whitespace-normalised"),
        pytest.param(r"(yes|no) because", "no because x\nyes because y\n", "yes", id="group-one"),
        pytest.param(r"ANSWER \w+", "ANSWER a\nANSWER b\n", "ANSWER b", id="no-group"),
        pytest.param(r"answer: (\w+)", "nothing\n", None, id="no-match"),
    ],
)
def test_vote_from_regex(pattern: str, text: str, vote: str | None) -> None:
    assert vote_from_regex(pattern, text) == vote


# --- normalised_stdout_key -----------------------------------------------------------


def _key_of(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return normalised_stdout_key(str(path))


def _expected_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(b" ".join(data.split())).hexdigest()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(b"a b c", b"  a\n\tb   c\n\n", id="spaces-tabs-newlines"),
        pytest.param(b"42\n", b"42", id="trailing-newline"),
        pytest.param(b"x\r\ny\r\n", b"x y", id="crlf"),
    ],
)
def test_key_ignores_whitespace(tmp_path: Path, first: bytes, second: bytes) -> None:
    key = _key_of(tmp_path, "first", first)
    assert key == _key_of(tmp_path, "second", second)
    assert key == " ".join(first.decode().split())


def test_key_differs_for_different_words(tmp_path: Path) -> None:
    assert _key_of(tmp_path, "first", b"a b") != _key_of(tmp_path, "second", b"ab")


def test_key_of_missing_and_empty_output(tmp_path: Path) -> None:
    assert normalised_stdout_key(str(tmp_path / "missing")) == ""
    assert _key_of(tmp_path, "empty", b"") == ""
    assert _key_of(tmp_path, "blank", b" \n\t\n") == ""


@pytest.mark.parametrize("shift", [-3, -2, -1, 0, 1, 2])
def test_short_key_across_chunk_boundary(tmp_path: Path, shift: int) -> None:
    # Mostly whitespace, so the key stays short text while "ab" straddles (or touches)
    # the 1 MiB read boundary.
    data = b" " * (CHUNK - 1 + shift) + b"ab  cd\n"
    assert _key_of(tmp_path, "stdout", data) == "ab cd"


@pytest.mark.parametrize("shift", [-1, 0, 1])
def test_long_word_across_chunk_boundary_is_not_split(tmp_path: Path, shift: int) -> None:
    data = b"a" * (CHUNK + shift) + b"bc end\n"
    key = _key_of(tmp_path, "stdout", data)
    assert key == _expected_hash(data)
    assert key != _expected_hash(b"a" * (CHUNK + shift) + b" bc end\n")


def test_long_outputs_differing_only_in_whitespace_match(tmp_path: Path) -> None:
    words = [b"word%d" % number for number in range(250_000)]  # about 2.4 MB
    spaced = b" ".join(words)
    messy = b"\n\n" + b" \t ".join(words) + b"\n"  # shifts every chunk boundary
    lines = b"\n".join(words)
    key = _key_of(tmp_path, "spaced", spaced)
    assert key.startswith("sha256:")
    assert key == _expected_hash(spaced)
    assert _key_of(tmp_path, "messy", messy) == key
    assert _key_of(tmp_path, "lines", lines) == key
    assert _key_of(tmp_path, "other", spaced + b" extra") != key


def test_key_switches_to_hash_for_long_text(tmp_path: Path) -> None:
    short = b"word " * 100
    long = b"word " * 1000
    assert _key_of(tmp_path, "short", short) == " ".join(["word"] * 100)
    long_key = _key_of(tmp_path, "long", long)
    assert long_key == _expected_hash(long)
    assert len(long_key) == len("sha256:") + 64


# --- read_tail -----------------------------------------------------------------------


def test_read_tail_of_file_bigger_than_limit(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # 1.28 MB, more than TAIL_BYTES
    assert len(data) > TAIL_BYTES
    path = tmp_path / "stdout"
    path.write_bytes(data)
    tail, size = read_tail(str(path))
    assert size == len(data)
    assert tail == data[-TAIL_BYTES:]


def test_read_tail_with_small_limit(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_bytes(b"0123456789" * 300)
    assert read_tail(str(path), limit=1000) == ((b"0123456789" * 300)[-1000:], 3000)


def test_read_tail_of_small_file_is_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_bytes(b"short\n")
    assert read_tail(str(path)) == (b"short\n", 6)


def test_read_tail_of_missing_file(tmp_path: Path) -> None:
    assert read_tail(str(tmp_path / "missing")) == (b"", 0)


# --- reading a whole stdout as a stream (scan.py) -------------------------------------

_OUTPUT_BYTES = st.lists(
    st.sampled_from([b"a", b"b", b"\xc3\xa9", b" ", b"\t", b"\n", b"\r\n", b"\x0b", b"\x0c"]),
    max_size=60,
).map(b"".join) | st.binary(max_size=80)


def _whole_key(data: bytes) -> str:
    words = b" ".join(data.split())
    if len(words) <= scan.VOTE_TEXT_LIMIT:
        return words.decode("utf-8", errors="replace")
    return "sha256:" + hashlib.sha256(words).hexdigest()


@given(data=_OUTPUT_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8))
def test_the_key_of_chunks_is_the_key_of_the_whole(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    assert scan.normalised_key(chunks) == scan.normalised_key([data]) == _whole_key(data)


@given(repeat=st.integers(min_value=1, max_value=400), cuts=st.lists(st.integers(0, 4000)))
def test_a_long_key_of_chunks_is_the_digest_of_the_whole(repeat: int, cuts: list[int]) -> None:
    data = b"word \n " * repeat
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    assert scan.normalised_key(chunks) == _whole_key(data)


@given(
    lines=st.lists(
        st.sampled_from(["score=1", "score=22", "x", "", "score=", "score=3 score=4", "é"]),
        max_size=40,
    ),
    block=st.integers(min_value=4, max_value=20),  # 4 blocks hold the longest line
    ending=st.sampled_from(["", "\n"]),
)
def test_the_last_match_in_a_file_read_in_blocks_is_the_last_in_the_whole(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], block: int, ending: str
) -> None:
    text = "\n".join(lines) + ending
    path = tmp_path_factory.mktemp("scan") / "stdout"
    path.write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "BLOCK_BYTES", block)
        found = scan.last_match_in_file(r"score=(\d*)", str(path))
    assert found == scan.last_match_group(r"score=(\d*)", text)[1]


def test_a_score_printed_long_before_the_tail_is_found(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    with path.open("wb") as handle:
        handle.write(b"score=41\nscore=42\n")
        handle.write(b"noise\n" * (3 * TAIL_BYTES))
    assert scan.last_match_in_file(r"score=(\d+)", str(path)) == "42"
    assert scan.last_match_in_file(r"missing=(\d+)", str(path)) is None
    assert scan.last_match_in_file(r"score=(\d+)", str(tmp_path / "none")) is None


def test_a_long_regex_vote_is_shown_as_a_digest() -> None:
    long_answer = "x" * 2000
    assert scan.normalised_text_key(f"  {long_answer}\n") == (
        "sha256:" + hashlib.sha256(long_answer.encode()).hexdigest()
    )
    assert scan.normalised_text_key(" yes \n") == "yes"
