"""The old locations: every folder the original wrote backups into, and for each file name
there, what it backed up (from the config) or why that is not known.

Each location pairs a folder with a classifier: a file name that carries the original's
pattern and timestamp gives ``(category, key, target, reason, when)``, any other name
None. A target is known from the config alone: the scripts target and the script's
name, the versions folder and the file's name, the template id's target, the framework's
``install_to``, and for a parent ``CLAUDE.md`` the one configured parent (with several or
none, the name does not say which folder it came from).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from deploy.config import Config
from deploy.errors import BadName
from deploy.legacy import names as N
from deploy.names import check_name, check_template_id, shown

FRAMEWORK_KEY = "framework"     # deploy.framework.KEY
PARENT_FILE = "CLAUDE.md"       # deploy.framework.PARENT_FILE
VERSION_SUFFIX = "_VERSION"     # deploy.versions.SUFFIX


# What a classifier makes of one file name: (category, key, target or None, reason, when).
Verdict = tuple[str, str, Path | None, str | None, datetime]
Classifier = Callable[[str], Verdict | None]


class Location(NamedTuple):
    """A folder the original wrote backups into."""

    folder: Path
    origin: str                 # whose layout: "v0.7.5" or "v0.8.0"
    label: str                  # the folder as the original named it
    classify: Classifier | None  # for the files in the folder itself, or ...
    # ... for those of each subfolder, by its name (the template manager's <id>/)
    per_subfolder: Callable[[str], Classifier] | None = None


def _safe(name: str, what: str) -> str | None:
    """None if ``name`` is one the toolkit takes as ``what``, else why not."""
    try:
        if what == "template id":
            check_template_id(name)
        else:
            check_name(name, what)
    except BadName as err:
        return f"{err}; not offered for migration"
    return None


def _framework(cfg: Config) -> Classifier:
    def classify(filename: str) -> Verdict | None:
        parsed = N.parse(N.FRAMEWORK, filename)
        if parsed is None:
            return None
        target = cfg.framework_install_to
        reason = None if target is not None else "target unknown: no framework.install_to"
        return "framework", FRAMEWORK_KEY, target, reason, parsed.when
    return classify


def _script(cfg: Config, pattern: N.Pattern) -> Classifier:
    def classify(filename: str) -> Verdict | None:
        parsed = N.parse(pattern, filename)
        if parsed is None:
            return None
        reason = _safe(parsed.name, "script name")
        target = cfg.scripts_target / parsed.name if reason is None else None
        return "scripts", parsed.name, target, reason, parsed.when
    return classify


def _version_file(cfg: Config, filename: str, when: datetime) -> Verdict:
    """A backup of the version file called ``filename`` (of the framework root)."""
    match = N.VERSION_FILE.match(filename)
    if match is None:
        return "versions", "", None, (f"target unknown: {shown(filename)} is not a "
                                      "<NAME>_VERSION file (several files of the original "
                                      "share such a name)"), when
    return "versions", match[1].lower(), cfg.versions_dir / filename, None, when


def _versions(cfg: Config, pattern: N.Pattern) -> Classifier:
    def classify(filename: str) -> Verdict | None:
        parsed = N.parse(pattern, filename)
        return None if parsed is None else _version_file(cfg, parsed.name, parsed.when)
    return classify


def _parent(cfg: Config) -> Classifier:
    """The parent directory manager's folder: CLAUDE.md backups of parent folders (the one
    configured parent, else not known), and backups of the version files it bumped."""
    def classify(filename: str) -> Verdict | None:
        parsed = N.parse(N.PARENT, filename)
        if parsed is None:
            return None
        if parsed.name.endswith(VERSION_SUFFIX):
            return _version_file(cfg, parsed.name, parsed.when)
        if parsed.name != PARENT_FILE:
            return "parents", "", None, (f"target unknown: a backup of {shown(parsed.name)}, "
                                         "which this toolkit does not deploy"), parsed.when
        if len(cfg.parents) != 1:
            why = "no framework.parents are" if not cfg.parents else \
                f"{len(cfg.parents)} framework.parents are"
            return "parents", "", None, (f"target unknown: {why} configured, and the name "
                                         "does not say which folder it came from"), parsed.when
        parent = cfg.parents[0]
        return "parents", str(parent), parent / PARENT_FILE, None, parsed.when
    return classify


def for_template(cfg: Config, template_id: str) -> Classifier:
    targets = {t.id: t.target for t in cfg.templates}

    def classify(filename: str) -> Verdict | None:
        parsed = N.parse(N.TEMPLATE, filename)
        if parsed is None or parsed.name != template_id:
            return None
        reason = _safe(template_id, "template id")
        target = targets.get(template_id) if reason is None else None
        if reason is None and target is None:
            reason = f"target unknown: template id {shown(template_id)} is not configured"
        return "templates", template_id, target, reason, parsed.when
    return classify


def _staged(cfg: Config, path: Path) -> Path:
    """A path of the machine, staged under ``--prefix`` as the config stages targets."""
    return path if cfg.prefix is None else cfg.prefix / path.relative_to(path.anchor)


def locations(cfg: Config, home: Path | None = None) -> list[Location]:
    """Every folder the original wrote backups into, for this config."""
    home = home if home is not None else Path.home()
    beside = cfg.path.resolve().parent / ".claude-pm"

    def templates(template_id: str) -> Classifier:
        return for_template(cfg, template_id)

    found: list[Location] = []
    for state in dict.fromkeys([cfg.state_dir, beside]):
        found += [Location(state / "framework_backups", "v0.7.5", ".claude-pm/framework_backups",
                           _framework(cfg)),
                  Location(state / "parent_directory_manager" / "backups", "v0.7.5",
                           ".claude-pm/parent_directory_manager/backups", _parent(cfg)),
                  Location(state / "template_manager" / "backups", "v0.7.5",
                           ".claude-pm/template_manager/backups/<id>", None,
                           templates)]
    found += [Location(cfg.scripts_target, "v0.7.5", "beside the scripts",
                       _script(cfg, N.SCRIPT_BESIDE)),
              Location(cfg.versions_dir, "v0.7.5", "beside the version files",
                       _versions(cfg, N.VERSION_BESIDE)),
              Location(_staged(cfg, home / ".local" / ".claude-pm" / "backups" / "scripts"),
                       "v0.8.0", "~/.local/.claude-pm/backups/scripts",
                       _script(cfg, N.SCRIPT_TREE))]
    old = beside / "backups"
    found += [Location(old / "framework", "v0.8.0", ".claude-pm/backups/framework",
                       _framework(cfg)),
              Location(old / "parent_directory_manager", "v0.8.0",
                       ".claude-pm/backups/parent_directory_manager", _parent(cfg)),
              Location(old / "templates", "v0.8.0", ".claude-pm/backups/templates/<id>", None,
                       templates),
              Location(old / "versions", "v0.8.0", ".claude-pm/backups/versions",
                       _versions(cfg, N.VERSION_TREE))]
    return found
