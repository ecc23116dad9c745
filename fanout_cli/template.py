"""Command templates: GNU parallel's replacement strings, and values that stay data.

Several words run without a shell: each word is substituted literally, so a value is
always exactly one argument (or part of one). A single word with shell syntax, or
`--shell`, runs under `sh -c`, and then no value is ever written into the script: the
script starts with `set -- VALUE...` (each value shell-quoted, in a place fanout writes
itself) and reads the values as positional parameters, `"$1"` or `${1}` as the place of
each replacement string needs (shell_scan finds the place). So a value never becomes
code, in quotes, here-documents, arithmetic or anywhere else, and the command is still
one string that can be printed, saved and pasted into a shell. `{{}}` (and `{{.}}`,
...) stand for a literal `{}`."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from fanout_cli.errors import UsageError
from fanout_cli.shell_scan import (
    ANSI,
    ARITHMETIC,
    ARITHMETIC_COMMAND,
    DELIMITER,
    DOUBLE,
    HEREDOC,
    PLAIN,
    QUOTED_HEREDOC,
    SINGLE,
    Place,
    ShellScanner,
    is_arithmetic_value,
)

_TOKENS = ("", ".", "/", "//", "/.", "#", "%")
_INNER = "|".join(re.escape(token) for token in sorted(_TOKENS, key=len, reverse=True))
# Group 1: an escaped token ({{}} -> {}); group 2: a replacement string.
_PATTERN = re.compile(rf"\{{\{{({_INNER})\}}\}}|\{{({_INNER})\}}")
_SHELL_SYNTAX = re.compile(r"[\s|&;<>()$`\\\"'*?\[\]#~]")
# Places where a `$` before a replacement string is text already: '...', $'...', <<'EOF'.
_QUOTING_DOLLAR = (SINGLE, ANSI, QUOTED_HEREDOC, DELIMITER)
_NUMBERS = ("#", "%")
_HEREDOC_SPECIAL = re.compile(r"[\\$`]")  # what an unquoted here-document expands
_PLAIN_DELIMITER = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9_.,:+@%/-]*"
)  # {#} and {%}: numbers fanout makes, written into the script as is
# How a script reads positional parameter N where a replacement string stands: always
# one field, never split, globbed or read again. ${1+"$1"} is that in a word, in "...",
# and in a here-document body alike (POSIX keeps quotes special inside ${...} there),
# so that a place guessed wrong between those three still reads the value exactly.
_REFERENCES = {
    PLAIN: '"${0}"',
    SINGLE: "'\"${0}\"'",  # close the user's '...', read the value, reopen
    ANSI: "'\"${0}\"$'",
    DOUBLE: '${{{0}+"${0}"}}',
    HEREDOC: '${{{0}+"${0}"}}',
    ARITHMETIC: "${{{0}}}",  # dash rejects quotes in $(( )); only numbers pass here
    ARITHMETIC_COMMAND: '"${0}"',  # bash's (( )) takes quotes; dash reads ( ( ... ) )
}


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
class _Token:
    name: str  # "" for {}, "." for {.}, ...
    context: str = PLAIN  # shell mode: the place it is in (shell_scan's names)
    arithmetic: bool = False  # shell mode: arithmetic may read it


@dataclass(frozen=True)
class Template:
    """A command with replacement strings, ready to render once per value."""

    words: tuple[str, ...]
    shell: bool

    def __post_init__(self) -> None:
        if self.shell:
            self._check_places()  # a value that no reference can reach: say so now

    @classmethod
    def parse(cls, words: list[str] | tuple[str, ...], force_shell: bool = False) -> Template:
        shell = force_shell or (len(words) == 1 and looks_like_shell(words[0]))
        return cls(tuple(words), shell)

    @property
    def _parts(self) -> tuple[tuple[str | _Token, ...], ...]:
        return self._compiled[0]

    @property
    def _placed(self) -> list[_Token]:
        """Shell mode: every value's reference, the appended one included."""
        appended = self._compiled[1]
        return self._tokens() if appended is None else [appended]

    @functools.cached_property
    def _compiled(self) -> tuple[tuple[tuple[str | _Token, ...], ...], _Token | None]:
        """Each word cut once into literal text and replacement strings; in shell mode
        each replacement string also knows the place it is in, and so does the value
        appended to a script with none (`let` + value is arithmetic)."""
        scanner = ShellScanner() if self.shell else None
        placed: list[list[str | tuple[str, Place | None]]] = []
        # In shell mode the words are one script (they are joined with spaces anyway).
        for word in (_unquote_heredocs(" ".join(self.words)),) if self.shell else self.words:
            parts: list[str | tuple[str, Place | None]] = []
            position = 0
            for match in _PATTERN.finditer(word):
                literal = word[position : match.start()]
                if match.group(1) is not None:
                    literal += "{" + match.group(1) + "}"
                parts.append(literal)
                if scanner is not None:
                    scanner.feed(literal)
                if match.group(2) is not None:
                    place = None if scanner is None else scanner.place()
                    if place is not None and place.context not in _QUOTING_DOLLAR:
                        parts[-1] = _literal_dollar(literal)
                    parts.append((match.group(2), place))
                position = match.end()
            parts.append(word[position:])
            if scanner is not None:
                scanner.feed(word[position:] + " ")
            placed.append([part for part in parts if part != ""])
        # Only now: whether a [[ ]] compares numbers is known at its end.
        compiled = tuple(tuple(_token(part) for part in word) for word in placed)
        if scanner is None or any(isinstance(part, tuple) for word in placed for part in word):
            return compiled, None
        return compiled, _Token("", *_where(scanner.place()))

    def _check_places(self) -> None:
        script = " ".join(self.words)
        appended = self._compiled[1]
        if appended is not None and appended.context in (HEREDOC, QUOTED_HEREDOC):
            raise UsageError(
                f"command {script!r} has no {{}} and ends in a here-document, where the "
                "value cannot be appended; write {} where the value goes"
            )
        for part in self._placed:
            if part.name in _NUMBERS:
                continue
            if part.context == QUOTED_HEREDOC:
                raise UsageError(
                    f"command {script!r}: {{{part.name}}} is in a here-document with a "
                    "quoted delimiter that is not a plain word (or that never ends), "
                    "where no value can be read; name it like <<'EOF' ... EOF"
                )
            if part.context == DELIMITER:
                raise UsageError(
                    f"command {script!r}: {{{part.name}}} cannot be a here-document's "
                    "delimiter (the word after <<)"
                )

    def _tokens(self) -> list[_Token]:
        return [part for word in self._parts for part in word if isinstance(part, _Token)]

    @functools.cached_property
    def appends_value(self) -> bool:
        """No replacement string anywhere: the value becomes the last argument."""
        return not self._tokens()

    @functools.cached_property
    def uses_slot(self) -> bool:
        return any(part.name == "%" for part in self._tokens())

    @functools.cached_property
    def _whole_word_values(self) -> tuple[list[str], tuple[int, ...]] | None:
        """Several words: (the words, where the value goes) when every replacement string
        is a whole word `{}`, or there is none (the common cases: `wc -l {}`, `gzip`);
        else None. Rendering is then a list assignment, which a million-line input
        notices."""
        words: list[str] = []
        positions: list[int] = []
        for parts in self._parts:
            if parts == (_Token(""),):
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

    @functools.cached_property
    def _parameters(self) -> tuple[str, ...]:
        """Shell mode: the replacement strings made from the value, in the order of their
        positional parameters ($1 is the first one the script names)."""
        if self.appends_value:
            return ("",)
        names = [part.name for part in self._tokens() if part.name not in _NUMBERS]
        return tuple(dict.fromkeys(names))

    @functools.cached_property
    def _script(self) -> tuple[str | _Token, ...]:
        """Shell mode: the script, with each value's reference written in; only {#} and
        {%} are left to fill."""
        number = {name: index for index, name in enumerate(self._parameters, start=1)}
        pieces: list[str | _Token] = []
        for parts in self._parts:
            for part in parts:
                if isinstance(part, _Token) and part.name not in _NUMBERS:
                    pieces.append(_REFERENCES[part.context].format(number[part.name]))
                else:
                    pieces.append(part)
            pieces.append(" ")
        pieces.pop()
        appended = self._compiled[1]
        if appended is not None:
            pieces.append(" " + _REFERENCES[appended.context].format(1))
        if all(isinstance(piece, str) for piece in pieces):
            return ("".join(str(piece) for piece in pieces),)
        return tuple(pieces)

    @functools.cached_property
    def _arithmetic_names(self) -> tuple[str, ...]:
        names = [part.name for part in self._placed if part.arithmetic]
        return tuple(name for name in dict.fromkeys(names) if name not in _NUMBERS)

    def render(self, value: str, seq: int, slot: int | None = None) -> tuple[str, ...] | str:
        """The argv (several words) or the `sh -c` script (shell mode) for one value."""
        if self.shell:
            return self._render_script(value, seq, slot)
        fast = self._whole_word_values
        if fast is not None:
            words, positions = fast[0].copy(), fast[1]
            for position in positions:
                words[position] = value
            return tuple(words)
        words = [
            "".join(
                _REPLACEMENTS[part.name](value, seq, slot) if isinstance(part, _Token) else part
                for part in parts
            )
            for parts in self._parts
        ]
        if self.appends_value:
            words.append(value)
        return tuple(words)

    @functools.cached_property
    def _after_value(self) -> str | None:
        """`; SCRIPT` when the script takes the one value `{}` and nothing else varies
        (the common case, and the one a million-line input notices); else None."""
        if len(self._script) == 1 and self._parameters == ("",) and not self._arithmetic_names:
            return "; " + str(self._script[0])
        return None

    def _render_script(self, value: str, seq: int, slot: int | None) -> str:
        after = self._after_value
        if after is not None:
            return "set -- " + shlex.quote(value) + after
        script = "".join(
            _REPLACEMENTS[piece.name](value, seq, slot) if isinstance(piece, _Token) else piece
            for piece in self._script
        )
        if not self._parameters:
            return script
        values = [_REPLACEMENTS[name](value, seq, slot) for name in self._parameters]
        prologue = "set -- " + " ".join(shlex.quote(text) for text in values) + "; "
        for name in self._arithmetic_names:
            if not is_arithmetic_value(_REPLACEMENTS[name](value, seq, slot)):
                refusal = (
                    f"fanout: refused: the command reads {{{name}}} as arithmetic, and "
                    "this value is not a number"
                )
                return f"{prologue}echo {shlex.quote(refusal)} >&2; exit 2; {script}"
        return prologue + script


