"""Anonymous shuffle rounds: what fixes a round, what its members sign, how it ends.

The construction is the verifiable shuffle of Brickell and Shmatikov ("Efficient
anonymity-preserving data collection", KDD 2006, §4) as Dissent v1 runs it
(Corrigan-Gibbs and Ford, "Dissent: accountable anonymous group messaging",
CCS 2010, §3): every participant submits one fixed-size slot wrapped in N inner
and N outer sealed layers under fresh per-round keys; the participants, in
roster order, each peel one outer layer and shuffle; everyone checks that its
own inner ciphertext came out exactly once, and only if everyone says GO are
the inner keys released. Normative text: protocol/SPEC.md §13.2.

This file holds the round's vocabulary, shared by the round and by the log's
rules that check a released round: the round start and id, the signed
statements, the outcomes and the slot framing. One member's side of a round is
core/shuffle_round.py; the layers of a slot, core/onion.py; the judgement of a
failed round, core/blame.py.

Rules of this file:
- Sans-IO and deterministic, except that a new round start draws a fresh nonce.
- Every statement a member makes in a round is Ed25519-signed over
  ``ANON_CONTEXT || statement(kind, mid, rid, *fields)``, so the transcript can
  be replayed to name a cheater and a released round carries its certificate.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .codec import pack
from .errors import LocalProtocolError, MalformedFrame, RemoteProtocolError
from .events import short
from .feed import MEETING_ID_BYTES
from .identity import KEY_BYTES, Identity
from .onion import SIG_BYTES, is_bin, is_uint, label_hash

ANON_CONTEXT = b"relsec/v2/anon\x00"
RID_LABEL = b"relsec/v2/anon-round\x00"
ITEMS_LABEL = b"relsec/v2/anon-items\x00"
ITEM_LABEL = b"relsec/v2/anon-item\x00"

NONCE_BYTES = 16
MIN_PARTICIPANTS = 3  # two participants would know each other's slot
MAX_PARTICIPANTS = 50  # two batches must fit one 1 MiB blame frame (SPEC §13.2.9)
DEFAULT_TIMEOUT_MS = 3000  # the longest wait for the next expected message

MESSAGE_TYPES = (
    "anon.start",
    "anon.keys",
    "anon.submit",
    "anon.hop",
    "anon.go",
    "anon.reveal",
    "anon.ack",
    "anon.blame",
    "anon.abort",
)


class BadRoundMessage(RemoteProtocolError):
    """A round message that is well formed but wrong: a bad signature, a
    stranger to the round, a size that breaks the round's rules."""

    code = "bad_round_message"


class Phase(Enum):
    KEYS = "keys"  # waiting for every participant's per-round public keys
    SUBMIT = "submit"  # waiting for every participant's onion
    SHUFFLE = "shuffle"  # the cascade runs; waiting for the final batch
    GO = "go"  # waiting for every GO / NO-GO
    REVEAL = "reveal"  # inner key sent; waiting for the others'
    ACK = "ack"  # items opened; waiting for every release signature
    BLAME = "blame"  # outer key sent; waiting for the others' evidence
    DONE = "done"


# --- signed statements -------------------------------------------------------------


def item_id(item: bytes) -> bytes:
    """The id of one released item: what the release signatures cover."""
    return label_hash(ITEM_LABEL, item)


def release_digest(ids: Sequence[bytes]) -> bytes:
    """What every participant signs to release a round: the sorted item ids."""
    return label_hash(ITEMS_LABEL, pack(sorted(ids)))


def statement(kind: str, mid: bytes, rid: bytes, *fields: Any) -> bytes:
    """The bytes a participant signs for one statement of a round."""
    return pack([kind, mid, rid, *fields])


