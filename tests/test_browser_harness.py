"""The real-browser harness itself (tests/browser.py), on small hand-written pages: what
the report's browser tests rely on is shown able to see what it claims to see."""

from __future__ import annotations

import http.server
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import Browser, BrowserError, find_chromium, png_stats, read_png
from tests.browser_fixtures import running_browser

# A 1x1 red PNG, served as the remote image of the network test.
RED_DOT = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d7"
    "63f8cfc000000301010018dd8db00000000049454e44ae426082")


def write_page(folder: Path, body: str, head: str = "") -> Path:
    page = folder / "page.html"
    page.write_text(f"<!doctype html><html><head><meta charset=utf-8>{head}</head>"
                    f"<body style='margin:0'>{body}</body></html>")
    return page


class _ImageServer(http.server.BaseHTTPRequestHandler):
    paths: list[str]

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(RED_DOT)))
        self.end_headers()
        self.wfile.write(RED_DOT)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads `paths`, not a log."""


@pytest.fixture
def image_server() -> Iterator[tuple[str, list[str]]]:
    """A throwaway HTTP server on 127.0.0.1 (a free port): its base URL, and the paths
    asked of it."""
    paths: list[str] = []
    handler = type("Handler", (_ImageServer,), {"paths": paths})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def live_processes(group: int) -> list[int]:
    """The processes of a process group that still run (zombies, which only wait for
    their parent to read their status, do not count)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state not in ("Z", "X"):
            live.append(int(stat.parent.name))
    return live


def test_evaluate_returns_json_values_and_raises_what_the_page_throws(
        browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, "<p id=greeting>hello</p>", "<title>Harness</title>"))
    assert browser.evaluate("document.title") == "Harness"
    assert browser.evaluate("document.getElementById('greeting').textContent") == "hello"
    assert browser.evaluate("({count: 2, items: [1, 'two', null]})") == {
        "count": 2, "items": [1, "two", None]}
    assert browser.evaluate("Promise.resolve(6 * 7)") == 42
    with pytest.raises(BrowserError, match="no such thing"):
        browser.evaluate("(() => { throw new Error('no such thing') })()")


def test_requests_list_a_request_to_a_server(
        browser: Browser, tmp_path: Path, image_server: tuple[str, list[str]]) -> None:
    base, asked = image_server
    browser.open(write_page(tmp_path, f"<img id=dot src='{base}/dot.png'>"))
    assert f"{base}/dot.png" in browser.requests
    assert asked == ["/dot.png"]
    assert browser.evaluate("document.getElementById('dot').naturalWidth") == 1


def test_requests_list_a_request_a_content_security_policy_refuses(
        browser: Browser, tmp_path: Path, image_server: tuple[str, list[str]]) -> None:
    base, asked = image_server
    policy = "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'\">"
    browser.open(write_page(tmp_path, f"<img src='{base}/dot.png'>", policy))
    assert f"{base}/dot.png" in browser.requests
    assert asked == []
    assert any("Content Security Policy" in error for error in browser.console_errors)


def test_an_inline_page_asks_for_nothing_but_itself(browser: Browser, tmp_path: Path) -> None:
    page = write_page(
        tmp_path,
        "<svg width=40 height=40><rect width=40 height=40 fill=teal /></svg>"
        "<p class=note>inline</p><script>document.body.dataset.ran = 'yes'</script>",
        "<style>.note { color: rebeccapurple }</style>")
    browser.open(page)
    assert browser.requests == [page.resolve().as_uri()]
    assert browser.failed_requests == []
    assert browser.console_errors == []


def test_javascript_false_keeps_the_page_scripts_from_running(
        browser: Browser, tmp_path: Path) -> None:
    page = write_page(tmp_path, "<p id=state>static</p>"
                      "<script>document.getElementById('state').textContent = 'scripted'</script>")
    browser.open(page, javascript=False)
    assert browser.evaluate("document.getElementById('state').textContent") == "static"
    browser.open(page)
    assert browser.evaluate("document.getElementById('state').textContent") == "scripted"


def test_dark_emulates_a_dark_colour_scheme(browser: Browser, tmp_path: Path) -> None:
    page = write_page(tmp_path, "", "<style>body { background: white } @media "
                      "(prefers-color-scheme: dark) { body { background: rgb(0, 0, 40) } }</style>")
    scheme = "matchMedia('(prefers-color-scheme: dark)').matches"
    browser.open(page, dark=True)
    assert browser.evaluate(scheme) is True
    assert read_png(browser.screenshot()).pixel(10, 10) == (0, 0, 40)
    browser.open(page)
    assert browser.evaluate(scheme) is False
    assert read_png(browser.screenshot()).pixel(10, 10) == (255, 255, 255)


def test_hover_scrolls_to_the_element_and_fires_mouseover(
        browser: Browser, tmp_path: Path) -> None:
    page = write_page(tmp_path, "<div style='height: 3000px'></div><span id=far>far</span>"
                      "<script>document.getElementById('far').addEventListener("
                      "'mouseover', () => { window.hovered = 'far' })</script>")
    browser.open(page)
    browser.hover("#far")
    assert browser.evaluate("window.hovered") == "far"
    assert browser.evaluate("document.getElementById('far').matches(':hover')") is True
    assert browser.evaluate("window.scrollY") > 0
    with pytest.raises(BrowserError, match="no element matches"):
        browser.hover("#nowhere")


