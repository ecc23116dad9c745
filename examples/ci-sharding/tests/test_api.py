"""A stand-in for a real test module: 1.2 s of work in two tests."""

import time


def test_api_first() -> None:
    time.sleep(0.6)
    assert sum(range(10)) == 45


def test_api_second() -> None:
    time.sleep(0.6)
    assert "api".upper() == "API"
