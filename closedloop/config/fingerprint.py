"""Which config the derived tables were rebuilt with: a short hash of what changes credits.

``report`` must never show sessions channelled by today's YAML beside credits from an older
rebuild; the rebuild stores this fingerprint, and whoever reads credits compares it with the
current config's and says so (or rebuilds first).  It covers the mapping and attribution
sections, the currencies and the rates file's content, nothing else (a new token or schedule
changes no credit).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from closedloop.config.models import Config


def derivation_fingerprint(config: Config) -> str:
    """16 hex digits; equal for two configs that derive the same touchpoints and credits."""
    rates = b""
    if config.rates_file:
        try:
            rates = Path(config.rates_file).read_bytes()
        except OSError:
            rates = b"(unreadable)"
    payload = json.dumps(
        {
            "mapping": config.mapping.model_dump(mode="json"),
            "attribution": config.attribution.model_dump(mode="json", exclude={"spend_files"}),
            "reporting_currency": config.reporting_currency,
            "home_currency": config.home_currency,
            "rates": hashlib.sha256(rates).hexdigest(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
