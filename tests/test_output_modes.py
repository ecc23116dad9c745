"""-k, --group, --line-buffer, --tag, --tagstring: the tasks' own output on fanout's
stdout and stderr, byte for byte as GNU parallel prints it (issue 16, part 1).

Each case of CASES runs the same options, command and values through GNU parallel and
`fanout run -q`, and compares stdout byte for byte, and stderr too (fanout's -q verdict
line, its last line on stderr, taken off). Cases whose order GNU parallel itself leaves
to timing run with -j 1 or -k. The rest test what the oracle cannot: that lines come
while a task still runs, that fanout's own lines move to stderr, memory, closed pipes."""

# ruff: noqa: E501  (the case table reads best one case per line)
from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fanout_cli.render import CI_VARIABLES
from tests.fake_llm import FakeLLM, fake_llm_fixture  # noqa: F401 -- the fixture, by name
from tests.helpers import (
    FANOUT,
    assert_clean,
    needs_parallel,
    one_error_line,
    run_fanout,
    write_tasks,
)
from tests.test_gnu_oracle import gnu_parallel

# Output that ends a task late or early, so that finishing order is not input order.
LATE_FIRST = "sleep 0.$((4 - {#})); echo out {}; echo err {} >&2"


@dataclass(frozen=True)
class Case:
    name: str
    options: tuple[str, ...]
    command: tuple[str, ...]  # the command, then ::: and its values
    stdin: bytes = b""


def case(name: str, options: str, *command: str, stdin: bytes = b"") -> Case:
    return Case(name, tuple(options.split()), command, stdin)


CASES = [
    case("-k keeps input order", "-k -j 3", LATE_FIRST, ":::", "a", "b", "c"),
    case("--group -j 1", "--group -j 1", "echo x{}; echo y{} >&2; printf z{}", ":::", "1", "2"),
    case("-k --tag, a last line without a newline", "-k --tag", 'printf "a\\nb"', ":::", "q", "r"),
    case("-k --tag, two sources", "-k --tag", "echo", "{1}", "{2}", ":::", "a", "b", ":::", "1", "2"),
    case("--tag tags stderr too", "-k --tag", "echo x; echo y >&2; printf z", ":::", "q"),
    case("--tag, carriage returns", "-k --tag", 'printf "a\\r\\nb\\rc"', ":::", "q", "r"),
    case("--tagstring", "-k --tagstring {1}-{#}", "echo", ":::", "a", "b", ":::", "1"),
    case("--tagstring {/.} {%}", "-j 1 -k --tagstring <{/.}:{%}>", "echo", ":::", "x/a.txt", "y/b.c"),
    case("-k -X --tag", "-k -X -j 2 --tag", "echo", ":::", "a", "b", "c", "d", "e"),
    case("-k --colsep --tag", "-k --tag --colsep ,", "echo", "{2}", ":::", "a,b", "c,d"),
    case("--lb -j 1 --tag", "--lb -j 1 --tag", 'printf "1\\n2"', ":::", "q", "r"),
    case("-k --lb", "-k --lb -j 3", LATE_FIRST, ":::", "a", "b", "c"),
    case("-k, no output", "-k", "true", ":::", "a", "b"),
    case("-k, empty lines", "-k --tag", 'printf "\\n\\n"', ":::", "a"),
    case("-k, binary output", "-k", "head -c 3000 /dev/urandom | od -An | head -3; printf '\\0\\377\\n'", ":::", "a", "b"),
    case("-k, 40 tasks that end in any order", "-k -j 8", "sleep 0.0$((RANDOM % 9)); seq {} 3 20", ":::", *map(str, range(1, 41))),
    case("-k --tag, a value with a space", "-k --tag", "echo", ":::", "a b", "it's"),
    case("--pipe -k --tag: no values, no tag", "--pipe -N1 -k --tag", "cat", stdin=b"1\n2\n3\n"),
    case("--pipe -k --tagstring {#}", "--pipe -N1 -k --tagstring b{#}", "cat", stdin=b"1\n2\n"),
]


