"""Command templates: GNU parallel's replacement strings, shell detection, and quoting.

The quoting tests do not trust the quoting function: they run the rendered command for
real (directly, or under /bin/sh) with hostile values and check that the child receives
exactly the value's bytes and that nothing in the value ran."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fanout_cli.errors import UsageError
from fanout_cli.shell_scan import is_arithmetic_value
from fanout_cli.sources.values import ValueTasks, display_value
from fanout_cli.template import Template
from tests.helpers import FANOUT, run_fanout

# The child writes its first argument back as the exact bytes it received.
ECHO_ARG = "import os, sys; sys.stdout.buffer.write(os.fsencode(sys.argv[1]))"
# The child writes all its arguments, NUL-separated (values never contain NUL).
ECHO_ARGS = "import os, sys; sys.stdout.buffer.write(b'\\0'.join(map(os.fsencode, sys.argv[1:])))"
PYTHON = shlex.quote(sys.executable)
PRINT_WORDS = r"printf '%s\0'"  # in a shell template: prints each argument, NUL-ended


def shell_words(script: str | tuple[str, ...]) -> list[str]:
    """What the words of a rendered shell script are, as /bin/sh reads them: the script
    prints them with PRINT_WORDS (the rendering itself is not trusted)."""
    assert isinstance(script, str)
    completed = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True)
    return [os.fsdecode(word) for word in completed.stdout.split(b"\0")[:-1]]


# ---------------------------------------------------------------------------------------
# Replacement strings
# ---------------------------------------------------------------------------------------

# Measured with GNU parallel 20221122 on this machine:
#   parallel -k echo '[{}]' '[{.}]' '[{/}]' '[{//}]' '[{/.}]' ::: VALUE
# value -> ({.}, {/}, {//}, {/.})
GNU_PARALLEL_TABLE: list[tuple[str, tuple[str, str, str, str]]] = [
    ("a/b.tar.gz", ("a/b.tar", "b.tar.gz", "a", "b.tar")),
    ("a.jpg", ("a", "a.jpg", ".", "a")),
    ("a", ("a", "a", ".", "a")),
    ("a/b", ("a/b", "b", "a", "b")),
    (".bashrc", ("", ".bashrc", ".", "")),
    ("a/.bashrc", ("a/", ".bashrc", "a", "")),
    ("/a", ("/a", "a", "/", "a")),
    ("/a/b.c", ("/a/b", "b.c", "/a", "b")),
    ("./a", ("./a", "a", ".", "a")),
    ("dir.d/file", ("dir.d/file", "file", "dir.d", "file")),
    ("", ("", "", ".", "")),
    ("a/", ("a/", "", ".", "")),
    ("a.b/", ("a.b/", "", ".", "")),
    ("/", ("/", "", "/", "")),
]

PATH_STRINGS = ["{}", "{.}", "{/}", "{//}", "{/.}"]


@pytest.mark.parametrize(("value", "expected"), GNU_PARALLEL_TABLE)
def test_path_replacement_strings_match_gnu_parallel(
    value: str, expected: tuple[str, str, str, str]
) -> None:
    rendered = Template.parse(["echo", *PATH_STRINGS]).render(value, 1)
    assert rendered == ("echo", value, *expected)


@pytest.mark.parametrize(("value", "expected"), GNU_PARALLEL_TABLE)
def test_path_replacement_strings_in_shell_mode_reach_the_command(
    value: str, expected: tuple[str, str, str, str]
) -> None:
    script = Template.parse([f"{PRINT_WORDS} " + " ".join(PATH_STRINGS)]).render(value, 1)
    assert shell_words(script) == [value, *expected]


def test_sequence_number_and_slot() -> None:
    template = Template.parse(["job", "{#}", "{%}", "{}"])
    assert template.uses_slot
    assert template.render("v", 7, 3) == ("job", "7", "3", "v")
    assert template.render("v", 12, 1) == ("job", "12", "1", "v")


def test_slot_is_rendered_once_known() -> None:
    tasks = ValueTasks(Template.parse(["job", "{%}", "{}"]))
    spec = tasks.spec(4, "v", ":::4")
    # The template travels with the task so that the runner can render the slot later.
    assert spec.template is not None
    assert spec.command_for_slot(2) == ("job", "2", "v")
    assert spec.command_for_slot(5) == ("job", "5", "v")


def test_task_without_slot_does_not_carry_its_template() -> None:
    spec = ValueTasks(Template.parse(["job", "{#}", "{}"])).spec(4, "v", ":::4")
    assert not Template.parse(["job", "{#}", "{}"]).uses_slot
    assert spec.template is None
    assert spec.command == ("job", "4", "v")
    assert spec.command_for_slot(3) == ("job", "4", "v")


def test_sequence_number_and_slot_in_shell_mode() -> None:
    script = Template.parse([f"{PRINT_WORDS} {{#}}-{{%}} {{}}"]).render("a b", 9, 2)
    assert shell_words(script) == ["9-2", "a b"]
    # Numbers fanout makes are written in; the value is read as a positional parameter.
    assert script == "set -- 'a b'; printf '%s\\0' 9-2 \"$1\""


def test_several_replacement_strings_in_one_word() -> None:
    template = Template.parse(["convert", "{}", "{//}/{/.}.out", "{/.}.out", "{#}-{/}"])
    assert template.render("img/cat.jpg", 3) == (
        "convert",
        "img/cat.jpg",
        "img/cat.out",
        "cat.out",
        "3-cat.jpg",
    )


def test_double_braces_are_literal() -> None:
    template = Template.parse(["echo", "{{}}", "{{.}}", "{{/.}}", "x{{}}y", "{}"])
    assert template.render("a.b", 1) == ("echo", "{}", "{.}", "{/.}", "x{}y", "a.b")


def test_double_braces_alone_are_no_replacement_string() -> None:
    # `{{}}` is text, not a replacement string, so the value is still appended.
    template = Template.parse(["echo", "{{}}"])
    assert template.appends_value
    assert template.render("v", 1) == ("echo", "{}", "v")


def test_double_braces_in_shell_mode() -> None:
    script = Template.parse([f"{PRINT_WORDS} {{{{}}}} {{}}"]).render("a b", 1)
    assert shell_words(script) == ["{}", "a b"]


def test_no_replacement_string_appends_the_value() -> None:
    template = Template.parse(["wc", "-l"])
    assert template.appends_value
    assert template.render("my file.txt", 1) == ("wc", "-l", "my file.txt")


def test_value_with_braces_is_not_substituted_again() -> None:
    # A value that looks like a replacement string is data, not template.
    assert Template.parse(["echo", "{}", "{.}"]).render("{/}.{#}", 5) == ("echo", "{/}.{#}", "{/}")


def test_unknown_brace_words_are_left_alone_and_positions_are_values() -> None:
    # {x} names nothing: text (awk's {print} and the shell's ${HOME} stay as written).
    # {1} is the first value, as in GNU parallel.
    template = Template.parse(["echo", "{x}", "{print $1}", "{a,b}", "{1}"])
    assert not template.appends_value
    assert template.render("v", 1) == ("echo", "{x}", "{print $1}", "{a,b}", "v")


@pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel is not installed")
def test_path_replacement_strings_agree_with_real_gnu_parallel() -> None:
    values = [value for value, _ in GNU_PARALLEL_TABLE] + [
        "a.b/c.d/",
        "a..b",
        "a.",
        ".",
        "..",
        "a/.",
        "//",
        "a//b.c",
        "/a/",
        "x.tar.",
        "my dir/my file.txt",
        'it\'s/"q".x',
        "é/ß.ü",
        "tab\tx.y",
        # No newlines: GNU parallel 20221122 computes {/} of "a\nb/c" as "a\nc" (its
        # regex's `.` stops at the newline), which is not a basename of anything.
        ".a.b",
        "a/b/.c.d",
    ]
    completed = subprocess.run(
        ["parallel", "-0", "-k", "printf", r"'%s\0'", *PATH_STRINGS],
        input=b"".join(value.encode() + b"\0" for value in values),
        capture_output=True,
        check=True,
        timeout=60,
    )
    fields = completed.stdout.split(b"\0")[:-1]
    assert len(fields) == len(PATH_STRINGS) * len(values)
    template = Template.parse(["x", *PATH_STRINGS])
    for index, value in enumerate(values):
        measured = tuple(field.decode() for field in fields[5 * index : 5 * index + 5])
        assert template.render(value, 1)[1:] == measured, value


# ---------------------------------------------------------------------------------------
# Shell detection
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "words",
    [
        ["echo", "$HOME", "{}"],
        ["grep", "-c", "a|b", "{}"],
        ["sh", "-c", "echo {} | wc"],
        ["a b", "c"],
    ],
)
def test_several_words_never_use_a_shell(words: list[str]) -> None:
    template = Template.parse(words)
    assert not template.shell
    assert isinstance(template.render("v", 1), tuple)


@pytest.mark.parametrize(
    "word",
    [
        "grep -c TODO {} | sort",
        "echo $HOME {}",
        "gzip -c {} > {}.gz",
        "test -f {} && echo yes",
        "echo `date` {}",
        "ls *.py",
        "wc -l",
    ],
)
def test_single_word_with_shell_syntax_uses_a_shell(word: str) -> None:
    template = Template.parse([word])
    assert template.shell
    assert isinstance(template.render("v", 1), str)


@pytest.mark.parametrize("word", ["wc", "{}", "/usr/bin/wc", "ruff-{/.}", "{{}}", "a.b=c"])
def test_single_plain_word_does_not_use_a_shell(word: str) -> None:
    assert not Template.parse([word]).shell


def test_single_plain_word_runs_with_value_appended() -> None:
    assert Template.parse(["wc"]).render("a b", 1) == ("wc", "a b")


def test_force_shell_joins_words_into_a_script() -> None:
    template = Template.parse(["grep", "-c", "TODO", "{}", "|", "sort"], force_shell=True)
    assert template.shell
    assert template.render("my file", 1) == "set -- 'my file'; grep -c TODO \"$1\" | sort"


def test_force_shell_appends_the_quoted_value() -> None:
    template = Template.parse(["wc", "-l"], force_shell=True)
    assert template.render("it's", 1) == "set -- 'it'\"'\"'s'; wc -l \"$1\""


def test_shell_script_appends_the_quoted_value() -> None:
    script = Template.parse([f"{PRINT_WORDS} -l"]).render("a; b", 1)
    assert shell_words(script) == ["-l", "a; b"]


# ---------------------------------------------------------------------------------------
# Hostile values, really executed
# ---------------------------------------------------------------------------------------

HOSTILE_FRAGMENTS: list[bytes] = [
    b"'",
    b'"',
    b"$(touch pwned)",
    b"`touch pwned`",
    b"; touch pwned",
    b"&& touch pwned",
    b"| touch pwned",
    b"> pwned",
    b"\n",
    b"\r\n",
    b"\t",
    b" ",
    b"-",
    b"--",
    b"-rf",
    b"*",
    b"?",
    b"[a]",
    b"~",
    b"~root",
    b"$HOME",
    b"${IFS}",
    b"\\",
    b"!",
    b"#",
    b"%s",
    b"{}",
    b"{.}",
    b"a/b.c",
    b"/",
    b".",
    b"\x1b[31m",
    b"\x7f",
    "é".encode(),
    "日本語".encode(),
    "🙂".encode(),
    "\u202e".encode(),
    b"\xff",
    b"\xfe\xfd",
    b"\xc3",
    b"\x80",
    b"\xed\xa0\x80",  # an encoded surrogate: not valid UTF-8
]

_fragment = st.sampled_from(HOSTILE_FRAGMENTS) | st.binary(min_size=1, max_size=6).map(
    lambda data: data.replace(b"\0", b"")
)
short_values = st.lists(_fragment, max_size=12).map(b"".join)
# Tens of KB, built by repetition so that hypothesis needs little data to make them. At
# most 24 000 bytes: a value of only quotes grows five-fold under shell quoting, and one
# argument to sh -c may not exceed 128 KiB on Linux.
long_values = st.builds(
    lambda fragments, size: (b"".join(fragments) * size)[:size],
    st.lists(_fragment.filter(bool), min_size=1, max_size=6),
    st.integers(min_value=10_000, max_value=24_000),
)
hostile_values = short_values | long_values

LONG_EXAMPLE = (b"$(touch pwned)'\"`;|&\n\xff" * 2000)[:24_000]
QUOTES_EXAMPLE = b"'" * 24_000

PROCESS_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    # The autouse fixture only changes directory and environment: nothing to reset.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def child_env(home: Path) -> dict[str, str]:
    """A HOME that is a scratch folder: even a broken quoting cannot reach the real one."""
    return {**os.environ, "HOME": str(home)}


def run_argv(argv: tuple[str, ...]) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            argv,
            cwd=scratch,
            env=child_env(Path(scratch)),
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert os.listdir(scratch) == []
        return completed.stdout


def run_script(script: str) -> bytes:
    """Run a script under /bin/sh in an empty folder; nothing may appear in it."""
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            ["/bin/sh", "-c", script],
            check=False,
            cwd=scratch,
            env=child_env(Path(scratch)),
            capture_output=True,
            timeout=30,
        )
        assert completed.returncode == 0, completed.stderr
        assert os.listdir(scratch) == [], "the value ran as shell code"
        return completed.stdout


def render_argv(template: Template, value: str) -> tuple[str, ...]:
    rendered = template.render(value, 1)
    assert isinstance(rendered, tuple)
    return rendered


def render_script(template: Template, value: str) -> str:
    rendered = template.render(value, 1)
    assert isinstance(rendered, str)
    return rendered


@given(raw=st.binary().map(lambda data: data.replace(b"\0", b"")))
@settings(max_examples=300)
def test_exec_mode_value_is_exactly_one_argument(raw: bytes) -> None:
    value = os.fsdecode(raw)
    assert Template.parse(["cmd", "-x", "{}"]).render(value, 1) == ("cmd", "-x", value)
    assert Template.parse(["cmd", "-x"]).render(value, 1) == ("cmd", "-x", value)


@given(raw=st.binary().map(lambda data: data.replace(b"\0", b"")))
@settings(max_examples=300)
def test_shell_mode_value_is_only_in_the_set_line(raw: bytes) -> None:
    """The script proper is the same for every value; the value is one quoted word of
    the `set --` line before it."""
    value = os.fsdecode(raw)
    script = render_script(Template.parse(["cmd -x {}"]), value)
    prologue, separator, rest = script.rpartition("; ")
    assert (separator, rest) == ("; ", 'cmd -x "$1"')
    assert shlex.split(prologue) == ["set", "--", value]


@given(raw=hostile_values)
@example(raw=LONG_EXAMPLE)
@example(raw=QUOTES_EXAMPLE)
@example(raw=b"")
@example(raw=b"-")
@PROCESS_SETTINGS
def test_exec_mode_child_receives_exactly_the_value(raw: bytes) -> None:
    template = Template.parse([sys.executable, "-c", ECHO_ARG, "{}"])
    assert not template.shell
    assert run_argv(render_argv(template, os.fsdecode(raw))) == raw


@given(raw=hostile_values)
@example(raw=LONG_EXAMPLE)
@example(raw=QUOTES_EXAMPLE)
@example(raw=b"")
@example(raw=b"$(touch pwned); rm -rf ~")
@PROCESS_SETTINGS
def test_shell_mode_child_receives_exactly_the_value_and_nothing_runs(raw: bytes) -> None:
    template = Template.parse([f"{PYTHON} -c {shlex.quote(ECHO_ARG)} {{}}"])
    assert template.shell
    assert run_script(render_script(template, os.fsdecode(raw))) == raw


@given(raw=hostile_values)
@example(raw=LONG_EXAMPLE)
@example(raw=b"`touch pwned`")
@PROCESS_SETTINGS
def test_shell_mode_appended_value_is_exact_and_inert(raw: bytes) -> None:
    template = Template.parse([f"{PYTHON} -c {shlex.quote(ECHO_ARG)}"])
    assert template.shell
    assert template.appends_value
    assert run_script(render_script(template, os.fsdecode(raw))) == raw


@given(raw=hostile_values)
@example(raw=QUOTES_EXAMPLE)
@PROCESS_SETTINGS
def test_force_shell_child_receives_exactly_the_value(raw: bytes) -> None:
    template = Template.parse([PYTHON, "-c", shlex.quote(ECHO_ARG), "{}"], force_shell=True)
    assert run_script(render_script(template, os.fsdecode(raw))) == raw


@given(raw=short_values)
@example(raw=b"dir $(touch pwned)/`touch pwned`.x'y")
@example(raw=b"a/b.tar.gz; touch pwned")
@PROCESS_SETTINGS
def test_shell_mode_path_strings_are_exact_and_inert(raw: bytes) -> None:
    template = Template.parse([f"{PYTHON} -c {shlex.quote(ECHO_ARGS)} {{/}} {{.}} x{{//}}/{{/.}}y"])
    value = os.fsdecode(raw)
    # The expected parts come from the exec-mode rendering, checked above against GNU
    # parallel; here the point is that quoting delivers them intact.
    _, name, stem, joined = render_argv(Template.parse(["x", "{/}", "{.}", "x{//}/{/.}y"]), value)
    expected = b"\0".join(os.fsencode(part) for part in (name, stem, joined))
    assert run_script(render_script(template, value)) == expected


QUOTED_PLACES = [
    'PY "{}"',  # inside double quotes written by the user
    "PY '{}'",  # inside single quotes
    'PY "pre-{}-post" | PY2',  # part of a double-quoted word, then a pipe
    'PY "$(printf %s {})"',  # a command substitution inside double quotes
    'PY "`printf %s {}`"',  # backticks inside double quotes
]


@pytest.mark.parametrize("place", QUOTED_PLACES)
@given(raw=short_values.filter(lambda data: b"\n" not in data))
@example(raw=b'$(touch pwned)"; touch pwned; echo "')
@example(raw=b"'; touch pwned; echo '")
@example(raw=b"`touch pwned`\\")
@PROCESS_SETTINGS
def test_values_inside_quotes_written_by_the_user_stay_inert(place: str, raw: bytes) -> None:
    """GNU parallel lets `"{}"` run a value's `$(...)`; fanout escapes for the quotes
    the value sits in. (Newlines are left out: $(...) drops trailing ones.)"""
    value = os.fsdecode(raw)
    echo = f"{PYTHON} -c {shlex.quote(ECHO_ARG)}"
    script_template = place.replace("PY2", "cat").replace("PY", echo)
    script = render_script(Template.parse([script_template]), value)
    expected = raw if "pre-" not in place else b"pre-" + raw + b"-post"
    if "printf %s" in place:
        expected = raw.rstrip(b"\n")
    assert run_script(script) == expected


# Every place a template can put a value, under /bin/sh and under bash when it is here
# (/bin/sh is bash on Fedora and macOS, and bash evaluates more as arithmetic). The
# value reaches the command byte for byte wherever the place passes it through.
SHELLS = sorted({os.path.realpath(path) for path in ("/bin/sh", shutil.which("bash") or "/bin/sh")})
PRINT = "printf %s"
# (place, template, expected output, shells that have the syntax: None = all)
PASS_THROUGH_PLACES: list[tuple[str, str, Callable[[bytes], bytes] | None, str | None]] = [
    ("heredoc", "cat <<EOF\n{}\nEOF", lambda raw: raw + b"\n", None),
    ("heredoc-spaced", "cat << EOF\n[{}]\nEOF", lambda raw: b"[" + raw + b"]\n", None),
    ("heredoc-tabs", "cat <<-EOF\n\t{}\n\tEOF", lambda raw: raw + b"\n", None),
    # <<'EOF' prints its body as written; fanout writes it as the <<EOF that does so.
    (
        "heredoc-quoted",
        "cat <<'EOF'\n$x `y` \\ {} $(z)\nEOF",
        lambda raw: b"$x `y` \\ " + raw + b" $(z)\n",
        None,
    ),
    ("heredoc-quoted-double", 'cat <<"EOF"\n{}\\\nEOF', lambda raw: raw + b"\\\n", None),
    ("heredoc-quoted-tabs", "cat <<-\\EOF\n\t{}\n\tEOF", lambda raw: raw + b"\n", None),
    (
        "heredoc-quoted-then-unquoted",
        "cat <<'A'; cat <<B\n$x `y` \\\nA\n{}\nB",
        lambda raw: b"$x `y` \\\n" + raw + b"\n",
        None,
    ),
    (
        "heredoc-in-substitution",
        'printf %s "$(cat <<EOF\n{}\nEOF\n)"',
        lambda raw: raw.rstrip(b"\n"),
        None,
    ),
    ("case", f"case {{}} in {{}}) {PRINT} {{}};; *) exit 3;; esac", lambda raw: raw, None),
    (
        "nested-substitution",
        f'{PRINT} "$({PRINT} "$({PRINT} {{}})")"',
        lambda raw: raw.rstrip(b"\n"),
        None,
    ),
    ("backticks", f'{PRINT} "`{PRINT} {{}}`"', lambda raw: raw.rstrip(b"\n"), None),
    ("plain-backticks", f"{PRINT} `{PRINT} '[' {{}} ']'`", None, None),  # split by design
    ("default", f"{PRINT} ${{unset_variable:-{{}}}}", lambda raw: raw, None),
    ("default-quoted", f'{PRINT} "${{unset_variable:-{{}}}}"', lambda raw: raw, None),
    ("assignment", f'v={{}}; {PRINT} "$v"', lambda raw: raw, None),
    ("function", f'f() {{ {PRINT} "$1"; }}; f {{}}', lambda raw: raw, None),
    ("comment", f"{PRINT} {{}} # it's {{}}", lambda raw: raw, None),
    # A `$` before {} is text: the value never names a variable ($HOME stays "$HOME").
    ("dollar", f'{PRINT} ${{}} "${{}}"', lambda raw: b"$" + raw + b"$" + raw, None),
    ("dollar-heredoc", "cat <<EOF\n${}\nEOF", lambda raw: b"$" + raw + b"\n", None),
    ("double-brackets", f"[[ {{}} == {{}} ]] && {PRINT} {{}}", lambda raw: raw, "bash"),
    ("ansi-c", f"{PRINT} $'<'{{}}$'>'", lambda raw: b"<" + raw + b">", "bash"),
    ("ansi-c-inside", f"{PRINT} $'<{{}}>'", lambda raw: b"<" + raw + b">", "bash"),
    ("here-string", "cat <<< {}", lambda raw: raw + b"\n", "bash"),
]


def run_place(shell: str, script: str) -> subprocess.CompletedProcess[bytes]:
    """Run a script in an empty folder with a scratch HOME; nothing may appear there."""
    with tempfile.TemporaryDirectory() as scratch:
        completed = subprocess.run(
            [shell, "-c", script],
            check=False,
            cwd=scratch,
            env=child_env(Path(scratch)),
            stdin=subprocess.DEVNULL,  # a `cat` left without input ends at once
            capture_output=True,
            timeout=30,
        )
        assert os.listdir(scratch) == [], f"the value ran as code under {shell}"
        return completed


def shells_for(needs: str | None) -> list[str]:
    return [shell for shell in SHELLS if needs is None or needs in os.path.basename(shell)]


HEREDOC_BREAKERS = [b"EOF", b"x\nEOF\ntouch pwned", b"\tEOF\ntouch pwned\n", b"A\nB\ntouch pwned"]


@pytest.mark.parametrize(
    ("template", "expected", "needs"),
    [place[1:] for place in PASS_THROUGH_PLACES],
    ids=[place[0] for place in PASS_THROUGH_PLACES],
)
@given(raw=short_values)
@example(raw=b"$(touch pwned)`touch pwned`${IFS}'\"\\")
@example(raw=b"")
@example(raw=HEREDOC_BREAKERS[0])
@example(raw=HEREDOC_BREAKERS[1])
@example(raw=HEREDOC_BREAKERS[2])
@example(raw=HEREDOC_BREAKERS[3])
@example(raw=b"HOME")
@PROCESS_SETTINGS
def test_value_in_every_place_stays_data(
    template: str, expected: Callable[[bytes], bytes] | None, needs: str | None, raw: bytes
) -> None:
    shells = shells_for(needs)
    if not shells:
        pytest.skip(f"needs {needs}")
    script = render_script(Template.parse([template]), os.fsdecode(raw))
    for shell in shells:
        completed = run_place(shell, script)
        if expected is not None:
            assert completed.returncode == 0, (shell, completed.stderr)
            assert completed.stdout == expected(raw), shell


ARITHMETIC_PLACES = [
    "echo $(( {} ))",
    "echo $(( 1 + {} * 2 ))",
    "echo $(( $(echo {}) ))",
    "echo $[ {} ]",
    "(( {} )); echo $?",
    "for (( i = 0; i < {}; i++ )); do :; done; echo done",
    "[[ {} -eq 1 ]]; echo $?",
    "[[ 1 -lt {} ]]; echo $?",
    "s=abcdef; echo ${s:{}:2}",
    "a=(1 2 3); echo ${a[{}]}",
    "let x={}+1 y=2; echo $x",
    'let "x = {}"; echo $x',
]
ARITHMETIC_ATTACKS = [
    b"1+$(touch pwned)",
    b"a[$(touch pwned)]",
    b"x[`touch pwned`]",
    b"a[$(touch pwned)]+1",
    b"1; touch pwned",
    b"PATH=0",
    b"$((a[$(touch pwned)]))",
    b"(a[$(touch pwned)])",
]


@given(
    body=st.lists(st.sampled_from(["$", "`", "\\", "x", "{}", "(", ")", "'", '"', "\n", "\t", " "]))
    .map("".join)
    .filter(lambda body: "{}" in body and "EOF" not in body.split("\n")),
    raw=short_values.filter(lambda data: b"\r" not in data),
)
@PROCESS_SETTINGS
def test_quoted_here_document_prints_its_body_as_written(body: str, raw: bytes) -> None:
    value = os.fsdecode(raw)
    script = render_script(Template.parse([f"cat <<'EOF'\n{body}\nEOF"]), value)
    expected = (body.replace("{}", value) + "\n").encode("utf-8", "surrogateescape")
    for shell in SHELLS:
        completed = run_place(shell, script)
        assert completed.stdout == expected, (shell, completed.stderr)


# Places nested in each other, at random: whatever the nesting (and even where the
# result is not valid shell), no value runs under any shell.
def _nest(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        inner.map(lambda text: f'"<{text}>"'),
        inner.map(lambda text: f"$(printf %s {text})"),
        inner.map(lambda text: f'"$(printf %s "{text}")"'),
        inner.map(lambda text: f"`printf %s {text}`"),
        inner.map(lambda text: "${unset_variable:-" + text + "}"),
        inner.map(lambda text: f'"${{unset_variable:-{text}}}"'),
        inner.map(lambda text: f"$(cat <<EOF\n<{text}>\nEOF\n)"),
        inner.map(lambda text: f"$(case {text} in *) printf %s {text};; esac)"),
        inner.map(lambda text: f"$(( {text} ))"),
        inner.map(lambda text: f"$( (( {text} )) )"),
        inner.map(lambda text: f"$([[ {text} == x ]])"),
        inner.map(lambda text: f"$(echo {text} # it's)"),
        inner.map(lambda text: f"'{{}}'{text}"),
    )


NESTED_PLACES = st.recursive(st.just("{}"), _nest, max_leaves=3)
NESTED_ATTACKS = [
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; '",
    '"; touch pwned; "',
    "a[$(touch pwned)]",
    "x\nEOF\ntouch pwned\nEOF",
    "*; touch pwned",
]


@given(place=NESTED_PLACES, value=st.sampled_from(NESTED_ATTACKS))
@PROCESS_SETTINGS
def test_values_in_nested_places_never_run(place: str, value: str) -> None:
    script = render_script(Template.parse([f"printf %s {place}; echo"]), value)
    for shell in SHELLS:
        run_place(shell, script)  # asserts that nothing was created


# Scripts glued together from shell syntax at random, most of them not valid shell:
# whatever fanout makes of them, the value stays data (or fanout refuses the template).
SHELL_PIECES = [
    "{}", "{.}", "{/}", "{#}", "{{}}", "$", "(", ")", "((", "))", "$((", "$(", "${", "}",
    "[[", "]]", "$[", "]", "'", '"', "`", "\\", "\n", " ", "\t", "<<", "<<-", "<<<", "EOF",
    "'EOF'", "#", "case", "esac", "in", ";;", ";", "|", "&", "let", "x", "-eq", ":", ":-",
    "=", "$'", "printf %s ", "echo ", "cat ",
]  # fmt: skip
ANY_TEMPLATE_ATTACKS = [
    "$(touch pwned)",
    "`touch pwned`",
    "a[$(touch pwned)]",
    "x\nEOF\ntouch pwned\nEOF",
    "'\"; touch pwned; #",
    "touch pwned",
]


@given(
    pieces=st.lists(st.sampled_from(SHELL_PIECES), max_size=14),
    value=st.sampled_from(ANY_TEMPLATE_ATTACKS),
)
@settings(PROCESS_SETTINGS, max_examples=100)
def test_any_template_keeps_values_inert(pieces: list[str], value: str) -> None:
    try:
        template = Template.parse(["".join(pieces)], force_shell=True)
    except UsageError:
        return  # a value that no reference can reach (a quoted here-document)
    script = render_script(template, value)
    for shell in SHELLS:
        run_place(shell, script)  # asserts that nothing was created


@pytest.mark.parametrize("template", ARITHMETIC_PLACES)
@given(raw=short_values | st.sampled_from(ARITHMETIC_ATTACKS))
@example(raw=ARITHMETIC_ATTACKS[0])
@example(raw=ARITHMETIC_ATTACKS[1])
@example(raw=ARITHMETIC_ATTACKS[6])
@PROCESS_SETTINGS
def test_value_read_as_arithmetic_never_runs(template: str, raw: bytes) -> None:
    script = render_script(Template.parse([template]), os.fsdecode(raw))
    for shell in SHELLS:
        run_place(shell, script)  # asserts that nothing was created


@pytest.mark.parametrize("template", ARITHMETIC_PLACES[:2])
@given(number=st.integers(min_value=-(10**6), max_value=10**6))
@settings(max_examples=10, deadline=None)
def test_numbers_in_arithmetic_work_as_before(template: str, number: int) -> None:
    script = render_script(Template.parse([template]), str(number))
    expected = number if template == ARITHMETIC_PLACES[0] else 1 + number * 2
    for shell in SHELLS:
        completed = run_place(shell, script)
        assert completed.stdout == f"{expected}\n".encode(), (shell, completed.stderr)


@pytest.mark.parametrize(
    "value", ["12", " 3 * (4 + 5) ", "0x1F", "16#ff", "-7", "1 << 3", "2 > 1 ? 4 : 5"]
)
def test_arithmetic_values_that_are_numbers_are_accepted(value: str) -> None:
    assert is_arithmetic_value(value)


@pytest.mark.parametrize(
    "value", ["a", "x1", "a[1]", "$x", "1+$(id)", "`id`", "PATH=0", "'1'", '"1"', "1;2", "{1}"]
)
def test_arithmetic_values_with_names_or_expansions_are_refused(value: str) -> None:
    assert not is_arithmetic_value(value)


@pytest.mark.parametrize(
    "template",
    [
        "cat <<'E O F'\n{}\nE O F",
        "cat <<'EOF'\nnever ends {.}",
        "cat <<'-x'\n{}\n-x",
        "cat <<{}\nx\n{}",
    ],
)
def test_values_where_no_reference_can_reach_are_usage_errors(template: str) -> None:
    with pytest.raises(UsageError, match="here-document"):
        Template.parse([template])


def test_numbers_may_stand_where_values_cannot() -> None:
    script = Template.parse(["cat <<'EOF'\n{#}\nEOF"]).render("v", 4)
    assert script == "cat <<'EOF'\n4\nEOF"


def test_the_script_names_each_value_once_and_never_holds_one() -> None:
    template = Template.parse(["cp {} {//}/{/.}.bak && echo {} {#}"])
    assert template.render("d/a.txt", 3) == (
        'set -- d/a.txt d a; cp "$1" "$2"/"$3".bak && echo "$1" 3'
    )


# ---------------------------------------------------------------------------------------
# End to end through the installed binary
# ---------------------------------------------------------------------------------------

E2E_VALUES = [
    "$(touch pwned); rm -rf ~",
    'it\'s a "quoted"\nname `touch pwned`.txt',
    "-rf * ~ > pwned",
]


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    """HOME for the run: a sentinel shows that `rm -rf ~` in a value never ran."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "sentinel").write_text("still here")
    return home


