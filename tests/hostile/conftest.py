"""The hostile tier: fanout attacked end to end, one module per class of attack (issue 14).

Fixtures that need privileges (a small tmpfs to fill) skip with the reason when the
machine cannot give them."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def _mounted_tmpfs(where: Path, size: str, inodes: int | None) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (f",nr_inodes={inodes}" if inodes else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """`small_tmpfs("2m", inodes=None)` mounts a tmpfs of that size in tmp_path (needs
    root and mount rights; the test skips otherwise) and unmounts it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    stack = contextlib.ExitStack()
    count = 0

    def mount(size: str, inodes: int | None = None) -> Path:
        nonlocal count
        count += 1
        return stack.enter_context(_mounted_tmpfs(tmp_path / f"tmpfs{count}", size, inodes))

    with stack:
        yield mount
