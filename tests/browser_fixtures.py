"""The `browser` fixture of the real-browser tier (tests/browser.py): one headless
Chromium per test module, stopped after it. Without a usable Chromium the tests skip,
saying why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import Browser, BrowserError, find_chromium

INSTALL_HINT = "install Debian's chromium package (.ci/run does)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A running Browser shared by one test module; each test's open() starts afresh."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"chromium not found: {INSTALL_HINT}")
    started = Browser(executable)
    try:
        started.__enter__()
    except BrowserError as error:
        pytest.skip(f"chromium ({executable}) could not start: {error}")
    try:
        yield started
    finally:
        started.close()