def test_tab_moves_keyboard_focus(browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, "<p>text</p><button id=first>one</button>"
                            "<a id=second href='#x'>two</a>"))
    focused = "document.activeElement.id"
    assert browser.evaluate(focused) == ""
    browser.press("Tab")
    assert browser.evaluate(focused) == "first"
    browser.press("Tab")
    assert browser.evaluate(focused) == "second"
    browser.press("Tab", shift=True)
    assert browser.evaluate(focused) == "first"


def test_a_blank_page_is_one_colour_and_coloured_boxes_are_several(
        browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, ""))
    assert png_stats(browser.screenshot()) == (browser.width, browser.height, 1)
    boxes = "".join(f"<div style='height: 50px; width: 50px; background: {colour}'></div>"
                    for colour in ("rgb(200, 0, 0)", "rgb(0, 150, 0)", "rgb(0, 0, 250)"))
    browser.open(write_page(tmp_path, boxes))
    image = read_png(browser.screenshot())
    assert image.colours() == 4
    assert [image.pixel(25, y) for y in (25, 75, 125, 175)] == [
        (200, 0, 0), (0, 150, 0), (0, 0, 250), (255, 255, 255)]


def test_a_full_page_screenshot_is_as_tall_as_the_page(
        browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, "<div style='height: 2000px; background: navy'></div>"))
    assert png_stats(browser.screenshot(full_page=True))[:2] == (browser.width, 2000)


def test_console_errors_hold_what_the_page_script_threw_and_logged(
        browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, "<script>console.error('bad', 2); undefinedName()</script>"))
    assert browser.console_errors[0] == "console.error: bad 2"
    assert browser.console_errors[1].startswith("exception: ReferenceError: undefinedName")


def test_a_hung_page_fails_the_call_within_the_time_limit(
        browser: Browser, tmp_path: Path) -> None:
    browser.open(write_page(tmp_path, ""))
    browser.timeout = 1.0
    try:
        with pytest.raises(BrowserError, match=r"no answer to Runtime\.evaluate within 1 s"):
            browser.evaluate("new Promise(() => {})")
    finally:
        browser.timeout = 30.0
    assert browser.evaluate("1 + 1") == 2


def test_leaving_the_with_ends_every_browser_process() -> None:
    with pytest.raises(RuntimeError, match="inside"), running_browser() as browser:
        group = browser.pid
        assert group is not None
        assert len(live_processes(group)) > 1  # the browser and its helpers
        raise RuntimeError("inside the with")
    assert group is not None
    assert live_processes(group) == []
    assert browser.process is None
    with pytest.raises(BrowserError, match="not running"):
        browser.evaluate("1")


def test_a_browser_that_never_answers_fails_to_start_in_time(tmp_path: Path) -> None:
    silent = tmp_path / "silent-browser"
    silent.write_text("#!/bin/sh\necho 'pretending to start' >&2\nexec sleep 60\n")
    silent.chmod(0o755)
    browser = Browser(str(silent), timeout=1.0)
    with pytest.raises(BrowserError, match=r"no answer to Browser\.getVersion.*pretending"):
        browser.__enter__()
    assert browser.process is None


def test_a_browser_that_exits_fails_to_start_with_its_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken-browser"
    broken.write_text("#!/bin/sh\necho 'missing library' >&2\nexit 127\n")
    broken.chmod(0o755)
    with pytest.raises(BrowserError, match=r"closed its pipe.*missing library"), \
            Browser(str(broken)):
        pass


def test_find_chromium_takes_fanout_chromium_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "my-chromium"
    chosen.write_text("#!/bin/sh\n")
    chosen.chmod(0o755)
    monkeypatch.setenv("FANOUT_CHROMIUM", str(chosen))
    assert find_chromium() == str(chosen)
    monkeypatch.setenv("FANOUT_CHROMIUM", str(tmp_path / "absent"))
    assert find_chromium() is None
    monkeypatch.delenv("FANOUT_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() is None
    (tmp_path / "chromium-browser").symlink_to(chosen)
    assert find_chromium() == str(tmp_path / "chromium-browser")


def _png(width: int, rows: list[bytes], filters: list[int]) -> bytes:
    """An 8-bit RGB PNG whose rows are stored with the given filters (the PNG
    specification's definitions, written out plainly)."""
    stored, previous = b"", bytes(len(rows[0]))
    for row, kind in zip(rows, filters, strict=True):
        encoded = bytearray()
        for i, value in enumerate(row):
            left = row[i - 3] if i >= 3 else 0
            corner = previous[i - 3] if i >= 3 else 0
            guess = left + previous[i] - corner
            nearest = min((abs(guess - left), 0, left), (abs(guess - previous[i]), 1, previous[i]),
                          (abs(guess - corner), 2, corner))[2]
            predicted = [0, left, previous[i], (left + previous[i]) // 2, nearest][kind]
            encoded.append((value - predicted) % 256)
        stored += bytes([kind]) + bytes(encoded)
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(stored)) + chunk(b"IEND", b""))


def test_png_reading_undoes_each_of_the_five_row_filters() -> None:
    width = 7
    rows = [bytes(os.urandom(3 * width)) for _ in range(10)]
    image = read_png(_png(width, rows, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]))
    assert (image.width, image.height, image.channels) == (width, 10, 3)
    assert [bytes(row) for row in image.rows] == rows
    assert image.pixel(6, 9) == tuple(rows[9][18:21])
    assert png_stats(_png(2, [bytes(6)] * 3, [4, 2, 1])) == (2, 3, 1)
