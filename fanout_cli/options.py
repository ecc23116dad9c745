"""Every option of `fanout run`, declared once, as data, and the settings they make.

From the one table, `RUN_OPTIONS`, come the command line's parameters (and so `--help`,
the man page's option list and the README's table, which are generated from the
parser), the keys a task file's `[run]` and `[agent]` tables accept, and the parsers
that read a value from either place. `build_config` merges the layers of `[run]`
options into a `RunConfig` (fanout_cli/run_config.py): one frozen record per group
(policy, verdict, output, sharding), so that a stage is handed only its group.

To add an option: one `Option(...)` line in the table, a field in its group's record
in run_config.py (for a `[run]` option), and the code that uses it. tests/test_options.py checks
that the table and the records agree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fanout_cli import values as v

if TYPE_CHECKING:
    from typer.core import TyperOption

    from fanout_cli.halting import HaltSpec

    # The records of a run's settings, made from this table (imported from here by most;
    # loaded when first asked for, by `__getattr__` below: `fanout --help` needs none).
    from fanout_cli.run_config import GROUP_OF as GROUP_OF  # noqa: PLC0414 (re-exported)
    from fanout_cli.run_config import OutputOptions as OutputOptions  # noqa: PLC0414
    from fanout_cli.run_config import PolicyOptions as PolicyOptions  # noqa: PLC0414
    from fanout_cli.run_config import RunConfig as RunConfig  # noqa: PLC0414
    from fanout_cli.run_config import ShardOptions as ShardOptions  # noqa: PLC0414
    from fanout_cli.run_config import VerdictOptions as VerdictOptions  # noqa: PLC0414

_RUN_CONFIG_NAMES = frozenset(("GROUP_OF", "OutputOptions", "PolicyOptions", "RunConfig",
                               "ShardOptions", "VerdictOptions"))  # fmt: skip


def __getattr__(name: str) -> Any:
    """The records re-exported from fanout_cli/run_config.py, imported on first use."""
    if name not in _RUN_CONFIG_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from fanout_cli import run_config

    return getattr(run_config, name)

# What an option is for; each group is one frozen record of RunConfig (below), except
# "source" (what the tasks are) and "agent" (the agent settings, agents.py).
Group = Literal["source", "policy", "verdict", "output", "sharding", "agent"]
# value: takes a value; flag: present or not; switch: --x/--no-x; repeat: repeatable value.
Kind = Literal["value", "flag", "switch", "repeat"]
# The task-file table that takes the same key (None: the command line only).
Table = Literal["run", "agent"] | None


@dataclass(frozen=True)
class Option:
    """One option: its key (RunConfig field, task-file key, parameter name), how it is
    written on the command line, how its value is read, and its help."""

    name: str
    flags: tuple[str, ...]  # long form last; a switch is "--x/--no-x"
    help: str
    group: Group
    parse: Callable[[object], Any] | None = None  # None: the value is used as given
    metavar: str | None = None
    kind: Kind = "value"
    table: Table = "run"

    @property
    def flag(self) -> str:
        """The long flag, for messages: --ok-exit."""
        return self.flags[-1].split("/")[0]

    def parameter(self) -> TyperOption:
        """The command-line parameter of this option (`fanout run`'s are made here)."""
        import click
        from typer.core import TyperOption

        decls = [self.name, *self.flags]
        if self.kind in ("flag", "switch"):
            return TyperOption(param_decls=decls, is_flag=True, type=click.BOOL,
                               default=False if self.kind == "flag" else None,
                               help=self.help, show_default=False)  # fmt: skip
        return TyperOption(param_decls=decls, type=click.STRING, default=None,
                           multiple=self.kind == "repeat", metavar=self.metavar,
                           help=self.help)  # fmt: skip

    def given(self, value: object) -> object:
        """The command line's value as a layer of options: None when not given (a flag
        left off, a repeatable option never used), so a lower layer's value stands."""
        if (self.kind == "flag" and value is False) or (self.kind == "repeat" and not value):
            return None
        return value


def _value(name: str, metavar: str, help: str, group: Group, parse: Callable[[object], Any],
           *short: str, table: Table = "run") -> Option:  # fmt: skip
    return Option(name, (*short, "--" + name.replace("_", "-")), help, group, parse, metavar,
                  table=table)  # fmt: skip


def _reduce(name: str) -> Callable[[object], Any]:
    def parse(value: object) -> Any:  # fanout_cli.reduce is loaded only when a reduce is set
        from fanout_cli.reduce import spec

        return getattr(spec, name)(value)

    return parse


def _key_env(value: object) -> str:
    from fanout_cli.provider_keys import parse_key_env

    return parse_key_env(value)


def _halt(value: object) -> HaltSpec | None:
    from fanout_cli.halting import parse_halt  # loaded only when --halt is given

    return parse_halt(value)


def _termseq(value: object) -> Any:
    from fanout_cli.termseq import parse_termseq  # loaded only when it is given

    return parse_termseq(value)


def _timeout(value: object) -> Any:
    """--timeout: a duration, 0 for none, or P% of the median (relative_limit.py, loaded
    only for a percentage)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        from fanout_cli.relative_limit import parse_percent

        return parse_percent(value)
    return v.parse_limit(value)


def _machine(name: str) -> Callable[[object], Any]:
    def parse(value: object) -> Any:  # fanout_cli.machine is loaded only when it is given
        from fanout_cli import machine

        return getattr(machine, name)(value)

    return parse


def _jobs(value: object) -> int:
    if isinstance(value, str) and value.strip().isdecimal() and value.strip().strip("0"):
        return v.parse_jobs(value)  # a plain N, the usual case, loads nothing more
    from fanout_cli.jobs import parse_jobs_spec  # N%, +N, -N, 0 (and a TOML number)

    return parse_jobs_spec(value)


def _nice(value: object) -> int:
    from fanout_cli.nice import parse_nice  # loaded only when --nice or [run] nice is given

    return parse_nice(value)


def _shuf(value: object) -> int | bool | None:
    from fanout_cli.shuffle import parse_shuf  # loaded only when --shuf or [run] shuf is given

    return parse_shuf(value)


def _junit_template(value: object) -> str:
    from fanout_cli.junit import parse_junit_template  # loaded only when it is given

    return parse_junit_template(value)


_STRATEGY_NAMES = ", ".join(v.STRATEGIES)

RUN_OPTIONS: tuple[Option, ...] = (
    _value("jobs", "N", "Tasks in flight at once (a sliding window): 1-10000; N% of the "
           "CPUs, +N or -N CPUs (at least 1); 0: as many as the open-file and process limits "
           "allow. [default: CPU count]", "policy", _jobs, "-j"),
    _value("timeout", "DUR", "Per task: 500ms, 30s, 5m, 1h (a bare number is seconds; at "
           "most 30d; 0: none), or P% of the median duration of the tasks that succeeded so "
           "far (once 3 have).", "policy", _timeout),
    _value("grace", "DUR", "Between SIGTERM and SIGKILL of a task's process group. "
           "[default: 5s]", "policy", v.parse_run_duration),
    _value("termseq", "SEQ", "How a task is ended: signals and the longest waits between "
           "them, e.g. TERM,5s,INT,2s,KILL (ends with KILL). A BARE number is MILLISECONDS "
           "here, as in GNU parallel. [default: TERM,<grace>,KILL]", "policy", _termseq,
           "--term-seq"),
    _value("deadline", "DUR", "Whole run; unfinished tasks end as timeout. 0: none.",
           "policy", v.parse_limit),
    _value("ok_exit", "CODES", "Exit codes that count as success, e.g. 0,1 for grep. "
           "[default: 0]", "policy", v.parse_exit_codes),
    _value("retries", "N", "Extra attempts for a failed or timed-out task, 0-100. [default: 0]",
           "policy", v.parse_retries),
    _value("retry_delay", "DUR", "First back-off before a retry; doubles each time, "
           "jittered. [default: 1s]", "policy", v.parse_run_duration),
    _value("strategy", "S", f"Verdict: {_STRATEGY_NAMES}. [default: all-succeed]",
           "verdict", v.choice(v.STRATEGIES)),
    Option("fail_fast", ("--fail-fast/--no-fail-fast",), "Stop as soon as the verdict can no "
           "longer pass (all-succeed: the first failure; partial-success: when the minimum "
           "became impossible); with --halt soon, running tasks finish.", "verdict",
           v.parse_flag, kind="switch"),
    _value("halt", "SPEC", "End the run early, as GNU parallel's --halt: now or soon (let "
           "running tasks finish), then ,fail=N, ,success=N or ,done=N (N a count or P% of "
           "all tasks), e.g. now,fail=1; soon alone: early ends let running tasks finish.",
           "policy", _halt, "--halt-on-error"),
    _value("required_successes", "N", "first-n-succeed: pass once N succeed. [default: 1]",
           "verdict", v.parse_count),
    _value("min_successes", "N", "partial-success: successes needed. [default: 1]",
           "verdict", v.parse_count_or_zero),
    _value("min_success_ratio", "R", "partial-success: share of all tasks needed, 0-1.",
           "verdict", v.parse_ratio),
    _value("score", "REGEX", "best-of-n: the score is group 1 of the last match in stdout. "
           "[default: the [AOP:SCORE] line]", "verdict", v.parse_regex),
    _value("scorer", "CMD", "best-of-n: a command given the details file path; prints the "
           "score.", "verdict", v.parse_text),
    _value("vote_on", "WHAT", "majority-vote key: stdout, summary, exit-code, or a REGEX "
           "(group 1). [default: stdout]", "verdict", v.parse_vote_on),
    _value("output_dir", "DIR", "Where runs are kept (env FANOUT_OUTPUT_DIR). "
           "[default: .cache/agent-outputs]", "output", v.parse_text),
    _value("run_id", "ID", "Name of this run's folder. [default: time-based, unique]",
           "output", v.parse_run_id),
    _value("format", "F", "human, aop, json or jsonl. [default: human]",
           "output", v.choice(v.FORMATS)),
    _value("summary_chars", "N", "Cap of each task's summary. [default: 500]",
           "output", v.summary_chars),
    _value("max_lines", "N", "--format aop: task lines in the summary. [default: 50]",
           "output", v.parse_max_lines),
    Option("progress", ("--progress/--no-progress",), "Live progress on stderr, and a table "
           "of the tasks at the end. [default: when stdout and stderr are the terminal, not "
           "in CI]", "output", v.parse_flag, kind="switch"),
    _value("color", "WHEN", "Colour: auto, always or never (auto respects NO_COLOR; always "
           "and never override it). [default: auto]", "output", v.choice(v.COLORS)),
    Option("quiet", ("-q", "--quiet"), "Print the verdict line only.", "output",
           v.parse_flag, kind="flag"),
    Option("group", ("--group",), "Print each task's own stdout, whole, then its stderr, as "
           "it ends; fanout's own lines go to stderr.", "output", v.parse_flag, kind="flag"),
    Option("keep_order", ("-k", "--keep-order"), "Like --group, in input order.", "output",
           v.parse_flag, kind="flag"),
    Option("line_buffer", ("--lb", "--line-buffer"), "Print the tasks' output a whole line "
           "at a time, as it comes (with -k: the first unfinished task's).", "output",
           v.parse_flag, kind="flag"),
    Option("tag", ("--tag",), "Prefix each line of the tasks' output with the task's values "
           "and a TAB.", "output", v.parse_flag, kind="flag"),
    _value("tagstring", "TEMPLATE", "Like --tag, with this prefix ({} {1} {#} {%} ... filled "
           "in).", "output", v.parse_tagstring),
    Option("glob", ("--glob",), "Task source: one task per matching path (repeatable; ** "
           "recurses; sorted; hidden files only when the pattern names them).", "source",
           metavar="PATTERN", kind="repeat", table=None),
    Option("null", ("-0", "--null"), "Values on stdin are NUL-separated (find -print0).",
           "source", kind="flag", table=None),
    Option("arg_file", ("-a", "--arg-file"), "Input source: one value a line of FILE (- is "
           "stdin), as :::: FILE; repeatable, before the sources after the command.",
           "source", metavar="FILE", kind="repeat", table=None),
    Option("link", ("--link",), "Pair the input sources by position instead of combining "
           "them (a shorter one wraps); :::+ links one source to the one before.", "source",
           kind="flag", table=None),
    _value("colsep", "REGEX", "Cut each value into columns at REGEX: {1} {2} ... are the "
           "columns.", "source", v.parse_regex, "-C", table=None),
    _value("header", ":", "The first value of each input source names its columns: "
           "{name}.", "source", v.parse_header, table=None),
    Option("batch_m", ("-m",), "Put as many values in one command as fit (GNU parallel's "
           "-m): {} is all of them.", "source", kind="flag", table=None),
    Option("batch_x", ("-X",), "Like -m, and the text around {} is repeated for each value.",
           "source", kind="flag", table=None),
    _value("max_args", "N", "At most N values in one command; {1}..{N} are each of them.",
           "source", v.parse_count, "-N", table=None),
    _value("max_chars", "N", "With -m, -X or -N: at most N characters in a command line "
           "(as --dry-run shows it). [default: the system's limit]", "source",
           v.parse_max_chars, "-s", table=None),
    Option("shell", ("--shell",), "Run the command under sh -c (values are shell-quoted).",
           "source", kind="flag", table=None),
    Option("pipe", ("--pipe",), "Cut stdin into blocks, each one task's stdin ({#} is the "
           "block number).", "source", kind="flag", table=None),
    Option("block", ("--block",), "--pipe: block size, cut after the last whole record; 1K "
           "is 1024, 1k 1000; 1 byte to 1G. [default: 1M]", "source", metavar="SIZE",
           table=None),
    Option("recend", ("--recend",), "--pipe: the string that ends a record (\\n, \\0, \\t "
           "escapes). [default: \\n]", "source", metavar="STR", table=None),
    Option("block_records", ("-L", "--block-records"), "--pipe: N records per block, instead "
           "of a size (GNU parallel's --pipe -N).", "source", metavar="N", table=None),
    Option("dry_run", ("--dry-run",), "Print each command that would run, shell-quoted; run "
           "nothing.", "source", kind="flag", table=None),
    Option("resume", ("--resume",), "Run only the tasks of RUN (an id, or last) that have no "
           "result yet, into RUN. With a task source, match it to RUN's results.", "source",
           metavar="RUN", table=None),
    Option("resume_failed", ("--resume-failed",), "Like --resume, and also re-run RUN's "
           "failed, timed-out, cancelled and error tasks.", "source", metavar="RUN",
           table=None),
    _value("shard", "I/N", "Run only shard I of N (1-based), balanced by recorded durations "
           "(env FANOUT_SHARD, or CI_NODE_INDEX/CI_NODE_TOTAL and the like).", "sharding",
           v.parse_shard_text),
    Option("timings", ("--timings",), "Recorded durations for --shard and --order: timings "
           "JSON, manifest.json, JUnit XML; globs fanout expands (sorted) and comma lists of "
           "both; a value naming an existing file is that file. Repeatable, later files newer. "
           "[default: the output dir's runs]", "sharding", v.parse_paths, "FILES", kind="repeat"),
    _value("order", "ORDER", "input, longest-first or failed-first (by recorded durations "
           "and results). [default: longest-first with --shard, else input]", "sharding",
           v.choice(v.ORDERS)),
    Option("shuf", ("--shuf/--no-shuf",), "Run the tasks in a random order (stdin is read "
           "whole first); the manifest keeps the seed, and --resume the order. [run] shuf = N "
           "repeats the order of seed N.", "sharding", _shuf, kind="switch"),
    _value("joblog", "FILE", "Also write GNU parallel's job log (TSV: Seq, Host, Starttime, "
           "JobRuntime, Send, Receive, Exitval, Signal, Command), a row as each task ends.",
           "output", v.parse_text),
    _value("junit", "FILE", "Also write the run as JUnit XML, one testcase per task.",
           "output", v.parse_text),
    _value("task_junit", "TEMPLATE", "Where each task's test runner writes JUnit ({#} {} ... "
           "filled in; relative to its cwd): copied into the run, merged into --junit.",
           "output", _junit_template),
    _value("reduce", "CMD", "After the last task, run CMD (sh -c) with one JSON line per task "
           "on stdin; its output is the run's answer.", "verdict", _reduce("parse_reduce")),
    _value("reduce_prompt", "TEMPLATE", "After the last task, one agent call: {results} {outputs} "
           "{verdict} are filled in.", "verdict", _reduce("parse_prompt")),
    _value("reduce_when", "WHEN", "When the reduce runs: pass, always or fail (of the verdict). "
           "[default: pass]", "verdict", v.choice(("pass", "always", "fail"))),
    _value("executor", "E", "local, or dask://HOST:PORT: run process tasks on a Dask cluster "
           "(pip install 'fanout-cli[dask]'). [default: local]", "policy", v.parse_executor),
    _value("nice", "N", "Run the tasks at niceness N, -20 to 19. Below fanout's own needs "
           "privilege; refused, it is a warning and they run as they are.", "policy", _nice),
    Option("resources", ("--resources",), "Dask: a worker resource every task needs, e.g. "
           "GPU=1 (repeatable).", "policy", v.parse_resources, "NAME=N", kind="repeat"),
    _value("rate", "N/PERIOD[:BURST]", "Start N attempts per PERIOD, run-wide, evenly spaced "
           "(60/min, 5/s, 10/30s); :BURST lets that many go at once (60/min:5).", "policy",
           v.parse_rate),
    _value("memfree", "SIZE", "Start a task only while this much memory is available (1G, "
           "512M; 1K is 1024, 1k 1000); below half of it, end the youngest task and run it "
           "again later, no attempt charged.", "policy", _machine("parse_memfree")),
    _value("load", "N", "Start a task only while the load (processes running or ready to run, "
           "now) is below N; N% is of the CPUs (100%: one per CPU).", "policy",
           _machine("parse_load")),
    _value("delay", "DUR", "At least DUR between two starts, retries included, run-wide "
           "(300ms, 2s).", "policy", v.parse_run_duration),
    Option("agent", ("--agent",), "Tasks are LLM calls: each value fills --prompt (or is the "
           "prompt).", "source", kind="flag", table=None),
    Option("prompt", ("--prompt",), "Agent tasks: the prompt, with {} {.} {/} {#} ... filled "
           "from each value. Implies --agent.", "source", metavar="TEMPLATE", table=None),
    Option("prompt_file", ("--prompt-file",), "Agent tasks: this file's text follows the "
           "prompt as it is (nothing in it is filled); alone, it is the prompt.", "source",
           metavar="FILE", table=None),
    Option("agent_cli", ("--agent-cli",), "Tasks run a headless agent CLI with --prompt: "
           "claude, codex, llm or aider.", "source", metavar="TOOL", table=None),
    _value("provider", "NAME", "Agent tasks: openai, anthropic, or a name from "
           "[agent.providers] (env FANOUT_PROVIDER). [default: openai]", "agent", v.parse_text,
           table="agent"),
    _value("model", "MODEL", "Agent tasks: the model (env FANOUT_MODEL).", "agent",
           v.parse_text, table="agent"),
    _value("system", "TEXT", "Agent tasks: the system prompt.", "agent", v.parse_text,
           table="agent"),
    _value("temperature", "T", "Agent tasks: sampling temperature, 0-2.", "agent",
           v.parse_temperature, table="agent"),
    _value("max_tokens", "N", "Agent tasks: reply length cap. [default: the server's; 1024 "
           "for anthropic]", "agent", v.parse_max_tokens, table="agent"),
    _value("base_url", "URL", "Agent tasks: the provider's URL, e.g. http://127.0.0.1:8080/v1 "
           "for a local OpenAI-compatible server.", "agent", v.parse_url, table="agent"),
    _value("http_retries", "N", "Agent tasks: extra requests of one attempt after a transient "
           "HTTP error (5xx, 429, a dropped connection), 0-20. [default: 4]", "agent",
           v.parse_http_retries, table="agent"),
    _value("api", "API", "Agent tasks: the wire format of a provider --provider NAME defines "
           "with --base-url: openai (Chat Completions) or anthropic (Messages).", "agent",
           v.choice(("openai", "anthropic")), table="agent"),
    _value("api_key_env", "NAME", "Agent tasks: the variable holding the key for --base-url "
           "(OPENAI_API_KEY and ANTHROPIC_API_KEY go only to their own hosts).", "agent",
           _key_env, table="agent"),
    Option("attach", ("--attach",), "Agent tasks: append this file's contents to the prompt "
           "(repeatable; {} etc. filled from each value).", "source", metavar="TEMPLATE",
           kind="repeat", table=None),
)

BY_NAME: Mapping[str, Option] = {option.name: option for option in RUN_OPTIONS}
# The [run] table's keys (the run's settings) and the [agent] table's from the command line.
RUN_KEYS: tuple[str, ...] = tuple(o.name for o in RUN_OPTIONS if o.table == "run")
AGENT_KEYS: tuple[str, ...] = tuple(o.name for o in RUN_OPTIONS if o.table == "agent")


def parser(name: str) -> Callable[[object], Any]:
    """The parser of a [run] or [agent] key."""
    parse = BY_NAME[name].parse
    assert parse is not None, f"{name} has no parser"
    return parse


def flag_of(name: str) -> str:
    """The flag that sets a key, for messages: "min_successes" -> "--min-successes"."""
    option = BY_NAME.get(name)
    return option.flag if option is not None else "--" + name.replace("_", "-")

