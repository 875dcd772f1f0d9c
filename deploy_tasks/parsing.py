"""Invoke's own command-line errors end like ours: one ``error:`` line on stderr, exit 2.

Invoke's ``Program.run()`` prints a ``ParseError`` bare and exits 1, and the ``ValueError``
of a flag's cast (``history --limit abc``: ``Argument.set_value`` calls ``int``) escapes it as
a traceback; so does ``--list-format`` with an unknown format (``getattr(self, "list_" +
format)``). ``ParseGuard`` is a ``Program`` whose three parse steps turn those into our error
line (issue 11). The installed command is built on it (``deploy_tasks.program``); for
``invoke`` in a checkout, ``guard_loading_program()`` (called by ``tasks.py``) gives it to the
``Program`` that is importing ``tasks.py``: Invoke reads no setting that swaps its ``Program``
class, and ``tasks.py`` is the first of our code it runs, after its core flags are parsed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from invoke import Program
from invoke.exceptions import Exit, ParseError
from invoke.parser import Argument, Parser, ParserContext
from invoke.parser.parser import ParseMachine

from deploy_tasks.common import closed_pipe, report_error

if TYPE_CHECKING:
    from types import FrameType

BAD_INPUT = 2  # the exit code of ConfigError: bad input or config
LIST_FORMATS = ("flat", "nested", "json")

UNKNOWN = re.compile(r"No idea what (.+) is!", re.S)
NO_VALUE = re.compile(r"Flag .+ needed value and was not given one!", re.S)
TAKES_NO_VALUE = re.compile(r"Flag .+ doesn't take any value!", re.S)
MISSING_POSITIONAL = re.compile(r"'(.+)' did not receive required positional arguments: (.+)",
                                re.S)
NO_COLLECTION = re.compile(r"Sub-collection '(.+)' not found!", re.S)


class ParseGuard(Program):
    """Invoke's ``Program`` with its parse errors as one ``error:`` line and exit 2."""

    def parse_core(self, argv: list[str] | None) -> None:
        with translated_errors():
            super().parse_core(argv)

    def parse_tasks(self) -> None:
        with translated_errors():
            super().parse_tasks()

    def print_task_help(self, name: str) -> None:
        """Invoke's task help, with a value placeholder on repeatable flags: Invoke shows
        ``--name`` for a list flag, as if it took no value; here it is ``--name=NAME``
        (the task's ``placeholders`` say otherwise: ``--set=NAME=VERSION``)."""
        context: ParserContext = self.parser.contexts[name]
        placeholders = getattr(self.collection[name], "placeholders", {})
        plain = context.help_for

        def help_for(flag: str) -> tuple[str, str]:
            arg = context.flags[flag]
            if arg.kind is not list:
                return plain(flag)
            long = arg.names[0]  # the flag as typed: set, not the parameter set_
            value = placeholders.get(long, long.upper().replace("-", "_"))
            names = [f"{n} {value}" if len(n.strip("-")) == 1 else f"{n}={value}"
                     for n in context.names_for(flag)]
            return ", ".join(sorted(names, key=len)), arg.help or ""

        context.help_for = help_for  # type: ignore[method-assign]  # this one context only
        try:
            super().print_task_help(name)
        finally:
            del context.help_for

    def _make_parser(self) -> Parser:
        """Invoke's parser with only the tasks the command line names.

        Invoke builds a parser context for every task and deep-copies them all on each
        parse: with some thirty tasks of many flags each, that was a fifth of a command's
        start-up. A context the command line never names is never entered (the parser
        switches context only on a word that is a task's name or alias), so leaving it out
        changes no parse. Shell completion wants every task, and gets Invoke's own.
        """
        if self.args.complete.value:
            return super()._make_parser()
        words = {part for word in self.argv for part in word.split("=")}
        ignore = self.config.tasks.ignore_unknown_help
        contexts = [
            ParserContext(name=name, aliases=aliases,
                          args=self.collection[name].get_arguments(ignore_unknown_help=ignore))
            for name, aliases in self.collection.task_names.items()
            if name in words or not words.isdisjoint(aliases)
        ]
        return Parser(initial=self.initial_context, contexts=contexts)

    def parse_cleanup(self) -> None:
        listing, form = self.args.list.value, self.args["list-format"].value
        if listing and form not in LIST_FORMATS:
            fail(f"--list-format takes flat, nested or json, not {form!r}")
        try:
            with translated_errors(), exits_as_errors():
                super().parse_cleanup()
        except BrokenPipeError:  # `invoke --help TASK | head`: the reader had enough
            closed_pipe(sys.stdout)
            raise Exit from None


def guard_loading_program() -> None:
    """Make the ``Program`` now importing ``tasks.py`` (``invoke`` in a checkout) a
    ``ParseGuard``: its class becomes a subclass of its own with ``ParseGuard`` first.

    It is found on the call stack, in its ``load_collection``; ``Program.run()`` then goes
    on to ``parse_tasks`` and ``parse_cleanup``, where the task flags are parsed. Imported
    any other way (the tests, a library), there is no such frame and nothing changes.
    """
    program = loading_program()
    if program is None or isinstance(program, ParseGuard):
        return
    cls = type(program)
    program.__class__ = type(f"Guarded{cls.__name__}", (ParseGuard, cls), {})


