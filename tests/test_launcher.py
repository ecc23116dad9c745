"""The launcher (fanout_cli/executors/launcher.py): a child started from its threads
through the C library gets what os.posix_spawn gave it (the loop's own start, kept
where ctypes cannot be had), checked for both ways on real children."""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from fanout_cli.executors import launcher
from fanout_cli.executors.launcher import Launcher

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Each child reports on itself: a shell's own mask while it waits for a command is its
# own business, so the reports come from the started program itself.
SIGNALS = ["/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]
SESSION = ["/bin/cat", "/proc/self/stat"]
ENV_AND_STDIN = ["/bin/sh", "-c", 'echo "greeting=$GREETING"; readlink /proc/self/fd/0; '
                 "echo to-stderr >&2"]


@pytest.fixture(params=["threads", "loop"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FANOUT_SPAWN", request.param)
    yield request.param


def _start(tmp_path: Path, extra: dict[str, str], argv: list[str]) -> tuple[int, str, str, int]:
    """Start `argv` with the launcher, wait for it; (pid, stdout, stderr, exit status)."""
    out, err = tmp_path / "out", tmp_path / "err"
    chosen = Launcher({**os.environ, "GREETING": "from-fanout"})

    async def main() -> tuple[int, int]:
        stdout = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        stderr = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            pid = await chosen.spawn(argv[0], argv, extra, None, stdout, stderr)
        finally:
            os.close(stdout)
            os.close(stderr)
            chosen.close()
        _, status = os.waitpid(pid, 0)
        return pid, os.waitstatus_to_exitcode(status)

    pid, status = anyio.run(main)
    return pid, out.read_text(), err.read_text(), status


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        for word in line.replace(":\t", "=").split():
            name, equals, value = word.partition("=")
            if equals:
                found[name] = value
    return found


def test_the_child_leads_a_session_of_its_own(way: str, tmp_path: Path) -> None:
    pid, out, _, _ = _start(tmp_path, {}, SESSION)
    fields = out[out.rindex(")") + 2 :].split()  # pid (comm) state ppid pgrp session
    assert (int(fields[2]), int(fields[3])) == (pid, pid)


def test_the_child_blocks_nothing_and_sigpipe_is_default_again(way: str, tmp_path: Path) -> None:
    _, out, err, status = _start(tmp_path, {}, SIGNALS)
    assert status == 0, err
    got = _fields(out)
    assert int(got["SigBlk"], 16) == 0
    ignored = int(got["SigIgn"], 16)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):  # ignored in Python, default again
        assert not ignored & (1 << (signum - 1)), (way, hex(ignored))


def test_the_child_gets_the_environment_dev_null_and_the_files(way: str, tmp_path: Path) -> None:
    _, out, err, _ = _start(tmp_path, {}, ENV_AND_STDIN)
    assert out == "greeting=from-fanout\n/dev/null\n"
    assert err == "to-stderr\n"


def test_a_task_s_variables_are_added_and_override(way: str, tmp_path: Path) -> None:
    _, out, _, _ = _start(tmp_path, {"GREETING": "own", "MORE": "x"},
                          ["/bin/sh", "-c", 'echo "$GREETING $MORE"'])  # fmt: skip
    assert out == "own x\n"


def test_the_mask_is_empty_whichever_thread_starts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread that blocks signals (as some libraries' threads do) passes none of it on."""
    monkeypatch.setenv("FANOUT_SPAWN", "threads")
    blocked = {signal.SIGUSR1, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:  # the launcher's threads start with this thread's mask
        _, out, _, _ = _start(tmp_path, {}, SIGNALS)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    assert int(_fields(out)["SigBlk"], 16) == 0


@pytest.mark.parametrize(("program", "expected"), [
    ("missing", errno.ENOENT), ("not-executable", errno.EACCES), ("not-a-program", errno.ENOEXEC),
])  # fmt: skip
def test_a_start_that_fails_raises_the_error_posix_spawn_gave(
    way: str, tmp_path: Path, program: str, expected: int
) -> None:
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    (tmp_path / "not-a-program").write_bytes(b"\x00\x01 no magic")
    (tmp_path / "not-a-program").chmod(0o755)
    with pytest.raises(OSError) as raised:
        _start(tmp_path, {}, [str(tmp_path / program)])
    assert raised.value.errno == expected


def test_starts_run_off_the_loop_s_thread_on_linux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = launcher._CSpawn.__call__

    def noted(self: launcher._CSpawn, *args: object) -> int:
        seen.append(threading.current_thread().name)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(launcher._CSpawn, "__call__", noted)
    monkeypatch.setenv("FANOUT_SPAWN", "threads")
    _start(tmp_path, {}, ["/bin/true"])
    assert seen == ["fanout-launcher"]


def test_starts_go_to_the_threads_while_they_are_slow_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FANOUT_SPAWN", raising=False)
    chosen = Launcher({})
    assert not chosen.busy  # quick until a start says otherwise
    for _ in range(3):
        chosen._timed(0.0002)
    assert not chosen.busy
    for _ in range(10):  # a machine whose CPUs are taken: 5 ms a start
        chosen._timed(0.005)
    assert chosen.busy
    on_loop = [chosen._on_loop() for _ in range(launcher._SAMPLE_EVERY * 2)]
    assert on_loop.count(True) == 2  # sampled, to see whether they still must
    for _ in range(20):  # the average comes down by a fifth of the way a start
        chosen._timed(0.0002)
    assert not chosen.busy


def test_fixed_to_the_loop_never_uses_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_SPAWN", "loop")
    chosen = Launcher({})
    for _ in range(10):
        chosen._timed(0.005)
    assert not chosen.busy
