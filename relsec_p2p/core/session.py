"""The façade the network layer drives: frames in, events out; local actions
in, frames to send out. No I/O, no clock of its own (the driver injects one).

Rules of this file (sync messages: protocol/SPEC.md §7):
- Peers are identified by their public signing key; the driver has
  authenticated the link before it calls ``receive``.
- Every frame from a peer is decoded with limits; anything wrong becomes an
  ``InputRejected`` event and changes nothing. One bad entry in a batch does
  not spoil the others.
- A local action is checked against the current meeting with the very rule
  every peer will apply (``rules.why_ignored``) before it is signed and sent,
  so this laptop never writes an entry the others would ignore; a refusal is
  an ``EntryRefused`` carrying the rule's stable code.
- The fold is incremental while entries arrive in fold order, and redone
  lazily (once, on the next read) when one arrives out of order, or when an
  entry settles that re-dates entries already folded (core/settlement.py).
- After accepting an acknowledged type from another laptop (a roster,
  facilitation, step, poll or tally entry), this laptop owes an ``ack``
  (``ack_due``); the driver writes it shortly after unless this laptop
  wrote something else meanwhile (SPEC §6.10).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

from . import shuffle
from .anon import AnonymousChannel, Report
from .codec import DEFAULT_MAX_FRAME, FRAME_LIMITS, pack, unpack
from .errors import (
    EntryRefused,
    HoldFull,
    LocalProtocolError,
    MalformedFrame,
    RemoteProtocolError,
    UnknownAuthor,
    WrongMeeting,
)
from .events import EntryAccepted, Event, ForkDetected, InputRejected, MeetingChanged, Send
from .feed import (
    HASH_BYTES,
    MAX_LAMPORT,
    MEETING_ID_BYTES,
    Entry,
    IngestResult,
    Log,
    decode_entry,
    encode_entry,
)
from .identity import KEY_BYTES, Identity
from .places import WHERE, read_where
from .policies import Held
from .refusals import Refusal, Refused
from .requests import AnonymousRequest
from .rules import REMOVING_TYPES, apply_entry, fold, why_ignored
from .settlement import ACKED_TYPES, OrderKey, Settlement, fold_order, order_key, redated
from .state import MAX_MEMBERS_EVER, MeetingState

Clock = Callable[[], int]

# Envelope bytes in one entries message (SPEC §7.7): a quarter of a frame,
# so a laptop taking in a catch-up pauses at most about 1 000 signature
# checks between keepalives (a whole frame's 4 000 could outlast the peer's
# idle timeout on a loaded laptop); 4096 leave room for the message's fields.
_BATCH_BUDGET = DEFAULT_MAX_FRAME // 4 - 4096
MAX_WANT_RANGES = 256
MAX_ENTRIES_PER_WANT = 20_000


def _apply_membership(state: MeetingState, entry: Entry) -> bool:
    """Apply one membership entry to a folded state; False when only a full
    fold gives the right state: a declaration (the hand-over rule reads every
    one in the input, §6.2) or a removal below what its member had folded
    (the restart rule, §5.3). The same cases make the session refold."""
    applied = apply_entry(state, entry) is None
    if entry.type == "facil.absent":
        return False
    if applied and entry.type == "roster.remove":
        return bool(state.folded_seq.get(entry.data["who"], 0) <= entry.data["upto"])
    return True


def _sync_message(kind: str, mid: bytes, **fields: Any) -> bytes:
    return pack({"t": kind, "mid": mid, **fields})


def _in_fold_order(entries: list[Entry]) -> list[Entry]:
    """Entries to send, in fold order (SPEC §7.2, §5.1). Along one feed the
    Lamport clock grows with seq, so every feed still arrives in seq order;
    and a member's ``roster.add`` comes before that member's entries. A
    laptop catching up then folds each entry once as it arrives, instead of
    holding entries of members it does not know yet and folding the whole
    log again each time an entry sorts before what it has folded."""
    return sorted(entries, key=lambda entry: entry.order_key)


class Session:
    """One member's view of one meeting."""

    def __init__(self, identity: Identity, mid: bytes, creator: bytes, clock: Clock) -> None:
        if len(mid) != MEETING_ID_BYTES or len(creator) != KEY_BYTES:
            raise LocalProtocolError("a meeting id is 16 bytes and a creator key 32")
        self.identity = identity
        self.mid = mid
        self.creator = creator
        self._clock = clock
        # Known authors (SPEC §3.3): the creator and every key the fold has
        # added, so the set depends only on the log, not on arrival order,
        # and the fold bounds it (MAX_MEMBERS_EVER).
        self._known: set[bytes] = {creator}
        self.log = Log(mid, self._is_known)
        self._state = MeetingState(mid=mid, creator=creator)
        self._last_folded: OrderKey | None = None
        self.settlement = Settlement(
            self.log.past, self.log.head, self._fold_membership, _apply_membership
        )
        # Entries of the acknowledged types by others, not yet in our past.
        self._to_ack: list[Entry] = []
        self._dirty = False
        self._peers: set[bytes] = set()
        self._outbox: list[Send] = []
        self._new_entries: list[Entry] = []  # ours, not yet sent (see take_sends)
        self._held_at_close: dict[bytes, Held] = {}
        # Envelopes of entries in the log's feeds (never of one that left
        # them, by a fork): a copy received again is skipped before decoding.
        self._stored: set[bytes] = set()
        # Anonymous rounds (SPEC §13): their messages are not log entries.
        self.anonymous = AnonymousChannel(
            identity,
            mid,
            state=lambda: self.state,
            peers=lambda: frozenset(self._peers),
            clock=clock,
            send=self._send,
            append=self.act,
            log_clock=lambda: self.log.max_lamport,
        )

    # -- construction ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        identity: Identity,
        *,
        title: str,
        name: str,
        agenda: list[dict[str, Any]],
        settings: dict[str, Any] | None = None,
        clock: Clock,
        mid: bytes | None = None,
    ) -> Session:
        """Start a new meeting with this identity as creator and facilitator."""
        session = cls(identity, mid or os.urandom(MEETING_ID_BYTES), identity.key, clock)
        session.act(
            "meeting.create",
            {
                "title": title,
                "name": name,
                "ring": identity.ring_key,
                "agenda": agenda,
                "settings": settings or {},
            },
        )
        return session

    @classmethod
    def join(cls, identity: Identity, mid: bytes, creator: bytes, clock: Clock) -> Session:
        """An empty view of an existing meeting; sync fills it in once a
        member has added this identity to the roster."""
        return cls(identity, mid, creator, clock)

    # -- reading --------------------------------------------------------------

    @property
    def me(self) -> bytes:
        return self.identity.key

    @property
    def clock(self) -> Clock:
        """The clock the driver injected (milliseconds): what this session
        stamps its entries with and times its rounds by."""
        return self._clock

    @property
    def state(self) -> MeetingState:
        if self._dirty:
            ordered = self.fold_order()
            frozen = {au: proof.seq for au, proof in self.log.forks.items()}
            self._state = fold(self.mid, self.creator, ordered, frozen)
            redate = redated(self._feeds(), self.settlement.settled, self.log.past)
            self._last_folded = order_key(ordered[-1], redate) if ordered else None
            self._dirty = False
            self._known = {self.creator, *self._state.members}
        return self._state

    def digest(self) -> bytes:
        return self.state.digest()

    def fold_order(self) -> list[Entry]:
        """The log in fold order (SPEC §5.1): by clock, each entry re-dated
        after the settled entries it claims not to have seen."""
        return fold_order(self._feeds(), self.settlement.settled, self.log.past)

    def _feeds(self) -> dict[bytes, list[Entry]]:
        return {author: self.log.feed(author) for author, _, _ in self.log.summary()}

    def _fold_membership(self, entries: list[Entry]) -> MeetingState:
        frozen = {au: proof.seq for au, proof in self.log.forks.items()}
        return fold(self.mid, self.creator, entries, frozen)

    def ack_due(self) -> bool:
        """Whether this laptop owes an ``ack``: it accepted an entry of an
        acknowledged type from another laptop that none of its own entries
        has in its past yet, and it is a member who may write."""
        head = self.log.head(self.me)
        self._to_ack = [e for e in self._to_ack if head is None or not self.log.in_past(e, head)]
        return bool(self._to_ack) and self.state.is_member(self.me)

    def ack(self) -> Entry:
        """Acknowledge everything this laptop has accepted (SPEC §6.10)."""
        return self.act("ack", {})

    def own_ignored(self) -> list[tuple[Entry, Refused]]:
        """This laptop's own entries the fold ignores now, with the reason
        (SPEC §5.2): another entry sorted before one of ours (a poll closed
        first, a step was changed, a hand-over raced it). The driver tells
        the person who wrote it; nothing of theirs is dropped in silence."""
        mine = {entry.hash: entry for entry in self.log.feed(self.me)}
        return [(mine[h], refused) for h, refused in self.state.ignored if h in mine]

    @property
    def peers(self) -> frozenset[bytes]:
        return frozenset(self._peers)

    def take_sends(self) -> list[Send]:
        """Frames for the driver to deliver, in order. Our own new entries
        since the last call go first, batched into as few frames as fit: a
        burst of local actions is a few frames, not one per entry."""
        if self._new_entries:
            fresh, self._new_entries = self._new_entries, []
            queued, self._outbox = self._outbox, []
            for peer in sorted(self._peers):
                self._send_entries(peer, fresh)
            self._outbox.extend(queued)
        sends, self._outbox = self._outbox, []
        return sends

    # -- folding --------------------------------------------------------------

    def _is_known(self, key: bytes) -> bool:
        if key in self._known:
            return True
        if self._dirty:
            self.state  # noqa: B018 -- a pending full fold may add members
        return key in self._known

    def _release_held(self, peer: bytes | None, events: list[Event]) -> None:
        """Place the held entries of every key the fold has added since they
        arrived; placing them can add further members, so repeat."""
        while True:
            ready = [au for au in self.log.held_authors() if self._is_known(au)]
            if not ready:
                return
            for author in ready:
                result, errors = self.log.release(author)
                self._take(result, events)
                if peer is not None:
                    events.extend(InputRejected(peer, error) for error in errors)

    def _note_accepted(self, entry: Entry) -> None:
        if entry.type == "facil.absent":
            # A declaration can void a hand-over already folded (wherever it
            # sorts): the full fold reads every declaration (SPEC §6.2).
            self._dirty = True
        if self._dirty:
            return
        key_order = self._order_key(entry)
        if self._last_folded is not None and key_order < self._last_folded:
            self._dirty = True
            return
        applied = apply_entry(self._state, entry) is None
        self._last_folded = key_order
        if applied and entry.type == "roster.add":
            self._known.add(entry.data["key"])
        if applied and entry.type in REMOVING_TYPES:
            # Entries of the removed member past ``upto`` may already be
            # folded; the full fold knows how to take them out (SPEC §5.3).
            self._dirty = True

    def _order_key(self, entry: Entry) -> OrderKey:
        """Where ``entry`` folds now, given what has settled."""
        moved = self.settlement.redate_of(entry)
        return order_key(entry, {} if moved is None else {entry.hash: moved})

    def _settle(self, entry: Entry) -> None:
        """Count ``entry``'s acknowledgements; when entries settle that
        re-date entries already folded, the fold is redone."""
        newly = self.settlement.note(entry)
        if newly and not self._dirty:
            if self.settlement.reordered or redated(self._feeds(), newly, self.log.past):
                self._dirty = True

    def _take(self, result: IngestResult, events: list[Event]) -> None:
        self._stored.difference_update(entry.envelope for entry in result.removed)
        if result.fork is not None:
            # The fork cut a feed: settlement is counted again on what is left.
            self.settlement.reset(self.log.entries())
        self._accept(result.accepted, events)
        if result.fork is not None:
            self._dirty = True
            events.append(ForkDetected(result.fork.author, result.fork.seq))
            self._broadcast(_sync_message("fork", self.mid, p=result.fork.envelopes()))

    def _accept(self, accepted: list[Entry], events: list[Event]) -> None:
        self._stored.update(entry.envelope for entry in accepted)
        for entry in accepted:
            if entry.type == "poll.close" and entry.hash not in self._held_at_close:
                self._held_at_close[entry.hash] = self._votes_held(entry.data.get("poll"))
            if entry.type in ACKED_TYPES and entry.author != self.me:
                self._to_ack.append(entry)
            self._settle(entry)
            self._note_accepted(entry)
            events.append(EntryAccepted(entry.author, entry.seq, entry.type, entry.hash))

    # -- local actions ----------------------------------------------------------

    def act(self, kind: str, data: dict[str, Any]) -> Entry:
        """Sign, store and send one entry; refuse what the fold would ignore."""
        head = self.log.head(self.me)
        if self.log.frozen_at(self.me) is not None:
            raise LocalProtocolError("this laptop's feed is frozen after a fork")
        mine = self.log.feed(self.me)
        deps = self.log.dependencies(self.me)
        entry = encode_entry(
            self.identity,
            mid=self.mid,
            seq=len(mine) + 1,
            prev=head.hash if head else None,
            lam=self._next_lamport(deps),
            ts=self._clock(),
            kind=kind,
            data=data,
            deps=deps,
        )
        refused = why_ignored(self.state, entry)
        if refused is not None:
            raise EntryRefused(refused)
        self._take(self.log.add(entry), [])
        self._new_entries.append(entry)
        # Our own roster.add may introduce a key whose entries are held.
        self._release_held(None, [])
        return entry

    def _next_lamport(self, deps: list[tuple[bytes, int]]) -> int:
        """The clock our next entry must carry (SPEC §3.7): one more than
        our previous entry's and every dependency's (Lamport 1978). Every
        clock is checked the same way on arrival, so none in the log exceeds
        the longest causal chain: nobody can push ours to the limit."""
        following = self.log.next_clock(self.me, deps)
        if following > MAX_LAMPORT:
            raise LocalProtocolError("this laptop's Lamport clock is exhausted")
        return following

    def add_member(self, key: bytes, ring: bytes, name: str) -> Entry:
        return self.act("roster.add", {"key": key, "ring": ring, "name": name})

    def leave(self) -> Entry:
        return self.act("roster.leave", {})

    def remove(self, who: bytes) -> Entry:
        return self.act("roster.remove", {"who": who, "upto": len(self.log.feed(who))})

    def replace_member(self, who: bytes, by: bytes) -> Entry:
        """The facilitator says ``by`` (a newcomer) is the person who was
        ``who``: one entry retires the earlier key (SPEC §6.1)."""
        return self.act("roster.replace", {"who": who, "by": by, "upto": len(self.log.feed(who))})

    def declare_away(self, who: bytes) -> Entry:
        """This laptop has not reached ``who`` for the absence timeout."""
        return self.act("roster.away", {"who": who, "returns": self.state.members[who].returns})

    def come_back(self) -> Entry:
        """This laptop was declared away and is connected again."""
        return self.act("roster.back", {})

    def hand_over(self, to: bytes) -> Entry:
        return self.act("facil.handover", {"to": to})

    def declare_absent(self) -> Entry:
        return self.act("facil.absent", {"term": self.state.term})

    def open_step(self, step: int) -> Entry:
        return self.act("step.open", {"step": step})

    def close_step(self, step: int) -> Entry:
        return self.act("step.close", {"step": step})

    def advance(self) -> Entry:
        current = self.state.current
        return self.open_step(0 if current is None else current + 1)

    def contribute(
        self, step: int, text: str, *, tag: str | None = None, ref: bytes | None = None
    ) -> Entry:
        data: dict[str, Any] = {"step": step, "text": text}
        if tag is not None:
            data["tag"] = tag
        if ref is not None:
            data["ref"] = ref
        return self.act("contrib.add", data)

    def rate(self, step: int, value: int, *, ref: bytes | None = None) -> Entry:
        data: dict[str, Any] = {"step": step, "value": value}
        if ref is not None:
            data["ref"] = ref
        return self.act("rating.set", data)

    def propose(self, step: int, text: str) -> Entry:
        return self.act("proposal.add", {"step": step, "text": text})

    def open_poll(self, proposal: bytes, *, anonymous: bool = False) -> Entry:
        """Open a poll; ``anonymous`` makes a poll on a "both" step count
        anonymous votes only (SPEC §6.5)."""
        data: dict[str, Any] = {"proposal": proposal}
        if anonymous:
            data["anonymous"] = True
        return self.act("poll.open", data)

    def vote(self, poll: bytes, choice: str, *, reason: str | None = None) -> Entry:
        data: dict[str, Any] = {"poll": poll, "choice": choice}
        if reason is not None:
            data["reason"] = reason
        return self.act("vote.cast", data)

    def close_poll(self, poll: bytes) -> Entry:
        # The cut: every feed's length as this laptop holds it, up to where
        # this close will sort, so it covers only entries the fold passes
        # before it (SPEC §6.5). Votes beyond it were not seen by the
        # facilitator and do not count. Everyone who was ever in the roster:
        # a member who has left may have written the round that released
        # someone else's anonymous vote.
        mine = self.log.feed(self.me)
        place = (self._next_lamport(self.log.dependencies(self.me)), self.me, len(mine) + 1)
        members = set(self.state.members)
        cut = []
        for author, _, _ in self.log.summary():
            if author in members:
                held = sum(1 for entry in self.log.feed(author) if entry.order_key < place)
                if held:
                    cut.append([author, held])
        return self.act("poll.close", {"poll": poll, "cut": cut})

    def set_join_code(self, nameplate: int, words: tuple[str, ...]) -> Entry:
        """Publish the join code to the members (inside the encrypted log), so
        any of them can sponsor a joiner; a new one replaces it (rotation)."""
        return self.act("join.code", {"np": nameplate, "words": list(words)})

    def sign_tally(self, poll: bytes, digest: bytes | None = None) -> Entry:
        """Co-sign a close of ``poll`` (by default the one that decides it) as
        this laptop computed it."""
        closed = self.state.polls.get(poll)
        digest = digest if digest is not None else closed.tally_digest if closed else None
        if digest is None:
            raise EntryRefused(Refused(Refusal.POLL_NOT_CLOSED, "that poll is not closed"))
        return self.act("tally.sign", {"poll": poll, "digest": digest})

    def object_to_tally(
        self, poll: bytes, digest: bytes, left_out: list[tuple[bytes, int]]
    ) -> Entry:
        """Refuse to co-sign a close, naming the votes it left out (SPEC §6.5)."""
        pairs = [[author, seq] for author, seq in sorted(left_out)]
        return self.act("tally.object", {"poll": poll, "digest": digest, "left_out": pairs})

    def _votes_held(self, poll: Any) -> Held:
        """What a close of ``poll`` is checked against (``policies.Held``):
        every vote.cast on it in this laptop's log by a member active in its
        view, applied or not, and the round entries that released anonymous
        votes on it; and the facilitator this laptop knows."""
        state = self.state
        found = state.polls.get(poll) if isinstance(poll, bytes) else None
        if found is None:
            return Held(facilitator=state.facilitator)
        named = frozenset(
            (entry.author, entry.seq)
            for entry in self.log.entries()
            if entry.type == "vote.cast"
            and entry.data.get("poll") == poll
            and state.is_member(entry.author)
        )
        released = frozenset((v.author, v.seq) for v in found.anon_votes)
        return Held(named, released, state.facilitator)

    @property
    def held_at_close(self) -> dict[bytes, Held]:
        """For each close this laptop accepted: the votes it held just before
        (what ``policies.tally_answers`` checks the close's cut against)."""
        return dict(self._held_at_close)

    def record_outcome(self, poll: bytes, text: str) -> Entry:
        return self.act("outcome.record", {"poll": poll, "text": text})

    def raise_hand(self) -> Entry:
        return self.act("hand.raise", {})

    def lower_hand(self, who: bytes | None = None) -> Entry:
        return self.act("hand.lower", {} if who is None else {"who": who})

    def next_speaker(self) -> Entry:
        return self.act("hand.next", {})

    # -- anonymous rounds ------------------------------------------------------

    def submit_anonymous(self, request: AnonymousRequest) -> None:
        """Queue a request (core/requests.py) for the next anonymous round; a
        refusal is a ``LocalProtocolError`` in plain words, an ``EntryRefused``
        with the rule's code if the meeting does not take it now."""
        self.anonymous.submit(request)

    def anonymous_capacity(self) -> int:
        """The most characters of text one anonymous slot carries."""
        return self.anonymous.capacity()

    def tick_rounds(self) -> None:
        """Deadlines, the round schedule and releases to log; call often
        (the reference: every 50 ms)."""
        self.anonymous.tick()

    def rounds_to_prepare(self) -> bool:
        """A round's slot still to build: the driver calls ``prepare_rounds``
        once the frames already queued are on the wire (it costs a ring
        signature, better spent while the other members' keys travel)."""
        return self.anonymous.unprepared()

    def prepare_rounds(self) -> None:
        self.anonymous.prepare()

    def take_round_reports(self) -> list[Report]:
        """Rounds started and finished since the last call (no content)."""
        return self.anonymous.take_reports()

    def _on_where(self, peer: bytes, message: dict[str, Any], events: list[Event]) -> None:
        # Where members listen (SPEC §12.13): hints for the driver's dialer.
        events.append(read_where(peer, message))

    def _on_anon(self, peer: bytes, message: dict[str, Any], events: list[Event]) -> None:
        self.anonymous.receive(peer, message)

    # -- peers and sync ---------------------------------------------------------

    def peer_connected(self, peer: bytes) -> None:
        """A link to ``peer`` is up: swap summaries and known fork proofs."""
        self._peers.add(peer)
        self.anonymous.peer_connected(peer)
        self._send(peer, self._have_message())
        for proof in self.log.forks.values():
            self._send(peer, _sync_message("fork", self.mid, p=proof.envelopes()))

    def peer_disconnected(self, peer: bytes) -> None:
        self._peers.discard(peer)

    def tick(self) -> None:
        """Periodic anti-entropy: send our summary vector to every peer."""
        message = self._have_message()
        for peer in sorted(self._peers):
            self._send(peer, message)

    def _have_message(self) -> bytes:
        # Each fork with its seq: a peer that knows only a later fork of the
        # same author must still be sent the earlier one (SPEC §3.5).
        forks = [[au, proof.seq] for au, proof in sorted(self.log.forks.items())]
        return _sync_message("have", self.mid, heads=self.log.summary(), forks=forks)

    def _send(self, peer: bytes, payload: bytes) -> None:
        self._outbox.append(Send(peer, payload))

    def _broadcast(self, payload: bytes, *, skip: bytes | None = None) -> None:
        for peer in sorted(self._peers):
            if peer != skip:
                self._send(peer, payload)

    def _send_entries(self, peer: bytes, entries: list[Entry]) -> None:
        batch: list[bytes] = []
        size = 0
        for entry in entries:
            if batch and size + len(entry.envelope) + 8 > _BATCH_BUDGET:
                self._send(peer, _sync_message("entries", self.mid, e=batch))
                batch, size = [], 0
            batch.append(entry.envelope)
            size += len(entry.envelope) + 8
        if batch:
            self._send(peer, _sync_message("entries", self.mid, e=batch))

    def receive(self, peer: bytes, payload: bytes) -> list[Event]:
        """Take one frame's payload from an authenticated peer."""
        events: list[Event] = []
        try:
            message = unpack(payload, FRAME_LIMITS)
            if not isinstance(message, dict) or not isinstance(message.get("t"), str):
                raise MalformedFrame("a sync message is a map with a type t")
            if message.get("mid") != self.mid:
                raise WrongMeeting("sync message for another meeting")
            handler = self._HANDLERS.get(message["t"])
            if handler is None:
                raise MalformedFrame(f"unknown sync message type {message['t']!r}")
            handler(self, peer, message, events)
        except RemoteProtocolError as error:
            events.append(InputRejected(peer, error))
        if any(isinstance(event, EntryAccepted | ForkDetected) for event in events):
            events.append(MeetingChanged())
        return events

    def _on_entries(self, peer: bytes, message: dict[str, Any], events: list[Event]) -> None:
        if set(message) != {"t", "mid", "e"} or not isinstance(message["e"], list):
            raise MalformedFrame("entries has e: [entry, ...]")
        buffered: set[bytes] = set()
        for envelope in message["e"]:
            if not isinstance(envelope, bytes):
                raise MalformedFrame("an entry travels as bin")
            if envelope in self._stored:
                # Byte for byte an entry in the log: taking it in again would
                # find a duplicate and change nothing (SPEC §3.3), so it is
                # not decoded. A laptop catching up gets many: each peer
                # answers its have with everything it lacks, in flight or not.
                continue
            try:
                entry = decode_entry(envelope)
            except RemoteProtocolError as error:
                events.append(InputRejected(peer, error))
                continue
            self._ingest_one(peer, entry, events, buffered)
        # A batch may carry a member's entries before the roster.add that
        # introduces them (feeds travel sorted by key): they were held, and
        # go in now rather than being refused and fetched again.
        self._release_held(peer, events)
        # The gaps before buffered entries, and the dependencies they wait for.
        ranges = [[author, first, last] for author, first, last in self.log.missing_ranges()]
        if buffered and ranges:
            self._send(peer, _sync_message("want", self.mid, r=ranges[:MAX_WANT_RANGES]))

    def _ingest_one(
        self, peer: bytes, entry: Entry, events: list[Event], buffered: set[bytes]
    ) -> None:
        try:
            try:
                result = self.log.add(self.log.authenticate_entry(entry))
            except UnknownAuthor:
                result = self.log.hold(entry)
        except RemoteProtocolError as error:
            events.append(InputRejected(peer, error))
            return
        for _ in result.evicted:
            events.append(InputRejected(peer, HoldFull("the oldest held entry was evicted")))
        self._take(result, events)
        if result.buffered is not None:
            buffered.add(result.buffered.author)

    def _on_have(self, peer: bytes, message: dict[str, Any], events: list[Event]) -> None:
        heads, their_forks = message.get("heads"), message.get("forks")
        if (
            set(message) != {"t", "mid", "heads", "forks"}
            or not isinstance(heads, list)
            or not isinstance(their_forks, list)
            or len(their_forks) > MAX_MEMBERS_EVER
        ):
            raise MalformedFrame(
                "have has heads: [[author, seq, hash], ...] and forks: [[author, seq], ...]"
            )
        their_frozen: dict[bytes, int] = {}
        for item in their_forks:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], bytes)
                and len(item[0]) == KEY_BYTES
                and type(item[1]) is int
                and item[1] >= 1
            ):
                raise MalformedFrame("a fork is [author: bin32, seq: int>=1]")
            their_frozen[item[0]] = item[1]
        theirs: dict[bytes, tuple[int, bytes]] = {}
        for item in heads:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], bytes)
                and len(item[0]) == KEY_BYTES
                and type(item[1]) is int
                and item[1] >= 1
                and isinstance(item[2], bytes)
                and len(item[2]) == HASH_BYTES
            ):
                raise MalformedFrame("a head is [author: bin32, seq: int>=1, hash: bin32]")
            theirs[item[0]] = (item[1], item[2])
        to_send: list[Entry] = []
        # Forked authors too: a fork at seq 1 leaves an empty feed, which the
        # summary omits, and the proof must still reach a peer that holds it.
        for author in sorted({au for au, _, _ in self.log.summary()} | set(self.log.forks)):
            feed = self.log.feed(author)
            seq, head = theirs.get(author, (0, b""))
            if seq < len(feed):
                if seq >= 1 and feed[seq - 1].hash != head:
                    to_send.append(feed[seq - 1])  # they hold a fork: let them see it
                to_send.extend(feed[seq:])
            elif seq >= 1 and seq == len(feed) and feed[-1].hash != head:
                to_send.append(feed[-1])
            proof = self.log.forks.get(author)
            if proof is not None and their_frozen.get(author, proof.seq + 1) > proof.seq:
                # They do not know this author equivocated, or know only a
                # later fork (whether or not they hold any of the entries):
                # the digest covers the seq it froze at.
                self._send(peer, _sync_message("fork", self.mid, p=proof.envelopes()))
        self._send_entries(peer, _in_fold_order(to_send))

    def _on_want(self, peer: bytes, message: dict[str, Any], events: list[Event]) -> None:
        ranges = message.get("r")
        if set(message) != {"t", "mid", "r"} or not isinstance(ranges, list):
            raise MalformedFrame("want has r: [[author, first, last], ...]")
        if len(ranges) > MAX_WANT_RANGES:
            raise MalformedFrame("too many ranges in one want")
        to_send: list[Entry] = []
        for item in ranges:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], bytes)
                and all(type(x) is int and x >= 1 for x in item[1:])
            ):
                raise MalformedFrame("a range is [author, first, last]")
            author, first, last = item
            feed = self.log.feed(author)
            to_send.extend(feed[first - 1 : min(last, len(feed), first - 1 + MAX_ENTRIES_PER_WANT)])
        self._send_entries(peer, _in_fold_order(to_send[:MAX_ENTRIES_PER_WANT]))

    def _on_fork(self, peer: bytes, message: dict[str, Any], events: list[Event]) -> None:
        proof = message.get("p")
        if (
            set(message) != {"t", "mid", "p"}
            or not isinstance(proof, list)
            or not all(isinstance(x, bytes) for x in proof)
        ):
            raise MalformedFrame("fork has p: [entry, entry]")
        result = self.log.ingest_fork_proof(proof)
        self._stored.difference_update(entry.envelope for entry in result.removed)
        if result.fork is not None:
            self.settlement.reset(self.log.entries())
            self._accept(result.accepted, events)
            self._dirty = True
            events.append(ForkDetected(result.fork.author, result.fork.seq))
            self._broadcast(_sync_message("fork", self.mid, p=result.fork.envelopes()), skip=peer)

    _HANDLERS: ClassVar[
        dict[str, Callable[[Session, bytes, dict[str, Any], list[Event]], None]]
    ] = {
        "entries": _on_entries,
        "have": _on_have,
        "want": _on_want,
        "fork": _on_fork,
        WHERE: _on_where,
        **dict.fromkeys(shuffle.MESSAGE_TYPES, _on_anon),
    }
