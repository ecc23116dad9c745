"""Opening a run folder's files (fanout_cli.aop.files, RunFolder): never through a link
planted in the folder, only regular files, only plain names, temporary files created
exclusively under names nobody can guess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fanout_cli.aop import RunFolder, open_output, open_output_for_reading
from fanout_cli.aop.files import UnsafeFile, is_plain_name
from fanout_cli.aop.writer import write_atomic

PRECIOUS = b"outside the run folder\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_bytes(PRECIOUS)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> RunFolder:
    path = tmp_path / "run"
    path.mkdir()
    return RunFolder(path)


@pytest.mark.parametrize(
    ("name", "plain"),
    [("0001-a.json", True), ("a.a1.stdout", True), ("..", False), (".", False), ("", False),
     ("../x", False), ("/proc/self/environ", False), ("a\0b", False), (3, False)],
)  # fmt: skip
def test_plain_names(name: object, plain: bool) -> None:
    assert is_plain_name(name) is plain


def test_reading_a_link_is_refused(folder: RunFolder, victim: Path) -> None:
    (folder.path / "0001-a.stdout").symlink_to(victim)
    with pytest.raises(UnsafeFile, match=r"0001-a\.stdout: a symbolic link"):
        folder.open("0001-a.stdout")
    with pytest.raises(UnsafeFile, match="symbolic link"):
        open_output_for_reading(str(folder.path / "0001-a.stdout"))


def test_reading_a_fifo_is_refused_without_waiting(folder: RunFolder) -> None:
    os.mkfifo(folder.path / "journal.jsonl")
    with pytest.raises(UnsafeFile, match="not a regular file"):
        folder.open("journal.jsonl")


def test_a_name_leaving_the_folder_is_refused(folder: RunFolder) -> None:
    for name in ("../victim", "/etc/passwd", ".."):
        with pytest.raises(UnsafeFile, match="not a file name inside the run folder"):
            folder.open(name)
        with pytest.raises(UnsafeFile):
            folder.member(name)


def test_an_output_is_created_anew_and_a_link_there_is_refused(
    folder: RunFolder, victim: Path
) -> None:
    path = folder.path / "0001-a.stdout"
    path.write_bytes(b"an earlier attempt")
    os.link(path, folder.path.parent / "hard-link")  # written through, it would change too
    descriptor = open_output(str(path))
    os.write(descriptor, b"new")
    os.close(descriptor)
    assert path.read_bytes() == b"new"
    assert (folder.path.parent / "hard-link").read_bytes() == b"an earlier attempt"
    path.unlink()
    path.symlink_to(victim)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        open_output(str(path))
    assert victim.read_bytes() == PRECIOUS and path.is_symlink()


def test_appending_through_a_hard_link_is_refused(folder: RunFolder, victim: Path) -> None:
    os.link(victim, folder.path / "journal.jsonl")
    with pytest.raises(UnsafeFile, match="hard links"):
        open_output(str(folder.path / "journal.jsonl"), append=True)
    assert victim.read_bytes() == PRECIOUS


def test_an_atomic_write_replaces_a_link_and_never_writes_its_target(
    folder: RunFolder, victim: Path
) -> None:
    (folder.path / "manifest.json").symlink_to(victim)
    with folder.replacing("manifest.json") as descriptor:
        os.write(descriptor, b"{}\n")
    assert (folder.path / "manifest.json").read_bytes() == b"{}\n"
    assert not (folder.path / "manifest.json").is_symlink()
    assert victim.read_bytes() == PRECIOUS


def test_the_temporary_name_is_not_the_old_predictable_one(tmp_path: Path, victim: Path) -> None:
    """Links at every name the old scheme (`.NAME.PID.tmp`) used stay untouched."""
    target = tmp_path / "report.xml"
    (tmp_path / f".report.xml.{os.getpid()}.tmp").symlink_to(victim)
    write_atomic(target, [b"<x/>\n"])
    assert target.read_bytes() == b"<x/>\n"
    assert victim.read_bytes() == PRECIOUS
    leftovers = [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]
    assert leftovers == [f".report.xml.{os.getpid()}.tmp"]


def test_a_failed_atomic_write_leaves_no_temporary_file(folder: RunFolder) -> None:
    with pytest.raises(RuntimeError), folder.replacing("manifest.json"):
        raise RuntimeError("stop")
    assert list(folder.path.iterdir()) == []


def test_a_linked_run_folder_is_refused(tmp_path: Path, folder: RunFolder) -> None:
    linked = tmp_path / "linked-run"
    linked.symlink_to(folder.path)
    with pytest.raises(UnsafeFile, match="symbolic link"):
        RunFolder(linked).open("manifest.json")


def test_a_held_folder_is_used_by_open_output(folder: RunFolder) -> None:
    folder.hold()
    try:
        descriptor = open_output(str(folder.path / "0001-a.stderr"))
        os.close(descriptor)
    finally:
        folder.release()
    assert (folder.path / "0001-a.stderr").exists()


def test_a_folder_planted_at_an_output_name_is_refused(folder: RunFolder) -> None:
    (folder.path / "0001-a.stdout").mkdir()
    with pytest.raises(UnsafeFile, match="not a regular file"):
        open_output(str(folder.path / "0001-a.stdout"))
