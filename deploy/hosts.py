"""Many hosts (issue 15): host names and groups, and which host's exit code the run exits with.

No SSH here: the task layer (``deploy_tasks.remote``) drives Fabric. This module only knows
names and numbers, so that what ``--hosts`` means is tested without a network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from deploy.errors import ConfigError

GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_HOST = 255

# Which host's exit code the whole command exits with: the first of this order that any host
# had. A failed or lost host (1) may be half-known and needs a person first; an interrupted
# one (a signal) is next; bad input (2) is usually the same on every host and fixed once at
# the controller; blocked (3) is a decision (a conflict, drift, unmet versions) that leaves
# the host untouched; a held lock (4) only asks to try again. 0 only when every host is 0.
SEVERITY = (1, 130, 143, 129, 2, 3, 4)


def check_group(name: str, what: str = "host group") -> str:
    """A ``[tool.deploy.hosts]`` group name: ``[A-Za-z0-9][A-Za-z0-9._-]*``; else exit 2."""
    if not GROUP.fullmatch(name):
        raise ConfigError(f"{what}: group name {name!r} must match [A-Za-z0-9][A-Za-z0-9._-]*")
    return name


def check_host(name: str, what: str = "--hosts") -> str:
    """An ssh name (``user@host:port`` or an alias of ``~/.ssh/config``): not empty, no
    whitespace, comma or control character, no leading ``-`` (it would read as an ssh option),
    at most 255 bytes; else exit 2."""
    if not name:
        raise ConfigError(f"{what}: an empty host name")
    if name.startswith("-"):
        raise ConfigError(f"{what}: host name {name!r} starts with '-'")
    if any(ch.isspace() or ch == "," or ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F for ch in name):
        raise ConfigError(f"{what}: host name {name!r} holds a space, comma or control character")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_HOST:
        raise ConfigError(f"{what}: host name of {len(name)} characters; at most {MAX_HOST}")
    return name


def expand(spec: str | Iterable[str], groups: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The hosts ``--hosts`` names: comma-separated ssh names or group names, each group
    replaced by its members, duplicates dropped, first appearance's order kept."""
    items = spec.split(",") if isinstance(spec, str) else [x for s in spec for x in s.split(",")]
    seen: dict[str, None] = {}
    for item in (i.strip() for i in items):
        for host in groups.get(item, (item,)):
            seen.setdefault(check_host(host), None)
    if not seen:
        raise ConfigError("--hosts: no host named; give ssh names or [tool.deploy.hosts] groups")
    return tuple(seen)


def worst(codes: Iterable[int]) -> int:
    """The exit code of a command over many hosts: 0 when every host's is 0, else the most
    severe by :data:`SEVERITY` (a code outside it counts as a failure, 1)."""
    found = {c if c in SEVERITY else 1 for c in codes if c != 0}
    return next((code for code in SEVERITY if code in found), 0)


def groups(table: object, where: str) -> dict[str, tuple[str, ...]]:
    """``[tool.deploy.hosts]``: group name -> the ssh names it stands for (issue 15)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of group = [ssh names]")
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in table.items():
        check_group(name, f"{where}.{name}")
        if not isinstance(members, list) or not members:
            raise ConfigError(f"{where}.{name} must be a non-empty list of ssh names, "
                              f"not {members!r}")
        for i, member in enumerate(members):
            if not isinstance(member, str):
                raise ConfigError(f"{where}.{name}[{i}] must be a string (an ssh name), "
                                  f"not {member!r}")
            check_host(member, f"{where}.{name}[{i}]")
        groups[name] = tuple(members)
    return groups
