"""Compatibility: ``[tool.deploy.versions.requires]`` checked against the version files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from deploy.categories import RELEASE_KEY
from deploy.errors import Blocked, ConfigError
from deploy.versions.files import Layout, read_all, release_version, version_path
from deploy.versions.values import Version

if TYPE_CHECKING:
    from packaging.specifiers import Specifier, SpecifierSet
    from packaging.version import Version as Pep440

EXACT_OPERATORS = {"==", "==="}
FLOOR_OPERATORS = {">=", "~=", "==", "==="}


class Requirement(NamedTuple):
    """One ``requires`` entry checked against the version files.

    ``status`` is one of:

    - ``exact``: the version equals the version a ``==``/``===`` specifier pins, or
      the lower bound of a ``>=``/``~=`` specifier (it is the minimum asked for);
    - ``compatible``: it satisfies the specifiers and is not exact;
    - ``outdated``: it fails them and is below a lower bound;
    - ``incompatible``: it fails them otherwise (above an upper bound, or excluded by
      ``!=``); a newer version is never called outdated;
    - ``missing``: there is no version file for the subsystem.
    """

    subsystem: str
    spec: str
    version: str | None
    status: str

    @property
    def met(self) -> bool:
        return self.status in {"exact", "compatible"}


def _floor(spec: Specifier) -> Pep440 | None:
    """The lowest version ``spec`` admits, when it has one (``>=1.2``, ``~=1.2``, ``==1.*``)."""
    from packaging.version import InvalidVersion
    from packaging.version import Version as Pep440

    if spec.operator not in FLOOR_OPERATORS and spec.operator != ">":
        return None
    text = spec.version.removesuffix(".*")
    try:
        return Pep440(text)
    except InvalidVersion:
        return None


def _status(version: Version, specs: SpecifierSet) -> str:
    if not specs.contains(version.value, prereleases=True):
        below = any(not spec.contains(version.value, prereleases=True)
                    and (floor := _floor(spec)) is not None and version.value <= floor
                    for spec in specs)
        return "outdated" if below else "incompatible"
    for spec in specs:
        floor = _floor(spec)
        if spec.operator in EXACT_OPERATORS | {">=", "~="} and floor is not None \
                and not spec.version.endswith(".*") and version.value == floor:
            return "exact"
    return "compatible"


def check(requires: Mapping[str, str], versions: Mapping[str, Version]) -> list[Requirement]:
    """Check each ``requires`` entry (PEP 440 specifiers) against the versions, by subsystem.

    A serial's value is its number, and packaging reads a specifier's release numbers
    as integers, so ``>=002`` and ``>=2`` mean the same and ``010`` meets both. Versions
    compare as versions, never as strings (the original called a newer ``0.7.5-002``
    outdated because ``"0.7.5-002" < "0.7.6"`` as text).
    """
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    result = []
    for subsystem, spec_text in sorted(requires.items()):
        key = subsystem.lower()
        try:
            specs = SpecifierSet(spec_text)
        except InvalidSpecifier as err:
            raise ConfigError(f"tool.deploy.versions.requires.{subsystem}: {spec_text!r} is "
                              "not a PEP 440 specifier like >=002 or >=0.7") from err
        version = versions.get(key)
        if version is None:
            result.append(Requirement(key, spec_text, None, "missing"))
            continue
        result.append(Requirement(key, spec_text, version.text, _status(version, specs)))
    return result


def unmet(where: Layout | Path, results: Iterable[Requirement]) -> Blocked | None:
    """The exit-3 error naming each unmet requirement's file, or None when all are met."""
    problems = [(str(version_path(where, r.subsystem)),
                 f"{version_path(where, r.subsystem)}: {r.subsystem} "
                 f"{r.version or '(no file)'} is {r.status}, requires {r.spec}")
                for r in results if not r.met]
    return Blocked("; ".join(p for _, p in problems)).listing(problems) if problems else None


def found(where: Layout | Path, requires: Mapping[str, str] | None = None
          ) -> dict[str, Version]:
    """Every subsystem's version, and the release ``VERSION`` as ``version`` when it exists
    and ``requires`` names it (a ``VERSION`` no requirement reads is never parsed here)."""
    versions = {k: f.version for k, f in read_all(where).items()}
    release = release_version(where) \
        if requires is None or RELEASE_KEY in {k.lower() for k in requires} else None
    if release is not None:
        versions[release.subsystem] = release.version
    return versions


def gate(where: Layout | Path, requires: Mapping[str, str]) -> list[Requirement]:
    """Check ``requires`` against the version files; raise Blocked (exit 3) when one is unmet."""
    if not requires:
        return []
    results = check(requires, found(where, requires))
    error = unmet(where, results)
    if error is not None:
        raise error
    return results
