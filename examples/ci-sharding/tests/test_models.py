"""A stand-in for a real test module: 0.8 s of work in two tests."""

import time


def test_models_first() -> None:
    time.sleep(0.4)
    assert sum(range(10)) == 45


def test_models_second() -> None:
    time.sleep(0.4)
    assert "models".upper() == "MODELS"
