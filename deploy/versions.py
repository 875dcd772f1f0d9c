"""Version files: ``<NAME>_VERSION`` in ``versions.dir``, one per subsystem.

A version file holds a zero-padded serial (``004``) or a PEP 440 version
(``0.7.5``), with whatever whitespace the maintainer left around it. Bumps keep
that layout byte for byte: no trailing newline stays none, CRLF stays CRLF
(bump-my-version keeps line endings the same way). A bulk bump checks every
item before the first write and is applied by the store as one run, so it is
all or nothing (bump-my-version edits files one by one and can leave a
half-bumped tree: its issue #381).

Version files belong to the toolkit: there is no conflict check, the old bytes
are backed up and replaced. The backup is named after the file
(``MEMORY_VERSION_backup_...``) while the index key is the subsystem
(``memory``); :func:`deploy.names.name_key` makes that split.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from deploy import fsio
from deploy.errors import BadName, Blocked, ConfigError
from deploy.names import check_name
from deploy.plan import Change, Plan, Skip

if TYPE_CHECKING:  # packaging is imported where versions are parsed (~10 ms)
    from packaging.specifiers import Specifier, SpecifierSet
    from packaging.version import Version as Pep440

CATEGORY = "versions"
SUFFIX = "_VERSION"
FRAMEWORK_FILE = "VERSION"
NEW_MODE = 0o644
SERIAL = re.compile(r"[0-9]+\Z")
PLAIN_RELEASE = re.compile(r"[0-9]+(\.[0-9]+)+\Z")
# A subsystem is one lower-case word; its file is that word upper-cased plus _VERSION.
SUBSYSTEM = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
FILE_NAME = re.compile(r"([A-Z0-9][A-Z0-9_-]*)_VERSION\Z")
# Whitespace around the version is kept as is; a UTF-8 BOM counts as part of the lead.
LAYOUT = re.compile(rb"(\xef\xbb\xbf)?(\s*)(\S+)(\s*)\Z")
EXACT_OPERATORS = {"==", "==="}
FLOOR_OPERATORS = {">=", "~=", "==", "==="}


class Version(NamedTuple):
    """A parsed version: the text as written, whether it is a serial, and its value.

    Serials compare numerically (``010`` > ``009``, ``1000`` > ``999``); their value
    is the PEP 440 version of the number, so ``004`` meets ``>=3`` and ``>=002``.
    """

    text: str
    serial: bool

    @property
    def value(self) -> Pep440:
        """The PEP 440 value, made when compared (packaging costs ~3 ms to import)."""
        from packaging.version import Version as Pep440

        return Pep440(str(int(self.text)) if self.serial else self.text)

    def __str__(self) -> str:
        return self.text


class VersionFile(NamedTuple):
    """One ``<NAME>_VERSION`` file as read: its version and the layout around it."""

    subsystem: str
    path: Path
    version: Version
    lead: bytes
    trail: bytes
    state: fsio.FileState

    def render(self, version: Version) -> bytes:
        """The file's bytes holding ``version`` instead, every other byte kept."""
        return self.lead + version.text.encode("ascii") + self.trail


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


def parse(text: str, where: Path | str = "version") -> Version:
    """Parse a serial (all ASCII digits) or a PEP 440 version; else ConfigError naming ``where``."""
    text = text.strip()
    if SERIAL.match(text):
        return Version(text, True)
    if PLAIN_RELEASE.match(text):
        return Version(text, False)  # 0.7.5: valid PEP 440 without asking packaging
    from packaging.version import InvalidVersion
    from packaging.version import Version as Pep440

    try:
        Pep440(text)
    except InvalidVersion as err:
        raise ConfigError(
            f"{where}: {text!r} is neither a serial like 004 nor a PEP 440 version like "
            "0.7.5") from err
    return Version(text, False)


