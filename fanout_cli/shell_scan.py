"""Where in an `sh -c` script a replacement string sits: in quotes, in a here-document,
in arithmetic. The template asks this at each replacement string, to write there the
reference to its positional parameter (`"$1"`, `${1}`, ...) that reads exactly the value.

This follows sh's grammar only as far as that decision needs; it never has to be right
for a value to stay data, because values are never written into the script: a wrong
guess gives a wrong word (quotes printed, a value split in two), never code. The one
guess that matters for safety, arithmetic (bash evaluates a variable's text there, and
an array subscript in it runs `$(...)`), errs towards "arithmetic"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# What a replacement string's place is, as the template renders it.
PLAIN = "plain"  # a word of a command (also in $(...), `...`, ${x:-...})
SINGLE = "single"  # inside '...'
ANSI = "ansi"  # inside bash's $'...'
DOUBLE = "double"  # inside "..."
HEREDOC = "heredoc"  # the body of <<EOF: expansions work, quotes are text
QUOTED_HEREDOC = "quoted-heredoc"  # the body of <<'EOF': nothing expands
DELIMITER = "delimiter"  # the word after << itself
ARITHMETIC = "arithmetic"  # inside $(( )) or $[ ]
ARITHMETIC_COMMAND = "arithmetic-command"  # inside (( )): bash arithmetic, dash subshells

_COMMAND_FRAMES = ("root", "paren", "backtick", "dbracket", "let")
_ARITHMETIC_FRAMES = ("arith", "arith_command", "arith_bracket")
_BREAKS = " \t\n;&|()<>"
_TEST_OPERATORS = ("-eq", "-ne", "-lt", "-le", "-gt", "-ge")
# What ends just before a word in command position (\0 stands for a replacement string).
_COMMAND_START = re.compile(r"(?:[;&|(){}\n!]|\b(?:then|do|else|elif|if|while|until))[ \t]*$")


# A value that arithmetic may read: numbers (decimal, 0x1F, bash's 16#ff), operators,
# blanks and parentheses. No name: nothing to look up, assign or subscript, since bash
# runs the $(...) in a subscript such as a[$(cmd)] that it finds in a variable's text.
_NUMBER_LITERAL = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+#[0-9A-Za-z@_]+")
_ARITHMETIC_VALUE = re.compile(r"[\s0-9+\-*/%<>=!&|^~?:,().]*")


def is_arithmetic_value(text: str) -> bool:
    return _ARITHMETIC_VALUE.fullmatch(_NUMBER_LITERAL.sub("0", text)) is not None


@dataclass(eq=False)  # frames are compared by identity
class _Frame:
    kind: str  # root, paren, backtick, dbracket, let, brace, single, ansi, double, comment,
    # arith, arith_command, arith_bracket, heredoc, quoted_heredoc
    depth: int = 0  # arithmetic: open ( or [ inside it; ${...}: 1 once past the name
    delimiter: str = ""  # heredoc: the line that ends it
    strip_tabs: bool = False  # heredoc: <<- (leading tabs do not count)
    line: list[str] = field(default_factory=list)  # heredoc: the raw line; ${: the name
    pending: list[_Frame] = field(default_factory=list)  # heredocs opened on this line
    arithmetic: bool = False  # [[ ]] with -eq..., ${x:offset}, ${x[i]}: arithmetic inside
    # heredoc, as offsets in the script: its delimiter word; its body and current line
    # (-1 until known); and how many values stand in it.
    word: tuple[int, int] = (0, 0)
    body_start: int = -1
    body_end: int = -1
    line_start: int = -1
    values: int = 0


@dataclass
class _Delimiter:
    """The word after `<<`, being read."""

    strip_tabs: bool
    chars: list[str] = field(default_factory=list)
    quoted: bool = False
    started: bool = False
    quote: str = ""  # the quote character the word is inside, if any
    start: int = 0  # where the word starts in the script


@dataclass(frozen=True)
class Place:
    """A replacement string's context, and whether arithmetic may read its value: then
    `arithmetic_frames` holds the frames whose verdict is known only once they end."""

    context: str
    arithmetic: bool
    pending: tuple[_Frame, ...] = ()

    def reads_arithmetic(self) -> bool:
        return self.arithmetic or any(frame.arithmetic for frame in self.pending)


class ShellScanner:
    """Fed a script piece by piece (text between replacement strings), tells at each
    replacement string where it is."""

    def __init__(self) -> None:
        self._stack = [_Frame("root")]
        self._word_start = True
        self._delimiter: _Delimiter | None = None
        self._tail = "\n"  # the end of what was fed so far: the script starts a command
        self._offset = 0  # where the text being fed starts in the script
        self.heredocs: list[_Frame] = []  # every here-document, in order

    def place(self, width: int = 0, value: bool = True) -> Place:
        """Where a replacement string (`width` characters of the script; `value`: made
        from the value) at this point is; it counts as a word character."""
        start, self._offset = self._offset, self._offset + width
        if self._delimiter is not None:
            return Place(DELIMITER, False)
        self._word_start = False
        self._tail = (self._tail + "\0")[-16:]
        heredoc = self._heredoc()
        if heredoc is not None:
            heredoc.line.append("\0")  # a value's line is never the terminator line
            heredoc.values += value
            if heredoc.body_start < 0:
                heredoc.body_start = heredoc.line_start = start
        return Place(self._context(), self._in_arithmetic(), self._deferred())

    def _context(self) -> str:
        for frame in reversed(self._stack):
            if frame.kind == "brace":
                continue  # ${x:-{}} reads like the place the ${...} is in
            return {
                "single": SINGLE,
                "ansi": ANSI,
                "double": DOUBLE,
                "heredoc": HEREDOC,
                "quoted_heredoc": QUOTED_HEREDOC,
                "arith": ARITHMETIC,
                "arith_command": ARITHMETIC_COMMAND,
                "arith_bracket": ARITHMETIC,
            }.get(frame.kind, PLAIN)
        return PLAIN  # pragma: no cover - the root frame is never popped

    def _in_arithmetic(self) -> bool:
        """Arithmetic anywhere around it: `$(( $(echo {}) ))` evaluates what echo prints."""
        return any(
            frame.kind in (*_ARITHMETIC_FRAMES, "let")
            or (frame.kind == "brace" and frame.arithmetic)
            for frame in self._stack
        )

    def _deferred(self) -> tuple[_Frame, ...]:
        return tuple(frame for frame in self._stack if frame.kind == "dbracket")

    def _heredoc(self) -> _Frame | None:
        for frame in reversed(self._stack):
            if frame.kind in ("heredoc", "quoted_heredoc"):
                return frame
        return None

    def feed(self, text: str) -> None:
        index = 0
        while index < len(text):
            index = self._step(text, index)
        self._tail = (self._tail + text)[-16:]
        self._offset += len(text)

    def _step(self, text: str, index: int) -> int:
        """Read the character at `index` (and what it starts); return where to go on."""
        if self._delimiter is not None:
            return self._read_delimiter(text, index)
        if self._heredoc_line_ends(text, index):
            return index + 1
        char, top = text[index], self._stack[-1]
        if top.kind in ("single", "ansi", "quoted_heredoc", "comment"):
            return self._literal_char(text, index, top)
        if char == "\\":
            self._word_start = False
            heredoc = self._heredoc()
            if heredoc is not None and text[index + 1 : index + 2] not in ("", "\n"):
                heredoc.line.append(text[index + 1])
            return index + 2
        opened = self._open(text, index, top)
        if opened is not None:
            self._word_start = False
            return opened
        if top.kind in _COMMAND_FRAMES:
            return self._command_char(text, index, top)
        return self._inner_char(text, index, top)

    def _heredoc_line_ends(self, text: str, index: int) -> bool:
        """A here-document body is read as raw lines, whatever they hold, up to the
        terminator line: keep the line, and end the body (and all inside it) there."""
        heredoc = self._heredoc()
        if heredoc is None:
            return False
        char, at = text[index], self._offset + index
        if heredoc.body_start < 0:
            heredoc.body_start = heredoc.line_start = at
        if char != "\n":
            heredoc.line.append(char)
            return False
        if not self._ends_heredoc(heredoc):
            heredoc.line.clear()
            heredoc.line_start = at + 1
            return False
        heredoc.body_end = heredoc.line_start
        del self._stack[self._stack.index(heredoc) :]
        self._word_start = True
        return True

    def _literal_char(self, text: str, index: int, top: _Frame) -> int:
        """In '...', $'...', a body of <<'EOF' or a comment: only the end counts."""
        char = text[index]
        if top.kind == "comment" and char == "\n":
            self._stack.pop()
            return index  # the newline also ends the command line below
        if top.kind == "ansi" and char == "\\":
            return index + 2
        if char == "'" and top.kind in ("single", "ansi"):
            self._stack.pop()
        return index + 1

    def _ends_heredoc(self, heredoc: _Frame) -> bool:
        line = "".join(heredoc.line)
        return (line.lstrip("\t") if heredoc.strip_tabs else line) == heredoc.delimiter

    def _open(self, text: str, index: int, top: _Frame) -> int | None:
        """`$((`, `$(`, `${`, `$[`, `` ` ``, quotes: what opens a new context here."""
        ahead = text[index : index + 3]
        if ahead.startswith("$(("):
            self._stack.append(_Frame("arith"))
            return index + 3
        if ahead.startswith(("$(", "${", "$[")):
            kind = {"(": "paren", "{": "brace", "[": "arith_bracket"}[ahead[1]]
            self._stack.append(_Frame(kind))
            return index + 2
        if ahead[0] == "`":
            if top.kind == "backtick":
                self._stack.pop()
            else:
                self._stack.append(_Frame("backtick"))
            return index + 1
        if top.kind in ("double", "heredoc"):
            return None
        if ahead.startswith("$'"):
            self._stack.append(_Frame("ansi"))
            return index + 2
        if ahead[0] in "'\"":
            self._stack.append(_Frame("single" if ahead[0] == "'" else "double"))
            return index + 1
        return None

    def _command_char(self, text: str, index: int, top: _Frame) -> int:
        char, at_word_start = text[index], self._word_start
        if top.kind == "let" and char in ";&|\n)":
            self._stack.pop()  # bash's `let` reads the words up to the command's end
            return index
        self._word_start = char in _BREAKS
        if char == "\n" and top.pending:
            self._stack.extend(reversed(top.pending))  # the first body is read first
            top.pending = []
        elif at_word_start and char == "#":
            self._stack.append(_Frame("comment"))
        elif at_word_start and text.startswith("((", index):
            self._stack.append(_Frame("arith_command"))
            return index + 2
        elif char == "(":
            self._stack.append(_Frame("paren"))
        elif char == ")" and top.kind == "paren":
            self._stack.pop()
        elif at_word_start and _word_at(text, index, "let") and self._command_start(text, index):
            self._stack.append(_Frame("let"))
            return index + 3
        elif at_word_start and _word_at(text, index, "[["):
            self._stack.append(_Frame("dbracket"))
            return index + 2
        elif at_word_start and top.kind == "dbracket":
            if _word_at(text, index, "]]"):
                self._stack.pop()
                return index + 2
            top.arithmetic |= any(_word_at(text, index, op) for op in _TEST_OPERATORS)
        elif text.startswith("<<<", index):
            return index + 3  # a here-string: the next word is an ordinary word
        elif text.startswith("<<", index):
            strip_tabs = text.startswith("<<-", index)
            self._delimiter = _Delimiter(strip_tabs)
            return index + (3 if strip_tabs else 2)
        return index + 1

    def _inner_char(self, text: str, index: int, top: _Frame) -> int:
        """In quotes, a here-document body, arithmetic or ${...}."""
        char = text[index]
        self._word_start = False
        if top.kind == "double" and char == '"':
            self._stack.pop()
        elif top.kind == "brace":
            self._brace_char(text, index, top)
        elif top.kind in _ARITHMETIC_FRAMES:
            opening, closing = ("[", "]") if top.kind == "arith_bracket" else ("(", ")")
            if char == opening:
                top.depth += 1
            elif char == closing and top.depth:
                top.depth -= 1
            elif char == closing:
                self._stack.pop()
                return index + (1 if top.kind == "arith_bracket" else 2)  # (( ends with ))
        return index + 1

    def _brace_char(self, text: str, index: int, top: _Frame) -> None:
        char = text[index]
        if char == "}":
            self._stack.pop()
        elif top.depth == 0:  # still in the parameter's name
            if char.isalnum() or char == "_" or (not top.line and char in "#@*?$!-"):
                top.line.append(char)
            else:
                top.depth = 1
                # ${x:offset} and ${x[i]} are arithmetic, ${x:-word} is not.
                after = text[index + 1 : index + 2]
                offset = char == ":" and (not after or after not in "-=?+")
                top.arithmetic = char == "[" or offset

    def _command_start(self, text: str, index: int) -> bool:
        """The word at `index` is a command's name (not an argument)."""
        return _COMMAND_START.search((self._tail + text[:index])[-16:]) is not None

    def _read_delimiter(self, text: str, index: int) -> int:
        word = self._delimiter
        assert word is not None
        char = text[index]
        if word.quote:
            if char == word.quote:
                word.quote = ""
            elif char == "\\" and word.quote == '"' and text[index + 1 : index + 2] in '"\\$`':
                word.chars.append(text[index + 1 : index + 2])
                return index + 2
            else:
                word.chars.append(char)
            return index + 1
        if char in " \t" and not word.started:
            return index + 1
        if char in _BREAKS:
            self._delimiter = None
            heredoc = _Frame(
                "quoted_heredoc" if word.quoted else "heredoc",
                delimiter="".join(word.chars),
                strip_tabs=word.strip_tabs,
                word=(word.start, self._offset + index),
            )
            self._command_frame().pending.append(heredoc)
            self.heredocs.append(heredoc)
            return index  # the character after the word is read as usual
        if not word.started:
            word.started, word.start = True, self._offset + index
        if char in "'\"":
            word.quoted, word.quote = True, char
        elif char == "\\":
            word.quoted = True
            word.chars.append(text[index + 1 : index + 2])
            return index + 2
        else:
            word.chars.append(char)
        return index + 1

    def _command_frame(self) -> _Frame:
        for frame in reversed(self._stack):
            if frame.kind in _COMMAND_FRAMES and frame.kind != "let":
                return frame
        return self._stack[0]  # pragma: no cover - the root frame is a command frame


def _word_at(text: str, index: int, word: str) -> bool:
    """`word` starts at `index` and ends there (a blank, an operator or the end follows)."""
    end = index + len(word)
    return text.startswith(word, index) and (end == len(text) or text[end] in _BREAKS)
