"""Open the task source a request names (or a resumed run's saved list)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fanout_cli.config import OptionError, build_config
from fanout_cli.errors import TaskFileError
from fanout_cli.sources.request import SourceRequest
from fanout_cli.sources.stdin import StdinSource
from fanout_cli.sources.values import ListSource, ValueTasks, argument_source, glob_source
from fanout_cli.template import Template

Source = StdinSource | ListSource


def open_source(
    request: SourceRequest, saved_list: Path | None = None
) -> tuple[Source, dict[str, object], dict[str, Any]]:
    """The source, with the task file's [run] options and [agent] table (empty for the
    other sources). `saved_list`: the run folder whose saved task list to run instead."""
    if saved_list is not None:
        from fanout_cli.resume import saved_specs

        return ListSource(saved_list.name, saved_specs(saved_list)), {}, {}
    if request.taskfile is not None:
        return _task_file_source(request.taskfile)
    tasks = value_tasks(request)
    if request.values is not None:
        return argument_source(tasks, list(request.values)), {}, {}
    if request.globs:
        return glob_source(tasks, list(request.globs)), {}, {}
    return StdinSource(tasks, request.null_separated), {}, {}


def _task_file_source(path: str) -> tuple[ListSource, dict[str, object], dict[str, Any]]:
    from fanout_cli.sources.taskfile import load_task_file

    task_file = load_task_file(path)
    file_options = dict(task_file.run_options)
    try:
        build_config(file_options)  # alone first, so that its errors name the file
    except OptionError as exc:
        line = task_file.run_option_lines.get(exc.name)
        raise TaskFileError(path, line, f"[run] {exc.name}: {exc.problem}") from None
    return ListSource(path, task_file.specs), file_options, dict(task_file.agent)


def value_tasks(request: SourceRequest) -> ValueTasks:
    if request.agent is not None:
        return ValueTasks(None, request.agent)
    if not request.command:
        return ValueTasks(None)
    return ValueTasks(Template.parse(request.command, force_shell=request.shell))
