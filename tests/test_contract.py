"""The contract: the documents scripts and agents read from fanout, pinned key by key.

`--format json` (a versioned envelope), `--format jsonl`, and the run folder (the
manifest, each task's details file, the journal) are read by programs, so a key that
appears, disappears or changes type is a breaking change. Real small runs of the
installed `fanout` (success, failure, timeout, a command not found, a retried task,
best-of-n, majority-vote) are checked against the shapes below: the exact set of keys at
every level and the type of every value. When a format changes on purpose, this file is
the one place to update (and `fanout_result_version` or `fanout_manifest_version` with
it, when the change is not only an addition)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fake_llm import (
    FakeLLM,
    fake_llm_fixture,  # noqa: F401 -- the `fake_llm` fixture, found by pytest by name
)
from tests.helpers import read_journal, run_fanout, run_json, write_tasks

# --- a small shape language -------------------------------------------------------------
#
# A shape is a type or a tuple of types only (the value's exact type: a bool is not an
# int), a dict of shapes (exactly these keys), a list of one shape (every item has it),
# `Either((...))` (one of several shapes of any kind) or `Pattern(...)` (a string that
# matches it).

NONE = type(None)


@dataclass(frozen=True)
class Either:
    shapes: tuple[Any, ...]


@dataclass(frozen=True)
class Pattern:
    regex: str


def mismatches(value: Any, shape: Any, where: str = "$") -> list[str]:
    """Every way `value` differs from `shape`, as `path: what`; empty when it fits."""
    if isinstance(shape, Either):
        found = [mismatches(value, option, where) for option in shape.shapes]
        return [] if any(not each for each in found) else [f"{where}: fits no shape: {value!r}"]
    if isinstance(shape, Pattern):
        if isinstance(value, str) and re.fullmatch(shape.regex, value):
            return []
        return [f"{where}: {value!r} does not match {shape.regex}"]
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, found {value!r}"]
        problems = [f"{where}: missing key {key!r}" for key in shape if key not in value]
        problems += [f"{where}: unexpected key {key!r}" for key in value if key not in shape]
        for key in shape:
            if key in value:
                problems += mismatches(value[key], shape[key], f"{where}.{key}")
        return problems
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list, found {value!r}"]
        return [problem for index, item in enumerate(value)
                for problem in mismatches(item, shape[0], f"{where}[{index}]")]  # fmt: skip
    allowed = shape if isinstance(shape, tuple) else (shape,)
    if type(value) in allowed:
        return []
    return [f"{where}: {value!r} is not {' or '.join(t.__name__ for t in allowed)}"]


def assert_fits(value: Any, shape: Any, name: str) -> None:
    problems = mismatches(value, shape, name)
    assert not problems, "\n".join(problems)


# --- the shapes -------------------------------------------------------------------------

TIME = Pattern(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")  # UTC, milliseconds
STATUS = Pattern("success|failure|timeout|cancelled|error")
SCORE = (int, float, NONE)

COUNTS = {"tasks": int, "success": int, "failure": int, "timeout": int, "cancelled": int,
          "error": int}  # fmt: skip
BEST_OF_N_WINNER = {"task_id": str, "score": (int, float)}
MAJORITY_VOTE_WINNER = {"vote_key": str, "votes": int, "task_ids": [str]}
VERDICT = {
    "passed": bool,
    "strategy": str,
    "reason": str,
    "winner": Either((NONE, BEST_OF_N_WINNER, MAJORITY_VOTE_WINNER)),
    "counts": COUNTS,
}
TASK_ROW = {
    "task_id": str,
    "seq": int,
    "status": STATUS,
    "exit_code": (int, NONE),
    "duration_ms": (int, NONE),
    "attempts": int,
    "summary": str,
    "details_file": (str, NONE),
    # the final attempt's stdout (None: never started); lines as scan.lines_in counts them
    "stdout_file": (str, NONE),
    "stdout_bytes": (int, NONE),
    "stdout_lines": (int, NONE),
}
REDUCE = {  # the reduce step (--reduce): the manifest's "reduce" entry
    "status": STATUS,
    "exit_code": (int, NONE),
    "summary": str,
    "reason": str,
    "duration_ms": int,
    "details_file": str,
    "stdout_file": str,
    "stdout_bytes": int,
    "kept": bool,
}
REDUCE_IN_ENVELOPE = {**REDUCE, "output": str, "output_truncated": bool}
# The agent tasks' token usage, totalled (null when no task called an agent).
TOKENS = {"input_tokens": int, "output_tokens": int, "total_tokens": int, "tasks": int,
          "unknown": int}  # fmt: skip
ENVELOPE = {  # --format json
    "fanout_result_version": int,
    "run_id": str,
    "details_dir": str,
    "manifest": str,
    "duration_ms": int,
    "verdict": VERDICT,
    "reduce": Either((NONE, REDUCE_IN_ENVELOPE)),
    "tokens": Either((NONE, TOKENS)),
    "tasks": [TASK_ROW],
}

MANIFEST = {  # the run's options are an open set: their keys are not pinned here
    "fanout_manifest_version": int,
    "run_id": str,
    "status": Pattern("running|finished|interrupted"),
    "argv": [str],
    "cwd": str,
    "options": dict,
    "started_at": TIME,
    "finished_at": Either((TIME, NONE)),
    "duration_ms": (int, NONE),
    "verdict": Either((NONE, VERDICT)),
    "tokens": Either((NONE, TOKENS)),
    "tasks": [{**TASK_ROW, "origin": str}],
}

STREAM = {"path": str, "bytes": int, "lines": int, "excerpt": str, "excerpt_truncated": bool}
ATTEMPT = {
    "attempt": int,
    "status": STATUS,
    "exit_code": (int, NONE),
    "signal": (int, NONE),
    "reason": str,
    "started_at": TIME,
    "finished_at": TIME,
    "duration_ms": int,
    "stdout": str,
    "stderr": str,
    "timeout": (int, float, NONE),  # the limit in effect as it ended, in seconds
    # --timeout P%: how that limit was reached (the median is null before 3 successes)
    "timeout_rule": Either((NONE, {"percent": (int, float), "median": (int, float, NONE),
                                   "successes": int})),
}
DETAILS = {  # <seq>-<slug>.json of a process task
    # the AOP v1.0 header
    "aop_version": Pattern(r"1\.0\.0"),
    "agent_id": str,
    "task": str,
    "timestamp": TIME,
    "duration_ms": int,
    # fanout's own
    "run_id": str,
    "task_id": str,
    "seq": int,
    "kind": Pattern("process"),
    "command": Either(([str], str)),
    "shell": bool,
    "cwd": (str, NONE),
    "env": dict,
    "input": (str, NONE),
    "origin": str,
    "status": STATUS,
    "reason": str,
    "exit_code": (int, NONE),
    "signal": (int, NONE),
    "attempts": [ATTEMPT],
    "started_at": TIME,
    "finished_at": TIME,
    "summary": str,
    "reported_status": (str, NONE),
    "metrics": dict,
    "score": SCORE,
    # --scorer: what it did (null without one); `error` says why it gave no score
    "scorer": Either((NONE, {"command": str, "exit_code": (int, NONE), "stderr": str,
                             "error": (str, NONE)})),
    "vote_key": (str, NONE),
    "stdout": STREAM,
    "stderr": STREAM,
    "agent": (dict, NONE),
    "error": (str, NONE),
}

JOURNAL = {  # journal.jsonl: event kind -> its keys
    "run_started": {"event": str, "time": TIME, "run_id": str, "argv": [str], "options": dict},
    "task_started": {"event": str, "time": TIME, "seq": int, "task_id": str, "attempt": int,
                     "slot": int},
    "task_ended": {
        "event": str, "time": TIME, "task_id": str, "seq": int, "kind": str, "status": STATUS,
        "exit_code": (int, NONE), "duration_ms": (int, NONE), "attempts": int, "summary": str,
        "details_file": (str, NONE), "stdout_file": (str, NONE), "stdout_bytes": (int, NONE),
        "stdout_lines": (int, NONE), "key": str, "origin": str, "reason": str, "score": SCORE,
        "scorer_error": (str, NONE), "vote_key": (str, NONE), "interrupted": bool,
        "input": (str, list, dict, NONE),
    },
    "run_ended": {"event": str, "time": TIME, "status": str, "passed": bool, "reason": str,
                  "counts": COUNTS},
}  # fmt: skip

JSONL = {  # --format jsonl on stdout: event kind -> its keys
    "task_started": {"event": str, "seq": int, "task_id": str, "attempt": int, "slot": int},
    "task_ended": {"event": str, **TASK_ROW},
    "run_ended": {"event": str, "run_id": str, "details_dir": str, "verdict": VERDICT,
                  "reduce": Either((NONE, REDUCE_IN_ENVELOPE))},
}


def assert_events_fit(events: list[dict[str, Any]], shapes: Mapping[str, Any], name: str) -> None:
    problems = []
    for index, event in enumerate(events):
        kind = str(event.get("event"))
        if kind not in shapes:
            problems.append(f"{name}[{index}]: unknown event {kind!r}")
        else:
            problems += mismatches(event, shapes[kind], f"{name}[{index}]")
    assert not problems, "\n".join(problems)


# --- the runs ---------------------------------------------------------------------------

MIXED_TASKS = """\
[[task]]
id = "ok"
cmd = ["sh", "-c", "echo fine; echo '[AOP:SCORE] 0.5'"]

