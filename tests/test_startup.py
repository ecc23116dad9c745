"""What a start loads (issue 20): a plain `fanout run` and `fanout --help` import only
what they use, and their module counts do not grow. Each is run in a fresh interpreter,
as the console script runs it, and sys.modules is read at the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The counts when they were last lowered (Python 3.11): the standard library's modules
# and fanout's own that a start imports, so a change that makes them grow imports
# something more on every start. Other packages' modules are left out of the count:
# which of them load depends on what else is installed (anyio imports sniffio when it
# is there, as in CI's environment with the real-model tier), and their versions. A
# plain run counted 281 modules of every kind before issue 20, --help 157.
PLAIN_RUN_MODULES = 217
HELP_MODULES = 120

# Imported by no plain run. (asyncio itself imports ssl, concurrent.futures and logging,
# and typer.main imports typer.completion: those stay while anyio and typer do.)
NOT_IN_A_PLAIN_RUN = ("statistics", "fractions", "decimal", "random", "fanout_cli.gate",
                      "fanout_cli.machine", "fanout_cli.sizes", "fanout_cli.shuffle")  # fmt: skip
# Imported by `fanout --help` on top of that: the records and the strategies of a run.
NOT_IN_HELP = (*NOT_IN_A_PLAIN_RUN, "asyncio", "hashlib", "fanout_cli.models",
               "fanout_cli.strategies", "fanout_cli.run_config", "fanout_cli.plan")  # fmt: skip

SCRIPT = """\
import sys
from fanout_cli.entry import main
out, sys.argv = sys.argv[1], ["fanout", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
with open(out, "w") as handle:
    handle.write("\\n".join(sorted(sys.modules)))
"""


def modules_loaded(tmp_path: Path, *args: str) -> list[str]:
    out = tmp_path / "modules.txt"
    subprocess.run([sys.executable, "-c", SCRIPT, str(out), *args], cwd=tmp_path,
                   stdin=subprocess.DEVNULL, capture_output=True, check=True,
                   timeout=60)  # fmt: skip
    return out.read_text().splitlines()


def plain_run(tmp_path: Path) -> list[str]:
    return modules_loaded(tmp_path, "run", "-q", "--output-dir", str(tmp_path / "runs"),
                          "--", "true", ":::", "a")  # fmt: skip


def test_a_plain_run_imports_none_of_what_it_does_not_use(tmp_path: Path) -> None:
    loaded = plain_run(tmp_path)
    assert "fanout_cli.runner" in loaded  # it ran
    assert [name for name in NOT_IN_A_PLAIN_RUN if name in loaded] == []


def test_help_imports_none_of_a_run(tmp_path: Path) -> None:
    loaded = modules_loaded(tmp_path, "--help")
    assert "fanout_cli.options" in loaded  # it listed the options
    assert [name for name in NOT_IN_HELP if name in loaded] == []


def _counted(modules: list[str]) -> list[str]:
    """The standard library's modules and fanout's own."""
    return [name for name in modules
            if name.partition(".")[0] in (*sys.stdlib_module_names, "fanout_cli")]  # fmt: skip


def test_the_module_counts_do_not_grow(tmp_path: Path) -> None:
    run_count = len(_counted(plain_run(tmp_path)))
    help_count = len(_counted(modules_loaded(tmp_path, "--help")))
    assert run_count <= PLAIN_RUN_MODULES, f"a plain run loads {run_count} modules"
    assert help_count <= HELP_MODULES, f"--help loads {help_count} modules"
