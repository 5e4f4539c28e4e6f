"""The room the Textual app tests run in: a real app over a real Node whose
Session sits in an in-memory room (``fakenet``), so the other members act in
milliseconds and every run looks the same (seeded keys, fixed clock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fakenet import IDENTITIES, FakeNetwork

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.core.events import MeetingChanged
from relsec_p2p.core.joincode import JoinCode
from relsec_p2p.core.requests import AnonymousRequest
from relsec_p2p.core.session import Session
from relsec_p2p.net.node import Node

TEXT, NAMED_ONLY, RATING, PROPOSAL, ANON_ONLY, SECRET_BALLOT = range(6)
AGENDA: list[dict[str, Any]] = [
    {"id": "threats", "title": "Threats", "prompt": "What threatens the group or the people "
     "in it right now? Describe each threat on its own.", "mode": "both", "kind": "text"},
    {"id": "impacts", "title": "Negative impacts", "prompt": "What harm could each threat do?",
     "mode": "named", "kind": "text"},
    {"id": "safety", "title": "How safe do you feel?", "prompt": "How safe do you feel here?",
     "mode": "named", "kind": "rating", "scale": ["not safe", "somewhat", "safe"],
     "links": ["threats"]},
    {"id": "way", "title": "The way forward", "prompt": "Propose a way forward.",
     "mode": "both", "kind": "proposal"},
    {"id": "unsaid", "title": "Unsaid", "prompt": "What is hard to say aloud?",
     "mode": "anonymous", "kind": "text"},
    {"id": "ballot", "title": "Secret ballot", "prompt": "Propose; the poll is anonymous.",
     "mode": "anonymous", "kind": "proposal"},
]  # fmt: skip
CODE = JoinCode(42, ("harbor", "velvet", "orbit"))


class RoomNode(Node):
    """A real Node whose Session lives in the fake room: it does not listen or
    tick on its own (the room moves its messages and keeps its time)."""

    async def start(self) -> None:
        return None


class AnonymousNode(RoomNode):
    """Anonymous items go to the Session's real shuffle rounds (as the Node's
    own ``submit_anonymous`` will), and are recorded for the test to read."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submitted: list[AnonymousRequest] = []

    def submit_anonymous(self, request: AnonymousRequest) -> None:
        assert self.session is not None
        self.session.submit_anonymous(request)
        self.submitted.append(request)

    def anonymous_capacity(self) -> int:
        assert self.session is not None
        return self.session.anonymous_capacity()


class Room:
    """Four members in a fake room; ``node`` is the laptop the app runs on."""

    def __init__(self, seat: int = 0, node_class: type[Node] = RoomNode, members: int = 4) -> None:
        self.net = FakeNetwork.meeting(members, agenda=AGENDA)
        creator = self.net[0]
        creator.set_join_code(CODE.nameplate, CODE.words)
        self.net.settle()
        self.seat = seat
        self.node_class = node_class
        self.node: Node | None = None
        self.on_event: Callable[[Any], None] | None = None

    def session(self, index: int) -> Session:
        return self.net[index]

    def factory(self, on_event: Callable[[Any], None]) -> Node:
        node = self.node_class(
            interfaces=["127.0.0.1"],
            identity=IDENTITIES[self.seat],
            on_event=on_event,
            use_mdns=False,
            clock=self.net.clock,
        )
        node.session = self.net[self.seat]
        self.node, self.on_event = node, on_event
        return node

    def changed(self) -> None:
        """Say to the app what its node says once frames have come in: the
        room hands them to the node's Session itself, past the node."""
        assert self.on_event is not None
        self.on_event(MeetingChanged())

    def settle(self, app: RelsecApp) -> None:
        """Let the room exchange everything, then tell the app it changed."""
        self.net.settle()
        self.changed()

    def run_rounds(self, app: RelsecApp, until: Callable[[], bool]) -> None:
        """Let anonymous rounds run in the room until ``until()``, then tell the app."""
        self.net.run_rounds(until)
        self.net.settle()
        self.changed()


async def in_meeting(app: RelsecApp, pilot: Any) -> None:
    """From the lobby straight to the meeting screen (the node is already in)."""
    await pilot.pause()
    app.enter_meeting()
    await pilot.pause()


def open_step(room: Room, step: int) -> None:
    room.session(0).open_step(step)
    room.net.settle()
