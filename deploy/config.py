"""The ``[tool.deploy]`` table: read, checked, and turned into paths and values.

Unknown keys, wrong types and numbers out of range are errors that name the key (exit 2):
a typo in a retention setting must not silently keep the default. Two entries that would
write one file, or a target inside the backup tree, are refused here too, before any task
plans anything (issue 11).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from deploy import data
from deploy.errors import ConfigError
from deploy.hosts import groups as host_groups
from deploy.names import check_name, check_template_id, utf8

if sys.version_info >= (3, 11):  # noqa: UP036 - tomli is the contract's fallback
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class TemplateSpec(NamedTuple):
    id: str
    source: Path
    target: Path


class CategoryLimits(NamedTuple):
    """``[tool.deploy.backup.<category>]``: what overrides the top-level retention keys for
    one category (None: not set, the top-level value holds)."""

    retention_days: int | None = None
    max_backups_per_type: int | None = None


class BackupSettings(NamedTuple):
    retention_days: int = 30
    max_backups_per_type: int = 10
    framework_keep: int = 2
    compression_enabled: bool = False
    integrity_checking: bool = True
    compress_after_days: int = 1  # backups older than this are zstd-compressed (when enabled)
    auto_prune: bool = False      # apply retention at the end of every writing run
    # category name -> its overrides, for the categories that have a table of their own
    categories: tuple[tuple[str, CategoryLimits], ...] = ()

    def limits(self, category: str) -> CategoryLimits:
        """The category's overrides (all None when it has no table)."""
        return dict(self.categories).get(category, CategoryLimits())


class Config(NamedTuple):
    path: Path
    state_dir: Path
    scripts_source: Path
    scripts_target: Path
    versions_dir: Path
    requires: dict[str, str]
    context: dict[str, Any]
    backup: BackupSettings
    scripts_include: tuple[str, ...] = ("*",)
    scripts_exclude: tuple[str, ...] = ()
    framework_template: Path | None = None
    framework_install_to: Path | None = None
    parents: tuple[Path, ...] = ()
    templates: tuple[TemplateSpec, ...] = ()
    prefix: Path | None = None
    # Whether framework.template was set: a configured template that is missing is exit 2
    # (like a missing scripts.source); the default one missing is a visible skip.
    framework_template_set: bool = False
    framework_bundled: bool = False  # framework.template = "bundled": the shipped one
    # [tool.deploy.versions.files]: more version files, subsystem -> path in the project.
    versions_files: tuple[tuple[str, Path], ...] = ()
    hosts: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - a NamedTuple's default, never mutated


TOP_KEYS = {"state_dir", "scripts", "versions", "framework", "templates", "context", "backup",
            "hosts"}
SECTION_KEYS: dict[str, dict[str, type]] = {
    "scripts": {"source": str, "target": str, "include": list, "exclude": list},
    "versions": {"dir": str, "requires": dict, "files": dict},
    "framework": {"template": str, "install_to": str, "parents": list},
    "backup": {"retention_days": int, "max_backups_per_type": int, "framework_keep": int,
               "compression_enabled": bool, "integrity_checking": bool,
               "compress_after_days": int, "auto_prune": bool},
}
# [tool.deploy.backup.<category>]: the keys one category may override (issue 13).
CATEGORY_KEYS: dict[str, type] = {"retention_days": int, "max_backups_per_type": int}
TEMPLATE_KEYS = {"id", "source", "target"}
# The range of each whole-number key. Days: up to a century. Counts: at least 1 (the newest
# backup of every target always stays, so 0 would mean 1), at most a million per target.
BACKUP_RANGES = {
    "retention_days": (0, 36500),
    "max_backups_per_type": (1, 1_000_000),
    "framework_keep": (1, 1_000_000),
    "compress_after_days": (0, 36500),
}
PARENT_FILE = "CLAUDE.md"  # what each parent folder gets (deploy.framework writes it)


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", dict: "a table",
            list: "a list"}[kind]


