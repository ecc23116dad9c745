from __future__ import annotations

from fanout_cli.cli import main

main()
