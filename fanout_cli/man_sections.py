"""The man page's prose, section by section (manpage.py renders it with the options
read from the parser): what fanout does, here; the reference sections (files,
statuses, exit codes, limits, environment, examples) in man_reference.py."""

from __future__ import annotations

from fanout_cli.man_reference import REFERENCE

DESCRIPTION = """\
fanout reads a task list (a TOML file, lines on stdin, ::: values, :::: files or a
--glob),
runs each task as a child process under a concurrency
limit and a timeout, writes every task's full output to an Agent Output Protocol
(AOP) folder, and prints only a short summary per task plus one aggregated verdict
chosen by --strategy.
"""

SECTIONS: list[tuple[str, str]] = [
    ("TASK SOURCES", """\
One kind per run: a TOML TASKFILE; input sources after the command; --glob
PATTERN (repeatable; matches sorted, each path once; ** recurses and follows links to
folders, but each real folder once, so a link back to . or .. ends; hidden files only
when the pattern names them; no match is an error); or values on standard input, one a line (LF or
CRLF; empty lines skipped), NUL-separated with -0. Standard input is streamed: the
first task starts before it ends. With no command after --, each input line is
itself a shell command. Empty input is zero tasks; the strategy decides the verdict.
--pipe cuts standard input into blocks instead, each block one task's stdin (GNU
parallel's --pipe): about --block SIZE bytes (default 1M; 1K is 1024, 1k 1000; 1 byte
to 1G), cut after the last --recend (default a newline; \\n \\0 \\t \\r escapes), so a
record is never split; a longer record grows the block. -L N (--block-records) makes
each block N records. The blocks in order are stdin byte for byte, cut where GNU
parallel cuts them. {#} is the block number; a value's replacement string is an
error and nothing is appended. Task ids are block-N; the record's input is {"block",
"bytes", "records"}. Blocks are read as slots free up (memory: about -j + 2 blocks)
and are not kept, so a --pipe run cannot be resumed (--resume says so, exit 2).
--dry-run prints the command once per block.
"""),
    ("INPUT SOURCES", """\
As in GNU parallel: each ::: VALUE... list, each file after :::: FILE... and each
-a FILE (repeatable, before the others; - is standard input; -0 applies) is one input
source, standard input when none is named. A task is one combination of their values,
every combination, the last source varying fastest; a source after :::+ or ::::+ is
paired with the one before by position (the shorter decides); --link pairs them all (a
shorter one wraps). Combinations are made lazily, and a streamed first source stays
streamed. --colsep REGEX cuts each value into columns (positional values; a missing one
is empty); --header : names the columns from each source's first value ({name}). A
task's id is its values joined by a space; its input record is the value, a list of
them, or an object of named values. -m puts as many values in one command as fit, -X
likewise repeating the text around {} for each value, -N N at most N ({1}..{N}); never
past the system's argument limit (-s N lowers it to N characters of the command as
--dry-run shows it); when the input ends while a batch fills, -m and -X spread it over
the -j slots. A batch is one task, named by its first value and how many more it holds.
--dry-run prints the commands as GNU parallel's --dry-run prints them.
"""),
    ("REPLACEMENT STRINGS", """\
{} the value (every value of a combination or batch, space-separated); {.} without
its extension; {/} its basename; {//} its dirname; {/.} the basename without
extension; {1}..{N} the Nth source's value (or column), with the same modifiers ({1.}
{1/} {1//} {1/.}); {name} a value named by --header or a task file's matrix; {#} the
sequence number; {%} the worker slot (1 to --jobs); {##} the number of tasks. Any other
{...} GNU parallel reads as a replacement string ({3} with two sources, {0}, {..},
{+/}, {= perl =}) is an error (exit 2); other braces ({print $1}, ${HOME}, {a,b}) are
text. {{}} is a literal {} (likewise {{.}}, {{1}} and the others). With no
replacement string the values are appended as the last arguments. Several words run
without a shell, each substituted literally; {} with several values makes one
argument of each. A single word with shell syntax, --shell, or several words one of
which is only a shell operator (| > && ...) or that start with an assignment or a shell
built-in (exit, cd, ...), run under sh -c (the words joined by spaces, as GNU
parallel does), and no value is written into the script: it starts with
set -- VALUE... (shell-quoted) and reads the values as positional parameters, in the
form each place needs ("$1" in a word, ${1+"$1"} in "..." and here-document bodies,
${1} in $(( ))), so a value never becomes code. A value read as arithmetic ($(( )),
(( )), $[ ], let, [[ -eq ]], ${s:{}}, ${a[{}]}) must be a number or an expression of
numbers, else its task fails with "fanout: refused" (exit 2). A here-document with
a quoted delimiter (<<'EOF') and a value in its body is written as the unquoted one
that prints the same text (<<EOF, with \\, $ and ` escaped in its body).
"""),
    ("TASK FILE", """\
A TOML file with up to four tables. [run] sets any run option (names with _ for -); the
command line wins over it. [defaults] sets task keys for every task. Each [[task]]
has: id (optional, unique; default task-N), cmd (a list of words is executed
directly; a string runs under sh -c), cwd, env (a table of strings), timeout,
retries, ok_exit (a list of exit codes that count as success), and one of glob,
foreach or matrix to make one task per value (id, cmd, prompt, attach, cwd and env take
replacement strings). matrix = { py = ["3.11", "3.12"], os = ["linux", "mac"] } makes
a task per combination, the first key varying slowest; foreach entries may be tables
with the same keys ([{ src = "a.png", dst = "a.webp" }]). A named value is {py}, or
{1}, {2} in key order, with the modifiers {py.} {py/} {py//} {py/.}; {} is every value
and a {word} that names none stays text. An id without a replacement string gets the
values appended with - (test-3.11-linux); no id: the values joined by a space. The
task's input records named values as an object. kind = "agent" or
"agent-cli" tasks take a prompt instead of cmd (see AGENT TASKS), and [agent] sets
their defaults and providers. A task's own key wins
over [defaults], which wins over the run option. Unknown keys, wrong types,
duplicate ids and a missing cmd are errors reported as FILE:LINE: problem, exit 2;
a key in the wrong table (model in [run], jobs in [agent]) says where it belongs.
"""),
    ("AGENT TASKS", """\
A task with kind = "agent" (or the values of --prompt TEMPLATE, or --agent) is one
chat-model call instead of a process. Its keys: prompt (replacement strings work as
in cmd), system, model, temperature, max_tokens, provider and attach (files whose
contents follow the prompt). The [agent] table sets their defaults for the run with
every agent option of the command line (provider, model, system, temperature,
max_tokens, and base_url, the chosen provider's URL); the command line's --model,
--provider, --system, --temperature, --max-tokens and --base-url win over it, and a
task's own keys win over both. [agent] also takes http_retries (or retries: HTTP
retries of transient errors, default 4, as --http-retries) and rate (a pace for all
agent requests). Providers: openai
(OpenAI-compatible Chat Completions at OPENAI_BASE_URL or https://api.openai.com/v1,
key OPENAI_API_KEY) and anthropic (the Messages API at ANTHROPIC_BASE_URL or
https://api.anthropic.com, key ANTHROPIC_API_KEY); [agent.providers.NAME] defines
more, with api (openai or anthropic; required unless NAME is built in), base_url,
api_key_env and rate, and so does --provider NAME --base-url URL --api API.
--base-url points the chosen provider elsewhere (vLLM, llama.cpp, Ollama, LM Studio,
LiteLLM). Keys go only where they belong: OPENAI_API_KEY only to
https://api.openai.com and ANTHROPIC_API_KEY only to https://api.anthropic.com (and
each to the OPENAI_BASE_URL or ANTHROPIC_BASE_URL beside it, as the SDKs pair them);
any other URL gets a key only from the variable named for it with --api-key-env NAME
or api_key_env, else no key at all (a local server needs none; a 401 then says no key
was sent and how to name one). OpenRouter: --base-url https://openrouter.ai/api/v1
--api-key-env OPENROUTER_API_KEY. Keys are read from the environment and never
written or printed. The reply text is the task's
stdout; its summary is the reply's [AOP:SUMMARY] block, else its first lines;
--score, [AOP:SCORE] and --vote-on read the reply. A 429, 503 or 529 pauses new
requests to that provider for the whole run (Retry-After, retry-after-ms); transient
errors retry with jittered exponential back-off; 400, 401, 403, 404 and an exhausted
quota end the task at once (a 404 names the URL and suggests the likely base URL, such
as one with /v1). Each attempt makes at most 1 + --http-retries requests, so a task
makes at most (1 + --retries) x (1 + --http-retries). When connections to a provider
fail (refused, DNS, connect timeout) 3 times in a row over at least 1 s with no HTTP
answer between, the provider is down for the rest of the run: one warning line says
so, and its waiting, backing-off and later tasks end at once as error, never retried.
Rates (--rate, [agent] rate, a provider's rate) space starts evenly, one every
PERIOD/N; N/PERIOD:BURST lets BURST (1 to N, default 1) go at once after a quiet
spell. Needs the agent extra: pip install 'fanout-cli[agent]'.

kind = "agent-cli" with tool = claude, codex, llm or aider (or --agent-cli TOOL) runs
that agent CLI headless as a process: claude -p --output-format json; codex exec
--json; llm prompt --no-log; aider --message --yes-always --no-pretty --no-stream
--no-auto-commits; model and system map to the tool's flags, args adds arguments
(templated like cmd). --attach becomes llm's --fragment=FILE or aider's --read=FILE;
claude and codex have no such option, and --attach with them is exit status 2. The
tool's answer, usage and cost are parsed into the details file's agent record, and
summaries, scores and votes read the answer. With -j above 1, llm's log database is
set up once before its tasks start (llm fragments list --aliases, per LLM_USER_PATH):
llm migrates it in every run, and runs started together on a fresh home would fail.

Templated (values fill {} {1} {#} ...): the prompt, attach paths, args, id, cwd, env.
Literal: the contents of attached files, and --prompt-file FILE (prompt_file in a
task, relative to the task file), whose text follows the prompt after a blank line
(alone, it is the prompt). With values from stdin and none there, a prompt with no
replacement string runs once; one with a replacement string runs no task (a warning).

Token usage is totalled for the run in the manifest and the JSON envelope (tokens:
input_tokens, output_tokens, total_tokens, tasks, unknown; null when no task called
an agent) and at the end of the AOP METRICS line (input_tokens: N, output_tokens: N,
total_tokens: N, tokens_unknown: N). Every attempt's reply counts, an agent reduce
counts as one more call, and --resume includes the kept results. A reply that did not
report its counts makes its task unknown, and the sums are then a lower bound; a
request that got no reply adds nothing.
"""),
    ("SHARDING", """\
--shard I/N runs shard I of N (1-based); without it, FANOUT_SHARD=I/N or a CI
system's variables choose one: CI_NODE_INDEX and CI_NODE_TOTAL (GitLab, 1-based),
CIRCLE_NODE_INDEX and CIRCLE_NODE_TOTAL (CircleCI, 0-based), BUILDKITE_PARALLEL_JOB
and BUILDKITE_PARALLEL_JOB_COUNT (0-based), SEMAPHORE_JOB_INDEX and
SEMAPHORE_JOB_COUNT (1-based). Shards are disjoint and cover every task, whatever the
input order: tasks are ranked by estimated duration and id, and each goes to the
least-loaded slot of all the shards (longest-processing-time-first). With -j N a
shard is planned on its N slots, its estimate being when its last slot ends; without
-j a shard is one slot (the CPU count may differ between machines). Under --shard
tasks start longest first unless --order (input, longest-first, failed-first) says
otherwise. Estimates are the 85th percentile of a task's last 20 recorded durations,
from --timings (a fanout timings file, a manifest.json, or JUnit XML from any runner;
repeatable; globs fanout expands, sorted, and comma lists, later files newer; a
missing file is a warning) or else the output dir's earlier runs. A task never seen
gets the median of the known, no estimate is below 1 ms, and one from JUnit adds its
program's start-up, learnt from runner JUnit (below). --dry-run prints every shard's
estimate first; with --format json, the plan record and this shard's commands.

With -X or -m, a shard plans over the single values (test ids, each estimated from
JUnit), then runs each slot's share as one command holding them (more only past the
argument limit, -s, or -N; -N alone keeps its groups as tasks); {#} numbers the
commands over every shard; a shard runs one command a -j slot, fewer only where one
more would shorten the slowest shard by less than 5 %. For pytest: pytest
--collect-only -q | grep :: | fanout run --shard I/4 -j 2 -X --timings timings.json
--task-junit 'reports/{#}.xml' -- pytest -q --junitxml='reports/{#}.xml' {}. Jest:
jest --listTests as the values; go test: go test -list . ./... | grep ^Test, and a
sh -c template that joins "$@" into one -run regex.

Each shard run records its plan in plan.json (every task's id, key, shard and
estimate, N, -j, and a sha256 fingerprint of them). fanout merge RUN_OR_DIR... reads
shard runs (ids, run folders, or folders holding them) and writes one merged run with
one verdict, which fails, naming the tasks, when the shards planned differently, a
task ran in no shard, or one ran in two (a shard merged twice counts once: its newest
run); shard runs without plan.json (an older fanout) merge with a warning. merge -q
prints the verdict line only; --timings OLD --timings-out NEW writes OLD's durations,
then the runs' (the last 20 a task); in CI every shard of a pipeline restores one
exact timings file (README). fanout timings export -o FILE writes the recorded
durations of the output dir's runs (or of named runs) as one timings file.

--junit FILE (run and merge) writes JUnit XML: a testcase per task, failure or error
with the summary, skipped for cancelled tasks, capped stdout and stderr tails, run id
and shard as properties. A task's own runner JUnit (task-file junit, --task-junit) is
read after each attempt if written during it, copied into the run folder, and its
suites merged into --junit and merge --junit, its tests' durations and its program's
start-up into timings; otherwise a failure's message names the failing tests its
output shows (pytest, unittest, Jest, go, cargo).
"""),
    ("OUTPUT", """\
The human format prints a line per task as it ends, then the verdict line. When
standard output and standard error are a terminal (and not in CI: CI, GITHUB_ACTIONS,
GITLAB_CI, BUILDKITE, CIRCLECI, JENKINS_URL, TF_BUILD), a live area on standard error
shows tasks done, running and failed, a bar with an ETA, and the slowest running
tasks; the run ends with a table of every task in input order (failures first when it
does not fit the screen) before the verdict line. --no-progress turns the live area
off; --progress turns it on in CI. --color auto|always|never; auto respects NO_COLOR.
--group, -k, --line-buffer, --tag and --tagstring print the tasks' own output as
GNU parallel does: their stdout on standard output and their stderr on standard error
(--group: each task's whole, as it ends; -k: the same in input order; --line-buffer:
whole lines as they come, a line ending at a newline, or at a carriage return in output
with no newline, or at 1 MiB with neither; --tag: each line prefixed with the task's
values and a TAB). A retried task prints its last attempt only (--line-buffer: every
attempt). fanout's own lines then go to standard error, with the live area only when
standard output is not that terminal; these options do not go with --format aop, json
or jsonl (exit 2). The output is read back from the run folder: memory stays flat.
--format aop, json and jsonl print no live area. On every line fanout prints for
people (task lines, tables, verdict, runs and show, errors), control characters, C1
controls (U+0080-U+009F) and bidirectional marks and overrides (U+061C, U+200E,
U+200F, U+202A-U+202E, U+2066-U+2069) in ids, summaries and values are shown escaped
(\\x1b, \\u202e). JSON output is as JSON writes it (control characters escaped,
other characters as they are), and output files keep every byte. In the --format aop
block every field stays one line: control characters and line separators are escaped
(\\n, \\u2028) and [AOP: inside a field is shown as [AOP\\:. Each task line of the
block ends with -> DETAILS; stdout FILE (N bytes, M lines), and the --format json
envelope's tasks (the manifest's, --format jsonl's task_ended) carry stdout_file,
stdout_bytes and stdout_lines: M counts newlines, and one more for a last line without
one. The [AOP:TASK] command is quoted as a shell reads it.

fanout show RUN takes a run id, a unique prefix, last, the manifest path a verdict
line prints, or the path of a run folder (outside the output dir too); a task's
details or output file path alone names its run and task. TASK is tried as an id, an
id give or take a trailing slash, a seq number, a details or output file name or
path, then a unique prefix of an id (an ambiguous prefix is exit 2, naming up to five
tasks). A task's few header lines (status, id, seq, exit code or signal, duration,
attempts, the command quoted for a shell, summary, the paths of its files) come first,
then its stdout and its stderr byte for byte, each under a ----- stdout ----- line;
--json prints its details document instead (with no TASK: a JSON row a task).

fanout report RUN writes RUN-FOLDER/report.html (--output FILE elsewhere, - for
stdout), one HTML page with nothing to fetch: a Content-Security-Policy forbids every
request, the style and script are inline, and the page reads without script. It shows
the verdict, counts, strategy, wall time and command line; a timeline with a lane per
slot (per shard and slot for a fanout merge run) and a bar per attempt from its start
to its end, coloured by status, back-off between attempts dashed, an agent call's
waits for a rate limit hatched, each bar linking to its task's details file (links are
relative to the page, so the folders can be copied or published together) with a
tooltip (task, attempt, duration, exit code, summary) on hover or keyboard focus; the
failures first, the slowest tasks, a histogram of durations, each shard's planned
(--timings) and actual time, and a table of every attempt that says what the timeline
draws. The page stays under 2 MiB: up to 2,000 attempts every bar is a link; beyond,
every attempt keeps its bar and row while they fit, the table's summaries cut to what
the limit leaves (10,000 tasks named by test file fit, with no summaries); past that,
or 20,000 attempts, the lanes are aggregated into columns coloured by their worst
status and the table lists the attempts that did not succeed; the page says which.
It reads the run folder after the run, or while it runs (drawn as far as it got, with
a warning), a killed run (its open attempts drawn as unfinished), a --resume (the idle
time between sessions cut out) and a run older than slot numbers in the journal
(lanes worked out from the times, and said so). fanout show RUN and --progress's
final table say where it is.
"""),
    ("REDUCE", """\
--reduce CMD (sh -c), --reduce-prompt TEMPLATE (one agent call with the agent options)
or a [reduce] table (cmd, or kind = "agent" with prompt, model, provider, system,
temperature, max_tokens, max_bytes) runs once after the last task, when the verdict
passed (--reduce-when always|pass|fail). A command reads one JSON line per task on
stdin, in input order (task_id, seq, status, exit_code, summary, score, vote_key, input,
details_file, stdout_file; files relative to FANOUT_RUN_DIR, the run folder). A prompt's
{results} is a line per task, {outputs} the successful tasks' stdout in input order and
{verdict} the verdict, each at most max_bytes (default 64 KiB, at most 4 MiB) with a
note of what was cut; {{ and }} are braces, another {name} is exit 2 before any task
runs. It is recorded as reduce.json, reduce.stdout and reduce.stderr and as reduce in
the manifest (fanout show RUN reduce shows it); its output is printed whole after the
verdict (with -q alone), is "reduce" in --format json and the first SUMMARY line of
--format aop. A reduce that fails or
cannot start fails the run (exit 1). --resume runs it again when a task's result
changed, and otherwise keeps the recorded one.
"""),
    ("TIME LIMITS", """\
--timeout bounds each attempt of a task, from its start; --deadline the whole run.
0 is no limit, as in GNU parallel: --timeout 0 and --deadline 0 lift a limit a task
file's [run] sets, and a task's timeout = 0 lifts [defaults]' and the run's for it.
--timeout P% (or timeout = "P%" in [run]; more than 0% and at most 100000%) is
relative: P percent of the median duration of the tasks that succeeded so far in the
run (each one's final attempt), with no limit until three have. It moves: an attempt
already running when the limit first becomes known, or when the median changes, is
held to the new limit counted from its own start, so a straggler that started first
is still caught. The reason says so (timed out after 6.3s (300% of the median)), and
each attempt in a details file records the limit in effect as it ended (timeout, in
seconds or null, and timeout_rule: percent, median, successes). --resume counts the
successes it keeps. A percentage is the run's alone ([defaults] and a task's timeout
take seconds) and does not bound the reduce. GNU parallel applies it from the first
success and takes a remedian (medians of blocks of 999 runtimes, compared as text);
fanout waits for three successes and keeps the exact median.
"""),
    ("DASK CLUSTERS", """\
--executor dask://HOST:PORT (pip install 'fanout-cli[dask]') runs process and agent-cli
tasks on the workers of a Dask distributed cluster; agent HTTP calls, the verdict and
the run folder stay with fanout. Every worker needs the same fanout version (checked
when connecting; an unreachable scheduler is exit 2 within 5 s). Each attempt runs in
its own process group on a worker, with its own --timeout (from the moment the process
starts) and --termseq; early verdicts, --deadline and Ctrl-C stop remote
processes. A relative --timeout P% moves, so fanout holds it, counted from when it
submitted the attempt, and stops the task when it passes. Outputs come back when a
task ends: the last 1 MiB of stdout and of stderr each, the drop noted in the
attempt's reason. A worker that dies mid-task makes that
attempt error ("worker died: ..."); its processes are ended by a guardian process.
--resources NAME=N makes each task need a worker resource; tasks wait for one, bounded
by --deadline. Commands, paths and tools must exist on the workers.
"""),
    ("HOLDING BACK STARTS", """\
As GNU parallel's options of the same names, each checked before every attempt starts
(retries too), reading the machine again every 0.5 s while a start waits. --memfree
SIZE (1G, 512M; 1K is 1024, 1k 1000) starts a task only while the memory available is
at least SIZE (Linux: MemAvailable of /proc/meminfo, where GNU parallel sums MemFree,
Buffers and Cached; macOS: vm_stat's free, inactive and speculative pages). While tasks
run it is read every 0.5 s: below half of SIZE the youngest attempt (the one started
last) is ended (--termseq), one at a time, and runs again from its start when
memory allows, under the same attempt number: no retry is charged and its cut output
is not kept; the journal says task_requeued with the reason. The only task running is
never ended for memory (GNU parallel may end it, and charges a retry). --load N starts
a task only while the load is below N; N% is of the CPUs. As in GNU parallel the load
is the processes running or ready to run now, not the 1-minute average that would let
a burst of starts through (Linux: /proc/loadavg's running count, less fanout's reading
thread; elsewhere the 1-minute average). --delay DUR keeps at least DUR between two
starts across the run (300ms, 2s; 0 is none; GNU parallel's "auto" is refused). All
three read the machine fanout runs on, also with --executor dask. When the run stops
(--deadline, an early verdict, Ctrl-C), a waiting start gives way: the task ends not
started.
"""),
    *REFERENCE,
]
