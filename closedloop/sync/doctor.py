"""``closedloop doctor``'s checks: plain functions from a config to results, the CLI renders them.

Each check answers pass, warn or fail with one line and, when not passing, what to do.  They run
against the real services (the sandbox in tests) through the connectors' check modules, and
never print a secret: a secret is reported as resolved or not, never shown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from closedloop.config.models import Config
from closedloop.errors import ClosedloopError, ConfigError

if TYPE_CHECKING:
    from closedloop.connectors.hubspot.check import HubSpotCheck

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _secret(name: str, value: object, file: str | None, env_hint: str) -> Check:
    """A secret field: resolved from the environment (the loader did it) or a readable file."""
    if value is not None:
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
        if text.strip():
            return Check(f"secret {name}", "pass", "set (from the environment)")
        return Check(f"secret {name}", "fail", "empty", f"set {env_hint} to the secret")
    if file:
        path = Path(file)
        if not path.exists():
            return Check(f"secret {name}", "fail", f"file {file} does not exist", f"create {file} or fix {name}_file")
        if not os.access(path, os.R_OK):
            return Check(f"secret {name}", "fail", f"file {file} is not readable", f"chmod/chown {file} for this user")
        if not path.read_text(encoding="utf-8", errors="replace").strip():
            return Check(f"secret {name}", "fail", f"file {file} is empty", f"write the secret into {file}")
        return Check(f"secret {name}", "pass", f"read from {file}")
    return Check(f"secret {name}", "fail", "not configured", f"set {name}: ${{{env_hint}}} or {name}_file")


def secret_checks(config: Config) -> list[Check]:
    checks: list[Check] = []
    if config.hubspot is not None:
        h = config.hubspot
        checks.append(_secret("hubspot.access_token", h.access_token, h.access_token_file, "HUBSPOT_TOKEN"))
    if config.ga4 is not None and config.ga4.credentials_file:
        checks.append(_secret("ga4.credentials", None, config.ga4.credentials_file, "a service-account key file"))
    if config.salesforce is not None:
        sf = config.salesforce
        if sf.auth == "jwt" and sf.private_key_file:
            checks.append(_secret("salesforce.private_key", None, sf.private_key_file, "a PEM key file"))
        pairs = {"password": ("password", "security_token", "consumer_secret"), "session": ("access_token",)}
        for field in pairs.get(sf.auth, ()):
            checks.append(
                _secret(f"salesforce.{field}", getattr(sf, field), getattr(sf, f"{field}_file"), f"SF_{field.upper()}")
            )
    key_from_env = os.environ.get("CLOSEDLOOP_HASH_KEY", "").strip()
    key_file = Path(config.privacy.hash_key_file)
    if key_from_env:
        checks.append(Check("email hash key", "pass", "set (CLOSEDLOOP_HASH_KEY)"))
    elif key_file.exists():
        ok = os.access(key_file, os.R_OK)
        checks.append(Check("email hash key", "pass" if ok else "fail", f"{key_file}" + ("" if ok else " not readable"),
                            "" if ok else f"make {key_file} readable for this user"))
    else:
        checks.append(Check("email hash key", "warn", f"{key_file} does not exist yet",
                            "the first run creates it (or `closedloop init`); back it up: without it identities "
                            "stop matching"))
    return checks


def _api_check(name: str, body: Callable[[], Check]) -> Check:
    try:
        return body()
    except ConfigError as exc:
        return Check(name, "fail", "; ".join(p.message for p in exc.problems), "fix the secret it names")
    except ClosedloopError as exc:
        return Check(name, "fail", str(exc).splitlines()[0], _fix_for(exc))


def _fix_for(exc: ClosedloopError) -> str:
    status = getattr(exc, "status", None)
    if status == 401:
        return "the credentials were refused: check the token or key"
    if status == 403:
        return "grant this account access (GA4: Viewer on the property)"
    return "check the base_url, the network and the service's status"


def hubspot_checks(config: Config) -> Iterator[Check]:
    from closedloop.config.loader import read_secret
    from closedloop.connectors.hubspot.check import HubSpotCheck, missing_scopes

    hub = config.hubspot
    if hub is None:
        return
    try:
        token = read_secret(hub.access_token, hub.access_token_file, what="hubspot.access_token")
    except ConfigError:
        yield Check("hubspot", "fail", "no token to try", "fix the hubspot.access_token secret first")
        return
    check = HubSpotCheck(base_url=hub.base_url, token=token, timeout_s=min(hub.timeout_s, 15.0))

    def scopes() -> Check:
        missing = missing_scopes(check.scopes())
        if missing:
            return Check("hubspot token scopes", "fail", f"missing {', '.join(missing)}",
                         "add these scopes to the private app (Settings > Integrations > Private apps) "
                         "and put its new token in the secret")
        return Check("hubspot token scopes", "pass", f"all {len(missing_scopes(set()))} scopes a run needs")

    yield _api_check("hubspot token scopes", scopes)
    group = config.writeback.group_name
    for object_type in ("contacts", "deals"):
        yield _api_check(f"hubspot {object_type} properties", partial(_properties, check, config, object_type, group))


def _properties(check: HubSpotCheck, config: Config, object_type: str, group: str) -> Check:
    from closedloop.sync.properties import property_specs

    name = f"hubspot {object_type} properties"
    wanted = [s.name for s in property_specs(config.writeback.property_prefix, config.attribution.primary_model)
              if s.object_type == object_type]
    existing = check.property_names(object_type)
    missing = [p for p in wanted if p not in existing]
    has_group = group in check.group_names(object_type)
    if not missing and has_group:
        return Check(name, "pass", f"group {group} and its {len(wanted)} properties exist")
    what = ([f"group {group}"] if not has_group else []) + ([f"{len(missing)} of {len(wanted)} properties"]
                                                             if missing else [])
    return Check(name, "warn", f"missing {' and '.join(what)}",
                 "the first run creates them (needs the crm.schemas.*.write scopes)")


def ga4_checks(config: Config) -> Iterator[Check]:
    from closedloop.connectors.ga4.check import dimension_names

    ga4 = config.ga4
    if ga4 is None:
        yield Check("ga4", "warn", "no ga4: section", "without GA4 only the CRM's own source fields become touchpoints")
        return

    def access() -> Check:
        names = dimension_names(ga4)
        if ga4.client_id_dimension not in names:
            custom = sorted(n for n in names if n.startswith(("customUser:", "customEvent:")))
            seen = f" (the property has: {', '.join(custom)})" if custom else " (the property has no custom dimensions)"
            return Check("ga4 property access", "fail", f"{ga4.client_id_dimension} is not registered{seen}",
                         "register it in GA4 Admin > Custom definitions, or set ga4.client_id_dimension")
        return Check("ga4 property access", "pass",
                     f"property {ga4.property_id} readable; {ga4.client_id_dimension} registered")

    yield _api_check("ga4 property access", access)


def salesforce_checks(config: Config) -> Iterator[Check]:
    if config.salesforce is None:
        return
    yield Check("salesforce fields", "warn", "not checked by doctor",
                "run `closedloop crm check --config ...` to list (and create) the closedloop fields")


def store_check(config: Config) -> Check:
    """The store answers and its schema is at the newest migration (nothing is changed)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from closedloop.store.engine import alembic_config, make_engine, store_errors

    sqlite_prefix = "sqlite:///"
    if config.store.url.startswith(sqlite_prefix):  # connecting would create the file: say so instead
        file = Path(config.store.url.removeprefix(sqlite_prefix).split("?", 1)[0])
        if str(file) not in ("", ":memory:") and not file.exists():
            if not file.parent.exists():
                return Check("store", "fail", f"directory {file.parent} does not exist", "create it or fix store.url")
            return Check("store", "warn", f"{file} does not exist yet", "the first run creates and migrates it")
    try:
        engine = make_engine(config.store.url)
        heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
        with store_errors(engine.url, "reached"), engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        engine.dispose()
    except ClosedloopError as exc:
        return Check("store", "fail", str(exc).splitlines()[0], "check store.url, the database server and credentials")
    if current == heads:
        return Check("store", "pass", f"reachable; migrations at head ({', '.join(sorted(heads))})")
    if not current:
        return Check("store", "warn", "reachable; empty (no migrations yet)", "the first run creates the tables")
    return Check("store", "warn", f"reachable; at {', '.join(sorted(current))}, head is {', '.join(sorted(heads))}",
                 "the next run (or serve) migrates it; back the database up first")


def run_checks(config: Config) -> list[Check]:
    """Every check, in the order a user would fix them."""
    checks = [Check("config", "pass", f"loaded (crm {config.crm})"), *secret_checks(config)]
    checks += list(hubspot_checks(config)) if config.crm == "hubspot" else list(salesforce_checks(config))
    checks += list(ga4_checks(config))
    checks.append(store_check(config))
    return checks
