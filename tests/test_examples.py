"""The examples run as their READMEs say."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.helpers import Completed, output_dir, run_fanout

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REPOSITORY = EXAMPLES.parent
# The examples call `fanout`, `python`, `ruff` and `mypy` by name: this venv's.
VENV_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def run_script(script: str, *args: str, path: str = VENV_PATH) -> Completed:
    """Run an example script from the current directory, as its header says."""
    completed = subprocess.run(
        [script, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PATH": path},
        check=False,
    )
    return Completed(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        output_dir(),
    )


def tasks_by_id(completed: Completed) -> dict[str, dict[str, Any]]:
    return {task["task_id"]: task for task in completed.manifest()["tasks"]}


def test_examples_readme_lists_every_example() -> None:
    index = (EXAMPLES / "README.md").read_text()
    for entry in sorted(EXAMPLES.iterdir()):
        if entry.name != "README.md" and not entry.name.startswith("."):
            assert f"`{entry.name}" in index, f"examples/README.md does not list {entry.name}"


def test_example_scripts_are_executable_posix_sh() -> None:
    scripts = sorted(EXAMPLES.rglob("*.sh"))
    assert len(scripts) >= 5
    for script in scripts:
        lines = script.read_text().splitlines()
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert lines[0] == "#!/bin/sh", script
        assert "set -eu" in lines, script


def test_quickstart_passes_from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """README's first screen: `fanout run examples/quickstart.toml`."""
    monkeypatch.chdir(REPOSITORY)
    completed = run_fanout("run", "examples/quickstart.toml", env={"PATH": VENV_PATH})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.splitlines()[-1].startswith("PASS all-succeed: 3 of 3 succeeded")
    assert sorted(tasks_by_id(completed)) == ["count-modules", "python-version", "todo-search"]


