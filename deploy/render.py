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
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from deploy import fsio
from deploy.codes import Codes
from deploy.errors import ConfigError

UNDEFINED = re.compile(r"'(?P<name>[^']+)' is undefined")
NO_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'")


class Template(NamedTuple):
    """A template file's bytes and their sha256 (recorded with every render of it)."""

    path: Path
    data: bytes
    sha256: str


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


def read_template(path: Path, what: str = "template") -> Template:
    """Read a template source whole; a missing or unreadable one is a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: {what} not found") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what}: {err.strerror or err}") from err
    return Template(path, data, fsio.sha256_bytes(data))


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
