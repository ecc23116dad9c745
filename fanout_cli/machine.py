"""What --memfree and --load read of the machine fanout runs on, and their values.

- The memory available: Linux's MemAvailable (/proc/meminfo: what can be given to new
  work without swapping, page cache that can be dropped included). GNU parallel sums
  MemFree, Buffers, Cached and SwapCached instead, which counts as free the cache that
  cannot be dropped (tmpfs, shared memory); that sum is the fallback on a kernel too old
  for MemAvailable. macOS: vm_stat's free, inactive and speculative pages. Both are
  the machine's: a container's own memory limit is not read.
- The load: as GNU parallel's --load, the processes running or ready to run right now
  (not the 1-minute average, which lags a burst of starts by a minute, so that a run
  would start every task before the average rose). Linux: the running count of
  /proc/loadavg, less the thread that reads it; elsewhere the 1-minute load average.

The parsers (`parse_memfree`, `parse_load`) read a command line's string or a TOML or
manifest value, and raise ValueError with one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

from fanout_cli.sizes import bytes_of
from fanout_cli.values import shown

MEMINFO = "/proc/meminfo"
LOADAVG = "/proc/loadavg"
MAX_MEMFREE = 1 << 50  # 1P
MAX_LOAD = 1_000_000.0
MIN_LOAD = 0.01  # GNU parallel's floor: a share of few CPUs never waits for an idle machine
_GNU_FREE = ("MemFree", "Buffers", "Cached", "SwapCached")
_VM_PAGES = ("Pages free", "Pages inactive", "Pages speculative")
_LOAD = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)(%?)")


def parse_memfree(value: object) -> int:
    """`1G`, `512M`, `100k` (1000) or `100K` (1024), or bytes (an integer) -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        size: int | None = value
    else:
        size = bytes_of(value.strip()) if isinstance(value, str) else None
    if size is None:
        raise ValueError(f"expected a size such as 1G, 512M or 100k, got {shown(value)}")
    if not 1 <= size <= MAX_MEMFREE:
        raise ValueError(f"expected a size of at least 1 byte and at most 1P, got {shown(value)}")
    if memory_reader() is None:
        raise ValueError(f"cannot read the memory available on this system ({sys.platform})")
    return size


def parse_load(value: object) -> str:
    """`4`, `2.5`, or `100%` of the CPUs, more than 0 -> that text (the manifest keeps
    it: a share of the CPUs is of the machine's that runs, see `load_threshold`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = str(value)
    else:
        text = value.strip() if isinstance(value, str) else ""
    match = _LOAD.fullmatch(text)
    if match is None:
        raise ValueError(f"expected a load such as 4, 2.5 or 100% (of the CPUs), "
                         f"got {shown(value)}")  # fmt: skip
    if not 0 < float(match.group(1)) <= MAX_LOAD:
        raise ValueError(f"expected a load of more than 0, got {shown(value)}")
    return text


def load_threshold(load: str, cpus: int) -> float:
    """The load at which starts wait, on a machine of `cpus` CPUs: --load's number, or
    its share of the CPUs (at least MIN_LOAD)."""
    if load.endswith("%"):
        return max(float(load[:-1]) * cpus / 100, MIN_LOAD)
    return float(load)


# --- reading the machine -----------------------------------------------------------------


def available_memory() -> int:
    """Bytes of memory available now (see the module's note)."""
    reader = memory_reader()
    if reader is None:  # pragma: no cover - parse_memfree refuses such a system
        raise OSError("cannot read the memory available")
    return reader()


def memory_reader() -> Callable[[], int] | None:
    """How this system tells its available memory; None when fanout cannot read it."""
    if os.path.exists(MEMINFO):
        return _read_meminfo
    if sys.platform == "darwin":
        return _read_vm_stat
    return None


def _read_meminfo() -> int:
    with open(MEMINFO, encoding="ascii", errors="replace") as meminfo:
        return meminfo_available(meminfo.read())


def _read_vm_stat() -> int:
    text = subprocess.run(["vm_stat"], capture_output=True, text=True, check=True).stdout
    return vm_stat_available(text)


def meminfo_available(text: str) -> int:
    """MemAvailable of /proc/meminfo's text, or GNU parallel's sum without it; bytes."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        amount = rest.split()
        if amount and amount[0].isdigit():
            fields[name.strip()] = int(amount[0]) * 1024  # in kB
    if "MemAvailable" in fields:
        return fields["MemAvailable"]
    return sum(fields.get(name, 0) for name in _GNU_FREE)


def vm_stat_available(text: str) -> int:
    """Free, inactive and speculative pages of macOS's vm_stat output; bytes."""
    page = re.search(r"page size of (\d+) bytes", text)
    pages = 0
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() in _VM_PAGES:
            pages += int(rest.strip().rstrip(".") or 0)
    return pages * (int(page.group(1)) if page else 4096)


def running_load() -> float:
    """How many processes run or are ready to run now (see the module's note)."""
    try:
        with open(LOADAVG, encoding="ascii") as loadavg:
            running = loadavg_running(loadavg.read())
    except OSError:
        running = None
    return os.getloadavg()[0] if running is None else running


def loadavg_running(text: str) -> float | None:
    """/proc/loadavg's running count (`0.52 0.58 0.59 3/1150 12345`: 3), less the
    thread that read it; None when the text has none."""
    fields = text.split()
    running = fields[3].partition("/")[0] if len(fields) > 3 else ""
    return max(int(running) - 1, 0) if running.isdigit() else None
