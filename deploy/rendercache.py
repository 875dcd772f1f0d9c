"""The render cache and the one wiring every rendered target goes through.

A rendered target (a template's, or a parent folder's ``CLAUDE.md``) needs the
index's last write to it, its key's newest render, the merge base, the cached
output when nothing changed, and this run's compiled code: :func:`render_target`
does those in one place for templates and the framework's parents alike.

Two kinds of variable must not make an unchanged target differ from one run to
the next: those that follow the run stamp (``deployed_at``, ``DEPLOYMENT_DATE``),
which :func:`render_stable` takes back from our previous output when nothing else
changed, and a parent's ``CLAUDE_MD_VERSION``, which :func:`render_versioned`
derives from our previous render of that parent.
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
MAX_STAMPS = 4
MAX_SERIALS = 4
VERSION = "CLAUDE_MD_VERSION"
_STAMP_BYTES = re.compile(context.STAMP.pattern.encode("ascii"))


def render_stable(template: render.Template, variables: Mapping[str, Any],
                  previous: bytes | None, codes: Codes | None = None) -> bytes:
    """Render, keeping the earlier run stamp when nothing else changed.

    A template that shows ``deployed_at`` or ``DEPLOYMENT_DATE`` would otherwise
    differ on every run, and every deploy would rewrite (and back up) it. So when
    the new output differs from ``previous`` (our last render of this target), each
    stamp found in ``previous`` is tried in turn: if one reproduces ``previous``
    exactly, the template and every other variable are unchanged and that output
    is returned. A ``DEPLOYMENT_DATE`` the config pinned stays as pinned.
    """
    output = render.render(template, variables, codes)
    if previous is None or output == previous:
        return output
    try:
        text = previous.decode("utf-8")
    except UnicodeDecodeError:
        return output
    for stamp in list(dict.fromkeys(context.STAMP.findall(text)))[:MAX_STAMPS]:
        again = context.restamp(variables, stamp)
        if again is None or again == variables:
            continue
        output_again = render.render(template, again, codes)
        if output_again == previous:
            return output_again
    return output


def label(framework_version: str, serial: int) -> str:
    """The original's ``f"{framework_version}-{serial:03d}"``: ``012-001``."""
    return f"{framework_version}-{serial:03d}"


def serials(output: bytes | None, framework_version: str) -> list[int]:
    """The serials of ``<framework_version>-<NNN>`` in one of our renders, in order, each
    once: a render under another FRAMEWORK_VERSION has none."""
    if not output:
        return []
    pattern = re.compile(rb"(?<![\w.])" + re.escape(framework_version.encode("utf-8"))
                         + rb"-(\d{3,})(?!\w)")
    return list(dict.fromkeys(int(m.group(1)) for m in pattern.finditer(output)))


def _body(output: bytes, version: str) -> list[bytes]:
    """The output's lines but its version and date lines (the original's normalising:
    _generate_next_claude_md_version dropped its metadata lines before comparing)."""
    mark = version.encode("utf-8")
    return [line for line in output.splitlines()
            if mark not in line and not _STAMP_BYTES.search(line)]


def render_versioned(template: render.Template, variables: Mapping[str, Any],
                     previous: bytes | None, latest: bytes | None,
                     codes: Codes | None = None) -> bytes:
    """Render a parent's CLAUDE.md with its ``CLAUDE_MD_VERSION``: ``<FRAMEWORK_VERSION>-<NNN>``.

    The serial comes from our own records, never from the target (which a hand edit
    or a rollback may have changed): ``previous`` is our render behind the target's
    bytes, ``latest`` our newest render of that folder. Each serial either shows under
    the current FRAMEWORK_VERSION is tried, ``previous`` first: if the output under it
    equals that render apart from version and date lines, the serial stays (and with
    that render's stamp the bytes are the same, so nothing is written). Otherwise the
    serial is one more than the highest of both; a new FRAMEWORK_VERSION shows in
    neither, so it starts at 001. A pinned CLAUDE_MD_VERSION (a context key) is used as
    is, and without a FRAMEWORK_VERSION there is none.
    """
    framework = variables.get("FRAMEWORK_VERSION")
    if VERSION in variables or framework is None:
        return render_stable(template, variables, previous, codes)
    framework = str(framework)
    seen: list[int] = []
    for ours in dict.fromkeys(r for r in (previous, latest) if r):
        found = serials(ours, framework)
        seen.extend(found)
        for serial in found[:MAX_SERIALS]:
            version = label(framework, serial)
            output = render_stable(template, {**variables, VERSION: version}, ours, codes)
            if output == ours or _body(output, version) == _body(ours, version):
                return output
    serial = max(seen, default=0) + 1
    return render_stable(template, {**variables, VERSION: label(framework, serial)}, previous,
                         codes)


def render_cached(template: render.Template, variables: Mapping[str, Any], previous: bytes | None,
                  cached: Callable[[str], bytes | None],
                  codes: Codes | None = None, digest: str | None = None, *,
                  versioned: bool = False, latest: bytes | None = None) -> tuple[bytes, str]:
    """Like :func:`render_stable` (or :func:`render_versioned` when ``versioned``), but
    reuse the last render's output when the template's bytes and the variables (but
    those that follow the run stamp) are the same, so an unchanged release compiles no
    template. Returns (output, context digest).

    ``cached(digest)`` looks up the last render of the target for this template and digest;
    ``digest`` saves computing it again when many templates share the variables.
    A template that includes, imports or extends others is always rendered.
    The digest is taken before CLAUDE_MD_VERSION is added: it follows from the rest.
    """
    digest = digest if digest is not None else context.digest(variables)
    if not _PULLS_IN.search(template.data):
        hit = cached(digest)
        if hit is not None:
            return hit, digest
    if versioned:
        return render_versioned(template, variables, previous, latest, codes), digest
    return render_stable(template, variables, previous, codes), digest


def render_target(index: Index | None, category: str, key: str, target: Path,
                  template: render.Template, variables: Mapping[str, Any], codes: Codes,
                  digest: str | None = None, *, versioned: bool = False) -> conflict.Rendered:
    """Render ``template`` for ``target`` in memory: cached when nothing changed, else
    rendered keeping an earlier run stamp (and, ``versioned``, the parent's
    CLAUDE_MD_VERSION); ``digest`` is the variables' when the caller computed it once
    for many targets."""
    last = index.changes.last_write(str(target)) if index is not None else None
    latest = index.renders.latest(category, key) if index is not None else None
    previous = conflict.merge_base(index, category, key, last, latest)
    newest = latest.output if latest is not None and latest.change_seq is not None else None
    if previous is None:
        # The target's last write was a removal (or restored bytes we never rendered):
        # our newest render is still the one to keep stamps and serials from.
        previous = newest

    def cached(variables_digest: str) -> bytes | None:
        return latest.hit(template.sha256, variables_digest) if latest is not None else None

    output, digest = render_cached(template, variables, previous, cached, codes, digest,
                                   versioned=versioned, latest=newest)
    return conflict.Rendered(category, key, target, output, template.sha256, digest,
                             codes.compiled(template.path))
