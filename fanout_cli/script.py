"""A command run under `sh -c`, with values that stay data.

No value is ever written into the script: the script starts with `set -- VALUE...`
(each value shell-quoted, in a place fanout writes itself) and reads the values as
positional parameters, `"$1"` or `${1}` as the place of each replacement string needs
(shell_scan finds the place). So a value never becomes code, in quotes, here-documents,
arithmetic or anywhere else, and the command is still one string that can be printed,
saved and pasted into a shell."""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass

from fanout_cli.errors import UsageError
from fanout_cli.replacements import Args, Grammar, Token, gnu_quote, strings
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

# Places where a `$` before a replacement string is text already: '...', $'...', <<'EOF'.
_QUOTING_DOLLAR = (SINGLE, ANSI, QUOTED_HEREDOC, DELIMITER)
_HEREDOC_SPECIAL = re.compile(r"[\\$`]")  # what an unquoted here-document expands
_PLAIN_DELIMITER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,:+@%/-]*")
# How a script reads positional parameter N where a replacement string stands: always
# one field, never split, globbed or read again. ${1+"$1"} is that in a word, in "...",
# and in a here-document body alike (POSIX keeps quotes special inside ${...} there),
# so that a place guessed wrong between those three still reads the value exactly.
# A replacement string with several values ({} of a combination) reads each, separated
# by a space: as separate words in a plain word, as one text inside quotes.
_REFERENCES = {  # {p}: $1 (${10} past 9); {n}: the number
    PLAIN: ('"{p}"', " ", "", ""),
    SINGLE: ("{p}", " ", "'\"", "\"'"),  # close the user's '...', read, reopen
    ANSI: ("{p}", " ", "'\"", "\"$'"),
    DOUBLE: ('${{{n}+"{p}"}}', " ", "", ""),
    HEREDOC: ('${{{n}+"{p}"}}', " ", "", ""),
    ARITHMETIC: ("${{{n}}}", " ", "", ""),  # dash rejects quotes in $(( )); numbers only
    ARITHMETIC_COMMAND: ('"{p}"', " ", "", ""),  # bash's (( )) takes quotes
}


@dataclass(frozen=True)
class Placed:
    """A replacement string in a script, with the place it is in."""

    token: Token
    context: str = PLAIN
    arithmetic: bool = False  # arithmetic may read it


def reference(context: str, numbers: range) -> str:
    each, separator, before, after = _REFERENCES[context]
    texts = (each.format(n=n, p=f"${n}" if n < 10 else f"${{{n}}}") for n in numbers)
    return before + separator.join(texts) + after


