"""Compiled template code kept between runs (Jinja's bytecode-cache idea, in the index)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import NamedTuple


class Compiled(NamedTuple):
    """A template's compiled code, as :class:`Codes` keeps it: marshalled, with its key."""

    path: str
    key: str
    code: bytes


class Codes:
    """Where :func:`render` finds a template's compiled code, and keeps what it compiles.

    Compiling is most of a render's cost (about 0.8 ms of 0.9 ms for a small template),
    so this is Jinja's bytecode-cache idea kept in the index: ``lookup(path)`` returns the
    (key, code) stored for a template file by an earlier run, and code compiled now stays
    in memory (one compile per template per run, however many parents it renders into)
    until the run stores it with its renders. The key covers everything the code depends
    on: Jinja's and Python's versions, the environment's options, the template's path and
    its bytes; a stored entry under any other key, or one that does not unmarshal, is
    simply compiled again.
    """

    def __init__(self, lookup: Callable[[str], tuple[str, bytes] | None] | None = None):
        self.lookup = lookup
        self.fresh: dict[str, Compiled] = {}
        self._loaded: dict[str, tuple[str, CodeType]] = {}

    def get(self, path: str, key: str) -> CodeType | None:
        import marshal

        loaded = self._loaded.get(path)
        if loaded is not None and loaded[0] == key:
            return loaded[1]
        stored = self.lookup(path) if self.lookup is not None else None
        if stored is None or stored[0] != key:
            return None
        try:
            code = marshal.loads(stored[1])
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(code, CodeType):
            return None
        self._loaded[path] = (key, code)
        return code

    def put(self, path: str, key: str, code: CodeType) -> None:
        import marshal

        self._loaded[path] = (key, code)
        self.fresh[path] = Compiled(path, key, marshal.dumps(code))

    def compiled(self, path: Path) -> Compiled | None:
        """What this run compiled for ``path``, for the run to store; None if nothing."""
        return self.fresh.get(str(path))
