"""Typed errors under one root, split by side (as h11 does).

Rules of this file:
- Every error relsec raises on purpose is a ``RelsecError``, and is on exactly
  one side: a ``LocalError`` (this laptop: never comes from the network) or a
  ``RemoteError`` (someone else: a peer or the network). Nothing is raised as
  a bare side class; ``tests/unit/test_errors.py`` walks every exception class
  of the package and checks it is under one side.
- ``LocalError`` splits by whose mistake it is:
  - ``LocalProtocolError``: this program asked the core for something the
    rules forbid (a bad argument, an action the local member may not take).
    It is a bug or a user mistake caught by our own code's API. When the
    fold's rules refuse it, it is an ``EntryRefused`` that carries the rule's
    stable ``Refusal`` code (core/refusals.py): front ends word it by code.
  - a person's input or this laptop's environment, each ``str()`` one plain
    sentence saying what to do: ``core.save.SaveError`` (a disk problem, a
    wrong passphrase, a damaged file, another meeting's file),
    ``core.template.TemplateError`` (a template file that cannot be used),
    ``core.joincode.BadJoinCode`` (a typed join code that is not a code),
    ``net.discovery.DiscoveryError`` (the network interfaces cannot be used).
- ``RemoteError`` splits by what the other side did:
  - ``RemoteProtocolError``: bytes that arrived from someone else are
    malformed, oversized, forged, replayed or out of the roster. The input is
    dropped and nothing already accepted changes. Each subclass has a stable
    ``code`` that the spec (protocol/SPEC.md §8) and the test vectors name.
  - ``net.link.LinkClosed``: the peer (or the network) ended a connection;
    no bytes were wrong, so it is not a protocol error.
- Classes live beside the code that raises them; the sides and the
  ``RemoteProtocolError`` codes of the wire live here.
"""

from __future__ import annotations

from .refusals import Refusal, Refused


class RelsecError(Exception):
    """Base of every error relsec raises on purpose."""

    code = "error"


class LocalError(RelsecError):
    """This laptop's side: our own code's misuse, a person's input or this
    laptop's environment; never something a peer sent."""


class LocalProtocolError(LocalError):
    """The local program misused the core API."""

    code = "local"


class EntryRefused(LocalProtocolError):
    """A local action the fold's rules would ignore, so it was never written.

    ``code`` is the rule's stable ``Refusal``; ``text`` (also ``str()``) the
    words given with it."""

    code: Refusal

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.text)
        self.code = refused.code
        self.text = refused.text


class RemoteError(RelsecError):
    """The other side's: what a peer sent, or a peer going away."""


class RemoteProtocolError(RemoteError):
    """Input from the network broke the protocol; it was dropped."""

    code = "remote"


# --- framing and encoding -------------------------------------------------


class FrameTooLarge(RemoteProtocolError):
    code = "frame_too_large"


class MalformedFrame(RemoteProtocolError):
    """Not valid msgpack, a wrong shape, a wrong type or a field out of range."""

    code = "malformed"


class LimitExceeded(MalformedFrame):
    """A string, bytes, list, map or nesting depth beyond the stated limits."""

    code = "limit_exceeded"


class NonCanonical(MalformedFrame):
    """Valid msgpack, but not the one canonical encoding of its value."""

    code = "non_canonical"


class UnsupportedVersion(RemoteProtocolError):
    code = "unsupported_version"


# --- feed entries ---------------------------------------------------------


class WrongMeeting(RemoteProtocolError):
    code = "wrong_meeting"


class UnknownAuthor(RemoteProtocolError):
    """The author is not a member the fold has added (SPEC §3.3)."""

    code = "unknown_author"


class BadSignature(RemoteProtocolError):
    code = "bad_signature"


class BrokenChain(RemoteProtocolError):
    """``prev`` does not hash-link to the author's previous entry."""

    code = "broken_chain"


class BadClock(RemoteProtocolError):
    """The entry's Lamport clock is not the one its ``prev`` and ``deps``
    make it (SPEC §3.3 step 5.4): clocks are computed, not chosen."""

    code = "bad_clock"


class FrozenFeed(RemoteProtocolError):
    """The author equivocated; their feed accepts nothing at or after the fork."""

    code = "frozen_feed"


class BufferFull(RemoteProtocolError):
    """Entries waiting for a predecessor or a dependency beyond the gap
    buffer's bound are refused (SPEC §3.4)."""

    code = "buffer_full"


class HoldFull(RemoteProtocolError):
    """Entries of a key not known yet beyond the hold's bound (SPEC §3.3):
    refused, or the oldest held one evicted; sync brings them again once
    their author is known."""

    code = "hold_full"


class BadForkProof(RemoteProtocolError):
    code = "bad_fork_proof"


# --- joining --------------------------------------------------------------


class JoinError(LocalError):
    """Joining a meeting failed (a wrong code, nobody answered, the meeting
    did not arrive); ``str()`` is one plain sentence for the person joining."""

    code = "join"
