"""N in-memory Sessions on a fake network (as h11's ``ConnectionPair``).

Rules of this file: nothing here knows protocol rules; it only moves payloads
between Sessions the way a real driver would (a payload goes from ``src`` to
``dst`` only while a link between them is up), with knobs to reorder,
duplicate, drop, hold and partition, and a fake clock. Tests use it to drive
the core in milliseconds, and ``Scribe``/``forge_next`` to write the entries a
modified client could write.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from relsec_p2p.core.codec import pack
from relsec_p2p.core.events import EntryAccepted, Event, ForkDetected, InputRejected
from relsec_p2p.core.feed import Entry, encode_entry
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.rules import fold
from relsec_p2p.core.session import Session
from relsec_p2p.core.state import MeetingState

MID = bytes(range(16))
START_MS = 1_700_000_000_000

# Seeded keys: fast to make and the same in every run (the tests that need
# fresh randomness call ``Identity.generate`` themselves).
IDENTITIES = [Identity.from_seed(bytes([i + 1]) * 32) for i in range(8)]
OUTSIDER = Identity.from_seed(b"\xee" * 32)
NAMES = ["Ana", "Bo", "Cy", "Di", "Ed", "Fe", "Gu", "Hu"]

TEXT, LINKED, RATING, PROPOSAL, ANON = range(5)
AGENDA: list[dict[str, Any]] = [
    {"id": "threats", "title": "Threats", "prompt": "What threatens us?", "mode": "both",
     "kind": "text"},
    {"id": "impacts", "title": "Impacts", "prompt": "What would it do?", "mode": "named",
     "kind": "text", "links": ["threats"]},
    {"id": "safety", "title": "Safety", "prompt": "How safe do you feel?", "mode": "named",
     "kind": "rating", "scale": ["low", "some", "high"]},
    {"id": "forward", "title": "Way forward", "prompt": "What do we do?", "mode": "both",
     "kind": "proposal"},
    {"id": "unsaid", "title": "Unsaid", "prompt": "What is hard to say?", "mode": "anonymous",
     "kind": "text"},
]  # fmt: skip


def entries_frame(mid: bytes, *envelopes: bytes) -> bytes:
    """An ``entries`` sync message carrying ``envelopes`` as given."""
    return pack({"t": "entries", "mid": mid, "e": list(envelopes)})


def fork_frame(mid: bytes, *envelopes: bytes) -> bytes:
    return pack({"t": "fork", "mid": mid, "p": list(envelopes)})


def forge_next(
    session: Session,
    kind: str,
    data: dict[str, Any],
    *,
    identity: Identity | None = None,
    lam: int | None = None,
    ts: int | None = None,
    seq: int | None = None,
    prev: bytes | bool | None = True,
    mid: bytes | None = None,
    deps: Sequence[tuple[bytes, int]] | None = None,
) -> Entry:
    """Sign the entry a modified client of ``identity`` (default: the
    session's own) could write next, skipping every local rule check. The
    defaults chain it correctly onto what ``session`` holds, naming every
    head ``session`` holds as a dependency and computing the clock from
    them, as an honest writer would; the keywords override any field
    (``prev=True`` means "link to the entry at seq - 1"; ``deps=[]`` claims
    to have seen nothing new, the clock then follows from that claim)."""
    identity = identity or session.identity
    log = session.log
    feed = log.feed(identity.key)
    if seq is None:
        seq = len(feed) + 1
    before = feed[seq - 2] if seq >= 2 and len(feed) >= seq - 1 else None
    if prev is True:
        prev = before.hash if before is not None else None
    if deps is None:
        covered = log.past(before) if before is not None else {}
        deps = [
            (author, length)
            for author, length, _ in log.summary()
            if author != identity.key and length > covered.get(author, 0)
        ]
    if lam is None:
        clocks = [before.lam if before is not None else 0]
        clocks += [log.feed(author)[s - 1].lam for author, s in deps if s <= len(log.feed(author))]
        lam = 1 + max(clocks)
    return encode_entry(
        identity,
        mid=mid or session.mid,
        seq=seq,
        prev=prev if isinstance(prev, bytes) else None,
        lam=lam,
        ts=session.clock() if ts is None else ts,
        kind=kind,
        data=data,
        deps=deps,
    )


@dataclass(frozen=True, slots=True)
class InFlight:
    src: bytes
    dst: bytes
    payload: bytes


class NotSettled(AssertionError):
    pass


class FakeNetwork:
    """Sessions keyed by member key, joined in a full mesh of fake links."""

    def __init__(self, *, rng: random.Random | None = None, hold_partitioned: bool = True) -> None:
        self.now_ms = START_MS
        self.rng = rng or random.Random(0)
        self.sessions: dict[bytes, Session] = {}  # join order
        self.events: dict[bytes, list[Event]] = {}
        self.in_flight: list[InFlight] = []
        self.held: list[InFlight] = []
        self.hold_partitioned = hold_partitioned
        self._group: dict[bytes, int] = {}  # partition number of each session
        self.delivered = 0
        self.history: list[InFlight] | None = None  # set to [] to record deliveries

    # -- building ---------------------------------------------------------------

    def clock(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    @classmethod
    def meeting(
        cls,
        n: int = 4,
        *,
        identities: Sequence[Identity] | None = None,
        agenda: list[dict[str, Any]] | None = None,
        settings: dict[str, Any] | None = None,
        mid: bytes = MID,
        rng: random.Random | None = None,
    ) -> FakeNetwork:
        """A settled meeting of ``n`` members; the first creates it and adds the others."""
        identities = list(identities or IDENTITIES[:n])
        net = cls(rng=rng)
        creator = Session.create(
            identities[0],
            title="Relational security",
            name=NAMES[0],
            agenda=AGENDA if agenda is None else agenda,
            settings=settings,
            clock=net.clock,
            mid=mid,
        )
        net.add_session(creator)
        for i, identity in enumerate(identities[1:], start=1):
            net.join(identity, NAMES[i % len(NAMES)], sponsor=creator)
        net.settle()
        return net

    def add_session(self, session: Session) -> Session:
        """Register ``session`` and bring up its links to every other session."""
        self.sessions[session.me] = session
        self.events[session.me] = []
        self._group[session.me] = 0
        for other in self.sessions.values():
            if other is not session and self.linked(session.me, other.me):
                session.peer_connected(other.me)
                other.peer_connected(session.me)
        self.pump()
        return session

    def join(self, identity: Identity, name: str, *, sponsor: Session) -> Session:
        """``sponsor`` adds ``identity`` to the roster; a fresh Session joins."""
        sponsor.add_member(identity.key, identity.ring_key, name)
        self.pump()
        return self.add_session(Session.join(identity, sponsor.mid, sponsor.creator, self.clock))

    # -- reading ----------------------------------------------------------------

    def __getitem__(self, index: int) -> Session:
        return list(self.sessions.values())[index]

    def __len__(self) -> int:
        return len(self.sessions)

    def __iter__(self) -> Any:
        return iter(list(self.sessions.values()))

    def digests(self) -> list[bytes]:
        return [session.digest() for session in self]

    def summaries(self) -> list[list[list[Any]]]:
        return [session.log.summary() for session in self]

    def states(self) -> list[MeetingState]:
        return [session.state for session in self]

    def rejections(self, who: bytes | None = None) -> list[InputRejected]:
        keys = [who] if who is not None else list(self.events)
        return [e for k in keys for e in self.events[k] if isinstance(e, InputRejected)]

    def snapshot(self) -> tuple[Any, ...]:
        """What anti-entropy can still change: every log's summary and forks."""
        return tuple(
            (
                tuple(tuple(head) for head in s.log.summary()),
                tuple(sorted((au, p.seq) for au, p in s.log.forks.items())),
            )
            for s in self
        )

    # -- links and partitions ---------------------------------------------------

    def linked(self, a: bytes, b: bytes) -> bool:
        # A key with no Session here (an injected outsider) reaches everyone.
        return self._group.get(a, self._group.get(b)) == self._group.get(b, self._group.get(a))

    def partition(self, *groups: Iterable[bytes]) -> None:
        """Split the network: links between groups go down (both ends see a
        disconnect); what is in flight between groups is held for the heal or
        dropped (``hold_partitioned``). Sessions not named form one more group."""
        self._group = dict.fromkeys(self.sessions, len(groups))
        for number, group in enumerate(groups):
            for key in group:
                self._group[key] = number
        for a in self.sessions:
            for b in self.sessions:
                if a != b and not self.linked(a, b):
                    self.sessions[a].peer_disconnected(b)
        keep: list[InFlight] = []
        for message in self.in_flight:
            if self.linked(message.src, message.dst):
                keep.append(message)
            elif self.hold_partitioned:
                self.held.append(message)
        self.in_flight = keep

    def heal(self) -> None:
        """Bring every link up again: each newly joined pair reconnects (which
        swaps summaries and fork proofs), held messages go back in flight, and
        everyone ticks."""
        before = dict(self._group)
        self._group = dict.fromkeys(self.sessions, 0)
        for a in self.sessions:
            for b in self.sessions:
                if a != b and before[a] != before[b]:
                    self.sessions[a].peer_connected(b)
        self.in_flight.extend(self.held)
        self.held = []
        self.tick_all()

    # -- moving payloads --------------------------------------------------------

    def pump(self) -> None:
        """Move every Session's queued sends into flight."""
        for src, session in self.sessions.items():
            for send in session.take_sends():
                self.post(src, send.peer, send.payload)

    def post(self, src: bytes, dst: bytes, payload: bytes) -> None:
        """Put a payload in flight, as if ``src`` had sent it (used to inject forgeries)."""
        if dst not in self.sessions:
            return  # nobody there: a real driver has no link to send it on
        message = InFlight(src, dst, payload)
        if self.linked(src, dst):
            self.in_flight.append(message)
        elif self.hold_partitioned:
            self.held.append(message)

    def deliver(self, index: int = 0) -> list[Event]:
        """Deliver the ``index``-th payload in flight (0: the oldest)."""
        message = self.in_flight.pop(index)
        return self._hand_over(message)

    def _hand_over(self, message: InFlight) -> list[Event]:
        if not self.linked(message.src, message.dst):
            if self.hold_partitioned:
                self.held.append(message)
            return []
        events = self.sessions[message.dst].receive(message.src, message.payload)
        self.events[message.dst].extend(events)
        self.delivered += 1
        if self.history is not None:
            self.history.append(message)
        self.pump()
        return events

    def send_now(self, src: bytes, dst: bytes, payload: bytes) -> list[Event]:
        """Deliver one payload at once, bypassing the queue (adversarial tests)."""
        return self._hand_over(InFlight(src, dst, payload))

    def deliver_all(
        self, *, rng: random.Random | None = None, loss: float = 0.0, limit: int = 100_000
    ) -> int:
        """Deliver until nothing is in flight (what Sessions have queued to
        send included): FIFO, or in ``rng``'s random order, losing each
        payload with probability ``loss`` (needs ``rng``)."""
        self.pump()
        count = 0
        while self.in_flight:
            if count >= limit:
                raise NotSettled(f"still {len(self.in_flight)} in flight after {limit}")
            index = rng.randrange(len(self.in_flight)) if rng is not None else 0
            if loss and rng is not None and rng.random() < loss:
                self.drop(index)
            else:
                self.deliver(index)
            count += 1
        return count

    def lossy_rounds(self, rng: random.Random, rounds: int = 3, loss: float = 0.3) -> None:
        """Anti-entropy on a lossy network: tick and deliver, losing some of
        everything (fork broadcasts and sync replies included)."""
        for _ in range(rounds):
            self.tick_all()
            self.deliver_all(rng=rng, loss=loss)

    def duplicate(self, index: int) -> None:
        """Put a copy of the ``index``-th payload in flight (at the end)."""
        self.in_flight.append(self.in_flight[index])

    def drop(self, index: int) -> InFlight:
        return self.in_flight.pop(index)

    def drop_from(self, src: bytes) -> list[InFlight]:
        """Drop everything ``src`` has in flight (to hand-deliver it instead)."""
        dropped = [m for m in self.in_flight if m.src == src]
        self.in_flight = [m for m in self.in_flight if m.src != src]
        return dropped

    def tick_all(self) -> None:
        for session in self:
            session.tick()
        self.pump()

    def settle(self, *, rng: random.Random | None = None, max_rounds: int = 30) -> int:
        """Tick and deliver until a round changes no log: the fixpoint of
        anti-entropy. Returns the rounds it took."""
        for rounds in range(1, max_rounds + 1):
            before = self.snapshot()
            self.tick_all()
            self.deliver_all(rng=rng)
            if self.snapshot() == before:
                return rounds
        raise NotSettled(f"no fixpoint after {max_rounds} rounds")

    # -- anonymous rounds (SPEC §13) ----------------------------------------------

    def tick_rounds(self) -> None:
        """Every Session checks its round deadlines and schedule."""
        for session in self:
            session.tick_rounds()
        self.pump()

    def run_rounds(
        self,
        until: Callable[[], bool],
        *,
        step_ms: int = 100,
        max_ms: int = 60_000,
        rng: random.Random | None = None,
    ) -> int:
        """Let time pass in steps: rounds run, their messages and the log sync
        are delivered, until ``until()`` holds. Returns the milliseconds it took."""
        waited = 0
        while not until():
            if waited >= max_ms:
                raise NotSettled(f"not there after {max_ms} ms of rounds")
            self.advance(step_ms)
            waited += step_ms
            self.tick_rounds()
            self.deliver_all(rng=rng)
            if waited % 1000 == 0:
                self.tick_all()
                self.deliver_all(rng=rng)
        return waited


def accepted(events: Iterable[Event]) -> list[EntryAccepted]:
    return [e for e in events if isinstance(e, EntryAccepted)]


def forks(events: Iterable[Event]) -> list[ForkDetected]:
    return [e for e in events if isinstance(e, ForkDetected)]


def codes(events: Iterable[Event]) -> list[str]:
    return [e.code for e in events if isinstance(e, InputRejected)]


class Scribe:
    """Writes correctly chained, signed entries for any identities, and folds
    them. Each entry names every head written before it (``deps``) and carries
    the clock that makes, as an honest writer does (SPEC §3.7), unless the
    test chooses a clock (``lam``: for rule tests that fold without a Log,
    which does not check clocks). For rule tests that need no network."""

    def __init__(self, creator: Identity, mid: bytes = MID) -> None:
        self.mid = mid
        self.creator = creator
        self.entries: list[Entry] = []
        self._heads: dict[bytes, Entry] = {}
        self._past: dict[bytes, dict[bytes, int]] = {}
        self.lam = 0
        self.ts = START_MS

    def write(
        self,
        identity: Identity,
        kind: str,
        data: dict[str, Any],
        *,
        lam: int | None = None,
        ts: int | None = None,
        keep: bool = True,
    ) -> Entry:
        """Append the author's next entry; ``keep=False`` signs it without
        adding it to the log (to ask the fold about it)."""
        head = self._heads.get(identity.key)
        covered = self._past[head.hash] if head is not None else {}
        deps = [
            (author, other.seq)
            for author, other in sorted(self._heads.items())
            if author != identity.key and other.seq > covered.get(author, 0)
        ]
        if lam is None:
            lam = 1 + max([head.lam if head else 0] + [self._heads[a].lam for a, _ in deps])
        if head is not None and lam <= head.lam:
            raise ValueError("a feed's Lamport clock must increase (Log would refuse this)")
        entry = encode_entry(
            identity,
            mid=self.mid,
            seq=head.seq + 1 if head else 1,
            prev=head.hash if head else None,
            lam=lam,
            ts=self.ts if ts is None else ts,
            kind=kind,
            data=data,
            deps=deps,
        )
        if keep:
            past = dict(covered)
            for author, _ in deps:
                for key, seq in self._past[self._heads[author].hash].items():
                    past[key] = max(past.get(key, 0), seq)
            past[identity.key] = entry.seq
            self._past[entry.hash] = past
            self.entries.append(entry)
            self._heads[identity.key] = entry
            self.lam = max(self.lam, lam)
        return entry

    def heads(self) -> list[Entry]:
        """Every author's latest entry written so far."""
        return list(self._heads.values())

    def state(self, frozen: dict[bytes, int] | None = None) -> MeetingState:
        ordered = sorted(self.entries, key=lambda e: e.order_key)
        return fold(self.mid, self.creator.key, ordered, frozen or {})

    def create(self, *, agenda: list[dict[str, Any]] | None = None, **settings: Any) -> Entry:
        return self.write(
            self.creator,
            "meeting.create",
            {
                "title": "Relational security",
                "name": NAMES[0],
                "ring": self.creator.ring_key,
                "agenda": AGENDA if agenda is None else agenda,
                "settings": settings,
            },
        )

    def add(self, sponsor: Identity, member: Identity, name: str = "Someone") -> Entry:
        return self.write(
            sponsor, "roster.add", {"key": member.key, "ring": member.ring_key, "name": name}
        )


def acknowledge(net: FakeNetwork, *honest: Session) -> None:
    """What honest nodes do shortly after accepting a roster, facilitation,
    step, poll or tally entry (net/node.py, SPEC §6.10): write an ``ack`` if
    one is owed, until none is; ``honest`` defaults to every session."""
    sessions = list(honest) or list(net)
    for _ in range(10):
        due = [session for session in sessions if session.ack_due()]
        if not due:
            return
        for session in due:
            session.ack()
        net.settle()
    raise NotSettled("acks still owed after 10 rounds")


def open_poll(net: FakeNetwork) -> bytes:
    """The first member opens the proposal step, the second proposes, the
    first opens a poll on it; the room settles after each. The poll's id."""
    facilitator, proposer = net[0], net[1]
    facilitator.open_step(PROPOSAL)
    net.settle()
    proposal = proposer.propose(PROPOSAL, "We do X")
    net.settle()
    poll = facilitator.open_poll(proposal.hash)
    net.settle()
    return poll.hash