def _check(table: dict[str, Any], allowed: dict[str, type], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"unknown key {where}.{key}")
        kind = allowed[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}.{key} must be {_type_name(kind)}, not {value!r}")


def _category_limits(backup: dict[str, Any], where: str) -> tuple[tuple[str, CategoryLimits], ...]:
    """Take the per-category tables out of ``backup`` (what is left are its own keys),
    each checked like every table: an unknown category or key, a wrong type or a number out
    of range is an error naming it."""
    from deploy.categories import NAMES

    found = []
    own = SECTION_KEYS["backup"]
    for name in [k for k, v in backup.items() if isinstance(v, dict) and k not in own]:
        table = backup.pop(name)
        if name not in NAMES:
            raise ConfigError(f"unknown backup category {where}.{name}; the tables under "
                              f"{where} are {', '.join(NAMES)}")
        _check(table, CATEGORY_KEYS, f"{where}.{name}")
        for key, value in table.items():
            _in_range(value, *BACKUP_RANGES[key], f"{where}.{name}.{key}")
        found.append((name, CategoryLimits(**table)))
    return tuple(found)


def _globs(section: dict[str, Any], key: str, default: tuple[str, ...],
           where: str) -> tuple[str, ...]:
    """A list of file-name globs (``scripts.include``, ``scripts.exclude``), checked."""
    globs = section.get(key, list(default))
    for i, glob in enumerate(globs):
        if not isinstance(glob, str):
            raise ConfigError(f"{where}.{key}[{i}] must be a string (a file-name glob), "
                              f"not {glob!r}")
        if "/" in glob or "\x00" in glob:
            raise ConfigError(f"{where}.{key}[{i}] {glob!r}: globs match file names in "
                              "scripts.source, not paths")
    return tuple(globs)


def _in_range(value: int, low: int, high: int, where: str) -> None:
    if not low <= value <= high:
        # A number of thousands of digits cannot even be shown (int to str stops at 4300).
        told = value if abs(value) < 10**100 else "a number that large"
        raise ConfigError(f"{where} must be from {low} to {high}, not {told}")


def _check_targets(cfg: Config, framework: dict[str, Any]) -> None:
    """Refuse two entries writing one file, and any target in the backup tree.

    Each is compared by its path with its folders resolved (each folder once) and its own
    name as written, as the planners see it: a symlink there is refused when planned.
    ``release.check_targets`` stays as the safety net for what only planning knows (a
    script or a version file that is also a template's target).
    """
    folders: dict[str, str] = {}

    def written(path: Path) -> str:
        head, name = os.path.split(os.path.normpath(path))
        real = folders.get(head)
        if real is None:
            real = folders[head] = os.path.realpath(head)
        return os.path.join(real, name)

    install_to = "tool.deploy.framework.install_to"
    files: list[tuple[str, Path]] = []
    if cfg.framework_install_to is not None:
        files.append((install_to if "install_to" in framework else f"{install_to} (its default)",
                      cfg.framework_install_to))
    files += [(f"tool.deploy.framework.parents[{i}] ({PARENT_FILE} in it)", parent / PARENT_FILE)
              for i, parent in enumerate(cfg.parents)]
    files += [(f"tool.deploy.templates[{i}].target (id {spec.id!r})", spec.target)
              for i, spec in enumerate(cfg.templates)]
    files += [(f"tool.deploy.versions.files.{key}", path) for key, path in cfg.versions_files]
    seen: dict[str, str] = {}
    for label, path in files:
        key = written(path)
        if key in seen:
            raise ConfigError(f"{seen[key]} and {label} are both {key}; two entries must not "
                              "write one file: give each its own target")
        seen[key] = label
    tree = os.path.realpath(cfg.state_dir / "backups")
    folders_written = [("tool.deploy.scripts.target", cfg.scripts_target),
                       ("tool.deploy.versions.dir", cfg.versions_dir)]

    for label, path in [*folders_written, *files]:
        key = written(path)
        if key == tree or key.startswith(tree + os.sep):
            raise ConfigError(f"{label} {key} is inside the backup tree {tree} "
                              "(<state_dir>/backups): it would be written into the backups; "
                              "point it elsewhere")


