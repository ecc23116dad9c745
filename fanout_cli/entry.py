"""The `fanout` console script. `--version` is answered before Typer is imported."""

from __future__ import annotations

import gc
import os
import sys

from fanout_cli import __version__

EXIT_IO = 74  # errors.EXIT_IO, not imported: this module stays the cheapest to load


def main() -> None:
    if not _standard_descriptors_open():
        sys.stderr.write("fanout: error: standard output: cannot write: it is closed\n")
        sys.exit(EXIT_IO)
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"fanout {__version__}\n")
        sys.exit(0)
    # The slow import, only when needed. It makes many objects and frees few: no
    # collection during it would find garbage, and after it they need no more scans.
    gc.disable()
    try:
        from fanout_cli.cli import main as cli_main
    finally:
        gc.enable()
    gc.freeze()
    cli_main()


def _standard_descriptors_open() -> bool:
    """Whether standard output is open. A closed descriptor 0, 1 or 2 (`>&-`) gets
    /dev/null, so that no file fanout opens later takes its number (a run folder's
    journal must never become a task's stdin or where fanout prints); closed stdin
    reads as empty, closed stderr discards."""
    stdout_open = True
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            stdout_open = stdout_open and fd != 1
            if fd == 2:
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the process's own
    return stdout_open
