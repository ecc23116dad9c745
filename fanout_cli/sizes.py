"""Sizes in bytes as GNU parallel reads them (--block, --memfree): K, M, G, T, P (and
Ki, ki, Mi, ...) are powers of 1024; k, m, g, t, p are powers of 1000; a bare number
is bytes; a fraction (1.5k) is cut to a whole byte."""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15,
          "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}  # fmt: skip
_SIZE = re.compile(r"([0-9]{1,24}(?:\.[0-9]{1,24})?)(?:([kKmMgGtTpP])(i?))?")


def bytes_of(text: str) -> int | None:
    """`10`, `1k` (1000), `1K` or `1Ki` (1024), `1.5G`, ... in bytes; None when `text`
    is not a size (a sign, a space, another unit, more than 24 digits)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        return None
    number, unit, binary = match.group(1), match.group(2) or "", match.group(3)
    multiplier = _UNITS[unit.upper()] if binary else _UNITS[unit]
    return int(float(number) * multiplier) if "." in number else int(number) * multiplier


def format_size(size: float) -> str:
    """Bytes in the short form messages use: 512B, 100.0K, 1.5G (powers of 1024)."""
    for unit in ("B", "K", "M", "G", "T"):
        if abs(size) < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
