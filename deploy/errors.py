"""One error base, a few subclasses; each carries the exit code the CLI maps it to."""

from __future__ import annotations


class DeployError(Exception):
    """Base of every error the toolkit raises on purpose; exit code 1."""

    exit_code = 1

    def amend(self, outcome: str) -> DeployError:
        """The same error (type, exit code, details) with ``; outcome`` added to its message."""
        amended = type(self).__new__(type(self))
        amended.__dict__.update(self.__dict__)
        amended.args = (f"{self}; {outcome}",)
        return amended


class ConfigError(DeployError):
    """Bad configuration or bad input (a name, a flag value); exit code 2."""

    exit_code = 2


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