def next_version(current: Version) -> Version:
    """The next version: a serial plus one at the same width (``009`` -> ``010``, ``999`` ->
    ``1000``); a PEP 440 version's next patch (``0.7.5`` -> ``0.7.6``, ``0.7`` -> ``0.7.1``).

    A pre-release or dev release steps to its own final release (``0.8.0rc1`` ->
    ``0.8.0``); post and local parts are dropped. The epoch and a leading ``v`` stay.
    """
    if current.serial:
        return parse(str(int(current.text) + 1).zfill(len(current.text)))
    value = current.value
    final = _spell(current, value.release)
    if final.value > value:
        return final
    release = [*value.release[:3], 0, 0][:3]
    release[2] += 1
    return _spell(current, tuple(release))


def _spell(current: Version, release: tuple[int, ...]) -> Version:
    """A release written the way ``current`` is: its epoch and any leading ``v`` kept."""
    text = ".".join(str(part) for part in release)
    if current.value.epoch:
        text = f"{current.value.epoch}!{text}"
    if current.text[:1] in {"v", "V"}:
        text = current.text[0] + text
    return parse(text)


def subsystem_key(name: str) -> str:
    """Check a user-given subsystem name and return its lower-case key."""
    check_name(name, "subsystem")
    key = name.lower()
    if not SUBSYSTEM.match(key):
        raise BadName(f"subsystem {name!r} must match [A-Za-z0-9][A-Za-z0-9_-]*")
    return key


def version_path(versions_dir: Path, subsystem: str) -> Path:
    """The version file of a subsystem (checked): ``memory`` -> ``<dir>/MEMORY_VERSION``."""
    return versions_dir / f"{subsystem_key(subsystem).upper()}{SUFFIX}"


def read(versions_dir: Path, subsystem: str) -> VersionFile:
    """Read and parse one subsystem's version file; a missing or garbled file is ConfigError."""
    key = subsystem_key(subsystem)
    path = version_path(versions_dir, key)
    try:
        state = fsio.read_state(path)
        data = fsio.read_bytes(path) if state.exists else b""
    except OSError as err:
        raise ConfigError(
            f"{path}: version file is a symlink or not a regular file; refusing it "
            f"({err.strerror or err})") from err
    if not state.exists:
        raise ConfigError(f"{path}: no version file for subsystem {key!r}; see "
                          "`invoke versions.show`")
    # Hash what was read, so the backup check catches a file edited meanwhile.
    state = fsio.FileState(True, fsio.sha256_bytes(data), len(data), state.mode)
    layout = LAYOUT.match(data)
    if layout is None:
        raise ConfigError(f"{path}: expected one version (like 004 or 0.7.5), found "
                          f"{'nothing' if not data.strip() else 'several words'}")
    bom, lead, token, trail = layout.groups()
    try:
        text = token.decode("ascii")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: version is not ASCII text") from err
    return VersionFile(key, path, parse(text, path), (bom or b"") + lead, trail, state)


def subsystems(versions_dir: Path) -> list[str]:
    """Every subsystem with a ``<NAME>_VERSION`` file, sorted (legacy backups are not)."""
    try:
        names = os.listdir(versions_dir)
    except FileNotFoundError as err:
        raise ConfigError(f"{versions_dir}: versions folder not found") from err
    except OSError as err:
        raise ConfigError(f"{versions_dir}: cannot list versions: {err.strerror}") from err
    return sorted(m.group(1).lower() for m in map(FILE_NAME.match, names) if m)


def read_all(versions_dir: Path) -> dict[str, VersionFile]:
    """Every subsystem's version file, by lower-case subsystem."""
    return {key: read(versions_dir, key) for key in subsystems(versions_dir)}


def framework_version(versions_dir: Path) -> str | None:
    """The stripped content of ``VERSION`` in the versions folder, or None when absent."""
    path = versions_dir / FRAMEWORK_FILE
    try:
        return fsio.read_bytes(path).decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the framework version: {err}") from err


def _target(current: VersionFile, to: str | None, allow_downgrade: bool) -> Version:
    if to is None:
        return next_version(current.version)
    wanted = parse(to, f"{current.path}: --to {to!r}")
    if wanted.serial and current.version.serial and len(wanted.text) < len(current.version.text):
        # Keep the file's width: `--to 11` over `010` writes `011`.
        wanted = parse(wanted.text.zfill(len(current.version.text)))
    if wanted.value < current.version.value and not allow_downgrade:
        raise ConfigError(f"{current.path}: {wanted} is lower than the current "
                          f"{current.version}; pass --allow-downgrade to go back")
    return wanted


