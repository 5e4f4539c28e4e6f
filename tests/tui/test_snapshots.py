"""Snapshots of every screen at 80x24 (the smallest the app promises to be
usable at) and 120x40. Seeded keys, a fixed clock and a fixed join code make
every run draw the same pixels; look at a new SVG before accepting it."""

from __future__ import annotations

import pytest
from conftest import PROPOSAL, TEXT, Room, in_meeting

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.app.network import NetworkOptions, node_factory
from relsec_p2p.app.screens.lobby import LobbyScreen
from relsec_p2p.core.requests import AnonymousAnswer

SIZES = [(80, 24), (120, 40)]


def busy_room() -> Room:
    room = Room()
    ana, bo, cy, _di = (room.session(i) for i in range(4))
    ana.open_step(TEXT)
    room.net.settle()
    bo.contribute(TEXT, "One member talks for most of every meeting; others stop trying.",
                  tag="internal")  # fmt: skip
    cy.contribute(TEXT, "Our only funder relationship sits with one person.", tag="external")
    ana.contribute(TEXT, "Women and non-binary members come less and less often.")
    bo.raise_hand()
    room.net.settle()
    ana.next_speaker()
    cy.raise_hand()
    room.net.settle()
    return room


def polled_room() -> Room:
    room = busy_room()
    ana = room.session(0)
    ana.open_step(PROPOSAL)
    proposal = ana.propose(PROPOSAL, "Share the funder relationship among three members.")
    poll = ana.open_poll(proposal.hash)
    room.net.settle()
    for i, choice in enumerate(["agree", "concerns", "agree", "stand_aside"]):
        room.session(i).vote(poll.hash, choice)
    room.net.settle()
    ana.close_poll(poll.hash)
    room.net.settle()
    # One anonymous answer (one, so the shuffle cannot change what is drawn).
    room.session(3).submit_anonymous(
        AnonymousAnswer(PROPOSAL, "I agree but fear the funder's reaction.")
    )
    room.net.run_rounds(lambda: all(s.state.anonymous_contributions for s in room.net))
    room.net.settle()
    return room


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lobby(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    app = RelsecApp(node_factory(NetworkOptions(interface="127.0.0.1", use_mdns=False)))

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        while not isinstance(app.screen, LobbyScreen) or not app.screen.status:
            await pilot.pause(0.05)
        await pilot.press(*"Ana")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_meeting(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    room = busy_room()
    app = RelsecApp(room.factory)

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await in_meeting(app, pilot)
        await pilot.press("escape")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_poll(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    room = polled_room()
    app = RelsecApp(room.factory)

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await in_meeting(app, pilot)
        await pilot.press("escape", "k")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_display(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    room = polled_room()
    app = RelsecApp(room.factory)

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await in_meeting(app, pilot)
        await pilot.press("escape", "d")

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, size) -> None:  # type: ignore[no-untyped-def]
    room = busy_room()
    app = RelsecApp(room.factory)

    async def ready(pilot) -> None:  # type: ignore[no-untyped-def]
        await in_meeting(app, pilot)
        await pilot.press("escape", "f1")

    assert snap_compare(app, terminal_size=size, run_before=ready)
