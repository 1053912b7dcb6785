"""Where in a Cedar file something is: cedarpy reports problems without line numbers.

Cedar numbers the policies of a text `policy0`, `policy1`, ... in order; a
statement ends with `;` outside string literals and `//` comments. That is all
we need to map a policy id back to the line where it starts, and to find the
line of a syntax error by parsing ever longer prefixes of the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_BACKTICKED = re.compile(r"`([^`]+)`")
_QUOTED = re.compile(r"`([^`]+)`|'([^']+)'")
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|[A-Za-z_]\w*|\d+|==|!=|<=|>=|&&|\|\||::|\S')


def statement_lines(text: str) -> list[int]:
    """The 1-based line on which each `;`-terminated statement starts (annotations included)."""
    starts: list[int] = []
    line, i, inside = 1, 0, False
    while i < len(text):
        char = text[i]
        if char == "\n":
            line += 1
        elif text.startswith("//", i):
            i = _line_end(text, i)
            continue
        elif not char.isspace():
            if not inside:
                starts.append(line)
                inside = True
            if char == '"':
                end = _string_end(text, i)
                line += text.count("\n", i, end)
                i = end
                continue
            if char == ";":
                inside = False
        i += 1
    return starts


def syntax_error_line(text: str, parse: Callable[[str], object], message: str) -> int:
    """The line of the syntax error `parse` reported as `message` for the whole `text`.

    A parser reports a bad token as soon as a prefix of the text contains it,
    and only "unexpected end of input" before that, so the first prefix that
    fails the way the whole text does ends on the offending line. Some errors
    surface only when the statement is complete; then the line is the nearest
    one above, within the statement, holding the token the message quotes.
    """
    lines = text.split("\n")
    found = next(
        (count for count in range(1, len(lines) + 1) if _fails_with(parse, "\n".join(lines[:count]), message)), 1
    )
    quoted = {a or b for a, b in _QUOTED.findall(message)}
    start = max((line for line in statement_lines(text) if line <= found), default=1)
    for number in range(found, start - 1, -1):
        if quoted & set(_TOKEN.findall(_code(lines[number - 1]))):
            return number
    return found


def _fails_with(parse: Callable[[str], object], text: str, message: str) -> bool:
    try:
        parse(text)
    except ValueError as exc:
        return str(exc) == message
    return False


def backticked(message: str) -> list[str]:
    """The `quoted` names in a Cedar message, except positional policy ids."""
    return [name for name in _BACKTICKED.findall(message) if not re.fullmatch(r"policy\d+", name)]


def line_mentioning(text: str, names: list[str], first_line: int = 1, last_line: int | None = None) -> int:
    """The first line of `first_line..last_line` that mentions one of `names` (else `first_line`)."""
    lines = text.split("\n")
    last = len(lines) if last_line is None else min(last_line, len(lines))
    for number in range(first_line, last + 1):
        if any(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", _code(lines[number - 1])) for name in names):
            return number
    return first_line


def _code(line: str) -> str:
    """A line without its `//` comment (good enough to look for a name)."""
    return line.split("//", 1)[0]


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _string_end(text: str, start: int) -> int:
    """Index just after the string literal opening at `start` (or the end of text)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return len(text)
