"""``hubspot-simulator`` / ``python -m airflow_provider_appointments.simulator``: serve until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from airflow_provider_appointments.simulator.app import SimulatorConfig
from airflow_provider_appointments.simulator.faults import FAULT_KINDS, FaultConfig
from airflow_provider_appointments.simulator.server import LOOPBACK, Simulator


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hubspot-simulator", description="A local HubSpot CRM Appointments API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback unless --allow-remote)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument("--seed-appointments", type=int, default=200, help="appointments that exist at start")
    parser.add_argument("--token", action="append", help="accepted private-app token (repeatable)")
    parser.add_argument("--oauth-client-id", default="simulator-client-id")
    parser.add_argument("--oauth-client-secret", default="simulator-client-secret")
    parser.add_argument("--refresh-token", action="append", help="accepted OAuth refresh token (repeatable)")
    parser.add_argument("--oauth-token-ttl", type=int, default=1800, help="seconds an OAuth access token lives")
    parser.add_argument("--requests-per-10s", type=int, default=190, help="rolling 10 s budget per token; 0 = off")
    parser.add_argument("--search-per-second", type=int, default=5, help="search budget per second; 0 = off")
    parser.add_argument("--daily-limit", type=int, default=625_000, help="daily budget per private-app token; 0 = off")
    parser.add_argument("--retry-after", action="store_true", help="send Retry-After on 429 answers")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per API request")
    parser.add_argument("--latency-jitter-ms", type=float, default=0.0, help="up to this much more latency")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per API request")
    parser.add_argument("--fault-kinds", default="502,503,504", help=f"comma-separated, from {','.join(FAULT_KINDS)}")
    parser.add_argument("--fault-paths", default=None, help="regex of paths faults apply to")
    parser.add_argument("--config-json", default=None, help="a full SimulatorConfig as JSON (overrides the flags)")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    if args.config_json:
        return SimulatorConfig.from_dict(json.loads(args.config_json))
    return SimulatorConfig(
        seed=args.seed,
        seed_appointments=args.seed_appointments,
        tokens=tuple(args.token or SimulatorConfig().tokens),
        oauth_clients={args.oauth_client_id: args.oauth_client_secret},
        refresh_tokens=tuple(args.refresh_token or SimulatorConfig().refresh_tokens),
        oauth_token_ttl_s=args.oauth_token_ttl,
        requests_per_10s=args.requests_per_10s or None,
        search_requests_per_second=args.search_per_second or None,
        daily_limit=args.daily_limit or None,
        retry_after=args.retry_after,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        faults=FaultConfig(rate=args.fault_rate, kinds=tuple(k for k in args.fault_kinds.split(",") if k),
                           paths=args.fault_paths),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.host not in LOOPBACK and not args.allow_remote:
        print(f"refusing to bind {args.host}: the simulator is for loopback; pass --allow-remote", file=sys.stderr)
        return 2
    config = config_from(args)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Simulator(config, host=args.host, port=args.port) as sim:
        print(f"HubSpot simulator listening on {sim.url}", flush=True)
        print(f"token: {sim.token}  ({config.seed_appointments} appointments seeded)", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
