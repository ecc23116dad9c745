"""A stand-in for a real test module: 0.1 s of work in two tests."""

import time


def test_utils_first() -> None:
    time.sleep(0.05)
    assert sum(range(10)) == 45


def test_utils_second() -> None:
    time.sleep(0.05)
    assert "utils".upper() == "UTILS"
