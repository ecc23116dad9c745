"""What a run folder's documents must look like to be read: the manifest's header and
the task rows (of the manifest or the journal). A document that does not is corrupt
(a disk error, a hand edit, a hostile artifact): the reader raises RunFolderError
naming the file and the problem, and the commands that list runs skip that run with a
warning instead of stopping (or crashing) on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fanout_cli.aop.files import RunFolderError
from fanout_cli.models import TaskStatus

STATUSES = frozenset({"running", "finished", "interrupted", "io_error", "input_error"})
TASK_STATUSES = frozenset(str(status) for status in TaskStatus)
_JSON_NAMES: dict[type, str] = {
    str: "text", int: "a whole number", float: "a number", bool: "true/false",
    list: "a list", dict: "an object", type(None): "null",
}  # fmt: skip
_TEXT_OR_NONE = (str, type(None))
_NUMBER_OR_NONE = (int, float, type(None))
# The header keys fanout reads, with the types it accepts; others are left alone.
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "status": (str,),
    "argv": (list,),
    "cwd": _TEXT_OR_NONE,
    "options": (dict,),
    "started_at": _TEXT_OR_NONE,
    "finished_at": _TEXT_OR_NONE,
    "merged_at": _TEXT_OR_NONE,
    "duration_ms": _NUMBER_OR_NONE,
    "merged_from": (list,),
    "verdict": (dict, type(None)),
}
# A saved task (tasks.jsonl): what spec_from_document reads, required or not.
_TASK_TYPES: dict[str, tuple[type, ...]] = {
    "seq": (int,),
    "task_id": (str,),
    "command": (str, list),
    "origin": (str,),
    "cwd": _TEXT_OR_NONE,
    "env": (dict, type(None)),
    "timeout": _NUMBER_OR_NONE,
    "retries": (int, type(None)),
    "ok_exit": (list, type(None)),
    "input": (str, list, dict, type(None)),  # a value, a combination, named values
    "template": (dict, type(None)),
    "agent": (dict, type(None)),
    "junit": _TEXT_OR_NONE,
}
_TASK_REQUIRED = ("seq", "task_id", "command", "origin")
_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "task_id": (str,),
    "status": (str,),
    "summary": _TEXT_OR_NONE,
    "details_file": _TEXT_OR_NONE,
    "duration_ms": _NUMBER_OR_NONE,
    "attempts": (int, type(None)),
    "run_dir": _TEXT_OR_NONE,
    "junit": (dict, type(None)),
    "program": _TEXT_OR_NONE,
}


def _type_problem(document: Mapping[str, Any], types: Mapping[str, tuple[type, ...]]) -> str | None:
    for key, accepted in types.items():
        if key not in document:
            continue
        value = document[key]
        # bool is an int to Python, and not a number to fanout
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            wanted = " or ".join(_JSON_NAMES.get(kind, kind.__name__) for kind in accepted)
            return f"{key} is {_JSON_NAMES.get(type(value), type(value).__name__)}, not {wanted}"
    return None


def header_problem(header: object) -> str | None:
    """Why a manifest's header cannot be read as one, or None."""
    if not isinstance(header, dict):
        return f"not a JSON object but {type(header).__name__}"
    if "status" not in header:
        return "no status"
    problem = _type_problem(header, _HEADER_TYPES)
    if problem is not None:
        return problem
    if header["status"] not in STATUSES:
        return f"status {header['status']!r} is not one of {', '.join(sorted(STATUSES))}"
    if not all(isinstance(word, str) for word in header.get("argv", [])):
        return "argv holds something other than text"
    verdict = header.get("verdict")
    if verdict is not None:
        return _verdict_problem(verdict)
    return None


def _verdict_problem(verdict: Mapping[str, Any]) -> str | None:
    counts = verdict.get("counts")
    if not isinstance(verdict.get("passed"), bool):
        return "verdict.passed is not true or false"
    if not isinstance(counts, dict):
        return "verdict.counts is not an object"
    tasks = counts.get("tasks")
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 0:
        return "verdict.counts.tasks is not a count"
    return None


