"""Every error closedloop raises, in one tree; foreign exceptions are translated where they enter.

    ClosedloopError                 base; ``str(exc)`` is one line a user can act on, never a secret
    ├── ConfigError                 the YAML (or a secret it names) cannot be used; ``problems`` lists
    │                               every one with file, line and field                       exit 3
    ├── UsageError                  a bad option or input file on the command line; ``param_hint``
    │   │                           names the option as typed                                  exit 2
    │   └── PathFileError           a path file (channelattribution CSV) is malformed          exit 2
    ├── ClosedloopAPIError          a remote service did something wrong                       exit 4
    │   ├── FatalAPIError           retrying cannot help: bad request, forbidden, missing scope
    │   │   ├── AuthError           credentials refused (401); refreshed once, then fatal       exit 5
    │   │   ├── BudgetExhaustedError  a daily allocation (or our share of it) is spent          exit 4
    │   │   └── StalledCursorError  a paging cursor did not advance; the stream stops
    │   └── RetriableAPIError       429, 5xx, timeouts, dropped connections: back off, try again
    │       ├── RateLimitedError    the service said slow down; ``retry_after`` seconds if given
    │       └── MalformedResponseError  a page that is not what the protocol promises (truncated
    │                               or non-JSON body, HTML, bad encoding, null body)
    ├── RecordError                 one record, not the stream
    │   └── SkippableRecordError    the record is quarantined with this reason and counted; the
    │                               batch goes on
    ├── StoreError                  the store cannot be reached, migrated or written           exit 6
    └── Interrupted                 a stop was asked for (SIGTERM); the batch in flight finished
                                    and was recorded                                           exit 0

Exit code 1 is a run that finished but not cleanly (a stream failed, records were refused).
The CLI owns the one table from these classes to exit codes and messages; the codes beside the
classes above are what that table says, listed here so the whole vocabulary is in one place.

The split follows httpx and singer-sdk: callers decide what to do from the class alone, so a
connector only classifies, never decides.  Messages are built from status, endpoint, host and
the service's error category, never from request bodies or credentials.
"""

from __future__ import annotations

from dataclasses import dataclass


class ClosedloopError(Exception):
    """Base of everything closedloop raises on purpose."""


# --- configuration and usage -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file, where it is."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(root)'}: {self.message}"


class ConfigError(ClosedloopError):
    """The config cannot be used; ``problems`` lists every reason, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the config:\n{lines}")


class UsageError(ClosedloopError):
    """A bad option value or input file; ``param_hint`` names the option as the command line spells it."""

    def __init__(self, message: str, param_hint: str | None = None) -> None:
        super().__init__(message)
        self.param_hint = param_hint


class PathFileError(UsageError):
    """A path file that cannot be read as channelattribution's format; the message names the line."""


# --- remote services -------------------------------------------------------------------------


class ClosedloopAPIError(ClosedloopError):
    """Base of every error a remote service causes."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class FatalAPIError(ClosedloopAPIError):
    """Retrying cannot help; the run stops this stream and records why."""


class AuthError(FatalAPIError):
    """Credentials were refused (401) after one refresh."""


class BudgetExhaustedError(FatalAPIError):
    """A daily (or longer) allocation, or the share of it the config allows, is spent."""


class StalledCursorError(FatalAPIError):
    """A paging cursor came back unchanged; following it would loop for ever."""


class RetriableAPIError(ClosedloopAPIError):
    """A transient failure: the same call may succeed later."""


class RateLimitedError(RetriableAPIError):
    """The service said 'slow down' (429, or Salesforce's REQUEST_LIMIT_EXCEEDED burst)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        endpoint: str | None = None,
        retry_after: float | None = None,
        policy: str | None = None,
    ):
        super().__init__(message, status=status, endpoint=endpoint)
        self.retry_after = retry_after
        self.policy = policy


class MalformedResponseError(RetriableAPIError):
    """The answer is not what the protocol promises; retried, then the stream fails, not the run."""


# --- records, store, signals ------------------------------------------------------------------


class RecordError(ClosedloopError):
    """Base of errors about one record rather than a call or a stream."""


class SkippableRecordError(RecordError):
    """One record cannot be used; it is quarantined with this reason, the rest goes on."""

    def __init__(self, message: str, *, record_key: str, payload: object = None):
        super().__init__(message)
        self.record_key = record_key
        self.payload = payload


class StoreError(ClosedloopError):
    """The store cannot be reached, migrated or written; the message names the URL's scheme and host only."""


class Interrupted(ClosedloopError):
    """A stop was requested; the batch in flight was finished and recorded, nothing after it started."""
