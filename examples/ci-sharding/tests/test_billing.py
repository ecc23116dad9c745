"""A stand-in for a real test module: 0.3 s of work in two tests."""

import time


def test_billing_first() -> None:
    time.sleep(0.15)
    assert sum(range(10)) == 45


def test_billing_second() -> None:
    time.sleep(0.15)
    assert "billing".upper() == "BILLING"
