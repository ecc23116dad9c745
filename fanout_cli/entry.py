"""The `fanout` console script. `--version` is answered before Typer is imported."""

from __future__ import annotations

import sys

from fanout_cli import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"fanout {__version__}\n")
        sys.exit(0)
    from fanout_cli.cli import main as cli_main  # the slow import, only when needed

    cli_main()
