"""``lint`` and ``test``: what CI and people run, the same way."""

from __future__ import annotations

from invoke import Context

from deploy_tasks.flags import task


# With parentheses: invoke 2.2 types a bare ``@task`` as returning a plain ``Callable``, which
# ``Collection.add_task`` (typed to take a ``Task``) refuses under mypy.
@task()
def lint(c: Context) -> None:
    """ruff and mypy (strict on deploy and the task layer)."""
    c.run("ruff check .")
    c.run("mypy")


@task(help={"slow": "also run the long sweeps (SIGKILL storms, full fault cross-product)"})
def test(c: Context, slow: bool = False) -> None:
    """The whole test suite (what .ci/run runs)."""
    c.run("python3 -m pytest" + (" --runslow" if slow else ""), pty=False)
