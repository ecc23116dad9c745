"""A run folder's file names sort in input order at any number of tasks: under
sorted(), in byte order, and as `ls` and a shell glob list them (LC_ALL=C and a
UTF-8 locale), across 9999/10000, 99999/100000 and the boundaries after them. Runs of
up to 9,999 tasks keep their four-digit names."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanout_cli import history
from fanout_cli.aop import RunFolder, output_names_of, seq_prefix, task_basename
from fanout_cli.aop.documents import manifest_header
from fanout_cli.aop.writer import write_whole_run
from fanout_cli.models import TaskSpec

BOUNDARIES = [10**digits for digits in range(4, 13)]  # 10000 ... 10**12
SLUGS = st.text(alphabet="ABCXYZabcxyz0189._-", min_size=1, max_size=12)


def spec(seq: int, task_id: str) -> TaskSpec:
    return TaskSpec(seq=seq, task_id=task_id, command=("true",), origin=f"test:{seq}")


def around_boundaries() -> list[int]:
    """Every seq within 3 of a boundary, and a few in between."""
    seqs = {1, 2, 9, 10, 99, 100, 999, 1000}
    for boundary in BOUNDARIES:
        seqs.update(range(boundary - 3, boundary + 4))
        seqs.add(boundary * 5 + 17)
    return sorted(seqs)


def test_runs_up_to_9999_tasks_keep_their_four_digit_names() -> None:
    assert task_basename(spec(1, "unit")) == "0001-unit"
    assert task_basename(spec(42, "lint")) == "0042-lint"
    assert task_basename(spec(9999, "x")) == "9999-x"


@pytest.mark.parametrize(
    ("seq", "prefix"),
    [
        (10000, "a10000"), (99999, "a99999"), (100000, "b100000"), (999999, "b999999"),
        (1000000, "c1000000"), (10**9, "f1000000000"),
    ],
)  # fmt: skip
def test_longer_seqs_get_a_letter_for_their_length(seq: int, prefix: str) -> None:
    assert seq_prefix(seq) == prefix
    assert task_basename(spec(seq, "t")) == f"{prefix}-t"


def test_the_prefixes_around_every_boundary_sort_in_seq_order() -> None:
    seqs = around_boundaries()
    names = [seq_prefix(seq) for seq in seqs]
    assert sorted(names) == names
    assert sorted(name.encode() for name in names) == [name.encode() for name in names]


@given(st.lists(st.tuples(st.sampled_from(around_boundaries()), SLUGS), min_size=2, max_size=40))
def test_file_names_sort_in_seq_order_whatever_the_ids(tasks: list[tuple[int, str]]) -> None:
    """Any two tasks of different seq sort by seq, whatever their slugs, for every file
    of theirs (details, stdout, stderr, an earlier attempt's `.a1.stdout`)."""
    by_seq = {seq: task_id for seq, task_id in tasks}
    for extension in (".json", ".stdout", ".stderr", ".a1.stdout"):
        names = [task_basename(spec(seq, task_id)) + extension for seq, task_id in by_seq.items()]
        in_seq_order = [name for _, name in sorted(zip(by_seq, names, strict=True))]
        assert sorted(names) == in_seq_order
        assert sorted(names, key=str.encode) == in_seq_order


def test_the_stdout_name_beside_a_long_seqs_details_file() -> None:
    details = task_basename(spec(123456, "unit")) + ".json"
    assert output_names_of(details) == ("b123456-unit.stdout", "b123456-unit.stderr")


def test_a_task_is_found_by_a_long_seqs_details_file_name(tmp_path: Path) -> None:
    """show's and cat's lookup (by id, seq or details file name) takes the new names."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = [{"task_id": f"t{seq}", "seq": seq, "status": "success",
             "details_file": task_basename(spec(seq, f"t{seq}")) + ".json"}
            for seq in (9999, 10000, 123456)]  # fmt: skip
    header = manifest_header(run_id="run", argv=["fanout"], options={}, started_at=0.0)
    write_whole_run(RunFolder(run_dir), {**header, "status": "finished"}, rows, [])
    assert history.find_task(run_dir, "a10000-t10000")["seq"] == 10000
    assert history.find_task(run_dir, "b123456-t123456.json")["seq"] == 123456
    assert history.find_task(run_dir, "123456")["task_id"] == "t123456"
    assert history.find_task(run_dir, "9999-t9999")["seq"] == 9999


def _folder_of(tmp_path: Path, seqs: list[int]) -> tuple[Path, list[str]]:
    folder = tmp_path / "run"
    folder.mkdir()
    names = []
    shuffled = list(seqs)
    random.Random(16).shuffle(shuffled)  # created out of order: the listing sorts
    for seq in shuffled:
        name = task_basename(spec(seq, f"t-{seq % 7}")) + ".stdout"
        (folder / name).touch()
    for seq in seqs:
        names.append(task_basename(spec(seq, f"t-{seq % 7}")) + ".stdout")
    return folder, names


@pytest.mark.parametrize("locale", ["C", "C.UTF-8", "en_US.UTF-8"])
def test_ls_and_a_shell_glob_list_them_in_seq_order(tmp_path: Path, locale: str) -> None:
    available = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    known = {name.lower().replace("-", "") for name in available.stdout.split()}
    if locale.lower().replace("-", "") not in known:
        pytest.skip(f"locale {locale} is not installed here")
    if shutil.which("ls") is None or shutil.which("bash") is None:
        pytest.skip("no ls or bash")
    folder, names = _folder_of(tmp_path, around_boundaries())
    env = {"LC_ALL": locale, "PATH": "/usr/bin:/bin"}
    listed = subprocess.run(["ls", "-1"], cwd=folder, env=env, capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    assert listed == names
    globbed = subprocess.run(["bash", "-c", "printf '%s\\n' *.stdout"], cwd=folder, env=env,
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert globbed == names
