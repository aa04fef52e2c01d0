"""The simulator's shared state: the store plus the policies layered on it (auth, rate limits,
faults, latency) and the request counters, with settings changes and resets applied to all of them.

Every request handler and admin endpoint works on one `SimulatorState`; `server.Simulator` holds it
for the Python API.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from airflow_provider_appointments.simulator.auth import Authenticator
from airflow_provider_appointments.simulator.config import SimulatorConfig
from airflow_provider_appointments.simulator.faults import FaultInjector
from airflow_provider_appointments.simulator.properties import iso_ms
from airflow_provider_appointments.simulator.ratelimit import RateLimiter
from airflow_provider_appointments.simulator.schema import APPOINTMENTS
from airflow_provider_appointments.simulator.shapes import record_body
from airflow_provider_appointments.simulator.store import Store


class Stats:
    """Request counters: total, per status, per route, 429s; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.requests = 0
            self.rate_limited = 0
            self.by_status: dict[str, int] = {}
            self.by_route: dict[str, int] = {}

    def record(self, route: str, status: int | str) -> None:
        """Count one answered request by route and status."""
        with self._lock:
            self.requests += 1
            key = str(status)
            self.by_status[key] = self.by_status.get(key, 0) + 1
            self.by_route[route] = self.by_route.get(route, 0) + 1
            if status == 429:
                self.rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "by_status": dict(self.by_status), "rate_limited": self.rate_limited,
                    "by_route": dict(self.by_route)}


class SimulatorState:
    """The store plus the policies layered on top of it, shared by every request.

    :param config: the simulator's settings.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = Store(config.seed, config.seed_counts(), config.origin_ms())
        self.auth = Authenticator(config.tokens, config.token_scopes, config.oauth_clients, config.refresh_tokens,
                                  config.oauth_token_ttl_s, config.hub_id)
        self.limiter = RateLimiter(config.requests_per_10s, config.search_requests_per_second, config.daily_limit,
                                   config.retry_after, config.hub_id)
        self.faults = FaultInjector(config.faults, config.seed)
        self.stats = Stats()
        self._latency = random.Random(config.seed)

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings while serving: budgets, latency, faults, tokens. Seeding settings apply
        at the next `reset`."""
        config = self.config = self.config.changed(**changes)
        self.auth.configure(config.tokens, config.token_scopes, config.oauth_clients, config.refresh_tokens,
                            config.oauth_token_ttl_s, config.hub_id)
        self.limiter.configure(config.requests_per_10s, config.search_requests_per_second, config.daily_limit,
                               config.retry_after, config.hub_id)
        self.faults.configure(config.faults)
        return config

    def reset(self) -> None:
        """Back to the seeded data; statistics, rate-limit counters and pending 429s cleared.
        Issued OAuth tokens stay valid."""
        self.store.reset(self.config.seed, self.config.seed_counts(), self.config.origin_ms())
        self.stats.clear()
        self.limiter.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        return {**self.stats.snapshot(), "faults_injected": dict(self.faults.injected),
                "oauth_tokens_issued": self.auth.issued, "daily_used": self.limiter.daily_used}

    def describe(self, include_appointments: bool) -> dict[str, Any]:
        """Counts, clock and (optionally) every appointment with all properties and associations."""
        store = self.store
        with store.lock:
            body: dict[str, Any] = {"counts": store.counts(), "clock_origin": iso_ms(store.origin_ms),
                                    "now": iso_ms(store.now_ms())}
            if include_appointments:
                names = list(store.schema(APPOINTMENTS).properties)
                body["appointments"] = [
                    {**record_body(record, names),
                     "associations": {kind: sorted(str(i) for i, types in targets.items() if types)
                                      for kind, targets in store.associations_of(APPOINTMENTS, record.id).items()
                                      if any(targets.values())}}
                    for record in store.iter_records(APPOINTMENTS)]
        return body

    def latency_s(self) -> float:
        """The latency to add to the next answer, jitter included (seconds)."""
        config = self.config
        if not config.latency_ms and not config.latency_jitter_ms:
            return 0.0
        return (config.latency_ms + self._latency.random() * config.latency_jitter_ms) / 1000.0