@dataclass(frozen=True)
class ShellScript:
    """The words of a command, joined into one script, ready to render once per task."""

    text: str
    grammar: Grammar

    def __post_init__(self) -> None:
        self._check_places()  # a value that no reference can reach: say so now

    @functools.cached_property
    def _compiled(self) -> tuple[tuple[str | Placed, ...], Placed | None]:
        """The script cut once into literal text and replacement strings, each knowing
        the place it is in; and, for a script with none, the value appended to it (`let`
        + value is arithmetic)."""
        scanner, pieces = ShellScanner(), list[str | tuple[Token, Place]]()
        self.grammar.split(self.text, f"command {self.text!r}")  # one fanout lacks: say so
        parts = self.grammar.split(_unquote_heredocs(self.text, self.grammar), "")
        for part in parts:
            if isinstance(part, str):
                scanner.feed(part)
                pieces.append(part)
                continue
            place = scanner.place()
            if pieces and isinstance(pieces[-1], str) and place.context not in _QUOTING_DOLLAR:
                pieces[-1] = _literal_dollar(pieces[-1])
            pieces.append((part, place))
        scanner.feed(" ")
        # Only now: whether a [[ ]] compares numbers is known at its end.
        placed = tuple(_placed(piece) for piece in pieces)
        if any(isinstance(piece, Placed) for piece in placed):
            return placed, None
        appended = Placed(Token(None, "", "{}"), *_where(scanner.place()))
        return placed, appended

    @property
    def parts(self) -> tuple[str | Placed, ...]:
        return self._compiled[0]

    @property
    def appended(self) -> Placed | None:
        return self._compiled[1]

    def _placed_values(self) -> list[Placed]:
        found = [part for part in self.parts if isinstance(part, Placed)]
        return found if self.appended is None else [self.appended]

    def _check_places(self) -> None:
        if self.appended is not None and self.appended.context in (HEREDOC, QUOTED_HEREDOC):
            raise UsageError(
                f"command {self.text!r} has no {{}} and ends in a here-document, where the "
                "value cannot be appended; write {} where the value goes"
            )
        for part in self._placed_values():
            if part.token.is_number:
                continue
            if part.context == QUOTED_HEREDOC:
                raise UsageError(
                    f"command {self.text!r}: {part.token.text} is in a here-document with a "
                    "quoted delimiter that is not a plain word (or that never ends), "
                    "where no value can be read; name it like <<'EOF' ... EOF"
                )
            if part.context == DELIMITER:
                raise UsageError(
                    f"command {self.text!r}: {part.token.text} cannot be a here-document's "
                    "delimiter (the word after <<)"
                )

    @functools.cached_property
    def keys(self) -> tuple[tuple[int | None, str], ...]:
        """The values' replacement strings, in the order of their positional parameters."""
        keys = [part.token.key for part in self._placed_values() if not part.token.is_number]
        return tuple(dict.fromkeys(keys))

    @functools.cached_property
    def _arithmetic(self) -> tuple[Token, ...]:
        found = {p.token.key: p.token for p in self._placed_values() if p.arithmetic}
        return tuple(token for token in found.values() if not token.is_number)

    @functools.cached_property
    def plain_only(self) -> bool:
        """Every value stands as a plain word: the script can be shown with the values
        written in, quoted, as GNU parallel shows it, and mean the same."""
        values = [part for part in self._placed_values() if not part.token.is_number]
        return all(part.context == PLAIN and not part.arithmetic for part in values)

    @functools.cached_property
    def after_value(self) -> str | None:
        """`; SCRIPT` when the script takes one `{}` and nothing else varies (the common
        case, and the one a million-line input notices); else None."""
        if self.keys != ((None, ""),) or self._arithmetic:
            return None
        if any(isinstance(part, Placed) and part.token.is_number for part in self.parts):
            return None
        text = "".join(reference(p.context, range(1, 2)) if isinstance(p, Placed) else p
                       for p in self.parts)  # fmt: skip
        if self.appended is not None:
            text += " " + reference(self.appended.context, range(1, 2))
        return "; " + text

    def render(self, args: Args, seq: int, slot: int | None, total: int | None) -> str:
        single = args.single
        if single is not None and self.after_value is not None:
            return "set -- " + shlex.quote(single) + self.after_value
        params: list[str] = []
        numbers: dict[tuple[int | None, str], range] = {}
        for key in self.keys:
            made = strings(Token(*key), args, seq, slot, total)
            numbers[key] = range(len(params) + 1, len(params) + 1 + len(made))
            params += made
        pieces = [self._piece(part, numbers, args, seq, slot, total) for part in self.parts]
        if self.appended is not None:
            pieces.append(" " + reference(self.appended.context, numbers[(None, "")]))
        script = "".join(pieces)
        if not params:
            return script
        prologue = "set -- " + " ".join(shlex.quote(text) for text in params) + "; "
        for token in self._arithmetic:
            if not all(map(is_arithmetic_value, strings(token, args, seq, slot, total))):
                refusal = (f"fanout: refused: the command reads {token.text} as arithmetic, "
                           "and this value is not a number")  # fmt: skip
                return f"{prologue}echo {shlex.quote(refusal)} >&2; exit 2; {script}"
        return prologue + script

    @staticmethod
    def _piece(
        part: str | Placed,
        numbers: dict[tuple[int | None, str], range],
        args: Args,
        seq: int,
        slot: int | None,
        total: int | None,
    ) -> str:
        if isinstance(part, str):
            return part
        if part.token.is_number:
            return strings(part.token, args, seq, slot, total)[0]
        return reference(part.context, numbers[part.token.key])

    def display(self, args: Args, seq: int, slot: int | None, total: int | None) -> str:
        """The command as --dry-run shows it: with every value a plain word, the values
        written in and quoted (as GNU parallel prints it, and meaning the same); else
        the script as it runs."""
        if not self.plain_only:
            return self.render(args, seq, slot, total)
        shown = []
        for part in self.parts:
            if isinstance(part, str):
                shown.append(part)
            else:
                made = strings(part.token, args, seq, slot, total)
                shown.append(" ".join(made if part.token.is_number else map(gnu_quote, made)))
        if self.appended is not None:
            shown.append(" " + " ".join(map(gnu_quote, args.values)))
        return "".join(shown)


