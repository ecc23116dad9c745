"""A stand-in for a real test module: 0.2 s of work in two tests."""

import time


def test_cli_first() -> None:
    time.sleep(0.1)
    assert sum(range(10)) == 45


def test_cli_second() -> None:
    time.sleep(0.1)
    assert "cli".upper() == "CLI"
