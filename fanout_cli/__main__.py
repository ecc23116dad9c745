from __future__ import annotations

from fanout_cli.entry import main

main()
