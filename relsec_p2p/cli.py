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
}


def _bench(args: argparse.Namespace) -> int:
    runner: Callable[..., dict[str, Any]]
    if args.suite == "core":
        from .bench import core

        runner = core.run
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relsec",
        description="Peer-to-peer meetings for one room on a shared LAN: signed, encrypted, "
        "with anonymous contributions and consensus votes. No server.",
    )
    parser.add_argument("--version", action="version", version=f"relsec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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
