"""What the tasks print, and how: one line at a time, escaped, in what the stream can
encode, and never a traceback when the reader has gone away."""

from __future__ import annotations

import atexit
import codecs
import functools
import os
import re
import sys
from typing import Any

__all__ = ["UNSAFE", "Output", "closed_pipe", "echo", "hinted", "shown", "write_text"]

# What a name or path must not carry onto a terminal or into a CI log: C0 and C1 controls and
# DEL (a newline could forge an `error:` line or a `::error::` workflow command, an ESC a
# terminal sequence), the other characters str.splitlines() breaks at (U+2028, U+2029), the
# bidirectional controls that reorder what is shown, and lone surrogates: the bytes of a
# non-UTF-8 file name, which os.fsdecode() keeps as U+DC80..U+DCFF (surrogateescape).
UNSAFE = ("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
          "\ud800-\udfff]")  # compiled on first use (:func:`_unsafe`): half a millisecond
NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in NAMED_ESCAPES:
        return NAMED_ESCAPES[char]
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # the byte the file name really holds
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(value: object) -> str:
    """``value`` as text safe to show on one line: every character of :data:`UNSAFE` escaped
    (``\\n``, ``\\t``, ``\\x1b``, ``\\u2028``; a non-UTF-8 byte of a path as ``\\xff``).
    Everything printed from a name or path goes through here (issue 11)."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text  # nothing of UNSAFE can be in it: the common case, without the regex
    return _unsafe().sub(_escape, text)


@functools.cache
def _unsafe() -> re.Pattern[str]:
    return re.compile(UNSAFE)


def _encodable(text: str, stream: Any) -> str:
    """``text`` as ``stream`` can encode it (``PYTHONIOENCODING=ascii``: ``\\xe9`` for é), so
    that a run recorded done never ends in UnicodeEncodeError while it reports."""
    encoding = getattr(stream, "encoding", None)
    if not encoding or text.isascii() or codecs.lookup(encoding).name == "utf-8":
        return text
    return text.encode(encoding, "backslashreplace").decode(encoding)


def closed_pipe(stream: Any) -> None:
    """The reader of ``stream`` went away (``invoke history | head``): send the rest of the
    output nowhere. A run goes on to its own end and exit code (a closed pipe must not stop
    a deploy half way, nor print a traceback), as it does when the reader stays."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _flush_at_exit() -> None:
    # Python flushes stdout after atexit handlers; a pipe closed by then would end the
    # command with "Exception ignored ... BrokenPipeError" and exit 120.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            closed_pipe(stream)
        except (OSError, ValueError):
            pass


atexit.register(_flush_at_exit)


class Output:
    """How this command prints: ``--quiet`` (only the summary line of a run), the progress
    line on a terminal (``deploy_tasks.progress``), which goes away before any line, and the
    command the hints name."""

    quiet = False
    progress: Any = None  # a deploy_tasks.progress.Terminal while one is drawing
    command = "invoke"    # or claude-pm-deploy (deploy_tasks.common.use_entry_point)
    # On a host of --hosts (deploy_tasks.remote.hostside): the host's name as the controller
    # gave it, the controller's command and the tasks that take --hosts. A hint then names
    # what to type on the controller (`invoke deploy --hosts h1`): typed as the host printed
    # it, it would act on the controller's own tree.
    host: tuple[str, str, frozenset[str]] | None = None


def _clear_progress() -> None:
    if Output.progress is not None:
        Output.progress.clear()


# A hint names the command to type (`invoke templates.adopt`); the package writes `invoke`,
# and the installed command says its own name instead.
HINT = re.compile(r"(?<=[`(])invoke (?=[a-z])")


# A whole hint, for a host's: `invoke TASK FLAGS | more` or (invoke TASK FLAGS).
HOSTED = (r"(`|\()(?:invoke|claude-pm-deploy) ([a-z][\w.-]*)([^`|)]*?)"
          r"( *\|[^`)]*)?(`|\))")


def hinted(line: str) -> str:
    """``line`` with each `` `invoke TASK`` hint naming the command that runs (issue 12),
    and on a host of ``--hosts`` the controller's command and ``--hosts NAME``."""
    if Output.host is not None:
        if "invoke " not in line and "-deploy " not in line:
            return line
        return re.sub(HOSTED, _for_host, line)  # re caches the compiled pattern
    if Output.command == "invoke" or "invoke " not in line:
        return line
    return HINT.sub(f"{Output.command} ", line)


def _for_host(hint: re.Match[str]) -> str:
    assert Output.host is not None
    name, command, tasks = Output.host
    opening, task, flags, pipe, closing = hint.groups()
    if (opening == "(") != (closing == ")"):
        return hint.group(0)
    where = f" --hosts {name}" if task in tasks and "--hosts" not in flags else ""
    return f"{opening}{command} {task}{flags}{where}{pipe or ''}{closing}"


def echo(line: str = "", *, err: bool = False) -> None:
    """Print one line, escaped (:func:`shown`): every line the tasks print goes through here,
    or through :func:`write_text` for text that is not a name (diff hunks)."""
    _clear_progress()
    line = hinted(line)
    stream = sys.stderr if err else sys.stdout
    try:
        print(_encodable(shown(line), stream), file=stream)
    except BrokenPipeError:
        closed_pipe(stream)


def write_text(text: str) -> None:
    """Write file content (a diff's hunks, a merge conflict's) to stdout as it is, but in
    what stdout can encode."""
    _clear_progress()
    try:
        sys.stdout.write(_encodable(text, sys.stdout))
    except BrokenPipeError:
        closed_pipe(sys.stdout)