def _staged(path: Path, prefix: Path | None) -> Path:
    if prefix is None:
        return path
    return prefix / path.relative_to(path.anchor)


def _keyed(check: Any, value: Any, key: str, *args: Any) -> Any:
    """``check(value, *args)``, its ConfigError told which config key ``value`` came from."""
    try:
        return check(value, *args)
    except ConfigError as err:
        err.key = key
        raise


def _line(text: str, key: str) -> int | None:
    from deploy import tomlkeys

    return tomlkeys.key_line(text, key)


def _placed(err: ConfigError, path: Path, text: str) -> ConfigError:
    """``err`` named after the config file, at the line of the key it names (issue 14)."""
    from deploy import tomlkeys  # only on the error path: its patterns cost a few ms

    message = str(err)
    key = err.key or tomlkeys.message_key(message)
    line = tomlkeys.key_line(text, key) if key else None
    placed = ConfigError(message if message.startswith(f"{path}: ") else f"{path}: {message}")
    return placed.at(path, line)


def load(path: Path, *, prefix: Path | None = None, home: Path | None = None) -> Config:
    """Read ``[tool.deploy]`` from ``path``; relative paths resolve against its folder.

    ``prefix`` stages every target (and the state dir) under a folder, DESTDIR-style.
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        document = tomllib.loads(text)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: config file not found").at(path) from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}").at(path) from err
    except tomllib.TOMLDecodeError as err:
        from deploy import tomlkeys

        raise ConfigError(f"{path}: not valid TOML: {err}").at(
            path, tomlkeys.decode_line(str(err))) from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 (byte 0x{err.object[err.start]:02x} at offset "
                          f"{err.start}); TOML files are UTF-8 text").at(path) from err
    except ValueError as err:
        # tomllib makes every integer with int(), which refuses more than 4300 digits.
        raise ConfigError(f"{path}: not valid TOML: an integer of more than 4300 digits; no "
                          "key takes a number that large").at(path) from err
    tool = document.get("tool")
    if tool is not None and not isinstance(tool, dict):
        raise ConfigError(f"{path}: tool must be a table holding [tool.deploy], not "
                          f"{type(tool).__name__} {tool!r}").at(path, _line(text, "tool"))
    if tool is None or "deploy" not in tool:
        # The contract: a file without the table is an error, not the defaults.
        raise ConfigError(f"{path}: no [tool.deploy] table; this file does not configure "
                          "the deploy toolkit").at(path)
    table = tool["deploy"]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.deploy must be a table, not "
                          f"{type(table).__name__} {table!r}").at(
                              path, _line(text, "tool.deploy"))
    where = "tool.deploy"
    for key in table:
        if key not in TOP_KEYS:
            raise _placed(ConfigError(f"unknown key {where}.{key}"), path, text)
    base = path.resolve().parent
    home_dir = home if home is not None else Path.home()

    folders: dict[str, str] = {}

    def resolve(value: str, *, folder: bool = False) -> Path:
        """An absolute path stays as written; a relative one is taken from the config's
        folder with its folders' symlinks resolved (each folder once). A file's last
        component is kept as written, so a symlinked target is refused, never followed."""
        return utf8(_resolve(value, folder=folder))

    def _resolve(value: str, *, folder: bool) -> Path:
        if value == "~" or value.startswith("~/"):
            value = str(home_dir) + value[1:]
        if os.path.isabs(value):
            return Path(value)
        head, name = os.path.split(os.path.join(base, value))
        if folder or name in ("", ".", ".."):
            return Path(base, value).resolve()
        parent = folders.get(head)
        if parent is None:
            parent = folders[head] = os.path.realpath(head)
        return Path(parent, name)

    utf8(path.absolute())

    try:
        if not isinstance(table.get("state_dir", ""), str):
            raise ConfigError(f"{where}.state_dir must be a string")
        sections: dict[str, dict[str, Any]] = {}
        per_category: tuple[tuple[str, CategoryLimits], ...] = ()
        for name, allowed in SECTION_KEYS.items():
            section = table.get(name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"{where}.{name} must be a table")
            if name == "backup":
                section = dict(section)
                per_category = _category_limits(section, f"{where}.backup")
            _check(section, allowed, f"{where}.{name}")
            sections[name] = section
        requires = sections["versions"].get("requires", {})
        for sub, spec in requires.items():
            _keyed(check_name, sub, f"{where}.versions.requires", "subsystem")
            if not isinstance(spec, str):
                raise ConfigError(f"{where}.versions.requires.{sub} must be a string")
            from deploy.versions.values import check_digits  # only with requirements

            check_digits(spec, f"{where}.versions.requires.{sub}")
        files_table = sections["versions"].get("files", {})
        if files_table:
            from deploy.versions.files import from_config  # only a config with the table

            version_files = from_config(files_table, base, resolve)
        else:
            version_files = ()
        include = _globs(sections["scripts"], "include", ("*",), f"{where}.scripts")
        exclude = _globs(sections["scripts"], "exclude", (), f"{where}.scripts")
        parents = sections["framework"].get("parents", [])
        if not all(isinstance(p, str) for p in parents):
            raise ConfigError(f"{where}.framework.parents must be a list of strings")
        templates = []
        raw_templates = table.get("templates", [])
        if not isinstance(raw_templates, list):
            raise ConfigError(f"{where}.templates must be an array of tables")
        seen: set[str] = set()
        for i, entry in enumerate(raw_templates):
            here = f"{where}.templates[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{here} must be a table")
            _check(entry, {k: str for k in TEMPLATE_KEYS}, here)
            missing = TEMPLATE_KEYS - entry.keys()
            if missing:
                raise ConfigError(f"{here} needs {', '.join(sorted(missing))}")
            template_id = _keyed(check_template_id, entry["id"], f"{here}.id")
            if template_id in seen:
                raise ConfigError(f"{here}: template id {template_id!r} is used twice")
            seen.add(template_id)
            templates.append(TemplateSpec(template_id, resolve(entry["source"]),
                                          _staged(resolve(entry["target"]), prefix)))
        context = table.get("context", {})
        if not isinstance(context, dict):
            raise ConfigError(f"{where}.context must be a table")
        backup = BackupSettings(**sections["backup"], categories=per_category)
        for key, (low, high) in BACKUP_RANGES.items():
            _in_range(getattr(backup, key), low, high, f"{where}.backup.{key}")
        hosts = host_groups(table.get("hosts", {}), f"{where}.hosts")
    except ConfigError as err:
        raise _placed(err, path, text) from err
    scripts = sections["scripts"]
    framework = sections["framework"]
    bundled = framework.get("template") == data.BUNDLED
    config = Config(
        path=path,
        state_dir=_staged(resolve(table.get("state_dir", "~/.claude-pm"), folder=True), prefix),
        scripts_source=resolve(scripts.get("source", "bin"), folder=True),
        scripts_target=_staged(resolve(scripts.get("target", "~/.local/bin"), folder=True), prefix),
        scripts_include=include,
        scripts_exclude=exclude,
        versions_dir=resolve(sections["versions"].get("dir", "."), folder=True),
        requires=dict(requires),
        framework_template=(data.framework_template() if bundled else
                            resolve(framework.get("template", "templates/framework/CLAUDE.md"))),
        framework_install_to=_staged(
            resolve(framework.get("install_to", "~/.claude-pm/framework/CLAUDE.md")), prefix),
        parents=tuple(_staged(resolve(p, folder=True), prefix) for p in parents),
        templates=tuple(templates),
        context=dict(context),
        backup=backup,
        prefix=prefix,
        framework_template_set="template" in framework,
        framework_bundled=bundled,
        versions_files=version_files,
        hosts=hosts,
    )
    try:
        _check_targets(config, framework)
    except ConfigError as err:
        raise _placed(err, path, text) from err
    return config
