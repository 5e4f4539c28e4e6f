"""Per-author hash-chained signed feeds (as Secure Scuttlebutt), and fork proofs.

Rules of this file (normative text: protocol/SPEC.md §3):
- An entry travels as the canonical array ``[body, signature]``. The signature
  is Ed25519 over ``ENTRY_CONTEXT || body`` where ``body`` is the exact bytes
  received; nothing is re-encoded before verifying.
- Checks run in a fixed order (decode, version, meeting, author, signature,
  chain) and any failure raises a ``RemoteProtocolError`` *before* anything is
  stored: rejected input changes nothing.
- ``(author, seq)`` is unique. The same entry again is a harmless duplicate; a
  different signed entry at the same place is a fork proof, kept and shared,
  and the author's feed freezes before the fork (SPEC §3.5).
- Out-of-order entries wait in a bounded gap buffer for their predecessor.
- Entries by a key not known yet (a member whose ``roster.add`` has not
  arrived) wait, signature checked, in a bounded hold until the key becomes
  known; when the hold is full the oldest held entry is evicted (sync
  fetches it again once its author is known).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .codec import ENTRY_LIMITS, pack, split_entry_envelope, unpack
from .errors import (
    BadForkProof,
    BadSignature,
    BrokenChain,
    BufferFull,
    FrozenFeed,
    HoldFull,
    LocalProtocolError,
    MalformedFrame,
    RemoteProtocolError,
    UnknownAuthor,
    UnsupportedVersion,
    WrongMeeting,
)
from .identity import KEY_BYTES, Identity

PROTOCOL_VERSION = 2
ENTRY_CONTEXT = b"relsec/v2/entry\x00"
MEETING_ID_BYTES = 16
HASH_BYTES = 32
BODY_KEYS = ("au", "data", "lam", "mid", "prev", "seq", "ts", "type", "v")
MAX_TYPE_LEN = 32
MAX_SEQ = (1 << 32) - 1
MAX_LAMPORT = (1 << 53) - 1
MAX_LAMPORT_STEP = 1 << 24  # larger jumps are ignored by the local clock hint
MAX_PENDING_PER_AUTHOR = 1024
MAX_PENDING_TOTAL = 16 * 1024
# Entries held for keys not known yet (SPEC §3.3). A late joiner receives a
# member's entries before the roster.add that introduces them when feeds
# arrive sorted by key; one batch (1 MiB) holds a few thousand small entries.
MAX_HELD_PER_AUTHOR = 4096
MAX_HELD_TOTAL = 16 * 1024


def entry_hash(body: bytes) -> bytes:
    """BLAKE2b-256 of the body bytes: an entry's id and its successor's ``prev``."""
    return hashlib.blake2b(body, digest_size=HASH_BYTES).digest()


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded entry. ``envelope`` holds the exact bytes to store and relay."""

    envelope: bytes
    body: bytes
    signature: bytes
    hash: bytes
    mid: bytes
    author: bytes
    seq: int
    prev: bytes | None
    lam: int
    ts: int
    type: str
    data: dict[str, Any]

    @property
    def order_key(self) -> tuple[int, bytes, int]:
        """Position in the fold (SPEC §5.1): Lamport clock, author, seq."""
        return (self.lam, self.author, self.seq)


def _is_uint(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def decode_entry(envelope: bytes) -> Entry:
    """Decode and shape-check an entry; does not check meeting, author or signature."""
    parts = split_entry_envelope(envelope, ENTRY_LIMITS)  # the fast path, same answer
    if parts is None:
        outer = unpack(envelope, ENTRY_LIMITS)
        if not (
            isinstance(outer, list)
            and len(outer) == 2
            and isinstance(outer[0], bytes)
            and isinstance(outer[1], bytes)
            and len(outer[1]) == 64
        ):
            raise MalformedFrame("an entry is [body: bin, signature: bin64]")
        parts = (outer[0], outer[1])
    body, signature = parts
    fields = unpack(body, ENTRY_LIMITS)
    if not isinstance(fields, dict) or tuple(fields) != BODY_KEYS:
        raise MalformedFrame(f"an entry body has exactly the keys {', '.join(BODY_KEYS)}")
    version = fields["v"]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"entry version {version!r}, this program speaks {PROTOCOL_VERSION}"
        )
    mid, author, seq, prev = fields["mid"], fields["au"], fields["seq"], fields["prev"]
    lam, ts, kind, data = fields["lam"], fields["ts"], fields["type"], fields["data"]
    if not (isinstance(mid, bytes) and len(mid) == MEETING_ID_BYTES):
        raise MalformedFrame("mid must be 16 bytes")
    if not (isinstance(author, bytes) and len(author) == KEY_BYTES):
        raise MalformedFrame("au must be a 32-byte key")
    if not (_is_uint(seq, MAX_SEQ) and seq >= 1):
        raise MalformedFrame("seq must be an integer from 1")
    if seq == 1:
        if prev is not None:
            raise MalformedFrame("prev must be nil at seq 1")
    elif not (isinstance(prev, bytes) and len(prev) == HASH_BYTES):
        raise MalformedFrame("prev must be a 32-byte hash after seq 1")
    if not (_is_uint(lam, MAX_LAMPORT) and lam >= 1):
        raise MalformedFrame("lam must be an integer from 1")
    if not _is_uint(ts, MAX_LAMPORT):
        raise MalformedFrame("ts must be a non-negative integer (ms)")
    if not (isinstance(kind, str) and 0 < len(kind) <= MAX_TYPE_LEN):
        raise MalformedFrame("type must be a short string")
    if not isinstance(data, dict):
        raise MalformedFrame("data must be a map")
    return Entry(
        envelope=envelope,
        body=body,
        signature=signature,
        hash=entry_hash(body),
        mid=mid,
        author=author,
        seq=seq,
        prev=prev,
        lam=lam,
        ts=ts,
        type=kind,
        data=data,
    )


