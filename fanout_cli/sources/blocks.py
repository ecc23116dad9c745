"""Cutting a byte stream into blocks that never split a record, where GNU parallel's
--pipe cuts them.

By size (--block): a round fills the buffer up to the next multiple of the block size,
then cuts after the last record end in it and keeps the rest for the next round. A
round with no record end in it grows the block (by 1.3 x + 1, for the rest of the
input) until a whole record fits. At the end of the input what is left is the last
block, whole. By records (--block-records N): a block is N records, whatever their
size. The cutter is pure (bytes in, blocks out): the reading is the source's."""

from __future__ import annotations

import math

# GNU parallel grows a block up to 2 GiB - 1; a block is one bytes object.
MAX_GROWN_BLOCK = 2**31 - 1


class BlockCutter:
    """Feed it the input in chunks of any size; it hands back (block, records) pairs."""

    def __init__(self, size: int, recend: bytes, records: int | None = None) -> None:
        self.size = size
        self.recend = recend
        self.records = records  # records per block; None: cut by size
        self._buffer = bytearray()
        self._target = size  # the buffer's length at which a round ends
        self._scanned = 0  # by records: the buffer holds no record end before this
        self._counted = 0  # by records: record ends in the buffer so far

    def want(self) -> int:
        """How many bytes the current round still reads (by records: any number)."""
        return self._target - len(self._buffer) if self.records is None else self.size

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        if self.records is not None:
            self._buffer += chunk
            return self._count_off()
        blocks = []
        position = 0
        while position < len(chunk):
            take = chunk[position : position + self._target - len(self._buffer)]
            self._buffer += take
            position += len(take)
            if len(self._buffer) == self._target:
                blocks += self._end_round()
        return blocks

    def finish(self) -> list[tuple[bytes, int]]:
        """The end of the input: what is left is the last block."""
        if not self._buffer:
            return []
        block = bytes(self._buffer)
        self._buffer = bytearray()
        return [(block, self._counted + self._records_in(block, self._scanned))]

    def _end_round(self) -> list[tuple[bytes, int]]:
        end = self._buffer.rfind(self.recend)
        blocks = []
        if end == -1:  # no whole record yet: a bigger block, as GNU parallel does
            self.size = min(math.ceil(self.size * 1.3 + 1), MAX_GROWN_BLOCK)
        else:
            block = self._cut(end + len(self.recend))
            blocks.append((block, self._records_in(block, 0)))
        self._target = len(self._buffer) + self.size - len(self._buffer) % self.size
        return blocks

    def _count_off(self) -> list[tuple[bytes, int]]:
        """By records: every N record ends, a block."""
        assert self.records is not None
        blocks = []
        start = self._scanned
        while (found := self._buffer.find(self.recend, start)) != -1:
            start = found + len(self.recend)
            self._counted += 1
            if self._counted == self.records:
                blocks.append((self._cut(start), self._counted))
                start, self._counted = 0, 0
        self._scanned = max(start, len(self._buffer) - len(self.recend) + 1)
        return blocks

    def _cut(self, end: int) -> bytes:
        """The buffer up to `end`, as the block (one copy); the rest stays."""
        with memoryview(self._buffer) as whole, whole[:end] as part:
            block = bytes(part)
        del self._buffer[:end]
        return block

    def _records_in(self, block: bytes, start: int) -> int:
        """Record ends in block[start:], and one more for an unended last record."""
        ends = block.count(self.recend, start)
        return ends + (0 if block.endswith(self.recend) else 1)
