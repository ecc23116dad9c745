"""Reading the PNGs a browser writes, with the standard library: enough to tell a blank
screenshot from a drawn one. 8-bit greyscale, RGB, grey+alpha and RGBA, not interlaced
(what Chromium writes); the five row filters of the PNG specification."""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


class PngStats(NamedTuple):
    width: int
    height: int
    colours: int  # distinct pixel values (RGBA counts alpha)


class PngImage(NamedTuple):
    width: int
    height: int
    channels: int  # samples per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
    rows: list[bytearray]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        """The samples of one pixel, (r, g, b) for RGB; x and y count from the top left."""
        start = x * self.channels
        return tuple(self.rows[y][start:start + self.channels])

    def colours(self) -> int:
        """How many distinct pixel values the image has."""
        seen: set[tuple[int, ...]] = set()
        for row in self.rows:
            samples = (row[channel::self.channels] for channel in range(self.channels))
            seen.update(zip(*samples, strict=True))
        return len(seen)


def read_png(png: bytes) -> PngImage:
    """Decode a PNG's pixels."""
    width, height, channels, data = _read_chunks(png)
    return PngImage(width, height, channels, _rows(data, width * channels, height, channels))


def png_stats(png: bytes) -> PngStats:
    """Size and number of distinct colours of a PNG image."""
    image = read_png(png)
    return PngStats(image.width, image.height, image.colours())


def _read_chunks(png: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, samples per pixel and the inflated image data of a PNG."""
    if not png.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    position, compressed = len(_SIGNATURE), bytearray()
    width = height = channels = 0
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        body = png[position + 8:position + 8 + length]
        position += 12 + length  # length, kind, body, CRC
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in _CHANNELS or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, "
                                 f"interlace {interlace}")
            channels = _CHANNELS[colour]
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    if not channels:
        raise ValueError("PNG without a header")
    return width, height, channels, zlib.decompress(bytes(compressed))


def _rows(data: bytes, stride: int, height: int, step: int) -> list[bytearray]:
    """The unfiltered rows: each stored row is a filter byte, then `stride` bytes."""
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for index in range(height):
        start = index * (stride + 1)
        kind, row = data[start], bytearray(data[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(step, stride):
                row[i] = (row[i] + row[i - step]) & 0xFF
        elif kind == 2:
            row = _add_bytes(row, previous)
        elif kind == 3:
            _unfilter_average(row, previous, step)
        elif kind == 4:
            _unfilter_paeth(row, previous, step)
        elif kind != 0:
            raise ValueError(f"unknown PNG row filter {kind}")
        rows.append(row)
        previous = row
    return rows


def _add_bytes(first: bytearray, second: bytearray) -> bytearray:
    """Bytewise sum modulo 256, all bytes at once on big integers: the low seven bits
    of each byte add without reaching the next byte, the top bits by exclusive or."""
    low = int.from_bytes(b"\x7f" * len(first), "big")
    high = int.from_bytes(b"\x80" * len(first), "big")
    a, b = int.from_bytes(first, "big"), int.from_bytes(second, "big")
    total = ((a & low) + (b & low)) ^ ((a ^ b) & high)
    return bytearray(total.to_bytes(len(first), "big"))


def _unfilter_average(row: bytearray, previous: bytearray, step: int) -> None:
    for i in range(len(row)):
        left = row[i - step] if i >= step else 0
        row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF


def _unfilter_paeth(row: bytearray, previous: bytearray, step: int) -> None:
    for i in range(len(row)):
        left = row[i - step] if i >= step else 0
        above = previous[i]
        corner = previous[i - step] if i >= step else 0
        guess = left + above - corner
        to_left, to_above, to_corner = abs(guess - left), abs(guess - above), abs(guess - corner)
        if to_left <= to_above and to_left <= to_corner:
            predicted = left
        elif to_above <= to_corner:
            predicted = above
        else:
            predicted = corner
        row[i] = (row[i] + predicted) & 0xFF
