"""GNU parallel is the oracle for fanout's input model (issue 15).

Each case of CASES runs the same options, command and inputs through
`parallel -k --dry-run` and `fanout run --dry-run` and compares their stdout byte for
byte. Each case of REAL_CASES runs both for real, with a command that reports the
arguments it was given, and compares the argument lists of every task, in order.

Where fanout differs from GNU parallel on purpose, the case is in DIFFERENCES with its
reason: there fanout's own documented behaviour is asserted, and that GNU parallel
still does otherwise. (The differences that were fanout bugs are fixed, and are ordinary
cases now: -X repeating a word of only {#}, and --header names {name} cannot spell.)

The oracle is /usr/bin/parallel 20221122 (Debian bookworm's; CI installs it). Tests that
need it skip when it is missing; the fanout half of DIFFERENCES runs everywhere."""

# ruff: noqa: E501  (the case tables read best one case per line, as the benchmarks' tables)
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import FANOUT, PARALLEL, assert_clean, needs_parallel, one_error_line, run_fanout

ORACLE_VERSION = "20221122"  # the GNU outputs quoted in DIFFERENCES are this version's

# A command that reports its arguments: each one as A<arg>NUL, then E NUL. It needs no
# quoting in a shell line, so GNU parallel and fanout run it the same way.
ARGV_SCRIPT = "#!/bin/sh\nfor a in \"$@\"; do printf 'A%s\\0' \"$a\"; done\nprintf 'E\\0'\n"

FILES = {
    "names.txt": "a.txt\nb c.txt\n",
    "numbers.txt": "1\n2\n3\n",
    "jobs.tsv": "src\tdst\na.png\ta.webp\nb c.png\tb.webp\n",
    "jobs.csv": "src,dst\na.png,a.webp\n$x.png,'q'.webp\n",
    "gaps.txt": "a\n\nb\n",
    "people.csv": "first name,age\nann,3\nbob,4\n",
    "twice.csv": "x,x\n1,2\n",
}
HOSTILE = ["it's", "a b", "*", "$x", "", "-n", 'a"b', "x\\y", "`id`", "$(touch pwned)", "é€😀"]
ASCII_HOSTILE = [value for value in HOSTILE if value.isascii()]
PATHS = ["/a/b.c/d.e", "x", "y.z", "./q", "dir/", ".hidden", "a.b.c", "/"]
# Every byte but NUL, alone and in company, as -0 stdin values: both tools quote each alike.
EVERY_BYTE = b"".join(bytes([byte]) + b"\0" for byte in range(1, 256)) + b"a\x01b\0\xff\xfe\0x\ry\0~x\0a=b\0#a\0"
COLUMN_ROWS = ["x  y z", "p|q|r", "a,,b", "c:d;e", "u.v.w", "t\ts", "", ",", "a"]
ELEVEN = [str(n) for n in range(1, 12)]
THIRTY = [str(n) for n in range(1, 31)]


@dataclass(frozen=True)
class Case:
    name: str
    command: tuple[str, ...]  # the command and its sources, as both tools take them
    options: tuple[str, ...] = ()  # before the command (fanout: before --)
    stdin: bytes = b""


def case(name: str, *command: str, options: str | tuple[str, ...] = (), stdin: bytes = b"") -> Case:
    words = tuple(options.split()) if isinstance(options, str) else options
    return Case(name, command, words, stdin)


