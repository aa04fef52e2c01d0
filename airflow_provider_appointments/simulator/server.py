"""Running the simulator: in a background thread (`Simulator`) or in a child process (`SimulatorProcess`).

Both offer the same surface: ``url``, ``token``, ``configure``, ``stats``, ``reset``, ``state`` and
the Airflow connection helpers. Only `Simulator` has ``store`` (the in-memory data, for assertions
in the same process); a `SimulatorProcess` is driven over the admin HTTP endpoints.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import asdict
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests
import uvicorn

from airflow_provider_appointments.simulator.app import SimulatorApp
from airflow_provider_appointments.simulator.config import SimulatorConfig
from airflow_provider_appointments.simulator.faults import FaultConfig
from airflow_provider_appointments.simulator.state import SimulatorState
from airflow_provider_appointments.simulator.store import Store

API_VERSION = "2026-03"


def connection_json(url: str, token: str, **extra: Any) -> str:
    """What to put in ``AIRFLOW_CONN_HUBSPOT_DEFAULT`` to point the provider at a simulator.

    :param url: the simulator's URL.
    :param token: a private-app token it accepts.
    :param extra: more connection extras (``api_version`` defaults to 2026-03).
    """
    return json.dumps({"conn_type": "hubspot", "host": url, "password": token,
                       "extra": {"api_version": API_VERSION, **extra}})


class _Surface:
    """What both ways of running share."""

    url: str
    config: SimulatorConfig

    @property
    def token(self) -> str:
        """The first private-app token."""
        return self.config.tokens[0] if self.config.tokens else next(iter(self.config.token_scopes))

    def airflow_connection_json(self, **extra: Any) -> str:
        """``AIRFLOW_CONN_HUBSPOT_DEFAULT`` (JSON form) for this simulator and its first token."""
        return connection_json(self.url, self.token, **extra)

    def airflow_connection_uri(self, **extra: Any) -> str:
        """The same connection in Airflow's URI form (``hubspot://:TOKEN@127.0.0.1:PORT/?api_version=...``)."""
        parts = urlsplit(self.url)
        query = urlencode({"api_version": API_VERSION, **extra})
        return f"hubspot://:{quote(self.token, safe='')}@{parts.hostname}:{parts.port}/?{query}"

    def airflow_oauth_connection_json(self, **extra: Any) -> str:
        """A connection that authenticates with the OAuth refresh-token grant instead of a token."""
        client_id, client_secret = next(iter(self.config.oauth_clients.items()))
        return json.dumps({"conn_type": "hubspot", "host": self.url, "extra": {
            "api_version": API_VERSION, "client_id": client_id, "client_secret": client_secret,
            "refresh_token": self.config.refresh_tokens[0], **extra}})

    def admin(self, method: str, action: str, payload: dict | None = None) -> dict:
        """Call an admin endpoint (``/_simulator/{action}``) and return its JSON answer."""
        response = requests.request(method, f"{self.url}/_simulator/{action}", json=payload, timeout=120)
        response.raise_for_status()
        return response.json()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class Simulator(_Surface):
    """A simulator served by uvicorn on its own event loop in a daemon thread of this process.

    ``with Simulator(SimulatorConfig(seed_appointments=50)) as sim: requests.get(sim.url + ...)``

    :param config: settings (default `SimulatorConfig()`).
    :param host: address to bind; loopback by default.
    :param port: port to bind; 0 picks a free one.
    """

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = state = SimulatorState(config or SimulatorConfig())
        state.store.search_lag_ms = lambda: state.config.search_lag_ms  # follows configure() too
        self.host, self.port = host, port
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SimulatorConfig:  # type: ignore[override]
        return self._state.config

    @property
    def store(self) -> Store:
        """The in-memory CRM (for assertions; hold ``store.lock`` while changing it)."""
        return self._state.store

    def start(self) -> Simulator:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.url = f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"
        # Keep-alive longer than clients' pools keep idle connections, so idle ones are not cut under them.
        config = uvicorn.Config(SimulatorApp(self._state), log_level="warning", access_log=False, http="httptools",
                                lifespan="off", proxy_headers=False, server_header=False, timeout_keep_alive=75,
                                timeout_graceful_shutdown=1, backlog=2048)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"hubspot-simulator-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("the HubSpot simulator did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = self._thread = None

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings while serving (budgets, latency, faults, tokens, retry_after)."""
        return self._state.configure(**changes)

    def stats(self) -> dict:
        """requests, by_status, by_route, rate_limited, faults_injected, oauth_tokens_issued, daily_used."""
        return self._state.snapshot()

    def reset(self) -> None:
        """Back to the seeded data, with statistics and rate-limit counters cleared."""
        self._state.reset()

    def state(self, include_appointments: bool = False) -> dict:
        """Counts, clock and (optionally) every appointment with all properties and associations."""
        return self._state.describe(include_appointments)

    def burst_429(self, count: int) -> None:
        """Answer the next `count` API requests with 429."""
        self._state.faults.force_429(count)

    def expire_oauth_tokens(self) -> int:
        """Expire every OAuth access token issued so far; returns how many."""
        return self._state.auth.expire_all()

    def revoke_refresh_tokens(self, refresh_token: str | None = None) -> int:
        """Revoke one refresh token (None: all); returns how many."""
        return self._state.auth.revoke_refresh_tokens(refresh_token)


class SimulatorProcess(_Surface):
    """The same simulator in a child process, so its CPU is not the client's; driven over HTTP.

    :param config: settings (default `SimulatorConfig()`).
    :param host: address to bind; loopback by default.
    :param port: port to bind; 0 picks a free one.
    :param startup_timeout_s: how long to wait for the child to serve (seeding a million records takes
        a few seconds).
    """

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout_s: float = 120.0) -> None:
        self.config = config or SimulatorConfig()
        self.host, self.port = host, port
        self.url = ""
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> SimulatorProcess:
        command = [sys.executable, "-m", "airflow_provider_appointments.simulator", "--host", self.host,
                   "--port", str(self.port), "--config-json", self.config.to_json()]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        weakref.finalize(self, _terminate, self._process)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_drain, args=(self._process.stdout, lines), daemon=True).start()
        try:
            first = lines.get(timeout=self.startup_timeout_s)
        except queue.Empty:
            first = ""
        if "http://" not in first:
            self.stop()
            raise RuntimeError(f"the HubSpot simulator process did not start: {first!r}")
        self.url = first.strip().split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        if self._process is not None:
            _terminate(self._process)
            self._process = None

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change settings while serving, over ``PATCH /_simulator/config``."""
        if isinstance(changes.get("faults"), FaultConfig):
            changes["faults"] = asdict(changes["faults"])
        self.config = SimulatorConfig.from_dict(self.admin("PATCH", "config", changes))
        return self.config

    def stats(self) -> dict:
        return self.admin("GET", "stats")

    def reset(self) -> None:
        self.admin("POST", "reset")

    def state(self, include_appointments: bool = False) -> dict:
        return self.admin("GET", "state?include=appointments" if include_appointments else "state")

    def burst_429(self, count: int) -> None:
        self.admin("POST", "faults/burst-429", {"count": count})

    def expire_oauth_tokens(self) -> int:
        return self.admin("POST", "oauth/expire")["expired"]

    def revoke_refresh_tokens(self, refresh_token: str | None = None) -> int:
        body = {"refresh_token": refresh_token} if refresh_token else None
        return self.admin("POST", "oauth/revoke", body)["revoked"]


def _drain(stream: Any, lines: queue.Queue[str]) -> None:
    """Hand over the child's first line (its URL) and keep reading so its pipe never fills."""
    for line in stream:
        lines.put(line)


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
