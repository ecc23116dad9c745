"""Command templates: GNU parallel's replacement strings, and values that stay data.

Several words run without a shell: each word is substituted literally, so a value is
always exactly one argument (or part of one); a replacement string with several values
(`{}` of a combination, a batch of -m) makes one argument of each, the text before it
joined to the first and the text after it to the last, as GNU parallel does; with -X
the text around it is repeated for each value. A single word with shell syntax,
`--shell`, or several words one of which is a shell operator (`'>'`, `'|'`, `'&&'`),
an assignment or a shell built-in (as GNU parallel users write them), run under `sh -c`
as one script (script.py), where values are read as positional parameters and never
become code. What `{...}` means is replacements.py; `{{}}` stands for a literal `{}`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fanout_cli.errors import UsageError
from fanout_cli.replacements import ONE_VALUE, Args, Grammar, Token, gnu_quote, shell_word, strings

if TYPE_CHECKING:
    from fanout_cli.script import ShellScript

_SHELL_SYNTAX = re.compile(r"[\s|&;<>()$`\\\"'*?\[\]#~]")
# Words a GNU parallel user writes apart, meaning shell syntax (GNU parallel runs every
# command under a shell): run those commands under sh -c, as meant. Not `;`, `(`, `)` or
# `!`, which find(1) takes as arguments (`find {} -exec touch {{}} ';'`).
_OPERATORS = frozenset(("|", "||", "|&", "&", "&&", "<", ">", ">>", ">|", "<<", "<<<", "<>",
                        "&>", "&>>", ">&", "<&", "2>", "2>>", "2>&1", "1>&2", ">&2", "1>",
                        "0<"))  # fmt: skip
_BUILTINS = frozenset(("exit", "cd", "export", "source", ".", "set", "unset", "eval", "exec",
                       "alias", "read", "shift", "return", "trap", "ulimit", "umask", "wait",
                       "local", "declare", "readonly", "if", "for", "while", "until", "case",
                       "[[", "((", "{", "function", "let", "break", "continue"))  # fmt: skip
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")

Pieces = list[list[tuple[str, bool]]]  # words, each as (text, from a value) pieces


def looks_like_shell(word: str, grammar: Grammar = ONE_VALUE) -> bool:
    """Shell syntax outside the replacement strings: spaces, pipes, quotes, `$`, ..."""
    parts = grammar.split(word, f"command {word!r}")
    text = "".join(part for part in parts if isinstance(part, str))
    return bool(_SHELL_SYNTAX.search(text))


def meant_for_a_shell(words: tuple[str, ...] | list[str]) -> bool:
    """Several words that only a shell can run: an operator as a word of its own, an
    assignment or a shell built-in first."""
    if not words:
        return False
    first = words[0]
    return first in _BUILTINS or bool(_ASSIGNMENT.match(first)) or (
        len(words) > 1 and any(word in _OPERATORS for word in words)
    )


@dataclass(frozen=True)
class Template:
    """A command with replacement strings, ready to render once per task."""

    words: tuple[str, ...]
    shell: bool
    grammar: Grammar = ONE_VALUE
    repeat: bool = False  # -X: the text around a value is repeated for each value
    total: int | None = None  # {##} when a command is rendered again for its slot ({%})

    def __post_init__(self) -> None:
        if self.shell:
            self._check_repeat(self._script)  # and a value that no reference can reach
        else:
            _ = self._parts  # a replacement string fanout lacks: say so now

    @classmethod
    def parse(
        cls,
        words: list[str] | tuple[str, ...],
        force_shell: bool = False,
        grammar: Grammar = ONE_VALUE,
        repeat: bool = False,
    ) -> Template:
        shell = (force_shell or meant_for_a_shell(words)
                 or (len(words) == 1 and looks_like_shell(words[0], grammar)))  # fmt: skip
        return cls(tuple(words), shell, grammar, repeat)

    @functools.cached_property
    def _script(self) -> ShellScript:
        from fanout_cli.script import ShellScript  # only commands run under sh -c need it

        return ShellScript(" ".join(self.words), self.grammar)

    @functools.cached_property
    def _parts(self) -> tuple[tuple[str | Token, ...], ...]:
        where = f"command {' '.join(self.words)!r}"
        return tuple(self.grammar.split(word, where) for word in self.words)

    def _check_repeat(self, script: ShellScript) -> None:
        from fanout_cli.script import Placed

        if not self.repeat:
            return
        parts = script.parts
        for index, part in enumerate(parts):
            if not isinstance(part, Placed) or part.token.is_number:
                continue
            before = parts[index - 1] if index else " "
            after = parts[index + 1] if index + 1 < len(parts) else " "
            if not (str(before)[-1:].isspace() and str(after)[:1].isspace()):
                raise UsageError(
                    f"command {script.text!r}: -X repeats the text around {part.token.text} "
                    "for each value, which a command run under sh -c cannot do; put "
                    f"{part.token.text} as a word of its own, or use -m"
                )

    def _tokens(self) -> list[Token]:
        if self.shell:
            return [part.token for part in self._script.parts if not isinstance(part, str)]
        return [part for word in self._parts for part in word if isinstance(part, Token)]

    @functools.cached_property
    def appends_value(self) -> bool:
        """No replacement string anywhere: the values become the last arguments."""
        return not self._tokens()

    @functools.cached_property
    def uses_slot(self) -> bool:
        return any(token.modifier == "%" for token in self._tokens())

    @functools.cached_property
    def uses_total(self) -> bool:
        return any(token.modifier == "##" for token in self._tokens())

    @functools.cached_property
    def _whole_word_values(self) -> tuple[list[str], tuple[tuple[int, int | None], ...]] | None:
        """Several words: (the words, where a value goes and which) when every replacement
        string is a whole word `{}` or `{N}`, or there is none (the common cases: `wc -l
        {}`, `diff {1} {2}`, `gzip`); else None. Rendering one record is then a list
        assignment, which a million-line input notices."""
        words: list[str] = []
        places: list[tuple[int, int | None]] = []
        for parts in self._parts:
            token = parts[0] if len(parts) == 1 else None
            if isinstance(token, Token) and token.modifier == "":
                places.append((len(words), token.position))
                words.append("")
            elif any(isinstance(part, Token) for part in parts):
                return None
            else:
                words.append("".join(str(part) for part in parts))
        if not places:
            places.append((len(words), None))
            words.append("")
        return words, tuple(places)

    @functools.cached_property
    def _whole_word_display(self) -> list[str] | None:
        fast = self._whole_word_values
        return None if fast is None else [shell_word(word) or "''" for word in fast[0]]

    def _fast(
        self, args: Args, words: list[str] | None, quote: Callable[[str], str]
    ) -> list[str] | None:
        """The words for one record when the fast way applies (see _whole_word_values)."""
        fast = self._whole_word_values
        if fast is None or words is None or len(args.records) != 1:
            return None
        record, words = args.records[0], words.copy()
        for index, position in fast[1]:
            if position is None and len(record) == 1:
                words[index] = quote(record[0])
            elif position is not None and position <= len(record):
                words[index] = quote(record[position - 1])
            else:
                return None
        return words

    def render(
        self, args: Args | str, seq: int, slot: int | None = None, total: int | None = None
    ) -> tuple[str, ...] | str:
        """The argv (several words) or the `sh -c` script (shell mode) for one task."""
        values = Args.one(args) if isinstance(args, str) else args
        total = self.total if total is None else total
        if self.shell:
            return self._script.render(values, seq, slot, total)
        fast = self._whole_word_values
        words = self._fast(values, None if fast is None else fast[0], str)
        if words is not None:
            return tuple(words)
        return tuple("".join(text for text, _ in word)
                     for word in self._pieces(values, seq, slot, total) if word)  # fmt: skip

    def display(
        self, args: Args | str, seq: int, slot: int | None = None, total: int | None = None
    ) -> str:
        """The command as --dry-run shows it, and as GNU parallel's --dry-run prints it:
        values quoted as GNU parallel quotes them, words of the command as they are
        (quoted when they hold shell syntax, since fanout passes them literally)."""
        values = Args.one(args) if isinstance(args, str) else args
        total = self.total if total is None else total
        if self.shell:
            return self._script.display(values, seq, slot, total)
        words = self._fast(values, self._whole_word_display, gnu_quote)
        if words is not None:  # a million lines print in seconds
            return " ".join(words)
        shown = []
        for word in self._pieces(values, seq, slot, total):
            text = "".join(gnu_quote(part) if value else shell_word(part) for part, value in word)
            shown.append(text or "''" if word else "")  # as GNU parallel: nothing, no ''
        return " ".join(shown)

    def size(self, args: Args) -> tuple[int, int]:
        """(bytes of the command as --dry-run shows it, as GNU parallel's -s counts them;
        bytes its arguments take)."""
        command = self.render(args, 1)
        words = (command,) if isinstance(command, str) else command
        size = sum(_length(word) + 9 for word in words)
        return _length(self.display(args, 1)), size

    def increment(self, args: Args) -> tuple[int, int]:
        """What one more record adds to the command of a batch, in the same units."""
        chars = size = 0
        per_value = 13 if self.shell else 9  # a reference and quotes; a pointer and NUL
        for token, context in self._value_places:
            for text in strings(token, args, 1, None, None):
                chars += _length(gnu_quote(text)) + 1 + context
                size += _length(text) + per_value + context
        return chars, size

    @functools.cached_property
    def _value_places(self) -> list[tuple[Token, int]]:
        """Each place a value goes, with the text -X repeats around it there."""
        if self.appends_value:
            return [(Token(None, ""), 0)]
        if self.shell:
            return [(token, 0) for token in self._tokens() if not token.is_number]
        places = []
        for parts in self._parts:
            context = sum(_length(part) for part in parts if isinstance(part, str))
            places += [(part, context if self.repeat else 0) for part in parts
                       if isinstance(part, Token) and not part.is_number]  # fmt: skip
        return places

    def _pieces(self, args: Args, seq: int, slot: int | None, total: int | None) -> Pieces:
        words: Pieces = []
        for parts in self._parts:
            if all(isinstance(part, str) for part in parts):
                words.append([("".join(str(part) for part in parts), False)])
                continue
            repeated = self.repeat and any(isinstance(part, Token) and not part.is_number
                                           for part in parts)  # fmt: skip
            for unit in _units(parts, args) if repeated else (args,):
                words += _expand(parts, unit, seq, slot, total)
        if self.appends_value:
            words += [[(value, True)] for value in args.values]
        return words

    def document(self) -> dict[str, object]:
        """What the saved task list keeps, to render the command again (for `{%}`)."""
        return {"words": list(self.words), "shell": self.shell,
                "positions": self.grammar.positions, "names": list(self.grammar.names),
                "repeat": self.repeat, "total": self.total}  # fmt: skip

    @classmethod
    def from_document(cls, document: dict[str, object]) -> Template:
        words, names = document["words"], document.get("names") or []
        assert isinstance(words, list) and isinstance(names, list)
        positions = document.get("positions", 1)
        grammar = Grammar(positions if isinstance(positions, int) else None,
                          tuple(str(name) for name in names))  # fmt: skip
        total = document.get("total")
        return cls(tuple(str(word) for word in words), bool(document["shell"]), grammar,
                   bool(document.get("repeat", False)),
                   total if isinstance(total, int) else None)  # fmt: skip


def _length(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _units(parts: tuple[str | Token, ...], args: Args) -> list[Args]:
    """-X: what the text around the replacement strings of one word is repeated for:
    each value for `{}` and its modifiers, else each record."""
    tokens = [part for part in parts if isinstance(part, Token) and not part.is_number]
    if all(token.position is None for token in tokens):
        return [Args.one(value) for value in args.values]
    return [Args((record,)) for record in args.records]


def _expand(
    parts: tuple[str | Token, ...], args: Args, seq: int, slot: int | None, total: int | None
) -> Pieces:
    """One word of the command for one task: one argument, or one more for each further
    value of a replacement string with several."""
    words: Pieces = [[]]
    for part in parts:
        if isinstance(part, str):
            words[-1].append((part, False))
            continue
        made = strings(part, args, seq, slot, total)
        if made:
            words[-1].append((made[0], not part.is_number))
            words += [[(text, True)] for text in made[1:]]
    return words  # a word of missing values only is empty: no argument (see render)


