"""A room for the grid, rating and decision tests: threats, two anonymous
rating steps about them (a likelihood x impact grid), attached impacts and
a way forward, in a real meeting of four on the in-memory network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fakenet import FakeNetwork
from fakeroom import CODE, Room, RoomNode

from relsec_p2p.core.requests import AnonymousRating
from relsec_p2p.net.node import Node

THREATS, IMPACTS, LIKELY, HURT, WAY = range(5)
LIKELY_SCALE = ["very unlikely", "unlikely", "possible", "likely", "almost certain"]
HURT_SCALE = ["minor", "moderate", "serious", "severe", "devastating"]
GRID_AGENDA: list[dict[str, Any]] = [
    {"id": "threats", "title": "Threats", "prompt": "What threatens the group?",
     "mode": "both", "kind": "text"},
    {"id": "impacts", "title": "Negative impacts", "prompt": "What harm could each do?",
     "mode": "both", "kind": "text", "links": ["threats"]},
    {"id": "likelihood", "title": "How likely", "prompt": "How likely is each threat?",
     "mode": "anonymous", "kind": "rating", "scale": LIKELY_SCALE, "links": ["threats"]},
    {"id": "severity", "title": "How much would it hurt", "prompt": "How much would it hurt?",
     "mode": "anonymous", "kind": "rating", "scale": HURT_SCALE, "links": ["threats"]},
    {"id": "way", "title": "The way forward", "prompt": "Propose a way forward.",
     "mode": "both", "kind": "proposal", "links": ["threats"]},
]  # fmt: skip
THREAT_TEXTS = [
    "One member talks for most of every meeting; others stop trying.",
    "Our only funder relationship sits with one person.",
    "Women and non-binary members come less and less often.",
]


class GridRoom(Room):
    """Four members (Ana facilitates) in a meeting with ``GRID_AGENDA``."""

    def __init__(self, seat: int = 0) -> None:  # Room's, with this agenda
        self.net = FakeNetwork.meeting(4, agenda=GRID_AGENDA)
        self.net[0].set_join_code(CODE.nameplate, CODE.words)
        self.net.settle()
        self.seat = seat
        self.node_class: type[Node] = RoomNode
        self.node: Node | None = None
        self.on_event: Callable[[Any], None] | None = None


def threats_named(room: Room) -> list[bytes]:
    """Three threats (two tagged) and an impact attached to the first; their ids."""
    ana, bo, cy = (room.session(i) for i in range(3))
    ana.open_step(THREATS)
    room.net.settle()
    ids = [
        bo.contribute(THREATS, THREAT_TEXTS[0], tag="internal").hash,
        cy.contribute(THREATS, THREAT_TEXTS[1], tag="external").hash,
        ana.contribute(THREATS, THREAT_TEXTS[2]).hash,
    ]
    room.net.settle()
    ana.open_step(IMPACTS)
    room.net.settle()
    cy.contribute(IMPACTS, "People stop coming and the work stalls.", ref=ids[0])
    room.net.settle()
    return ids


def rate_all(room: Room, step: int, ids: list[bytes], values: dict[int, list[int]]) -> None:
    """Members 1.. rate each threat anonymously (``values[seat][threat]``),
    and the rounds run until every rating is in."""
    room.session(0).open_step(step)
    room.net.settle()
    want = 0
    for seat, given in values.items():
        for ref, value in zip(ids, given, strict=True):
            room.session(seat).submit_anonymous(AnonymousRating(step, value, ref))
            want += 1

    def all_in() -> bool:
        return all(
            sum(len(v) for (s, _r), v in session.state.anonymous_ratings.items() if s == step)
            == want
            for session in room.net
        )

    room.net.run_rounds(all_in)
    room.net.settle()


def rated_room() -> GridRoom:
    """Threats rated on both scales by three members: threat 1 and 2 placed,
    threat 3 rated by only two on the second scale (left out)."""
    room = GridRoom()
    ids = threats_named(room)
    rate_all(room, LIKELY, ids, {1: [3, 1, 2], 2: [3, 2, 2], 3: [4, 1, 2]})
    rate_all(room, HURT, ids, {1: [3, 4, 1], 2: [2, 4, 1], 3: [3, 3, 1]})
    return room


def decided_room() -> GridRoom:
    """A poll in the way forward closed with consensus and its outcome
    recorded; then the facilitator opens the impacts step again."""
    room = GridRoom()
    threats_named(room)
    ana = room.session(0)
    ana.open_step(WAY)
    proposal = ana.propose(WAY, "Rotate facilitation [1.1] and share the funder contact.")
    poll = ana.open_poll(proposal.hash)
    room.net.settle()
    for seat, choice in enumerate(["agree", "agree", "concerns", "agree"]):
        room.session(seat).vote(poll.hash, choice)
    room.net.settle()
    ana.close_poll(poll.hash)
    room.net.settle()
    ana.record_outcome(poll.hash, "We rotate from the next meeting.")
    room.net.settle()
    ana.open_step(IMPACTS)
    room.net.settle()
    return room


def polled_with_reasons() -> GridRoom:
    """A poll open in the way forward, with a concern and a block that say why."""
    room = GridRoom()
    threats_named(room)
    ana = room.session(0)
    ana.open_step(WAY)
    proposal = ana.propose(WAY, "Rotate facilitation [1.1] and share the funder contact.")
    poll = ana.open_poll(proposal.hash)
    room.net.settle()
    room.session(1).vote(poll.hash, "concerns", reason="Rotation needs training first.")
    room.session(2).vote(poll.hash, "block", reason="The funder asked for one contact.")
    room.session(3).vote(poll.hash, "agree")
    room.net.settle()
    return room
