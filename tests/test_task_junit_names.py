"""fanout's own testcase for a task without a runner JUnit (issue 18, part 4): a
classname and file that mean something, and a failure message naming the failing
tests the task's output shows (pytest, unittest, Jest, go test, cargo test)."""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fanout_cli.render.test_names import case_place, failing_tests, failure_message
from tests.helpers import assert_clean, run_fanout, write_tasks

PYTEST_OUTPUT = """\
============================= test session starts ==============================
collected 5 items

tests/test_api.py .F.F                                                   [ 80%]
tests/test_db.py E                                                       [100%]

==================================== ERRORS ====================================
_______________________ ERROR at setup of test_connect _________________________
    @pytest.fixture
    def db():
>       raise ConnectionError("no database")
E       ConnectionError: no database
=================================== FAILURES ===================================
______________________________ test_get_missing ________________________________
E       assert 404 == 200
=========================== short test summary info ============================
FAILED tests/test_api.py::test_get_missing - assert 404 == 200
FAILED tests/test_api.py::TestPost::test_create[json-utf8] - KeyError: 'id'
ERROR tests/test_db.py::test_connect - ConnectionError: no database
==================== 2 failed, 2 passed, 1 error in 0.31s ======================
"""

UNITTEST_OUTPUT = """\
.F.E
======================================================================
ERROR: test_load (tests.test_config.ConfigTest.test_load)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/src/tests/test_config.py", line 9, in test_load
    raise OSError("gone")
OSError: gone

======================================================================
FAIL: test_parse (tests.test_config.ConfigTest)
----------------------------------------------------------------------
AssertionError: 1 != 2

----------------------------------------------------------------------
Ran 4 tests in 0.002s

FAILED (failures=1, errors=1)
"""

# Jest joins a describe block and its test with U+203A, which ruff takes for `>`.
ARROW = "\u203a"
JEST_OUTPUT = f"""\
 FAIL  src/cart.test.js
  Cart
    ✓ adds an item (3 ms)
    ✕ removes an item (5 ms)

  ● Cart {ARROW} removes an item

    expect(received).toBe(expected) // Object.is equality

    Expected: 0
    Received: 1

  ● Console

    console.log
      debugging

  ● totals without a cart

    TypeError: cannot read properties of undefined

Test Suites: 1 failed, 1 total
Tests:       2 failed, 1 passed, 3 total
"""

GO_OUTPUT = """\
=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestCheckout
=== RUN   TestCheckout/empty_cart
    cart_test.go:31: want error, got nil
    --- FAIL: TestCheckout/empty_cart (0.00s)
--- FAIL: TestCheckout (0.01s)
FAIL
FAIL\texample.com/shop/pkg/cart\t0.012s
"""

CARGO_OUTPUT = """\
running 3 tests
test money::tests::rounds ... ok
test cart::tests::checkout_empty ... FAILED
test cart::tests::adds ... ok

failures:

---- cart::tests::checkout_empty stdout ----
thread 'cart::tests::checkout_empty' panicked at src/cart.rs:40:9

failures:
    cart::tests::checkout_empty

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (PYTEST_OUTPUT, ["tests/test_api.py::test_get_missing",
                         "tests/test_api.py::TestPost::test_create[json-utf8]",
                         "tests/test_db.py::test_connect"]),
        (UNITTEST_OUTPUT, ["tests.test_config.ConfigTest.test_load",
                           "tests.test_config.ConfigTest.test_parse"]),
        (JEST_OUTPUT, [f"Cart {ARROW} removes an item", "totals without a cart"]),
        (GO_OUTPUT, ["TestCheckout/empty_cart", "TestCheckout"]),
        (CARGO_OUTPUT, ["cart::tests::checkout_empty"]),
        ("all 12 checks passed\nERROR: no such option --x\n", []),
    ],
    ids=["pytest", "unittest", "jest", "go", "cargo", "none"],
)  # fmt: skip
def test_failing_tests_are_read_from_each_runners_output(output: str, expected: list[str]) -> None:
    assert failing_tests(output) == expected


def test_names_are_found_in_stdout_and_stderr_once_each_and_capped() -> None:
    many = "".join(f"FAILED t.py::test_{n} - boom\n" for n in range(80))
    names = failing_tests(many, "FAILED t.py::test_0 - again\n")
    assert len(names) == 50 and names[0] == "t.py::test_0" and len(set(names)) == 50
    assert failure_message(names[:2]) == "failed: t.py::test_0, t.py::test_1"
    assert failure_message(names) == "failed: t.py::test_0, t.py::test_1, t.py::test_2 and 47 more"


@pytest.mark.parametrize(
    ("row", "place"),
    [
        ({"input": "tests/unit/test_x.py", "origin": "glob:1"},
         ("tests.unit.test_x", "tests/unit/test_x.py")),
        ({"input": "./pkg/foo", "origin": "stdin:2"}, ("pkg.foo", "pkg/foo")),
        ({"input": "tests/a.py::TestA::test_b", "origin": ":::1"}, ("tests.a", "tests/a.py")),
        ({"input": "lint", "origin": "ci/tasks.toml:12"}, ("tasks", "ci/tasks.toml")),
        ({"input": None, "origin": "ci.toml:3"}, ("ci", "ci.toml")),
        ({"input": "https://example.com/x.py", "origin": "stdin:1"}, ("fanout", None)),
        ({"input": "hello world", "origin": ":::1"}, ("fanout", None)),
        ({"input": ["a", "b"], "origin": ":::1"}, ("fanout", None)),
    ],
)  # fmt: skip
def test_a_testcase_is_placed_by_its_value_or_task_file(
    row: dict[str, object], place: tuple[str, str | None]
) -> None:
    assert case_place(row) == place


def only_case(path: Path) -> ElementTree.Element:
    [case] = list(ElementTree.parse(path).getroot().iter("testcase"))
    return case


def test_pytest_failures_are_named_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop.py").write_text(
        "import pytest\n\n\n"
        "def test_ok():\n    assert True\n\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\n"
        "def test_even(n):\n    assert n % 2 == 0\n"
    )

    completed = run_fanout(
        "run", "--junit", "junit.xml", "--", sys.executable, "-m", "pytest", "-q",
        "-p", "no:cacheprovider", "{}", ":::", "tests/test_shop.py",
    )  # fmt: skip

    assert completed.returncode == 1, completed.stderr
    assert_clean(completed)
    case = only_case(tmp_path / "junit.xml")
    assert case.get("classname") == "tests.test_shop"
    assert case.get("file") == "tests/test_shop.py"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "failed: tests/test_shop.py::test_even[1]"
    assert "failing tests:\ntests/test_shop.py::test_even[1]\n" in (failure.text or "")


def test_unittest_failures_are_named_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "test_config.py").write_text(
        "import unittest\n\n\n"
        "class ConfigTest(unittest.TestCase):\n"
        "    def test_parse(self):\n        self.assertEqual(1, 2)\n\n"
        "    def test_load(self):\n        raise OSError('gone')\n\n"
        "    def test_fine(self):\n        pass\n"
    )
    tasks = write_tasks(tmp_path / "tasks.toml", f"""\
[[task]]
id = "config"
cmd = ["{sys.executable}", "-m", "unittest", "test_config"]
""")

    completed = run_fanout("run", tasks.name, "--junit", "junit.xml")

    assert completed.returncode == 1, completed.stderr
    case = only_case(tmp_path / "junit.xml")
    assert (case.get("classname"), case.get("file")) == ("tasks", "tasks.toml")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "failed: test_config.ConfigTest.test_load, test_config.ConfigTest.test_parse"
    )