@pytest.mark.slow
def test_project_checks_pass_on_this_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fanout run examples/project-checks.toml` from the root; the tools' caches go to
    tmp_path so the run leaves nothing in the repository beyond __pycache__."""
    monkeypatch.chdir(REPOSITORY)
    env = {
        "PATH": VENV_PATH,
        "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache"),
        "RUFF_CACHE_DIR": str(tmp_path / "ruff-cache"),
    }
    completed = run_fanout("run", "examples/project-checks.toml", env=env, timeout=150)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    tasks = tasks_by_id(completed)
    assert sorted(tasks) == ["compile", "docs-paths", "lint", "todo", "types", "unit-tests"]
    assert {task["status"] for task in tasks.values()} == {"success"}
    assert tasks["lint"]["summary"] == "All checks passed!"
    assert tasks["types"]["summary"].startswith("Success: no issues found")
    assert "passed" in tasks["unit-tests"]["summary"]
    assert completed.stdout.splitlines()[-1].startswith("PASS all-succeed: 6 of 6 succeeded")


def test_find_pipeline_prints_one_aop_block(tmp_path: Path) -> None:
    """`examples/find-pipeline.sh`: samples in .cache/find-pipeline/, one broken."""
    (tmp_path / "examples").mkdir()
    shutil.copy2(EXAMPLES / "find-pipeline.sh", tmp_path / "examples")
    completed = run_script("examples/find-pipeline.sh")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("[AOP:START] ")
    assert lines[-1].startswith("[AOP:END] ")
    summary = lines[lines.index("[AOP:SUMMARY]") + 1 : lines.index("[AOP:SUMMARY]") + 4]
    broken = ".cache/find-pipeline/truncated.gz"
    assert summary[0].startswith(f"- failure {broken}: ")
    assert "(exit 1) -> " in summary[0]
    assert sorted(line.split(" -> ")[0] for line in summary[1:]) == [
        "- success .cache/find-pipeline/logs/app 2026-11-21.log.gz: intact",
        "- success .cache/find-pipeline/logs/it's fine.log.gz: intact",
    ]
    assert "[AOP:METRICS] tasks: 3, success: 2, failure: 1, " in completed.stdout
    assert "[AOP:VERDICT] pass strategy=partial-success" in lines
    assert "[AOP:STATUS] partial" in lines
    details = next(line for line in lines if line.startswith("[AOP:DETAILS_FILE] "))
    assert Path(details.removeprefix("[AOP:DETAILS_FILE] ")).is_file()


@pytest.mark.parametrize("with_rg", [False, True], ids=["as-installed", "rg-preferred"])
def test_multi_repo_search_gives_each_repositorys_matches_and_total(
    tmp_path: Path, with_rg: bool
) -> None:
    """`examples/multi-repo-search/search.sh TODO`: a line per repository with its
    number of matches, the matches themselves in the run (`fanout show last REPO`
    prints them). The second case puts an `rg` first on PATH (grep underneath, logging
    its calls) to show the script prefers it."""
    shutil.copytree(
        EXAMPLES / "multi-repo-search",
        tmp_path / "multi-repo-search",
        ignore=shutil.ignore_patterns("repos", ".cache"),
    )
    path = VENV_PATH
    if with_rg:
        shims = tmp_path / "shims"
        shims.mkdir()
        fake_rg = shims / "rg"
        fake_rg.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/rg.log\nexec grep -r "$@"\n')
        fake_rg.chmod(0o755)
        path = f"{shims}{os.pathsep}{path}"
    completed = run_script("multi-repo-search/search.sh", "TODO", path=path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1].startswith(
        "PASS partial-success: 3 of 3 succeeded (needed 2)"
    )
    tasks = tasks_by_id(completed)
    assert sorted(tasks) == ["repos/billing/", "repos/docs-site/", "repos/scheduler/"]
    assert tasks["repos/billing/"]["summary"] == "2 matches"
    assert tasks["repos/scheduler/"]["summary"] == "1 match"
    nothing_found = tasks["repos/docs-site/"]
    assert (nothing_found["status"], nothing_found["exit_code"]) == ("success", 1)
    assert nothing_found["summary"] == "0 matches"
    shown = run_fanout("show", "last", "repos/billing", env={"PATH": path})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.endswith(
        "----- stdout -----\n"
        "repos/billing/src/charge.py:2:    pass  # TODO: retry\n"
        "repos/billing/src/charge.py:6:    pass  # TODO\n"
        "[AOP:SUMMARY] 2 matches\n"
    ), shown.stdout
    if with_rg:
        calls = (tmp_path / "rg.log").read_text().splitlines()
        assert sorted(calls) == [f"-n -e TODO -- {repository}" for repository in sorted(tasks)]


def run_folder_example(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """`cd examples/NAME && fanout run tasks.toml --format json`, on a copy."""
    shutil.copytree(EXAMPLES / name, tmp_path / name, ignore=shutil.ignore_patterns(".cache"))
    monkeypatch.chdir(tmp_path / name)
    completed = run_fanout("run", "tasks.toml", "--format", "json", env={"PATH": VENV_PATH})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def test_best_of_n_picks_the_highest_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_folder_example("best-of-n", tmp_path, monkeypatch)
    verdict = result["verdict"]
    assert verdict["passed"] is True
    assert verdict["winner"] == {"task_id": "seed-5", "score": 0.96}
    assert verdict["counts"]["success"] == 5
    statuses = {task["task_id"]: task["status"] for task in result["tasks"]}
    assert statuses["seed-4"] == "failure"  # diverged: scored nothing, cannot win


def test_majority_vote_picks_the_answer_most_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_folder_example("majority-vote", tmp_path, monkeypatch)
    verdict = result["verdict"]
    assert verdict["passed"] is True
    assert verdict["reason"] == "'3' has 3 of 5 votes"
    winner = verdict["winner"]
    assert (winner["vote_key"], winner["votes"]) == ("3", 3)
    assert sorted(winner["task_ids"]) == ["count-awk", "count-grep", "count-tr"]
    counts = verdict["counts"]
    # The two dissenters may still be running when the third "3" arrives: then they
    # are stopped (cancelled) instead of counted, so only the total is fixed.
    assert counts["tasks"] == 5
    assert counts["success"] + counts["cancelled"] == 5


@pytest.mark.slow
def test_ci_sharding_example_splits_runs_and_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/ci-sharding/README.md: four shards, then one merge, then a plan from the
    merged timings. `python` there must be the one with pytest: this venv's."""
    example = tmp_path / "ci-sharding"
    shutil.copytree(EXAMPLES / "ci-sharding", example)
    monkeypatch.chdir(example)
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    files = sorted(str(path.relative_to(example)) for path in example.glob("tests/test_*.py"))
    assert len(files) == 8

    ran: list[str] = []
    for shard in range(1, 5):
        completed = run_fanout(
            "run", "tasks.toml", "--shard", f"{shard}/4", "--output-dir", f"runs/{shard}",
            "--junit", f"junit-{shard}.xml", "-q", env=env, timeout=60,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert f"of shard {shard}/4" in completed.stdout
        cases = ElementTree.parse(example / f"junit-{shard}.xml").getroot().iter("testcase")
        ran += [case.attrib["name"] for case in cases]
    assert sorted(ran) == files  # disjoint, and every test file ran once

    merged = run_fanout(
        "merge", "runs/", "--junit", "report.xml", "--timings-out", "timings.json",
        "--output-dir", "merged", env=env,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    report = ElementTree.parse(example / "report.xml").getroot()
    assert report.attrib["tests"] == "8"
    assert report.attrib["failures"] == "0"
    recorded = json.loads((example / "timings.json").read_text())["tasks"]
    assert sorted(recorded) == files

    plan = run_fanout(
        "run", "tasks.toml", "--shard", "1/4", "--timings", "timings.json", "--dry-run",
        env=env,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[0].startswith("# 4 shards of 2 slots by recorded durations of every task")
    assert next(line for line in lines if line.startswith("# shard ")).endswith("<- this shard")
    commands = [line for line in lines if not line.startswith("#")]
    assert commands and all(line.startswith("python -m pytest") for line in commands)


def test_matrix_example_makes_a_task_per_combination(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fanout run examples/matrix.toml` from the root: 2 x 2 gzip tasks, two greps."""
    monkeypatch.chdir(REPOSITORY)
    completed = run_fanout("run", "examples/matrix.toml", "--format", "json")
    assert completed.returncode == 0, completed.stderr
    tasks = {task["task_id"]: task for task in json.loads(completed.stdout)["tasks"]}
    assert list(tasks) == ["gzip-1-README", "gzip-1-CHANGELOG", "gzip-9-README",
                           "gzip-9-CHANGELOG", "mentions-matrix", "mentions-foreach"]  # fmt: skip
    for name in ("README", "CHANGELOG"):  # more effort never makes these files larger
        assert int(tasks[f"gzip-9-{name}"]["summary"]) <= int(tasks[f"gzip-1-{name}"]["summary"])
    details = completed.details(tasks["gzip-9-README"]["details_file"])
    assert details["input"] == {"level": "9", "file": "README.md"}
    assert int(tasks["mentions-matrix"]["summary"]) >= 1


# --- examples/local-model.sh and examples/agents.toml (issue 17, part 8) ---------------


def fake_checkout(tmp_path: Path, python_body: str) -> tuple[Path, Path]:
    """A copy of the repository's local-model.sh with a stand-in .venv/bin/python
    beside it that records how it was called."""
    (tmp_path / "examples").mkdir()
    script = tmp_path / "examples" / "local-model.sh"
    shutil.copy2(EXAMPLES / "local-model.sh", script)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    log = tmp_path / "calls.log"
    python.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{python_body}\n')
    python.chmod(0o755)
    return script, log


def test_local_model_uses_the_repositorys_venv_without_activation(tmp_path: Path) -> None:
    script, log = fake_checkout(tmp_path, 'case "$1" in -c) echo /m/SmolLM2.gguf;; esac')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "VIRTUAL_ENV")}
    completed = subprocess.run([str(script), "8123"], capture_output=True, text=True,
                               env={**env, "PATH": "/usr/bin:/bin"}, timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr
    calls = log.read_text().splitlines()
    assert calls[-1].startswith("-m llama_cpp.server --model /m/SmolLM2.gguf ")
    assert "--port 8123" in calls[-1]


def test_local_model_says_in_one_line_when_llama_cpp_is_missing(tmp_path: Path) -> None:
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None:
        pytest.skip("no python3 in /usr/bin or /bin")
    probe = subprocess.run([system_python, "-c", "import llama_cpp"], capture_output=True,
                           check=False)  # fmt: skip
    if probe.returncode == 0:
        pytest.skip("the system python has llama_cpp")
    completed = subprocess.run([str(EXAMPLES / "local-model.sh")], capture_output=True,
                               text=True, env={**os.environ, "PYTHON": system_python},
                               timeout=30, check=False)  # fmt: skip
    assert completed.returncode != 0
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert "llama-cpp-python is not installed" in lines[0] and "pip install" in lines[0]
    assert system_python in lines[0]


def test_agents_toml_comments_name_files_that_exist() -> None:
    text = (EXAMPLES / "agents.toml").read_text()
    comments = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    named = [word.strip("(),.:;`'\"") for word in comments.split()]
    paths = [word for word in named if "/" in word and not word.startswith("http")]
    assert paths, "the comments name the script that serves the model"
    for path in paths:
        assert (REPOSITORY / path).exists(), path
    assert not [word for word in named if word.endswith(".gguf")], "a model file is no path"


def test_report_demo_runs_and_writes_the_page_of_its_screenshot(tmp_path: Path) -> None:
    """`examples/report/demo.sh`: the run fails as it should, then its report is written."""
    (tmp_path / "examples" / "report").mkdir(parents=True)
    shutil.copy2(EXAMPLES / "report" / "demo.sh", tmp_path / "examples" / "report")
    completed = run_script("examples/report/demo.sh")
    assert completed.returncode == 0, completed.stderr
    verdict, line = completed.stdout.splitlines()
    assert verdict.startswith("FAIL all-succeed: 3 failure, 1 timeout of 48 · ")
    assert re.fullmatch(r"report: \S+/report\.html \(48 tasks, 52 attempts, \d+ KiB\)", line)
    page = Path(line.removeprefix("report: ").split(" (")[0]).read_text()
    assert page.count('class="bar st-failure"') == 6 and page.count('class="bar st-timeout"') == 2
