"""Starting a task's process without stopping the event loop while it starts.

os.posix_spawn is a vfork: the caller waits until the child has reached its exec, and
Python 3.11 holds the GIL all that time. On an idle machine that is 0.1-0.3 ms; on a
busy one the child first waits for a CPU, and the wait grows to milliseconds (5 ms a
start with two CPU-bound processes on two cores), during which fanout neither records
the tasks that ended nor starts the next. So on Linux with glibc or musl, once starts
on the loop take that long, the same posix_spawn is called through ctypes, which lets
go of the GIL, from a few threads of its own: the loop goes on, and starts that wait
for a CPU overlap. The threads cost CPU of their own (handing each start over and the
GIL back: about 0.15 ms a start), so while starts are quick they stay on the loop:
starts are timed there (one in `_SAMPLE_EVERY` while they go to the threads), and a
moving average above `_BUSY_SECONDS` moves them to the threads, one below
`_QUIET_SECONDS` back. FANOUT_SPAWN=loop or =threads fixes the choice.

The child gets what os.posix_spawn gave it: the output files as fds 1 and 2, stdin
(/dev/null, or a pipe with --pipe) as 0, a new session, SIGPIPE and SIGXFSZ back to
their defaults, and an empty signal mask whichever thread starts it. Where ctypes or
the C library's posix_spawn cannot be had (macOS, another event loop), `Launcher`
calls os.posix_spawn on the loop, as before."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

# <spawn.h> on glibc and musl (Linux).
_SETSIGDEF, _SETSIGMASK, _SETSID = 0x04, 0x08, 0x80
_OPAQUE_BYTES = 1024  # posix_spawnattr_t is 336 bytes, the file actions 80, sigset_t 128
_MOST_THREADS = 2  # starts waiting for a CPU at once; more would only queue in the kernel
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)  # Python ignores these; a child must not
_BUSY_SECONDS = 0.002  # starts on the loop slower than this on average: to the threads
_QUIET_SECONDS = 0.0008  # back on the loop once they are this quick again
_SAMPLE_EVERY = 32  # while on the threads, one start in this many is timed on the loop
_WEIGHT = 0.2  # of the latest start in the moving average


class _CSpawn:
    """The C library's posix_spawn, its attributes (flags, signals) made once."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._spawn = libc.posix_spawn
        self._spawn.restype = ctypes.c_int
        self._init = libc.posix_spawn_file_actions_init
        self._open = libc.posix_spawn_file_actions_addopen
        self._open.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                               ctypes.c_uint]  # fmt: skip
        self._dup2 = libc.posix_spawn_file_actions_adddup2
        self._destroy = libc.posix_spawn_file_actions_destroy
        self._attributes = ctypes.create_string_buffer(_OPAQUE_BYTES)
        to_default = ctypes.create_string_buffer(_OPAQUE_BYTES)
        empty = ctypes.create_string_buffer(_OPAQUE_BYTES)
        checks = [libc.posix_spawnattr_init(self._attributes), libc.sigemptyset(to_default),
                  libc.sigemptyset(empty)]  # fmt: skip
        checks += [libc.sigaddset(to_default, int(signum)) for signum in _RESTORED_SIGNALS]
        checks += [
            libc.posix_spawnattr_setsigdefault(self._attributes, to_default),
            libc.posix_spawnattr_setsigmask(self._attributes, empty),
            libc.posix_spawnattr_setflags(self._attributes,
                                          ctypes.c_short(_SETSIGDEF | _SETSIGMASK | _SETSID)),
        ]  # fmt: skip
        if any(checks):
            raise OSError("posix_spawn attributes refused")

    def __call__(self, path: bytes, argv: Sequence[bytes], envp: Sequence[bytes],
                 stdin: int | None, stdout: int, stderr: int) -> int:  # fmt: skip
        """The child's pid; OSError with the errno posix_spawn gave (ENOENT, EACCES)."""
        actions = ctypes.create_string_buffer(_OPAQUE_BYTES)
        self._init(actions)
        try:
            if stdin is None:
                failed = self._open(actions, 0, b"/dev/null", os.O_RDONLY, 0)
            else:
                failed = self._dup2(actions, stdin, 0)
            failed = failed or self._dup2(actions, stdout, 1) or self._dup2(actions, stderr, 2)
            if failed:
                raise OSError(failed, os.strerror(failed))
            pid = ctypes.c_int()
            arguments = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
            environment = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
            error = self._spawn(ctypes.byref(pid), path, actions, self._attributes,
                                arguments, environment)  # fmt: skip
        finally:
            self._destroy(actions)
        if error:
            raise OSError(error, os.strerror(error), os.fsdecode(path))
        return pid.value


