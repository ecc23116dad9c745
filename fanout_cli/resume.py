"""--resume and --resume-failed: run what an earlier run left unfinished, in its folder.

Tasks are matched to the earlier results by their key (id, command and cwd), not by
position, so a reordered or edited task list resumes correctly: a finished task is
kept, a fixed (changed) task runs again, a new task runs. The n-th occurrence of a
key matches the n-th earlier one, so repeated stdin lines are told apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fanout_cli.aop import TASK_LIST, RunFolder
from fanout_cli.aop.checks import task_problem
from fanout_cli.aop.documents import spec_from_document
from fanout_cli.aop.files import RunFolderError
from fanout_cli.aop.reader import read_details, read_ended_at, read_task_list, read_task_list_end
from fanout_cli.errors import UsageError
from fanout_cli.models import Prior, TaskSpec, TaskStatus
from fanout_cli.redact import REDACTED


@dataclass
class ResumeBook:
    """The earlier results of a run, by task key, and what a resume should do with them."""

    rerun_failed: bool
    by_key: dict[str, list[Prior]] = field(default_factory=dict)
    used_seqs: set[int] = field(default_factory=set)
    _seen: Counter[str] = field(default_factory=Counter)
    kept: int = 0
    rerun: int = 0
    added: int = 0

    @classmethod
    def load(cls, run_dir: Path, rerun_failed: bool) -> ResumeBook:
        latest: dict[int, Prior] = {}
        for row, offset in read_ended_at(run_dir):
            if isinstance(row.get("key"), str):
                latest[row["seq"]] = Prior(row, offset)
        book = cls(rerun_failed)
        for seq in sorted(latest):
            prior = latest[seq]
            book.by_key.setdefault(prior.row["key"], []).append(prior)
            book.used_seqs.add(seq)
        return book

    def summary(self) -> dict[str, int]:
        return {"kept": self.kept, "rerun": self.rerun, "added": self.added}

    def stands(self, prior: Prior) -> bool:
        """Whether an earlier result is kept. A task cancelled by a signal never
        finished, so it always runs again; --resume-failed also re-runs every failure,
        timeout, error and strategy-cancelled task."""
        if prior.status is TaskStatus.SUCCESS:
            return True
        if prior.status is TaskStatus.CANCELLED and prior.row.get("interrupted"):
            return False
        return not self.rerun_failed

    def classify(self, spec: TaskSpec) -> tuple[TaskSpec | Prior, TaskSpec]:
        """(an earlier result that stands, or the task to run; the task with the seq it
        has in this run). Call once per task, in the order of the list."""
        key = spec.key
        matches = self.by_key.get(key, [])
        prior = matches[self._seen[key]] if self._seen[key] < len(matches) else None
        self._seen[key] += 1
        if prior is not None:
            numbered = replace(spec, seq=prior.seq)
            if self.stands(prior):
                self.kept += 1
                return prior, numbered
            self.rerun += 1
            return numbered, numbered
        self.added += 1
        if spec.seq in self.used_seqs:  # an earlier task has that number
            spec = replace(spec, seq=max(self.used_seqs) + 1)
        self.used_seqs.add(spec.seq)
        return spec, spec

    async def plan(
        self, specs: AsyncIterator[TaskSpec], save: Callable[[TaskSpec], None] | None
    ) -> AsyncIterator[TaskSpec | Prior]:
        """Each task of a stream, classified; `save` gets every task, numbered, to
        become the run's saved task list."""
        async for spec in specs:
            item, numbered = self.classify(spec)
            if save is not None:
                save(numbered)
            yield item


def saved_specs(run_dir: Path) -> list[TaskSpec]:
    """The task list a run saved when it started (or as it read a stream)."""
    documents = read_task_list(run_dir)
    if documents is None:
        raise UsageError(
            f"run {run_dir.name} has no saved task list ({TASK_LIST}); "
            "give its task source again along with --resume"
        )
    specs = []
    complete = read_task_list_end(run_dir)
    for number, document in enumerate(documents, start=1):
        if isinstance(document.get("input"), dict) and "block" in document["input"]:
            raise UsageError(f"run {run_dir.name} was a --pipe run: its blocks of stdin were "
                             "not kept, so it cannot be resumed; run it again")  # fmt: skip
        problem = task_problem(document)
        if problem is not None:
            raise RunFolderError(f"{RunFolder(run_dir).task_list}: task {number}: {problem}")
        if REDACTED in (document.get("env") or {}).values():
            raise UsageError(
                f"run {run_dir.name}: task {document['task_id']!r} has secret env values, "
                "which are never saved; resume with its task file: "
                f"fanout run TASKFILE --resume {run_dir.name}"
            )
        try:
            specs.append(spec_from_document(document))
        except (KeyError, TypeError, ValueError) as exc:  # a template or agent call
            raise RunFolderError(
                f"{RunFolder(run_dir).task_list}: task {number}: not a saved task ({exc!r})"
            ) from None
    if complete != len(specs):
        raise UsageError(
            f"run {run_dir.name}: its saved task list is incomplete ({len(specs)} tasks were "
            "saved before its source stopped being read); give the task source again: "
            f"fanout run ... --resume {run_dir.name}"
        )
    return specs


def kept_duration(row: Mapping[str, Any], run_dir: Path) -> float | None:
    """A kept success's final attempt's duration, in seconds: the journal row's duration
    when it took one attempt; its details file's last attempt when it was retried (the
    row's duration then counts the failed attempts and the back-off too)."""
    duration = row.get("duration_ms")
    if row.get("attempts", 1) != 1 and isinstance(row.get("details_file"), str):
        try:
            attempts: Any = read_details(run_dir, row["details_file"]).get("attempts")
            duration = attempts[-1]["duration_ms"]
        except (RunFolderError, OSError, LookupError, TypeError):
            pass  # its row's duration stands
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
        return None
    return duration / 1000
