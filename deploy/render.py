"""Rendering Jinja2 templates, strictly, into bytes in memory.

The environment follows copier's strictness: a sandbox, ``StrictUndefined`` (an
undefined variable is an error, never an empty string), ``keep_trailing_newline``
and no autoescaping (these are Markdown and YAML, not HTML). Every error a
template can raise becomes a :class:`ConfigError` naming the template file, the
line and the variable, so a bad template stops a run before anything is written.

Jinja2 is imported inside the functions so that ``invoke --list`` stays fast.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any, NamedTuple

from deploy import fsio
from deploy.config import Config
from deploy.errors import ConfigError

BUILTINS = ("versions", "framework_version", "deployed_at", "parent_dir")
# The shape of what :func:`deployed_at` returns, to find an earlier run's stamp in its output.
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)?")
MAX_STAMPS = 4
UNDEFINED = re.compile(r"'(?P<name>[^']+)' is undefined")
NO_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'")


class Template(NamedTuple):
    """A template file's bytes and their sha256 (recorded with every render of it)."""

    path: Path
    data: bytes
    sha256: str


class Compiled(NamedTuple):
    """A template's compiled code, as :class:`Codes` keeps it: marshalled, with its key."""

    path: str
    key: str
    code: bytes


class Codes:
    """Where :func:`render` finds a template's compiled code, and keeps what it compiles.

    Compiling is most of a render's cost (about 0.8 ms of 0.9 ms for a small template),
    so this is Jinja's bytecode-cache idea kept in the index: ``lookup(path)`` returns the
    (key, code) stored for a template file by an earlier run, and code compiled now stays
    in memory (one compile per template per run, however many parents it renders into)
    until the run stores it with its renders. The key covers everything the code depends
    on: Jinja's and Python's versions, the environment's options, the template's path and
    its bytes; a stored entry under any other key, or one that does not unmarshal, is
    simply compiled again.
    """

    def __init__(self, lookup: Callable[[str], tuple[str, bytes] | None] | None = None):
        self.lookup = lookup
        self.fresh: dict[str, Compiled] = {}
        self._loaded: dict[str, tuple[str, CodeType]] = {}

    def get(self, path: str, key: str) -> CodeType | None:
        import marshal

        loaded = self._loaded.get(path)
        if loaded is not None and loaded[0] == key:
            return loaded[1]
        stored = self.lookup(path) if self.lookup is not None else None
        if stored is None or stored[0] != key:
            return None
        try:
            code = marshal.loads(stored[1])
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(code, CodeType):
            return None
        self._loaded[path] = (key, code)
        return code

    def put(self, path: str, key: str, code: CodeType) -> None:
        import marshal

        self._loaded[path] = (key, code)
        self.fresh[path] = Compiled(path, key, marshal.dumps(code))

    def compiled(self, path: Path) -> Compiled | None:
        """What this run compiled for ``path``, for the run to store; None if nothing."""
        return self.fresh.get(str(path))


def _code_key(template: Template, newline: str) -> str:
    import importlib.util
    import sys

    import jinja2

    digest = hashlib.sha256("\0".join((
        "deploy-render-1", jinja2.__version__, sys.version, importlib.util.MAGIC_NUMBER.hex(),
        "sandboxed strict keep_trailing_newline no-autoescape", repr(newline),
        str(template.path))).encode("utf-8"))
    digest.update(b"\0")
    digest.update(template.data)
    return digest.hexdigest()


def deployed_at() -> str:
    """Now, as ISO 8601 with the local offset, to the second; computed once per run."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def read_template(path: Path, what: str = "template") -> Template:
    """Read a template source whole; a missing or unreadable one is a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: {what} not found") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what}: {err.strerror or err}") from err
    return Template(path, data, fsio.sha256_bytes(data))


def _versions(versions_dir: Path) -> tuple[dict[str, str], str | None]:
    from deploy import versions

    if not versions_dir.is_dir():
        # No versions folder: the templates simply see no versions.
        return {}, None
    found = {key: str(vf.version) for key, vf in versions.read_all(versions_dir).items()}
    return found, versions.framework_version(versions_dir)


def context(cfg: Config, stamp: str) -> dict[str, Any]:
    """The variables every template sees; ``parent_dir`` is added per parent folder."""
    found, framework_version = _versions(cfg.versions_dir)
    for key in cfg.context:
        if key in BUILTINS:
            raise ConfigError(f"{cfg.path}: tool.deploy.context.{key} would hide the built-in "
                              f"template variable {key!r}; rename it")
    ctx: dict[str, Any] = dict(cfg.context)
    ctx["versions"] = found
    if framework_version is not None:
        ctx["framework_version"] = framework_version
    ctx["deployed_at"] = stamp
    return ctx


