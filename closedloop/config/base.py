"""Shared pieces of every config model: unknown keys are errors, and URLs are checked where written.

A URL with a scheme closedloop cannot use is refused at validation, with the file and line of
the value, rather than at the first call of a run (a ``mysql://`` store used to pass
``config validate`` and end in a traceback at ``run``).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

STORE_SCHEMES: tuple[str, ...] = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
"""Store URL schemes the project supports (the drivers it installs): SQLite and PostgreSQL via psycopg 3."""

SERVICE_SCHEMES: tuple[str, ...] = ("http", "https")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _store_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ValueError("not a store URL; write sqlite:///closedloop.db or postgresql://user@host/db")
    if scheme.lower() not in STORE_SCHEMES:
        raise ValueError(f"unsupported store {scheme!r}; supported: {', '.join(STORE_SCHEMES)}")
    if scheme.lower().startswith("sqlite") and rest and not rest.startswith("/"):
        raise ValueError("a SQLite URL is sqlite:///relative.db or sqlite:////absolute/path.db")
    return value


def _service_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("not a URL; write https://host[:port]") from None
    if parts.scheme.lower() not in SERVICE_SCHEMES:
        shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ValueError(f"{shown}; a service URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("no host; write https://host[:port]")
    try:
        parts.port  # noqa: B018  (a port outside 0-65535 or not a number raises here)
    except ValueError:
        raise ValueError("the port is not a number from 1 to 65535") from None
    return value


StoreUrl = Annotated[str, AfterValidator(_store_url)]
"""A store URL of a supported scheme (see ``STORE_SCHEMES``)."""

ServiceUrl = Annotated[str, AfterValidator(_service_url)]
"""An http(s) URL with a host: every ``base_url`` and Salesforce's login and instance URLs."""