def _unquote_heredocs(script: str) -> str:
    """A here-document with a quoted delimiter (<<'EOF') and a value in its body,
    written as the unquoted one that prints the same text (<<EOF, with \\, $ and ` in
    its body escaped), so that the value can be read there as `${1+"$1"}`, exactly.
    A delimiter that is not a plain word, or a body that never ends, is left as it is
    (and the template is refused)."""
    if "<<" not in script:
        return script
    scanner, position = ShellScanner(), 0
    for match in _PATTERN.finditer(script):
        scanner.feed(script[position : match.start()])
        if match.group(1) is not None:
            scanner.feed(match.group(0))
        else:
            scanner.place(len(match.group(0)), value=match.group(2) not in _NUMBERS)
        position = match.end()
    scanner.feed(script[position:] + "\n")
    edits: list[tuple[int, int, str]] = []
    for heredoc in scanner.heredocs:
        plain = _PLAIN_DELIMITER.fullmatch(heredoc.delimiter) is not None
        if heredoc.kind == "quoted_heredoc" and heredoc.values and heredoc.body_end >= 0 and plain:
            start, end = heredoc.body_start, heredoc.body_end
            edits.append((start, end, _escape_for_heredoc(script[start:end])))
            edits.append((*heredoc.word, heredoc.delimiter))
    for start, end, text in sorted(edits, reverse=True):
        script = script[:start] + text + script[end:]
    return script