def _template_line(tb: TracebackType | None, default: int | None) -> tuple[str | None, int | None]:
    """The innermost template frame of a render traceback: (file, line).

    Jinja rewrites tracebacks so that template code shows as frames whose file
    name is the template's and whose line is the template line.
    """
    where: tuple[str | None, int | None] = (None, default)
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return where


def _undefined_name(message: str) -> str:
    match = UNDEFINED.search(message) or NO_ATTRIBUTE.search(message)
    return match.group("name") if match else "?"


def render(template: Template, variables: Mapping[str, Any], codes: Codes | None = None) -> bytes:
    """Render ``template`` with ``variables`` to UTF-8 bytes, or raise ConfigError naming
    the file, line and cause; ``codes`` saves compiling a template compiled before."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    path = template.path
    # Keep CRLF templates CRLF: Jinja would otherwise normalise every newline to LF.
    newline = "\r\n" if b"\r\n" in template.data else "\n"
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        newline_sequence=newline,
    )
    try:
        text = template.data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: template is not UTF-8 text (byte {err.start})") from err
    try:
        # Compile from the bytes we hashed, under the file's own name, so that error
        # tracebacks and messages name the template file.
        key = _code_key(template, newline) if codes is not None else ""
        code = codes.get(str(path), key) if codes is not None else None
        if code is None:
            code = env.compile(text, path.name, str(path))
            if codes is not None:
                codes.put(str(path), key, code)
        compiled = env.template_class.from_code(env, code, env.make_globals(None), None)
    except jinja2.TemplateSyntaxError as err:
        raise ConfigError(
            f"{path}:{err.lineno}: template syntax error: {err.message}") from err
    try:
        return compiled.render(**variables).encode("utf-8")
    except jinja2.UndefinedError as err:
        name = _undefined_name(err.message or str(err))
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: undefined variable {name!r} "
                          f"({err.message})") from err
    except jinja2.TemplateSyntaxError as err:
        # Raised by an {% include %}d template: it names its own file.
        raise ConfigError(f"{err.filename or path}:{err.lineno}: template syntax error: "
                          f"{err.message}") from err
    except jinja2.TemplateNotFound as err:
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: included template {err.name!r} not "
                          f"found beside {path}") from err
    except jinja2.TemplateError as err:
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: template error: {err}") from err
    except Exception as err:
        # Whatever else a template raises (a division by zero, a bad filter argument) is
        # the template's fault: name it like the rest, never a traceback.
        file, line = _template_line(err.__traceback__, None)
        raise ConfigError(f"{file or path}:{line or '?'}: template failed: "
                          f"{type(err).__name__}: {err}") from err


def render_stable(template: Template, variables: Mapping[str, Any],
                  previous: bytes | None, codes: Codes | None = None) -> bytes:
    """Render, keeping the earlier ``deployed_at`` when nothing else changed.

    A template that shows ``deployed_at`` would otherwise differ on every run, and
    every deploy would rewrite (and back up) it. So when the new output differs
    from ``previous`` (our last render of this target), each stamp found in
    ``previous`` is tried in turn: if one reproduces ``previous`` exactly, the
    template and every other variable are unchanged and that output is returned.
    """
    output = render(template, variables, codes)
    if previous is None or output == previous:
        return output
    try:
        text = previous.decode("utf-8")
    except UnicodeDecodeError:
        return output
    stamps = list(dict.fromkeys(STAMP.findall(text)))[:MAX_STAMPS]
    for stamp in stamps:
        if stamp == variables.get("deployed_at"):
            continue
        again = render(template, {**variables, "deployed_at": stamp}, codes)
        if again == previous:
            return again
    return output


# A template that pulls in other files can change without its own bytes changing.
_PULLS_IN = re.compile(rb"\{%-?\s*(include|import|extends|from)\b")


def context_digest(variables: Mapping[str, Any]) -> str:
    """A hash of the variables a render sees, but ``deployed_at`` (stable across runs)."""
    import json

    stable = {k: v for k, v in variables.items() if k != "deployed_at"}
    text = json.dumps(stable, sort_keys=True, default=str)
    return fsio.sha256_bytes(text.encode("utf-8"))


def render_cached(template: Template, variables: Mapping[str, Any], previous: bytes | None,
                  cached: Callable[[str], bytes | None],
                  codes: Codes | None = None, digest: str | None = None) -> tuple[bytes, str]:
    """Like :func:`render_stable`, but reuse the last render's output when the template's
    bytes and the variables (but ``deployed_at``) are the same, so an unchanged release
    compiles no template. Returns (output, context digest).

    ``cached(digest)`` looks up the last render of the target for this template and digest;
    ``digest`` saves computing it again when many templates share the variables.
    A template that includes, imports or extends others is always rendered.
    """
    digest = digest if digest is not None else context_digest(variables)
    if not _PULLS_IN.search(template.data):
        hit = cached(digest)
        if hit is not None:
            return hit, digest
    return render_stable(template, variables, previous, codes), digest
