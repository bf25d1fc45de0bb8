"""The whole YAML config as pydantic models, validated once at start-up.

Secrets never live in the YAML: a secret field holds a ``${ENV_VAR}`` reference (resolved by
the loader) or the path of a file (``*_file``).  Every service has a ``base_url`` so the same
config can point at the sandbox.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from closedloop.config.attribution import AttributionConfig
from closedloop.config.base import ServiceUrl, StoreUrl, Strict
from closedloop.config.mapping import MappingConfig
from closedloop.config.schedule import ScheduleConfig

HubSpotTier = Literal["free", "starter", "professional", "enterprise", "capacity_pack"]


class StoreConfig(Strict):
    url: StoreUrl = Field(
        "sqlite:///closedloop.db",
        description="SQLAlchemy URL: sqlite:///file.db or postgresql://user@host/db",
    )


class HubSpotContactProperties(Strict):
    """Names of the CRM properties that carry identity and first-touch data."""

    ga_client_id: str = "ga_client_id"
    email: str = "email"
    lifecycle_stage: str = "lifecyclestage"
    gclid: str = "hs_google_click_id"
    fbclid: str | None = None
    msclkid: str | None = None
    original_source: str = "hs_analytics_source"
    original_source_detail_1: str = "hs_analytics_source_data_1"
    original_source_detail_2: str = "hs_analytics_source_data_2"
    utm_source: str = "utm_source"
    utm_medium: str = "utm_medium"
    utm_campaign: str = "utm_campaign"
    merged_ids: str = "hs_merged_object_ids"
    # When each lifecycle stage was entered; {stage} is each stage named in mapping.milestones.
    lifecycle_stage_date: str = "hs_lifecyclestage_{stage}_date"


class HubSpotConfig(Strict):
    base_url: ServiceUrl = "https://api.hubapi.com"
    access_token: SecretStr | None = Field(None, description="Private-app token; write ${HUBSPOT_TOKEN}")
    access_token_file: str | None = Field(None, description="Path of a file holding the token")
    tier: HubSpotTier = "starter"
    page_size: int = Field(100, ge=1, le=100)
    search_page_size: int = Field(200, ge=1, le=200)
    contact_properties: HubSpotContactProperties = HubSpotContactProperties()
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)
    rate_limit_margin: float = Field(
        0.02, ge=0, le=0.5, description="Share of the daily limit (shared by the account's apps) left to others"
    )
    burst_margin: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Share of the app's own burst window left unused; raise it if another process uses the same token",
    )
    burst_limit: int | None = Field(
        None, ge=1, description="Calls per 10 s; unset means the tier's published limit"
    )
    search_per_second: float = Field(5, gt=0, le=50, description="CRM search calls per second")
    search_counts_toward_burst: bool = Field(
        True, description="Pace search calls in the burst window too (the safe assumption)"
    )
    primary_contact_label: str | None = Field(
        None,
        description="Deal-contact association label that marks a deal's primary contact; unset or absent on a "
        "deal: its earliest-created contact",
    )

    @model_validator(mode="after")
    def _one_token_source(self) -> HubSpotConfig:
        if self.access_token is None and self.access_token_file is None:
            raise ValueError("give access_token: ${HUBSPOT_TOKEN} or access_token_file: /path")
        return self


class SalesforceFields(Strict):
    """Names of the Lead/Contact fields that carry identity and first-touch data."""

    ga_client_id: str = "GA_Client_Id__c"
    email: str = "Email"
    lead_source: str = "LeadSource"
    utm_source: str | None = "UTM_Source__c"
    utm_medium: str | None = "UTM_Medium__c"
    utm_campaign: str | None = "UTM_Campaign__c"
    gclid: str | None = "GCLID__c"
    fbclid: str | None = None
    msclkid: str | None = None


class SalesforceConfig(Strict):
    """A Salesforce org: how to sign in, which fields to read, how to write back.

    Secrets follow the HubSpot section's rule: ``${ENV}`` or a ``*_file`` path, never literal.
    """

    login_url: ServiceUrl = Field(
        "https://login.salesforce.com", description="OAuth host (My Domain or test.salesforce.com)"
    )
    auth: Literal["jwt", "password", "session"] = Field(
        "jwt", description="jwt: connected app + private key; password: password + security token; session: ready id"
    )
    username: str | None = None
    consumer_key: str | None = Field(None, description="The connected app's consumer key (client id)")
    private_key_file: str | None = Field(None, description="PEM key whose certificate the connected app holds (jwt)")
    consumer_secret: SecretStr | None = None
    consumer_secret_file: str | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    security_token: SecretStr | None = None
    security_token_file: str | None = None
    access_token: SecretStr | None = Field(None, description="A ready session id (auth: session); ${SF_SESSION}")
    access_token_file: str | None = None
    instance_url: ServiceUrl | None = Field(None, description="https://yourorg.my.salesforce.com (auth: session)")
    ca_file: str | None = Field(None, description="PEM bundle to trust instead of the system's (a private CA)")
    api_version: str = Field("59.0", pattern=r"^\d{2}\.\d$")
    fields: SalesforceFields = SalesforceFields()
    stage_history: Literal["OpportunityHistory", "OpportunityFieldHistory"] = "OpportunityHistory"
    multicurrency: bool | None = Field(None, description="Read CurrencyIsoCode; unset: ask describe once")
    query_batch_size: int = Field(2000, ge=200, le=2000, description="Sforce-Query-Options batchSize")
    daily_usage_share: float = Field(
        0.5, gt=0, le=1, description="Stop a run before the org's 24-h API usage passes this share of its allocation"
    )
    bulk_threshold: int = Field(
        2000, ge=1, description="Above this many changed records of one object, write through a Bulk API 2.0 job"
    )
    bulk_poll_s: float = Field(2.0, gt=0, le=60, description="First wait before polling a Bulk 2.0 job")
    field_template: str = Field(
        "Closedloop_{name}__c", pattern=r"^[A-Za-z][A-Za-z0-9_]*\{name\}[A-Za-z0-9_]*__c$",
        description="Custom field of a closedloop property; {name} is its name in Title_Case without the prefix",
    )
    field_names: dict[str, str] = Field(default_factory=dict, description="property -> field, overriding the template")
    permission_set: str = Field("Closedloop_Integration", description="Permission set that grants field access")
    create_fields: bool = Field(True, description="Create missing closedloop fields through the Tooling API")
    grant_field_permissions: bool = Field(
        False, description="Also create the FieldPermissions grants on permission_set through the REST API"
    )
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)

    @model_validator(mode="after")
    def _auth_complete(self) -> SalesforceConfig:
        missing: list[str] = []
        if self.auth == "jwt":
            missing = [n for n in ("username", "consumer_key", "private_key_file") if getattr(self, n) is None]
        elif self.auth == "password":
            missing = [n for n in ("username", "consumer_key") if getattr(self, n) is None]
            for secret in ("password", "security_token", "consumer_secret"):
                if getattr(self, secret) is None and getattr(self, f"{secret}_file") is None:
                    missing.append(f"{secret} (or {secret}_file)")
        else:
            if self.access_token is None and self.access_token_file is None:
                missing.append("access_token (or access_token_file)")
            if self.instance_url is None:
                missing.append("instance_url")
        if missing:
            raise ValueError(f"auth: {self.auth} needs " + ", ".join(missing))
        return self


class GA4Config(Strict):
    property_id: str = Field(..., pattern=r"^\d+$")
    base_url: ServiceUrl = "https://analyticsdata.googleapis.com"
    credentials_file: str | None = Field(
        None, description="Service-account JSON; unset means anonymous (the sandbox only)"
    )
    client_id_dimension: str = Field(
        "customUser:ga_client_id",
        description="The custom dimension that holds the GA client id captured by the site",
    )
    landing_page_dimension: str = Field(
        "landingPagePlusQueryString",
        description="With the query string, gclid/fbclid/msclkid on the landing URL tie sessions to contacts too",
    )
    start_date: date | None = Field(None, description="First day to pull on the very first run")
    initial_days: int = Field(180, ge=1, le=3650)
    lookback_days: int = Field(3, ge=0, le=30, description="Recent days re-pulled every run")
    page_size: int = Field(
        10_000,
        ge=1,
        le=250_000,
        description="Rows per runReport call; a row costs about 3.6 KB while its page is read and stored:"
        " at 500,000 sessions the pull peaked 364 MB above its start with 100,000-row pages and 44 MB with"
        " 10,000-row ones, which took 7% longer",
    )
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)


class WritebackConfig(Strict):
    enabled: bool = True
    group_name: str = "closedloop"
    group_label: str = "closedloop attribution"
    property_prefix: str = Field("closedloop_", pattern=r"^[a-z][a-z0-9_]*$")
    batch_size: int = Field(
        100, ge=1, le=200, description="Records per write call: at most 100 for HubSpot; Salesforce: 200, its default"
    )
    max_attempts: int = Field(5, ge=1, description="Failed records are retried on later runs this often")
    parallel_requests: int = Field(
        2, ge=1, le=8, description="Batch calls in flight at once; the rate limiter still sets the pace"
    )


class PrivacyConfig(Strict):
    """What closedloop keeps about people, and for how long (README: "Personal data")."""

    hash_key_file: str = Field(
        "closedloop.hash_key",
        description="Key of the email hash (HMAC-SHA-256); created on first run. $CLOSEDLOOP_HASH_KEY overrides it",
    )
    quarantine_raw: bool = Field(
        False, description="Keep refused records' raw values in the quarantine (emails included); off by default"
    )
    reconcile_hours: float | None = Field(
        0,
        ge=0,
        description="How often a run lists every live CRM contact id to purge contacts deleted for good (GDPR): "
        "0 (every run) purges them on the next run; a large portal may trade that for fewer calls (one per 100 "
        "contacts), e.g. 24; null: never (archived contacts are purged on every run regardless)",
    )
    session_retention_days: int | None = Field(
        730, ge=1, description="Raw GA4 sessions older than this are deleted on each run; null keeps them"
    )


class Config(Strict):
    """Root of closedloop.yaml."""

    version: Literal[1] = 1
    timezone: str = Field("UTC", description="The account's zone, used only for display")
    store: StoreConfig = StoreConfig()
    crm: Literal["hubspot", "salesforce"] = "hubspot"
    hubspot: HubSpotConfig | None = None
    salesforce: SalesforceConfig | None = None
    ga4: GA4Config | None = None
    mapping: MappingConfig = MappingConfig()
    attribution: AttributionConfig = AttributionConfig()
    writeback: WritebackConfig = WritebackConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    reporting_currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code every revenue, cost and ROI figure is given in"
    )
    home_currency: str | None = Field(
        None,
        pattern=r"^[A-Z]{3}$",
        description="The CRM's home (company) currency, of deals with no currency code and of HubSpot's "
        "amount_in_home_currency; unset: the reporting currency",
    )
    rates_file: str | None = Field(
        None,
        description="CSV date,currency,rate (one unit of currency in the reporting currency on that date): "
        "converts deals and spend in other currencies; the latest rate on or before the day is used",
    )

    @field_validator("writeback")
    @classmethod
    def _batch_fits_the_crm(cls, writeback: WritebackConfig, info: ValidationInfo) -> WritebackConfig:
        """A batch call's maximum is the CRM's: HubSpot's batch/update 100, sObject Collections 200.

        Checked on the section (``crm`` is validated before it) so the problem names
        ``writeback`` and its line rather than the root of the file.
        """
        if info.data.get("crm", "hubspot") == "hubspot" and writeback.batch_size > 100:
            raise ValueError(f"batch_size {writeback.batch_size}: at most 100 for HubSpot (its batch/update limit)")
        return writeback

    @model_validator(mode="after")
    def _crm_is_configured(self) -> Config:
        if self.crm == "hubspot" and self.hubspot is None:
            raise ValueError("crm is hubspot but the hubspot: section is missing")
        if self.crm == "salesforce" and self.salesforce is None:
            raise ValueError("crm is salesforce but the salesforce: section is missing")
        if self.crm == "salesforce" and "batch_size" not in self.writeback.model_fields_set:
            # The models are frozen; this is the one default that depends on another section.
            object.__setattr__(self, "writeback", self.writeback.model_copy(update={"batch_size": 200}))
        return self