CASES = [
    # several sources
    case("two sources", "echo", "{1}", "{2}", ":::", "a", "b", ":::", "c", "d"),
    case("three sources, all appended", "echo", ":::", "a", "b", ":::", "c", "d", ":::", "e", "f"),
    case("three sources, reordered", "echo", "{3}", "{1}", "{2}", ":::", "a", "b", ":::", "c", ":::", "e", "f"),
    case(":::+ shortest decides", "echo", "{1}-{2}", ":::", "a", "b", "c", ":::+", "1", "2"),
    case(":::+ after a product", "echo", "{1}{2}{3}", ":::", "a", "b", ":::", "c", "d", ":::+", "1", "2"),
    case("--link wraps", "echo", "{1}-{2}", ":::", "a", "b", "c", ":::", "1", "2", options="--link"),
    case("--link three", "echo", ":::", "a", "b", "c", "d", ":::", "1", "2", ":::", "x", options="--link"),
    case(":::: two files", "echo", "{1}", "{2}", "::::", "names.txt", "numbers.txt"),
    case("::::+ linked files", "echo", "{2}", "{1}", "::::", "names.txt", "::::+", "numbers.txt"),
    case(":::: then :::", "echo", ":::", "p", "q", "::::", "numbers.txt"),
    case("-a before :::", "echo", "{1}", "{2}", ":::", "p", "q", options="-a names.txt"),
    case("-a twice", "echo", options="-a names.txt -a numbers.txt"),
    case(":::: - is stdin", "echo", "{1}", "{2}", "::::", "-", ":::", "x", "y", stdin=b"a\nb c\n"),
    case("stdin after :::", "echo", "{1}", "{2}", ":::", "x", "y", "::::", "-", stdin=b"a\nb\n"),
    case("-a - is stdin", "echo", ":::", "x", "y", options="-a -", stdin=b"a\nb\n"),
    case("stdin alone", "echo", "{}", stdin=b"a b\n*\n"),
    case("-0 stdin", "echo", options="-0", stdin=b"a\nb\0c d\0"),
    case("-0 stdin, every byte", "echo", options="-0", stdin=EVERY_BYTE),
    case("-0 stdin, every byte, -m", "echo", options="-0 -m -j 3", stdin=EVERY_BYTE),
    # replacement strings
    case("modifiers of one source", "echo", "{1}", "{1.}", "{1/}", "{1//}", "{1/.}", ":::", *PATHS),
    case("modifiers of two sources", "echo", "{1.}", "{2/.}", "{2//}", ":::", "a/b.c", "d", ":::", "/e/f.g", "h.i"),
    case("{} of a combination", "echo", "{}", ":::", "a b", "c", ":::", "d", "e f"),
    case("{} inside a word", "echo", "x{}y", ":::", "a b", ":::", "c"),
    case("{.} {/} {//} {/.} of a combination", "echo", "{.}", "{/}", "{//}", "{/.}", ":::", "a/b.c", ":::", "d/e.f"),
    case("no replacement string", "echo", "-n", ":::", "a b", "-e", ":::", "c"),
    case("{#} {%}", "echo", "{#}", "{%}", "{1}", ":::", "a", "b", ":::", "c", "d", options="-j 1"),  # GNU's {%} with -j 2 varies run to run
    case("{} twice in a word", "echo", "{}{}", "a{}b{}c", ":::", "x", "y"),
    # values
    case("hostile values", "echo", "{}", ":::", *HOSTILE),
    case("hostile values appended", "printf", "%s", ":::", *HOSTILE),
    case("hostile values in two sources", "echo", "{2}", "{1}", ":::", *HOSTILE[:5], ":::", *HOSTILE[5:]),
    case("leading dashes", "echo", "{}", ":::", "-n", "-", "--", "--foo=bar", "-e"),
    case("empty values", "echo", "{1}", "x{2}y", ":::", "", "a", ":::", ""),
    case("hostile values in a file", "echo", "{}", "::::", "jobs.csv"),
    # columns and headers
    case("--colsep tab", "echo", "{2}-{1}", "::::", "jobs.tsv", options=("--colsep", "\t")),
    case("--colsep ,", "echo", "{2}-{1}", "::::", "jobs.csv", options="--colsep ,"),
    case("--colsep , appended", "echo", ":::", "a,b", "c,d", "e", options="--colsep ,"),
    case("--colsep , {}", "echo", "{}", ":::", "a,b", "c,d", options="--colsep ,"),
    case("--colsep a regex", "echo", "{3}{2}{1}", ":::", "a;b,c", options=("--colsep", "[,;]")),
    *[case(f"--colsep {separator!r}", "echo", "{1}/{2}/{3}", ":::", *COLUMN_ROWS, options=("--colsep", separator))
      for separator in (" ", r"\s+", r"\|", ",+", "[:;]", r"\t", "a", ".")],
    case("--header : with a tsv", "echo", "{dst}", "{src}", "::::", "jobs.tsv", options=("--colsep", "\t", "--header", ":")),
    case("--header : with a csv", "echo", "{dst}={src}", "::::", "jobs.csv", options="--colsep , --header :"),
    case("-X repeats only words around a value", "echo", "{#}", "x{}y", ":::", "a", "b", "c", options="-X -j 1"),
    case("--header : names {name} cannot spell", "echo", "{2}", "{1}", "::::", "people.csv", options="--header : --colsep ,"),
    case("--header : with ::: lists", "echo", "{x}-{y}", ":::", "x", "1", "2", ":::", "y", "a b", options="--header :"),
    # several values in one command
    *[case(f"-X -j {jobs}", "echo", "x{}y", ":::", *ELEVEN, options=f"-X -j {jobs}") for jobs in (1, 2, 3, 4)],
    *[case(f"-m -j {jobs}", "echo", ":::", *ELEVEN, options=f"-m -j {jobs}") for jobs in (1, 2, 3, 4)],
    *[case(f"-X -s {size} -j {jobs}", "echo", "p{}q", ":::", *THIRTY, options=f"-X -s {size} -j {jobs}")
      for size in (20, 40) for jobs in (1, 3)],
    *[case(f"-m -s {size} -j {jobs}", "echo", ":::", *THIRTY, options=f"-m -s {size} -j {jobs}")
      for size in (20, 40) for jobs in (1, 3)],
    *[case(f"-m -s {size} hostile", "echo", ":::", *ASCII_HOSTILE, options=f"-m -s {size} -j 1")
      for size in (25, 30, 40)],
    *[case(f"-X -s {size} hostile", "echo", "p{}q", ":::", *ASCII_HOSTILE, options=f"-X -s {size} -j 3")
      for size in (25, 30, 40)],
    case("-X two contexts", "echo", "{}", "x{}y", ":::", "a", "b c", "d", options="-X -s 30 -j 1"),
    case("-X {} of combinations", "echo", "x{}y", ":::", "a", "b", ":::", "c", "d", options="-X -j 2"),
    case("-m combinations", "echo", ":::", "a", "b", ":::", "c", "d", options="-m -j 1"),
    case("-m hostile", "echo", ":::", *HOSTILE, options="-m -j 2"),
    case("-N 2 full batches", "echo", "{2}", "{1}", ":::", "1", "2", "3", "4", options="-N 2"),
    case("-N 2 short last batch, appended", "echo", ":::", "1", "2", "3", options="-N 2"),
    case("-N 3 short last batch, {}", "echo", "{}", ":::", "1", "2", "3", "4", "5", options="-N 3"),
    case("-N 2 -s 10", "echo", ":::", "aaaa", "bbbb", "cccc", options="-N 2 -s 10"),
    # a {n} with no value is empty text: a word of it alone passes no argument
    case("-N 2 short last batch", "echo", "{1}", "{2}", ":::", "1", "2", "3", options="-N 2"),
    case("-N 3 short last batch", "echo", "{3}", "x{3}y", "{1}", ":::", "1", "2", "3", "4", options="-N 3"),
    case("--colsep missing column", "echo", "{1}", "{3}", "x{3}y", ":::", "a,b", "c,d,e", options="--colsep ,"),
    # -s counts bytes, as the kernel's limit does
    case("-m -s counts bytes", "echo", ":::", "é", "€", "ab", "éé", "cd", "e", options="-m -s 22 -j 1"),
    case("-X -s counts bytes", "echo", "x{}", ":::", "é", "€", "ab", "éé", "cd", "e", "😀", options="-X -s 25 -j 1"),
    # words that are shell operators: the command runs under sh -c, as GNU parallel runs it
    case("'>' word", "echo", "{}", ">", "out-{#}.txt", ":::", "a b"),
    case("'|' word", "echo", "{}", "|", "tr", "a", "b", ":::", "a$x"),
    case("&& word", "true", "&&", "echo", "{}", ":::", "it's"),
    case("assignment word", "a={};", "echo", "$a", ":::", "v w"),
    case("exit built-in", "exit", "{}", ":::", "0"),
    case("one shell word", "echo {} | cat", ":::", "a b", "$(id)"),
]

