"""Every error the CLI can meet, mapped to one line on stderr and an exit code, in one place.

Set ``CIFAR10_FGS_DEBUG=1`` to get the full traceback instead.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

import click

from cifar10_fgs.errors import Cifar10FgsError

DEBUG_ENV = "CIFAR10_FGS_DEBUG"
EXIT_BAD_INPUT = 2
PROG = "cifar10-fgs"  # the command name in usage lines and hints, however it was started (python -m ...)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _message(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, Cifar10FgsError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted: finished work is kept; rerun the same command to resume", 130
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" while writing {exc.filename}" if exc.filename else ""
        return f"no space left on device{where}: free some space and rerun (finished shards are kept)", EXIT_BAD_INPUT
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}: choose a location you can write to", EXIT_BAD_INPUT
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename or exc}: check the path", EXIT_BAD_INPUT
    return (
        f"internal error ({type(exc).__name__}: {exc}); set {DEBUG_ENV}=1 for the traceback and report it",
        1,
    )


def _usage_error(exc: click.UsageError) -> int:
    """One line for a usage error, naming the command's help."""
    path = exc.ctx.command_path if exc.ctx else PROG
    message = " ".join(exc.format_message().split())
    click.echo(f"Error: {message} (see `{path} --help`)", err=True)
    return exc.exit_code


def run_with_friendly_errors(group: click.Group, args=None) -> int:
    """Run the click ``group``; return its exit code, printing one line for any failure."""
    try:
        group.main(args=args, prog_name=PROG, standalone_mode=False)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # click's own three lines (usage, hint, error) as one
        return _usage_error(exc)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
            message, code = _message(KeyboardInterrupt())
            click.echo(f"Error: {message}", err=True)
            return code
        click.echo("aborted", err=True)
        return 1
    except BaseException as exc:  # noqa: BLE001 - this is the one place errors become messages
        if isinstance(exc, SystemExit):
            return exc.code if isinstance(exc.code, int) else 1
        if debug_enabled():
            traceback.print_exc()
        message, code = _message(exc)
        click.echo(f"Error: {' '.join(message.split())}", err=True)  # always one line
        return code


def exit_with_friendly_errors(group: click.Group, args=None) -> None:
    sys.exit(run_with_friendly_errors(group, args))
