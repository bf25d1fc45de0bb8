"""The exception tree every connector raises; vendor SDK errors never leak past `connectors/`.

    ClosedloopAPIError          anything a remote service did wrong
    ├── FatalAPIError           stop this stream now: bad request, forbidden, missing scope
    │   └── AuthError           401; the caller refreshes credentials once, then treats it as fatal
    ├── RetriableAPIError       429, 5xx, timeouts, connection resets: back off and try again
    │   └── RateLimitedError    429 with the wait the service asked for (``retry_after`` seconds)
    └── SkippableRecordError    one record is bad; quarantine it and carry on with the batch

The split follows Meltano's singer-sdk: the pipeline decides what to do from the class alone,
so a connector only has to classify, never to decide.  Messages never contain secrets:
connectors build them from status, endpoint and the service's error category only.
"""

from __future__ import annotations


class ClosedloopAPIError(Exception):
    """Base of every error a remote service causes."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None):
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class FatalAPIError(ClosedloopAPIError):
    """Retrying cannot help; the run stops this stream and records why."""


class AuthError(FatalAPIError):
    """Credentials were refused (401)."""


class RetriableAPIError(ClosedloopAPIError):
    """A transient failure: the same call may succeed later."""


class RateLimitedError(RetriableAPIError):
    """The service said 'slow down' (429)."""

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


class SkippableRecordError(ClosedloopAPIError):
    """One record cannot be used; it is quarantined with this reason, the rest goes on."""

    def __init__(self, message: str, *, record_key: str, payload: object = None):
        super().__init__(message)
        self.record_key = record_key
        self.payload = payload
