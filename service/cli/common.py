"""What every `backprop` command shares: exit codes, the server options, errors, help pages.

Exit status: 0 done; 1 the server refused (its problem detail is printed) or a local
file is unusable; 2 the server could not be reached, or a usage error (Click's own
code); 3 a followed job or sweep ended failed or cancelled; 130 interrupted.
"""

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from service.cli.client import DEFAULT_URL, ApiError, BackpropClient, Unreachable

EXIT_OK = 0
EXIT_ERROR = 1  # the server refused the request, or a local file is unusable
EXIT_UNREACHABLE = 2
EXIT_JOB_FAILED = 3  # a followed job (or sweep) ended failed or cancelled
EXIT_INTERRUPTED = 130

# service.core.states.TERMINAL_STATES, restated: importing SQLAlchemy would slow every command.
TERMINAL_STATES = ("succeeded", "failed", "cancelled")

# Plain Click help (not Typer's Rich panels): it reads the same in a pipe, a terminal
# and a test, and keeps the `usage:` line and `--option METAVAR` layout scripts grep for.
RICH_MARKUP_MODE = None


class LocalError(Exception):
    """A problem on this side (a missing or unreadable file): printed as ``error: ...``."""


class UsageProblem(typer.BadParameter):
    """A usage error worded by us: Click prints `usage:`, a hint and ``Error: <message>``,
    and exits 2. (BadParameter would prefix "Invalid value for ...".)"""

    def format_message(self) -> str:
        return self.message


# -- the engine's name tables, imported only when needed -----------------------------------


@cache
def engine_names(table: str) -> tuple[str, ...]:
    """One of the engine's name tables (e.g. ACTIVATION_NAMES).

    Importing the engine (NumPy) takes a tenth of a second that `backprop jobs` has no
    use for: options check their names on use, and help pages list them when drawn.
    """
    return tuple(getattr(importlib.import_module("engine"), table))


def engine_choice(table: str, option: str) -> Any:
    """A Typer `parser` that accepts only the names of ``table`` (argparse's wording)."""

    def parse(value: str) -> str:
        names = engine_names(table)
        if value not in names:
            choices = ", ".join(repr(name) for name in names)
            raise UsageProblem(
                f"argument {option}: invalid choice: {value!r} (choose from {choices})"
            )
        return value

    parse.__name__ = table.lower()
    return parse


def complete_names(table: str) -> Any:
    """Shell completion of an engine name."""

    def complete(incomplete: str) -> list[str]:
        return [name for name in engine_names(table) if name.startswith(incomplete)]

    return complete


class EngineTables(dict):
    """``{ACTIVATION_NAMES}`` in a help text reads as the table's names, comma-separated."""

    def __missing__(self, key: str) -> str:
        return ", ".join(engine_names(key))


def _fill_help(command: Any) -> None:
    """Fill in the engine's names in option help, now that a help page is being drawn."""
    for param in command.params:
        help_text = getattr(param, "help", None)
        if help_text and "{" in help_text:
            param.help = help_text.format_map(EngineTables())


class _Formatter(typer.Context.formatter_class):  # type: ignore[name-defined, misc]
    """Writes `usage:` in lower case, as argparse did (scripts and docs grep for it)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "usage: " if prefix is None else prefix)


class _Context(typer.Context):
    formatter_class = _Formatter


class BackpropCommand(TyperCommand):
    """A command whose help lists the engine's names, and whose usage line is `usage:`."""

    context_class = _Context

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _fill_help(self)
        super().format_help(ctx, formatter)


class BackpropGroup(TyperGroup):
    """A group of commands (the app, `datasets`, `models`, `sweeps`), listed in the order
    they were defined rather than alphabetically."""

    context_class = _Context

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)


def sub_app(name: str, help_text: str) -> typer.Typer:
    """A resource's group of commands, e.g. `backprop datasets list|show|delete`."""
    return typer.Typer(
        name=name,
        help=help_text,
        cls=BackpropGroup,
        no_args_is_help=True,
        rich_markup_mode=RICH_MARKUP_MODE,
        add_completion=False,
    )


def examples(*lines: str) -> str:
    """A help page's "Examples" epilog; ``\\b`` keeps Click from re-wrapping the lines."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


# -- the server options every client command takes ----------------------------------------

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="BACKPROP_URL",
        show_envvar=False,
        show_default=False,
        metavar="URL",
        help=f"the API's base URL (BACKPROP_URL, else {DEFAULT_URL})",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="BACKPROP_API_KEY",
        show_envvar=False,
        metavar="KEY",
        help="sent as `Authorization: Bearer KEY` (BACKPROP_API_KEY)",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="print the server's JSON instead of a table"),
]
LimitOption = Annotated[
    int | None, typer.Option("--limit", metavar="N", help="items per page (server default 50)")
]
CursorOption = Annotated[
    str | None, typer.Option("--cursor", help="the next page: the cursor a listing printed")
]


@contextmanager
def connected(url: str, api_key: str | None) -> Iterator[BackpropClient]:
    """A client for the command's body; expected failures become one line on stderr and
    an exit code (typer.Exit), never a traceback."""
    # httpx logs every request at INFO, which `backprop`'s logging shows: not for a client.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with BackpropClient(url, api_key=api_key) as api:
            yield api
    except ApiError as error:
        print_problem(error)
        raise typer.Exit(EXIT_ERROR) from None
    except Unreachable as error:
        print(f"error: {error.url} could not be reached: {error.reason}", file=sys.stderr)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except LocalError as error:
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        print(file=sys.stderr)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:  # `backprop history ID --csv | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(EXIT_OK) from None


def print_problem(error: ApiError) -> None:
    """The server's problem detail, and each field error it does not already say."""
    line = f"error: {error.title}: {error.detail}" if error.detail else f"error: {error.title}"
    print(line, file=sys.stderr)
    for field_error in error.errors:
        said = (field_error["message"], f"{field_error['field']}: {field_error['message']}")
        if error.detail not in said:  # a single-field problem says it once
            print(f"  {field_error['field']}: {field_error['message']}", file=sys.stderr)


def given(**options: Any) -> dict[str, Any]:
    """The options that were given (not None): the server fills in the rest."""
    return {name: value for name, value in options.items() if value is not None}