def verify_statement(key: bytes, body: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(key).verify(ANON_CONTEXT + body, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def require_fields(message: dict[str, Any], *keys: str) -> None:
    if set(message) != {"t", "mid", *keys}:
        raise MalformedFrame(f"{message.get('t')} has exactly {', '.join(sorted(keys))}")


# --- round start ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundStart:
    """What fixes a round: the meeting, the roster epoch the leader saw, a
    fresh nonce, the participants in roster order (sorted keys) and
    ``after``, the highest Lamport clock in the leader's log when it started
    (a release of the round sorts after it: SPEC §13.4 rule 8). The leader
    is the first participant; the round id hashes all of it."""

    mid: bytes
    epoch: int
    nonce: bytes
    parts: tuple[bytes, ...]
    after: int = 0

    def __post_init__(self) -> None:
        if len(self.mid) != MEETING_ID_BYTES or len(self.nonce) != NONCE_BYTES:
            raise LocalProtocolError("a round start needs a 16-byte meeting id and nonce")
        if not MIN_PARTICIPANTS <= len(self.parts) <= MAX_PARTICIPANTS:
            raise LocalProtocolError(
                f"a round has {MIN_PARTICIPANTS} to {MAX_PARTICIPANTS} participants"
            )
        if list(self.parts) != sorted(set(self.parts)) or any(
            len(p) != KEY_BYTES for p in self.parts
        ):
            raise LocalProtocolError("participants are distinct keys in ascending order")
        if not is_uint(self.after):
            raise LocalProtocolError("a round start's clock is a 32-bit unsigned integer")

    @property
    def rid(self) -> bytes:
        return rid_of(self.mid, self.epoch, self.nonce, self.parts, self.after)

    @property
    def leader(self) -> bytes:
        return self.parts[0]

    @classmethod
    def new(cls, mid: bytes, epoch: int, parts: Sequence[bytes], after: int = 0) -> RoundStart:
        return cls(mid, epoch, secrets.token_bytes(NONCE_BYTES), tuple(sorted(parts)), after)

    def message(self, leader: Identity) -> dict[str, Any]:
        if leader.key != self.leader:
            raise LocalProtocolError("only the first participant starts a round")
        signature = leader.sign(ANON_CONTEXT, statement("start", self.mid, self.rid))
        return {
            "t": "anon.start",
            "mid": self.mid,
            "ep": self.epoch,
            "n": self.nonce,
            "p": list(self.parts),
            "a": self.after,
            "g": signature,
        }

    @classmethod
    def from_message(cls, sender: bytes, message: dict[str, Any]) -> RoundStart:
        """Parse and check a start message from the linked peer ``sender``."""
        require_fields(message, "ep", "n", "p", "a", "g")
        parts = message["p"]
        if not (
            is_uint(message["ep"])
            and is_bin(message["n"], NONCE_BYTES)
            and is_uint(message["a"])
            and is_bin(message["g"], SIG_BYTES)
            and isinstance(parts, list)
            and all(is_bin(p, KEY_BYTES) for p in parts)
        ):
            raise MalformedFrame("anon.start has ep: uint, n: bin16, p: [bin32], a: uint, g: bin64")
        try:
            start = cls(message["mid"], message["ep"], message["n"], tuple(parts), message["a"])
        except LocalProtocolError as exc:
            raise BadRoundMessage(str(exc)) from exc
        if start.leader != sender:
            raise BadRoundMessage("a round is started by its first participant")
        if not verify_statement(sender, statement("start", start.mid, start.rid), message["g"]):
            raise BadRoundMessage("bad signature on a round start")
        return start


def rid_of(mid: bytes, epoch: int, nonce: bytes, parts: Sequence[bytes], after: int) -> bytes:
    return label_hash(RID_LABEL, pack([mid, epoch, nonce, list(parts), after]))


# --- outcomes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Released:
    """Every participant said GO, released its inner key and signed the same
    set of items. ``items`` are the non-dummy slot contents (sorted by id);
    ``certificate`` holds one release signature per participant, in order."""

    start: RoundStart
    items: tuple[bytes, ...]
    ids: tuple[bytes, ...]
    certificate: tuple[bytes, ...]
    undecodable: int = 0
    timeline: tuple[tuple[str, int], ...] = ()  # (phase, ms) on this laptop's clock

    @property
    def rid(self) -> bytes:
        return self.start.rid

    def __str__(self) -> str:
        return (
            f"round {short(self.rid)} released: {len(self.start.parts)} slots, "
            f"{len(self.items)} items"
        )


@dataclass(frozen=True, slots=True)
class Aborted:
    """A deadline passed (here or at ``by``) before the inner keys were out:
    nothing is released. ``missing`` are the participants this laptop was
    still waiting for."""

    start: RoundStart
    missing: tuple[bytes, ...]
    by: bytes | None = None

    @property
    def rid(self) -> bytes:
        return self.start.rid

    def __str__(self) -> str:
        names = ", ".join(short(k) for k in self.missing) or "nobody"
        return f"round {short(self.rid)} aborted; waiting for {names}"


@dataclass(frozen=True, slots=True)
class Blamed:
    """A NO-GO, or a release signature over different items: nothing is
    released, and the replayed transcript names ``culprits`` (key -> reason)."""

    start: RoundStart
    culprits: dict[bytes, str]

    @property
    def rid(self) -> bytes:
        return self.start.rid

    def __str__(self) -> str:
        named = "; ".join(f"{short(k)}: {why}" for k, why in sorted(self.culprits.items()))
        return f"round {short(self.rid)} failed; blamed {named or 'nobody'}"


Outcome = Released | Aborted | Blamed
Outgoing = tuple[bytes, dict[str, Any]]


class Shuffler(Protocol):
    def shuffle(self, x: list[Any]) -> None: ...


# --- slot framing -------------------------------------------------------------------------

LENGTH_BYTES = 2


def pad(content: bytes, slot: int) -> bytes:
    """A slot of exactly ``slot`` bytes: 2-byte length, content, zeros. An
    empty content is a dummy."""
    if len(content) > slot - LENGTH_BYTES:
        raise LocalProtocolError("the item does not fit in one slot")
    return len(content).to_bytes(LENGTH_BYTES, "big") + content + bytes(slot - 2 - len(content))


def unpad(slot: bytes) -> bytes | None:
    """The content of a slot (empty for a dummy), or None if it is not framed right."""
    if len(slot) < LENGTH_BYTES:
        return None
    size = int.from_bytes(slot[:LENGTH_BYTES], "big")
    if size > len(slot) - LENGTH_BYTES or any(slot[LENGTH_BYTES + size :]):
        return None
    return slot[LENGTH_BYTES : LENGTH_BYTES + size]


__all__ = [
    "MAX_PARTICIPANTS",
    "MESSAGE_TYPES",
    "MIN_PARTICIPANTS",
    "Aborted",
    "BadRoundMessage",
    "Blamed",
    "Outcome",
    "Phase",
    "Released",
    "RoundStart",
    "item_id",
    "pad",
    "release_digest",
    "unpad",
]