def _escape_for_heredoc(body: str) -> str:
    """Literal text as an unquoted here-document body prints it; replacement strings
    are left alone."""
    pieces, position = [], 0
    for match in _PATTERN.finditer(body):
        pieces += [_HEREDOC_SPECIAL.sub(r"\\\g<0>", body[position : match.start()]), match[0]]
        position = match.end()
    return "".join([*pieces, _HEREDOC_SPECIAL.sub(r"\\\g<0>", body[position:])])


def _literal_dollar(text: str) -> str:
    """`${}` means a `$` and the value, never a variable the value names: a bare `$`
    just before a replacement string is escaped (its reference starts with `$` or `"`)."""
    if text.endswith("$") and (len(text) - len(text[:-1].rstrip("\\"))) % 2 == 1:
        return text[:-1] + "\\$"
    return text


def _token(part: str | tuple[str, Place | None]) -> str | _Token:
    if isinstance(part, str):
        return part
    name, place = part
    return _Token(name) if place is None else _Token(name, *_where(place))


def _where(place: Place) -> tuple[str, bool]:
    return place.context, place.reads_arithmetic()


def render_text(text: str, value: str, seq: int) -> str:
    """A task id or other plain text with replacement strings (nothing is quoted)."""
    return substitute(text, value, seq, None, _literal)


def display_command(command: tuple[str, ...] | str) -> str:
    """A command as it can be pasted into a shell."""
    return command if isinstance(command, str) else shlex.join(command)