REAL_CASES = [
    case("two sources", "{1}", "{2}", ":::", "a b", "$(id)", ":::", "", "it's"),
    case("three sources", ":::", "a", "b", ":::", "c", ":::", "e", "f"),
    case(":::+", "{1}-{2}", ":::", "a", "b", "c", ":::+", "1", "2"),
    case("--link", "{2}", ":::", "a", "b", "c", ":::", "1", "2", options="--link"),
    case(":::: and -a", "{1}", "{2}", "{3}", "::::", "names.txt", ":::", "p", options="-a numbers.txt"),
    case(":::: - is stdin", "{1}", "{2}", "::::", "-", ":::", "x", stdin=b"a\n$b c\n"),
    case("modifiers", "{1.}", "{1/}", "{1//}", "{1/.}", "{2/.}", ":::", *PATHS, ":::", "u/v.w"),
    case("{} of a combination", "x{}y", "{}", ":::", "a b", "*", ":::", "c d"),
    case("no replacement string", ":::", *HOSTILE[:4], ":::", *HOSTILE[4:6]),
    case("hostile values", "{}", "@{}@", ":::", *HOSTILE),
    case("every byte", "{}", "x{}", options="-0", stdin=EVERY_BYTE),
    case("-X", "@{}@", ":::", *HOSTILE, options="-X -j 3"),
    case("-m", ":::", *HOSTILE, options="-m -j 2"),
    case("-X -s", "p{}q", ":::", *THIRTY, options="-X -s 40 -j 2"),
    case("-N 3", "{3}", "{1}", "{2}", ":::", *HOSTILE[:9], options="-N 3"),
    case("--colsep", "{2}", "{1}", "::::", "jobs.csv", options="--colsep ,"),
    case("--colsep a regex", "{1}", "{3}", "{2}", ":::", *COLUMN_ROWS, options=("--colsep", r"\s+")),
    # words that are shell operators: both run the line under a shell
    case("'|' word", "{}", "|", "cat", ":::", "a b", "it's"),
    case("&& word", "./argv.sh", "{1}", "&&", "./argv.sh", "{2}", ":::", "a b", ":::", "$(touch pwned)"),
    case("'||' word", "{}", "||", "true", ":::", "x"),
    case("assignment word", "a={};", "./argv.sh", '"$a"', ":::", "x y", "it's"),
    case("'>' word", "{}", ">", "/dev/stdout", ":::", "q r"),
    case("'2>&1' word", "{}", "2>&1", ":::", "1"),
    case("--header :", "{dst}", "{src}", "::::", "jobs.tsv", options=("--colsep", "\t", "--header", ":")),
]


