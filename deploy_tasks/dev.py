"""``lint`` and ``test``: what CI and people run, the same way."""

from __future__ import annotations

from typing import Any

from invoke import task


@task
def lint(c: Any) -> None:
    """ruff and mypy (strict on the deploy package)."""
    c.run("ruff check .")
    c.run("mypy")


@task(help={"slow": "also run the long sweeps (SIGKILL storms, full fault cross-product)"})
def test(c: Any, slow: bool = False) -> None:
    """The whole test suite (what .ci/run runs)."""
    c.run("python3 -m pytest" + (" --runslow" if slow else ""), pty=False)
