"""The man page's reference sections: files, strategies, statuses, processes and
limits, interrupts, exit status, limits, environment, examples (man_sections.py has
the rest and puts these last)."""

from __future__ import annotations

REFERENCE: list[tuple[str, str]] = [
    ("FILES", """\
Each run has a folder OUTPUT-DIR/RUN-ID/ (mode 0700) holding, per task,
SEQ-SLUG.json (the details file: AOP header keys and fanout's full record),
SEQ-SLUG.stdout and SEQ-SLUG.stderr (the raw bytes, streamed; earlier attempts of a
retried task keep .aN.stdout names), SEQ-SLUG.junit.xml (the JUnit report the task's
runner wrote, with junit or --task-junit), and for the run journal.jsonl (append-only
events, one JSON object a line), manifest.json (options, tasks, verdict), tasks.jsonl
(the task list, for --resume), plan.json (a --shard run's plan, kept on --resume),
report.html (once fanout report has drawn it) and, while a fanout works in it, lock.
The journal's task_started events say the attempt and the slot ({%}) it ran on.
Every file is
mode 0600 whatever the umask and the kind of task, and every output a details file
names exists. SLUG is
the task id reduced to A-Z a-z 0-9 . _ - and at most 64 characters. SEQ is the
task's number in four digits up to 9999 (0001), and beyond that its digits after a
letter for their count (a10000, b100000, c1000000, ...): ls and shell globs list the
files in input order at any count. fanout cat prints the final attempts' outputs in
that order.
fanout trusts the OUTPUT-DIR path (it may be a symlink) and nothing inside a run
folder: its files are opened with no-follow flags and only as regular files, records
may name only files of their own folder, and a planted link is refused (exit 2 for a
command reading the run, after what cat printed before it; for a run in progress,
that task's attempt ends as an error).
A run that cannot be read is skipped with a warning by runs, show last, merge DIR and
timings export, and clean removes it.

Secrets are written as *** in every record (details, manifest, journal, task list):
env values whose names contain KEY, TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE,
CREDENTIAL, PRIVATE or SIGNATURE (any case), or have a part between _ - or . that is
PASS, PAT, AUTH, AUTHORIZATION or SIG (GITHUB_PAT, AUTH; not PATH or AUTHOR); env
values holding a secret (DATABASE_URL=postgres://user:pw@host is *** whole); URL
credentials (http://***@host) and query values named like secrets (?api_key=***) in
--base-url, argv and commands; values that look like provider keys (sk-..., sk-ant-...,
ghp_..., github_pat_..., xoxb-..., AKIA..., AIza..., glpat-..., Bearer ...); and the
value of an option such as --api-key or --token=. The task list keeps commands as they
run (for --resume): pass secrets in env, not on command lines. A resumed run whose
--base-url held a password asks for --base-url again. The raw .stdout and .stderr
files are kept as the tasks wrote them.
"""),
    ("STRATEGIES", """\
all-succeed passes when every task succeeded (with --fail-fast it stops at the
first failure; see EARLY ENDS). first-n-succeed passes once --required-successes tasks succeeded and
cancels the rest, or fails as soon as that became impossible. best-of-n passes when
one task succeeded; the winner has the highest score ([AOP:SCORE] line, --score
REGEX or --scorer CMD; ties go to the earlier task); with --score or --scorer it fails
when no successful task got a score, saying why (the scorer's failure, or that the
REGEX matched nothing). A scorer's command, exit code, stderr and error are kept in
each task's details file (scorer) and shown by fanout show. majority-vote passes
when one vote key (--vote-on) is held by more than half of all tasks, and stops once
one is.
partial-success passes when at least --min-successes tasks (or
--min-success-ratio of all tasks) succeeded.
"""),
    ("EARLY ENDS", """\
--fail-fast ends a run as soon as its verdict can no longer pass: all-succeed at the
first failure, partial-success once its minimum is out of reach. first-n-succeed
and majority-vote always end once their verdict is known either way; best-of-n needs
every score and never ends early.
--halt SPEC is GNU parallel's rule: now (end the running tasks) or soon (start
nothing new, not even a retry, and let the running tasks finish), then fail=N
(failure, timeout or error), success=N or done=N, where N is a count or P% of all
tasks (met when the count reaches total x P / 100, unrounded, as GNU parallel
computes it; to know the total it reads standard input whole first, as GNU parallel
does, except --pipe's blocks, checked once the input has ended). GNU parallel's older
forms are read too: never, 0, 1 (soon,fail=1), 2 (now,fail=1), -1 (soon,success=1),
-2 (now,success=1) and P% (soon,fail=P%). now or soon alone says how --fail-fast and
the strategies' early ends take effect. A task counts once, after its last attempt.
The verdict: after fail= the run fails; after success= it passes (now,success=1 is
first-n-succeed's "the first that works"); after done= the strategy judges the tasks
that ended, and those the halt ended or never started are not counted. Tasks ended
or never started end as cancelled; the deadline and Ctrl-C always end running tasks.
fanout's exit status is 0 or 1 where GNU parallel's counts failures or repeats the
last failing job's, and after done= it follows the strategy where GNU parallel's
counts the failures seen when it halted (101 when there were none).
"""),
    ("TASK STATUS", """\
success (exit 0 or a code in --ok-exit), failure (any other exit, or killed by a
signal), timeout, cancelled (ended by the strategy, --fail-fast or --halt before
it finished, or never started for them), error (could not start: command not found,
not executable, missing working directory; for agent tasks: no API key, unknown
provider, unreadable attachment; on a Dask cluster: the worker died). An agent call fails on an HTTP
error reply once its retries are spent. A task that prints [AOP:STATUS] failure
counts as failed.
"""),
    ("PROCESSES AND LIMITS", """\
Each task runs in its own session and process group. When it ends (by itself,
--timeout, an early verdict or a signal), what it left running in its group gets
the --termseq signals (SIGTERM, --grace, then SIGKILL unless told). On Linux fanout
is a child subreaper: a descendant
that left the group (setsid, setpgid, a double-forked daemon) is re-parented to
fanout, known by its session or by FANOUT_TASK_MARK in its environment, and ended and
reaped the same way, on a Dask worker too. One that also clears its environment is
ended only if it stays in the task's session; one that starts a new session and exits
before fanout sees it stays a zombie until fanout exits; on macOS, one that leaves
the group escapes. A low open-files limit (ulimit -n) is raised as far as -j needs, up to the
hard limit; when -j still does not fit, fewer tasks run at once, with one warning.

--termseq SEQ is how a task is ended, everywhere fanout ends one (--timeout,
--deadline, an early verdict, --fail-fast, Ctrl-C, what a task left in its group or
outside it, the reduce, Dask workers): signals by name (TERM, SIGTERM, int, USR1, any
case) or number, with one wait between two signals, e.g. TERM,5s,INT,2s,KILL. Each
signal goes to the whole process group; fanout then waits up to that wait for the group
to empty, and stops there if it does. A BARE NUMBER IS MILLISECONDS here, as in GNU
parallel (TERM,200,TERM,100,TERM,50,KILL,25 is its default), not seconds as in every
other duration of fanout; 200ms, 5s, 1m also work. The sequence must end with KILL,
which no process can catch (no descendant outlives its task; GNU parallel does not
require it); a wait after the final KILL is accepted and ignored (fanout always waits
for the killed process to be reaped). The default is TERM,<grace>,KILL: --grace DUR is
its short form; giving both is exit 2. A descendant that left the group (Linux) gets
each signal at its time counted from the task's end. A second Ctrl-C kills at once.
The manifest's options keep the sequence as text (termseq; grace is then null).
"""),
    ("JOBS, ORDER AND NICENESS", """\
-j takes GNU parallel's forms, resolved when the option is read (the manifest keeps
the number): N; N% of the CPU count (decimals allowed, rounded up, 0% refused); +N and
-N, the CPU count plus or minus N (-N below 1 runs 1, as GNU parallel's manual says;
its code stops instead); 0, as many as the limits allow: the tasks that fit the hard
open-files limit, at most the process limit (ulimit -u, where set) and 10000 (GNU
parallel also stops at the number of tasks). The CPU count is this machine's, also
with --executor dask://. In [run], a relative form is a string: jobs = "+2" (TOML
reads +2 as 2).
--shuf runs the tasks in a random order: random.Random(SEED).shuffle of the tasks in
input order, the same for the same seed and tasks on every machine and CPython 3.6 to
3.13. The manifest's options keep SEED as shuf; --dry-run prints it on stderr, and
[run] shuf = SEED gives that order again (shuf = true, like --shuf, draws a new seed,
except when resuming a run whose seed then stays: --resume goes on in the same
order; --no-shuf turns it off). stdin and ::: values are read whole first, as GNU
parallel does, kept as values (1,000,000 lines: about 250 MB). A task keeps its
number {#} (GNU parallel numbers the shuffled tasks as they start); with -m/-X the
commands are shuffled, not the values in them. With --shard, the shard is planned as
without --shuf and its own tasks run shuffled. --shuf is refused with --order
longest-first or failed-first, and with --pipe.
--nice N runs the tasks at niceness N. Local tasks: fanout renices itself before the
first task starts, and its children inherit it. On a Dask worker, the task's process
is reniced right after it starts: a child it forks in that first instant keeps the
worker's niceness. A niceness the system refuses (below fanout's own, without
privilege) is one warning, and the tasks run at the niceness they have (GNU parallel
goes on silently).
"""),
    ("INTERRUPTS AND RESUME", """\
The first SIGINT (Ctrl-C), SIGTERM or SIGHUP stops starting tasks, ends every running
task's process group with --termseq (SIGTERM, --grace, SIGKILL); those tasks end as
cancelled (interrupted), tasks not started get no result, the manifest is written
with status interrupted, and fanout exits 128 plus the signal number. A second signal
kills at once. After a crash (kill -9) the run folder stays consistent: details files
and the manifest are written atomically, and the journal is read up to its last
complete line. fanout run --resume RUN runs, into RUN's folder, only the tasks with
no final result (and those an interrupt cancelled); --resume-failed RUN also re-runs
failed, timed-out, cancelled and error tasks. With no task source given, the task
list saved in RUN (tasks.jsonl) is used, when it is whole (its last line says so; a
stream cut short or a disk that filled while it was saved leaves a part of the list,
and then the source must be given again); given a source (an edited task file), its
tasks are matched to RUN's results by key (id, command and cwd): a changed task runs
again, a finished one does not. The options RUN was started with apply unless given
again. A run another fanout holds (its lock file) is refused.
"""),
    ("EXIT STATUS", """\
0 the verdict passed; 1 the verdict failed; 2 usage, option or task-file error;
74 an I/O error of fanout's own (disk or inodes full, a file-size limit, standard
output closed or full): one line names the path and the cause, the run stops, nothing
more is recorded, and --resume RUN later runs every task without a result (a saved
task list that is incomplete needs its source given again);
70 internal error (a bug; FANOUT_DEBUG=1 prints the traceback); 128 plus the signal
number when interrupted: 130 SIGINT, 143 SIGTERM, 129 SIGHUP, and 141 when standard
output's reader went away (fanout run | head): the run stops as for a signal.
fanout report: 0 the page was written (a warning names each line or file of the run
it could not read and left out, and the page says so too), 2 no such run or not a run
folder or a bad --output folder, 74 the page could not be written (never half a page).
"""),
    ("LIMITS", """\
Every number is checked before anything runs (exit 2, naming the value and its
range): --jobs 1-10000 (N%, +N, -N and 0 resolve within it); --nice -20 to 19; a
[run] shuf seed 0 to 2^63-1; --retries and a task's retries 0-100; --ok-exit codes 0-255;
--shard I/N and FANOUT_SHARD or CI variables with N 1-10000; --summary-chars
20-100000; --max-lines 1-1000000; --required-successes 1 and --min-successes 0 to
1000000000; --max-tokens 1-1000000; --temperature 0-2; --rate N/PERIOD[:BURST] with N
1-1000000, PERIOD more than 0 and at most 30d, BURST 1 to N; --http-retries 0-20;
--resources amounts more than 0 and at most 1000000; --grace, --retry-delay and
--delay 0-30d; --memfree 1 byte to 1P; --load more than 0 and at most 1000000;
--termseq at most 100 signals, its waits 0-30d each and at most 30d together;
--timeout, --deadline and a task's timeout 0 (no limit, as in GNU parallel) to 30d,
--timeout P% more than 0% and at most 100000%; clean --older-than up to 3650d.
Retry back-off doubles from --retry-delay up to 60 s, whatever the attempt count. A
task file may nest arrays and tables at most 32 deep and a dotted key may have at
most 32 parts, checked before the TOML is parsed.
"""),
    ("ENVIRONMENT", """\
FANOUT_OUTPUT_DIR sets the default --output-dir. FANOUT_PROVIDER and FANOUT_MODEL
set agent tasks' default provider and model; OPENAI_API_KEY, ANTHROPIC_API_KEY,
OPENAI_BASE_URL and ANTHROPIC_BASE_URL are read as the official SDKs read them,
except that a key never follows --base-url elsewhere (see AGENT TASKS).
NO_COLOR turns colour off; FORCE_COLOR turns it on when stdout is not a terminal.
FANOUT_DEBUG=1 prints tracebacks of internal errors. FANOUT_CHILD_WATCHER=sigchld uses the portable
SIGCHLD child watcher instead of Linux pidfds. Tasks start with os.posix_spawn on the event loop;
on Linux, while those starts take over 2 ms on average (the machine's CPUs are busy and
each child waits for one), they move to two launcher threads that call the C library's
posix_spawn without holding up the run, and back once starts are quick again.
FANOUT_SPAWN=loop or FANOUT_SPAWN=threads fixes the choice. Tasks get FANOUT_TASK_MARK
(Linux), by which fanout knows their descendants.
"""),
    ("EXAMPLES", """\
fanout run tasks.toml
fanout run tasks.toml -j 8 --timeout 5m --format aop
find . -name '*.py' | fanout run -- ruff check {}
fanout run --glob '*/' --ok-exit 0,1 --strategy partial-success -- rg -c TODO {}
fanout run -- 'gzip -c {} > {}.gz' ::: a.log b.log
fanout run -- echo {1}={2} ::: a b c :::+ 1 2 3
fanout run -k -- rg -n TODO {} ::: repos/* | sort
fanout run --colsep '\\t' --header : -- convert {src} {dst} :::: jobs.tsv
find . -name '*.py' | fanout run -X -- ruff check
fanout run searches.toml --ok-exit 0,1 --strategy partial-success --min-success-ratio 0.8
fanout run answers.toml --strategy majority-vote --vote-on 'ANSWER: (\\w+)'
git diff --name-only | fanout run --prompt 'Review {}' --attach {} --model gpt-4o-mini
fanout run --prompt 'Is {} prime?' --base-url http://127.0.0.1:8080/v1 --model m ::: 7 9
fanout run --agent-cli claude --prompt 'Summarise {}' --rate 30/min ::: docs/*.md
fanout run tests.toml --shard 2/4 --timings timings.json --junit junit-2.xml
fanout run -q --reduce 'jq -s length' -- wc -l ::: *.py
fanout run -j 1 --halt now,success=1 -- curl -fsSO {} ::: http://a.example/f http://b/f
fanout merge artifacts/ --junit report.xml --timings timings.json --timings-out timings.json
"""),
    ("SEE ALSO", "parallel(1), xargs(1)\n"),
]