@dataclass(frozen=True)
class Difference:
    case: Case
    reason: str
    gnu_stdout: str  # what GNU parallel 20221122 prints for `--dry-run`
    fanout_stdout: str | None = None  # fanout's --dry-run output, when it runs
    fanout_error: str | None = None  # else: exit 2 and one line that contains this


UNSUPPORTED = "is not a replacement string fanout supports"
DIFFERENCES = [
    Difference(case("empty line on stdin", "echo", stdin=b"a\n\nb\n"),
               "fanout skips empty lines of stdin and :::: files (an empty value is written with :::)",
               "echo a\necho ''\necho b\n", "echo a\necho b\n"),
    Difference(case("empty line in a :::: file", "echo", "::::", "gaps.txt"),
               "the same for a :::: file", "echo a\necho ''\necho b\n", "echo a\necho b\n"),
    Difference(case("{3} with two sources", "echo", "{3}", ":::", "a", ":::", "b"),
               "a positional beyond the sources is refused, not made empty", "echo \n",
               fanout_error=f"{{3}} {UNSUPPORTED}"),
    Difference(case("{0}", "echo", "{0}", ":::", "a"), "{0} is not a replacement string fanout knows",
               "echo a\n", fanout_error=f"{{0}} {UNSUPPORTED}"),
    Difference(case("{..}", "echo", "{..}", ":::", "a.b.c"), "GNU 20221122 prints {..} literally",
               "echo {..} a.b.c\n", fanout_error=f"{{..}} {UNSUPPORTED}"),
    Difference(case("{+/}", "echo", "{+/}", ":::", "a/b"), "GNU 20221122 prints {+/} literally",
               "echo {+/} a/b\n", fanout_error=f"{{+/}} {UNSUPPORTED}"),
    Difference(case("{= perl =}", "echo", "{= $_ =}", ":::", "a"), "fanout runs no perl",
               "echo a\n", fanout_error=f"{{= $_ =}} {UNSUPPORTED}"),
    Difference(case("{-1}", "echo", "{-1}", ":::", "a", ":::", "b"), "counting from the end is not supported",
               "echo b\n", fanout_error=f"{{-1}} {UNSUPPORTED}"),
    Difference(case("{##}", "echo", "{##}", ":::", "a", "b"),
               "GNU 20221122 does not know {##} and prints it literally; fanout: the number of tasks",
               "echo {##} a\necho {##} b\n", "echo 2\necho 2\n"),
    Difference(case("{{}} is a literal {}", "echo", "{{}}", ":::", "a"),
               "doubling the braces is fanout's way to write a literal brace pair",
               "echo {a}\n", "echo '{}' a\n"),
    Difference(case("template words with shell syntax", "echo", "a b", "*", "{foo}", ":::", "v"),
               "several words run without a shell: fanout passes them literally and quotes them on --dry-run",
               "echo a b * {foo} v\n", "echo 'a b' '*' '{foo}' v\n"),
    Difference(case("-N with two sources", "echo", "{1}", ":::", "a", "b", ":::", "c", options="-N 2"),
               "-N groups the values of one source; fanout refuses several sources (GNU's "
               "-N 2 takes two combinations and {1} is the first one's first value)",
               "echo a\n", fanout_error="-N groups the values of one input source"),
    Difference(case("-N with --colsep", "echo", "{2}", ":::", "a,b", "c,d", options="--colsep , -N 1"),
               "the same with columns: fanout refuses -N with --colsep (use -m or -X)",
               "echo b\necho d\n", fanout_error="-N groups the values of one input source"),
    Difference(case("{2} with -N 1", "echo", "{1}", "{2}", ":::", "a", "b", options="-N 1"),
               "a positional beyond -N is refused, as one beyond the sources", "echo a \necho b \n",
               fanout_error=f"{{2}} {UNSUPPORTED}"),
    Difference(case("newline in a ::: value", "echo", ":::", "new\nline", "x"),
               "GNU 20221122 splits a ::: value at a newline into two values; fanout keeps it whole",
               "echo new\necho line\necho x\n", "echo 'new\nline'\necho x\n"),
    Difference(case("{} in double quotes in one shell word", 'echo "{}"', ":::", "x y"),
               "GNU puts its quoted value inside the double quotes (the task prints the quotes); "
               "fanout passes the value as a positional parameter, so the task prints x y",
               "echo \"'x y'\"\n", "set -- 'x y'; echo \"${1+\"$1\"}\"\n"),
    Difference(case("-X with text around {} in one shell word", 'printf "%s\\0" x{}y', ":::", "a b", "c", options="-X -j 1"),
               "under sh -c fanout keeps values out of the script text, so it cannot repeat the text around {}: "
               "it refuses and says to put {} as a word of its own or use -m",
               "printf \"%s\\0\" x'a b'y xcy\n", fanout_error="-X repeats the text around {} for each value"),
    Difference(case("--header : with a name twice", "echo", "{1}", "::::", "twice.csv", options="--header : --colsep ,"),
               "issue 15: a duplicate --header name is bad input (exit 2); GNU parallel takes the first",
               "echo 1\n", fanout_error="the column name 'x' appears twice"),
    Difference(case("';' '(' ')' words", "find", ".", "-name", "{}", "-exec", "echo", "{}", ";", "(", ")", ":::", "x"),
               "fanout keeps ; ( ) ! as arguments (find -exec ... ';' is the usual reason to write one); "
               "GNU parallel's shell reads them as operators",
               "find . -name x -exec echo x ; ( )\n", "find . -name x -exec echo x ';' '(' ')'\n"),
    Difference(case("{1} under -X", "echo", "x{1}y", ":::", "a", "b", "c", options="-X -j 1"),
               "GNU 20221122 reads {n} under -m/-X as the nth value of the batch and silently drops "
               "the rest of the batch (b and c never run); fanout reads {1} as the first column of "
               "every value", "echo xay\n", "echo xay xby xcy\n"),
    Difference(case("{2} under -m", "echo", "{2}", ":::", "a", "b", ":::", "c", "d", options="-m -j 1"),
               "the same: GNU takes the second value of the batch; fanout the second column of each",
               "echo c\n", "echo c d c d\n"),
]