@contextlib.contextmanager
def fanout_running(gate: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`fanout run -q ARGS` in the background, its stdout and stderr piped; on the way
    out the gate is opened (tasks wait for it to exist) and nothing is left running."""
    process = subprocess.Popen([str(FANOUT), "run", "-q", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        gate.touch()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def wait_for(gate: Path) -> str:
    """Shell words that wait until `gate` exists."""
    return f"while [ ! -e {gate} ]; do sleep 0.05; done"


def both(tmp_path: Path, c: Case) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    gnu = gnu_parallel(tmp_path, *c.options, *c.command, stdin=c.stdin)
    ours = subprocess.run([str(FANOUT), "run", "-q", *c.options, "--", *c.command], input=c.stdin,
                          capture_output=True, timeout=60, check=False, cwd=tmp_path)
    assert b"Traceback" not in ours.stderr, ours.stderr.decode()
    return gnu, ours


def without_verdict(stderr: bytes) -> bytes:
    """fanout's stderr with its -q verdict line (the last line) taken off."""
    head, _, last = stderr.rstrip(b"\n").rpartition(b"\n")
    assert last.startswith((b"PASS ", b"FAIL ")), stderr
    return head + b"\n" if head else b""


@needs_parallel
@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_prints_what_gnu_parallel_prints(tmp_path: Path, c: Case) -> None:
    gnu, ours = both(tmp_path, c)
    assert gnu.returncode == ours.returncode == 0, (gnu.stderr, ours.stderr)
    if "od -An" not in c.command[0] and "RANDOM" not in c.command[0]:
        assert gnu.stdout or gnu.stderr or c.name == "-k, no output"
        assert ours.stdout == gnu.stdout
    else:  # random bytes: the same shape (each task's three lines and its last bytes)
        assert ours.stdout.count(b"\n") == gnu.stdout.count(b"\n")
        assert ours.stdout.count(b"\0\377\n") == gnu.stdout.count(b"\0\377\n") or "RANDOM" in c.command[0]
        if "RANDOM" in c.command[0]:
            assert ours.stdout == gnu.stdout  # seq's output: the order is the test
    if "--lb" in c.options and "-j" in c.options and "1" not in c.options:
        return  # stderr lines of live tasks come in timing's order
    assert without_verdict(ours.stderr) == gnu.stderr


@needs_parallel
def test_a_retried_task_prints_only_its_last_attempt_but_line_buffer_prints_both(tmp_path: Path) -> None:
    script = f"echo try {{}}; [ -e {tmp_path}/{{}}.once ] || {{ touch {tmp_path}/{{}}.once; exit 1; }}"
    for options in (("-k",), ("--group",), ("--lb",)):
        for path in tmp_path.glob("*.once"):
            path.unlink()
        gnu = gnu_parallel(tmp_path, "--retries", "2", *options, script, ":::", "a")
        for path in tmp_path.glob("*.once"):
            path.unlink()
        ours = subprocess.run([str(FANOUT), "run", "-q", "--retries", "1", "--retry-delay", "0",
                               *options, "--", script, ":::", "a"],
                              capture_output=True, timeout=60, check=False)
        assert ours.returncode == 0, ours.stderr
        if options == ("--lb",):
            # GNU parallel prints a failed attempt's lines under --lb only when it read
            # them before the attempt ended (timing); fanout always does.
            assert ours.stdout == b"try a\ntry a\n"
        else:
            assert ours.stdout == gnu.stdout == b"try a\n", options


def test_fanout_s_own_lines_go_to_stderr_and_stdout_is_the_data(tmp_path: Path) -> None:
    completed = subprocess.run([str(FANOUT), "run", "-k", "--", "echo {}; echo {}{}"],
                               input=b"b\na\n", capture_output=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"b\nbb\na\naa\n"
    stderr = completed.stderr.decode()
    assert "PASS all-succeed" in stderr.splitlines()[-1]
    assert sum(line.startswith("success") for line in stderr.splitlines()) == 2  # a line a task
    piped = subprocess.run(f"printf 'a\\nb\\n' | {FANOUT} run -- 'echo {{}}; echo {{}}{{}}' | sort",
                           shell=True, capture_output=True, timeout=60, check=False)
    assert b"success" in piped.stdout  # the default is unchanged: summaries on stdout


def test_line_buffer_prints_a_line_while_its_task_still_runs(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    command = f"echo first {{}}; {wait_for(gate)}; echo second {{}}"
    with fanout_running(gate, "--lb", "--tag", "--", command, ":::", "x") as process:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until fanout prints it
        assert line == b"x\tfirst x\n"
        assert process.poll() is None, "the task is still running: the line came as it was written"
        gate.touch()
        rest, errors = process.communicate(timeout=30)
        assert rest == b"x\tsecond x\n", errors
        assert process.returncode == 0


def test_keep_order_streams_a_finished_task_while_the_one_before_it_has_printed(tmp_path: Path) -> None:
    """-k prints the first task's output as soon as it ends, while later tasks run."""
    gate = tmp_path / "gate"
    command = f"if [ {{}} = 2 ]; then {wait_for(gate)}; fi; echo {{}}"
    with fanout_running(gate, "-k", "-j", "3", "--", command, ":::", "1", "2", "3") as process:
        assert process.stdout is not None
        assert process.stdout.readline() == b"1\n"
        assert process.poll() is None  # 2 still runs; 3 has ended and waits its turn
        gate.touch()
        rest, _ = process.communicate(timeout=30)
        assert rest == b"2\n3\n"


def test_memory_stays_flat_for_a_large_output(tmp_path: Path) -> None:
    """-k and --lb print 200 MB of output read back from the run folder, never held."""
    probe = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    for mode in ("-k", "--lb"):
        command = [sys.executable, "-c", probe, str(FANOUT), "run", "-q", mode, "--",
                   "true {}; head -c 200000000 /dev/zero | tr '\\0' x | fold -w 100", ":::", "a"]
        completed = subprocess.run(command, capture_output=True, timeout=120, check=True)
        max_rss_kib = int(completed.stdout)
        assert max_rss_kib < 120_000, (mode, max_rss_kib)  # fanout's whole run; the output is 200 MB


def test_a_closed_stdout_stops_the_run_as_sigpipe(tmp_path: Path) -> None:
    completed = subprocess.run(f"{FANOUT} run -k -- 'seq 1 200000' ::: 1 2 3 4 5 6 7 8 | head -1",
                               shell=True, capture_output=True, timeout=60, check=False)
    assert completed.stdout == b"1\n"
    assert b"Traceback" not in completed.stderr and b"internal error" not in completed.stderr


def test_machine_formats_refuse_the_output_modes() -> None:
    for mode in ("-k", "--group", "--lb", "--tag", "--tagstring=x"):
        for fmt in ("json", "aop", "jsonl"):
            line = one_error_line(run_fanout("run", mode, "--format", fmt, "--", "echo", ":::", "a"),
                                  no_run_folder=True)
            assert "prints the tasks' output on stdout" in line and fmt in line, line


def test_a_tagstring_with_a_replacement_string_fanout_lacks_is_exit_2() -> None:
    line = one_error_line(run_fanout("run", "--tagstring", "{= $_ =}", "--", "echo", ":::", "a"),
                          no_run_folder=True)
    assert "--tagstring" in line


def test_a_task_file_sets_the_modes_and_a_task_without_values_is_tagged_with_its_id(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.toml", """
[run]
keep_order = true
tag = true
jobs = 2

[[task]]
id = "slow"
cmd = "sleep 0.3; echo one"

[[task]]
id = "fast"
cmd = ["echo", "two"]
""")
    completed = subprocess.run([str(FANOUT), "run", "-q", str(tasks)], capture_output=True,
                               timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"slow\tone\nfast\ttwo\n"


def test_resume_prints_the_tasks_it_runs(tmp_path: Path) -> None:
    first = run_fanout("run", "-q", "--", "sh", "-c", 'echo {}; [ {} != b ] || [ -e "$0" ]', str(tmp_path / "ok"), ":::", "a", "b")
    assert first.returncode == 1
    (tmp_path / "ok").touch()
    again = subprocess.run([str(FANOUT), "run", "-q", "-k", "--resume-failed", "last"],
                           capture_output=True, timeout=60, check=False,
                           env={**os.environ})
    assert again.returncode == 0, again.stderr
    assert again.stdout == b"b\n"  # a's result stands and is not printed again


def test_live_progress_goes_to_stderr_only_when_stdout_is_not_that_terminal() -> None:
    from fanout_cli.options import OutputOptions
    from fanout_cli.render import progress_mode

    shown = OutputOptions(keep_order=True)
    assert progress_mode(shown, {}, stderr_terminal=True, stdout_same_terminal=False) == "terminal"
    assert progress_mode(shown, {}, stderr_terminal=True, stdout_same_terminal=True) == "off"
    assert progress_mode(shown, {"CI": "1"}, stderr_terminal=True, stdout_same_terminal=False) == "off"
    assert progress_mode(shown, {}, stderr_terminal=False, stdout_same_terminal=False) == "off"
    assert progress_mode(OutputOptions(), {}, True, False) == "off"  # the default: as before


def test_rusage_probe_counts_children() -> None:
    """The memory test above reads fanout's peak through RUSAGE_CHILDREN: it must see one."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", "b = bytearray(64 << 20)"], check=True)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >= max(before, 60_000)
    assert_clean(run_fanout("run", "-q", "--", "true", ":::", "a"))


def test_ctrl_c_prints_what_the_tasks_printed_and_exits_130(tmp_path: Path) -> None:
    command = "echo {}; if [ {} = 2 ]; then sleep 60; fi"
    with fanout_running(tmp_path / "gate", "-k", "-j", "3", "--grace", "1s", "--", command,
                        ":::", "1", "2", "3") as process:  # fmt: skip
        assert process.stdout is not None
        assert process.stdout.readline() == b"1\n"
        time.sleep(0.5)  # 3 ends meanwhile; 2 sleeps
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
        assert process.returncode == 130, errors
        assert rest == b"2\n3\n"  # the cancelled task's output too, then the one after it
        assert b"Traceback" not in errors


def test_live_progress_draws_on_a_terminal_stderr_while_stdout_is_a_pipe(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    env = {name: value for name, value in os.environ.items() if name not in CI_VARIABLES}
    env |= {"TERM": "xterm", "COLUMNS": "100", "CI": "false"}
    command = [str(FANOUT), "run", "-k", "--", "sleep 1; echo out {}; echo err {} >&2", ":::", "a", "b"]
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env) as process:
            os.close(follower)
            terminal = b""
            while True:
                ready = select.select([leader], [], [], 0.2)[0]
                if ready:
                    try:
                        chunk = os.read(leader, 65536)
                    except OSError:  # the terminal's last writer went away
                        break
                    terminal += chunk
                elif process.poll() is not None:
                    break
            stdout, _ = process.communicate(timeout=30)
        assert stdout == b"out a\nout b\n"  # clean data
        assert process.returncode == 0
        assert b"0/2 0%" in terminal, terminal  # the live area drew on stderr
        assert b"err a" in terminal and b"err b" in terminal  # the tasks' stderr
        assert b"PASS all-succeed" in terminal  # and the verdict
    finally:
        os.close(leader)


def test_agent_replies_are_printed_in_order_each_ending_its_line(fake_llm: FakeLLM) -> None:
    completed = subprocess.run(
        [str(FANOUT), "run", "-q", "-k", "--tag", "--prompt", "Say {}", "--base-url", fake_llm.openai_url,
         "--model", "m", ":::", "a", "b", "c"],
        capture_output=True, timeout=60, check=False,
        env={**os.environ, **fake_llm.env(), "OPENAI_API_KEY": "sk-test"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"a\techo: Say a\nb\techo: Say b\nc\techo: Say c\n"


@needs_parallel
def test_failed_tasks_print_their_output_too(tmp_path: Path) -> None:
    command = ("echo out {}; echo err {} >&2; exit {}", ":::", "0", "3", "0")
    gnu = gnu_parallel(tmp_path, "-k", *command)
    ours = subprocess.run([str(FANOUT), "run", "-q", "-k", "--", *command], capture_output=True,
                          timeout=60, check=False)
    assert gnu.returncode == ours.returncode == 1
    assert ours.stdout == gnu.stdout == b"out 0\nout 3\nout 0\n"
    assert without_verdict(ours.stderr) == gnu.stderr


def test_line_buffer_prints_a_line_with_no_end_once_it_reaches_the_cap(tmp_path: Path) -> None:
    from fanout_cli.render.outputs import LINE_CAP

    gate = tmp_path / "gate"
    size = 3 * LINE_CAP
    command = f"true {{}}; head -c {size} /dev/zero | tr '\\0' x; {wait_for(gate)}; echo"
    with fanout_running(gate, "--lb", "--", command, ":::", "a") as process:
        assert process.stdout is not None
        got = b""
        while len(got) < LINE_CAP:  # the task is blocked on the gate: this came by the cap
            chunk = os.read(process.stdout.fileno(), 1 << 20)
            assert chunk, "fanout ended before it printed the capped line"
            got += chunk
        assert process.poll() is None and set(got) == {ord("x")}
        gate.touch()
        rest, _ = process.communicate(timeout=30)
        assert got + rest == b"x" * size + b"\n"  # every byte once, in order


def test_a_reduce_s_output_follows_the_tasks_output_on_stdout(tmp_path: Path) -> None:
    completed = subprocess.run([str(FANOUT), "run", "-q", "-k", "--reduce", "wc -l | tr -d ' '", "--",
                                "echo", ":::", "a", "b"], capture_output=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == b"a\nb\n2\n"  # the tasks' output, then the reduce's (2 JSON lines)
    assert completed.stderr.decode().startswith("PASS all-succeed")  # -q: the verdict, on stderr
