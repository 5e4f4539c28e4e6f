"""The ``relsec`` command.

Rules of this file: parse arguments, call into the package, print. A user's
mistake gets one plain sentence on stderr and exit status 2, never a traceback.
Every sentence and help text goes through gettext (core/i18n.py): the
language is chosen (``--lang``, else the environment) before the parser is
built, so ``relsec --lang es --help`` is in Spanish too.
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
from .core.i18n import (
    LANGUAGES,
    N_,
    CatalogMissing,
    _,
    language_from_environment,
    set_language,
)

BENCH_SUITES: dict[str, str] = {
    "core": N_("decode, verify, append and fold 10 000 entries from 20 authors"),
    "net": N_("real peer processes on loopback: join time, fan-out latency, late-joiner sync"),
    "ui": N_("apply and render 1 000 contributions; key press to screen update (Pilot)"),
    "anon": N_("anonymous shuffle rounds: round time for 5, 10, 30 peers; ring signatures"),
    "soak": N_(
        "10 peers in network namespaces for --seconds (default 600; needs root) under "
        "churn, a partition and 1 packet in 10 lost: nothing lost, memory per 1 000 actions"
    ),
}


def _bench(args: argparse.Namespace) -> int:
    runner: Callable[..., dict[str, Any]]
    if args.seconds is not None and args.suite != "soak":
        print("relsec: " + _("only the soak suite takes --seconds."), file=sys.stderr)
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
            reason = _("Give the soak at least {n} seconds (--seconds).").format(n=soak.MIN_SECONDS)
        if reason is not None:
            print(f"relsec: {reason}", file=sys.stderr)
            return 2

        def runner() -> dict[str, Any]:
            return soak.run(seconds)
    else:  # argparse restricts the choices; this guards a new suite without a runner
        print(
            "relsec: " + _("no benchmark suite called {name!r}.").format(name=args.suite),
            file=sys.stderr,
        )
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

    interactive = PASSPHRASE_ENV not in os.environ and sys.stdin.isatty()
    if interactive:
        rule = _(
            "A save passphrase needs at least {count} characters (a few words together "
            "are easy to remember). Try again."
        )
    else:
        rule = _(
            "A save passphrase needs at least {count} characters (a few words together "
            "are easy to remember)."
        )
    for _attempt in range(PASSPHRASE_TRIES if interactive else 1):
        passphrase = read_passphrase(_("Passphrase for {file}: ").format(file=path))
        if len(passphrase) < MIN_PASSPHRASE:
            print(f"relsec: {rule.format(count=MIN_PASSPHRASE)}", file=sys.stderr)
            continue
        if interactive and not path.exists():
            import getpass

            if getpass.getpass(_("The same passphrase again: ")) != passphrase:
                print("relsec: " + _("the two passphrases differ; type it again."), file=sys.stderr)
                continue
        return passphrase
    if not interactive:
        print("relsec: " + _("nothing was started, so nothing is saved."), file=sys.stderr)
    else:
        print(
            "relsec: " + _("no passphrase was accepted, so nothing was started."), file=sys.stderr
        )
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
    for _attempt in range(PASSPHRASE_TRIES if interactive else 1):
        passphrase = read_passphrase(_("Passphrase for {file}: ").format(file=path))
        if not interactive:
            return passphrase
        try:
            SaveFile.opened(path, passphrase)
        except WrongPassphrase:
            print(
                "relsec: "
                + _("that passphrase does not open {file}; try again.").format(file=path),
                file=sys.stderr,
            )
            continue
        except SaveError as exc:  # no such file, a damaged one: asking again will not help
            print(f"relsec: {exc}", file=sys.stderr)
            return None
        return passphrase
    print("relsec: " + _("no passphrase opened the save, so nothing was started."), file=sys.stderr)
    return None


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """--save and --resume (the passphrase: ``RELSEC_PASSPHRASE`` or asked for)."""
    parser.add_argument(
        "--save",
        metavar="FILE",
        help=_(
            "keep an encrypted save of the meeting in FILE (passphrase: ${variable}, or asked "
            "for); nothing is written without this"
        ).format(variable=PASSPHRASE_ENV),
    )
    parser.add_argument(
        "--resume",
        metavar="FILE",
        help=_("carry on the meeting saved in FILE (same passphrase)"),
    )


def _export(args: argparse.Namespace) -> int:
    from .core.record import roster_safety_number
    from .core.save import SaveError, restore_session
    from .core.template import TemplateError, parse_template
    from .net.files import SaveFile, export_record
    from .templates import template_for

    if not args.markdown and not args.json:
        print(
            "relsec: " + _("say where to write the record: --markdown OUT and/or --json OUT."),
            file=sys.stderr,
        )
        return 2
    passphrase = read_passphrase(_("Passphrase for {file}: ").format(file=args.resume))
    try:
        _header, payload = SaveFile.opened(Path(args.resume), passphrase)
        state = restore_session(payload, lambda: 0).state
        template = None
        if payload.template:
            try:
                template = parse_template(payload.template, _("the saved template"))
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
        help=_("network interface name or IPv4 address to use (default: the LAN interface)"),
    )
    parser.add_argument(
        "--port", type=int, default=0, help=_("TCP port to listen on (default: any)")
    )
    parser.add_argument(
        "--no-mdns", action="store_true", help=_("do not use zeroconf; dial --peer addresses only")
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help=_("also dial this address (repeatable)"),
    )
    parser.add_argument(
        "--absent-after",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help=_(
            "declare the facilitator absent, and a member away, after this long "
            "unreachable (default 15)"
        ),
    )
    parser.add_argument("--log-level", default="WARNING", help=_("log level on stderr"))


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
        host, _colon, port = item.rpartition(":")
        if not host or not port.isdigit():
            print(
                "relsec: "
                + _("--peer {value!r} is not HOST:PORT, e.g. 10.0.0.5:7777.").format(value=item),
                file=sys.stderr,
            )
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
        print(
            "relsec: " + _("--export goes with --headless (the record of the scripted run)."),
            file=sys.stderr,
        )
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
        description=_(
            "Peer-to-peer meetings for one room on a shared LAN: signed, encrypted, "
            "with anonymous contributions and consensus votes. No server. "
            "With no command, relsec opens the app (the lobby)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"relsec {__version__}")
    _add_language_option(parser, top=True)
    _add_network_options(parser)  # for the app itself: ``relsec`` with no command
    parser.add_argument(
        "--template",
        metavar="FILE",
        help=_("offer your group's own meeting process (a TOML file) in the lobby"),
    )
    add_file_options(parser)
    parser.set_defaults(handler=_tui)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    display = commands.add_parser(
        "display", help=_("join as the room display: read-only, large type, for a projector")
    )
    _add_language_option(display)
    _add_network_options(display)
    display.set_defaults(handler=_display)
    demo = commands.add_parser(
        "demo", help=_("a whole meeting on this machine: the app plus simulated members")
    )
    _add_language_option(demo)
    demo.add_argument("--headless", action="store_true", help=_("run the script with no UI"))
    demo.add_argument(
        "--export", metavar="FILE", help=_("with --headless: write the record (.md or .json)")
    )
    demo.add_argument(
        "--pace", type=float, default=4.0, metavar="SECONDS", help=_("between actions (default 4)")
    )
    demo.add_argument(
        "--fast",
        action="store_true",
        help=_("run the script quickly and do not wait for your rating and vote (for tests)"),
    )
    demo.set_defaults(handler=_demo)
    peer = commands.add_parser(
        "peer", help=_("run a node without the UI, driven by JSON lines on stdin (see README)")
    )
    _add_language_option(peer)
    _add_network_options(peer)
    add_file_options(peer)
    peer.set_defaults(handler=_peer)
    export = commands.add_parser(
        "export",
        help=_("write the record of a saved meeting as Markdown and/or JSON, offline"),
    )
    _add_language_option(export)
    export.add_argument("--resume", metavar="FILE", required=True, help=_("the encrypted save"))
    export.add_argument("--markdown", metavar="OUT", help=_("write the record as Markdown to OUT"))
    export.add_argument("--json", metavar="OUT", help=_("write the record as JSON to OUT"))
    export.set_defaults(handler=_export)
    bench = commands.add_parser("bench", help=_("measure speed; print figures (JSON with --json)"))
    bench.add_argument(
        "suite",
        choices=sorted(BENCH_SUITES),
        help="; ".join(f"{k}: {_(v)}" for k, v in BENCH_SUITES.items()),
    )
    bench.add_argument("--json", action="store_true", help=_("print one JSON object"))
    bench.add_argument(
        "--seconds", type=float, metavar="N", help=_("soak only: how long to run (default 600)")
    )
    bench.set_defaults(handler=_bench)
    return parser


def _add_language_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--lang``, before or after the command (``relsec --lang es demo``,
    ``relsec export --lang pt ...``); main() reads it before parsing."""
    parser.add_argument(
        "--lang",
        metavar="LANG",
        default=None if top else argparse.SUPPRESS,
        help=_("the language to show: {languages} (default: from LANGUAGE, LC_ALL or LANG)").format(
            languages=", ".join(LANGUAGES)
        ),
    )


def language_argument(argv: Sequence[str]) -> str | None:
    """The last ``--lang X`` or ``--lang=X`` in ``argv``, read before the
    parser is built so its help is in that language."""
    found = None
    for index, word in enumerate(argv):
        if word == "--":
            break
        if word == "--lang" and index + 1 < len(argv):
            found = argv[index + 1]
        elif word.startswith("--lang="):
            found = word.split("=", 1)[1]
    return found


def choose_language(argv: Sequence[str]) -> bool:
    """Show the language ``--lang`` names, else the environment's. False
    (after one sentence on stderr) when ``--lang`` names one that cannot be
    shown; a language from the environment without a catalog falls back to
    English, saying so."""
    asked = language_argument(argv)
    try:
        set_language(asked if asked is not None else language_from_environment())
    except CatalogMissing as exc:
        print(f"relsec: {exc}", file=sys.stderr)
        if asked is not None:
            return False
        set_language("en")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if not choose_language(arguments):
        return 2
    parser = build_parser()
    args = parser.parse_args(arguments)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