def gnu_parallel(
    tmp_path: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """GNU parallel as the oracle: its own HOME (it keeps files in ~/.parallel)."""
    home = tmp_path / "gnu-home"
    home.mkdir(exist_ok=True)
    assert PARALLEL is not None
    return subprocess.run([PARALLEL, *args], input=stdin, capture_output=True, timeout=60,
                          env={**os.environ, "HOME": str(home)}, cwd=tmp_path, check=False)


def fanout(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(FANOUT), "run", *args], input=stdin, capture_output=True,
                          timeout=60, check=False)


def write_files(folder: Path) -> None:
    for name, text in FILES.items():
        (folder / name).write_text(text)


def both_dry_runs(tmp_path: Path, case: Case) -> tuple[bytes, bytes]:
    write_files(tmp_path)
    gnu = gnu_parallel(tmp_path, "-k", "--dry-run", *case.options, *case.command, stdin=case.stdin)
    assert gnu.returncode == 0, gnu.stderr.decode()
    ours = fanout("--dry-run", *case.options, "--", *case.command, stdin=case.stdin)
    assert ours.returncode == 0, ours.stderr.decode()
    assert b"Traceback" not in ours.stderr
    return gnu.stdout, ours.stdout


@needs_parallel
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_dry_run_prints_what_gnu_parallel_prints(tmp_path: Path, case: Case) -> None:
    gnu, ours = both_dry_runs(tmp_path, case)
    assert gnu, "the oracle printed nothing: the case tests nothing"
    assert ours == gnu