def _change(current: VersionFile, wanted: Version) -> Change | Skip:
    if wanted.value == current.version.value:
        # The same version (even written differently) is a no-op, not a rewrite.
        return Skip(CATEGORY, current.subsystem, current.path, "unchanged")
    data = current.render(wanted)
    return Change(CATEGORY, current.subsystem, current.path, current.state, data,
                  fsio.sha256_bytes(data), len(data), current.state.mode or NEW_MODE,
                  note=f"{current.version} -> {wanted}")


def _plan(items: Iterable[Change | Skip]) -> Plan:
    changes = tuple(i for i in items if isinstance(i, Change))
    skips = tuple(i for i in items if isinstance(i, Skip))
    return Plan(changes, skips, (CATEGORY,))


def plan_bump(versions_dir: Path, subsystem: str, to: str | None = None, *,
              allow_downgrade: bool = False, create: bool = False) -> Plan:
    """Plan setting one subsystem's version: ``to``, or the next one.

    With ``create`` a subsystem without a file gets one (``to`` required), mode 0644,
    holding the version and a newline.
    """
    key = subsystem_key(subsystem)
    path = version_path(versions_dir, key)
    if create and to is not None and not os.path.lexists(path):
        wanted = parse(to, f"{path}: --to {to!r}")
        data = f"{wanted}\n".encode("ascii")
        return _plan([Change(CATEGORY, key, path, fsio.ABSENT, data, fsio.sha256_bytes(data),
                             len(data), NEW_MODE, note=f"new {wanted}")])
    if create and to is None:
        raise ConfigError(f"{path}: --create needs --to VERSION")
    current = read(versions_dir, key)
    return _plan([_change(current, _target(current, to, allow_downgrade))])


def parse_setting(text: str) -> tuple[str, str]:
    """Split a ``--set NAME=VERSION`` value; a missing ``=`` or side is ConfigError."""
    name, sep, version = text.partition("=")
    if not sep or not version.strip():
        raise ConfigError(f"--set {text!r}: expected NAME=VERSION, like memory=004")
    return name, version


def plan_bulk(versions_dir: Path, settings: Mapping[str, str] | Iterable[tuple[str, str]], *,
              allow_downgrade: bool = False) -> Plan:
    """Plan several bumps as one: every item is checked before anything is planned to change.

    Each problem (a bad or unknown name, a duplicate, an unparsable or lower version) is
    collected, and all of them are reported in one ConfigError, so that one bad item
    means nothing is written.
    """
    pairs = list(settings.items() if isinstance(settings, Mapping) else settings)
    if not pairs:
        raise ConfigError("versions.bulk needs at least one --set NAME=VERSION")
    problems: list[str] = []
    seen: set[str] = set()
    items: list[Change | Skip] = []
    for name, to in pairs:
        try:
            key = subsystem_key(name)
            if key in seen:
                raise ConfigError(f"subsystem {key!r} is set twice")
            seen.add(key)
            current = read(versions_dir, key)
            items.append(_change(current, _target(current, to, allow_downgrade)))
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("; ".join(problems) + "; nothing was written")
    return _plan(items)


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


def unmet(versions_dir: Path, results: Iterable[Requirement]) -> Blocked | None:
    """The exit-3 error naming each unmet requirement's file, or None when all are met."""
    problems = [f"{version_path(versions_dir, r.subsystem)}: {r.subsystem} "
                f"{r.version or '(no file)'} is {r.status}, requires {r.spec}"
                for r in results if not r.met]
    return Blocked("; ".join(problems)) if problems else None


def gate(versions_dir: Path, requires: Mapping[str, str]) -> list[Requirement]:
    """Check ``requires`` against the version files; raise Blocked (exit 3) when one is unmet."""
    if not requires:
        return []
    results = check(requires, {k: f.version for k, f in read_all(versions_dir).items()})
    error = unmet(versions_dir, results)
    if error is not None:
        raise error
    return results
