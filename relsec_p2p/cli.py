"""The ``relsec`` command.

Rules of this file: parse arguments, call into the package, print. A user's
mistake gets one plain sentence on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

BENCH_SUITES: dict[str, str] = {
    "core": "decode, verify, append and fold 10 000 entries from 20 authors",
    "net": "real peer processes on loopback: join time, fan-out latency, late-joiner sync",
    "ui": "apply and render 1 000 contributions; key press to screen update (Pilot)",
    "anon": "anonymous shuffle rounds: round time for 5, 10, 30 peers; ring signatures",
    "soak": "10 peers in network namespaces for --seconds (default 600; needs root) under "
    "churn, a partition and 10 % loss: nothing lost, memory per 1 000 actions",
}


def _bench(args: argparse.Namespace) -> int:
    runner: Callable[..., dict[str, Any]]
    if args.seconds is not None and args.suite != "soak":
        print("relsec: only the soak suite takes --seconds.", file=sys.stderr)
        return 2
    if args.suite == "core":
        from .bench import core

        runner = core.run
    elif args.suite == "net":
        from .bench import net

        runner = net.run
    elif args.suite == "ui":
        from .bench import ui

        runner = ui.run
    elif args.suite == "anon":
        from .bench import anon

        runner = anon.run
    elif args.suite == "soak":
        from .bench import soak

        reason = soak.unavailable()
        seconds = soak.DEFAULT_SECONDS if args.seconds is None else args.seconds
        if reason is None and seconds < soak.MIN_SECONDS:
            reason = f"Give the soak at least {soak.MIN_SECONDS} seconds (--seconds)."
        if reason is not None:
            print(f"relsec: {reason}", file=sys.stderr)
            return 2

        def runner() -> dict[str, Any]:
            return soak.run(seconds)
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


PASSPHRASE_ENV = "RELSEC_PASSPHRASE"  # noqa: S105 -- the variable's name, not a secret


def take_passphrase_from_env() -> str | None:
    """The save passphrase from ``RELSEC_PASSPHRASE``, removed from the
    environment at once so no child process inherits it."""
    return os.environ.pop(PASSPHRASE_ENV, None)


def read_passphrase(prompt: str) -> str:
    """The save passphrase: from ``RELSEC_PASSPHRASE``, else asked for on the
    terminal (not echoed), else the first line of stdin."""
    given = take_passphrase_from_env()
    if given is not None:
        return given
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")


PASSPHRASE_TRIES = 3  # on a terminal, then relsec gives up with one sentence


def read_new_passphrase(path: Path) -> str | None:
    """A passphrase for saving to ``path`` that the save rules accept
    (core/save.py ``MIN_PASSPHRASE``): a refused one is asked again with
    one sentence on a terminal, typed twice for a new file. None after
    saying why on stderr (from the environment or stdin there is no asking
    again): the meeting then does not start, rather than start unsaved."""
    from .core.save import MIN_PASSPHRASE

    rule = (
        f"A save passphrase needs at least {MIN_PASSPHRASE} characters "
        "(a few words together are easy to remember)."
    )
    interactive = PASSPHRASE_ENV not in os.environ and sys.stdin.isatty()
    for _ in range(PASSPHRASE_TRIES if interactive else 1):
        passphrase = read_passphrase(f"Passphrase for {path}: ")
        if len(passphrase) < MIN_PASSPHRASE:
            print(f"relsec: {rule}" + (" Try again." if interactive else ""), file=sys.stderr)
            continue
        if interactive and not path.exists():
            import getpass

            if getpass.getpass("The same passphrase again: ") != passphrase:
                print("relsec: the two passphrases differ; type it again.", file=sys.stderr)
                continue
        return passphrase
    if not interactive:
        print("relsec: nothing was started, so nothing is saved.", file=sys.stderr)
    else:
        print("relsec: no passphrase was accepted, so nothing was started.", file=sys.stderr)
    return None


def read_resume_passphrase(path: Path) -> str | None:
    """The passphrase of the save at ``path``; on a terminal a wrong one is
    asked again with one sentence (the file is opened to check it, a second
    or so of Argon2id). None after saying why: nothing starts. From the
    environment or stdin it is passed on as given, and the app says if it
    does not open the file."""
    from .core.save import SaveError, WrongPassphrase
    from .net.files import SaveFile

    interactive = PASSPHRASE_ENV not in os.environ and sys.stdin.isatty()
    for _ in range(PASSPHRASE_TRIES if interactive else 1):
        passphrase = read_passphrase(f"Passphrase for {path}: ")
        if not interactive:
            return passphrase
        try:
            SaveFile.opened(path, passphrase)
        except WrongPassphrase:
            print(f"relsec: that passphrase does not open {path}; try again.", file=sys.stderr)
            continue
        except SaveError as exc:  # no such file, a damaged one: asking again will not help
            print(f"relsec: {exc}", file=sys.stderr)
            return None
        return passphrase
    print("relsec: no passphrase opened the save, so nothing was started.", file=sys.stderr)
    return None


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """--save and --resume (the passphrase: ``RELSEC_PASSPHRASE`` or asked for)."""
    parser.add_argument(
        "--save",
        metavar="FILE",
        help="keep an encrypted save of the meeting in FILE (passphrase: "
        f"${PASSPHRASE_ENV}, or asked for); nothing is written without this",
    )
    parser.add_argument(
        "--resume",
        metavar="FILE",
        help="carry on the meeting saved in FILE (same passphrase)",
    )


def _export(args: argparse.Namespace) -> int:
    from .core.record import roster_safety_number
    from .core.save import SaveError, restore_session
    from .core.template import TemplateError, parse_template
    from .net.files import SaveFile, export_record
    from .templates import template_for

    if not args.markdown and not args.json:
        print(
            "relsec: say where to write the record: --markdown OUT and/or --json OUT.",
            file=sys.stderr,
        )
        return 2
    passphrase = read_passphrase(f"Passphrase for {args.resume}: ")
    try:
        _, payload = SaveFile.opened(Path(args.resume), passphrase)
        state = restore_session(payload, lambda: 0).state
        template = None
        if payload.template:
            try:
                template = parse_template(payload.template, "the saved template")
            except TemplateError:
                template = None
        if template is None or not template.matches(state.steps):
            template = template_for(state)
        export_record(
            state,
            safety_number=roster_safety_number(state),
            template=template,
            markdown=Path(args.markdown) if args.markdown else None,
            json=Path(args.json) if args.json else None,
        )
    except SaveError as exc:  # the disk, a wrong passphrase, a damaged file: one sentence each
        print(f"relsec: {exc}", file=sys.stderr)
        return 2
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
        help=(
            "declare the facilitator absent, and a member away, after this long "
            "unreachable (default 15)"
        ),
    )
    parser.add_argument("--log-level", default="WARNING", help="log level on stderr")


def _peer(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from .headless import HeadlessPeer
    from .net.discovery import DiscoveryError, choose_interfaces
    from .net.node import Node, following

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
    endpoints = _peers(args)
    if endpoints is None:
        return 2

    def make_node(on_event: Any) -> Node:
        node = Node(
            interfaces=interfaces,
            port=args.port,
            on_event=on_event,
            absent_after_s=args.absent_after,
            use_mdns=not args.no_mdns,
            follow=following(args.interface),
        )
        for host, port in endpoints:
            node.add_endpoint(host, port)
        return node

    peer = HeadlessPeer(
        make_node,
        save=Path(args.save) if args.save else None,
        resume=Path(args.resume) if args.resume else None,
        passphrase=take_passphrase_from_env() if args.save or args.resume else None,
    )
    asyncio.run(peer.run())
    return 0


def _peers(args: argparse.Namespace) -> list[tuple[str, int]] | None:
    """``--peer HOST:PORT`` values, or None after saying which one is wrong."""
    endpoints = []
    for item in args.peer:
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            print(f"relsec: --peer {item!r} is not HOST:PORT, e.g. 10.0.0.5:7777.", file=sys.stderr)
            return None
        endpoints.append((host, int(port)))
    return endpoints


def _clear_terminal() -> None:
    """After the panic key: clear the screen and the scrollback."""
    sys.stdout.write("\x1b[2J\x1b[3J\x1b[H")
    sys.stdout.flush()


def _run_app(app: Any) -> int:
    from .app.app import EXIT_PANIC

    result = app.run()
    if result == EXIT_PANIC:
        _clear_terminal()
        return 0
    return 0 if result is None else int(result)


def _ui_logging(level: str) -> None:
    """Log lines go to Textual's log (devtools only), never over the screen."""
    import logging

    from textual.logging import TextualHandler

    logging.basicConfig(level=level.upper(), handlers=[TextualHandler()])