@needs_parallel
def parse_argv_records(output: bytes) -> list[list[str]]:
    """ARGV_SCRIPT's output: one argument list per task run."""
    tasks: list[list[str]] = []
    current: list[str] = []
    for record in output.split(b"\0")[:-1]:
        if record == b"E":
            tasks.append(current)
            current = []
        else:
            assert record.startswith(b"A"), output
            current.append(os.fsdecode(record[1:]))
    assert not current and output.endswith(b"E\0"), output
    return tasks


def fanout_argv_lists(run_folder: Path) -> list[list[str]]:
    """Each task's arguments, in task order (the files are named by sequence number)."""
    outputs = sorted(run_folder.glob("*/*.stdout"))
    return [task for path in outputs for task in parse_argv_records(path.read_bytes())]


def run_both_for_real(tmp_path: Path, case: Case) -> tuple[list[list[str]], list[list[str]]]:
    write_files(tmp_path)
    script = tmp_path / "argv.sh"  # run as ./argv.sh: -s then counts no temporary path
    script.write_text(ARGV_SCRIPT)
    script.chmod(0o755)
    # The command is ./argv.sh and the case's words, unless the case names ./argv.sh
    # itself in its first two words (after an assignment, or before a shell operator).
    command = case.command if "./argv.sh" in case.command[:2] else ("./argv.sh", *case.command)
    gnu = gnu_parallel(tmp_path, "-k", *case.options, *command, stdin=case.stdin)
    assert gnu.returncode == 0, gnu.stderr.decode()
    ours = run_fanout("run", "-q", *case.options, "--", *command, input=case.stdin)
    assert ours.returncode == 0, ours.stderr
    return parse_argv_records(gnu.stdout), fanout_argv_lists(ours.output_dir)