def task_stdout(tmp_path: Path, seq: int) -> bytes:
    files = sorted((tmp_path / "out").glob(f"*/{seq:04d}-*.stdout"))
    assert len(files) == 1, files
    return files[0].read_bytes()


def assert_nothing_ran(tmp_path: Path, home: Path) -> None:
    assert not list(tmp_path.rglob("pwned"))
    assert (home / "sentinel").read_text() == "still here"


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", ECHO_ARG, "{}"],
        ["--shell", "--", PYTHON, "-c", shlex.quote(ECHO_ARG), "{}"],
        [f"{PYTHON} -c {shlex.quote(ECHO_ARG)} {{}}"],
    ],
    ids=["exec", "--shell", "single-word-shell"],
)
def test_hostile_values_through_fanout_run(
    tmp_path: Path, fake_home: Path, command: list[str]
) -> None:
    args = command if command[0] == "--shell" else ["--", *command]
    completed = run_fanout("run", *args, ":::", *E2E_VALUES, env={"HOME": str(fake_home)})
    assert completed.returncode == 0, completed.stderr
    for seq, value in enumerate(E2E_VALUES, start=1):
        assert task_stdout(tmp_path, seq) == value.encode()
    assert_nothing_ran(tmp_path, fake_home)


# What `find . -name '*.txt' -print0` prints for these names, built here byte by byte.
NON_UTF8_NAMES = [
    b"caf\xe9 \xff'$(touch pwned).txt",
    b'new\nline "`touch pwned`".txt',
    "naïve 日本.txt".encode(),
]
READ_FILE = (
    "import os, sys; name = sys.argv[1]; "
    "sys.stdout.buffer.write(os.fsencode(name) + b'\\0' + open(name, 'rb').read())"
)