def _tui(args: argparse.Namespace, *, display_only: bool = False) -> int:
    from .app.app import RelsecApp
    from .app.network import NetworkOptions, node_factory

    endpoints = _peers(args)
    if endpoints is None:
        return 2
    _ui_logging(args.log_level)
    options = NetworkOptions(
        interface=args.interface,
        port=args.port,
        use_mdns=not args.no_mdns,
        peers=tuple(endpoints),
        absent_after=args.absent_after,
    )
    template = None
    if getattr(args, "template", None):
        from .templates import TemplateError, load_template

        try:
            template = (args.template, load_template(args.template))
        except TemplateError as exc:
            print(f"relsec: {exc}", file=sys.stderr)
            return 2
    save_to = resume_from = None
    if getattr(args, "resume", None):
        passphrase = read_resume_passphrase(Path(args.resume))
        if passphrase is None:
            return 2
        resume_from = (Path(args.resume), passphrase)
    if getattr(args, "save", None):
        if resume_from is not None and Path(args.save) == resume_from[0]:
            save_to = None  # resuming keeps that same file up to date
        else:
            passphrase = read_new_passphrase(Path(args.save))
            if passphrase is None:
                return 2
            save_to = (Path(args.save), passphrase)
    return _run_app(
        RelsecApp(
            node_factory(options),
            display_only=display_only,
            template=template,
            save_to=save_to,
            resume_from=resume_from,
        )
    )


