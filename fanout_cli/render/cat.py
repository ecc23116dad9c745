"""`fanout cat`: the tasks' output files, byte for byte, one after the other, chunk by
chunk as they are read (never a whole output in memory); with --tag, every line
prefixed as GNU parallel's --tag prefixes it (render.tags)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fanout_cli.render.console import Console, warn
from fanout_cli.render.tags import Tagger

if TYPE_CHECKING:
    from fanout_cli.results import CatRun


def print_outputs(console: Console, run: CatRun) -> None:
    """Each output in turn on `console`; the note of a run not ended first, on stderr.
    OutputClosedError when the reader goes away (`fanout cat last | head -1`)."""
    if run.note is not None:
        warn(run.note)
    for output in run.outputs:
        if output.tag is None:
            for chunk in output.chunks():
                console.write_bytes(chunk)
            continue
        tagger = Tagger((output.tag + "\t").encode("utf-8", "surrogateescape"))
        for chunk in output.chunks():
            console.write_bytes(tagger(chunk))