def _c_spawn(choice: str | None) -> _CSpawn | None:
    if not sys.platform.startswith("linux") or choice == "loop":
        return None
    try:
        return _CSpawn()
    except (OSError, AttributeError):  # no such symbol: a libc without posix_spawn
        return None


class Launcher:
    """Starts processes: with os.posix_spawn on the loop, or, while those starts are
    slow (`busy`) and where it can, from its own threads through the C library.
    `environ` is the environment every task starts from, encoded once; a task's own
    variables are added to it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._encoded = {name: os.fsencode(f"{name}={value}") for name, value in environ.items()}
        self._envp = list(self._encoded.values())
        choice = os.environ.get("FANOUT_SPAWN")  # loop or threads: fixed; else chosen
        self._spawn = _c_spawn(choice)
        self._requests: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads waiting for a request
        self.busy = self._spawn is not None and choice == "threads"
        self._fixed = choice in ("loop", "threads")
        self._average = 0.0  # seconds a start on the loop took, a moving average
        self._starts = 0

    async def spawn(self, path: str, argv: Sequence[str], extra: Mapping[str, str],
                    stdin: int | None, stdout: int, stderr: int) -> int:  # fmt: skip
        """Start `path` with `argv` and the environment plus `extra`; its pid. Once the
        start is asked for, it is seen through (a cancel waits for it: the caller then
        ends the process it started)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._spawn is None or loop is None or self._on_loop():
            environment = {**self._environ, **extra} if extra else self._environ
            began = time.perf_counter()
            pid = os.posix_spawn(path, list(argv), environment,
                                 file_actions=_file_actions(stdin, stdout, stderr),
                                 setsid=True, setsigdef=_RESTORED_SIGNALS)  # fmt: skip
            self._timed(time.perf_counter() - began)
            return pid
        started: asyncio.Future[int] = loop.create_future()
        arguments = [os.fsencode(word) for word in argv]
        self._requests.put((loop, started, os.fsencode(path), arguments, self._envp_with(extra),
                            stdin, stdout, stderr))  # fmt: skip
        self._add_thread_if_all_busy()
        with anyio.CancelScope(shield=True):  # a scope may swallow an exception: so
            pid = await started  # the pid is returned after it
        return pid  # noqa: RET504

    def _on_loop(self) -> bool:
        """Whether this start goes on the loop: while starts are quick, and one in
        `_SAMPLE_EVERY` while they go to the threads, to see whether they still must."""
        if not self.busy:
            return True
        self._starts += 1
        return not self._fixed and self._starts % _SAMPLE_EVERY == 0

    def _timed(self, seconds: float) -> None:
        self._average += _WEIGHT * (seconds - self._average)
        if self._spawn is not None and not self._fixed:
            self.busy = self._average > (_QUIET_SECONDS if self.busy else _BUSY_SECONDS)

    def close(self) -> None:
        """Let the threads go (each ends after the request it is on)."""
        with self._lock:
            for _ in range(self._threads):
                self._requests.put(None)
            self._threads = self._waiting = 0

    def _envp_with(self, extra: Mapping[str, str]) -> list[bytes]:
        if not extra:
            return self._envp
        if not any(name in self._encoded for name in extra):  # only added: the usual case
            return [*self._envp, *(os.fsencode(f"{name}={value}") for name, value in extra.items())]
        merged = {**self._encoded, **{name: os.fsencode(f"{name}={value}")
                                      for name, value in extra.items()}}  # fmt: skip
        return list(merged.values())

    def _add_thread_if_all_busy(self) -> None:
        with self._lock:
            if self._waiting or self._threads >= _MOST_THREADS:
                return
            self._threads += 1
        threading.Thread(target=self._serve, name="fanout-launcher", daemon=True).start()

    def _serve(self) -> None:
        spawn = self._spawn
        assert spawn is not None
        while True:
            with self._lock:
                self._waiting += 1
            request = self._requests.get()
            with self._lock:
                self._waiting -= 1
            if request is None:
                return
            loop, started, *arguments = request
            try:
                pid = spawn(*arguments)
            except OSError as exc:
                _deliver(loop, started.set_exception, exc)
            else:
                _deliver(loop, started.set_result, pid)


def _deliver(loop: asyncio.AbstractEventLoop, settle: Callable[[Any], None], value: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
        loop.call_soon_threadsafe(settle, value)


def _file_actions(stdin: int | None, stdout: int, stderr: int) -> list[tuple[Any, ...]]:
    return [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        if stdin is None else (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]  # fmt: skip