@pytest.mark.parametrize(
    "command",
    [
        ["--", sys.executable, "-c", READ_FILE, "{}"],
        ["--shell", "--", PYTHON, "-c", shlex.quote(READ_FILE), "{}"],
    ],
    ids=["exec", "--shell"],
)
def test_null_separated_non_utf8_file_names_reach_the_child(
    tmp_path: Path, fake_home: Path, command: list[str]
) -> None:
    for number, name in enumerate(NON_UTF8_NAMES):
        (tmp_path / os.fsdecode(name)).write_bytes(b"content %d" % number)
    find_output = b"".join(b"./" + name + b"\0" for name in NON_UTF8_NAMES)
    completed = run_fanout(
        "run", "-0", "-j", "1", *command, input=find_output, env={"HOME": str(fake_home)}
    )
    assert completed.returncode == 0, completed.stderr
    for number, name in enumerate(NON_UTF8_NAMES):
        assert task_stdout(tmp_path, number + 1) == b"./" + name + b"\0content %d" % number
    assert_nothing_ran(tmp_path, fake_home)


# Newline-free: --dry-run prints one command a line, and a value with a newline inside
# spans two lines (see test_dry_run_value_with_newline_is_one_command_over_two_lines), so
# these values can be checked line by line.
DRY_RUN_VALUES = [
    b"$(touch pwned); rm -rf ~",
    b'it\'s a "quoted" name `touch pwned`',
    b"caf\xe9 \xff\xfe'\\",
    b"-n",
    b"* ~ $HOME ${IFS} > pwned | touch pwned && touch pwned",
    b"tab\there\rcr",
    "naïve 🙂 \u202e".encode(),
]


