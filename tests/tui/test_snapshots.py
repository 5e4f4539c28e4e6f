"""Snapshots of every screen at 80x24 (the smallest the app promises to be
usable at) and 120x40. Seeded keys, a fixed clock and a fixed join code make
every run draw the same pixels; look at a new SVG before accepting it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fakeroom import ANON_ONLY, NAMED_ONLY, PROPOSAL, RATING, TEXT, Room, in_meeting
from textual.pilot import Pilot

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.app.network import NetworkOptions, node_factory
from relsec_p2p.app.screens.lobby import LobbyScreen
from relsec_p2p.core.requests import AnonymousAnswer

# An app, and what to do with it before the picture is taken.
Case = tuple[RelsecApp, Callable[[Pilot[int]], Awaitable[None]]]

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


def step_room(step: int) -> Callable[[], Room]:
    """The busy room, then ``step`` opened (one snapshot per kind of step)."""

    def build() -> Room:
        room = busy_room()
        room.session(0).open_step(step)
        room.net.settle()
        return room

    return build


def open_poll_room() -> Room:
    """A poll still open, two of four voted: what the facilitator and the
    members see while it runs (the poll takes only the lines it needs)."""
    room = busy_room()
    ana = room.session(0)
    ana.open_step(PROPOSAL)
    room.net.settle()
    proposal = room.session(1).propose(
        PROPOSAL, "Share the funder relationship among three members, and rotate facilitation."
    )
    room.net.settle()
    poll = ana.open_poll(proposal.hash)
    room.net.settle()
    room.session(1).vote(poll.hash, "agree")
    room.session(2).vote(poll.hash, "concerns")
    room.net.settle()
    return room


def writing(build: Callable[[], Room]) -> Callable[[], Case]:
    """The meeting screen with two lines typed in the compose box (not sent)."""

    def case() -> Case:
        app = RelsecApp(build().factory)

        async def ready(pilot: Pilot[int]) -> None:
            await in_meeting(app, pilot)
            await pilot.press(*"A first line", "ctrl+j", *"and a second")

        return app, ready

    return case


def lobby() -> Case:
    app = RelsecApp(node_factory(NetworkOptions(interface="127.0.0.1", use_mdns=False)))

    async def ready(pilot: Pilot[int]) -> None:
        while not isinstance(app.screen, LobbyScreen) or not app.screen.status:
            await pilot.pause(0.05)
        await pilot.press(*"Ana")

    return app, ready


def meeting_then(build: Callable[[], Room], *keys: str) -> Callable[[], Case]:
    """The meeting screen over the room ``build`` makes, then ``keys`` pressed."""

    def case() -> Case:
        app = RelsecApp(build().factory)

        async def ready(pilot: Pilot[int]) -> None:
            await in_meeting(app, pilot)
            await pilot.press("escape", *keys)

        return app, ready

    return case


SCREENS: dict[str, Callable[[], Case]] = {
    "lobby": lobby,
    "meeting": meeting_then(busy_room),
    "writing": writing(busy_room),
    "named-step": meeting_then(step_room(NAMED_ONLY), "k"),
    "rating-step": meeting_then(step_room(RATING), "k"),
    "anonymous-step": meeting_then(step_room(ANON_ONLY), "k"),
    "proposal-step": meeting_then(step_room(PROPOSAL), "k"),
    "poll-open": meeting_then(open_poll_room, "k"),
    "poll": meeting_then(polled_room, "k"),
    "folded": meeting_then(busy_room, "k", "g", "m"),
    "display": meeting_then(polled_room, "d"),
    "help": meeting_then(busy_room, "f1"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, ready = SCREENS[screen]()
    assert snap_compare(app, terminal_size=size, run_before=ready)
