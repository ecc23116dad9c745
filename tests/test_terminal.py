"""Live progress on a real terminal: the installed `fanout` runs in a tmux window of
100x30 and the tests read the screen (capture-pane), while the run goes and after.

Each test has its own tmux server (a private socket), killed at the end even when
the test fails."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fanout_cli.render import CI_VARIABLES

FANOUT = Path(sys.executable).with_name("fanout")
TMUX = shutil.which("tmux")
COLUMNS, LINES = 100, 30
ENDED = re.compile(r"^\[exited (\d+)\]$")
# The live area's first line: "━━━──── 3/6 50% · 2 running · 1 failed · ETA 2s".
LIVE_LINE = re.compile(r"(\d+)/(\d+) (\d+)% · (\d+) running · (\d+) failed")
LIVE_MARKS = ("━", "─", " running · ")

pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed: the live display is tested on a real "
    "terminal, which tmux provides",
)

# Six tasks at -j 2 for about 2.5 s: alpha and bravo start together; charlie fails.
TASKS = """
[[task]]
id = "alpha"
cmd = ["sleep", "1.2"]
[[task]]
id = "bravo"
cmd = ["sleep", "0.8"]
[[task]]
id = "charlie"
cmd = ["sh", "-c", "sleep 0.4; echo broken >&2; exit 3"]
[[task]]
id = "delta"
cmd = ["sleep", "0.8"]
[[task]]
id = "echo"
cmd = ["sh", "-c", "sleep 0.4; echo hello"]
[[task]]
id = "foxtrot"
cmd = ["sleep", "0.8"]
"""
IDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
# Two tasks one after the other, about 1.2 s; the second fails (a coloured status).
SHORT_TASKS = """
[[task]]
id = "one"
cmd = ["sleep", "0.6"]
[[task]]
id = "two"
cmd = ["sh", "-c", "sleep 0.6; exit 1"]
"""


class Screen:
    """A tmux server on a private socket whose one window runs a shell command."""

    def __init__(self, socket: str, socket_dir: str, workdir: Path) -> None:
        self.socket = socket
        self.socket_dir = socket_dir  # TMUX_TMPDIR: the socket file goes with the server
        self.workdir = workdir
        self.config = workdir / "tmux.conf"
        self.config.write_text("set -g status off\nset -g default-shell /bin/sh\n")

    def tmux(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        assert TMUX is not None
        completed = subprocess.run(
            [TMUX, "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True, check=check, timeout=10,
            env={**(os.environ if env is None else env), "TMUX_TMPDIR": self.socket_dir},
        )  # fmt: skip
        return completed.stdout.decode("utf-8", "replace")

    def start(self, command: str, env: dict[str, str], lines: int = LINES) -> None:
        """Run `command` (sh syntax); it says `[exited N]` when done (where a shell's
        prompt would be), then the window stays open for the screen to be read."""
        shell = f"{command}; printf '[exited %s]' \"$?\"; exec sleep 600"
        # The new server's environment, which the window inherits, is `env`.
        self.tmux("new-session", "-d", "-x", str(COLUMNS), "-y", str(lines),
                  "-c", str(self.workdir), shell, env=env)  # fmt: skip

    def cursor_visible(self) -> bool:
        return self.tmux("display-message", "-p", "#{cursor_flag}").strip() == "1"

    def capture(self, *, escapes: bool = False) -> list[str]:
        text = self.tmux("capture-pane", "-p", *(["-e"] if escapes else []))
        lines = [line.rstrip() for line in text.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def watch(
        self, *, escapes: bool = False, timeout: float = 20
    ) -> tuple[list[list[str]], list[str]]:
        """Every distinct screen until the command ended, and the last one."""
        frames: list[list[str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.capture(escapes=escapes)
            if not frames or frames[-1] != lines:
                frames.append(lines)
            if any(ENDED.match(strip_escapes(line)) for line in lines):
                return frames, lines
            time.sleep(0.04)
        raise AssertionError(f"the run did not end within {timeout}s; screen:\n" +
                             "\n".join(self.capture()))  # fmt: skip


def strip_escapes(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;:]*m", "", text)


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[Screen]:
    # A short folder of its own: socket paths are limited to about 100 bytes.
    socket_dir = tempfile.mkdtemp(prefix="fanout-tmux-")
    found = Screen(f"fanout-test-{uuid.uuid4().hex[:8]}", socket_dir, tmp_path)
    try:
        yield found
    finally:
        found.tmux("kill-server", check=False)
        shutil.rmtree(socket_dir, ignore_errors=True)


def terminal_env(**extra: str) -> dict[str, str]:
    """This environment without what would change the display (the suite may itself run
    in CI, with NO_COLOR, or inside tmux), plus `extra`."""
    dropped = {"NO_COLOR", "FORCE_COLOR", "TMUX", "TMUX_PANE", "COLUMNS", "LINES", *CI_VARIABLES}
    env = {name: value for name, value in os.environ.items() if name not in dropped}
    return {**env, **extra}


def fanout_command(*args: str) -> str:
    return shlex.join([str(FANOUT), "run", *args])


def live_lines(frame: list[str]) -> list[tuple[int, re.Match[str]]]:
    return [(number, found) for number, line in enumerate(frame)
            if (found := LIVE_LINE.search(line))]  # fmt: skip


def shows_live_area(frame: list[str]) -> bool:
    return any(mark in strip_escapes(line) for line in frame for mark in LIVE_MARKS)


def exit_code(last: list[str]) -> int:
    for line in last:
        if found := ENDED.match(strip_escapes(line)):
            return int(found.group(1))
    raise AssertionError("no exit line")


@pytest.mark.slow  # about 3 s: the tasks must run long enough to be watched
def test_live_area_shows_counts_and_running_tasks_then_gives_way_to_the_table(
    screen: Screen,
) -> None:
    (screen.workdir / "tasks.toml").write_text(TASKS)
    screen.start(fanout_command("tasks.toml", "-j", "2"), terminal_env())
    frames, last = screen.watch()

    seen: list[tuple[int, int, list[str]]] = []  # (done, running, ids under the live line)
    for frame in frames:
        for number, found in live_lines(frame):
            done, total, percent, running, _ = (int(group) for group in found.groups())
            assert total == 6 and percent == done * 100 // 6
            below = [line.split()[-1] for line in frame[number + 1 : number + 1 + running]]
            assert set(below) <= set(IDS), frame
            seen.append((done, running, below))
    assert (0, 2, ["alpha", "bravo"]) in seen, seen  # both first tasks, longest first
    assert any(0 < done < 6 for done, _, _ in seen), seen
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)

    assert exit_code(last) == 1  # charlie failed
    assert not shows_live_area(last), last
    assert screen.cursor_visible()  # rich hid it while drawing
    ended_at = next(number for number, line in enumerate(last) if ENDED.match(line))
    verdict = last[ended_at - 1]
    assert verdict.startswith("FAIL all-succeed: 1 failure of 6 · 6 tasks in "), last
    assert last[ended_at - 2].startswith("timeline of the slots, failures first: fanout report ")
    table = last[ended_at - 8 : ended_at - 2]
    assert [line.split()[:2] for line in table] == [
        ["success", "alpha"], ["success", "bravo"], ["failure", "charlie"],
        ["success", "delta"], ["success", "echo"], ["success", "foxtrot"],
    ], last  # fmt: skip
    assert table[2].endswith("broken (exit 3)")
    # Above the table, each task's line scrolled up as it ended (bravo before alpha).
    scrolled = [line.split()[1] for line in last[: ended_at - 9]]
    assert sorted(scrolled) == sorted(IDS) and scrolled.index("bravo") < scrolled.index("alpha")


def test_the_table_fits_a_short_terminal_with_failures_first(screen: Screen) -> None:
    values = [str(number) for number in range(1, 21)]
    command = fanout_command("-j", "10", "--", "sh", "-c", 'sleep 0.2; test "$0" != 13', "{}",
                             ":::", *values)  # fmt: skip
    screen.start(command, terminal_env(), lines=12)
    _, last = screen.watch()
    assert len(last) == 12, last  # the table filled the screen, and no more
    assert last[0] == ""
    assert last[1].startswith("failure   13 ")
    assert [line.split()[:2] for line in last[2:8]] == [["success", str(n)] for n in range(1, 7)]
    assert re.fullmatch(r"… 13 more in out/[^ ]+/manifest\.json", last[8]), last
    assert last[9].startswith("timeline of the slots, failures first: fanout report "), last
    assert last[10].startswith("FAIL all-succeed: 1 failure of 20 · 20 tasks in ")
    assert exit_code(last) == 1


@pytest.mark.parametrize(
    ("color_option", "coloured"), [((), False), (("--color", "always"), True)]
)
def test_no_color_means_no_escape_codes_unless_color_always(
    screen: Screen, color_option: tuple[str, ...], coloured: bool
) -> None:
    (screen.workdir / "tasks.toml").write_text(SHORT_TASKS)
    command = fanout_command("tasks.toml", "-j", "1", *color_option)
    screen.start(command, terminal_env(NO_COLOR="1"))
    frames, last = screen.watch(escapes=True)
    live = [frame for frame in frames if shows_live_area(frame)]
    assert live, frames
    for frame in [*live, last]:
        assert any("\x1b" in line for line in frame) is coloured, frame
    assert exit_code(last) == 1


@pytest.mark.parametrize(
    ("args", "extra_env", "pipe"),
    [
        (("--no-progress",), {}, False),
        ((), {"CI": "true"}, False),
        ((), {"GITHUB_ACTIONS": "true"}, False),
        ((), {}, True),  # stdout into a pipe
    ],
    ids=["no-progress", "CI", "GITHUB_ACTIONS", "piped"],
)
def test_no_live_area_in_ci_in_pipes_or_when_asked(
    screen: Screen, args: tuple[str, ...], extra_env: dict[str, str], pipe: bool
) -> None:
    (screen.workdir / "tasks.toml").write_text(SHORT_TASKS)
    command = fanout_command("tasks.toml", "-j", "1", *args) + (" | cat" if pipe else "")
    screen.start(command, terminal_env(**extra_env))
    frames, last = screen.watch()
    for frame in frames:
        assert not shows_live_area(frame), frame
    # Today's plain output: a line per task as it ends, then the verdict; no table.
    assert [line.split()[:2] for line in last[:2]] == [["success", "one"], ["failure", "two"]]
    assert last[2].startswith("FAIL all-succeed: ")
    assert ENDED.match(last[3]) and len(last) == 4, last


def test_progress_option_shows_the_live_area_even_in_ci(screen: Screen) -> None:
    (screen.workdir / "tasks.toml").write_text(SHORT_TASKS)
    screen.start(fanout_command("tasks.toml", "-j", "1", "--progress"), terminal_env(CI="true"))
    frames, last = screen.watch()
    assert any(shows_live_area(frame) for frame in frames), frames
    assert not shows_live_area(last), last
