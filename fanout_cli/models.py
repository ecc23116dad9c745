"""The frozen records that pass between the stages of a run."""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a run that needs them has them loaded; `fanout --help` does not
    from fanout_cli.replacements import Args
    from fanout_cli.template import Template


class TaskStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ERROR = "error"


STATUS_ORDER = tuple(TaskStatus)


def display_command(command: tuple[str, ...] | str) -> str:
    """A command as it can be pasted into a shell."""
    import shlex

    return command if isinstance(command, str) else shlex.join(command)


@dataclass(frozen=True)
class AgentCall:
    """What an agent task asks: one prompt to a chat model (kind `agent`), or to a
    headless agent CLI run as a process (kind `agent-cli`, `tool` set)."""

    prompt: str
    provider: str | None = None  # a name from [agent.providers] or openai / anthropic
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    attach: tuple[str, ...] = ()  # files whose contents follow the prompt
    tool: str | None = None  # agent-cli: claude, codex, llm, aider
    args: tuple[str, ...] = ()  # agent-cli: extra arguments for the tool


@dataclass(frozen=True)
class StdinBlock:
    """--pipe: a block of fanout's stdin, given whole to one task as its stdin."""

    data: bytes = field(repr=False)
    records: int = 0  # record ends in it, and one more for an unended last record


@dataclass(frozen=True)
class TaskSpec:
    """One task as read from a source, before it runs."""

    seq: int  # 1-based position in the input
    task_id: str
    command: tuple[str, ...] | str  # tuple: exec directly; str: run under `sh -c`
    origin: str  # where the task came from, e.g. "tasks.toml:12"
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    # None: not set by the task or the file's [defaults]; the run-wide option applies.
    # 0: no limit, whatever the run's.
    timeout: float | None = None
    retries: int | None = None
    ok_exit: frozenset[int] | None = None
    # The values this task was made from, if any, as its records keep them: the value;
    # a list (a combination, a batch); an object of named values (--header, a matrix).
    input: str | list[str] | dict[str, str] | None = None
    # Set when the command uses {%}: it is rendered again once the slot is known.
    template: Template | None = None
    args: Args | None = None  # the values (value tasks): `template` renders from them
    agent: AgentCall | None = None  # an agent task: the call (agent-cli: also `command`)
    stdin: StdinBlock | None = None  # --pipe: the task's stdin (otherwise /dev/null)
    junit: str | None = None  # the JUnit file its test runner writes, relative to its cwd

    @property
    def kind(self) -> str:
        if self.agent is None:
            return "process"
        return "agent" if self.agent.tool is None else "agent-cli"

    @functools.cached_property
    def key(self) -> str:
        """What --resume matches earlier results by: the task itself, not its position
        (worked out once: the task list and the journal both name it)."""
        task = (self.task_id, self.command, self.cwd)
        identity = repr(task if self.agent is None else (*task, self.agent))
        return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:20]

    def command_for_slot(self, slot: int) -> tuple[str, ...] | str:
        if self.template is None or self.args is None:
            return self.command
        return self.template.render(self.args, self.seq, slot)

    def display_for_slot(self, slot: int) -> str:
        """The command as --dry-run shows it."""
        if self.template is None or self.args is None:
            return display_command(self.command)
        return self.template.display(self.args, self.seq, slot)

    def display_command(self) -> str:
        if self.kind == "agent":
            assert self.agent is not None
            return self.agent.prompt
        return display_command(self.command)


@dataclass(frozen=True)
class Attempt:
    """What one try of a task did."""

    number: int
    started_at: float  # epoch seconds
    finished_at: float
    status: TaskStatus
    exit_code: int | None
    signal: int | None
    reason: str  # "exit 2", "timed out after 30s", "command not found: foo", "" on success
    stdout_path: str
    stderr_path: str
    # False for an error that cannot succeed on another try (HTTP 401, quota exhausted).
    retryable: bool = True
    # Agent and agent-cli tasks: the call as made and answered (request, reply text,
    # usage, ...); the details file's `agent` field.
    agent: Mapping[str, Any] | None = None
    # The runner JUnit it wrote (fanout_cli.aop.runner_junit), or why there is none.
    junit: Mapping[str, Any] | None = None
    # The time limit in effect as it ended (seconds; None: none) and, for a relative
    # one (--timeout P%), how it was reached (relative_limit.MedianLimit.rule).
    timeout: float | None = None
    timeout_rule: Mapping[str, Any] | None = None

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class OutputInfo:
    """One captured stream of a task, described without holding its bytes."""

    path: str  # relative to the run folder
    bytes: int
    excerpt: str  # the tail of the stream, decoded, capped
    truncated: bool  # the excerpt is not the whole stream
    lines: int | None = None  # scan.lines_in of the whole stream; None when not counted