def loading_program() -> Program | None:
    """The ``Program`` whose ``load_collection`` is on the call stack, if any."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name == "load_collection" and isinstance(owner, Program):
            return owner
        frame = frame.f_back
    return None


def fail(message: str, context: ParserContext | None = None) -> NoReturn:
    """The error line, exit 2; for a writing task's flags under GitHub Actions also its
    annotation, step summary and outputs (``outcome=failed``): the job sees every outcome."""
    from deploy_tasks import actions

    task = task_name(context)
    writes = bool(context is not None and any(flag_name(a) == "--dry-run"
                                              for a in context.flags.values()))
    if task is not None:
        actions.begin(task, writes=writes, json_=False, prefix=None)
    report_error(message)
    if task is not None:
        actions.failed(message, BAD_INPUT)
    raise Exit(code=BAD_INPUT) from None


@contextmanager
def translated_errors() -> Iterator[None]:
    """A ``ParseError``, or the ``ValueError`` of a flag's cast, as our error line."""
    try:
        yield
    except ParseError as err:
        fail(explain(err), err.context)
    except ValueError as err:
        cast = failed_cast(err)
        if cast is None:
            raise  # not the parser's: a bug, not bad input
        fail(explain_cast(*cast), cast[0])


@contextmanager
def exits_as_errors() -> Iterator[None]:
    """An ``Exit`` with a message from ``--list`` (``--list nosuch``: "Sub-collection 'nosuch'
    not found!", exit 1) as our error line; a silent ``Exit`` (after ``--help``) passes."""
    try:
        yield
    except Exit as err:
        if not err.message:
            raise
        message = str(err.message)
        if found := NO_COLLECTION.fullmatch(message):
            fail(f"--list {found[1]}: no such collection; --list shows every task")
        fail(sentence(message))


def explain(err: ParseError) -> str:
    """One line for a parse error: where (the task), what, and where to look."""
    text = str(err)
    machine = innermost_machine(err)
    task = task_name(err.context)
    where = f"{task}: " if task else ""
    flag = machine.flag if machine is not None else None
    if found := UNKNOWN.fullmatch(text):
        token = literal(found[1])
        if token.startswith("-"):
            help_for = f"--help {task}" if task else "--help"
            return f"{where}unknown flag {token!r}; {help_for} lists the flags"
        if task:
            return (f"{task}: unexpected argument {token!r}; --help {task} lists its flags, "
                    "--list the tasks")
        return f"unknown task {token!r}; --list shows the tasks"
    if NO_VALUE.fullmatch(text) and flag is not None:
        return f"{where}{flag_name(flag)} needs a value"
    if TAKES_NO_VALUE.fullmatch(text) and flag is not None:
        return f"{where}{flag_name(flag)} takes no value"
    if found := MISSING_POSITIONAL.fullmatch(text):
        plural = "s" if "," in found[2] else ""
        task = task_name(machine.context if machine is not None else None) or found[1]
        return f"{task}: missing argument{plural} {found[2]}; --help {task} shows them"
    return where + sentence(text)


def explain_cast(context: ParserContext | None, flag: Argument) -> str:
    task = task_name(context)
    where = f"{task}: " if task else ""
    kind = "an integer" if flag.kind is int else f"a {getattr(flag.kind, '__name__', 'value')}"
    return f"{where}{flag_name(flag)} takes {kind}, not {flag.raw_value!r}"


def failed_cast(err: ValueError) -> tuple[ParserContext | None, Argument] | None:
    """The context and flag whose value the parser failed to cast, if that is what ``err``
    is: it passed through a ``ParseMachine`` and ended in ``Argument.set_value``."""
    machine = innermost_machine(err)
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    # The cast itself (int(), say) is a builtin: the last Python frame is set_value's own.
    owner = tb.tb_frame.f_locals.get("self") if tb is not None else None
    if machine is None or not isinstance(owner, Argument) \
            or tb is None or tb.tb_frame.f_code.co_name != "set_value":
        return None
    return machine.context, owner


def innermost_machine(err: BaseException) -> ParseMachine | None:
    """The innermost parser state machine ``err`` passed through: what was being parsed."""
    found = None
    tb = err.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, ParseMachine):
            found = owner
        tb = tb.tb_next
    return found


def task_name(context: ParserContext | None) -> str | None:
    """The task a context parses, by the shortest name it answers to: ``deploy`` rather than
    ``deploy.all``, its collection's default. None for the core flags' context."""
    if context is None or not context.name:
        return None
    return min([context.name, *context.aliases], key=len)


def flag_name(flag: Argument) -> str:
    name = flag.names[0] if flag.names else str(flag.name)
    return ("--" if len(name) > 1 else "-") + name


def literal(text: str) -> str:
    """The token Invoke quoted with ``{!r}``, back as it was typed."""
    import ast  # only on this error path: not worth a millisecond of every start

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else text


def sentence(text: str) -> str:
    """Invoke's message in our style: lower case first, no exclamation mark."""
    text = text.strip().rstrip("!")
    return text[:1].lower() + text[1:]
