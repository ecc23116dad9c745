"""--tag's prefixing (render/tags.py): GNU parallel's rule, on a stream cut anywhere."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from fanout_cli.render.tags import Tagger, tag_of


def test_tag_of_joins_values_with_spaces_and_falls_back_to_the_id() -> None:
    assert tag_of("t", "a b") == "a b"
    assert tag_of("t", ["a", "1"]) == "a 1"
    assert tag_of("t", {"name": "x", "n": "2"}) == "x 2"
    assert tag_of("unit", None) == "unit"


def test_every_line_is_tagged_and_a_last_partial_line_keeps_no_newline() -> None:
    tag = Tagger(b"q\t")
    assert tag(b"a\nb") == b"q\ta\nq\tb"
    assert tag(b"c\n") == b"c\n"  # the line went on: no second tag
    assert tag(b"") == b""
    assert tag(b"d") == b"q\td"


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=8))
def test_a_stream_cut_anywhere_is_tagged_as_the_whole_is(data: bytes, cuts: list[int]) -> None:
    whole = Tagger(b"T\t")(data)
    tagger = Tagger(b"T\t")
    points = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    pieces = b"".join(tagger(data[a:b]) for a, b in itertools.pairwise(points))
    assert pieces == whole
    # A line starts at the beginning and after every \n or \r that is not the last byte.
    expected = bytearray()
    for index, byte in enumerate(data):
        if index == 0 or data[index - 1] in b"\n\r":
            expected += b"T\t"
        expected.append(byte)
    assert whole == bytes(expected)


def test_a_carriage_return_starts_a_line_as_in_gnu_parallel() -> None:
    # parallel --tag 'printf "a\r\nb\r\n"' ::: q  prints  q\ta\rq\t\nq\tb\rq\t\n
    assert Tagger(b"q\t")(b"a\r\nb\r\n") == b"q\ta\rq\t\nq\tb\rq\t\n"
    assert Tagger(b"a\\1\t")(b"x\ry") == b"a\\1\tx\ra\\1\ty"  # a backslash in a tag
