"""The README's two commands are the ones that run: ``.ci/run`` runs the test command as
written, and both make and activate a venv first (PEP 668: a fresh Debian or Ubuntu refuses a
bare ``pip install`` into its system Python)."""

from __future__ import annotations

import re

from tests.conftest import REPO


def two_commands() -> list[str]:
    section = (REPO / "README.md").read_text().split("## The two commands", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, re.S)


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    """The second command is a line of .ci/run, character for character."""
    _, install_and_test = two_commands()

    assert install_and_test in (REPO / ".ci" / "run").read_text().splitlines()


def test_both_commands_install_into_a_venv() -> None:
    """Each command makes and activates ``.venv`` before pip runs, and runs its job last."""
    commands = two_commands()

    assert len(commands) == 2
    for command, job in zip(commands, ["invoke deploy", "python3 -m pytest"], strict=True):
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && "), command
        assert command.endswith(f"&& {job}"), command
