"""What a Session reports to the layer that drives it (as h11's events).

Rules of this file: events are small frozen dataclasses; they carry ids and
kinds, never contribution text or key material beyond public keys, so they
can be logged safely (``__str__`` is the log line).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import (
    BadForkProof,
    BadSignature,
    MalformedFrame,
    RemoteProtocolError,
    WrongMeeting,
)
from .places import PlacesHeard
from .refusals import Refused


def short(key: bytes) -> str:
    """A short public-key fingerprint for logs and diagnostics."""
    return key[:4].hex()


@dataclass(frozen=True, slots=True)
class Send:
    """Payload (one frame's content) the driver must deliver to ``peer``."""

    peer: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class EntryAccepted:
    author: bytes
    seq: int
    type: str
    hash: bytes

    def __str__(self) -> str:
        return f"accepted {self.type} {short(self.author)}#{self.seq}"


@dataclass(frozen=True, slots=True)
class ForkDetected:
    author: bytes
    seq: int

    def __str__(self) -> str:
        return f"fork: {short(self.author)} signed two entries at seq {self.seq}; feed frozen"


@dataclass(frozen=True, slots=True)
class InputRejected:
    """Input from ``peer`` broke the protocol and was dropped."""

    peer: bytes
    error: RemoteProtocolError

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def fatal(self) -> bool:
        """The link should be dropped: the frame was malformed, or it carried
        something no honest member relays (a forged signature, another
        meeting's data, a false fork proof: every laptop checks before it
        stores or passes anything on)."""
        return isinstance(self.error, MalformedFrame | BadSignature | WrongMeeting | BadForkProof)

    def __str__(self) -> str:
        return f"rejected from {short(self.peer)}: {self.error.code}: {self.error}"


@dataclass(frozen=True, slots=True)
class MeetingChanged:
    """The folded meeting may differ from before; read ``Session.state``."""

    def __str__(self) -> str:
        return "meeting changed"


@dataclass(frozen=True, slots=True)
class OwnEntryIgnored:
    """One of this laptop's own entries has no effect: another entry sorted
    before it (SPEC §5.2, §9 "Finality"). Its author must be told."""

    entry: bytes  # the entry's hash
    type: str
    refused: Refused

    def __str__(self) -> str:
        return f"own {self.type} {self.entry[:4].hex()} ignored: {self.refused.code}"


Event = (
    EntryAccepted | ForkDetected | InputRejected | MeetingChanged | OwnEntryIgnored | PlacesHeard
)
