"""Running the simulator: in a background thread (tests) or in its own process (benchmarks, the demo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

import requests
import uvicorn

from airflow_provider_appointments.simulator.app import SimulatorConfig, SimulatorState, build_app
from airflow_provider_appointments.simulator.faults import FaultConfig

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def connection_json(url: str, token: str, **extra: Any) -> str:
    """What to put in ``AIRFLOW_CONN_HUBSPOT_DEFAULT`` to point the provider at a simulator."""
    return json.dumps({"conn_type": "hubspot", "host": url, "password": token,
                       "extra": {"api_version": "2026-03", **extra}})


class _Client:
    """The surface shared by both ways of running: URL, token, settings, stats, connection helpers."""

    url: str
    config: SimulatorConfig

    @property
    def token(self) -> str:
        return self.config.tokens[0]

    def airflow_connection_json(self, **extra: Any) -> str:
        return connection_json(self.url, self.token, **extra)

    def airflow_oauth_connection_json(self, **extra: Any) -> str:
        client_id, client_secret = next(iter(self.config.oauth_clients.items()))
        return connection_json(self.url, "", client_id=client_id, client_secret=client_secret,
                               refresh_token=self.config.refresh_tokens[0], **extra)

    def admin(self, method: str, action: str, payload: dict | None = None) -> dict:
        response = requests.request(method, f"{self.url}/_simulator/{action}", json=payload, timeout=60)
        response.raise_for_status()
        return response.json()

    def state(self, include_appointments: bool = False) -> dict:
        return self.admin("GET", "state?include=appointments" if include_appointments else "state")

    def burst_429(self, count: int) -> None:
        self.admin("POST", "faults/burst-429", {"count": count})

    def expire_oauth_tokens(self) -> None:
        self.admin("POST", "oauth/expire")

    def revoke_refresh_tokens(self) -> None:
        self.admin("POST", "oauth/revoke")


class Simulator(_Client):
    """A simulator served by uvicorn in a daemon thread of this process.

    ``with Simulator(SimulatorConfig(seed_appointments=50)) as sim: requests.get(sim.url + ...)``
    """

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.state_ = SimulatorState(self.config)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> Any:
        return self.state_.store

    def start(self) -> Simulator:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(build_app(self.state_), log_level="warning", access_log=False, http="httptools",
                                lifespan="off", timeout_keep_alive=30, backlog=2048)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="hubspot-simulator")
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HubSpot simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def configure(self, **changes: Any) -> SimulatorConfig:
        return self.state_.configure(**changes)

    def stats(self) -> dict:
        return self.state_.snapshot()

    def reset(self) -> None:
        self.state_.reset()

    def burst_429(self, count: int) -> None:
        self.state_.faults.burst_429 += count

    def expire_oauth_tokens(self) -> None:
        self.state_.auth.expire_all()

    def revoke_refresh_tokens(self) -> None:
        self.state_.auth.revoke_refresh_tokens()


class SimulatorProcess(_Client):
    """The same simulator in a child process, so its CPU is not the client's; driven over HTTP."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.host, self.port = host, port
        self._process: subprocess.Popen | None = None

    def start(self) -> SimulatorProcess:
        command = [sys.executable, "-m", "airflow_provider_appointments.simulator", "--host", self.host,
                   "--port", str(self.port), "--config-json", self.config.to_json()]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if "http://" not in line:
            self.stop()
            raise RuntimeError(f"the HubSpot simulator did not start: {line!r}")
        self.url = line.strip().split()[-1]
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def configure(self, **changes: Any) -> dict:
        if isinstance(changes.get("faults"), FaultConfig):
            changes["faults"] = asdict(changes["faults"])
        return self.admin("PATCH", "config", changes)

    def stats(self) -> dict:
        return self.admin("GET", "stats")

    def reset(self) -> None:
        self.admin("POST", "reset")
