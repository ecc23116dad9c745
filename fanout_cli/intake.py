"""The tasks a run reads: its source, and on resume the earlier results that stand,
with the run's saved task list kept up to date before any task starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fanout_cli.aop.writer import RunStore
from fanout_cli.models import Prior, TaskSpec

if TYPE_CHECKING:
    from fanout_cli.resume import ResumeBook


class Source(Protocol):
    name: str
    total: int | None  # None for a stream whose length is known only at its end

    def specs(self) -> Iterator[TaskSpec]: ...

    def commands(self, jobs: int) -> Iterator[tuple[tuple[str, ...] | str, str | None]]: ...

    def stream(self) -> AsyncIterator[TaskSpec]: ...


@dataclass(frozen=True)
class Resume:
    run_dir: Path
    book: ResumeBook
    from_saved_list: bool  # the tasks come from the run's own saved list


def planned_items(
    store: RunStore, source: Source, resume: Resume | None
) -> AsyncIterator[TaskSpec | Prior]:
    """The tasks to run (and, on resume, the earlier results that stand), with the run's
    saved task list brought up to date first: a task is never started before it is on
    the list, so a resume after a crash knows it."""
    if resume is None:
        if source.total is None:
            return _saving(store, source.stream())
        store.save_specs(source.specs())
        return source.stream()
    if resume.from_saved_list:
        return resume.book.plan(source.stream(), None)
    # A source given again replaces the saved list: an edited task file is now the run's.
    if source.total is None:
        store.replace_task_list([])
        return resume.book.plan(source.stream(), lambda spec: store.save_specs([spec]))
    planned = [resume.book.classify(spec) for spec in source.specs()]
    store.replace_task_list(numbered for _, numbered in planned)
    return _from_list([item for item, _ in planned])


async def _from_list(items: list[TaskSpec | Prior]) -> AsyncIterator[TaskSpec | Prior]:
    for item in items:
        yield item


async def _saving(store: RunStore, specs: AsyncIterator[TaskSpec]) -> AsyncIterator[TaskSpec]:
    """Save each task of a stream to the run's task list as it is read."""
    async for spec in specs:
        store.save_specs([spec])
        yield spec