def encode_entry(
    identity: Identity,
    *,
    mid: bytes,
    seq: int,
    prev: bytes | None,
    lam: int,
    ts: int,
    kind: str,
    data: dict[str, Any],
) -> Entry:
    """Build and sign an entry, then decode it back so that what we store is
    exactly what every peer will check."""
    body = pack(
        {
            "v": PROTOCOL_VERSION,
            "mid": mid,
            "au": identity.key,
            "seq": seq,
            "prev": prev,
            "lam": lam,
            "ts": ts,
            "type": kind,
            "data": data,
        }
    )
    # The body is the binding limit (SPEC §2.3): a body within max_bin always
    # makes an envelope within max_bytes.
    if len(body) > ENTRY_LIMITS.max_bin:
        raise LocalProtocolError(
            f"entry too large: its body is {len(body)} bytes, one entry holds "
            f"at most {ENTRY_LIMITS.max_bin}"
        )
    envelope = pack([body, identity.sign(ENTRY_CONTEXT, body)])
    try:
        return decode_entry(envelope)
    except RemoteProtocolError as exc:
        # Our own entry breaking a limit (a body over max_bin, an out-of-range
        # field) is a local misuse, not something a peer sent.
        raise LocalProtocolError(f"entry cannot be encoded: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ForkProof:
    """Two different entries signed by one author at the same ``seq``."""

    first: Entry
    second: Entry

    @property
    def author(self) -> bytes:
        return self.first.author

    @property
    def seq(self) -> int:
        return self.first.seq

    def envelopes(self) -> list[bytes]:
        """Canonical order (by entry hash), so every peer shares the same proof."""
        a, b = sorted((self.first, self.second), key=lambda e: e.hash)
        return [a.envelope, b.envelope]


@dataclass(slots=True)
class IngestResult:
    """What one ``Log.ingest`` call did. ``accepted`` lists entries newly in
    their author's feed (the ingested one and any it released from the buffer)."""

    accepted: list[Entry] = field(default_factory=list)
    duplicate: bool = False
    buffered: Entry | None = None
    fork: ForkProof | None = None
    removed: list[Entry] = field(default_factory=list)
    held: Entry | None = None
    evicted: list[Entry] = field(default_factory=list)


class Log:
    """All feeds of one meeting. ``is_known`` decides who may author entries."""

    def __init__(self, mid: bytes, is_known: Callable[[bytes], bool]) -> None:
        if len(mid) != MEETING_ID_BYTES:
            raise LocalProtocolError("meeting id must be 16 bytes")
        self.mid = mid
        self._is_known = is_known
        self._feeds: dict[bytes, list[Entry]] = {}
        self._pending: dict[bytes, dict[int, Entry]] = {}
        self._pending_total = 0
        self._forks: dict[bytes, ForkProof] = {}
        self._verify_keys: dict[bytes, VerifyKey] = {}
        # Insertion order is age: eviction takes the oldest first, so junk
        # that never becomes known ages out before fresh honest entries.
        self._held: dict[tuple[bytes, int], Entry] = {}
        self._held_per_author: dict[bytes, int] = {}
        self.max_lamport = 0

    # -- reading ----------------------------------------------------------

    def feed(self, author: bytes) -> list[Entry]:
        return self._feeds.get(author, [])

    def head(self, author: bytes) -> Entry | None:
        feed = self._feeds.get(author)
        return feed[-1] if feed else None

    def entries(self) -> Iterator[Entry]:
        for feed in self._feeds.values():
            yield from feed

    def __len__(self) -> int:
        return sum(len(feed) for feed in self._feeds.values())

    @property
    def forks(self) -> dict[bytes, ForkProof]:
        return dict(self._forks)

    def frozen_at(self, author: bytes) -> int | None:
        proof = self._forks.get(author)
        return proof.seq if proof else None

    def summary(self) -> list[list[Any]]:
        """The summary vector ``[[author, seq, head_hash], ...]`` sorted by author."""
        return [[au, len(feed), feed[-1].hash] for au, feed in sorted(self._feeds.items()) if feed]

    def missing_range(self, author: bytes) -> tuple[int, int] | None:
        """The seq range this log lacks before its earliest buffered entry."""
        pending = self._pending.get(author)
        if not pending:
            return None
        return (len(self.feed(author)) + 1, min(pending) - 1)

    @property
    def pending_count(self) -> int:
        """How many entries wait in the buffer for the ones before them (all authors)."""
        return self._pending_total

    @property
    def held_count(self) -> int:
        """How many entries of not-yet-known keys are held (all keys)."""
        return len(self._held)

    def held_authors(self) -> list[bytes]:
        return list(self._held_per_author)

    # -- writing ----------------------------------------------------------

    def _verify(self, entry: Entry) -> None:
        key = self._verify_keys.get(entry.author)
        if key is None:
            key = self._verify_keys[entry.author] = VerifyKey(entry.author)
        try:
            key.verify(ENTRY_CONTEXT + entry.body, entry.signature)
        except BadSignatureError as exc:
            raise BadSignature(f"bad signature on seq {entry.seq}") from exc

    def authenticate(self, envelope: bytes) -> Entry:
        """Decode, then check meeting, author and signature. Changes nothing."""
        return self.authenticate_entry(decode_entry(envelope))

    def authenticate_entry(self, entry: Entry) -> Entry:
        """Check a decoded entry's meeting, author and signature. Changes nothing."""
        if entry.mid != self.mid:
            raise WrongMeeting("entry belongs to another meeting")
        if not self._is_known(entry.author):
            raise UnknownAuthor("author is not in this meeting's roster")
        if not self._holds(entry):
            # A body we already hold was verified when it arrived; a replay
            # costs no signature check (and changes nothing: see ``add``).
            self._verify(entry)
        return entry

    def hold(self, entry: Entry) -> IngestResult:
        """Keep an entry whose author is not known yet until ``release`` (SPEC
        §3.3). The signature is checked against the claimed key first, so
        only what that key signed is held. A key already holding
        ``MAX_HELD_PER_AUTHOR`` entries gets ``HoldFull`` (nothing changes);
        a full hold evicts its oldest entry, listed in ``evicted``."""
        if entry.mid != self.mid:
            raise WrongMeeting("entry belongs to another meeting")
        place = (entry.author, entry.seq)
        held = self._held.get(place)
        if held is not None and held.envelope == entry.envelope:
            return IngestResult(duplicate=True)
        self._verify(entry)
        if held is not None:
            # Two signed entries at one place: the first stays; the fork is
            # found (and proven) by ``add`` once the author is known and
            # sync brings the other one again. Nothing changes here.
            return IngestResult()
        count = self._held_per_author.get(entry.author, 0)
        if count >= MAX_HELD_PER_AUTHOR:
            raise HoldFull("too many entries held for a key not known yet")
        evicted = []
        if len(self._held) >= MAX_HELD_TOTAL:
            oldest = next(iter(self._held))
            evicted.append(self._unhold(oldest))
        self._held[place] = entry
        # Read again: the eviction may have taken one of this author's.
        self._held_per_author[entry.author] = self._held_per_author.get(entry.author, 0) + 1
        return IngestResult(held=entry, evicted=evicted)

    def _unhold(self, place: tuple[bytes, int]) -> Entry:
        entry = self._held.pop(place)
        left = self._held_per_author[place[0]] - 1
        if left:
            self._held_per_author[place[0]] = left
        else:
            del self._held_per_author[place[0]]
        return entry

    def release(self, author: bytes) -> tuple[IngestResult, list[RemoteProtocolError]]:
        """Place the held entries of an author now known, in seq order (their
        signatures were checked when held). Returns what was placed and why
        any was not (a broken chain, a full gap buffer, a frozen feed): those
        are dropped like any refused entry, and sync brings them again."""
        if not self._is_known(author):
            raise LocalProtocolError("release only entries of a known author")
        places = sorted(place for place in self._held if place[0] == author)
        total = IngestResult()
        errors: list[RemoteProtocolError] = []
        for place in places:
            entry = self._unhold(place)
            try:
                result = self.add(entry)
            except RemoteProtocolError as error:
                errors.append(error)
                continue
            total.accepted.extend(result.accepted)
            if result.fork is not None and total.fork is None:
                total.fork, total.removed = result.fork, result.removed
            if result.buffered is not None:
                total.buffered = result.buffered
        return total, errors

    def _holds(self, entry: Entry) -> bool:
        # The whole envelope, not the body hash: the hash leaves out the
        # signature, so a held body with a forged signature would skip the
        # check and could ride into a fork proof that other peers reject.
        feed = self._feeds.get(entry.author)
        if feed is not None and entry.seq <= len(feed):
            return feed[entry.seq - 1].envelope == entry.envelope
        waiting = self._pending.get(entry.author, {}).get(entry.seq)
        return waiting is not None and waiting.envelope == entry.envelope

    def ingest(self, envelope: bytes) -> IngestResult:
        """Take one entry from anywhere; raises a ``RemoteProtocolError`` and
        changes nothing if it is not acceptable."""
        return self.add(self.authenticate(envelope))

    def add(self, entry: Entry) -> IngestResult:
        """Place an authenticated entry (from ``authenticate`` or ``encode_entry``)."""
        author, seq = entry.author, entry.seq
        frozen = self.frozen_at(author)
        feed = self._feeds.setdefault(author, [])
        if seq <= len(feed):
            existing = feed[seq - 1]
            if existing.hash == entry.hash:
                return IngestResult(duplicate=True)
            return self._fork(ForkProof(existing, entry))
        pending = self._pending.setdefault(author, {})
        waiting = pending.get(seq)
        if waiting is not None:
            if waiting.hash == entry.hash:
                return IngestResult(duplicate=True)
            return self._fork(ForkProof(waiting, entry))
        if frozen is not None and seq >= frozen:
            proof = self._forks[author]
            if entry.hash in (proof.first.hash, proof.second.hash):
                return IngestResult(duplicate=True)
            raise FrozenFeed(f"author equivocated at seq {frozen}; their feed is frozen")
        if seq == len(feed) + 1:
            self._check_link(feed, entry)
            result = IngestResult(accepted=[entry])
            self._append(feed, entry)
            self._release(author, feed, result)
            return result
        if len(pending) >= MAX_PENDING_PER_AUTHOR or self._pending_total >= MAX_PENDING_TOTAL:
            raise BufferFull("too many out-of-order entries waiting")
        pending[seq] = entry
        self._pending_total += 1
        return IngestResult(buffered=entry)

    def _check_link(self, feed: list[Entry], entry: Entry) -> None:
        if feed:
            last = feed[-1]
            if entry.prev != last.hash:
                raise BrokenChain(f"seq {entry.seq} does not link to seq {last.seq}")
            if entry.lam <= last.lam:
                raise BrokenChain("Lamport clock must increase along a feed")

    def _append(self, feed: list[Entry], entry: Entry) -> None:
        previous = feed[-1].lam if feed else 0
        feed.append(entry)
        # The clock hint for our next entry. A jump far beyond anything an
        # honest laptop writes (SPEC §3.7) does not count: otherwise one
        # member writing a huge clock would push every laptop towards the
        # limit, or out of step with each other.
        if entry.lam > self.max_lamport and entry.lam - previous <= MAX_LAMPORT_STEP:
            self.max_lamport = entry.lam

    def _release(self, author: bytes, feed: list[Entry], result: IngestResult) -> None:
        pending = self._pending.get(author)
        while pending:
            following = pending.pop(len(feed) + 1, None)
            if following is None:
                break
            self._pending_total -= 1
            try:
                self._check_link(feed, following)
            except BrokenChain:
                # The author signed another predecessor we have not seen: drop
                # it; sync will bring the other one and a fork proof.
                continue
            self._append(feed, following)
            result.accepted.append(following)

    def _fork(self, proof: ForkProof) -> IngestResult:
        author, seq = proof.author, proof.seq
        known = self._forks.get(author)
        if known is not None and known.seq <= seq:
            return IngestResult(duplicate=True)
        self._forks[author] = proof
        feed = self._feeds.get(author, [])
        removed = feed[seq - 1 :]
        del feed[seq - 1 :]
        pending = self._pending.get(author, {})
        for late in [s for s in pending if s >= seq]:
            del pending[late]
            self._pending_total -= 1
        return IngestResult(fork=proof, removed=removed)

    def ingest_fork_proof(self, envelopes: list[bytes]) -> IngestResult:
        """Check a fork proof from a peer; freeze the author if it is new."""
        if len(envelopes) != 2:
            raise BadForkProof("a fork proof holds two entries")
        first, second = (self.authenticate(envelope) for envelope in envelopes)
        if first.author != second.author or first.seq != second.seq:
            raise BadForkProof("the two entries are not at the same place")
        if first.hash == second.hash:
            raise BadForkProof("the two entries are the same")
        return self._fork(ForkProof(first, second))
