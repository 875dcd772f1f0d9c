"""One error base, a few subclasses; each carries the exit code the CLI maps it to."""

from __future__ import annotations

from typing import Self


class DeployError(Exception):
    """Base of every error the toolkit raises on purpose; exit code 1.

    ``path`` and ``line`` say where the cause lies when one file and line tell it (a
    template's undefined variable, a config key), for the task layer's ``::error file=,line=``
    annotation; ``problems`` are (target, problem) pairs, one per target that blocks a run
    (a conflict, drift, an unmet requirement), for its ``--json`` error document (issue 14).
    """

    exit_code = 1
    path: str | None = None
    line: int | None = None
    problems: tuple[tuple[str, str], ...] = ()

    def at(self, path: object, line: int | None = None) -> Self:
        """This error, placed at ``path`` (and ``line``); returned, so ``raise X(...).at(p)``."""
        self.path, self.line = str(path), line
        return self

    def listing(self, problems: list[tuple[str, str]]) -> Self:
        """This error, with the (target, problem) pairs that make it."""
        self.problems = tuple(problems)
        return self

    def amend(self, outcome: str) -> DeployError:
        """The same error (type, exit code, details) with ``; outcome`` added to its message."""
        amended = type(self).__new__(type(self))
        amended.__dict__.update(self.__dict__)
        amended.args = (f"{self}; {outcome}",)
        return amended


class ConfigError(DeployError):
    """Bad configuration or bad input (a name, a flag value); exit code 2. ``key`` is the
    config key a bad value came from when the message does not name it (``deploy.config``
    finds that key's line)."""

    exit_code = 2
    key: str | None = None


class Untrusted(ConfigError):
    """Part of the backup tree is owned by another user, writable by others, or a link."""


class BadName(ConfigError):
    """A user-given name that could escape its folder or confuse a shell."""


class Blocked(DeployError):
    """A conflict, drift or unmet version requirement; exit code 3."""

    exit_code = 3


class Locked(DeployError):
    """Another run holds the state dir's lock; exit code 4."""

    exit_code = 4


class IntegrityError(DeployError):
    """A backup is missing or its sha256 does not match the index; exit code 1."""


class WriteFailed(DeployError):
    """A write failed part way; what the run changed was restored (or the message says not)."""


class Interrupted(DeployError):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped a run; exit code 128 + the signal's number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
