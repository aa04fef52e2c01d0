"""`SimulatorConfig`: everything about one simulator, as one piece of data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from airflow_provider_appointments.simulator.faults import FaultConfig
from airflow_provider_appointments.simulator.properties import parse_epoch_ms
from airflow_provider_appointments.simulator.schema import APPOINTMENTS, COMPANIES, CONTACTS, DEALS
from airflow_provider_appointments.simulator.seed import default_counts


@dataclass
class SimulatorConfig:
    """Settings of one simulator. For every budget, 0 or None switches it off.

    :param seed: seed of the generated records and of the fault draws (non-negative).
    :param seed_appointments: appointments that exist at start.
    :param seed_contacts: contacts at start (default: a quarter of the appointments, 20 to 250,000).
    :param seed_companies: companies at start (default: one per 40 appointments, 5 to 10,000).
    :param seed_deals: deals at start (default: one per 20 appointments, 5 to 50,000).
    :param clock_origin: the moment seeded history ends, as ISO 8601 or epoch ms; seeded records were
        created and last modified in the 30 days before it. Default: midnight UTC of the day the
        simulator starts. Must not be in the future (writes are stamped with the wall clock).
    :param tokens: private-app tokens accepted as ``Authorization: Bearer`` (all scopes).
    :param token_scopes: tokens with restricted scopes (token -> granted scopes), for 403 tests.
    :param oauth_clients: OAuth client id -> client secret.
    :param refresh_tokens: refresh tokens the OAuth token endpoints accept.
    :param oauth_token_ttl_s: lifetime of issued OAuth access tokens (``expires_in``).
    :param requests_per_10s: rolling 10-second budget per private app / OAuth installation (HubSpot
        Professional: 190).
    :param search_requests_per_second: the separate search budget per account (HubSpot: 5).
    :param daily_limit: daily budget of private-app requests per account (Professional: 625,000).
    :param retry_after: whether 429 answers carry ``Retry-After`` (HubSpot does not always send it).
    :param latency_ms: latency added to every API request (``await``-ed, so requests overlap).
    :param latency_jitter_ms: up to this much more latency, drawn per request.
    :param search_lag_ms: how long after a write search sees it, per record (HubSpot: a few seconds;
        reads, lists and batch reads see writes at once). Until then search finds the record's
        previous state: a created record not at all, an updated one with its old values, an
        archived one still.
    :param faults: fault injection settings.
    :param hub_id: the simulated account's id.
    """

    seed: int = 7
    seed_appointments: int = 200
    seed_contacts: int | None = None
    seed_companies: int | None = None
    seed_deals: int | None = None
    clock_origin: str | int | None = None
    tokens: tuple[str, ...] = ("pat-na1-simulator-token",)
    token_scopes: dict[str, list[str]] = field(default_factory=dict)
    oauth_clients: dict[str, str] = field(default_factory=lambda: {"simulator-client-id": "simulator-client-secret"})
    refresh_tokens: tuple[str, ...] = ("simulator-refresh-token",)
    oauth_token_ttl_s: float = 1800
    requests_per_10s: int | None = 190
    search_requests_per_second: int | None = 5
    daily_limit: int | None = 625_000
    retry_after: bool = False
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    search_lag_ms: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    hub_id: int = 4242

    def __post_init__(self) -> None:
        self.tokens = (self.tokens,) if isinstance(self.tokens, str) else tuple(self.tokens)
        self.refresh_tokens = ((self.refresh_tokens,) if isinstance(self.refresh_tokens, str)
                               else tuple(self.refresh_tokens))
        if isinstance(self.faults, dict):
            self.faults = FaultConfig(**self.faults)
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        counts = (self.seed_appointments, self.seed_contacts, self.seed_companies, self.seed_deals)
        if any(count is not None and count < 0 for count in counts):
            raise ValueError("seeded record counts must be non-negative")
        if self.search_lag_ms is None or self.search_lag_ms < 0:
            raise ValueError(f"search_lag_ms must be non-negative, got {self.search_lag_ms}")
        if not self.tokens and not self.token_scopes and not self.oauth_clients:
            raise ValueError("configure at least one token or OAuth client, or nobody can call the simulator")
        self.origin_ms()  # fail early on an unreadable clock origin

    def origin_ms(self) -> int | None:
        """`clock_origin` in epoch milliseconds (None: midnight UTC today)."""
        if self.clock_origin is None:
            return None
        return self.clock_origin if isinstance(self.clock_origin, int) else parse_epoch_ms(str(self.clock_origin))

    def seed_counts(self) -> dict[str, int]:
        """Records per object type at start."""
        counts = default_counts(self.seed_appointments)
        for kind, override in ((CONTACTS, self.seed_contacts), (COMPANIES, self.seed_companies),
                               (DEALS, self.seed_deals)):
            if override is not None:
                counts[kind] = override
        counts[APPOINTMENTS] = self.seed_appointments
        return counts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulatorConfig:
        """A config from plain values (JSON); unknown keys are an error."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown simulator settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def changed(self, **changes: Any) -> SimulatorConfig:
        """A copy with some settings changed; ``faults`` may be a `FaultConfig` or a dict of changes."""
        values = self.to_dict()
        faults = changes.pop("faults", None)
        if isinstance(faults, FaultConfig):
            values["faults"] = asdict(faults)
        elif faults is not None:
            values["faults"].update(faults)
        values.update(changes)
        return SimulatorConfig.from_dict(values)
