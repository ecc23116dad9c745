"""aider --message: aider, which prints a banner, the reply and its bookkeeping."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from fanout_cli.agent_cli.common import (
    CliReply,
    Preset,
    finite_number,
    with_system,
)


def command(
    prompt: str, model: str | None, system: str | None, extra_args: tuple[str, ...]
) -> tuple[str, ...]:
    # aider has no system-prompt option. `--message=PROMPT` (argparse) keeps a prompt that
    # starts with `-` the message. --yes-always answers its confirmations (stdin is empty);
    # --no-pretty and --no-stream print the reply once, without colour codes.
    # --no-auto-commits: parallel runs in one checkout would race on git (index.lock) and
    # each commit its own edits; fanout keeps every run's output but leaves the history
    # alone. ARGS come last, so `--auto-commits` there wins (argparse keeps the last one).
    argv = [
        "aider",
        f"--message={with_system(prompt, system)}",
        "--yes-always",
        "--no-pretty",
        "--no-stream",
        "--no-auto-commits",
    ]
    if model is not None:
        argv.append(f"--model={model}")
    return (*argv, *extra_args)


# aider's bookkeeping, from Coder.calculate_and_show_tokens_and_cost:
#   Tokens: 2.1k sent, 1.0k cache write, 3.2k cache hit, 150 received. Cost: $0.0012 message,
#   $0.0034 session.   <- one line
# (the Cost part moves to its own line when there are both cache writes and hits, and is
# absent when aider knows no price for the model). Counts over 999 are shortened:
# 2.1k below 10 000, then whole thousands (15k).
# The counts end at the first full stop followed by a space or the end of the line.
_AIDER_TOKENS = re.compile(r"Tokens: (?P<counts>.+?)(?:\.(?=\s|$)|$)")
_AIDER_COUNT = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<suffix>[kKmM]?) (?P<label>[a-z ]+)")
_AIDER_COST = re.compile(
    r"Cost: \$(?P<message>\d+(?:\.\d+)?) message, \$(?P<session>\d+(?:\.\d+)?) session\."
)
_AIDER_COUNT_KEYS = {
    "sent": "input_tokens",
    "received": "output_tokens",
    "cache write": "cache_write_tokens",
    "cache hit": "cache_hit_tokens",
    "cache read": "cache_hit_tokens",
}
_AIDER_MODEL = re.compile(r"(?:Main model|Model|Models): (?P<model>\S+) with ")
# The banner aider prints before the reply (Coder.get_announcements) starts with its
# version and goes on with lines like these.
_AIDER_VERSION = re.compile(r"Aider v\d")
_AIDER_BANNER = (
    "Aider v", "Model:", "Models:", "Main model:", "Weak model:", "Editor model:",
    "Git repo:", "Repo-map:", "Added ", "Cur working dir:", "Git working dir:",
    "Multiline mode:", "Restored previous conversation history",
)


def parse(stdout: str) -> CliReply:
    """aider prints text: a banner, the reply, then a Tokens/Cost line per model call.

    One run can make several calls (edit retries, lint fixes): their token counts are
    added up, and the cost is the session total of the last Cost line. text is the
    output without the banner and those lines."""
    model, lines = _without_aider_banner(stdout.splitlines())
    usage: dict[str, int | None] | None = None
    cost: float | None = None
    kept: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith(("Tokens: ", "Cost: $")):
            kept.append(line)
            continue
        counted = _aider_counts(stripped)
        if counted:
            usage = _add_counts(usage, counted)
        cost_match = _AIDER_COST.search(stripped)
        if cost_match is not None:
            cost = finite_number(float(cost_match["session"]))
        if not counted and cost_match is None:
            kept.append(line)  # not aider's bookkeeping after all
    return CliReply(
        text="\n".join(kept).strip(), model=model, usage=usage, cost_usd=cost,
        is_error=False, error=None, session_id=None,
    )


def _without_aider_banner(lines: list[str]) -> tuple[str | None, list[str]]:
    """The model named in the banner, and the lines after it (all lines when there is no
    banner). Warnings aider prints before its banner go with it: they are not the reply."""
    start = next(
        (index for index, line in enumerate(lines) if _AIDER_VERSION.match(line)), None
    )
    if start is None:
        return None, lines
    index = start + 1
    model = None
    while index < len(lines) and lines[index].startswith(_AIDER_BANNER):
        found = _AIDER_MODEL.match(lines[index])
        if found is not None and model is None:
            model = found["model"]
        index += 1
    return model, lines[index:]


def _aider_counts(line: str) -> dict[str, int]:
    found = _AIDER_TOKENS.match(line)
    if found is None:
        return {}
    counts: dict[str, int] = {}
    for part in found["counts"].split(", "):
        count = _AIDER_COUNT.fullmatch(part.strip())
        if count is None:
            continue
        key = _AIDER_COUNT_KEYS.get(count["label"])
        number = _shortened_count(count["number"], count["suffix"])
        if key is not None and number is not None:
            counts[key] = counts.get(key, 0) + number
    return counts


def _shortened_count(number: str, suffix: str) -> int | None:
    """'2.1', 'k' -> 2100: the count as aider rounded it for display."""
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[suffix.lower()]
    try:
        return int(Decimal(number) * scale)
    except InvalidOperation:
        return None


def _add_counts(
    usage: dict[str, int | None] | None, counts: dict[str, int]
) -> dict[str, int | None]:
    total: dict[str, int | None] = (
        dict(usage) if usage is not None else {"input_tokens": None, "output_tokens": None}
    )
    for key, count in counts.items():
        total[key] = (total.get(key) or 0) + count
    return total


PRESET = Preset(
    "aider",
    "aider --message=PROMPT --yes-always --no-pretty --no-stream --no-auto-commits "
    "[--model=M] [--read=FILE] ARGS... (system text put before it)",
    command,
    parse,
    attach_option="--read",  # a file aider reads but does not edit
)
