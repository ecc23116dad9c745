"""`fanout report`: write a run's HTML report (fanout_cli.report) and say where.

The report goes into the run folder as report.html by default: its links to the
details and output files are then plain names, and it travels with the folder when
the folder is copied or uploaded as a CI artifact (`fanout clean` removes it with the
run). `--output FILE` writes it elsewhere, its links relative to FILE's folder;
`--output -` prints it, its links relative to the current folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from fanout_cli import history
from fanout_cli.aop import REPORT, RunFolder
from fanout_cli.aop.writer import replacing, write_chunks
from fanout_cli.errors import IOFailure, StoreError, UsageError
from fanout_cli.results import ReportResult


def write_report(output_dir: Path, name: str, output: str | None) -> ReportResult:
    from fanout_cli.report.load import load_report
    from fanout_cli.report.page import render

    run_dir = history.resolve_run(output_dir, name)
    if output is None:
        report_dir = run_dir
    elif output == "-":
        report_dir = Path.cwd()
    else:
        report_dir = Path(os.path.dirname(os.path.abspath(output)))
        if not report_dir.is_dir():
            raise UsageError(f"--output {output}: no such folder {report_dir}")
    report = load_report(run_dir, report_dir)
    page, mode = render(report)
    data = page.encode("utf-8", "replace")  # a lone surrogate from a record: "?"
    if output == "-":  # printed by render.runs.print_report, as every output is
        path = "-"
    elif output is None:
        path = str(RunFolder(run_dir).member(REPORT))
        _write(path, data, lambda: RunFolder(run_dir).replacing(REPORT))
    else:
        path = output
        _write(path, data, lambda: replacing(output, 0o644))
    attempts = sum(1 for bar in report.bars if bar.status != "requeued")
    tasks = int(report.counts.get("tasks") or len(report.tasks))
    return ReportResult(path, report.run_id, report.status, mode, tasks, attempts, len(data),
                        tuple(report.notes), data if output == "-" else None)  # fmt: skip


def _write(path: str, data: bytes, opening: Callable[[], AbstractContextManager[int]]) -> None:
    """The report written whole, then renamed into place: never half a page."""
    try:
        with opening() as descriptor:
            write_chunks(descriptor, [data])
    except IsADirectoryError:
        raise StoreError(f"--output {path}: is a folder") from None
    except OSError as exc:
        raise IOFailure.of(path, exc) from None