@dataclass(frozen=True)
class TaskResult:
    """A finished (or never started) task: the data every later stage works from."""

    spec: TaskSpec
    status: TaskStatus
    summary: str
    attempts: tuple[Attempt, ...] = ()
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    stdout: OutputInfo | None = None
    stderr: OutputInfo | None = None
    score: float | None = None
    vote_key: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    reported_status: str | None = None
    details_file: str | None = None  # relative to the run folder; None when never started
    interrupted: bool = False  # cancelled by a signal, not decided: --resume runs it again
    # --scorer: what the scorer did (command, exit_code, stderr, error); None without one.
    scorer: Mapping[str, Any] | None = None

    @property
    def task_id(self) -> str:
        return self.spec.task_id

    @property
    def scorer_error(self) -> str | None:
        """Why --scorer gave this task no score (None: it gave one, or did not run)."""
        error = None if self.scorer is None else self.scorer.get("error")
        return error if isinstance(error, str) else None

    @property
    def seq(self) -> int:
        return self.spec.seq

    @property
    def duration(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class Winner:
    task_id: str | None = None
    score: float | None = None
    vote_key: str | None = None
    votes: int | None = None
    task_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    passed: bool
    strategy: str
    reason: str
    counts: Mapping[str, int]
    winner: Winner | None = None
    problems: tuple[str, ...] = ()  # merge: a line per coverage problem, naming tasks


@dataclass(frozen=True)
class ReduceResult:
    """How the reduce step ended (fanout_cli/reduce): its files are in the run folder."""

    status: TaskStatus
    exit_code: int | None
    summary: str
    reason: str
    duration: float
    details_file: str = "reduce.json"
    stdout_file: str = "reduce.stdout"
    stdout_bytes: int = 0
    kept: bool = False  # --resume: no task's result changed, the recorded reduce stands
    tokens: Mapping[str, Any] | None = None  # an agent reduce's usage (fanout_cli.tokens)


@dataclass(frozen=True)
class RunReport:
    """Everything a renderer needs to print the end of a run."""

    run_id: str
    run_dir: str
    manifest_path: str
    verdict: Verdict
    # The tasks' rows (the journal's record of each), in input order. Read from disk
    # on demand: a run of a million tasks does not hold them in memory.
    rows: Callable[[], Iterator[dict[str, Any]]]
    started_at: float
    finished_at: float
    title: str  # "fanout run tasks.toml: 12 tasks, all-succeed"
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when the run was stopped
    shard: str | None = None  # "2/4" when the run was one shard of a split
    reduce: ReduceResult | None = None  # the reduce step, when one ran (or was kept)
    # The agent tasks' token usage (fanout_cli.tokens); None when no task called an agent.
    tokens: Mapping[str, int] | None = None

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class Prior:
    """An earlier result that stands: the runner counts it without running the task."""

    row: dict[str, Any]
    offset: int  # of its task_ended line in the journal

    @property
    def status(self) -> TaskStatus:
        return TaskStatus(self.row["status"])

    @property
    def seq(self) -> int:
        return int(self.row["seq"])

    @property
    def task_id(self) -> str:
        return str(self.row["task_id"])

    @property
    def score(self) -> float | None:
        score = self.row.get("score")
        return float(score) if isinstance(score, int | float) else None

    @property
    def vote_key(self) -> str | None:
        key = self.row.get("vote_key")
        return key if isinstance(key, str) else None

    @property
    def scorer_error(self) -> str | None:
        error = self.row.get("scorer_error")
        return error if isinstance(error, str) else None
