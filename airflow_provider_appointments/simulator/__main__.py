"""``hubspot-simulator`` / ``python -m airflow_provider_appointments.simulator``: serve until interrupted.

The first line on stdout is ``HubSpot simulator listening on http://HOST:PORT`` (flushed at once),
so scripts can start it with ``--port 0`` and read the URL.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import threading

from airflow_provider_appointments.simulator.config import SimulatorConfig
from airflow_provider_appointments.simulator.faults import FAULT_KINDS, FaultConfig

DEFAULTS = SimulatorConfig()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of ``hubspot-simulator`` (``argv`` None: ``sys.argv``)."""
    parser = argparse.ArgumentParser(prog="hubspot-simulator",
                                     description="A local HubSpot CRM Appointments API (2026-03, object 0-421).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback unless --allow-remote)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default 8765)")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the generated data")
    parser.add_argument("--seed-appointments", type=int, default=DEFAULTS.seed_appointments,
                        help="appointments that exist at start")
    parser.add_argument("--clock-origin", default=None,
                        help="when seeded history ends (ISO 8601 or epoch ms; default: midnight UTC today)")
    parser.add_argument("--token", action="append", help="accepted private-app token (repeatable)")
    parser.add_argument("--oauth-client-id", default=next(iter(DEFAULTS.oauth_clients)))
    parser.add_argument("--oauth-client-secret", default=next(iter(DEFAULTS.oauth_clients.values())))
    parser.add_argument("--refresh-token", action="append", help="accepted OAuth refresh token (repeatable)")
    parser.add_argument("--oauth-token-ttl", type=float, default=DEFAULTS.oauth_token_ttl_s,
                        help="seconds an OAuth access token lives")
    parser.add_argument("--requests-per-10s", type=int, default=DEFAULTS.requests_per_10s,
                        help="rolling 10-second budget per app; 0 = off")
    parser.add_argument("--search-per-second", type=int, default=DEFAULTS.search_requests_per_second,
                        help="search budget per second; 0 = off")
    parser.add_argument("--daily-limit", type=int, default=DEFAULTS.daily_limit, help="daily budget; 0 = off")
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429 answers")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every API request")
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0, help="up to this much more latency")
    parser.add_argument("--search-lag-ms", type=int, default=DEFAULTS.search_lag_ms,
                        help="milliseconds before a write is visible to search (HubSpot: a few seconds); 0 = at once")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per API request")
    parser.add_argument("--fault-kinds", default="502,503,504", help=f"comma-separated, from {','.join(FAULT_KINDS)}")
    parser.add_argument("--fault-paths", default=None, help="regular expression of the paths faults apply to")
    parser.add_argument("--fault-methods", default="", help="comma-separated HTTP methods faults apply to")
    parser.add_argument("--fault-timeout", type=float, default=5.0, help="seconds a timeout fault holds the answer")
    parser.add_argument("--config-json", default=None,
                        help="a whole SimulatorConfig as JSON (replaces the flags above)")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    """The simulator configuration the parsed command line asks for."""
    if args.config_json:
        return SimulatorConfig.from_dict(json.loads(args.config_json))
    return SimulatorConfig(
        seed=args.seed,
        seed_appointments=args.seed_appointments,
        clock_origin=args.clock_origin,
        tokens=tuple(args.token or DEFAULTS.tokens),
        oauth_clients={args.oauth_client_id: args.oauth_client_secret},
        refresh_tokens=tuple(args.refresh_token or DEFAULTS.refresh_tokens),
        oauth_token_ttl_s=args.oauth_token_ttl,
        requests_per_10s=args.requests_per_10s or None,
        search_requests_per_second=args.search_per_second or None,
        daily_limit=args.daily_limit or None,
        retry_after=args.retry_after,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        search_lag_ms=args.search_lag_ms,
        faults=FaultConfig(rate=args.fault_rate, kinds=tuple(k for k in args.fault_kinds.split(",") if k),
                           paths=args.fault_paths, methods=tuple(m for m in args.fault_methods.split(",") if m),
                           timeout_s=args.fault_timeout),
    )


def is_loopback(host: str) -> bool:
    """Whether `host` is ``localhost`` or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    args = parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        print(f"refusing to bind {args.host}: the simulator serves loopback only; pass --allow-remote to override",
              file=sys.stderr)
        return 2
    try:
        config = config_from(args)
    except (TypeError, ValueError) as problem:
        print(f"invalid simulator settings: {problem}", file=sys.stderr)
        return 2
    from airflow_provider_appointments.simulator.server import Simulator  # the server stack, only when serving

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Simulator(config, host=args.host, port=args.port) as sim:
        print(f"HubSpot simulator listening on {sim.url}", flush=True)
        counts = sim.store.counts()
        print(f"token: {sim.token}  appointments: {counts['appointments']['active']}  contacts: "
              f"{counts['contacts']['active']}  (Ctrl-C stops)", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
