"""One error base, a few subclasses; each carries the exit code the CLI maps it to."""

from __future__ import annotations


class DeployError(Exception):
    """Base of every error the toolkit raises on purpose; exit code 1."""

    exit_code = 1


class ConfigError(DeployError):
    """Bad configuration or bad input (a name, a flag value); exit code 2."""

    exit_code = 2


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
