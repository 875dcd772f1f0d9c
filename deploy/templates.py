"""Templates: each ``[[tool.deploy.templates]]`` entry rendered to its target.

Every template is rendered in memory before any target is touched, so a
template error stops the run with nothing written. Each write records the
render (template sha256 and output) in the index as the next render number of
its template id; ``templates.history`` lists them and ``rollback.templates
--render N`` writes render N's stored output back (the original restored render
N-1: an off-by-one the tests pin down).

``templates.adopt`` (:func:`plan_adopt`) accepts hand edits of rendered targets as they
are, templates and the framework's alike (``deploy.conflict.adopt``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from deploy import conflict, context, framework, fsio, render, rendercache
from deploy.categories import FRAMEWORK, PARENTS, TEMPLATES
from deploy.codes import Codes
from deploy.config import Config, TemplateSpec
from deploy.errors import Blocked, ConfigError, IntegrityError
from deploy.names import check_template_id
from deploy.plan import Change, Plan, Skip, target_state, tick
from deploy.store import Index

CATEGORY = TEMPLATES.name


def select(specs: Iterable[TemplateSpec], ids: Iterable[str] | None) -> list[TemplateSpec]:
    """The configured templates named by ``ids`` (checked), or all of them."""
    by_id = {spec.id: spec for spec in specs}
    wanted = list(ids or ())
    if not wanted:
        return list(by_id.values())
    chosen = []
    for template_id in wanted:
        check_template_id(template_id)
        if template_id not in by_id:
            known = ", ".join(by_id) or "none"
            raise ConfigError(f"template id {template_id!r} is not configured "
                              f"(configured: {known})")
        chosen.append(by_id[template_id])
    return list({spec.id: spec for spec in chosen}.values())


def rendered(cfg: Config, index: Index | None, *, ids: Iterable[str] | None = None,
             stamp: str | None = None) -> list[conflict.Rendered]:
    """The chosen templates rendered in memory; ``stamp`` is the run's ``deployed_at``."""
    specs = select(cfg.templates, ids)
    if not specs:
        return []
    variables = context.variables(cfg, stamp or context.deployed_at())
    codes = Codes(index.renders.code if index is not None else None)
    digest = context.digest(variables)
    items = []
    for n, spec in enumerate(specs, 1):
        tick("rendering", n, len(specs), f"{CATEGORY}/{spec.id}")
        items.append(rendercache.render_target(index, CATEGORY, spec.id, spec.target,
                                               render.read_template(spec.source), variables,
                                               codes, digest))
    return items


def plan(cfg: Config, index: Index | None, *, ids: Iterable[str] | None = None,
         on_conflict: str = "fail", stamp: str | None = None) -> Plan:
    """Plan rendering the chosen templates; ``stamp`` is the run's ``deployed_at``."""
    conflict.check_policy(on_conflict)
    return conflict.resolve(index, rendered(cfg, index, ids=ids, stamp=stamp), on_conflict,
                            (CATEGORY,))


def plan_adopt(cfg: Config, index: Index | None, *, ids: Iterable[str] = (),
               dirs: Iterable[str] = (), install: bool = False,
               stamp: str | None = None) -> Plan:
    """Plan ``templates.adopt``: accept the hand edits of the chosen rendered targets as
    they are. ``ids`` are templates, ``dirs`` parent folders (their index keys, see
    :func:`deploy.framework.parent_key`), ``install`` the installed framework template;
    nothing chosen is every rendered target (the framework's when its template exists).

    Each target is rendered as a deploy would (a render error stops it, exit 2): the
    render is the base of a file this toolkit never rendered.
    """
    ids, dirs = list(ids), list(dirs)
    everything = not ids and not dirs and not install
    items = rendered(cfg, index, ids=ids, stamp=stamp) if everything or ids else []
    if (everything and framework.configured(cfg)) or dirs or install:
        items += framework.rendered(cfg, index, stamp=stamp, install=everything or install,
                                    parents=None if everything else [Path(d) for d in dirs])
    return conflict.adopt(index, items, (CATEGORY, FRAMEWORK.name, PARENTS.name))


