"""A stand-in for a real test module: 0.4 s of work in two tests."""

import time


def test_auth_first() -> None:
    time.sleep(0.2)
    assert sum(range(10)) == 45


def test_auth_second() -> None:
    time.sleep(0.2)
    assert "auth".upper() == "AUTH"
