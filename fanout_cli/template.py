"""Command templates: GNU parallel's replacement strings, and quoting that cannot break.

Several words run without a shell: each word is substituted literally, so a value is
always exactly one argument (or part of one). A single word with shell syntax, or
`--shell`, runs under `sh -c`; then every substituted value is shell-quoted, so a
value can never become code. `{{}}` (and `{{.}}`, ...) stand for a literal `{}`."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

_TOKENS = ("", ".", "/", "//", "/.", "#", "%")
_INNER = "|".join(re.escape(token) for token in sorted(_TOKENS, key=len, reverse=True))
# Group 1: an escaped token ({{}} -> {}); group 2: a replacement string.
_PATTERN = re.compile(rf"\{{\{{({_INNER})\}}\}}|\{{({_INNER})\}}")
_SHELL_SYNTAX = re.compile(r"[\s|&;<>()$`\\\"'*?\[\]#~]")


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


_REPLACEMENTS: dict[str, Callable[[str, int, int | None], str]] = {
    "": lambda value, seq, slot: value,
    ".": lambda value, seq, slot: without_extension(value),
    "/": lambda value, seq, slot: basename(value),
    "//": lambda value, seq, slot: dirname(value),
    "/.": lambda value, seq, slot: without_extension(basename(value)),
    "#": lambda value, seq, slot: str(seq),
    "%": lambda value, seq, slot: "{%}" if slot is None else str(slot),
}


def has_replacement(text: str) -> bool:
    return any(match.group(2) is not None for match in _PATTERN.finditer(text))


def looks_like_shell(word: str) -> bool:
    """Shell syntax outside the replacement strings: spaces, pipes, quotes, `$`, ..."""
    return bool(_SHELL_SYNTAX.search(_PATTERN.sub("", word)))


def substitute(
    text: str, value: str, seq: int, slot: int | None, quote: Callable[[str], str]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return "{" + match.group(1) + "}"
        return quote(_REPLACEMENTS[match.group(2)](value, seq, slot))

    return _PATTERN.sub(replace, text)


def _literal(text: str) -> str:
    return text


@dataclass(frozen=True)
class Template:
    """A command with replacement strings, ready to render once per value."""

    words: tuple[str, ...]
    shell: bool

    @classmethod
    def parse(cls, words: list[str] | tuple[str, ...], force_shell: bool = False) -> Template:
        shell = force_shell or (len(words) == 1 and looks_like_shell(words[0]))
        return cls(tuple(words), shell)

    @functools.cached_property
    def _parts(self) -> tuple[tuple[str | _Token, ...], ...]:
        """Each word cut once into literal text and replacement strings; in shell mode
        each replacement string also remembers the quoting it sits in."""
        quoting = _ShellQuoting()
        compiled = []
        for word in self.words:
            parts: list[str | _Token] = []
            position = 0
            for match in _PATTERN.finditer(word):
                parts.append(word[position : match.start()])
                quoting.feed(word[position : match.start()])
                if match.group(1) is not None:
                    literal = "{" + match.group(1) + "}"
                    parts.append(literal)
                    quoting.feed(literal)
                else:
                    parts.append(_Token(match.group(2), quoting.context))
                position = match.end()
            parts.append(word[position:])
            quoting.feed(word[position:] + " ")
            compiled.append(tuple(part for part in parts if part != ""))
        return tuple(compiled)

    @functools.cached_property
    def appends_value(self) -> bool:
        """No replacement string anywhere: the value becomes the last argument."""
        return not any(isinstance(part, _Token) for word in self._parts for part in word)

    @functools.cached_property
    def uses_slot(self) -> bool:
        return any(part == _Token("%") for word in self._parts for part in word)

    @functools.cached_property
    def _whole_word_values(self) -> tuple[list[str], tuple[int, ...]] | None:
        """(the words, where the value goes) when every replacement string is a whole
        word `{}` outside quotes, or there is none (the common cases: `wc -l {}`,
        `gzip`); else None. Rendering is then a list assignment, which a million-line
        input notices."""
        words: list[str] = []
        positions: list[int] = []
        for parts in self._parts:
            if parts == (_Token("", "plain"),):
                positions.append(len(words))
                words.append("")
            elif any(isinstance(part, _Token) for part in parts):
                return None
            else:
                words.append("".join(str(part) for part in parts))
        if not positions:
            positions.append(len(words))
            words.append("")
        return words, tuple(positions)

    def render(self, value: str, seq: int, slot: int | None = None) -> tuple[str, ...] | str:
        """The argv (several words) or the `sh -c` script (shell mode) for one value."""
        fast = self._whole_word_values
        if fast is not None:
            words, positions = fast[0].copy(), fast[1]
            filled = shlex.quote(value) if self.shell else value
            for position in positions:
                words[position] = filled
            return " ".join(words) if self.shell else tuple(words)
        words = []
        for parts in self._parts:
            pieces = [
                (_QUOTERS[part.context] if self.shell else _literal)(
                    _REPLACEMENTS[part.name](value, seq, slot)
                )
                if isinstance(part, _Token)
                else part
                for part in parts
            ]
            words.append("".join(pieces))
        if self.appends_value:
            words.append(shlex.quote(value) if self.shell else value)
        return " ".join(words) if self.shell else tuple(words)


@dataclass(frozen=True)
class _Token:
    name: str  # "" for {}, "." for {.}, ...
    context: str = "plain"  # shell quoting around it: plain, single, double, backtick


def _in_single_quotes(text: str) -> str:
    return text.replace("'", "'\\''")  # close, an escaped quote, reopen


def _in_double_quotes(text: str) -> str:
    return re.sub(r'([\\$`"])', r"\\\1", text)


def _in_backticks(text: str) -> str:
    # Inside `...` the shell first removes one level of backslashes before \\ \` $.
    return re.sub(r"([\\`$])", r"\\\1", shlex.quote(text))


_QUOTERS: dict[str, Callable[[str], str]] = {
    "plain": shlex.quote,
    "backtick": _in_backticks,
    "single": _in_single_quotes,
    "double": _in_double_quotes,
}


class _ShellQuoting:
    """Follows sh quoting through a template so that a value put inside '...' or
    "..." by the user is escaped for that place: a value never becomes code, even
    where GNU parallel would let `"{}"` run `$(...)` from a value."""

    def __init__(self) -> None:
        self._stack = ["plain"]  # plain, single, double; "(" and "`" for $(...) and `...`

    @property
    def context(self) -> str:
        top = self._stack[-1]
        if top == "`":
            return "backtick"
        return top if top in ("single", "double") else "plain"

    def feed(self, text: str) -> None:
        index = 0
        while index < len(text):
            char, top = text[index], self._stack[-1]
            if top == "single":
                if char == "'":
                    self._stack.pop()
            elif char == "\\":
                index += 1  # the next character is escaped
            elif top == "double" and char == '"':
                self._stack.pop()
            elif top != "double" and char in "'\"":
                self._stack.append("single" if char == "'" else "double")
            elif char == "`":
                if top == "`":
                    self._stack.pop()
                else:
                    self._stack.append("`")
            elif char == "(" and (top != "double" or text[index - 1 : index] == "$"):
                self._stack.append("(")
            elif char == ")" and top == "(":
                self._stack.pop()
            index += 1


def render_text(text: str, value: str, seq: int) -> str:
    """A task id or other plain text with replacement strings (nothing is quoted)."""
    return substitute(text, value, seq, None, _literal)


def display_command(command: tuple[str, ...] | str) -> str:
    """A command as it can be pasted into a shell."""
    return command if isinstance(command, str) else shlex.join(command)
