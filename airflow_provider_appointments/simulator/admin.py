"""The simulator's own admin endpoints (``/_simulator/...``): health, statistics, state, settings,
reset, OAuth token expiry and revocation, and forced 429s. They are not HubSpot's; the pipeline in
`app` serves them to loopback clients only, without authentication, rate limits or faults."""

from __future__ import annotations

from airflow_provider_appointments.simulator.errors import validation_error
from airflow_provider_appointments.simulator.routing import Call, Reply
from airflow_provider_appointments.simulator.state import SimulatorState


class AdminAPI:
    """Handlers of ``/_simulator/...`` over the simulator's state.

    :param state: the simulator's state and policies.
    """

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def health(self, call: Call) -> Reply:
        return Reply(200, {"status": "ok"})

    def stats(self, call: Call) -> Reply:
        return Reply(200, self.state.snapshot())

    def get_config(self, call: Call) -> Reply:
        return Reply(200, self.state.config.to_dict())

    def patch_config(self, call: Call) -> Reply:
        if not isinstance(call.body, dict):
            raise validation_error("PATCH /_simulator/config takes a JSON object of settings to change.")
        try:
            config = self.state.configure(**call.body)
        except (TypeError, ValueError) as problem:
            raise validation_error(str(problem)) from None
        return Reply(200, config.to_dict())

    def reset(self, call: Call) -> Reply:
        self.state.reset()
        return Reply(200, {"status": "reset", "counts": self.state.store.counts()})

    def describe(self, call: Call) -> Reply:
        """Counts and clock; every appointment too with ``?include=appointments``."""
        return Reply(200, self.state.describe("appointments" in (call.query_list("include") or [])))

    def expire_oauth(self, call: Call) -> Reply:
        return Reply(200, {"expired": self.state.auth.expire_all()})

    def revoke_oauth(self, call: Call) -> Reply:
        body = call.body if isinstance(call.body, dict) else {}  # a malformed body revokes every token, never 500s
        return Reply(200, {"revoked": self.state.auth.revoke_refresh_tokens(body.get("refresh_token"))})

    def burst_429(self, call: Call) -> Reply:
        count = (call.body or {}).get("count", 1) if isinstance(call.body, dict) else 1
        self.state.faults.force_429(int(count))
        return Reply(200, {"pending_429": self.state.faults.pending_429})
