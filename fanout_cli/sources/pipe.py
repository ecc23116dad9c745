"""--pipe: standard input cut into blocks, each block one task's stdin (GNU parallel's
--pipe). A block never splits a record; the blocks, in order, are stdin byte for byte.

The blocks are read only when the runner asks for the next task, which it does once a
task has started: the running blocks, the one waiting for a slot and the one being cut
are all that is held (about -j + 2 blocks). A block lives in its TaskSpec, in memory,
as in GNU parallel; it is not kept in the run folder, so a --pipe run cannot be resumed
(which is said, with the reason, rather than running other blocks)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from fanout_cli.errors import UsageError
from fanout_cli.models import StdinBlock, TaskSpec, display_command
from fanout_cli.replacements import Grammar, Token
from fanout_cli.sizes import bytes_of
from fanout_cli.sources.blocks import BlockCutter
from fanout_cli.sources.stdin import pollable, read_chunk
from fanout_cli.template import Template, looks_like_shell, meant_for_a_shell

DEFAULT_BLOCK = 1 << 20
MAX_BLOCK = 1 << 30
MAX_RECORDS = 1 << 30
_READ_BYTES = 1 << 20

_ESCAPES = {"0": "\0", "r": "\r", "n": "\n", "t": "\t", "'": "'", '"': '"', "\\": "\\"}
# What stands for a value in GNU parallel ({}, {.}, {3/.}, {##}); --pipe has no values.
ANY_POSITION = Grammar(None)  # {1}, {2}, ... are read (and refused: no values)
_DOUBLED = re.compile(r"\{\{[^{}]*\}\}")
_NUMBER_STRING = re.compile(r"\{[#%]\}")
_DOUBLED_TOKEN = re.compile(r"\{\{(|\.|/|//|/\.|#|%)\}\}")


@dataclass(frozen=True)
class PipeOptions:
    block_size: int = DEFAULT_BLOCK
    recend: bytes = b"\n"
    records: int | None = None  # records per block; None: blocks of about block_size


def parse_block_size(text: str) -> int:
    """`10`, `1k` (1000), `1K` or `1Ki` (1024), `1M`, `1m`, `1G`, ... as GNU parallel."""
    size = bytes_of(text)
    if size is None:
        raise UsageError(f"--block: expected a size such as 1M, 512K or 4096, got {text!r}")
    if size < 1:
        raise UsageError(f"--block: at least 1 byte, got {text!r}")
    if size > MAX_BLOCK:
        raise UsageError(f"--block: at most 1G, got {text!r}")
    return size


def parse_recend(text: str) -> bytes:
    """GNU parallel's escapes: \\n \\r \\t \\0 \\\\ \\' \\"; another backslash is itself."""
    if not text:
        raise UsageError("--recend: a record end cannot be empty")
    unescaped = re.sub(r"\\([0rnt'\"\\])", lambda match: _ESCAPES[match.group(1)], text)
    return unescaped.encode("utf-8", "surrogateescape")


def parse_block_records(text: str) -> int:
    if re.fullmatch("[0-9]+", text) is None or not 1 <= int(text) <= MAX_RECORDS:
        raise UsageError(f"--block-records: expected a whole number 1-{MAX_RECORDS}, got {text!r}")
    return int(text)


def pipe_options(given: Mapping[str, Any], resuming: bool) -> PipeOptions | None:
    """--pipe's options from the command line (None without --pipe); what does not go
    with --pipe is a usage error."""
    block, recend, records = given["block"], given["recend"], given["block_records"]
    if not given["pipe"]:
        for name, value in (("--block", block), ("--recend", recend), ("-L", records)):
            if value is not None:
                raise UsageError(f"{name} applies to --pipe (stdin cut into blocks)")
        return None
    if given["null"]:
        raise UsageError("-0 does not apply to --pipe; to cut after NUL: --recend '\\0'")
    if block is not None and records is not None:
        raise UsageError("give --block or --block-records (-L), not both")
    if given["executor"] not in (None, "local"):
        raise UsageError("--pipe runs its tasks on this machine; --executor "
                         f"{given['executor']} is not supported with it")  # fmt: skip
    if resuming:
        raise UsageError("--pipe runs cannot be resumed: their blocks of stdin are not kept; "
                         "run it again")  # fmt: skip
    for name in ("shard", "order", "shuf"):
        if given.get(name) not in (None, False):
            raise UsageError(f"--{name} does not apply to --pipe (blocks run in input order)")
    return PipeOptions(
        block_size=DEFAULT_BLOCK if block is None else parse_block_size(block),
        recend=b"\n" if recend is None else parse_recend(recend),
        records=None if records is None else parse_block_records(records),
    )


