"""This laptop's anonymous channel: what it queues, which rounds it runs, and
what goes into each slot (SPEC §13.2, §13.3). Sans-IO: the Session owns one,
hands it round messages and the time, and sends what it returns.

Rules of this file:
- Every slot of a round has the same size, ``slot_size(n)``: room for a ring
  signature over n keys plus a fixed text budget. Text that does not fit is
  refused with a sentence saying by how much, never cut (the request itself
  refuses it: core/requests.py).
- Building a slot always costs exactly one ring signature, whatever it holds
  (a dummy signs a throwaway message), so how long a laptop takes to submit
  does not show whether it has something to say.
- A new item is held until the next beat of the meeting clock (every
  ``BEAT_MS``); only then may it go into a round. Everything typed between
  two beats, on every laptop, goes into the same round, so when a round
  carries an item (in the log or on a screen) says only in which beat it was
  typed, never when, and the log reader sees it next to that beat's other
  items (SPEC §13.5 "Batching"). Holding happens on the sender, not on the
  screens: a modified client reading the log learns no more than a screen.
- A ready item goes into a round only if the round holds at least three
  members and at least two thirds of those this laptop can reach, started
  after everything the item answers (``after``), and holds every member the
  item's earlier failed rounds require (below); otherwise the slot is a
  dummy and the item waits. It leaves the queue only once it has taken
  effect in this laptop's fold, and goes back if its round fails.
- No narrowing (SPEC §13.5 "No narrowing"): once this laptop has sent its
  inner key in a round, anyone holding every other key may have read its
  item. If that round then fails, the item goes back with the round's
  members whose key reached this laptop as members any later round carrying
  it must hold; members seen withholding (a key or a release signature,
  after a unanimous GO) leave that set, are named in the log
  (``anon.blame``), never lead a round again and sit out 30 s whatever
  their links do. So the item's senders stay hidden among the honest
  members of the first round that could have shown it.
- Rounds run on a fixed schedule aligned to the meeting clock whether or not
  anyone has something to say (one starts ``LEAD_OFFSET_MS`` after each beat,
  so clocks that differ by less than that agree on which items are ready);
  the first participant in key order leads, and a round that loses someone
  restarts at once without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ring, shuffle, shuffle_round
from .anon_rules import (
    check_anonymous_item,
    rating_event,
    rating_message,
    ring_of,
    vote_message,
)
from .codec import pack
from .errors import EntryRefused, LocalProtocolError, MalformedFrame, RemoteProtocolError
from .events import short
from .feed import HASH_BYTES, Entry
from .identity import Identity, random_scalar, ring_point
from .refusals import Refusal, Refused
from .requests import (
    TEXT_CAPACITY,
    AnonymousRating,
    AnonymousRequest,
    AnonymousVote,
    wire_item,
)
from .state import MeetingState

# The part of every slot not taken by a ring signature: TEXT_CAPACITY bytes
# of text and the item's other fields fit in it.
SLOT_TEXT_BYTES = 1024
NONCE_BYTES = 8  # two members who say the same words still make two items
COVER_EVENT = b"relsec/v2/anon-cover"

ROUND_INTERVAL_MS = 2000  # while a step or poll takes anonymous input
IDLE_INTERVAL_MS = 10_000  # otherwise (a pause request still gets through)
# Items typed between two beats are released together. 10 s: a person's
# answer waits 0.5-10.5 s, and the beat is long enough that in a room where
# people write, more than one item usually shares it. Both intervals divide it,
# so a round starts just after every beat whichever schedule runs.
BEAT_MS = 10_000
# Rounds start this long after a multiple of their interval: a laptop whose
# clock is up to this far behind the leader's still counts the beat as passed.
LEAD_OFFSET_MS = 500
EXCLUDE_MS = 30_000  # a member who missed a deadline sits out this long, or until relinked
APPEND_STAGGER_MS = 1500  # the next participant appends a release if the first has not
AWAIT_LOG_MS = 15_000  # an item released but not in the log by then is sent again
MAX_QUEUE = 32
MAX_EARLY_ROUNDS = 4  # rounds whose messages came before their start
MAX_FINISHED = 64
ITEMS_PER_ENTRY_BYTES = 48 * 1024  # an anon.round entry stays under the entry limit

Send = Callable[[bytes, bytes], None]
Append = Callable[[str, dict[str, Any]], Entry]


def slot_size(participants: int) -> int:
    """Bytes of every slot in a round of ``participants``."""
    return SLOT_TEXT_BYTES + ring.signature_size(participants)


# Why a laptop resumed from a save cannot vote or rate anonymously (SPEC §4.2).
RESUMED_CANNOT_SIGN = (
    "This laptop carried on from a save, and a save never keeps the key for anonymous "
    "votes and ratings (so a seized save cannot show how you voted): you cannot vote or "
    "rate anonymously for the rest of this meeting."
)


def _signing_secret(secret: bytes | None) -> bytes:
    if secret is None:
        raise LocalProtocolError(RESUMED_CANNOT_SIGN)
    return secret


def encode_item(
    request: AnonymousRequest | None,
    *,
    mid: bytes,
    rid: bytes,
    keys: list[bytes],
    secret: bytes | None,
) -> bytes:
    """The packed item for ``request`` (empty for a dummy), signed where its
    kind is counted. ``keys`` is the round's ring; ``secret`` is None on a
    laptop resumed from a save. One ring signature, always."""
    if isinstance(request, AnonymousVote):
        poll, choice = request.poll, request.choice
        signer = _signing_secret(secret)
        message = vote_message(mid, rid, poll, choice, request.reason)
        signature = ring.sign(message, keys, signer, poll)
        return pack({**wire_item(request), "sig": signature})
    if isinstance(request, AnonymousRating):
        step, ref, value = request.step, request.ref, request.value
        signer = _signing_secret(secret)
        signature = ring.sign(
            rating_message(mid, rid, step, ref, value), keys, signer, rating_event(mid, step, ref)
        )
        return pack({**wire_item(request), "sig": signature})
    if secret is None:
        # No ring secret: the same work over a ring of the same size, with a
        # throwaway key standing in for one member's.
        secret = random_scalar()
        keys = [ring_point(secret), *keys[1:]]
    ring.sign(os.urandom(32), keys, secret, COVER_EVENT)  # the same work, thrown away
    if request is None:
        return b""
    # An answer or a pause: the nonce makes two members' same words two items.
    return pack({**wire_item(request), "n": os.urandom(NONCE_BYTES)})


def _same_target(a: AnonymousRequest, b: AnonymousRequest) -> bool:
    """A newer vote on a poll (or rating of a thing) replaces one still queued."""
    if isinstance(a, AnonymousVote) and isinstance(b, AnonymousVote):
        return a.poll == b.poll
    if isinstance(a, AnonymousRating) and isinstance(b, AnonymousRating):
        return (a.step, a.ref) == (b.step, b.ref)
    return False


@dataclass(frozen=True, slots=True)
class RoundStarted:
    """This laptop took part in a new round (for drivers that time rounds)."""

    rid: bytes
    slots: int

    def __str__(self) -> str:
        return f"round {short(self.rid)} started with {self.slots} slots"


Report = shuffle.Outcome | RoundStarted


@dataclass(slots=True)
class Queued:
    """One item on its way: the request, the log clock when it was made (a
    round carrying it must start after that, so its release sorts after
    everything it answers) and the members a round carrying it must hold,
    grown by every failed round that could have shown it (SPEC §13.5)."""

    request: AnonymousRequest
    floor: int
    must_include: frozenset[bytes] = frozenset()

    def fits(self, start: shuffle.RoundStart) -> bool:
        return self.floor <= start.after and self.must_include <= set(start.parts)

    def exposed(self, shown_to: set[bytes], withheld: set[bytes]) -> Queued:
        """The item after a failed round in which it could have been read:
        it must go only where the members whose key reached this laptop go
        too; members seen withholding are no longer counted on."""
        return Queued(
            self.request, self.floor, frozenset((self.must_include | shown_to) - withheld)
        )


@dataclass(slots=True)
class _Running:
    round: shuffle_round.Round
    request: Queued | None
    item: bytes  # what this laptop put in the slot (empty: a dummy)


@dataclass(slots=True)
class _Naming:
    """A withholding this laptop saw, to be written to the log (``anon.blame``)."""

    start: shuffle.RoundStart
    transcript: bytes
    gos: list[bytes]
    withheld: list[bytes]


class AnonymousChannel:
    """Queues, rounds and releases of one member. The owner supplies the
    meeting state, the linked peers, the clock, a way to send a payload to a
    peer and a way to append an entry (the Session's own ``act``)."""

    def __init__(
        self,
        identity: Identity,
        mid: bytes,
        *,
        state: Callable[[], MeetingState],
        peers: Callable[[], frozenset[bytes]],
        clock: Callable[[], int],
        send: Send,
        append: Append,
        log_clock: Callable[[], int],
        timeout_ms: int = shuffle.DEFAULT_TIMEOUT_MS,
        rng: shuffle.Shuffler | None = None,
    ) -> None:
        self.identity = identity
        self.me = identity.key
        self.mid = mid
        self._state = state
        self._peers = peers
        self._clock = clock
        self._send = send
        self._append = append
        self._log_clock = log_clock  # the highest Lamport clock in this laptop's log
        self.timeout_ms = timeout_ms
        self._rng = rng
        # Tests play a modified member by putting a subclass here
        # (tests/roundnet.py); nothing in the product does.
        self.round_class: type[shuffle_round.Round] = shuffle_round.Round
        self.queue: list[Queued] = []  # ready: their beat has passed
        self.held: list[tuple[Queued, int]] = []  # (item, the beat it waits for)
        self.rounds: dict[bytes, _Running] = {}
        self._early: dict[bytes, list[tuple[bytes, dict[str, Any]]]] = {}
        self._finished: list[bytes] = []
        # (round, item id, the item, since, the round's participants)
        self._awaiting: list[tuple[bytes, bytes, Queued, int, frozenset[bytes]]] = []
        self._releases: dict[bytes, tuple[shuffle.Released, int]] = {}
        self._namings: dict[bytes, _Naming] = {}
        self._barred_seen: set[bytes] = set()  # bars read from the log
        self.withholders: set[bytes] = set()  # seen withholding here, or named in the log
        self.excluded: dict[bytes, int | None] = {}  # key -> until (ms), None: for good
        self._last_lead_ms: int | None = None  # when this laptop last looked at leading
        self._restart = False  # a round just failed: the next one starts at once
        self._reports: list[Report] = []

    # -- what a person does --------------------------------------------------------

    @staticmethod
    def capacity() -> int:
        return TEXT_CAPACITY

    def submit(self, request: AnonymousRequest) -> None:
        state = self._state()
        if not state.is_member(self.me):
            raise LocalProtocolError("Join the meeting before sending anything anonymously.")
        if isinstance(request, AnonymousVote | AnonymousRating):
            _signing_secret(self.identity.ring_secret)
        if len(state.present_members()) < shuffle.MIN_PARTICIPANTS:
            raise LocalProtocolError(
                "Anonymous answers need at least 3 members present in the meeting, so that "
                "no one can tell who sent them."
            )
        if len(state.present_members()) > shuffle.MAX_PARTICIPANTS:
            raise LocalProtocolError(
                f"Anonymous rounds hold at most {shuffle.MAX_PARTICIPANTS} members; "
                "this meeting is larger."
            )
        refused = check_anonymous_item(state, wire_item(request))
        if refused is not None:
            text = f"This cannot be sent anonymously: {refused.text}."
            raise EntryRefused(Refused(refused.code, text))
        self.queue = [q for q in self.queue if not _same_target(q.request, request)]
        self.held = [(h, beat) for h, beat in self.held if not _same_target(h.request, request)]
        if len(self.queue) + len(self.held) >= MAX_QUEUE:
            raise LocalProtocolError("Too much is waiting to be sent; wait a few rounds.")
        # A newer vote replacing one already in a failed round keeps that
        # round's requirement: the old vote may have been read there.
        must = frozenset().union(
            *(
                q.must_include
                for q in [*self.queue, *(r.request for r in self.rounds.values() if r.request)]
                if _same_target(q.request, request)
            )
        )
        queued = Queued(request, self._log_clock(), must)
        self.held.append((queued, next_beat(self._clock())))

    def _ready(self, now: int) -> None:
        """Move held items whose beat has passed to the queue, in the order typed."""
        if self.held and self.held[0][1] <= now:
            self.queue.extend(request for request, beat in self.held if beat <= now)
            self.held = [(request, beat) for request, beat in self.held if beat > now]

    def pending(self) -> int:
        """Items waiting for a round (or for the log, once released)."""
        self._check_awaiting(self._clock())
        return (
            len(self.queue)
            + len(self.held)
            + len(self._awaiting)
            + sum(1 for r in self.rounds.values() if r.request is not None)
        )

    def take_reports(self) -> list[Report]:
        reports, self._reports = self._reports, []
        return reports

    @property
    def held_early(self) -> int:
        """Round messages held until their round's start arrives: key
        announcements only, at most ``MAX_PARTICIPANTS`` for each of
        ``MAX_EARLY_ROUNDS`` rounds."""
        return sum(len(held) for held in self._early.values())

    # -- links -----------------------------------------------------------------------

    def peer_connected(self, peer: bytes) -> None:
        """Linked again: a member who had missed a deadline before any inner
        key was out takes part again. One proven to cheat stays out, and one
        seen withholding after a unanimous GO sits out its time whatever its
        links do (a reconnect must not bring it back early, issue 12.1)."""
        if peer in self.withholders:
            return
        if peer in self.excluded and self.excluded[peer] is not None:
            del self.excluded[peer]

    # -- messages --------------------------------------------------------------------------

    def receive(self, peer: bytes, message: dict[str, Any]) -> None:
        """One ``anon.*`` message from a linked peer; raises a RemoteProtocolError."""
        if message["t"] == "anon.start":
            self._on_start(peer, message)
            return
        rid = message.get("r")
        if not (isinstance(rid, bytes) and len(rid) == HASH_BYTES):
            raise MalformedFrame("a round message names its round: r is bin32")
        running = self.rounds.get(rid)
        if running is None:
            if rid not in self._finished:
                self._hold_early(rid, peer, message)
            return
        sends = running.round.receive(peer, message, self._clock())
        self._route(sends)
        self._settle(rid)

    def _hold_early(self, rid: bytes, peer: bytes, message: dict[str, Any]) -> None:
        """Keep a key announcement that overtook its round's start (it came by
        another link). Nothing else can come first: every other message needs
        this laptop's own keys, so anything else for an unknown round is dropped
        (and a flood of them costs no memory)."""
        if message["t"] != "anon.keys":
            return
        held = self._early.setdefault(rid, [])
        if len(held) >= shuffle.MAX_PARTICIPANTS:
            return
        held.append((peer, message))
        while len(self._early) > MAX_EARLY_ROUNDS:
            del self._early[next(iter(self._early))]

    def _on_start(self, peer: bytes, message: dict[str, Any]) -> None:
        start = shuffle.RoundStart.from_message(peer, message)
        state = self._state()
        if self.me not in start.parts or start.rid in self.rounds:
            return
        if start.rid in self._finished or not state.is_member(self.me):
            return
        if not all(state.is_member(key) for key in start.parts):
            return  # a roster change not folded here yet: sit this one out
        self._learn_namings(state, self._clock())
        if start.leader in self.withholders or start.leader in self.excluded:
            # A member seen withholding never leads again, and one excluded
            # here does not start rounds around that (issue 12.1).
            return
        for rid, running in list(self.rounds.items()):
            if running.round.released_inner:
                continue  # past the point of no return: let it finish
            if start.leader > running.round.start.leader:
                return  # a later leader's concurrent round: keep ours
            # The same or an earlier leader starts again: our round is dead.
            self._drop(rid, running)
        self._join(start)

    def _join(self, start: shuffle.RoundStart) -> None:
        state = self._state()
        now = self._clock()
        request = self._next_request(state, start)
        keys = ring_of(state, start.parts)
        size = slot_size(len(start.parts))

        def build() -> bytes:
            # Called once the keys are out (``prepare``) or when first needed.
            running.item = encode_item(
                None if request is None else request.request,
                mid=self.mid,
                rid=start.rid,
                keys=keys,
                secret=self.identity.ring_secret,
            )
            return shuffle.pad(running.item, size)

        round_ = self.round_class(
            self.identity,
            start,
            build,
            slot=size,
            now_ms=now,
            timeout_ms=self.timeout_ms,
            rng=self._rng,
        )
        running = _Running(round_, request, b"")
        self.rounds[start.rid] = running
        self._reports.append(RoundStarted(start.rid, len(start.parts)))
        self._route(round_.begin())
        for peer, message in self._early.pop(start.rid, []):
            if start.rid not in self.rounds:
                break
            try:
                self._route(round_.receive(peer, message, now))
            except RemoteProtocolError:
                continue  # the early message was bad; the link layer never saw it
        self._settle(start.rid)

    def _next_request(self, state: MeetingState, start: shuffle.RoundStart) -> Queued | None:
        present = 1 + sum(1 for p in self._peers() if state.is_present(p))
        if len(start.parts) < shuffle.MIN_PARTICIPANTS or 3 * len(start.parts) < 2 * present:
            return None  # too small an anonymity set: a dummy, and the item waits
        self._ready(self._clock())
        # The step or poll closed while it waited: it can no longer count.
        self.queue = [
            q for q in self.queue if check_anonymous_item(state, wire_item(q.request)) is None
        ]
        for position, queued in enumerate(self.queue):
            if queued.fits(start):
                return self.queue.pop(position)
        return None

    # -- time ------------------------------------------------------------------------------

    def unprepared(self) -> bool:
        """A round whose slot is not built yet (the driver may build it as
        soon as the round's first messages are on the wire)."""
        return any(not r.round.prepared for r in self.rounds.values())

    def prepare(self) -> None:
        for running in self.rounds.values():
            running.round.prepare()

    def tick(self) -> None:
        now = self._clock()
        self.prepare()
        for rid, running in list(self.rounds.items()):
            self._route(running.round.tick(now))
            self._settle(rid)
        self._learn_namings(self._state(), now)
        self._append_due(now)
        self._append_namings()
        self._check_awaiting(now)
        self._maybe_lead(now)

    def interval_ms(self) -> int:
        return ROUND_INTERVAL_MS if self._state().anonymous_open() else IDLE_INTERVAL_MS

    def _participants(self, state: MeetingState, now: int) -> list[bytes]:
        for key, until in list(self.excluded.items()):
            if until is not None and until <= now:
                del self.excluded[key]
        # Only members present take part (SPEC §6.1 "Presence"): a laptop the
        # room declared away joins rounds again once its roster.back is in.
        present = [p for p in self._peers() if state.is_present(p)]
        parts = sorted(p for p in {self.me, *present} if p not in self.excluded)
        while parts and parts[0] in self.withholders:
            # One seen withholding never leads, so never comes first (this
            # laptop too, if the log bars it: the others refuse its starts).
            parts.pop(0)
        return parts

    def _maybe_lead(self, now: int) -> None:
        state = self._state()
        if not state.is_member(self.me):
            return
        last = self._last_lead_ms
        # The interval is read each time, so opening an anonymous step
        # shortens the wait at once rather than after the idle interval.
        if last is not None and now < next_start(last, self.interval_ms()) and not self._restart:
            return
        if any(r.round.outcome is None for r in self.rounds.values()):
            return
        self._last_lead_ms = now
        self._restart = False
        parts = self._participants(state, now)
        if not shuffle.MIN_PARTICIPANTS <= len(parts) <= shuffle.MAX_PARTICIPANTS:
            return
        if parts[0] != self.me:
            return  # someone earlier in key order leads
        start = shuffle.RoundStart.new(self.mid, state.epoch, parts, self._log_clock())
        payload = pack(start.message(self.identity))
        for peer in parts[1:]:
            self._send(peer, payload)
        self._join(start)

    # -- results -----------------------------------------------------------------------------

    def _route(self, sends: list[shuffle.Outgoing]) -> None:
        for peer, message in sends:
            self._send(peer, pack(message))

    def _drop(self, rid: bytes, running: _Running) -> None:
        del self.rounds[rid]
        self._remember(rid)
        if running.request is not None:
            self.queue.insert(0, running.request)

    def _remember(self, rid: bytes) -> None:
        self._finished.append(rid)
        del self._finished[:-MAX_FINISHED]

    def _settle(self, rid: bytes) -> None:
        running = self.rounds.get(rid)
        if running is None or running.round.outcome is None:
            return
        round_ = running.round
        outcome = round_.outcome
        assert outcome is not None  # noqa: S101 (checked above)
        now = self._clock()
        del self.rounds[rid]
        self._remember(rid)
        self._reports.append(outcome)
        parts = frozenset(round_.parts)
        if isinstance(outcome, shuffle.Released):
            if running.request is not None:
                ident = shuffle.item_id(running.item)
                if ident in outcome.ids:
                    self._awaiting.append((rid, ident, running.request, now, parts))
                else:  # everyone read the round: it must go where they all go
                    self.queue.insert(0, running.request.exposed(set(parts), set()))
            if outcome.items:
                self._releases[rid] = (outcome, now)
                self._append_due(now)  # the first participant appends at once
            return
        culprits = set(outcome.culprits) if isinstance(outcome, shuffle.Blamed) else set()
        if round_.released_inner:
            # Our inner key is out: whoever holds every other key may have
            # read the round's items, so ours goes only where the members
            # whose key came here go too. One whose key never came kept it
            # after a unanimous GO: not counted on, and named (SPEC §13.5
            # "No narrowing"). A missing release signature is no such sign:
            # its member may lack a key someone kept from it alone.
            withheld = set(round_.parts) - set(round_.reveals)
            shown_to = set(round_.reveals) - culprits
            if running.request is not None:
                running.request = running.request.exposed(shown_to, withheld | culprits)
            if withheld:
                self._saw_withholding(round_, sorted(withheld), now)
        if running.request is not None:
            self.queue.insert(0, running.request)
        if isinstance(outcome, shuffle.Aborted):
            for key in outcome.missing:
                if key != self.me:
                    self.excluded[key] = now + EXCLUDE_MS
        else:
            for key, why in outcome.culprits.items():
                if key != self.me:
                    timed_out = "deadline" in why
                    self.excluded[key] = now + EXCLUDE_MS if timed_out else None
        self._restart = True  # restart at once, without them

    def _saw_withholding(
        self, round_: shuffle_round.Round, withheld: list[bytes], now: int
    ) -> None:
        """Members kept their key or release signature after a unanimous GO
        seen here: they never lead again, a reconnect does not bring them
        back early, and the log is told (``anon.blame``), so every laptop
        does the same."""
        self.withholders.update(withheld)
        for key in withheld:
            self.excluded[key] = now + EXCLUDE_MS
        start = round_.start
        self._namings[start.rid] = _Naming(
            start,
            round_.gos[self.me][1],
            [round_.gos[p][2] for p in start.parts],
            withheld,
        )

    def _learn_namings(self, state: MeetingState, now: int) -> None:
        """Members the log bars (most of a round's other participants named
        them, ``anon.blame``): they never lead here again, and each new bar
        sits them out of this laptop's rounds for ``EXCLUDE_MS``, whatever
        their links do."""
        for key in state.anon_barred() - self._barred_seen:
            self._barred_seen.add(key)
            self.withholders.add(key)
            if key != self.me and self.excluded.get(key, 0) is not None:
                self.excluded[key] = max(self.excluded.get(key) or 0, now + EXCLUDE_MS)

    def _append_namings(self) -> None:
        """Write the withholdings seen here to the log, each laptop its own
        (a bar needs most of the round's other participants)."""
        for rid, naming in list(self._namings.items()):
            start = naming.start
            data = {
                "epoch": start.epoch,
                "nonce": start.nonce,
                "members": list(start.parts),
                "after": start.after,
                "h": naming.transcript,
                "go": naming.gos,
                "withheld": naming.withheld,
            }
            try:
                self._append("anon.blame", data)
            except EntryRefused as refused:
                if refused.code is Refusal.RELEASE_BEFORE_START:
                    continue  # this log is behind the leader's: try again later
            except LocalProtocolError:
                pass
            del self._namings[rid]

    def _append_due(self, now: int) -> None:
        """Put released rounds in the log: the first participant still here
        at once, the next one a little later if it has not arrived, and so on."""
        state = self._state()
        for rid, (released, at) in list(self._releases.items()):
            record = state.anon_rounds.get(rid)
            # Until every item has taken effect: an entry whose items the
            # fold dropped where it sorts (a clock its appender chose) is
            # followed by the next participant's (issue 12.2).
            if record is not None and set(released.ids) <= record.applied:
                del self._releases[rid]
                continue
            if not state.is_member(self.me):
                del self._releases[rid]
                continue
            here = [p for p in released.start.parts if p == self.me or p in self._peers()]
            if now < at + here.index(self.me) * APPEND_STAGGER_MS:
                continue
            retry = False
            for data in release_entries(released):
                try:
                    self._append("anon.round", data)
                except EntryRefused as refused:
                    # This log is behind the leader's: its clock would put
                    # the entry before the round's start. Sync catches up.
                    retry = retry or refused.code is Refusal.RELEASE_BEFORE_START
                except LocalProtocolError:
                    continue  # someone else's entry got there first
            if not retry:
                del self._releases[rid]

    def _check_awaiting(self, now: int) -> None:
        """An item leaves for good only once it has taken effect in this
        laptop's fold; one released but not counted by then goes again, only
        where its round's members all go (they all read it)."""
        state = self._state()
        still: list[tuple[bytes, bytes, Queued, int, frozenset[bytes]]] = []
        for rid, ident, queued, since, parts in self._awaiting:
            record = state.anon_rounds.get(rid)
            if record is not None and ident in record.applied:
                continue  # counted
            if now - since > AWAIT_LOG_MS:
                self.queue.insert(0, queued.exposed(set(parts), set()))
                continue
            still.append((rid, ident, queued, since, parts))
        self._awaiting = still


def next_beat(now_ms: int) -> int:
    """The first beat strictly after ``now_ms``: an item typed now waits for it."""
    return (now_ms // BEAT_MS + 1) * BEAT_MS


def next_start(last_ms: int, interval_ms: int) -> int:
    """When the round after one looked at ``last_ms`` is due: the next
    ``k * interval + LEAD_OFFSET_MS`` after it. Aligned to the meeting clock
    (not to the last round), so a round starts just after every beat."""
    return ((last_ms - LEAD_OFFSET_MS) // interval_ms + 1) * interval_ms + LEAD_OFFSET_MS


def release_entries(released: shuffle.Released) -> list[dict[str, Any]]:
    """The ``anon.round`` entries that put a release in the log: all ids and
    the certificate in each, the items split so each entry stays small."""
    start = released.start
    base = {
        "after": start.after,
        "epoch": start.epoch,
        "nonce": start.nonce,
        "members": list(start.parts),
        "ids": list(released.ids),
        "go": list(released.certificate),
    }
    chunks: list[list[bytes]] = [[]]
    size = 0
    for item in released.items:
        if chunks[-1] and size + len(item) > ITEMS_PER_ENTRY_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item)
    return [{**base, "items": chunk} for chunk in chunks if chunk]


__all__ = [
    "AnonymousChannel",
    "RoundStarted",
    "encode_item",
    "next_beat",
    "next_start",
    "release_entries",
    "slot_size",
]
