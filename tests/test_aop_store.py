"""The AOP folder: safe file names, redaction, the run folder, atomic writes, journal."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fanout_cli.aop import SLUG_LIMIT, slugify, task_basename
from fanout_cli.aop.documents import manifest_header
from fanout_cli.aop.writer import RunStore, write_json_atomic
from fanout_cli.errors import EXIT_USAGE, StoreError
from fanout_cli.models import TaskResult, TaskSpec, TaskStatus
from fanout_cli.redact import REDACTED, redact_env

SAFE_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def spec(seq: int, task_id: str, env: dict[str, str] | None = None) -> TaskSpec:
    return TaskSpec(
        seq=seq, task_id=task_id, command=("true",), origin=f"test:{seq}", env=env or {}
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    run_store = RunStore(str(tmp_path / "out"), "run-1")
    yield run_store
    run_store.close()


# --- slugify -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_id", "slug"),
    [
        pytest.param("unit", "unit", id="plain"),
        pytest.param("lint-v1.2_x", "lint-v1.2_x", id="allowed-punctuation"),
        pytest.param("../../etc/passwd", ".._.._etc_passwd", id="path-traversal"),
        pytest.param("a/b", "a_b", id="slash"),
        pytest.param("a b\tc", "a_b_c", id="whitespace"),
        pytest.param("$(rm -rf ~)", "__rm_-rf___", id="shell-syntax"),
        pytest.param("café", "caf_", id="non-ascii-letter"),
        pytest.param("日本", "__", id="non-ascii-only"),
        pytest.param("", "_", id="empty"),
    ],
)
def test_slugify(task_id: str, slug: str) -> None:
    assert slugify(task_id) == slug


@pytest.mark.parametrize(
    "task_id",
    ["../../etc/passwd", "/abs/path", "..", ".", "x" * 5000, "é" * 100, "a\x00b", "", "\n"],
    ids=["traversal", "absolute", "dot-dot", "dot", "long", "non-ascii", "nul", "empty", "newline"],
)
def test_slug_is_safe_short_and_never_empty(task_id: str) -> None:
    slug = slugify(task_id)
    assert slug
    assert len(slug) <= SLUG_LIMIT
    assert set(slug) <= SAFE_CHARACTERS


def test_long_id_is_capped_at_64() -> None:
    slug = slugify("x" * 5000)
    assert slug == "x" * 64
    assert SLUG_LIMIT == 64


@pytest.mark.parametrize("task_id", ["../../etc/passwd", "..", ".", "/", "a/../../b"])
def test_task_files_stay_inside_the_run_folder(store: RunStore, task_id: str) -> None:
    stdout_path, stderr_path = store.output_paths(spec(1, task_id))
    run_dir = store.run_dir.resolve()
    for path in (stdout_path, stderr_path):
        assert Path(path).resolve().parent == run_dir
    name = store.write_details(_result(spec(1, task_id)), store.run_id)
    assert (store.run_dir / name).resolve().parent == run_dir
    assert (store.run_dir / name).is_file()


def test_ids_that_slugify_alike_stay_distinct_files(store: RunStore) -> None:
    slash, underscore = spec(1, "a/b"), spec(2, "a_b")
    assert slugify(slash.task_id) == slugify(underscore.task_id)
    assert task_basename(slash) != task_basename(underscore)
    assert store.output_paths(slash) != store.output_paths(underscore)
    first = store.write_details(_result(slash), store.run_id)
    second = store.write_details(_result(underscore), store.run_id)
    assert first != second
    assert json.loads((store.run_dir / first).read_text())["task_id"] == "a/b"
    assert json.loads((store.run_dir / second).read_text())["task_id"] == "a_b"


def test_basename_has_seq_prefix() -> None:
    assert task_basename(spec(7, "unit")) == "0007-unit"


# --- redaction -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "redacted"),
    [
        pytest.param("API_KEY", True, id="key"),
        pytest.param("openai_api_key", True, id="key-lower"),
        pytest.param("GitHub_Token", True, id="token-mixed-case"),
        pytest.param("CLIENT_SECRET", True, id="secret"),
        pytest.param("secretName", True, id="secret-prefix"),
        pytest.param("DB_PASSWORD", True, id="password"),
        pytest.param("password", True, id="password-lower"),
        pytest.param("PATH", False, id="path"),
        pytest.param("CI", False, id="ci"),
        pytest.param("LANG", False, id="lang"),
        pytest.param("PASSWD", True, id="passwd"),  # issue 14: PASS, PAT, AUTH too
    ],
)
def test_redact_env(name: str, redacted: bool) -> None:
    env = {name: "hunter2", "HOME": "/home/me"}
    result = redact_env(env)
    assert result[name] == (REDACTED if redacted else "hunter2")
    assert result["HOME"] == "/home/me"
    assert env[name] == "hunter2"  # the input is left alone


def test_secrets_never_reach_the_details_file(store: RunStore) -> None:
    task = spec(1, "deploy", env={"DEPLOY_TOKEN": "s3cr3t-value", "STAGE": "prod"})
    name = store.write_details(_result(task), store.run_id)
    text = (store.run_dir / name).read_text()
    assert "s3cr3t-value" not in text
    assert json.loads(text)["env"] == {"DEPLOY_TOKEN": REDACTED, "STAGE": "prod"}


# --- RunStore ------------------------------------------------------------------------


def test_run_folder_is_created_0700(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        run_store = RunStore(str(tmp_path / "nested" / "out"), "r1")
    finally:
        os.umask(old_umask)
    try:
        assert run_store.run_dir == tmp_path / "nested" / "out" / "r1"
        assert run_store.run_dir.is_dir()
        assert stat.S_IMODE(run_store.run_dir.stat().st_mode) == 0o700
    finally:
        run_store.close()


def test_existing_run_id_is_refused(tmp_path: Path) -> None:
    output_dir = str(tmp_path / "out")
    RunStore(output_dir, "same").close()
    (tmp_path / "out" / "same" / "keep.txt").write_text("earlier run")
    with pytest.raises(StoreError) as raised:
        RunStore(output_dir, "same")
    assert "same" in raised.value.message
    assert raised.value.exit_code == EXIT_USAGE
    assert (tmp_path / "out" / "same" / "keep.txt").read_text() == "earlier run"


def test_generated_run_ids_are_unique(tmp_path: Path) -> None:
    stores = [RunStore(str(tmp_path / "out"), None) for _ in range(5)]
    try:
        run_ids = {run_store.run_id for run_store in stores}
        assert len(run_ids) == 5
        assert all((tmp_path / "out" / run_id).is_dir() for run_id in run_ids)
    finally:
        for run_store in stores:
            run_store.close()


def test_output_dir_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(StoreError):
        RunStore(str(tmp_path / "out"), "r1")


# --- atomic writes and the journal ---------------------------------------------------


def test_write_json_atomic_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    write_json_atomic(target, {"version": 1, "name": "ünïcode"})
    write_json_atomic(target, {"version": 2})
    assert [path.name for path in tmp_path.iterdir()] == ["manifest.json"]
    assert json.loads(target.read_text(encoding="utf-8")) == {"version": 2}


def test_manifest_write_leaves_only_expected_files(store: RunStore) -> None:
    header = manifest_header(run_id=store.run_id, argv=["fanout"], options={}, started_at=0.0)
    store.write_manifest(header, None, "running")
    assert sorted(path.name for path in store.run_dir.iterdir()) == [
        "journal.jsonl",
        "lock",  # held while the store is open
        "manifest.json",
        "tasks.jsonl",
    ]
    assert json.loads(store.manifest_path.read_text())["run_id"] == "run-1"


def test_journal_lines_are_valid_json(store: RunStore) -> None:
    store.journal("run_started", run_id=store.run_id, argv=["fanout", "run"])
    store.journal("task_started", task_id="a\nb", seq=1)
    store.journal("task_ended", task_id='ü "quoted"', status="success", exit_code=0)
    store.journal("run_ended", verdict={"passed": True})
    lines = (store.run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    assert [event["event"] for event in events] == [
        "run_started",
        "task_started",
        "task_ended",
        "run_ended",
    ]
    assert events[1]["task_id"] == "a\nb"
    assert events[2]["task_id"] == 'ü "quoted"'
    assert all(event["time"] for event in events)


def test_journal_is_flushed_per_line(store: RunStore) -> None:
    store.journal("run_started", run_id=store.run_id)
    # Read back while the store is still open: a crash now must not lose the line.
    text = (store.run_dir / "journal.jsonl").read_text(encoding="utf-8")
    assert json.loads(text.splitlines()[0])["event"] == "run_started"


def _result(task: TaskSpec) -> TaskResult:
    return TaskResult(spec=task, status=TaskStatus.SUCCESS, summary="ok", exit_code=0)
