"""The one place a command's error becomes a message and an exit code, not a traceback.

Every `main(argv, prog)` in cli/ is wrapped with `@command`, so `bloomberg-style X` and
`launch/X.py` (a shim that calls the same main) behave the same:

- a user's mistake (ConfigError and other ValueErrors, which name the file, field or value,
  and OSErrors: a missing, unreadable or existing file) prints `PROG: error: MESSAGE`, exit 2;
- anything else is a bug or a crash: one line naming the exception, exit 1;
- `--debug` (anywhere in the arguments) or BLOOMBERG_STYLE_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

DEBUG_ENV = "BLOOMBERG_STYLE_DEBUG"
DEBUG_FLAG = "--debug"
USAGE = 2  # argparse's code for bad arguments; we use it for every bad input
CRASH = 1
USER_ERRORS = (ValueError, OSError)  # ConfigError, EvaluationError, CorpusError ... are ValueErrors

Main = Callable[..., int]


def debug_enabled(argv: list[str] | None = None) -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no") or (
        DEBUG_FLAG in (argv or [])
    )


def command(main: Main) -> Main:
    """Wrap a command's `main(argv=None, prog=None)`: strip --debug, map errors to exit codes."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None, prog: str | None = None) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = debug_enabled(argv)
        if DEBUG_FLAG in argv:  # nested commands and launched ranks see it too
            os.environ[DEBUG_ENV] = "1"
            argv = [a for a in argv if a != DEBUG_FLAG]
        name = prog or os.path.basename(sys.argv[0]) or "bloomberg-style"
        try:
            return main(argv, prog)
        except USER_ERRORS as err:
            if debug:
                raise
            print(f"{name}: error: {_message(err)}", file=sys.stderr)
            return USAGE
        except KeyboardInterrupt:
            print(f"{name}: interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - the last line of defence against a traceback
            if debug:
                raise
            print(
                f"{name}: internal error: {type(err).__name__}: {err}\n"
                f"(rerun with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback, and report it)",
                file=sys.stderr,
            )
            return CRASH

    return wrapped


def _message(err: BaseException) -> str:
    """The error's text; OSErrors without one get their file name and reason."""
    if isinstance(err, OSError) and err.filename and str(err).startswith("["):
        return f"{err.filename}: {err.strerror}"
    return str(err) or type(err).__name__
