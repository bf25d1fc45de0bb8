"""Assemble a Salesforce connector from its config section: one client, its source and writer.

Everything the parts need is passed in (the ``requests.Session``, the clock, the sleep), so
tests hand over the sandbox's TLS session and a fake sleep instead of patching anything.
The CLI's ``crm check`` uses ``check_fields``; the factory uses ``build_salesforce``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import requests

from closedloop.config.loader import read_secret
from closedloop.config.models import SalesforceConfig
from closedloop.connectors.base import PropertySpec
from closedloop.connectors.calls import ApiCallLog
from closedloop.connectors.salesforce.auth import Authenticator, Credentials
from closedloop.connectors.salesforce.client import SalesforceClient
from closedloop.connectors.salesforce.fields import FieldNames
from closedloop.connectors.salesforce.schema import FieldReport, ensure_fields
from closedloop.connectors.salesforce.source import SalesforceSource
from closedloop.connectors.salesforce.usage import UsageMeter
from closedloop.connectors.salesforce.writer import SalesforceWriter


@dataclass(slots=True)
class SalesforceParts:
    client: SalesforceClient
    source: SalesforceSource
    writer: SalesforceWriter
    usage: UsageMeter


def http_session(config: SalesforceConfig) -> requests.Session:
    """A session trusting ``ca_file`` when given; the environment's CA bundle would override it."""
    session = requests.Session()
    if config.ca_file:
        session.verify = config.ca_file
        session.trust_env = False
    return session


def secret_reader(config: SalesforceConfig) -> Callable[[str], str]:
    def read(name: str) -> str:
        return read_secret(getattr(config, name), getattr(config, f"{name}_file"), what=f"salesforce.{name}")

    return read


def build_salesforce(
    config: SalesforceConfig,
    *,
    log: ApiCallLog,
    property_prefix: str,
    http: requests.Session | None = None,
    now: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] | None = None,
    secret: Callable[[str], str] | None = None,
    batch_size: int = 200,
    writeback_properties: Mapping[str, Sequence[str]] | None = None,
) -> SalesforceParts:
    http = http or http_session(config)
    credentials = Credentials(
        mode=config.auth,
        login_url=config.login_url,
        secret=secret or secret_reader(config),
        username=config.username,
        consumer_key=config.consumer_key,
        private_key_file=config.private_key_file,
        instance_url=config.instance_url,
    )
    authenticator = Authenticator(credentials, http, now=now or (lambda: datetime.now(UTC)), timeout_s=config.timeout_s)
    usage = UsageMeter(config.daily_usage_share)
    log.report_usage("salesforce", lambda: usage.figures().as_dict())
    client = SalesforceClient(
        authenticator,
        http,
        log=log,
        usage=usage,
        version=config.api_version,
        max_retries=config.max_retries,
        sleep=sleep,
    )
    return SalesforceParts(
        client=client,
        source=SalesforceSource(
            client,
            config,
            names=FieldNames(property_prefix, config.field_template, config.field_names),
            writeback_properties=writeback_properties,
        ),
        writer=SalesforceWriter(client, config, property_prefix=property_prefix, batch_size=batch_size),
        usage=usage,
    )


def check_fields(parts: SalesforceParts, specs: list[PropertySpec], *, create: bool, grant: bool) -> FieldReport:
    """``closedloop crm check`` for Salesforce: what is missing, what was created and granted."""
    config = parts.writer.config
    return ensure_fields(
        parts.client,
        specs,
        FieldNames(parts.writer.names.prefix, config.field_template, config.field_names),
        create=create,
        grant=grant,
        permission_set=config.permission_set,
    )