def check_pipe(named: list[str], command: tuple[str, ...] | None, agent: bool) -> None:
    """--pipe reads stdin and gives it to a command: no other source, no agent tasks, and
    no replacement string that stands for a value."""
    if named:
        raise UsageError(f"--pipe cuts stdin into blocks; it does not take {named[0]}")
    if agent:
        raise UsageError("--pipe gives each block to a command's stdin; agent tasks "
                         "(--prompt, --agent, --agent-cli) do not read one")  # fmt: skip
    if not command:
        raise UsageError("--pipe needs a command after --: fanout run --pipe -- COMMAND")
    for word in command:  # an unsupported one ({..}, {= perl =}) is refused as anywhere
        for part in ANY_POSITION.split(word, f"command {' '.join(command)!r}"):
            if isinstance(part, Token) and part.modifier not in ("#", "%"):
                raise UsageError(f"--pipe: {part.text} in the command has no value to stand "
                                 "for (each block is the task's stdin); {#} is the block number")


class PipeCommand:
    """The command each block runs: {#} the block number, {%} the slot, nothing appended."""

    def __init__(self, words: tuple[str, ...], force_shell: bool) -> None:
        shell = (force_shell or meant_for_a_shell(words)
                 or (len(words) == 1 and looks_like_shell(words[0])))  # as for values
        numbered = any(_NUMBER_STRING.search(_DOUBLED.sub("", word)) for word in words)
        self.template = Template(words, shell) if numbered else None
        plain = tuple(_DOUBLED_TOKEN.sub(r"{\1}", word) for word in words)
        self._fixed: tuple[str, ...] | str = " ".join(plain) if shell else plain

    def render(self, number: int, slot: int | None = None) -> tuple[str, ...] | str:
        if self.template is None:
            return self._fixed
        return self.template.render("", number, slot)


class PipeSource:
    """Blocks of a file descriptor (stdin), one task each, read as the runner asks."""

    total: int | None = None  # not known until the input ends

    def __init__(self, command: PipeCommand, options: PipeOptions, fd: int = 0) -> None:
        self.name = "--pipe"
        self.command = command
        self.options = options
        self.fd = fd
        self._cutter = BlockCutter(options.block_size, options.recend, options.records)
        self._number = 0
        self._records = 0  # records before the next block: its origin names its own

    def _spec(self, data: bytes, records: int) -> TaskSpec:
        self._number += 1
        first, self._records = self._records + 1, self._records + records
        origin = f"stdin:{first}" if records == 1 else f"stdin:{first}-{self._records}"
        uses_slot = self.command.template is not None and self.command.template.uses_slot
        return TaskSpec(
            seq=self._number,
            task_id=f"block-{self._number}",
            command=self.command.render(self._number),
            origin=origin,
            input="" if uses_slot else None,  # a template renders from an input
            template=self.command.template if uses_slot else None,
            stdin=StdinBlock(data, records),
        )

    def _blocks(self, chunk: bytes) -> Iterator[TaskSpec]:
        """The tasks of one chunk of input (b"": the end), one block at a time."""
        pieces = self._cutter.feed(chunk) if chunk else self._cutter.finish()
        pieces.reverse()
        while pieces:  # a block yielded is not kept here once its task is done
            yield self._spec(*pieces.pop())

    def specs(self) -> Iterator[TaskSpec]:
        """All the tasks, with blocking reads."""
        while True:
            chunk = read_chunk(self.fd, min(self._cutter.want(), _READ_BYTES))
            yield from self._blocks(chunk)
            if not chunk:
                return

    def commands(self, jobs: int) -> Iterator[tuple[str, str | None]]:
        """For --dry-run: one command a block, as GNU parallel's --dry-run --pipe."""
        for spec in self.specs():
            yield display_command(spec.command_for_slot((spec.seq - 1) % jobs + 1)), None

    async def stream(self) -> AsyncIterator[TaskSpec]:
        waits = pollable(self.fd)
        while True:
            if waits:
                await anyio.wait_readable(self.fd)
            chunk = read_chunk(self.fd, min(self._cutter.want(), _READ_BYTES))
            for spec in self._blocks(chunk):
                yield spec
            if not chunk:
                return
