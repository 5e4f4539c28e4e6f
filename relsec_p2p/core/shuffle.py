"""Anonymous shuffle rounds: one ``Round`` per round per member, sans-IO.

The construction is the verifiable shuffle of Brickell and Shmatikov ("Efficient
anonymity-preserving data collection", KDD 2006, §4) as Dissent v1 runs it
(Corrigan-Gibbs and Ford, "Dissent: accountable anonymous group messaging",
CCS 2010, §3): every participant submits one fixed-size slot wrapped in N inner
and N outer sealed layers under fresh per-round keys; the participants, in
roster order, each peel one outer layer and shuffle; everyone checks that its
own inner ciphertext came out exactly once, and only if everyone says GO are
the inner keys released. Normative text: protocol/SPEC.md §13.2.

Rules of this file:
- No I/O and no clock: messages (dicts) in, messages out, and the caller passes
  the time in milliseconds for deadlines. Every statement a member makes in a
  round is Ed25519-signed, so the transcript can be replayed to name a cheater.
- A member releases at most ONE of its two per-round secret keys, ever: the
  inner key after a unanimous GO, or the outer key in the blame phase, never
  both (both together would link every slot to its sender).
- A round that misses a deadline before the inner keys are out aborts and
  releases nothing; per-round keys die with the round.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey

from .codec import pack
from .errors import LocalProtocolError, MalformedFrame, RemoteProtocolError
from .events import short
from .feed import HASH_BYTES, MEETING_ID_BYTES
from .identity import KEY_BYTES, Identity

ANON_CONTEXT = b"relsec/v1/anon\x00"
RID_LABEL = b"relsec/v1/anon-round\x00"
BATCH_LABEL = b"relsec/v1/anon-batch\x00"
ONION_LABEL = b"relsec/v1/anon-onion\x00"
TRANSCRIPT_LABEL = b"relsec/v1/anon-transcript\x00"
BLAME_LABEL = b"relsec/v1/anon-blame\x00"
ITEMS_LABEL = b"relsec/v1/anon-items\x00"
ITEM_LABEL = b"relsec/v1/anon-item\x00"

SEAL_BYTES = bindings.crypto_box_SEALBYTES  # 48: ephemeral key + MAC per layer
NONCE_BYTES = 16
SIG_BYTES = 64
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


# --- small helpers --------------------------------------------------------------


def _h(label: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(label + data, digest_size=HASH_BYTES).digest()


def batch_hash(items: Sequence[bytes]) -> bytes:
    return _h(BATCH_LABEL, pack(list(items)))


def onion_hash(onion: bytes) -> bytes:
    return _h(ONION_LABEL, onion)


def item_id(item: bytes) -> bytes:
    """The id of one released item: what the release signatures cover."""
    return _h(ITEM_LABEL, item)


def release_digest(ids: Sequence[bytes]) -> bytes:
    """What every participant signs to release a round: the sorted item ids."""
    return _h(ITEMS_LABEL, pack(sorted(ids)))


def statement(kind: str, mid: bytes, rid: bytes, *fields: Any) -> bytes:
    """The bytes a participant signs for one statement of a round."""
    return pack([kind, mid, rid, *fields])


def verify_statement(key: bytes, body: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(key).verify(ANON_CONTEXT + body, signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def inner_size(slot: int) -> int:
    """Bytes of an inner ciphertext: ephemeral key, MAC, slot."""
    return slot + SEAL_BYTES


def onion_size(slot: int, n: int, peeled: int = 0) -> int:
    """Bytes of an onion (inner ciphertext in n outer layers) with ``peeled``
    outer layers removed."""
    return inner_size(slot) + SEAL_BYTES * (n - peeled)


def _seal(message: bytes, public: bytes) -> bytes:
    sealed: bytes = bindings.crypto_box_seal(message, public)
    return sealed


def _open(sealed: bytes, public: bytes, secret: bytes) -> bytes | None:
    try:
        opened: bytes = bindings.crypto_box_seal_open(sealed, public, secret)
    except (CryptoError, ValueError, TypeError):
        return None
    return opened


def _dh(secret: bytes, public: bytes) -> bytes | None:
    """X25519, or None for a low-order point (libsodium refuses an all-zero result)."""
    try:
        shared: bytes = bindings.crypto_scalarmult(secret, public)
    except (CryptoError, RuntimeError, ValueError, TypeError):
        return None
    return shared


# The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519, and
# the non-canonical encodings p and p + 1 of 0 and 1; the top bit is ignored.
# The same list as libsodium's ``has_small_order`` (x25519_ref10.c).
_LOW_ORDER = frozenset(
    bytes.fromhex(h)
    for h in (
        "00" * 32,
        "01" + "00" * 31,
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ec" + "ff" * 30 + "7f",
        "ed" + "ff" * 30 + "7f",
        "ee" + "ff" * 30 + "7f",
    )
)


def usable_public(public: bytes) -> bool:
    """An X25519 key that is not of low order: a low-order key would make
    every share with it predictable (and libsodium would refuse to seal to it)."""
    return len(public) == 32 and public[:31] + bytes([public[31] & 0x7F]) not in _LOW_ORDER


# The inner layer: one box that needs every participant's share to open.
# It is a multi-recipient DH KEM (Smart, "Efficient key encapsulation to
# multiple parties", SCN 2004, §3) whose component keys are combined by
# hashing them all with the ciphertext and the public keys, the combiner
# of Giacon, Heuer and Poettering ("KEM combiners", PKC 2018, §5): the key
# stays hidden while any one participant's inner secret does. It replaces
# Brickell-Shmatikov's N nested inner layers, whose opening costs N^2 X25519
# operations per member, by N per member: each participant publishes its
# share for every item along with its inner secret (SPEC §13.2.5).

INNER_KEY_LABEL = b"relsec/v1/anon-inner-key\x00"
_ZERO_NONCE = bytes(bindings.crypto_secretbox_NONCEBYTES)  # each key is used once


def _inner_key(ephemeral: bytes, publics: Sequence[bytes], shares: Sequence[bytes]) -> bytes:
    return hashlib.blake2b(
        INNER_KEY_LABEL + ephemeral + b"".join(publics) + b"".join(shares),
        digest_size=bindings.crypto_secretbox_KEYBYTES,
    ).digest()


def seal_to_all(message: bytes, publics: Sequence[bytes]) -> bytes:
    """Encrypt ``message`` so that only the holders of every secret key behind
    ``publics`` together can open it: ephemeral key || secretbox."""
    secret = bindings.randombytes(32)
    ephemeral: bytes = bindings.crypto_scalarmult_base(secret)
    shares = []
    for public in publics:
        shared = _dh(secret, public)
        if shared is None:
            raise LocalProtocolError("a participant's inner key is of low order")
        shares.append(shared)
    box: bytes = bindings.crypto_secretbox(
        message, _ZERO_NONCE, _inner_key(ephemeral, publics, shares)
    )
    return ephemeral + box


def inner_share(secret: bytes, sealed: bytes) -> bytes:
    """One participant's share for one inner ciphertext (zeros if the
    ciphertext's ephemeral key is of low order: it cannot open anyway)."""
    return _dh(secret, sealed[:32]) or bytes(32)


