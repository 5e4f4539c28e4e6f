"""App-wide messages: what the node and the workers tell the UI.

Rules of this file: the node's callback only posts these (it runs inside the
node's code and must return at once). High-rate ones replace each other
while queued (``can_replace``), so a burst of a thousand entries costs one
redraw, not a thousand.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


class RedrawMeeting(Message, bubble=False):
    """Draw the meeting again from the node's state: the node said it changed
    (``core.events.MeetingChanged``)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RedrawMeeting)


class LinksChanged(Message, bubble=False):
    """A link to a member came up or went down."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LinksChanged)


@dataclass
class NotCounted(Message, bubble=False):
    """Something this person sent stopped counting (another entry sorted
    before it): one sentence for their screen."""

    sentence: str


@dataclass
class NodeReady(Message, bubble=False):
    """The node listens (and browses, unless mDNS is off)."""


@dataclass
class NetworkProblem(Message, bubble=False):
    """Something about the network stops relsec working as asked."""

    sentence: str


@dataclass
class Joined(Message, bubble=False):
    """This laptop is now a member of the meeting it asked to join."""


@dataclass
class JoinFailed(Message, bubble=False):
    sentence: str


@dataclass
class DemoNote(Message, bubble=False):
    """A line of narration from ``relsec demo``'s script."""

    text: str


@dataclass
class DemoCode(Message, bubble=False):
    """The demo's simulated facilitator started a meeting with this code."""

    code: str


@dataclass
class SaveProblem(Message, bubble=False):
    """The save asked for cannot be made (``fatal``: at start) or an
    automatic save failed; ``sentence`` is for the person."""

    sentence: str
    fatal: bool = False
