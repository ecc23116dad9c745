"""Early ends (issue 19), for `benchmarks/run.py --only halt`.

Ten tasks at -j 10: one ends at 0.2 s, nine sleep 30 s. Measured, in alternating
rounds, from the moment the deciding task ended (it writes the time just before it
exits) to the moment the tool has exited, and whether any sleeper is still alive:

    first-n-succeed:   fanout run --strategy first-n-succeed (the winner exits 0)
    halt now,fail=1:   fanout run --halt now,fail=1          (the loser exits 1)
    GNU parallel:      parallel --halt now,fail=1            (the same tasks)

fanout ends the sleepers with TERM (they die of it at once); GNU parallel with its
--termseq (TERM, 200 ms, TERM, 100 ms, TERM, 50 ms, KILL, 25 ms), which they obey at
the first TERM too, so both measure the tool's own reaction.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from run import FANOUT

SLEEPERS = 9
# $1: the task's name. The decider writes the time it ends, then exits with $2.
TASK = ('if [ "$1" = decider ]; then sleep 0.2; date +%s.%N > "$DIR/ended"; exit "$2"; '
        'fi; echo $$ > "$DIR/pid-$1"; exec sleep 30')  # fmt: skip


def _one(folder: Path, command: list[str]) -> tuple[float, int]:
    """Seconds from the decider's end to the tool's exit, and the sleepers left alive."""
    folder.mkdir(parents=True)
    subprocess.run(command, env={**os.environ, "DIR": str(folder)}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, cwd=folder)  # fmt: skip
    exited = time.time()
    ended = float((folder / "ended").read_text())
    alive = 0
    for pid_file in folder.glob("pid-*"):
        try:
            os.kill(int(pid_file.read_text()), 0)
            alive += 1
            os.kill(int(pid_file.read_text()), 9)
        except ProcessLookupError:
            pass
    return exited - ended, alive


def early_ends(rounds: int, scratch: Path, parallel: str | None) -> list[dict[str, Any]]:
    values = ["decider"] + [f"s{n}" for n in range(SLEEPERS)]
    script = ["sh", "-c", TASK, "sh"]

    def fanout(*options: str, code: str) -> list[str]:
        return [FANOUT, "run", "-q", "-j", "10", "--output-dir", "out", *options, "--",
                *script, "{}", code, ":::", *values]  # fmt: skip

    commands = {
        "first-n-succeed": fanout("--strategy", "first-n-succeed", code="0"),
        "halt now,fail=1": fanout("--halt", "now,fail=1", code="1"),
    }
    if parallel:
        quoted = TASK.replace("'", "'\\''")
        commands["GNU parallel --halt now,fail=1"] = [
            parallel, "-j", "10", "--halt", "now,fail=1", f"sh -c '{quoted}' sh {{}} 1", ":::",
            *values]  # fmt: skip
    samples: dict[str, list[float]] = {name: [] for name in commands}
    leftovers = dict.fromkeys(commands, 0)
    for round_number in range(rounds):
        for name, command in commands.items():
            folder = scratch / f"halt-{round_number}-{len(samples[name])}-{name.split()[0]}"
            seconds, alive = _one(folder, command)
            samples[name].append(seconds)
            leftovers[name] += alive
    gnu = samples.get("GNU parallel --halt now,fail=1")
    results = []
    for name in ("first-n-succeed", "halt now,fail=1"):
        median = statistics.median(samples[name])
        result: dict[str, Any] = {
            "workload": f"{name}: 0.2 s decider, nine 30 s sleepers",
            "measure": "decided -> exit s",
            "target": "<= 0.3 s, no leftovers",
            "fanout": median,
            "passed": median <= 0.3 and leftovers[name] == 0,
            "note": f"leftover processes: {leftovers[name]}",
            "samples": {"fanout": samples[name]},
        }
        if gnu is not None and name.startswith("halt"):
            result.update(peer=statistics.median(gnu), peer_name="parallel --halt now,fail=1",
                          ratio=median / statistics.median(gnu))  # fmt: skip
            result["samples"]["parallel"] = gnu
            result["note"] += f"; parallel left {leftovers['GNU parallel --halt now,fail=1']}"
        results.append(result)
    return results