def open_with_shares(
    sealed: bytes, publics: Sequence[bytes], shares: Sequence[bytes]
) -> bytes | None:
    if len(sealed) < SEAL_BYTES:
        return None
    try:
        opened: bytes = bindings.crypto_secretbox_open(
            sealed[32:], _ZERO_NONCE, _inner_key(sealed[:32], publics, shares)
        )
    except (CryptoError, ValueError, TypeError):
        return None
    return opened


def public_of(secret: bytes) -> bytes:
    public: bytes = bindings.crypto_scalarmult_base(secret)
    return public


def _is_bin(value: Any, size: int | None = None) -> bool:
    return isinstance(value, bytes) and (size is None or len(value) == size)


def _is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 1 << 32


def _fields(message: dict[str, Any], *keys: str) -> None:
    if set(message) != {"t", "mid", *keys}:
        raise MalformedFrame(f"{message.get('t')} has exactly {', '.join(sorted(keys))}")


# --- round start ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundStart:
    """What fixes a round: the meeting, the roster epoch the leader saw, a
    fresh nonce and the participants in roster order (sorted keys). The
    leader is the first participant; the round id hashes all of it."""

    mid: bytes
    epoch: int
    nonce: bytes
    parts: tuple[bytes, ...]

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

    @property
    def rid(self) -> bytes:
        return rid_of(self.mid, self.epoch, self.nonce, self.parts)

    @property
    def leader(self) -> bytes:
        return self.parts[0]

    @classmethod
    def new(cls, mid: bytes, epoch: int, parts: Sequence[bytes]) -> RoundStart:
        return cls(mid, epoch, secrets.token_bytes(NONCE_BYTES), tuple(sorted(parts)))

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
            "g": signature,
        }

    @classmethod
    def from_message(cls, sender: bytes, message: dict[str, Any]) -> RoundStart:
        """Parse and check a start message from the linked peer ``sender``."""
        _fields(message, "ep", "n", "p", "g")
        parts = message["p"]
        if not (
            _is_uint(message["ep"])
            and _is_bin(message["n"], NONCE_BYTES)
            and _is_bin(message["g"], SIG_BYTES)
            and isinstance(parts, list)
            and all(_is_bin(p, KEY_BYTES) for p in parts)
        ):
            raise MalformedFrame("anon.start has ep: uint, n: bin16, p: [bin32], g: bin64")
        try:
            start = cls(message["mid"], message["ep"], message["n"], tuple(parts))
        except LocalProtocolError as exc:
            raise BadRoundMessage(str(exc)) from exc
        if start.leader != sender:
            raise BadRoundMessage("a round is started by its first participant")
        if not verify_statement(sender, statement("start", start.mid, start.rid), message["g"]):
            raise BadRoundMessage("bad signature on a round start")
        return start


def rid_of(mid: bytes, epoch: int, nonce: bytes, parts: Sequence[bytes]) -> bytes:
    return _h(RID_LABEL, pack([mid, epoch, nonce, list(parts)]))


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


