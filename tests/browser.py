"""The real-browser test tier: headless Chromium driven over the DevTools protocol (CDP).

Chromium started with --remote-debugging-pipe reads protocol messages (JSON, each ended
by a NUL byte) on its file descriptor 3 and writes its replies and events, framed the
same way, on its descriptor 4. That pipe is the whole connection: nothing listens on a
port, and no library beyond the standard one is needed.

    with Browser() as browser:
        browser.open(report_path, javascript=False)
        assert browser.evaluate("document.title") == "fanout report"
        assert browser.requests == [report_path.resolve().as_uri()]

Every wait has a limit (a hung browser fails the test, it does not hang it), and leaving
the `with` ends the browser and everything it started, whatever happened inside.
The tests' fixture, which skips without a browser, is tests/browser_fixtures.py.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.png import PngImage, PngStats, png_stats, read_png

__all__ = [
    "Browser", "BrowserError", "PngImage", "PngStats", "find_chromium", "png_stats", "read_png",
]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

# Chromium reads fd 3 and writes fd 4; subprocess keeps descriptors only at their own
# numbers, so a small Python trampoline moves the pipe ends there, then becomes Chromium
# (exec: the browser keeps the trampoline's process id and process group).
_TRAMPOLINE = (
    "import os, sys\n"
    "for old, new in ((int(sys.argv[1]), 3), (int(sys.argv[2]), 4)):\n"
    "    os.dup2(old, new)\n"
    "    os.close(old)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)

# Key name -> Windows virtual key code, which Chromium's keyboard handling reads.
_KEY_CODES = {"Tab": 9, "Enter": 13, "Escape": 27, "ArrowLeft": 37, "ArrowUp": 38,
              "ArrowRight": 39, "ArrowDown": 40}


class BrowserError(Exception):
    """The browser could not start, answered with an error, or did not answer in time."""


def find_chromium() -> str | None:
    """FANOUT_CHROMIUM when set (a path or a command name), else the first candidate on PATH."""
    chosen = os.environ.get("FANOUT_CHROMIUM")
    for name in (chosen,) if chosen else CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _high_descriptor(descriptor: int) -> int:
    """A copy of `descriptor` at 10 or above (clear of 3 and 4), the original closed."""
    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(descriptor)
    return moved


class _Pipe:
    """The protocol connection: numbered calls, their replies, and events as they come.
    Each wait gives up after `timeout` seconds (the Browser's, copied at every call)."""

    def __init__(self, write_end: int, read_end: int, timeout: float) -> None:
        self.write_end, self.read_end, self.timeout = write_end, read_end, timeout
        self.events: list[dict[str, Any]] = []
        self._pending = b""
        self._last_id = 0

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its reply; events met on the way are kept."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(json.dumps(message).encode() + b"\0", method)
        reply = self.wait(lambda received: received.get("id") == message["id"], method)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message', reply['error'])}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def _send(self, data: bytes, what: str) -> None:
        """Write a whole message; a browser that stops reading fails it in time too."""
        deadline = time.monotonic() + self.timeout
        while data:
            left = deadline - time.monotonic()
            _, writable, _ = select.select([], [self.write_end], [], max(left, 0))
            if not writable:
                raise BrowserError(f"the browser took no {what} within {self.timeout:g} s")
            data = data[os.write(self.write_end, data):]

    def wait(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first message for which wanted(message) holds, within the time limit."""
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._pending:
                text, _, self._pending = self._pending.partition(b"\0")
                message: dict[str, Any] = json.loads(text)
                if "id" not in message:
                    self.events.append(message)
                if wanted(message):
                    return message
                if message.get("method") == "Inspector.targetCrashed":
                    raise BrowserError(f"the page crashed while waiting for {what}")
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self.read_end], [], [], max(left, 0))
            if not readable:
                raise BrowserError(f"no answer to {what} within {self.timeout:g} s")
            chunk = os.read(self.read_end, 1 << 16)
            if not chunk:
                raise BrowserError(f"the browser closed its pipe while waiting for {what}")
            self._pending += chunk


class Browser:
    """One headless Chromium with one page, for `with`. See the module's docstring."""

    def __init__(self, executable: str | None = None, *, width: int = 1024,
                 height: int = 768, timeout: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        self.width, self.height, self.timeout = width, height, timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.requests: list[str] = []
        self.failed_requests: list[tuple[str, str]] = []
        self.console_errors: list[str] = []
        self._profile: Path | None = None  # made on entering, removed on leaving
        self._pipe: _Pipe | None = None
        self._session = ""
        self._request_urls: dict[str, str] = {}

    # -- lifetime ---------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self._start()
            self._attach()
        except BaseException as error:
            reason = f"{error}; chromium said: {self.log_tail()}"
            self.close()
            if isinstance(error, (BrowserError, OSError)):
                raise BrowserError(reason) from error
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The browser's process id, which is also its process group's."""
        return self.process.pid if self.process else None

    def _start(self) -> None:
        if not self.executable:
            raise BrowserError(f"no chromium found (FANOUT_CHROMIUM, {', '.join(CANDIDATES)})")
        self._profile = Path(tempfile.mkdtemp(prefix="fanout-browser-"))
        home = self._profile / "home"
        home.mkdir()
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        os.set_blocking(to_browser_write, False)
        child_read = _high_descriptor(to_browser_read)
        child_write = _high_descriptor(from_browser_write)
        environment = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                       "XDG_CACHE_HOME": str(home / ".cache")}
        with open(self._profile / "chromium.log", "wb") as log:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", _TRAMPOLINE, str(child_read), str(child_write),
                     self.executable, *self._arguments(self._profile)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=environment,
                    pass_fds=(child_read, child_write), start_new_session=True)
            finally:
                os.close(child_read)
                os.close(child_write)
                self._pipe = _Pipe(to_browser_write, from_browser_read, self.timeout)
        self._pipe.call("Browser.getVersion")

    def _arguments(self, profile: Path) -> list[str]:
        sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium refuses root without it
        return [*sandbox, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-breakpad",
                "--disable-background-networking", "--disable-component-update",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={profile / 'profile'}",
                f"--window-size={self.width},{self.height}", "--remote-debugging-pipe",
                "about:blank"]

    def _attach(self) -> None:
        """A fresh page target, attached with a flat session, its domains enabled."""
        pipe = self._connected()
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log", "Inspector"):
            self._call(f"{domain}.enable")
        # The viewport is exactly width x height (a headless window's own size is not),
        # and the page behaves as focused, so that keyboard focus moves on Tab.
        self._call("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        self._call("Emulation.setFocusEmulationEnabled", {"enabled": True})

    def close(self) -> None:
        """End the browser: politely first, then its whole process group; safe to repeat."""
        process, self.process = self.process, None
        if process is not None:
            if self._session and self._pipe is not None and process.poll() is None:
                try:
                    self._pipe.timeout = min(self.timeout, 2.0)
                    self._pipe.call("Browser.close")
                    process.wait(timeout=5)
                except (BrowserError, OSError, subprocess.TimeoutExpired):
                    pass  # a browser that does not close when asked is killed below
            _kill_group(process.pid)
            if self._profile is not None:
                _kill_mentioning(str(self._profile))
            process.wait(timeout=10)
        if self._pipe is not None:
            os.close(self._pipe.write_end)
            os.close(self._pipe.read_end)
            self._pipe = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def log_tail(self, lines: int = 8) -> str:
        """The last lines Chromium wrote on stderr (its D-Bus complaints left out)."""
        if self._profile is None:
            return "(no log)"
        try:
            text = (self._profile / "chromium.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = [line for line in text.splitlines() if line.strip() and "dbus" not in line]
        return " | ".join(kept[-lines:]) or "(nothing)"

    # -- the page ---------------------------------------------------------------------

    def _connected(self) -> _Pipe:
        if self._pipe is None or self.process is None:
            raise BrowserError("the browser is not running (use it inside `with`)")
        self._pipe.timeout = self.timeout
        return self._pipe

    def _call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        pipe = self._connected()
        result = pipe.call(method, params, self._session)
        self._take_events()
        return result

    def open(self, target: str | os.PathLike[str], *, javascript: bool = True,
             dark: bool = False) -> None:
        """Load a file (a path) or URL and wait for its load event. requests and
        console_errors start again empty. javascript=False: the page's scripts do not
        run (evaluate still works); dark: prefers-color-scheme is dark, else light."""
        text = os.fspath(target)
        is_url = "://" in text or text.startswith(("about:", "data:"))
        url = text if is_url else Path(text).resolve().as_uri()
        self._call("Emulation.setScriptExecutionDisabled", {"value": not javascript})
        self._call("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
        self.requests, self.failed_requests, self.console_errors = [], [], []
        self._request_urls = {}
        pipe = self._connected()
        pipe.events.clear()
        navigated = pipe.call("Page.navigate", {"url": url}, self._session)
        if navigated.get("errorText"):
            raise BrowserError(f"could not open {url}: {navigated['errorText']}")

        def loaded(message: dict[str, Any]) -> bool:
            return (message.get("method") == "Page.loadEventFired"
                    and message.get("sessionId") == self._session)

        if not any(loaded(event) for event in pipe.events):  # it may precede the reply
            pipe.wait(loaded, f"the load of {url}")
        self._take_events()

    def _take_events(self) -> None:
        """Note the requests and errors among the events received so far."""
        pipe = self._connected()
        events, pipe.events = pipe.events, []
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                self._request_urls[params["requestId"]] = params["request"]["url"]
                self.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                url = self._request_urls.get(params["requestId"], "?")
                self.failed_requests.append((url, params.get("errorText", "")))
            else:
                error = _error_text(method, params)
                if error:
                    self.console_errors.append(error)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able; promises awaited).
        Raises BrowserError when it throws."""
        result = self._call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {_exception_text(result)}")
        return result["result"].get("value")

    def screenshot(self, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport, or of the whole page (its full scroll height)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self._call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        return base64.b64decode(self._call("Page.captureScreenshot", params)["data"])

    def hover(self, selector: str) -> None:
        """Scroll the first element matching a CSS selector into view and move the mouse
        to its centre (mouseover, mouseenter and :hover follow)."""
        centre = self.evaluate(f"""(() => {{
            const element = document.querySelector({json.dumps(selector)});
            if (!element) return null;
            element.scrollIntoView({{block: "center", inline: "center"}});
            const box = element.getBoundingClientRect();
            return [box.left + box.width / 2, box.top + box.height / 2];
        }})()""")
        if centre is None:
            raise BrowserError(f"no element matches {selector!r}")
        x, y = centre
        self._call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def press(self, key: str, *, shift: bool = False) -> None:
        """Press and release a key (Tab, Enter, Escape, the arrows), Shift held or not."""
        if key not in _KEY_CODES:
            raise BrowserError(f"press knows {', '.join(_KEY_CODES)}, not {key!r}")
        event: dict[str, Any] = {"key": key, "code": key, "windowsVirtualKeyCode": _KEY_CODES[key],
                                 "modifiers": 8 if shift else 0}
        if key == "Enter":
            event["text"] = "\r"
        down = "keyDown" if "text" in event else "rawKeyDown"  # a key with text types it
        self._call("Input.dispatchKeyEvent", {**event, "type": down})
        self._call("Input.dispatchKeyEvent", {**event, "type": "keyUp"})


def _exception_text(params: dict[str, Any]) -> str:
    details = params["exceptionDetails"]
    return str(details.get("exception", {}).get("description", details.get("text")))


def _error_text(method: str | None, params: dict[str, Any]) -> str | None:
    """What an event says went wrong in the page: an uncaught exception, console.error
    or console.assert, or an error the browser logged (a blocked load, a CSP refusal)."""
    if method == "Runtime.exceptionThrown":
        return f"exception: {_exception_text(params)}"
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        words = (str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
        return f"console.{params['type']}: {' '.join(words)}"
    if method == "Log.entryAdded" and params["entry"].get("level") == "error":
        return f"{params['entry']['source']}: {params['entry']['text']}"
    return None


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(group, signal.SIGKILL)


def _kill_mentioning(text: str) -> None:
    """Kill the processes whose command line names `text`: Chromium's crash handler
    leaves the process group (it starts its own session) but names the profile."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
