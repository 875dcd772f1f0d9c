"""Where a key of a TOML file is written: the line a config error points at (issue 14).

``tomllib`` parses into plain dicts and forgets where each key came from. A config error
names its key the way the messages of ``deploy.config`` do (``tool.deploy.backup.
retention_days``, ``tool.deploy.templates[1].source``); this finds the line that sets it,
by reading the file's table headers and ``key =`` lines. It is a scanner, not a parser: it
skips strings, comments and the inside of multi-line arrays and strings, which is all a
``key =`` line can be confused with. A key it cannot find gives None (the annotation then
names the file only), never a wrong guess at another key's line when a nearer one exists.
"""

from __future__ import annotations

import re

# One key of a dotted path: bare, or quoted ("a.b" and 'a.b' are one key).
_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
PART = re.compile(_KEY)
# A key as messages name it: dotted parts, an array of tables' entry as [N].
MESSAGE_KEY = re.compile(r"tool\.deploy(?:\.[A-Za-z0-9_-]+|\[\d+\])*")
AT_LINE = re.compile(r"\bat line (\d+)")


def _parts(dotted: str) -> list[str]:
    return [p[1:-1] if p[:1] in "\"'" else p for p in PART.findall(dotted)]


def _path(key: str) -> list[str]:
    """``tool.deploy.templates[1].source`` as ``['tool', 'deploy', 'templates', '[1]',
    'source']``."""
    return [p for p in re.split(r"\.|(\[\d+\])", key) if p]


def _open_brackets(line: str) -> int:
    """How many ``[`` the line leaves open (outside strings and comments)."""
    depth, quote, i = 0, "", 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        i += 1
    return depth


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Every key path the file sets, and tables it opens, with its line (1-based)."""
    found: dict[tuple[str, ...], int] = {}
    table: list[str] = []
    arrays: dict[tuple[str, ...], int] = {}
    depth = 0
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        if fence:
            if line.count(fence) % 2:
                fence = ""
            continue
        if depth > 0:
            depth += _open_brackets(line)
            continue
        header = HEADER.match(line)
        if header is not None:
            names = _parts(header.group(2))
            if header.group(1) == "[[":
                index = arrays.get(tuple(names), -1) + 1
                arrays[tuple(names)] = index
                found.setdefault(tuple(names), number)
                table = [*names, f"[{index}]"]
            else:
                table = names
            found.setdefault(tuple(table), number)
            continue
        assign = ASSIGN.match(line)
        if assign is None:
            continue
        path = (*table, *_parts(assign.group(1)))
        for end in range(len(table) + 1, len(path) + 1):
            found.setdefault(path[:end], number)  # a dotted key opens its tables there
        rest = line[assign.end():]
        for opener in ('"""', "'''"):
            if rest.count(opener) % 2:
                fence = opener
        if not fence:
            depth = max(_open_brackets(rest), 0)
    return found


def key_line(text: str, key: str) -> int | None:
    """The line that sets ``key`` (as messages name it), else the nearest table above it
    that the file writes, else None."""
    lines = key_lines(text)
    path = tuple(_path(key))
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def message_key(message: str) -> str | None:
    """The first config key a message names (``tool.deploy....``), if any."""
    match = MESSAGE_KEY.search(message)
    return match.group() if match and match.group() != "tool.deploy" else None


def decode_line(message: str) -> int | None:
    """The line of a ``tomllib`` decode error (its message ends ``(at line N, column M)``)."""
    match = AT_LINE.search(message)
    return int(match.group(1)) if match else None
