"""The README's GitHub Actions recipe ("Sharding a CI suite"): its YAML parses, every shard
and the merge restore the one exact timings key the first job looked up, and every
fanout command line in it runs. Two pipelines are played through in tmp_path, with the
cache and the artifacts done by hand as GitHub does them; the second pipeline's shards
plan from the first's timings, and its merge keeps them (two samples a task)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_fanout

# PyYAML comes with the dev extra's `distributed`; without it there is nothing to parse with.
yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the recipe cannot be parsed")

README = Path(__file__).resolve().parent.parent / "README.md"
KEY = "${{ needs.timings.outputs.key }}"
TASKS = [f"t{number}" for number in range(1, 9)]


def recipe() -> dict[str, Any]:
    section = README.read_text().split("\n## Sharding a CI suite\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "one GitHub Actions block in the section"
    document: dict[str, Any] = yaml.safe_load(blocks[0])
    return document


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if str(step.get("uses", "")).startswith(action)]


def fanout_lines(job: dict[str, Any]) -> list[str]:
    runs = [" ".join(str(step["run"]).split()) for step in job["steps"] if "run" in step]
    return [line for line in runs if line.startswith("fanout ")]


def expand(text: str, values: dict[str, str]) -> str:
    """GitHub's `${{ name }}` expressions, from `values`; any other is a test failure."""
    def value(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"unexpected expression {match.group(0)}"
        return values[match.group(1)]

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", value, text)


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


# --- the recipe's shape -----------------------------------------------------------------


def test_every_shard_and_the_merge_restore_the_one_key_the_first_job_found() -> None:
    jobs = recipe()["jobs"]
    assert set(jobs) == {"timings", "test", "report"}
    (lookup,) = steps_using(jobs["timings"], "actions/cache/restore@")
    assert lookup["with"]["lookup-only"] is True
    prefix = lookup["with"]["restore-keys"]
    assert jobs["timings"]["outputs"]["key"] == (
        f"${{{{ steps.{lookup['id']}.outputs.cache-matched-key }}}}"
    )
    path = lookup["with"]["path"]
    for name in ("test", "report"):
        job = jobs[name]
        assert "timings" in ([job["needs"]] if isinstance(job["needs"], str) else job["needs"])
        (restore,) = steps_using(job, "actions/cache/restore@")
        # That exact key, or (the first pipeline: no key) nothing at all; never a prefix.
        assert restore["with"] == {"path": path, "key": KEY, "fail-on-cache-miss": True}
        assert restore["if"] == "needs.timings.outputs.key"
        (command,) = fanout_lines(job)
        assert option(shlex.split(command), "--timings") == path
    (merge,) = fanout_lines(jobs["report"])
    assert option(shlex.split(merge), "--timings-out") == path
    (save,) = steps_using(jobs["report"], "actions/cache/save@")
    assert save["with"]["path"] == path and save["if"] == "always()"
    assert save["with"]["key"].startswith(prefix)
    assert jobs["test"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]


def test_no_saved_key_is_the_start_of_another() -> None:
    """A restore of key K also takes a key that starts with K (GitHub's partial match):
    then an exact key would not be exact."""
    (save,) = steps_using(recipe()["jobs"]["report"], "actions/cache/save@")
    keys = [
        expand(save["with"]["key"], {"github.run_id": run_id, "github.run_attempt": attempt})
        for run_id in ("9", "99", "100", "1000") for attempt in ("1", "2", "10", "11")
    ]  # fmt: skip
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert [other for other in keys if other != key and other.startswith(key)] == []


# --- two pipelines played through -------------------------------------------------------


class Cache:
    """GitHub's cache as the recipe uses it: keys in the order saved."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}

    def newest(self, prefix: str) -> str:
        matches = [key for key in self.entries if key.startswith(prefix)]
        return matches[-1] if matches else ""


def play_pipeline(folder: Path, cache: Cache, run_id: str) -> list[str]:
    """One pipeline of the recipe in `folder`; the stderr of each fanout command."""
    jobs = recipe()["jobs"]
    (lookup,) = steps_using(jobs["timings"], "actions/cache/restore@")
    key = cache.newest(lookup["with"]["restore-keys"])
    path = folder / lookup["with"]["path"]
    values = {"github.run_id": run_id, "github.run_attempt": "1", "needs.timings.outputs.key": key}
    stderr = []
    for shard in jobs["test"]["strategy"]["matrix"]["shard"]:
        path.unlink(missing_ok=True)  # a fresh machine
        if key:
            path.write_bytes(cache.entries[key])
        (line,) = fanout_lines(jobs["test"])
        words = shlex.split(expand(line, {**values, "matrix.shard": str(shard)}))
        completed = run_fanout(*words[1:])
        assert completed.returncode == 0, completed.stderr
        stderr.append(completed.stderr)
        shutil.move(folder / "runs", folder / "artifacts" / f"shard-{shard}")  # upload
    path.unlink(missing_ok=True)
    if key:
        path.write_bytes(cache.entries[key])
    (line,) = fanout_lines(jobs["report"])
    merged = run_fanout(*shlex.split(expand(line, values))[1:])
    assert merged.returncode == 0, merged.stderr
    stderr.append(merged.stderr)
    (save,) = steps_using(jobs["report"], "actions/cache/save@")
    cache.entries[expand(save["with"]["key"], values)] = path.read_bytes()
    shutil.rmtree(folder / "artifacts")
    return stderr


def test_two_pipelines_of_the_recipe_plan_alike_and_keep_history(tmp_path: Path) -> None:
    tasks = "".join(f'[[task]]\nid = "{task}"\ncmd = ["true"]\n' for task in TASKS)
    (tmp_path / "tests.toml").write_text(tasks)
    cache = Cache()
    first = play_pipeline(tmp_path, cache, "100")
    assert all("--timings timings.json: no such file" in stderr for stderr in first)
    second = play_pipeline(tmp_path, cache, "101")
    assert second == [""] * 5  # every shard and the merge read the same timings
    assert list(cache.entries) == ["fanout-timings-100-1.json", "fanout-timings-101-1.json"]
    history = json.loads(cache.entries["fanout-timings-101-1.json"])["tasks"]
    assert sorted(history) == TASKS
    assert all(len(entry["durations"]) == 2 for entry in history.values())
    reports = sorted(path.name for path in tmp_path.glob("*.xml"))
    assert reports == ["junit-1.xml", "junit-2.xml", "junit-3.xml", "junit-4.xml", "report.xml"]
