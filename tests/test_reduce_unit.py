"""The reduce step's pure parts: its placeholders, the [reduce] table, when it runs,
the options that set it, and the text an agent reduce is given (read from a folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fanout_cli.aop import RunFolder
from fanout_cli.layers import OptionError, build_config
from fanout_cli.models import Verdict
from fanout_cli.reduce.inputs import outputs_text, results_text, task_line, verdict_text
from fanout_cli.reduce.spec import (
    ReduceStep,
    fill,
    parse_prompt,
    parse_table,
    reduce_step,
    unknown_placeholder,
    wants_agent,
)


@pytest.mark.parametrize(
    ("template", "unknown"),
    [
        ("{results} {outputs} {verdict}", None),
        ("{{results}} and {{x}}", None),
        ('JSON like {"a": 1} is text', None),
        ("{x}", "{x}"),
        ("{}", "{}"),
        ("{results}{answer}", "{answer}"),
        ("{results", None),
    ],
)
def test_unknown_placeholders(template: str, unknown: str | None) -> None:
    assert unknown_placeholder(template) == unknown


def test_fill_keeps_doubled_braces_as_braces() -> None:
    values = {"results": "R", "outputs": "{O}", "verdict": "V"}
    assert fill("{{ {results} }} {outputs} {verdict}", values) == "{ R } {O} V"


def test_parse_prompt_names_the_placeholder() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{nope\}"):
        parse_prompt("{nope}")
    with pytest.raises(ValueError, match="non-empty"):
        parse_prompt("  ")


class Failed(Exception):
    pass


def fail(key_path: tuple[str, ...], problem: str) -> Exception:
    return Failed(key_path, problem)


def test_parse_table_accepts_a_command_or_an_agent_call() -> None:
    assert parse_table({"cmd": ["jq", "-s", "."]}, fail) == {"kind": "process",
                                                              "cmd": ["jq", "-s", "."]}
    agent = parse_table({"kind": "agent", "prompt": "{outputs}", "model": "m",
                         "max_bytes": 10, "temperature": 0}, fail)  # fmt: skip
    assert agent == {"kind": "agent", "prompt": "{outputs}", "model": "m", "max_bytes": 10,
                     "temperature": 0.0}  # fmt: skip


@pytest.mark.parametrize(
    ("table", "key_path", "fragment"),
    [
        ({"cmd": "x", "when": "always"}, ("when",), "unknown key 'when' in [reduce]"),
        ({"kind": "agent", "prompt": "x", "cmd": "y"}, ("cmd",), "does not apply to kind"),
        ({"prompt": "x"}, ("prompt",), "does not apply to kind 'process'"),
        ({"kind": "agent"}, (), "[reduce] needs prompt"),
        ({}, (), "[reduce] needs cmd"),
        ({"kind": "shell", "cmd": "x"}, ("kind",), "kind must be process or agent"),
        ({"cmd": 3}, ("cmd",), "[reduce] cmd: expected a command"),
        ({"kind": "agent", "prompt": "x", "max_bytes": 5 << 20}, ("max_bytes",), "4 MiB"),
        ({"kind": "agent", "prompt": "x", "max_bytes": True}, ("max_bytes",), "whole number"),
    ],
)
def test_parse_table_names_the_key_at_fault(
    table: dict[str, Any], key_path: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(Failed) as raised:
        parse_table(table, fail)
    assert raised.value.args[0] == key_path
    assert fragment in raised.value.args[1]


@pytest.mark.parametrize(
    ("when", "passed", "runs"),
    [("pass", True, True), ("pass", False, False), ("fail", True, False),
     ("fail", False, True), ("always", True, True), ("always", False, True)],
)  # fmt: skip
def test_runs_after(when: str, passed: bool, runs: bool) -> None:
    assert ReduceStep(when, command="x").runs_after(passed) is runs


def test_the_options_make_one_reduce_and_a_later_layer_wins() -> None:
    config = build_config({"reduce": {"kind": "agent", "prompt": "{results}"}},
                          {"reduce": "wc -l"})  # fmt: skip
    assert (config.verdict.reduce, config.verdict.reduce_prompt) == ("wc -l", None)
    config = build_config({"reduce": "wc -l"}, {"reduce_prompt": "{results}"})
    assert (config.verdict.reduce, config.verdict.reduce_prompt) == (None, "{results}")
    assert wants_agent(config.verdict)
    with pytest.raises(OptionError, match="give --reduce or --reduce-prompt, not both"):
        build_config({"reduce": "wc -l", "reduce_prompt": "{results}"})
    with pytest.raises(OptionError, match="expected one of pass, always, fail"):
        build_config({"reduce_when": "never"})


def test_reduce_step_from_the_options() -> None:
    assert reduce_step(None, None, "pass") is None
    assert reduce_step(("jq", "."), None, "fail") == ReduceStep("fail", command=("jq", "."))
    step = reduce_step({"kind": "agent", "prompt": "{outputs}", "model": "m"}, None, "pass")
    assert step is not None
    assert (step.kind, step.model, step.max_bytes, step.origin) == ("agent", "m", 65536,
                                                                    "[reduce]")  # fmt: skip


def rows_of(*rows: dict[str, Any]) -> Any:
    return lambda: iter([dict(row) for row in rows])


def test_results_are_capped_with_a_count_of_the_rest() -> None:
    rows = rows_of(*({"task_id": f"t{n}", "status": "success", "summary": "line\nbreak"}
                     for n in range(5)))  # fmt: skip
    assert results_text(rows, 1000).splitlines()[0] == "- success t0: line\\nbreak"
    capped = results_text(rows, 60).splitlines()
    assert capped == ["- success t0: line\\nbreak", "- success t1: line\\nbreak",
                      "[fanout: 3 more tasks left out: {results} is capped at max_bytes = 60]"]


def test_outputs_cut_on_a_character_and_leave_out_failures(tmp_path: Path) -> None:
    (tmp_path / "0001-a.stdout").write_bytes("é".encode() * 4)  # 8 bytes
    (tmp_path / "0002-b.stdout").write_bytes(b"failed output")
    (tmp_path / "0003-c.stdout").write_bytes(b"never seen")
    rows = rows_of(
        {"task_id": "a", "status": "success", "details_file": "0001-a.json"},
        {"task_id": "b", "status": "failure", "details_file": "0002-b.json"},
        {"task_id": "c", "status": "success", "details_file": "0003-c.json"},
        {"task_id": "d", "status": "success", "details_file": None},
    )
    text = outputs_text(RunFolder(tmp_path), rows, 5)
    assert text == ('<output task="a">\néé\n</output>\n'
                    '<output task="d">\n\n</output>\n'
                    "[fanout: {outputs} is capped at max_bytes = 5: a cut after 5 of 8 bytes; "
                    "1 more output (10 bytes) left out]")  # fmt: skip


def test_a_task_line_reads_a_missing_input_from_the_details_file(tmp_path: Path) -> None:
    (tmp_path / "0001-a.json").write_text('{"input": ["x", "y"]}\n')
    row = {"task_id": "a", "seq": 1, "status": "success", "exit_code": 0, "summary": "s",
           "score": None, "vote_key": None, "details_file": "0001-a.json"}  # fmt: skip
    line = task_line(RunFolder(tmp_path), row)
    assert line["input"] == ["x", "y"] and line["stdout_file"] == "0001-a.stdout"
    assert task_line(RunFolder(tmp_path), {**row, "input": "z"})["input"] == "z"


def test_verdict_text() -> None:
    verdict = Verdict(passed=False, strategy="all-succeed", reason="1 failure of 3", counts={})
    assert verdict_text(verdict) == "fail (all-succeed: 1 failure of 3)"
