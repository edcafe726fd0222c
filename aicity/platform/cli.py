"""``aicity serve``: the NGSI-LD API, the live city, MQTT devices and the dashboard (imports stay lazy)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _cmd_serve(args: argparse.Namespace) -> int:
    from aicity.core.errors import UserError
    from aicity.platform.server import ServeOptions, serve
    from aicity.runner import check_seed

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UserError(f"aicity serve needs the platform extra: pip install 'aicity[platform]' ({exc.name} is "
                        "missing)") from None
    check_seed(args.seed)
    if not args.speed > 0:
        raise UserError(f"--speed must be positive, got {args.speed}")
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port} is not a TCP port")
    return serve(ServeOptions(scenario=args.scenario, speed=args.speed, mode=args.mode, seed=args.seed,
                              host=args.host, port=args.port, store=args.store, folder=args.folder, nats=args.nats,
                              access=args.access,
                              mqtt=args.mqtt, mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                              city=not args.no_city, duration_s=args.duration, compare=args.compare))


def add_parsers(sub: Any) -> None:
    """Add ``aicity serve``."""
    p = sub.add_parser("serve", help="serve the city: NGSI-LD API, live governed loop, MQTT devices, dashboard")
    p.add_argument("--scenario", help="scenario or city to run live (default: the default scenario)")
    p.add_argument("--speed", type=float, default=1.0, metavar="FACTOR", help="simulated seconds per wall second")
    p.add_argument("--mode", default="ai", choices=("ai", "smart"), help="the mode the live city runs in")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, metavar="SECONDS", help="run only the first SECONDS of the window")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--store", default="runs/serve/city.db", metavar="PATH_OR_URL",
                   help="the state store (entities, history, ledger, subscriptions, outbox): a SQLite file, "
                   "sqlite:///path, :memory: or postgresql://…; other tenants live beside it (files next to a "
                   "SQLite store, a schema each on PostgreSQL)")
    p.add_argument("--folder", type=Path, metavar="DIR",
                   help="where the access file, the live city's outputs and mosquitto's data live (default: beside "
                   "a SQLite store, else runs/serve)")
    p.add_argument("--nats", metavar="URL", help="NATS JetStream (nats://host:4222): entity changes go on it and "
                   "each subscription is a durable consumer that survives restarts")
    p.add_argument("--access", type=Path, metavar="FILE",
                   help="JSON access file {\"tokens\": {TOKEN: {person, role}}}; default: an admin token is "
                   "generated into access.json beside the store")
    p.add_argument("--mqtt", action="store_true", help="ingest device readings over MQTT (starts mosquitto on "
                   "127.0.0.1 when --mqtt-host is local)")
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--no-city", action="store_true", help="serve the API only, without a live loop")
    p.add_argument("--compare", type=Path, metavar="REPORT_JSON",
                   help="report.json of an aicity run: its Smart vs AI KPIs are shown on the dashboard")
    p.set_defaults(func=_cmd_serve)


def add_bench(bench: Any) -> None:
    """Add ``aicity bench platform`` (ingest over HTTP and MQTT, notification latency, temporal queries),
    ``soak`` and ``restarts``."""
    p = bench.add_parser("platform", help="platform throughput: HTTP batch upserts, MQTT QoS 1 ingest, "
                         "notification latency, temporal aggregation")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each sustained-load run")
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_platform)
    p = bench.add_parser("soak", help="sustained HTTP ingest at a set rate for minutes: readings lost, server "
                         "memory over time")
    p.add_argument("--seconds", type=float, default=600.0, help="how long (default 600)")
    p.add_argument("--rate", type=float, default=20_000.0, help="entity updates a second (default 20000, the goal)")
    p.add_argument("--json", help="write the record to this file (default: print)")
    p.set_defaults(func=_bench_soak)
    p = bench.add_parser("restarts", help="restart PostgreSQL, NATS and the MQTT broker in turn mid-run: "
                         "sent, stored, duplicated, lost, seconds blind and to recover")
    p.add_argument("--seconds", type=float, default=24.0, help="length of each server's run (default 24)")
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_restarts)


def _bench_restarts(args: argparse.Namespace) -> int:
    from aicity.cli import write_json
    from aicity.platform.restarts import run_restarts

    write_json(args.json, run_restarts(args.seconds))
    return 0


def _bench_soak(args: argparse.Namespace) -> int:
    from aicity.cli import write_json
    from aicity.core.errors import UserError
    from aicity.platform.soak import run_soak

    if not (1 <= args.seconds <= 86_400) or not (100 <= args.rate <= 1e6):
        raise UserError("--seconds must be 1-86400 and --rate 100-1000000")
    write_json(args.json, run_soak(args.seconds, args.rate))
    return 0


def _bench_platform(args: argparse.Namespace) -> int:
    from aicity.cli import write_json
    from aicity.platform.bench import run_platform_bench

    write_json(args.json, run_platform_bench(args.seconds))
    return 0
