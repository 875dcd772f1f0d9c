"""The render cache and the one wiring every rendered target goes through.

A rendered target (a template's, or a parent folder's ``CLAUDE.md``) needs the
index's last write to it, its key's newest render, the merge base, the cached
output when nothing changed, and this run's compiled code: :func:`render_target`
does those in one place for templates and the framework's parents alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deploy import conflict, context, render
from deploy.codes import Codes
from deploy.store import Index

# A template that pulls in other files can change without its own bytes changing.
_PULLS_IN = re.compile(rb"\{%-?\s*(include|import|extends|from)\b")


def render_cached(template: render.Template, variables: Mapping[str, Any], previous: bytes | None,
                  cached: Callable[[str], bytes | None],
                  codes: Codes | None = None, digest: str | None = None) -> tuple[bytes, str]:
    """Like :func:`deploy.render.render_stable`, but reuse the last render's output when the
    template's bytes and the variables (but ``deployed_at``) are the same, so an unchanged
    release compiles no template. Returns (output, context digest).

    ``cached(digest)`` looks up the last render of the target for this template and digest;
    ``digest`` saves computing it again when many templates share the variables.
    A template that includes, imports or extends others is always rendered.
    """
    digest = digest if digest is not None else context.digest(variables)
    if not _PULLS_IN.search(template.data):
        hit = cached(digest)
        if hit is not None:
            return hit, digest
    return render.render_stable(template, variables, previous, codes), digest


def render_target(index: Index | None, category: str, key: str, target: Path,
                  template: render.Template, variables: Mapping[str, Any], codes: Codes,
                  digest: str | None = None) -> conflict.Rendered:
    """Render ``template`` for ``target`` in memory: cached when nothing changed, else
    rendered keeping an earlier ``deployed_at``; ``digest`` is the variables' when the
    caller computed it once for many targets."""
    last = index.changes.last_write(str(target)) if index is not None else None
    latest = index.renders.latest(category, key) if index is not None else None
    previous = conflict.merge_base(index, category, key, last, latest)

    def cached(variables_digest: str) -> bytes | None:
        return latest.hit(template.sha256, variables_digest) if latest is not None else None

    output, digest = render_cached(template, variables, previous, cached, codes, digest)
    return conflict.Rendered(category, key, target, output, template.sha256, digest,
                             codes.compiled(template.path))