class RenderRecord(NamedTuple):
    """One render of a template, for ``templates.history``."""

    n: int
    template_sha256: str
    output_sha256: str
    change: int
    run: int
    target: str
    created: str
    backup_id: int | None
    backup: str | None
    state: str
    action: str  # adopt: the base of a file accepted as it was, nothing written


def check_known(template_id: str, configured: Iterable[TemplateSpec],
                index: Index | None) -> str:
    """``template_id`` if it is configured or this toolkit ever changed its target; else
    ConfigError (exit 2) naming the configured ids (a typo must not read as "no renders")."""
    check_template_id(template_id)
    ids = [spec.id for spec in configured]
    if template_id in ids or (index is not None
                              and template_id in index.changes.keys(CATEGORY)):
        return template_id
    raise ConfigError(f"template id {template_id!r} is not configured and was never deployed "
                      f"(configured: {', '.join(ids) or 'none'})")


def history(index: Index | None, template_id: str) -> list[RenderRecord]:
    """Every render of ``template_id``, newest first."""
    check_template_id(template_id)
    if index is None:
        return []
    records = []
    for row in index.renders.of_key(CATEGORY, template_id):
        change = index.changes.get(row.change_seq)
        if change is None:  # pragma: no cover - the foreign key forbids it
            continue
        state = "undone" if change.undone_by is not None else change.state
        records.append(RenderRecord(
            row.n, row.template_sha256, row.output_sha256, change.seq, change.run,
            change.target, change.created, change.seq if change.backup else None,
            change.stored, state, change.action))
    return records


def plan_render(index: Index | None, template_id: str, n: int, *, force: bool = False) -> Plan:
    """Plan writing render ``n``'s stored output back to its target (verified by sha256).

    The target must still hold what this toolkit last wrote there, unless
    ``force``: a hand edit is not overwritten silently (it is backed up anyway).
    """
    check_template_id(template_id)
    if index is None:
        raise ConfigError(f"no render {n} of template {template_id!r}: nothing deployed yet")
    seq = index.renders.change_of(CATEGORY, template_id, n)
    output = index.renders.output(CATEGORY, template_id, n=n)
    if seq is None or output is None:
        have = [r.n for r in index.renders.of_key(CATEGORY, template_id)]
        listed = ", ".join(map(str, sorted(have))) or "none"
        raise ConfigError(f"no render {n} of template {template_id!r} (renders: {listed}); "
                          f"see `invoke templates.history {template_id}`")
    expected = next(r.output_sha256 for r in index.renders.of_key(CATEGORY, template_id)
                    if r.n == n)
    if fsio.sha256_bytes(output) != expected:
        raise IntegrityError(f"render {n} of template {template_id!r} in {index.path} is "
                             f"corrupt: sha256 {fsio.sha256_bytes(output)} != {expected}")
    change = index.changes.get(seq)
    assert change is not None
    target = Path(change.target)
    current = target_state(target)
    last = index.changes.last_write(change.target)
    if last is not None and current.sha256 != last.new_sha256 and not force:
        raise Blocked(f"{target}: changed since run {last.run} wrote it; pass --force to "
                      "restore anyway (the current bytes are backed up first)").listing(
                          [(str(target), f"{target}: changed since run {last.run} wrote it")])
    if current.exists and current.sha256 == expected:
        return Plan((), (Skip(CATEGORY, template_id, target, "unchanged"),), (CATEGORY,))
    mode = current.mode if current.mode is not None else (change.new_mode or conflict.NEW_MODE)
    return Plan((Change(CATEGORY, template_id, target, current, output, expected, len(output),
                        mode, note=f"render {n}"),), (), (CATEGORY,))