def checked_header(header: object, where: str) -> dict[str, Any]:
    """`header` when it reads as a manifest's header; RunFolderError naming `where`."""
    problem = header_problem(header)
    if problem is not None:
        raise RunFolderError(f"{where}: not a fanout manifest: {problem}")
    assert isinstance(header, dict)
    return header


# A journal's task_ended event, beyond the row: what --resume and merge read back.
_ENDED_TYPES: dict[str, tuple[type, ...]] = {
    "time": (str,),
    "key": (str,),
    "score": _NUMBER_OR_NONE,
    "vote_key": _TEXT_OR_NONE,
    "reason": _TEXT_OR_NONE,
    "kind": _TEXT_OR_NONE,
    "interrupted": (bool, type(None)),
    "exit_code": (int, type(None)),
}


def ended_event_problem(event: Mapping[str, Any]) -> str | None:
    """Why a journal's task_ended event cannot stand for a task's result, or None."""
    missing = [key for key in ("seq", "task_id", "status") if key not in event]
    if missing:
        return f"no {', '.join(missing)}"
    problem = _type_problem(event, {**_ROW_TYPES, **_ENDED_TYPES})
    if problem is None and event["status"] not in TASK_STATUSES:
        problem = f"status {event['status']!r} is not a task status"
    if problem is None and (isinstance(event["seq"], bool) or not isinstance(event["seq"], int)):
        problem = "seq is not a whole number"
    return problem


def checked_row(row: object, where: str) -> dict[str, Any]:
    """A task row (of a manifest's task list or a journal's task_ended event) with the
    fields fanout shows of the types it shows them as; RunFolderError otherwise."""
    problem = None
    if not isinstance(row, dict):
        problem = f"a task row is {type(row).__name__}, not an object"
    elif isinstance(row.get("seq"), bool) or not isinstance(row.get("seq"), int):
        problem = "a task row without a whole-number seq"
    else:
        problem = _type_problem(row, _ROW_TYPES)
        if problem is not None:
            problem = f"task {row['seq']}: {problem}"
    if problem is not None:
        raise RunFolderError(f"{where}: {problem}")
    assert isinstance(row, dict)
    return row


def task_problem(document: Mapping[str, Any]) -> str | None:
    """Why a document of the saved task list is not a task, or None."""
    missing = [key for key in _TASK_REQUIRED if key not in document]
    if missing:
        return f"no {', '.join(missing)}"
    problem = _type_problem(document, _TASK_TYPES)
    if problem is not None:
        return problem
    command, env = document["command"], document.get("env") or {}
    if isinstance(command, list) and not all(isinstance(word, str) for word in command):
        return "command holds something other than text"
    if not all(isinstance(value, str) for value in env.values()):
        return "env holds something other than text"
    ok_exit = document.get("ok_exit") or []
    if not all(isinstance(code, int) and not isinstance(code, bool) for code in ok_exit):
        return "ok_exit holds something other than whole numbers"
    return _template_problem(document.get("template"))


def _template_problem(template: Mapping[str, Any] | None) -> str | None:
    """A command kept to render again for its slot: words, and its values' records."""
    if template is None:
        return None
    words, records, names = template.get("words"), template.get("records"), template.get("names")
    if not _texts(words) or not isinstance(template.get("shell"), bool):
        return "template has no words or no shell flag"
    if records is not None and not (isinstance(records, list) and all(map(_texts, records))):
        return "template records hold something other than lists of text"
    if names is not None and not _texts(names):
        return "template names hold something other than text"
    positions, total = template.get("positions"), template.get("total")
    if not all(number is None or (isinstance(number, int) and not isinstance(number, bool))
               for number in (positions, total)):  # fmt: skip
        return "template positions or total is not a whole number"
    return None


def _texts(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
