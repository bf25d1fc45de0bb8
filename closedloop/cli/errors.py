"""The one table from closedloop's errors to exit codes and the line a user reads.

Every command runs inside ``guarded``: an error a user can act on becomes one line on stderr
(a ``ConfigError`` one line per problem: ``file:line  field  message``) and its exit code, never
a traceback.  The codes, documented in ``closedloop.errors`` and the README:

    0  ok (also a run stopped by SIGTERM: ``Interrupted``)
    1  a run finished, but not cleanly (a stream failed, records were refused)
    2  usage: a bad option, or a file named on the command line that cannot be read
    3  config: the YAML, a secret it names, or a file it names (spend files)
    4  a remote service failed (fatal after retries, or a daily budget spent)
    5  a remote service refused the credentials
    6  the store cannot be reached, migrated or written

Anything else is a bug and keeps its traceback (without locals, which can hold tokens).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from closedloop.errors import (
    AuthError,
    ClosedloopAPIError,
    ClosedloopError,
    ConfigError,
    Interrupted,
    StoreError,
    UsageError,
)

OK, RUN_FAILED, USAGE, CONFIG, API, AUTH, STORE = 0, 1, 2, 3, 4, 5, 6

# Most specific first: the first class an error is an instance of decides.
EXIT_CODES: tuple[tuple[type[ClosedloopError], int, str], ...] = (
    (Interrupted, OK, "Stopped on request; the batch in flight was stored"),
    (ConfigError, CONFIG, "The config cannot be used"),
    (UsageError, USAGE, "Error"),
    (AuthError, AUTH, "The service refused the credentials"),
    (ClosedloopAPIError, API, "The service failed"),
    (StoreError, STORE, "The store cannot be used"),
    (ClosedloopError, RUN_FAILED, "Error"),
)


def _entry(error: ClosedloopError) -> tuple[int, str]:
    for kind, code, headline in EXIT_CODES:
        if isinstance(error, kind):
            return code, headline
    raise AssertionError("ClosedloopError closes the table")  # pragma: no cover


def exit_code(error: ClosedloopError) -> int:
    return _entry(error)[0]


def message_lines(error: ClosedloopError) -> list[str]:
    """What stderr shows: one line, or a headline and one line per config problem."""
    _code, headline = _entry(error)
    if isinstance(error, ConfigError):
        return [f"{headline} ({len(error.problems)} problem(s)):"] + [
            f"  {p.file}:{p.line or '?'}  {p.field or '(root)'}  {p.message}" for p in error.problems
        ]
    if isinstance(error, UsageError) and error.param_hint:
        return [f"{headline}: {error.param_hint}: {error}"]
    return [f"{headline}: {error}"]


def translate(exc: BaseException) -> ClosedloopError | None:
    """The closedloop error a foreign exception stands for at the CLI boundary, if any.

    SQLAlchemy's OperationalError (database missing, locked, refused) is a ``StoreError``; an
    ``OSError`` here is a file the command line named.  Checked without importing SQLAlchemy.
    """
    if isinstance(exc, ClosedloopError):
        return exc
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError):
        return StoreError(str(getattr(exc, "orig", None) or exc).splitlines()[0])
    if isinstance(exc, OSError):
        return UsageError(f"{type(exc).__name__}: {exc}")
    return None


@contextmanager
def guarded(write: Callable[[str], object]) -> Iterator[None]:
    """Run a command; an error a user can act on is written line by line, then ``SystemExit``."""
    try:
        yield
    except Exception as exc:
        error = translate(exc)
        if error is None:
            raise
        for line in message_lines(error):
            write(line)
        raise SystemExit(exit_code(error)) from None


def run_guarded(body: Callable[[], object]) -> int:
    """``body`` under ``guarded``, writing to stderr; its exit code (0 when it returns)."""
    try:
        with guarded(lambda line: sys.stderr.write(line + "\n")):
            body()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return OK
