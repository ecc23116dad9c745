"""A task's whole stdout read as a stream, in flat memory and linear time: the vote key
of its whitespace-normalised text (majority-vote) and the last match of a regex
(`--score REGEX`, `--vote-on REGEX`). Outputs can be gigabytes; each byte is read and
looked at once, a block at a time.

A vote key is the normalised text itself when it is short (at most VOTE_TEXT_LIMIT
bytes), else `sha256:<hex>` of it: equal outputs give equal keys whatever their size,
and a key stays small enough to show and to record."""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterable, Iterator

from fanout_cli.aop import open_output_for_reading
from fanout_cli.aop.files import UnsafeFile

BLOCK_BYTES = 1 << 20
LINE_BLOCKS = 4  # a line longer than this many blocks is cut for a regex
VOTE_TEXT_LIMIT = 1000
# The bytes `bytes.split()` splits on, all made spaces; then runs of spaces made one.
_TO_SPACE = bytes.maketrans(b"\t\n\x0b\x0c\r", b"     ")
_SPACE_RUNS = re.compile(rb"  +")


class NormalisedKey:
    """The vote key of a stream of chunks: whitespace runs are one space, none at
    either end, as `b" ".join(data.split())` of all the chunks together."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._head = bytearray()  # the first VOTE_TEXT_LIMIT + 1 bytes of the key
        self._size = 0
        self._space_due = False  # whitespace since the last word written

    def update(self, chunk: bytes) -> None:
        text = chunk.translate(_TO_SPACE)
        if b"  " in text:
            text = _SPACE_RUNS.sub(b" ", text)
        words = text.strip(b" ")
        if not words:
            self._space_due = self._space_due or bool(text)
            return
        if self._size and (self._space_due or text[0] == 0x20):
            self._write(b" ")
        self._write(words)
        self._space_due = text[-1] == 0x20

    def _write(self, piece: bytes) -> None:
        self._digest.update(piece)
        self._size += len(piece)
        room = VOTE_TEXT_LIMIT + 1 - len(self._head)
        if room > 0:
            self._head += piece[:room]

    def key(self) -> str:
        if self._size <= VOTE_TEXT_LIMIT:
            return self._head.decode("utf-8", errors="replace")
        return f"sha256:{self._digest.hexdigest()}"


def normalised_key(chunks: Iterable[bytes]) -> str:
    builder = NormalisedKey()
    for chunk in chunks:
        builder.update(chunk)
    return builder.key()


def normalised_text_key(text: str) -> str:
    """The key of a text held in memory (an agent's reply, a regex group). Its words
    are split as str.split() does (Unicode whitespace too)."""
    words = " ".join(text.split())
    data = words.encode("utf-8", "surrogateescape")
    return words if len(data) <= VOTE_TEXT_LIMIT else f"sha256:{hashlib.sha256(data).hexdigest()}"


def blocks(path: str) -> Iterator[bytes]:
    """The file's bytes, BLOCK_BYTES at a time; nothing when it is missing or is a link
    planted in the run folder (never followed)."""
    try:
        handle = open(open_output_for_reading(path), "rb")  # noqa: SIM115 - closed below
    except (FileNotFoundError, UnsafeFile):
        return
    with handle:
        while block := handle.read(BLOCK_BYTES):
            yield block


def lines_in(data: bytes) -> int:
    """The lines of a whole output: its newlines, and one more for a last line without
    one (`wc -l` counts the newlines only)."""
    return data.count(b"\n") + (data[-1:] not in (b"", b"\n"))


def count_lines(path: str) -> int:
    """`lines_in` of a whole file, read a block at a time (0 when it is missing or is
    a link planted in the run folder)."""
    count, last = 0, b""
    for block in blocks(path):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last not in (b"", b"\n"))


def normalised_stdout_key(path: str) -> str:
    """The vote key of a whole stdout file ("" when missing or blank)."""
    return normalised_key(blocks(path))


def last_match_group(pattern: str | re.Pattern[str], text: str) -> tuple[bool, str | None]:
    """Whether `pattern` matches, and group 1 (or the whole match, without groups) of
    its last match; None when that group took no part in the match."""
    compiled = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
    last = None
    for last in compiled.finditer(text):  # noqa: B007 - we want the last one
        pass
    if last is None:
        return False, None
    return True, last.group(1) if last.re.groups else last.group(0)


def last_match_in_file(pattern: str, path: str) -> str | None:
    """`last_match_group` over a whole file, decoded as UTF-8 (bad bytes replaced),
    scanned in blocks that end at a line end (a line longer than LINE_BLOCKS blocks is
    cut), so that each character is looked at once: a match may span lines within a
    block, not across two. The end of the file is scanned with the block before it."""
    compiled = re.compile(pattern, re.MULTILINE)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    found, group = False, None
    held, partial = "", ""  # held: a block not scanned yet; partial: an unended line
    for block in blocks(path):
        text = partial + decoder.decode(block)
        cut = text.rfind("\n") + 1
        if not cut and len(text) < LINE_BLOCKS * BLOCK_BYTES:
            partial = text
            continue
        cut = cut or len(text)
        if held:
            matched, in_block = last_match_group(compiled, held)
            if matched:
                found, group = True, in_block
        held, partial = text[:cut], text[cut:]
    matched, in_block = last_match_group(compiled, held + partial + decoder.decode(b"", final=True))
    if matched:
        return in_block
    return group if found else None
