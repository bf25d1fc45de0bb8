"""The text ``closedloop init`` writes: the answers placed into a commented closedloop.yaml.

Kept apart from the command so a test can render every combination of answers and validate
the result with the real loader.  Secrets are never written: either ``${ENV_VAR}`` references
or ``*_file`` paths, as the loader demands.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answers:
    crm: str = "hubspot"  # hubspot | salesforce
    ga4_property: str = ""  # empty: no ga4 section
    client_id_dimension: str = "customUser:ga_client_id"
    store: str = "sqlite:///closedloop.db"
    secrets: str = "env"  # env | file
    secrets_dir: str = "/run/secrets"
    hash_key_file: str = "closedloop.hash_key"


def _secret(answers: Answers, key: str, env: str, file: str) -> str:
    if answers.secrets == "file":
        return f"{key}_file: {answers.secrets_dir.rstrip('/')}/{file}"
    return f"{key}: ${{{env}}}"


def secret_names(answers: Answers) -> list[tuple[str, str]]:
    """(what, where) for each secret the config names, for the closing hints."""
    folder = answers.secrets_dir.rstrip("/")
    if answers.crm == "hubspot":
        names = [("the HubSpot private-app token", "HUBSPOT_TOKEN", "hubspot_token")]
    else:
        names = [("the Salesforce connected app's private key (PEM)", "", "salesforce_jwt_key.pem")]
    out = []
    for what, env, file in names:
        if answers.secrets == "file" or not env:
            out.append((what, f"the file {folder}/{file}"))
        else:
            out.append((what, f"export {env}=..."))
    if answers.ga4_property:
        out.append(("the GA4 service-account key (JSON)", f"the file {folder}/ga4-service-account.json"))
    return out


def _crm_section(answers: Answers) -> str:
    if answers.crm == "hubspot":
        return f"""crm: hubspot

hubspot:
  base_url: https://api.hubapi.com
  # A private app (Settings > Integrations > Private apps) with the scopes
  # crm.objects.contacts.read/write, crm.objects.deals.read/write,
  # crm.schemas.contacts.read/write, crm.schemas.deals.read/write.
  # `closedloop doctor` names any scope the token lacks.
  {_secret(answers, "access_token", "HUBSPOT_TOKEN", "hubspot_token")}
  tier: professional            # free | starter | professional | enterprise | capacity_pack (API limits)
  contact_properties:
    # The hidden form field where your site stores the GA client id (from the _ga cookie).
    ga_client_id: ga_client_id
"""
    folder = answers.secrets_dir.rstrip("/")
    return f"""crm: salesforce

salesforce:
  login_url: https://login.salesforce.com   # test.salesforce.com for a sandbox org
  # JWT bearer flow: a connected app holding the certificate of this private key.
  auth: jwt
  username: integration@example.com         # the API user
  consumer_key: REPLACE_WITH_CONSUMER_KEY    # the connected app's consumer key (not a secret)
  private_key_file: {folder}/salesforce_jwt_key.pem
  fields:
    ga_client_id: GA_Client_Id__c            # Lead/Contact field holding the GA client id
"""


def _ga4_section(answers: Answers) -> str:
    if not answers.ga4_property:
        return """# ga4: no property yet. Without it only the CRM's own source fields become touchpoints.
# ga4:
#   property_id: "123456789"
#   credentials_file: /run/secrets/ga4-service-account.json
#   client_id_dimension: customUser:ga_client_id
"""
    folder = answers.secrets_dir.rstrip("/")
    return f"""ga4:
  property_id: "{answers.ga4_property}"
  base_url: https://analyticsdata.googleapis.com
  # A service account with Viewer access to the property (Admin > Property access management).
  credentials_file: {folder}/ga4-service-account.json
  # The custom dimension your GA4 tag fills with the client id (Admin > Custom definitions);
  # `closedloop doctor` checks that the property registers it.
  client_id_dimension: {answers.client_id_dimension}
  initial_days: 180             # how far back the very first pull goes
  lookback_days: 3              # GA4 still revises the last 2-3 days: re-pulled on every run
"""


def render_config(answers: Answers) -> str:
    return f"""# closedloop configuration, written by `closedloop init`.
# Check it:            closedloop config validate --config THIS_FILE
# Check the services:  closedloop doctor --config THIS_FILE
# Every setting:       closedloop config schema -o closedloop.schema.json
#
# Secrets never go in this file: ${{ENV_VAR}} (resolved at start-up) or a *_file path.
version: 1

store:
  # SQLite for one machine; PostgreSQL when several replicas share the store.
  url: {answers.store}

{_crm_section(answers)}
{_ga4_section(answers)}
attribution:
  # Models computed for every conversion; the primary one feeds the CRM properties.
  models: [first_touch, last_touch, linear, u_shaped, w_shaped, time_decay, markov]
  primary_model: u_shaped

writeback:
  enabled: true                 # closedloop writes only properties starting with closedloop_

privacy:
  # Key of the email hash; `closedloop init` created it. Back it up: without it identities
  # stop matching. Every replica sharing the store needs the same key.
  hash_key_file: {answers.hash_key_file}

schedule:
  jobs:
    run: {{interval_minutes: 60}}     # `closedloop serve` runs this until SIGTERM
  health_port: 8080                 # /healthz, /readyz, /metrics
"""
