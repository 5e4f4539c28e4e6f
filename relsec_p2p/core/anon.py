"""What travels inside an anonymous slot: a contribution, a rating, a vote or
a pause request, as one canonical msgpack map (SPEC §13.3).

Rules of this file:
- Every slot of a round has the same size, ``slot_size(n)``: room for a
  ring signature over n keys plus a fixed text budget. Text that does not
  fit is refused with a sentence saying by how much, never cut.
- Votes and ratings carry a linkable ring signature (``core.ring``) over the
  round's participants, bound to the meeting, the round id and the choice, so
  a vote cannot be replayed into another round and one member counts once.
- Building a slot always costs exactly one ring signature, whatever it holds
  (a dummy signs a throwaway message), so how long a laptop takes to submit
  does not show whether it has something to say.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

from . import ring
from .codec import Limits, pack, unpack
from .errors import LocalProtocolError, RemoteProtocolError
from .feed import HASH_BYTES
from .shuffle import pad

SLOT_TEXT_BYTES = 1024  # the part of every slot not taken by a ring signature
TEXT_CAPACITY = 1000  # UTF-8 bytes of text that always fit (checked in tests)
NONCE_BYTES = 8  # two members who say the same words still make two items
ITEM_LIMITS = Limits(max_bytes=64 * 1024, max_depth=2, max_str=4096, max_bin=16 * 1024)
VOTE_LABEL = "relsec/v1/anon-vote"
RATING_LABEL = "relsec/v1/anon-rating"
RATING_EVENT_LABEL = b"relsec/v1/anon-rating-event\x00"
COVER_EVENT = b"relsec/v1/anon-cover"


def slot_size(participants: int) -> int:
    """Bytes of every slot in a round of ``participants``."""
    return SLOT_TEXT_BYTES + ring.signature_size(participants)


def vote_message(mid: bytes, rid: bytes, poll: bytes, choice: str) -> bytes:
    """What an anonymous vote's ring signature covers; the event is the poll id."""
    return pack([VOTE_LABEL, mid, rid, poll, choice])


def rating_message(mid: bytes, rid: bytes, step: int, ref: bytes | None, value: int) -> bytes:
    return pack([RATING_LABEL, mid, rid, step, ref, value])


def rating_event(mid: bytes, step: int, ref: bytes | None) -> bytes:
    """One event per rated thing (a step, or a contribution within it), so a
    member's anonymous ratings of different things cannot be linked."""
    return hashlib.blake2b(
        RATING_EVENT_LABEL + pack([mid, step, ref]), digest_size=HASH_BYTES
    ).digest()


def ring_of(ring_keys: Sequence[bytes]) -> list[bytes]:
    """The ring of a round: its participants' ring keys, sorted by bytes."""
    return sorted(ring_keys)


def encode_item(
    intent: dict[str, Any] | None,
    *,
    mid: bytes,
    rid: bytes,
    ring_keys: Sequence[bytes],
    secret: bytes,
) -> bytes:
    """The packed item for ``intent`` (empty for a dummy), with its ring
    signature where the kind has one. Exactly one ring signature is made."""
    keys = ring_of(ring_keys)
    kind = None if intent is None else intent.get("kind")
    if kind == "vote":
        assert intent is not None  # noqa: S101 (kind came from it)
        poll, choice = intent["poll"], intent["choice"]
        signature = ring.sign(vote_message(mid, rid, poll, choice), keys, secret, poll)
        return pack({"k": "vote", "poll": poll, "choice": choice, "sig": signature})
    if kind == "rating":
        assert intent is not None  # noqa: S101
        step, ref, value = intent["step"], intent.get("ref"), intent["value"]
        signature = ring.sign(
            rating_message(mid, rid, step, ref, value), keys, secret, rating_event(mid, step, ref)
        )
        return pack(
            {"k": "rating", "step": step, "ref": ref, "value": value, "sig": signature}
        )
    # Cover: the same work as a vote, thrown away.
    ring.sign(os.urandom(32), keys, secret, COVER_EVENT)
    if kind == "contrib":
        assert intent is not None  # noqa: S101
        nonce = os.urandom(NONCE_BYTES)
        return pack({"k": "contrib", "n": nonce, "step": intent["step"], "text": intent["text"]})
    if kind == "pause":
        return pack({"k": "pause", "n": os.urandom(NONCE_BYTES)})
    if kind is None:
        return b""
    raise LocalProtocolError(f"unknown anonymous item kind {kind!r}")


def build_slot(
    intent: dict[str, Any] | None,
    *,
    mid: bytes,
    rid: bytes,
    ring_keys: Sequence[bytes],
    secret: bytes,
) -> bytes:
    """The padded slot this laptop submits in round ``rid``."""
    item = encode_item(intent, mid=mid, rid=rid, ring_keys=ring_keys, secret=secret)
    return pad(item, slot_size(len(ring_keys)))


def text_overflow(text: str) -> int:
    """How many UTF-8 bytes ``text`` is over the slot's text capacity (0 if it fits)."""
    return max(0, len(text.encode("utf-8")) - TEXT_CAPACITY)


_SHAPES: dict[str, tuple[str, ...]] = {
    "contrib": ("k", "n", "step", "text"),
    "rating": ("k", "ref", "sig", "step", "value"),
    "vote": ("choice", "k", "poll", "sig"),
    "pause": ("k", "n"),
}


def decode_item(raw: bytes) -> dict[str, Any] | None:
    """An item's fields if ``raw`` is a well-formed item, else None. Values
    are checked by the fold (SPEC §13.4), which knows the meeting."""
    try:
        item = unpack(raw, ITEM_LIMITS)
    except RemoteProtocolError:
        return None
    if not isinstance(item, dict):
        return None
    shape = _SHAPES.get(str(item.get("k")))
    if shape is None or tuple(item) != shape:
        return None
    return item


__all__ = [
    "TEXT_CAPACITY",
    "build_slot",
    "decode_item",
    "encode_item",
    "rating_event",
    "rating_message",
    "ring_of",
    "slot_size",
    "text_overflow",
    "vote_message",
]
