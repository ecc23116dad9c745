"""GNU parallel's replacement strings: what a `{...}` in a command, an id or a prompt
means, and the values a task fills them from.

`{}` is every value of a task, `{1}`..`{N}` one of them (the Nth source, or column with
--colsep, or the Nth value of a batch with -N), `{name}` one named by --header or a task
file's matrix; each takes the modifiers `.` (no extension), `/` (basename), `//`
(dirname) and `/.` (basename, no extension). `{#}` is the task's number, `{%}` its slot,
`{##}` the number of tasks. Anything else GNU parallel would read as a replacement
string (`{0}`, `{-1}`, `{..}`, `{+/}`, `{= perl =}`, a position past the last) is an
error, never text; other braces (`{print $1}`, `${HOME}`, `{a,b}`) are text. A doubled
pair is a literal: `{{}}` is the text `{}`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fanout_cli.errors import UsageError

NUMBERS = ("#", "%", "##")  # numbers fanout makes: the task's, the slot's, the count
_MODIFIER = r"(/\.|//|/|\.)?"
_CANDIDATE = re.compile(r"\{\{([^{}]*)\}\}|\{([^{}]*)\}")
_POSITIONAL = re.compile(r"([1-9][0-9]{0,5})" + _MODIFIER)
_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)" + _MODIFIER)
# What GNU parallel would take for a replacement string: {0} {-1} {..} {+/} {1..} {= perl =}
_GNU_LIKE = re.compile(r"-?[0-9]*[./+#%]*|-?[0-9]* ?=.*=")
_GNU_SAFE = re.compile(r"[-_.+a-zA-Z0-9/]+")
_SHELL_SAFE = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


def without_extension(value: str) -> str:
    """`{.}`: drop the last `.ext` of the last path component (a/b.tar.gz -> a/b.tar)."""
    return re.sub(r"\.[^/.]*$", "", value)


def basename(value: str) -> str:
    """`{/}`: everything after the last slash."""
    return value[value.rfind("/") + 1 :]


def dirname(value: str) -> str:
    """`{//}`: POSIX dirname(1): a -> ., a/b -> a, /a -> /, a/ -> ."""
    stripped = value.rstrip("/")
    if not stripped:
        return "/" if value else "."
    slash = stripped.rfind("/")
    if slash < 0:
        return "."
    return stripped[:slash].rstrip("/") or "/"


MODIFIERS: dict[str, Callable[[str], str]] = {
    "": str,
    ".": without_extension,
    "/": basename,
    "//": dirname,
    "/.": lambda value: without_extension(basename(value)),
}


@dataclass(frozen=True)
class Token:
    """One replacement string: which values (`position` None: all of them) and what is
    made of each (`modifier`), or one of the numbers (`#`, `%`, `##`)."""

    position: int | None
    modifier: str
    text: str = field(default="", compare=False)  # as written, for messages

    @property
    def is_number(self) -> bool:
        return self.modifier in NUMBERS

    @property
    def key(self) -> tuple[int | None, str]:
        return self.position, self.modifier


@dataclass(frozen=True)
class Args:
    """The values one task is made from: one record (a value per source, or per column
    with --colsep), or several records with -m, -X and -N."""

    records: tuple[tuple[str, ...], ...]
    flat: bool = False  # -N: {k} is the kth value of the whole batch, not of each record

    @classmethod
    def one(cls, value: str) -> Args:
        return cls(((value,),))

    @property
    def values(self) -> list[str]:
        if len(self.records) == 1:
            return list(self.records[0])
        return [value for record in self.records for value in record]

    @property
    def single(self) -> str | None:
        """The value, when the task has exactly one."""
        if len(self.records) == 1 and len(self.records[0]) == 1:
            return self.records[0][0]
        return None

    def at(self, position: int | None) -> list[str]:
        """The values a replacement string with this position reads (none for a missing
        column or past the end of a short last batch: then, as in GNU parallel, a word
        that is only that replacement string is left out)."""
        if position is None:
            return self.values
        if self.flat:
            values = self.values
            return [values[position - 1]] if position <= len(values) else []
        return [record[position - 1] for record in self.records if position <= len(record)]

    def recorded(self, names: tuple[str, ...] = ()) -> str | list[str] | dict[str, str]:
        """The task's `input` as its records keep it: the value; a list of values; or,
        when each is named (--header, a matrix), an object of them."""
        single = self.single
        if single is not None and not names:
            return single
        one = len(self.records) == 1
        if one and len(names) == len(self.records[0]) == len(set(names)):
            return dict(zip(names, self.records[0], strict=True))
        return self.values


@dataclass(frozen=True)
class Grammar:
    """The replacement strings a text may use: positions 1..`positions` (None: any, as
    with --colsep, where a line's columns are known only when it is read) and `names`
    (the Nth name is position N)."""

    positions: int | None = 1
    names: tuple[str, ...] = ()

    def token(self, inner: str, where: str) -> Token | None:
        """The replacement string `{inner}`, or None when it is text; raises UsageError
        for one GNU parallel has and fanout does not."""
        text = "{" + inner + "}"
        if inner in MODIFIERS or inner in NUMBERS:
            return Token(None, inner, text)
        positional = _POSITIONAL.fullmatch(inner)
        if positional is not None:
            position = int(positional[1])
            if self.positions is None or position <= self.positions:
                return Token(position, positional[2] or "", text)
            raise self.unsupported(text, where)
        named = _NAMED.fullmatch(inner)
        if named is not None:
            if named[1] in self.names:
                return Token(self.names.index(named[1]) + 1, named[2] or "", text)
            return None
        if _GNU_LIKE.fullmatch(inner):
            raise self.unsupported(text, where)
        return None

    def unsupported(self, text: str, where: str) -> UsageError:
        if self.positions is None:
            count = "{1}, {2}, ... (one a column)"
        elif self.positions == 1:
            count = "{1}"
        else:
            count = f"{{1}}..{{{self.positions}}}"
        named = "".join(f" {{{name}}}" for name in self.names[:6])
        return UsageError(
            f"{where}: {text} is not a replacement string fanout supports here; supported: "
            f"{{}} {{.}} {{/}} {{//}} {{/.}} {{#}} {{%}} {{##}}, {count} with the same "
            f"modifiers ({{1.}} {{1/}} {{1//}} {{1/.}}){named}; write {{{text}}} for the text "
            f"{text}"
        )

    def split(self, text: str, where: str) -> tuple[str | Token, ...]:
        """The text cut into literal pieces and replacement strings."""
        return _split(text, where, self)


ONE_VALUE = Grammar()  # a task made from one value: {} and {1}


@functools.lru_cache(maxsize=256)
def _split(text: str, where: str, grammar: Grammar) -> tuple[str | Token, ...]:
    parts: list[str | Token] = []
    literal, position = "", 0
    for match in _CANDIDATE.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        escaped, inner = match.group(1), match.group(2)
        if escaped is not None:
            literal += "{" + escaped + "}" if _is_replacement(escaped, grammar) else match[0]
            continue
        token = grammar.token(inner, where)
        if token is None:
            literal += match[0]
            continue
        parts += [literal, token] if literal else [token]
        literal = ""
    literal += text[position:]
    if literal:
        parts.append(literal)
    return tuple(parts)


def _is_replacement(inner: str, grammar: Grammar) -> bool:
    """`{{inner}}` is an escaped replacement string (supported or not), not text."""
    try:
        return grammar.token(inner, "") is not None
    except UsageError:
        return True


def strings(token: Token, args: Args, seq: int, slot: int | None, total: int | None) -> list[str]:
    """What one replacement string stands for in one task: one string, or one for each
    value it reads (`{}` of a combination of two is two strings)."""
    if token.modifier == "#":
        return [str(seq)]
    if token.modifier == "%":
        return ["{%}" if slot is None else str(slot)]
    if token.modifier == "##":
        return ["{##}" if total is None else str(total)]
    modify = MODIFIERS[token.modifier]
    return [modify(value) for value in args.at(token.position)]


def has_replacement(text: str, grammar: Grammar = ONE_VALUE) -> bool:
    return any(isinstance(part, Token) for part in grammar.split(text, repr(text)))


def render_text(
    text: str, args: Args | str, seq: int, grammar: Grammar = ONE_VALUE, total: int | None = None
) -> str:
    """A task id, prompt or path with its replacement strings filled in (values joined
    by a space; nothing is quoted)."""
    values = Args.one(args) if isinstance(args, str) else args
    return "".join(
        part if isinstance(part, str) else " ".join(strings(part, values, seq, None, total))
        for part in grammar.split(text, repr(text))
    )


def gnu_quote(value: str) -> str:
    """A value quoted for sh as GNU parallel quotes it (its --dry-run prints this)."""
    if _GNU_SAFE.fullmatch(value):
        return value
    if not value:
        return "''"
    quoted = "'" + value.replace("'", "'\"'\"'") + "'"
    return quoted.removeprefix("''").removesuffix("''")


def shell_word(text: str) -> str:
    """Literal text of a command as a shell reads it: as is when it is safe."""
    return text if not text or _SHELL_SAFE.fullmatch(text) else gnu_quote(text)
