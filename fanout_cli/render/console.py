"""The one place fanout writes to the terminal: stdout through a Console, errors and
warnings to stderr.

sys.stdout and sys.stderr are looked up at each write, not at import: tests swap
them, and the live area redirects stderr so that a warning scrolls up above it."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TextIO

from fanout_cli.errors import IOFailure, OutputClosedError

# What a terminal must not get raw on fanout's own lines: C1 controls (U+0080-U+009F,
# U+009B is a one-byte CSI), DEL, and the characters that reorder what is shown
# (bidirectional marks, embeddings, overrides and isolates). They are written as
# \uXXXX: the same escape JSON uses, so a JSON line stays valid and means the same.
# U+DC80-U+DC9F are bytes 0x80-0x9F of input that is not UTF-8 (surrogateescape): they
# would reach the terminal as raw C1 bytes.
_HIDDEN = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\udc80-\udc9f]")
# Error and warning lines also escape ASCII controls but tab and newline (a value's
# escape codes must not restyle or move the terminal's cursor).
_HIDDEN_IN_ERRORS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\udc80-\udc9f]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x20 else f"\\u{code:04x}"


def terminal_text(text: str) -> str:
    """`text` with C1 controls and bidirectional overrides shown as \\uXXXX."""
    return text if text.isascii() and "\x7f" not in text else _HIDDEN.sub(_escape, text)


def plain_text(text: object) -> str:
    """A value read back from a file, for one line: every control character (ASCII ones
    too, but tab) and bidirectional override escaped."""
    return _HIDDEN_IN_ERRORS.sub(_escape, str(text).replace("\n", "\\n"))


def use_color(stream: TextIO) -> bool:
    """Colour on `stream`: NO_COLOR says no, FORCE_COLOR yes; else a terminal that is not dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def color_choice(when: str) -> bool | None:
    """--color: always or never decide; auto (None) asks the terminal and NO_COLOR."""
    return {"always": True, "never": False}.get(when)


class Console:
    """The one place fanout writes its output."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None) -> None:
        self.closed = False  # its reader went away: nothing more is written
        self.stream = stream or sys.stdout
        self.color = use_color(self.stream) if color is None else color

    def line(self, text: str = "") -> None:
        # surrogateescape: bytes of input that are not UTF-8 go out as they came in.
        self.write_bytes((terminal_text(text) + "\n").encode("utf-8", "surrogateescape"))

    def write_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        buffer = getattr(self.stream, "buffer", None)
        if hasattr(self.stream, "rich_proxied_file"):
            buffer = None  # stderr under the live area (rich's proxy): text, shown above it
        try:
            if buffer is None:  # a text-only stream (tests); it cannot take raw bytes
                self.stream.write(data.decode("utf-8", "replace"))
            else:
                self.stream.flush()
                buffer.write(data)
                buffer.flush()
        except BrokenPipeError:  # the reader went away (`fanout run | head`)
            self._close()
            raise OutputClosedError(str(getattr(self.stream, "name", "stdout"))) from None
        except OSError as exc:  # full (> /dev/full) or failing: exit 74, not a signal
            self._close()
            name = getattr(self.stream, "name", "")
            where = {"<stdout>": "standard output", "<stderr>": "standard error"}.get(name, name)
            raise IOFailure.of(where or "standard output", exc) from None

    def _close(self) -> None:
        """Write nothing more; whatever Python still holds for the stream (and flushes
        at exit) goes nowhere."""
        self.closed = True
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def warning(self, message: str) -> None:
        """A warning on stderr; the run goes on (stdout keeps only the result)."""
        warn(message)


def error_line(message: str) -> None:
    """`fanout: error: MESSAGE` on stderr: what a FanoutError prints before its exit."""
    _stderr_line(f"fanout: error: {message}\n")


def internal_error_line(exc: BaseException) -> None:
    """What a bug in fanout prints (exit 70) when FANOUT_DEBUG does not ask for more."""
    _stderr_line(f"fanout: internal error: {type(exc).__name__}: {exc} "
                 "(FANOUT_DEBUG=1 shows the traceback; please report it)\n")  # fmt: skip


def warn(message: str) -> None:
    """`fanout: warning: MESSAGE` on stderr."""
    _stderr_line(f"fanout: warning: {message}\n")


def _stderr_line(text: str) -> None:
    sys.stderr.write(_HIDDEN_IN_ERRORS.sub(_escape, text.removesuffix("\n")) + "\n")
    sys.stderr.flush()