@dataclass(slots=True)
class _Blame:
    outer_secret: bytes | None  # None: the sender released its inner key instead
    received: tuple[int, list[bytes], bytes] | None  # (hop, batch, hop's signature)
    final: list[bytes] | None  # the final batch, from a member who judged it NO-GO
    seen: list[list[Any]]


@dataclass(slots=True)
class _Evidence:
    """Signed statements, keyed by (kind, member, index), to spot a member
    who signed two different versions of one statement."""

    values: dict[tuple[str, bytes, int], set[bytes]] = field(default_factory=dict)

    def add(self, kind: str, who: bytes, index: int, value: bytes) -> None:
        self.values.setdefault((kind, who, index), set()).add(value)

    def equivocators(self) -> set[bytes]:
        return {who for (_, who, _), seen in self.values.items() if len(seen) > 1}


# --- the round ---------------------------------------------------------------------------


class Round:
    """One member's side of one shuffle round.

    ``begin()`` returns the first messages; ``receive()`` and ``tick()`` take a
    message or the time and return what to send. ``outcome`` is set once the
    round is over. Sends are ``(peer key, message map)``; the caller packs them.
    """

    def __init__(
        self,
        identity: Identity,
        start: RoundStart,
        payload: bytes | Callable[[], bytes],
        *,
        slot: int | None = None,
        now_ms: int,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        rng: Shuffler | None = None,
    ) -> None:
        if identity.key not in start.parts:
            raise LocalProtocolError("this laptop is not a participant of the round")
        self.identity = identity
        self.me = identity.key
        self.start = start
        self.mid = start.mid
        self.rid = start.rid
        self.parts = start.parts
        self.n = len(start.parts)
        self.index = self.parts.index(self.me)
        # The slot may be built later (``prepare``): making it costs a ring
        # signature, better spent while the others' keys are on their way.
        if isinstance(payload, bytes):
            self.slot, self._payload, self._make = len(payload), payload, None
        elif slot is None:
            raise LocalProtocolError("a slot built later needs its size now")
        else:
            self.slot, self._payload, self._make = slot, b"", payload
        self._timeout = timeout_ms
        self.deadline = now_ms + timeout_ms
        self._rng: Shuffler = rng or secrets.SystemRandom()
        self.phase = Phase.KEYS
        self._now = now_ms
        self.timeline: list[tuple[str, int]] = [(Phase.KEYS.value, now_ms)]
        self.outcome: Outcome | None = None
        self._verify_keys = {key: VerifyKey(key) for key in self.parts}
        self._inner_public, self._inner_secret = bindings.crypto_box_keypair()
        self._outer_public, self._outer_secret = bindings.crypto_box_keypair()
        self._released_key: str | None = None  # "inner" or "outer": never both
        self._my_inner = b""
        self._began = False
        self._hopped = False
        self._my_go: tuple[bool, bytes] | None = None
        self.keys: dict[bytes, tuple[bytes, bytes, bytes]] = {}
        self.submissions: dict[bytes, tuple[bytes, bytes]] = {}
        self.hops: dict[int, tuple[bytes, bytes]] = {}  # hop -> (batch hash, signature)
        self.batches: dict[int, list[bytes]] = {}  # hop -> full batch (my input, the final)
        self.gos: dict[bytes, tuple[bool, bytes, bytes]] = {}
        self.reveals: dict[bytes, tuple[bytes, list[bytes]]] = {}  # inner secret, shares
        self.acks: dict[bytes, tuple[bytes, bytes]] = {}
        self.blames: dict[bytes, _Blame] = {}
        self.opened: tuple[bytes, ...] | None = None
        self._ids: tuple[bytes, ...] = ()
        self._undecodable = 0
        self._early_reveal: dict[bytes, tuple[bytes, list[bytes]]] = {}
        self._answered_blame = False

    # -- public face ---------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.outcome is None

    @property
    def released_inner(self) -> bool:
        """True once this laptop has sent its inner key: from then on the
        round may release, so its slot must not be reused."""
        return self._released_key == "inner"

    @property
    def prepared(self) -> bool:
        return self._make is None

    def prepare(self) -> None:
        """Build this laptop's slot now (it is built when first needed otherwise)."""
        if self._make is not None:
            payload = self._make()
            if len(payload) != self.slot:
                raise LocalProtocolError("the slot built for the round has the wrong size")
            self._payload, self._make = payload, None

    def begin(self) -> list[Outgoing]:
        if self._began:
            raise LocalProtocolError("a round begins once")
        self._began = True
        signature = self._sign("keys", self._inner_public, self._outer_public)
        self.keys[self.me] = (self._inner_public, self._outer_public, signature)
        message = self._message(
            "anon.keys", i=self._inner_public, o=self._outer_public, g=signature
        )
        return [*self._to_others(message), *self._advance()]

    def receive(self, sender: bytes, message: dict[str, Any], now_ms: int) -> list[Outgoing]:
        """Take one message of this round from the linked participant ``sender``."""
        if self.outcome is not None:
            return []
        if sender not in self._verify_keys or sender == self.me:
            raise BadRoundMessage("a message from someone who is not in this round")
        kind = message.get("t")
        handler = _HANDLERS.get(str(kind))
        if handler is None:
            raise MalformedFrame(f"unknown round message {kind!r}")
        self._now = now_ms
        sends = handler(self, sender, message)
        self.deadline = now_ms + self._timeout
        return [*sends, *self._advance()]

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Check the deadline; past it, abort (or, in blame, judge with what came)."""
        if self.outcome is not None or now_ms < self.deadline:
            return []
        self._now = now_ms
        missing = self.waiting_for()
        if self.phase is Phase.BLAME:
            self._judge()
            return []
        if self.phase in (Phase.REVEAL, Phase.ACK):
            # Inner keys are out but not all of them (or not every release
            # signature): the log gets nothing. Telling the others changes
            # nothing for them, so no message.
            self._finish(Aborted(self.start, missing))
            return []
        signature = self._sign("abort", list(missing))
        self._finish(Aborted(self.start, missing))
        return self._to_others(self._message("anon.abort", m=list(missing), g=signature))

    def waiting_for(self) -> tuple[bytes, ...]:
        """The participants this laptop is waiting for in the current phase."""
        if self.phase is Phase.KEYS:
            return tuple(p for p in self.parts if p not in self.keys)
        if self.phase is Phase.SUBMIT:
            return tuple(p for p in self.parts if p not in self.submissions)
        if self.phase is Phase.SHUFFLE:
            # Only the leader follows the cascade hop by hop; the others know
            # that the batch has not reached them, not who holds it.
            if self.index != 0:
                return ()
            for hop in range(1, self.n + 1):
                if hop not in self.hops:
                    return (self.parts[hop - 1],)
            return (self.parts[-1],)  # the final batch never came
        table: dict[Phase, set[bytes]] = {
            Phase.GO: set(self.gos),
            Phase.REVEAL: set(self.reveals),
            Phase.ACK: set(self.acks),
            Phase.BLAME: set(self.blames),
        }
        arrived = table.get(self.phase)
        if arrived is None:
            return ()
        return tuple(p for p in self.parts if p not in arrived)

    # -- building blocks ---------------------------------------------------------------

    def _sign(self, kind: str, *fields: Any) -> bytes:
        return self.identity.sign(ANON_CONTEXT, statement(kind, self.mid, self.rid, *fields))

    def _check(self, who: bytes, signature: Any, kind: str, *fields: Any) -> bytes:
        if not _is_bin(signature, SIG_BYTES):
            raise MalformedFrame("a round signature is 64 bytes")
        body = ANON_CONTEXT + statement(kind, self.mid, self.rid, *fields)
        try:
            self._verify_keys[who].verify(body, signature)
        except (BadSignatureError, ValueError) as exc:
            raise BadRoundMessage(f"bad signature on a round {kind}") from exc
        return bytes(signature)

    def _valid(self, who: bytes, signature: bytes, kind: str, *fields: Any) -> bool:
        try:
            self._check(who, signature, kind, *fields)
        except RemoteProtocolError:
            return False
        return True

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"t": kind, "mid": self.mid, "r": self.rid, **fields}

    def _to_others(self, message: dict[str, Any]) -> list[Outgoing]:
        return [(peer, message) for peer in self.parts if peer != self.me]

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.timeline.append((phase.value, self._now))  # when, never what

    def _finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._enter(Phase.DONE)
        # Per-round keys die with the round (the outer one is already out if
        # we blamed; the inner one if we released).
        self._inner_secret = b""
        self._outer_secret = b""

    # Overridable by tests that play a modified client; the honest versions.

    def _build_onion(self) -> tuple[bytes, bytes]:
        """(inner ciphertext, outer onion) of this laptop's slot."""
        self.prepare()
        inner = seal_to_all(self._payload, [self.keys[peer][0] for peer in self.parts])
        outer = inner
        for peer in reversed(self.parts):
            outer = _seal(outer, self.keys[peer][1])
        return inner, outer

    def _permute(self, items: list[bytes]) -> list[bytes]:
        self._rng.shuffle(items)
        return items

    def _go_verdict(self, final: list[bytes]) -> bool:
        return (
            len(final) == self.n
            and len(set(final)) == self.n
            and all(len(x) == inner_size(self.slot) for x in final)
            and final.count(self._my_inner) == 1
        )

    # -- handlers (one per message type) -------------------------------------------------

    def _on_keys(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "i", "o", "g")
        inner, outer = message["i"], message["o"]
        if not (_is_bin(inner, 32) and _is_bin(outer, 32)):
            raise MalformedFrame("anon.keys has i, o: bin32")
        signature = self._check(who, message["g"], "keys", inner, outer)
        if not (usable_public(inner) and usable_public(outer)):
            raise BadRoundMessage("a per-round key of low order")
        if who in self.keys:
            if self.keys[who][:2] != (inner, outer):
                raise BadRoundMessage("a second, different key announcement")
            return []
        self.keys[who] = (inner, outer, signature)
        return []

    def _on_submit(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "o", "g")
        onion = message["o"]
        if not _is_bin(onion):
            raise MalformedFrame("anon.submit has o: bin")
        if len(onion) != onion_size(self.slot, self.n):
            raise BadRoundMessage("a submission of the wrong size")
        signature = self._check(who, message["g"], "submit", onion_hash(onion))
        if who in self.submissions:
            if self.submissions[who][0] != onion:
                raise BadRoundMessage("a second, different submission")
            return []
        self.submissions[who] = (onion, signature)
        return []

    def _on_hop(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "k", "b", "h", "g", "c")
        hop, batch, digest, chain = message["k"], message["b"], message["h"], message["c"]
        if not (
            _is_uint(hop)
            and 1 <= hop <= self.n
            and _is_bin(digest, HASH_BYTES)
            and (batch is None or _batch_shape(batch, self.n))
            and isinstance(chain, list)
            and len(chain) < hop
            and all(
                isinstance(x, list)
                and len(x) == 2
                and _is_bin(x[0], HASH_BYTES)
                and _is_bin(x[1], SIG_BYTES)
                for x in chain
            )
        ):
            raise MalformedFrame("anon.hop has k, b: [bin] or nil, h: bin32, c: [[h, g]]")
        if self.parts[hop - 1] != who:
            raise BadRoundMessage("a hop sent by someone other than that hop's shuffler")
        if batch is not None:
            if batch_hash(batch) != digest:
                raise BadRoundMessage("a hop batch that does not match its hash")
            if hop not in (self.index, self.n):
                raise BadRoundMessage("a full batch sent to someone who does not need it")
            if len(chain) != hop - 1:
                raise BadRoundMessage("a batch comes with every earlier hop's signed hash")
        # The earlier hops' signed hashes ride along with the batch, so every
        # participant ends with all of them without N^2 progress messages.
        headers = [(k, h, g) for k, (h, g) in enumerate(chain, start=1)]
        headers.append((hop, digest, message["g"]))
        for k, h, g in headers:
            self._check(self.parts[k - 1], g, "hop", k, h)
            if k in self.hops and self.hops[k][0] != h:
                raise BadRoundMessage("a second, different hop output")
        for k, h, g in headers:
            self.hops[k] = (h, bytes(g))
        if batch is not None:
            self.batches[hop] = list(batch)
        return []

    def _on_go(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "ok", "h", "g")
        ok, digest = message["ok"], message["h"]
        if not (isinstance(ok, bool) and _is_bin(digest, HASH_BYTES)):
            raise MalformedFrame("anon.go has ok: bool, h: bin32")
        signature = self._check(who, message["g"], "go", ok, digest)
        if who in self.gos:
            if self.gos[who][:2] != (ok, digest):
                raise BadRoundMessage("a second, different GO")
            return []
        self.gos[who] = (ok, digest, signature)
        return []

    def _on_reveal(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "s", "x", "g")
        secret, shares = message["s"], message["x"]
        if not (
            _is_bin(secret, 32)
            and isinstance(shares, list)
            and len(shares) == self.n
            and all(_is_bin(x, 32) for x in shares)
        ):
            raise MalformedFrame("anon.reveal has s: bin32, x: [bin32] (one per slot)")
        self._check(who, message["g"], "reveal", secret, shares)
        if who in self.keys and public_of(secret) != self.keys[who][0]:
            raise BadRoundMessage("a revealed inner key that does not match its announcement")
        self._early_reveal[who] = (secret, list(shares))
        return []

    def _on_ack(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "d", "g")
        digest = message["d"]
        if not _is_bin(digest, HASH_BYTES):
            raise MalformedFrame("anon.ack has d: bin32")
        signature = self._check(who, message["g"], "release", digest)
        self.acks.setdefault(who, (digest, signature))
        return []

    def _on_blame(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "s", "in", "fin", "seen", "g")
        secret, received, final, seen = message["s"], message["in"], message["fin"], message["seen"]
        if not (
            (secret is None or _is_bin(secret, 32))
            and isinstance(seen, list)
            and len(seen) <= 8 * self.n
            and all(isinstance(x, list) and len(x) == 5 and isinstance(x[0], str) for x in seen)
            and (final is None or _batch_shape(final, self.n))
        ):
            raise MalformedFrame("anon.blame has s, in, fin, seen: [[kind, who, a, b, sig]]")
        taken: tuple[int, list[bytes], bytes] | None = None
        if received is not None:
            if not (
                isinstance(received, list)
                and len(received) == 3
                and _is_uint(received[0])
                and _batch_shape(received[1], self.n)
                and _is_bin(received[2], SIG_BYTES)
            ):
                raise MalformedFrame("anon.blame in is [hop, [bin], sig]")
            taken = (received[0], list(received[1]), received[2])
        body = _h(BLAME_LABEL, pack([secret, received, final, seen]))
        self._check(who, message["g"], "blame", body)
        self.blames.setdefault(who, _Blame(secret, taken, final, seen))
        if self._released_key == "inner" and not self._answered_blame:
            # Someone is blaming while this laptop saw a unanimous GO: show
            # the GOs it saw, which convict whoever said both GO and NO-GO.
            return self._blame_message(with_keys=False)
        return []

    def _on_abort(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        _fields(message, "r", "m", "g")
        missing = message["m"]
        if not (isinstance(missing, list) and all(_is_bin(k, KEY_BYTES) for k in missing)):
            raise MalformedFrame("anon.abort has m: [bin32]")
        self._check(who, message["g"], "abort", missing)
        if self._released_key is None and self.phase is not Phase.BLAME:
            self._finish(Aborted(self.start, self.waiting_for(), by=who))
        return []

    # -- progress ------------------------------------------------------------------------

    def _advance(self) -> list[Outgoing]:
        sends: list[Outgoing] = []
        while self.outcome is None:
            step = self._step()
            if step is None:
                break
            sends.extend(step)
        return sends

    def _step(self) -> list[Outgoing] | None:
        """One transition, or None if the round must wait for a message."""
        if self.phase is Phase.KEYS and len(self.keys) == self.n:
            self._my_inner, onion = self._build_onion()
            signature = self._sign("submit", onion_hash(onion))
            self.submissions[self.me] = (onion, signature)
            self._enter(Phase.SUBMIT)
            return self._to_others(self._message("anon.submit", o=onion, g=signature))
        if self.phase is Phase.SUBMIT and len(self.submissions) == self.n:
            self.batches[0] = [self.submissions[p][0] for p in self.parts]
            self._enter(Phase.SHUFFLE)
            return []
        if self.phase is Phase.SHUFFLE:
            if self._released_key is None and any(not ok for ok, _, _ in self.gos.values()):
                return self._enter_blame()
            if not self._hopped and self.index in self.batches:
                return self._hop()
            if self.n in self.batches and all(k in self.hops for k in range(1, self.n + 1)):
                return self._send_go(self._go_verdict(self.batches[self.n]))
            return None
        if self.phase is Phase.GO:
            if any(not ok for ok, _, _ in self.gos.values()):
                return self._enter_blame()
            if len(self.gos) < self.n:
                return None
            if {digest for _, digest, _ in self.gos.values()} != {self._transcript()}:
                return self._enter_blame()
            return self._reveal()
        if self.phase is Phase.REVEAL:
            for who, (secret, shares) in self._early_reveal.items():
                if who not in self.reveals and public_of(secret) == self.keys[who][0]:
                    self.reveals[who] = (secret, shares)
            if len(self.reveals) < self.n:
                return None
            return self._open_and_ack()
        if self.phase is Phase.ACK and len(self.acks) == self.n:
            self._settle_release()
            return []
        if self.phase is Phase.BLAME and len(self.blames) == self.n:
            self._judge()
            return []
        return None

    def _hop(self) -> list[Outgoing]:
        """Peel my outer layer from every item of my input, shuffle, sign, pass on."""
        self._hopped = True
        self.timeline.append(("hop", self._now))
        hop = self.index + 1
        batch = self.batches[self.index]
        size = onion_size(self.slot, self.n, self.index)
        peeled: list[bytes] = []
        fine = len(batch) == self.n and len(set(batch)) == self.n
        for item in batch if fine else ():
            if len(item) != size:
                fine = False
                break
            opened = _open(item, self._outer_public, self._outer_secret)
            if opened is None:
                fine = False
                break
            peeled.append(opened)
        if not fine:
            # A broken input: say NO-GO now; the blame replay finds out who.
            return self._send_go(False)
        output = self._permute(peeled)
        digest = batch_hash(output)
        signature = self._sign("hop", hop, digest)
        self.hops[hop] = (digest, signature)
        self.batches[hop] = list(output)
        chain = [[*self.hops[k]] for k in range(1, hop)]
        full = self._message("anon.hop", k=hop, b=list(output), h=digest, g=signature, c=chain)
        if hop == self.n:
            return self._to_others(full)
        sends: list[Outgoing] = [(self.parts[hop], full)]
        if hop > 1 and self.parts[hop] != self.parts[0]:
            # The leader follows the cascade, to name a hop that stalls.
            progress = self._message("anon.hop", k=hop, b=None, h=digest, g=signature, c=[])
            sends.append((self.parts[0], progress))
        return sends

    def _transcript(self) -> bytes:
        """Everything every participant must have seen alike before any inner
        key goes out: keys, submissions and every hop's output hash."""
        return _h(
            TRANSCRIPT_LABEL,
            pack(
                [
                    self.rid,
                    [[*self.keys[p][:2]] for p in self.parts],
                    [onion_hash(self.submissions[p][0]) for p in self.parts],
                    [self.hops[k][0] for k in range(1, self.n + 1)],
                ]
            ),
        )

    def _send_go(self, ok: bool) -> list[Outgoing]:
        digest = self._transcript() if ok else bytes(HASH_BYTES)
        signature = self._sign("go", ok, digest)
        self._my_go = (ok, digest)
        self.gos[self.me] = (ok, digest, signature)
        sends = self._to_others(self._message("anon.go", ok=ok, h=digest, g=signature))
        if not ok:
            return [*sends, *self._enter_blame()]
        self._enter(Phase.GO)
        return sends

    def _reveal(self) -> list[Outgoing]:
        """Release the inner key, with this laptop's share for every item of
        the final batch (so no one has to compute N^2 shares)."""
        if self._released_key is not None:
            raise LocalProtocolError("a round releases at most one of its two keys")
        self._released_key = "inner"
        secret = self._inner_secret
        shares = [inner_share(secret, item) for item in self.batches[self.n]]
        self.reveals[self.me] = (secret, shares)
        self._enter(Phase.REVEAL)
        signature = self._sign("reveal", secret, shares)
        sends = self._to_others(self._message("anon.reveal", s=secret, x=shares, g=signature))
        if any(who != self.me for who in self.blames):
            sends.extend(self._blame_message(with_keys=False))
        return sends

    def _open_and_ack(self) -> list[Outgoing]:
        """Open every item of the final batch; a share that does not work is
        recomputed from its sender's inner secret (so a wrong share costs time,
        never an item)."""
        publics = [self.keys[p][0] for p in self.parts]
        items: list[bytes] = []
        undecodable = 0
        for position, sealed in enumerate(self.batches[self.n]):
            shares = [self.reveals[p][1][position] for p in self.parts]
            opened = open_with_shares(sealed, publics, shares)
            if opened is None:
                exact = [inner_share(self.reveals[p][0], sealed) for p in self.parts]
                if exact != shares:
                    opened = open_with_shares(sealed, publics, exact)
            content = None if opened is None else unpad(opened)
            if content is None:
                undecodable += 1
            elif content:
                items.append(content)
        by_id = {item_id(item): item for item in items}
        ids = sorted(by_id)
        self.opened = tuple(by_id[i] for i in ids)
        self._ids = tuple(ids)
        self._undecodable = undecodable
        digest = release_digest(ids)
        signature = self._sign("release", digest)
        self.acks[self.me] = (digest, signature)
        self._enter(Phase.ACK)
        return self._to_others(self._message("anon.ack", d=digest, g=signature))

    def _settle_release(self) -> None:
        mine = self.acks[self.me][0]
        wrong = {who: "signed a release of items other than those the round opened"
                 for who, (digest, _) in self.acks.items() if digest != mine}  # fmt: skip
        if wrong:
            self._finish(Blamed(self.start, wrong))
            return
        assert self.opened is not None  # noqa: S101 (ACK follows opening)
        certificate = tuple(self.acks[p][1] for p in self.parts)
        timeline = (*self.timeline, ("released", self._now))
        self._finish(
            Released(self.start, self.opened, self._ids, certificate, self._undecodable, timeline)
        )

    # -- blame ---------------------------------------------------------------------------

    def _seen(self) -> list[list[Any]]:
        """Every signed statement this laptop received, for the others to
        compare with theirs (a member who signed two versions is caught)."""
        seen: list[list[Any]] = []
        for who in self.parts:
            if who in self.keys:
                inner, outer, signature = self.keys[who]
                seen.append(["keys", who, inner, outer, signature])
            if who in self.submissions:
                onion, signature = self.submissions[who]
                seen.append(["submit", who, onion_hash(onion), b"", signature])
            if who in self.gos:
                ok, digest, signature = self.gos[who]
                seen.append(["go", who, ok, digest, signature])
        for hop, (digest, signature) in sorted(self.hops.items()):
            seen.append(["hop", self.parts[hop - 1], hop, digest, signature])
        return seen

    def _enter_blame(self) -> list[Outgoing]:
        if self._released_key is not None or self.phase in (Phase.BLAME, Phase.DONE):
            return []
        self._released_key = "outer"
        self._enter(Phase.BLAME)
        return self._blame_message(with_keys=True)

    def _blame_message(self, *, with_keys: bool) -> list[Outgoing]:
        """The evidence this laptop holds: its outer key (if it is blaming),
        the signed batch it received as a hop, the final batch if it judged
        that batch NO-GO, and every signed statement it saw."""
        self._answered_blame = True
        secret = self._outer_secret if with_keys else None
        received: list[Any] | None = None
        if with_keys and self.index >= 1 and self.index in self.batches and self.index in self.hops:
            received = [self.index, list(self.batches[self.index]), self.hops[self.index][1]]
        final: list[bytes] | None = None
        if with_keys and self._my_go == (False, bytes(HASH_BYTES)) and self.n in self.batches:
            final = list(self.batches[self.n])
        seen = self._seen()
        body = _h(BLAME_LABEL, pack([secret, received, final, seen]))
        signature = self._sign("blame", body)
        taken = None if received is None else (received[0], received[1], received[2])
        self.blames[self.me] = _Blame(secret, taken, final, seen)
        return self._to_others(
            self._message(
                "anon.blame", s=secret, fin=final, seen=seen, g=signature, **{"in": received}
            )
        )

    def _judge(self) -> None:
        """Replay the signed transcript and name who broke the round (SPEC §13.2.7).
        It reads only the blame messages (this laptop's own included), so every
        honest laptop that holds the same ones names the same members, and an
        honest member is never named."""
        culprits: dict[bytes, str] = {}
        for who in self.parts:
            if who not in self.blames:
                culprits[who] = "did not answer in the blame phase before the deadline"
        evidence = _Evidence()
        for blame in self.blames.values():
            for kind, who, a, b, signature in blame.seen:
                self._record(evidence, kind, who, a, b, signature)
            if blame.received is not None:
                hop, batch, signature = blame.received
                if 1 <= hop <= self.n:
                    shuffler = self.parts[hop - 1]
                    self._record(evidence, "hop", shuffler, hop, batch_hash(batch), signature)
        for who in sorted(evidence.equivocators()):
            culprits[who] = "signed two different versions of one round message"
        for who, blame in self.blames.items():
            secret = blame.outer_secret
            if secret is not None and public_of(secret) != self.keys[who][1]:
                culprits[who] = "revealed an outer key that does not match its announcement"
        if not culprits and all(b.outer_secret is not None for b in self.blames.values()):
            culprits = self._replay(evidence)
        self._finish(Blamed(self.start, culprits))

    def _record(
        self, evidence: _Evidence, kind: Any, who: Any, a: Any, b: Any, signature: Any
    ) -> None:
        if who not in self._verify_keys or not _is_bin(signature, SIG_BYTES):
            return
        fields: tuple[Any, ...]
        if kind == "keys" and _is_bin(a, 32) and _is_bin(b, 32):
            fields, index, value = (a, b), 0, a + b
        elif kind == "submit" and _is_bin(a, HASH_BYTES):
            fields, index, value = (a,), 0, a
        elif kind == "hop" and _is_uint(a) and _is_bin(b, HASH_BYTES):
            if not 1 <= a <= self.n or self.parts[a - 1] != who:
                return
            fields, index, value = (a, b), a, b
        elif kind == "go" and isinstance(a, bool) and _is_bin(b, HASH_BYTES):
            fields, index, value = (a, b), 0, bytes([a]) + b
        else:
            return
        if not self._valid(who, signature, kind, *fields):
            return  # an unsigned claim proves nothing about ``who``
        evidence.add(kind, who, index, value)

    def _replay(self, evidence: _Evidence) -> dict[bytes, str]:
        """With every outer key known: which submission does not decrypt, which
        hop's output is not a permutation of its peeled input, and otherwise
        who said NO-GO (or GO over another transcript) with no cause."""
        culprits: dict[bytes, str] = {}
        outer: dict[bytes, bytes] = {}
        for who, blame in self.blames.items():
            assert blame.outer_secret is not None  # noqa: S101 (the caller checked)
            outer[who] = blame.outer_secret
        publics = {who: self.keys[who][1] for who in self.parts}
        for who in self.parts:
            onion: bytes | None = self.submissions[who][0]
            for peer in self.parts:
                onion = _open(onion, publics[peer], outer[peer]) if onion is not None else None
            if onion is None:
                culprits[who] = "submitted a slot that does not decrypt"
        if culprits:
            return culprits
        hop_hashes = {
            hop: next(iter(values))
            for (kind, _, hop), values in evidence.values.items()
            if kind == "hop"
        }
        batch = [self.submissions[p][0] for p in self.parts]
        for hop in range(1, self.n + 1):
            shuffler = self.parts[hop - 1]
            output = self._output_of(hop, hop_hashes)
            if output is None:
                if hop < self.n and hop + 1 in hop_hashes:
                    # The next hop signed an output, so it had this input.
                    culprits[self.parts[hop]] = "withheld the batch it received"
                break  # the cascade got no further
            expected = sorted(_open(x, publics[shuffler], outer[shuffler]) or b"" for x in batch)
            if sorted(output) != expected:
                culprits[shuffler] = "dropped, replaced or duplicated an item"
                break
            batch = output
        if culprits:
            return culprits
        transcript = self._evidence_transcript(evidence, hop_hashes)
        for (kind, who, _), values in sorted(evidence.values.items()):
            if kind != "go":
                continue
            for value in values:
                ok, digest = bool(value[0]), value[1:]
                if not ok:
                    culprits[who] = "said NO-GO with no cause"
                elif transcript is not None and digest != transcript:
                    culprits[who] = "said GO over a transcript the others did not see"
        return culprits

    def _output_of(self, hop: int, hop_hashes: dict[int, bytes]) -> list[bytes] | None:
        """Hop ``hop``'s output as the blame messages show it, checked against
        the hash that hop signed."""
        candidates: list[list[bytes]] = []
        if hop < self.n:
            received = self.blames[self.parts[hop]].received
            if received is not None and received[0] == hop:
                candidates.append(received[1])
        else:
            candidates.extend(b.final for b in self.blames.values() if b.final is not None)
        for batch in candidates:
            if hop_hashes.get(hop) == batch_hash(batch):
                return batch
        return None

    def _evidence_transcript(
        self, evidence: _Evidence, hop_hashes: dict[int, bytes]
    ) -> bytes | None:
        if any(hop not in hop_hashes for hop in range(1, self.n + 1)):
            return None
        return _h(
            TRANSCRIPT_LABEL,
            pack(
                [
                    self.rid,
                    [[*self.keys[p][:2]] for p in self.parts],
                    [onion_hash(self.submissions[p][0]) for p in self.parts],
                    [hop_hashes[k] for k in range(1, self.n + 1)],
                ]
            ),
        )


def _batch_shape(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) <= 2 * n and all(_is_bin(x) for x in value)


_HANDLERS = {
    "anon.keys": Round._on_keys,
    "anon.submit": Round._on_submit,
    "anon.hop": Round._on_hop,
    "anon.go": Round._on_go,
    "anon.reveal": Round._on_reveal,
    "anon.ack": Round._on_ack,
    "anon.blame": Round._on_blame,
    "anon.abort": Round._on_abort,
}


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
    "Round",
    "RoundStart",
    "item_id",
    "pad",
    "release_digest",
    "unpad",
]