[[task]]
id = "bad"
cmd = ["sh", "-c", "echo oops >&2; exit 3"]

[[task]]
id = "slow"
cmd = ["sleep", "5"]
timeout = "200ms"
retries = 0

[[task]]
id = "missing"
cmd = ["fanout-contract-no-such-command"]

[[task]]
id = "flaky"
cmd = ["sh", "-c", "test -e flaky.once && echo second || { touch flaky.once; exit 1; }"]
"""


def test_a_run_with_every_ending_fits_the_envelope_manifest_details_and_journal() -> None:
    write_tasks(Path("tasks.toml"), MIXED_TASKS)
    completed, document = run_json("tasks.toml", "-j", "5", "--retries", "1",
                                   "--retry-delay", "0")  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert document["fanout_result_version"] == 1
    assert_fits(document, ENVELOPE, "envelope")
    statuses = {row["task_id"]: row["status"] for row in document["tasks"]}
    assert statuses == {"ok": "success", "bad": "failure", "slow": "timeout",
                        "missing": "error", "flaky": "success"}  # fmt: skip
    assert document["verdict"]["winner"] is None

    run_dir = completed.run_dir
    manifest = completed.manifest()
    assert manifest["fanout_manifest_version"] == 1
    assert_fits(manifest, MANIFEST, "manifest")

    attempts = {}
    for row in manifest["tasks"]:
        details = completed.details(row["details_file"])
        assert_fits(details, DETAILS, row["details_file"])
        attempts[row["task_id"]] = len(details["attempts"])
    assert attempts["flaky"] == 2 and attempts["bad"] == 2  # the retries are in the file

    events = read_journal(run_dir)
    assert_events_fit(events, JOURNAL, "journal")
    assert {event["event"] for event in events} == set(JOURNAL)


def test_a_best_of_n_winner_fits_the_envelope() -> None:
    completed, document = run_json(
        "--strategy", "best-of-n", "--", "sh", "-c", "echo '[AOP:SCORE] {}'", ":::", "1", "2"
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert_fits(document, ENVELOPE, "envelope")
    assert_fits(document["verdict"]["winner"], BEST_OF_N_WINNER, "winner")


def test_a_scorer_record_fits_the_details_file() -> None:
    completed, document = run_json("--strategy", "best-of-n", "--scorer", "echo 2; true",
                                   "--", "echo", ":::", "a")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert_fits(document, ENVELOPE, "envelope")
    details = completed.details(document["tasks"][0]["details_file"])
    assert_fits(details, DETAILS, "details")
    assert details["scorer"] == {"command": "echo 2; true", "exit_code": 0, "stderr": "",
                                 "error": None}  # fmt: skip


def test_agent_token_totals_fit_the_envelope_manifest_and_journal(fake_llm: FakeLLM) -> None:
    completed, document = run_json("--prompt", "Say {}", "--model", "m", ":::", "a",
                                   env={**fake_llm.env(), "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert completed.returncode == 0, completed.stderr
    assert_fits(document, ENVELOPE, "envelope")
    assert_fits(document["tokens"], TOKENS, "tokens")
    assert_fits(completed.manifest(), MANIFEST, "manifest")
    agent_row = {**JOURNAL["task_ended"], "tokens": {"input_tokens": int, "output_tokens": int,
                                                     "total_tokens": int, "unknown": bool}}
    events = read_journal(completed.run_dir)
    assert_events_fit(events, {**JOURNAL, "task_ended": agent_row}, "journal")


def test_jsonl_events_and_a_majority_vote_winner_fit() -> None:
    completed = run_fanout("run", "--format", "jsonl", "--strategy", "majority-vote",
                           "--vote-on", "exit-code", "--", "true", ":::", "a", "b")  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    assert_events_fit(events, JSONL, "jsonl")
    assert {event["event"] for event in events} == set(JSONL)
    assert_fits(events[-1]["verdict"]["winner"], MAJORITY_VOTE_WINNER, "winner")


def test_a_run_with_a_reduce_fits_the_envelope_manifest_and_reduce_record() -> None:
    completed, document = run_json("--reduce", "wc -l", "--", "echo", ":::", "a", "b")
    assert completed.returncode == 0, completed.stderr
    assert_fits(document, ENVELOPE, "envelope")
    assert document["reduce"] is not None
    assert_fits(completed.manifest(), {**MANIFEST, "reduce": REDUCE}, "manifest")
    reduce_shape = {**DETAILS, "input": NONE, "fingerprint": Pattern("[0-9a-f]{64}"),
                    "reduce": {"kind": Pattern("process"), "command": str, "when": str}}
    assert_fits(completed.details("reduce.json"), reduce_shape, "reduce.json")


def test_the_shape_checker_names_every_difference() -> None:
    shape = {"a": int, "b": [{"c": (str, NONE)}], "d": Either((NONE, {"e": bool}))}
    assert mismatches({"a": 1, "b": [{"c": None}, {"c": "x"}], "d": {"e": True}}, shape) == []
    assert mismatches({"a": True, "b": [{"c": 1, "z": 0}], "d": {"e": 1}, "y": 0}, shape) == [
        "$: unexpected key 'y'",
        "$.a: True is not int",
        "$.b[0]: unexpected key 'z'",
        "$.b[0].c: 1 is not str or NoneType",
        "$.d: fits no shape: {'e': 1}",
    ]
