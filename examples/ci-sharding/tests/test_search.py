"""A stand-in for a real test module: 0.6 s of work in two tests."""

import time


def test_search_first() -> None:
    time.sleep(0.3)
    assert sum(range(10)) == 45


def test_search_second() -> None:
    time.sleep(0.3)
    assert "search".upper() == "SEARCH"
