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
- Entries are causal (SPEC §3.1, §3.3): an entry names, in ``deps``, the heads
  of other feeds its author had accepted, and its clock is computed from them,
  ``lam = 1 + max(lam(prev), lam(each dependency))``; any other clock is
  refused (``bad_clock``). Each accepted entry gets a vector clock, its causal
  past, so "is E in the past of F" is one lookup.
- Out-of-order entries, and entries whose dependencies are not all accepted
  yet, wait in one bounded gap buffer.
- Entries by a key not known yet (a member whose ``roster.add`` has not
  arrived) wait, signature checked, in a bounded hold until the key becomes
  known; when the hold is full the oldest held entry is evicted (sync
  fetches it again once its author is known).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .codec import ENTRY_LIMITS, pack, split_entry_envelope, unpack
from .errors import (
    BadClock,
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
BODY_KEYS = ("au", "data", "deps", "lam", "mid", "prev", "seq", "ts", "type", "v")
MAX_TYPE_LEN = 32
MAX_SEQ = (1 << 32) - 1
MAX_LAMPORT = (1 << 53) - 1
# Dependencies one entry names (SPEC §3.1): one per other author at most, and
# an honest writer names only feeds that grew since its previous entry.
MAX_DEPS = 256
# A dependency beyond a fork cannot be checked (the entry it named left the
# log with the fork, §3.5): the clock may exceed the checked parts by at most
# this much (SPEC §3.3 step 5.4).
MAX_UNCHECKED_STEP = 1 << 24
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
    deps: tuple[tuple[bytes, int], ...] = ()

    @property
    def order_key(self) -> tuple[int, bytes, int]:
        """Position in the fold (SPEC §5.1): Lamport clock, author, seq."""
        return (self.lam, self.author, self.seq)


def _is_uint(value: Any, maximum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def parse_deps(raw: Any, author: bytes) -> tuple[tuple[bytes, int], ...] | None:
    """``[[au, seq], ...]``: at most MAX_DEPS pairs, strictly ascending by
    ``au``, none by ``author`` itself (``prev`` covers its own feed)."""
    if not isinstance(raw, list) or len(raw) > MAX_DEPS:
        return None
    pairs: list[tuple[bytes, int]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2):
            return None
        key, seq = item
        if not (isinstance(key, bytes) and len(key) == KEY_BYTES and key != author):
            return None
        if not (_is_uint(seq, MAX_SEQ) and seq >= 1):
            return None
        if pairs and key <= pairs[-1][0]:
            return None
        pairs.append((key, seq))
    return tuple(pairs)


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
    deps = parse_deps(fields["deps"], author)
    if deps is None:
        raise MalformedFrame(
            f"deps must be at most {MAX_DEPS} [key, seq] pairs of other authors, ascending by key"
        )
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
        deps=deps,
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
    deps: Sequence[tuple[bytes, int]] = (),
) -> Entry:
    """Build and sign an entry, then decode it back so that what we store is
    exactly what every peer will check. ``deps`` as ``Log.dependencies``
    gives them (the reference writer, core/session.py)."""
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
            "deps": [[key, dep_seq] for key, dep_seq in deps],
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
        # Authors whose next buffered entry waits for a given feed to grow.
        self._blocked: dict[bytes, set[bytes]] = {}
        # Vector clocks of accepted entries, by entry hash (``past``).
        self._past: dict[bytes, dict[bytes, int]] = {}
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
        if not pending or min(pending) <= len(self.feed(author)) + 1:
            return None
        return (len(self.feed(author)) + 1, min(pending) - 1)

    def missing_ranges(self) -> list[tuple[bytes, int, int]]:
        """What the buffer waits for, as ``(author, first, last)`` ranges
        sorted by author: the gaps before buffered entries, and the
        dependencies buffered entries name that this log lacks."""
        wanted: dict[bytes, tuple[int, int]] = {}
        for author, pending in self._pending.items():
            gap = self.missing_range(author)
            if gap is not None:
                wanted[author] = gap
            following = pending.get(len(self.feed(author)) + 1)
            if following is None:
                continue
            for key, named in following.deps:
                have, seq = len(self.feed(key)), self._kept(key, named)
                if seq > have:
                    first, last = wanted.get(key, (have + 1, seq))
                    wanted[key] = (min(first, have + 1), max(last, seq))
        return [(author, *wanted[author]) for author in sorted(wanted)]

    # -- causality (SPEC §3.3, §5) ------------------------------------------------

    def past(self, entry: Entry) -> Mapping[bytes, int]:
        """The causal past of an accepted entry as a vector clock: for each
        author, the highest seq of theirs the entry has in its past (itself,
        its ``prev`` chain and, recursively, its dependencies)."""
        return self._past[entry.hash]

    def in_past(self, earlier: Entry, later: Entry) -> bool:
        """Whether ``earlier`` is in the causal past of ``later`` (or is it)."""
        return self._past[later.hash].get(earlier.author, 0) >= earlier.seq

    def dependencies(self, author: bytes) -> list[tuple[bytes, int]]:
        """What ``author``'s next entry names in ``deps`` (SPEC §3.7): the
        head of every other feed that grew beyond the past of the author's
        latest entry, ascending by key, at most ``MAX_DEPS``."""
        head = self.head(author)
        covered: Mapping[bytes, int] = self._past[head.hash] if head is not None else {}
        grown = [
            (key, len(feed))
            for key, feed in sorted(self._feeds.items())
            if key != author and len(feed) > covered.get(key, 0)
        ]
        return grown[:MAX_DEPS]

    def next_clock(self, author: bytes, deps: Sequence[tuple[bytes, int]]) -> int:
        """The clock ``author``'s next entry must carry with these ``deps``."""
        head = self.head(author)
        return 1 + max([head.lam if head else 0] + [self._dep_clock(k, s)[0] for k, s in deps])

    def _kept(self, key: bytes, seq: int) -> int:
        """The seq a dependency stands for: itself, or the last entry before
        its author's fork when it is at or beyond it (the entry it named left
        the log with the fork, SPEC §3.5)."""
        frozen = self.frozen_at(key)
        return seq if frozen is None or seq < frozen else frozen - 1

    def _dep_clock(self, key: bytes, seq: int) -> tuple[int, bool]:
        """The clock of a dependency, and whether it is exact (not cut by a fork)."""
        kept = self._kept(key, seq)
        return (self._feeds[key][kept - 1].lam if kept >= 1 else 0), kept == seq

    def _ready(self, entry: Entry) -> bool:
        """Every dependency accepted (up to the fork, for one beyond it)."""
        return all(len(self.feed(key)) >= self._kept(key, seq) for key, seq in entry.deps)

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
        if len(pending) >= MAX_PENDING_PER_AUTHOR or self._pending_total >= MAX_PENDING_TOTAL:
            if seq != len(feed) + 1 or not self._ready(entry):
                raise BufferFull("too many entries waiting for the ones before them")
        if seq == len(feed) + 1:
            self._check_link(feed, entry)
            if self._ready(entry):
                self._check_clock(feed, entry)
                result = IngestResult(accepted=[entry])
                self._append(feed, entry)
                self._drain(result, author)
                return result
            self._block(author, entry)
        # A gap before it, or a dependency not accepted yet: it waits.
        pending[seq] = entry
        self._pending_total += 1
        return IngestResult(buffered=entry)

    def _block(self, author: bytes, entry: Entry) -> None:
        """Note which feed ``author``'s next entry waits for (its first
        dependency not accepted), so that only that feed's growth wakes it."""
        for key, seq in entry.deps:
            if len(self.feed(key)) < self._kept(key, seq):
                self._blocked.setdefault(key, set()).add(author)
                return

    def _check_link(self, feed: list[Entry], entry: Entry) -> None:
        if feed and entry.prev != feed[-1].hash:
            raise BrokenChain(f"seq {entry.seq} does not link to seq {feed[-1].seq}")

    def _check_clock(self, feed: list[Entry], entry: Entry) -> None:
        """``lam`` is computed, not chosen (SPEC §3.3 step 5.4): one more than
        the clock of its ``prev`` and of each dependency. Nobody can write a
        clock that their claimed knowledge does not justify."""
        parts = [feed[-1].lam if feed else 0]
        exact = True
        for key, seq in entry.deps:
            clock, known = self._dep_clock(key, seq)
            parts.append(clock)
            exact = exact and known
        expected = 1 + max(parts)
        if exact and entry.lam != expected:
            raise BadClock(f"seq {entry.seq} has clock {entry.lam}, its past makes it {expected}")
        if not exact and not expected <= entry.lam <= expected + MAX_UNCHECKED_STEP:
            raise BadClock(
                f"seq {entry.seq} has clock {entry.lam}, its past makes it "
                f"{expected} to {expected + MAX_UNCHECKED_STEP}"
            )

    def _append(self, feed: list[Entry], entry: Entry) -> None:
        past: dict[bytes, int] = dict(self._past[feed[-1].hash]) if feed else {}
        for key, named in entry.deps:
            seq = self._kept(key, named)
            if seq >= 1:
                for author, covered in self._past[self._feeds[key][seq - 1].hash].items():
                    if covered > past.get(author, 0):
                        past[author] = covered
        past[entry.author] = entry.seq
        self._past[entry.hash] = past
        feed.append(entry)
        self.max_lamport = max(self.max_lamport, entry.lam)

    def _drain(self, result: IngestResult, grown: bytes) -> None:
        """Accept every buffered entry that can go in now that ``grown``'s
        feed grew (or froze): its predecessor is in the feed and its
        dependencies are accepted. One that does not link or has a wrong
        clock is dropped (sync brings another, or a fork)."""
        work = [grown]
        while work:
            changed = work.pop()
            for author in sorted({changed} | self._blocked.pop(changed, set())):
                pending = self._pending.get(author)
                feed = self._feeds.setdefault(author, [])
                following = pending.get(len(feed) + 1) if pending else None
                if following is None:
                    continue
                if not self._ready(following):
                    self._block(author, following)
                    continue
                assert pending is not None  # noqa: S101 (following came from it)
                del pending[following.seq]
                self._pending_total -= 1
                try:
                    self._check_link(feed, following)
                    self._check_clock(feed, following)
                except (BrokenChain, BadClock):
                    continue
                self._append(feed, following)
                result.accepted.append(following)
                work.append(author)

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
        result = IngestResult(fork=proof, removed=removed)
        # Entries waiting for this author's entries beyond the fork can go in.
        self._drain(result, author)
        return result

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