def _placed(piece: str | tuple[Token, Place]) -> str | Placed:
    if isinstance(piece, str):
        return piece
    return Placed(piece[0], *_where(piece[1]))


def _where(place: Place) -> tuple[str, bool]:
    return place.context, place.reads_arithmetic()


def _unquote_heredocs(script: str, grammar: Grammar) -> str:
    """A here-document with a quoted delimiter (<<'EOF') and a value in its body,
    written as the unquoted one that prints the same text (<<EOF, with \\, $ and ` in
    its body escaped), so that the value can be read there as `${1+"$1"}`, exactly.
    A delimiter that is not a plain word, or a body that never ends, is left as it is
    (and the template is refused)."""
    if "<<" not in script:
        return script
    scanner, texts = ShellScanner(), _raw_pieces(script, grammar)
    for text, token in texts:
        if token is None:
            scanner.feed(text)
        else:
            scanner.place(len(text), value=not token.is_number)
    scanner.feed("\n")
    edits: list[tuple[int, int, str]] = []
    for heredoc in scanner.heredocs:
        plain = _PLAIN_DELIMITER.fullmatch(heredoc.delimiter) is not None
        if heredoc.kind == "quoted_heredoc" and heredoc.values and heredoc.body_end >= 0 and plain:
            start, end = heredoc.body_start, heredoc.body_end
            edits.append((start, end, _escape_for_heredoc(script[start:end], grammar)))
            edits.append((*heredoc.word, heredoc.delimiter))
    for start, end, text in sorted(edits, reverse=True):
        script = script[:start] + text + script[end:]
    return script


def _raw_pieces(script: str, grammar: Grammar) -> list[tuple[str, Token | None]]:
    """The script cut into its text and its replacement strings, each as written."""
    pieces: list[tuple[str, Token | None]] = []
    position = 0
    for match in re.finditer(r"\{\{[^{}]*\}\}|\{[^{}]*\}", script):
        token = None if match[0].startswith("{{") else grammar.token(match[0][1:-1], "")
        if token is None:
            continue
        pieces += [(script[position : match.start()], None), (match[0], token)]
        position = match.end()
    pieces.append((script[position:], None))
    return pieces


def _escape_for_heredoc(body: str, grammar: Grammar) -> str:
    """Literal text as an unquoted here-document body prints it; replacement strings
    are left alone."""
    return "".join(
        text if token is not None else _HEREDOC_SPECIAL.sub(r"\\\g<0>", text)
        for text, token in _raw_pieces(body, grammar)
    )


def _literal_dollar(text: str) -> str:
    """`${}` means a `$` and the value, never a variable the value names: a bare `$`
    just before a replacement string is escaped (its reference starts with `$` or `"`)."""
    if text.endswith("$") and (len(text) - len(text[:-1].rstrip("\\"))) % 2 == 1:
        return text[:-1] + "\\$"
    return text
