"""The `browser` fixture of the real-browser tier (tests/browser.py): one headless
Chromium per test module, stopped after it. Without a usable Chromium the tests skip,
saying why."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.browser import Browser, BrowserError, find_chromium

INSTALL_HINT = "install Debian's chromium package (.ci/run does)"


@contextlib.contextmanager
def running_browser(*, width: int = 1024, height: int = 768,
                    timeout: float = 30.0) -> Iterator[Browser]:
    """A started Browser, ended on leaving the `with`; skips the test when no Chromium
    is found or it cannot start (the reason is Chromium's own last words)."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"chromium not found: {INSTALL_HINT}")
    browser = Browser(executable, width=width, height=height, timeout=timeout)
    try:
        browser.__enter__()
    except BrowserError as error:
        pytest.skip(f"chromium ({executable}) could not start: {error}")
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A running Browser shared by one test module; each test's open() starts afresh."""
    with running_browser() as started:
        yield started