@needs_parallel
@pytest.mark.parametrize("case", REAL_CASES, ids=[c.name for c in REAL_CASES])
def test_tasks_get_the_arguments_gnu_parallel_gives(tmp_path: Path, case: Case) -> None:
    gnu, ours = run_both_for_real(tmp_path, case)
    assert gnu, "the oracle ran nothing: the case tests nothing"
    assert ours == gnu
    assert not (tmp_path / "pwned").exists()


@needs_parallel
@pytest.mark.parametrize(("given", "expected"), [
    (case("-N 2", "{1}", "{2}", ":::", "1", "2", "3", options="-N 2"), [["1", "2"], ["3"]]),
    (case("--colsep", "{1}", "{3}", ":::", "a,b", options="--colsep ,"), [["a"]]),
], ids=["-N 2 short last batch", "--colsep missing column"])
def test_a_missing_value_passes_no_empty_argument(
    tmp_path: Path, given: Case, expected: list[list[str]]
) -> None:
    gnu, ours = run_both_for_real(tmp_path, given)
    assert gnu == expected
    assert ours == gnu


@needs_parallel
def test_a_value_longer_than_s_is_refused(tmp_path: Path) -> None:
    """GNU parallel stops with 'Command line too long'; fanout refuses it as bad input."""
    gnu = gnu_parallel(tmp_path, "-m", "-s", "10", "--dry-run", "echo", ":::", "aaaaaaaaaaaaaa")
    assert gnu.returncode == 255 and b"Command line too long" in gnu.stderr
    completed = run_fanout("run", "--dry-run", "-m", "-s", "10", "--", "echo", ":::", "aaaaaaaaaaaaaa")
    line = one_error_line(completed)
    assert "aaaaaaaaaaaaaa" in line


@pytest.mark.parametrize("difference", DIFFERENCES, ids=[d.case.name for d in DIFFERENCES])
def test_fanout_keeps_its_documented_behaviour(tmp_path: Path, difference: Difference) -> None:
    write_files(tmp_path)
    given = difference.case
    completed = run_fanout(
        "run", "--dry-run", *given.options, "--", *given.command, input=given.stdin
    )
    if difference.fanout_error is not None:
        assert difference.fanout_error in one_error_line(completed, no_run_folder=True)
    else:
        assert_clean(completed)
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout == difference.fanout_stdout


@needs_parallel
@pytest.mark.parametrize("difference", DIFFERENCES, ids=[d.case.name for d in DIFFERENCES])
def test_gnu_parallel_still_differs(tmp_path: Path, difference: Difference) -> None:
    """The reason for each difference holds: GNU parallel does print what the table says."""
    version = gnu_parallel(tmp_path, "--version").stdout.decode().split("\n", 1)[0]
    if ORACLE_VERSION not in version:
        pytest.skip(f"the table quotes GNU parallel {ORACLE_VERSION}; this is {version}")
    write_files(tmp_path)
    given = difference.case
    gnu = gnu_parallel(
        tmp_path, "-k", "--dry-run", *given.options, *given.command, stdin=given.stdin
    )
    assert gnu.stdout.decode() == difference.gnu_stdout
    assert gnu.stdout.decode() != difference.fanout_stdout
