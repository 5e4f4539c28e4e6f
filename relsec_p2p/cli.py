"""The ``relsec`` command.

Rules of this file: parse arguments, call into the package, print. A user's
mistake gets one plain sentence on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__

BENCH_SUITES: dict[str, str] = {
    "core": "decode, verify, append and fold 10 000 entries from 20 authors",
    "net": "real peer processes on loopback: join time, fan-out latency, late-joiner sync",
}


def _bench(args: argparse.Namespace) -> int:
    runner: Callable[..., dict[str, Any]]
    if args.suite == "core":
        from .bench import core

        runner = core.run
    elif args.suite == "net":
        from .bench import net

        runner = net.run
    else:  # argparse restricts the choices; this guards a new suite without a runner
        print(f"relsec: no benchmark suite called {args.suite!r}.", file=sys.stderr)
        return 2
    result = runner()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interface",
        help="network interface name or IPv4 address to use (default: the LAN interface)",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port to listen on (default: any)")
    parser.add_argument(
        "--no-mdns", action="store_true", help="do not use zeroconf; dial --peer addresses only"
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="also dial this address (repeatable)",
    )
    parser.add_argument(
        "--absent-after",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="declare the facilitator absent after this long unreachable (default 15)",
    )
    parser.add_argument("--log-level", default="WARNING", help="log level on stderr")


def _peer(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .net.discovery import DiscoveryError, choose_interfaces
    from .net.headless import HeadlessPeer
    from .net.node import Node

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        interfaces = choose_interfaces(args.interface)
    except DiscoveryError as exc:
        print(f"relsec: {exc}", file=sys.stderr)
        return 2
    endpoints = []
    for item in args.peer:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            print(f"relsec: --peer {item!r} is not HOST:PORT, e.g. 10.0.0.5:7777.", file=sys.stderr)
            return 2
        endpoints.append((host, int(port)))

    def make_node(on_event: Any) -> Node:
        node = Node(
            interfaces=interfaces,
            port=args.port,
            on_event=on_event,
            absent_after_s=args.absent_after,
            use_mdns=not args.no_mdns,
        )
        for host, port in endpoints:
            node.add_endpoint(host, port)
        return node

    asyncio.run(HeadlessPeer(make_node).run())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relsec",
        description="Peer-to-peer meetings for one room on a shared LAN: signed, encrypted, "
        "with anonymous contributions and consensus votes. No server.",
    )
    parser.add_argument("--version", action="version", version=f"relsec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    peer = commands.add_parser(
        "peer", help="run a node without the UI, driven by JSON lines on stdin (see README)"
    )
    _add_network_options(peer)
    peer.set_defaults(handler=_peer)
    bench = commands.add_parser("bench", help="measure speed; print figures (JSON with --json)")
    bench.add_argument(
        "suite",
        choices=sorted(BENCH_SUITES),
        help="; ".join(f"{k}: {v}" for k, v in BENCH_SUITES.items()),
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(handler=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