@pytest.mark.parametrize(
    "command",
    [["--", "printf", "%s\\0", "{}"], ["--", "printf '%s\\0' {} | cat"]],
    ids=["exec", "shell"],
)
def test_dry_run_lines_are_valid_shell(tmp_path: Path, fake_home: Path, command: list[str]) -> None:
    completed = subprocess.run(
        [str(FANOUT), "run", "-0", "--dry-run", *command],
        input=b"".join(value + b"\0" for value in DRY_RUN_VALUES),
        capture_output=True,
        timeout=30,
        check=False,
    )
    # Read as bytes: the conftest helper decodes stdout, which would lose the 0xff bytes.
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.split(b"\n")
    assert lines[-1] == b""
    assert len(lines[:-1]) == len(DRY_RUN_VALUES)
    for line, value in zip(lines[:-1], DRY_RUN_VALUES, strict=True):
        printed = subprocess.run(
            [b"/bin/sh", b"-c", line],
            cwd=tmp_path,
            env={**os.environ, "HOME": str(fake_home)},
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout == value + b"\0"
    assert_nothing_ran(tmp_path, fake_home)


def test_dry_run_value_with_newline_is_one_command_over_two_lines(
    tmp_path: Path, fake_home: Path
) -> None:
    value = b"first line $(touch pwned)\nsecond 'line'"
    completed = run_fanout(
        "run", "-0", "--dry-run", "--", "printf", "%s", "{}", input=value + b"\0"
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("\n") == 2
    printed = subprocess.run(
        ["/bin/sh", "-c", completed.stdout],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(fake_home)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert printed.stdout == value
    assert_nothing_ran(tmp_path, fake_home)


def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    completed = run_fanout("run", "--dry-run", "--", "touch", "{}", ":::", "made")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "touch made\n"
    assert not (tmp_path / "made").exists()
    assert completed.run_dirs() == []


# ---------------------------------------------------------------------------------------
# display_value: values as task ids
# ---------------------------------------------------------------------------------------


def test_display_value_replaces_undecodable_bytes() -> None:
    value = os.fsdecode(b"caf\xe9 \xff.txt")
    assert display_value(value) == "caf\ufffd \ufffd.txt"
    display_value(value).encode("utf-8")  # no surrogates left: strict UTF-8 works


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("tab\there", "tab\\there"),
        ("cr\r", "cr\\r"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("del\x7f", "del\\x7f"),
        ("plain é 🙂", "plain é 🙂"),
    ],
)
def test_display_value_escapes_control_characters(value: str, shown: str) -> None:
    assert display_value(value) == shown


def test_display_value_caps_long_values() -> None:
    assert display_value("x" * 200) == "x" * 200
    capped = display_value("x" * 201)
    assert capped == "x" * 199 + "…"
    assert len(display_value("y" * 50_000)) == 200
    assert display_value("abcdef", limit=4) == "abc…"


@given(raw=st.binary(max_size=600))
@settings(max_examples=300)
def test_display_value_is_one_printable_line(raw: bytes) -> None:
    shown = display_value(os.fsdecode(raw))
    assert len(shown) <= 200
    shown.encode("utf-8")  # raises on a surrogate
    assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in shown)


def test_value_task_id_is_displayed_but_command_is_exact() -> None:
    value = os.fsdecode(b"bad\xff\nname")
    spec = ValueTasks(Template.parse(["cat", "{}"])).spec(1, value, "stdin:1")
    assert spec.task_id == "bad\ufffd\\nname"
    assert spec.command == ("cat", value)
    assert spec.input == value


def test_value_task_without_template_is_the_command_itself() -> None:
    spec = ValueTasks(None).spec(2, "echo hi | wc", "stdin:2")
    assert spec.command == "echo hi | wc"
    assert spec.task_id == "echo hi | wc"
