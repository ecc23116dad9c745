"""`fanout cat`: the tasks' output files, byte for byte, one after the other, chunk by
chunk as they are read (never a whole output in memory); with --tag, every line
prefixed as GNU parallel's --tag prefixes it (render.tags). Small outputs are written
together, up to BATCH_BYTES at a time: a run of 100,000 one-line outputs takes a few
dozen writes, not 100,000."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fanout_cli.render.console import Console, warn
from fanout_cli.render.tags import Tagger

if TYPE_CHECKING:
    from fanout_cli.results import CatRun

BATCH_BYTES = 1 << 16


def print_outputs(console: Console, run: CatRun) -> None:
    """Each output in turn on `console`; the note of a run not ended first, on stderr.
    What was read is written out before an error stops the printing. OutputClosedError
    when the reader goes away (`fanout cat last | head -1`)."""
    if run.note is not None:
        warn(run.note)
    pending = bytearray()
    try:
        for output in run.outputs:
            tagger = None
            if output.tag is not None:
                tagger = Tagger((output.tag + "\t").encode("utf-8", "surrogateescape"))
            for chunk in output.chunks():
                pending += chunk if tagger is None else tagger(chunk)
                if len(pending) >= BATCH_BYTES:
                    console.write_bytes(bytes(pending))
                    pending.clear()
    finally:
        if pending:
            console.write_bytes(bytes(pending))