def _display(args: argparse.Namespace) -> int:
    return _tui(args, display_only=True)


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from .demo import FAST_PACE_S, Demo, DemoHost, run_headless

    if args.export and not args.headless:
        print("relsec: --export goes with --headless (the record of the scripted run).",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.headless:
        return asyncio.run(run_headless(Path(args.export) if args.export else None))
    from .app.app import RelsecApp
    from .app.network import NetworkOptions, node_factory

    _ui_logging("WARNING")
    if args.fast:
        demo = DemoHost(Demo(pace=FAST_PACE_S, wait_for_you=False))
    else:
        demo = DemoHost(Demo(pace=args.pace))
    app = RelsecApp(node_factory(NetworkOptions(interface="127.0.0.1")), demo=demo)
    return _run_app(app)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relsec",
        description="Peer-to-peer meetings for one room on a shared LAN: signed, encrypted, "
        "with anonymous contributions and consensus votes. No server. "
        "With no command, relsec opens the app (the lobby).",
    )
    parser.add_argument("--version", action="version", version=f"relsec {__version__}")
    _add_network_options(parser)  # for the app itself: ``relsec`` with no command
    parser.add_argument(
        "--template",
        metavar="FILE",
        help="offer your group's own meeting process (a TOML file) in the lobby",
    )
    add_file_options(parser)
    parser.set_defaults(handler=_tui)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    display = commands.add_parser(
        "display", help="join as the room display: read-only, large type, for a projector"
    )
    _add_network_options(display)
    display.set_defaults(handler=_display)
    demo = commands.add_parser(
        "demo", help="a whole meeting on this machine: the app plus simulated members"
    )
    demo.add_argument("--headless", action="store_true", help="run the script with no UI")
    demo.add_argument(
        "--export", metavar="FILE", help="with --headless: write the record (.md or .json)"
    )
    demo.add_argument(
        "--pace", type=float, default=4.0, metavar="SECONDS", help="between actions (default 4)"
    )
    demo.add_argument(
        "--fast",
        action="store_true",
        help="run the script quickly and do not wait for your rating and vote (for tests)",
    )
    demo.set_defaults(handler=_demo)
    peer = commands.add_parser(
        "peer", help="run a node without the UI, driven by JSON lines on stdin (see README)"
    )
    _add_network_options(peer)
    add_file_options(peer)
    peer.set_defaults(handler=_peer)
    export = commands.add_parser(
        "export",
        help="write the record of a saved meeting as Markdown and/or JSON, offline",
    )
    export.add_argument("--resume", metavar="FILE", required=True, help="the encrypted save")
    export.add_argument("--markdown", metavar="OUT", help="write the record as Markdown to OUT")
    export.add_argument("--json", metavar="OUT", help="write the record as JSON to OUT")
    export.set_defaults(handler=_export)
    bench = commands.add_parser("bench", help="measure speed; print figures (JSON with --json)")
    bench.add_argument(
        "suite",
        choices=sorted(BENCH_SUITES),
        help="; ".join(f"{k}: {v}" for k, v in BENCH_SUITES.items()),
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--seconds", type=float, metavar="N", help="soak only: how long to run (default 600)"
    )
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
