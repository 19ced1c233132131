"""The Typer app object, the global options and the error-to-exit-code mapping shared by all commands."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ptdiag import __version__
from ptdiag.errors import EXIT_BROKEN_PIPE, EXIT_CODES_HELP, EXIT_INTERRUPTED, PtdiagError


def _stop_on_closed_pipe(console: Console | None = None) -> None:
    """The reader of stdout stopped reading (`ptdiag report | head -2`): stop quietly with exit 141, not 1 (which
    means "gate failed" here), and point stdout at /dev/null so the interpreter's last flush cannot fail again.
    Rich calls it as its documented `on_broken_pipe` hook; `handle_errors` for plain prints."""
    if console is not None:
        console.quiet = True
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(EXIT_BROKEN_PIPE)


Console.on_broken_pipe = _stop_on_closed_pipe  # CLI processes only
err_console = Console(stderr=True, highlight=False)

app = typer.Typer(
    name="ptdiag",
    help=(
        "Will fine-tuning a pre-trained model make my image classifier robust to this distribution shift?\n\n"
        + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ptdiag {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for expected errors.")] = False,
) -> None:
    _state["debug"] = debug


def debug_enabled() -> bool:
    return _state["debug"]


def report_error(exc: PtdiagError) -> None:
    """Print one red line (and the hint) to stderr."""
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if exc.hint:
        err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn PtdiagError into a one-line message and its exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, inside the handler, not in Click's exit path
            return result
        except PtdiagError as exc:
            if debug_enabled():
                traceback.print_exc(file=sys.stderr)
            report_error(exc)
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: finished jobs are kept; rerun the same command to resume.")
            raise typer.Exit(code=EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # plain prints; Rich's writes go through its hook
            _stop_on_closed_pipe()
        except MemoryError:
            err_console.print("[bold red]error:[/] out of memory; lower --batch-size, --image-size or --max-reference.")
            raise typer.Exit(code=5) from None

    return wrapper
