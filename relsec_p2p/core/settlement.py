"""Settlement: what a majority has acknowledged, and the fold order that keeps
every entry after what its author claims not to have seen.

Rules of this file (normative text: protocol/SPEC.md §5.1, §9.2;
docs/integrity-v2.md §2.3):
- A member **acknowledges** an entry C when C is in the causal past of one
  of their entries (core/feed.py vector clocks); a feed is a chain, so it is
  enough to look at the member's latest entry.
- C is **settled** when a majority of the active members of the membership
  fold of C's own past (its ``meeting.create``, ``roster.*`` and ``facil.*``
  entries in that past, folded in ``(lam, au, seq)`` order) acknowledge it.
  This reads only C's past, which is fixed, and acknowledgements, which only
  grow: once settled, settled, on every laptop that holds the same entries.
- **Fold order**: an entry E that is not in the past of a settled entry C
  with ``lam(C) > lam(E)`` (or ``=``, when E is not settled itself: see
  ``moves``) is re-dated just after the latest such C:
  ``key(E) = (lam', True, lam, au, seq)`` with ``lam'`` the largest such
  ``lam(C)``; an entry not re-dated keeps ``(lam, False, lam, au, seq)``.
  An entry that claims not to have seen settled history cannot sort before
  it.
- Only the entry types the room acknowledges (``ACKED_TYPES``) are checked
  for settlement; everything in their past is protected with them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Mapping, Sequence

from .feed import Entry
from .poll_rules import MEMBERSHIP_TYPES
from .state import MeetingState

# The entry types an honest laptop acknowledges with an ``ack`` shortly after
# accepting one (SPEC §6.10): what the current state and decisions are read
# from. Answers and votes are protected through the entries that follow them.
ACKED_TYPES = MEMBERSHIP_TYPES | frozenset(
    {
        "step.open",
        "step.close",
        "poll.open",
        "poll.close",
        "tally.sign",
        "tally.object",
        "outcome.record",
        "join.code",
        "join.open",
        "viewer.add",
        "viewer.remove",
        "anon.round",
        "anon.blame",
    }
)

OrderKey = tuple[int, bool, int, bytes, int]
PastOf = Callable[[Entry], Mapping[bytes, int]]
# Folds membership entries (already in order) from an empty meeting:
# core/rules.py's fold, handed in to keep the import one way.
MembershipFold = Callable[[list[Entry]], MeetingState]


def plain_key(entry: Entry) -> OrderKey:
    """The key of an entry that is not re-dated."""
    return (entry.lam, False, entry.lam, entry.author, entry.seq)


class Settlement:
    """Which acknowledged entries are settled, kept as entries arrive.

    ``past`` gives an accepted entry's vector clock, ``head`` each author's
    latest accepted entry, ``fold_membership`` the fold of membership
    entries, ``apply_membership`` applies one more to a folded state (the
    incremental fold, equal to a full one while no removal needs a restart,
    SPEC §5.3). ``note`` takes each newly accepted entry and returns the
    entries it settled."""

    def __init__(
        self,
        past: PastOf,
        head: Callable[[bytes], Entry | None],
        fold_membership: MembershipFold,
        apply_membership: Callable[[MeetingState, Entry], bool],
    ) -> None:
        self._past = past
        self._head = head
        self._fold_membership = fold_membership
        self._apply_membership = apply_membership
        self._membership: list[Entry] = []  # (lam, au, seq) order
        # Candidates not settled yet: their members and who acknowledged them;
        # and, per member, the candidates that member has not acknowledged
        # (only that member's next entry can change that).
        self._unsettled: dict[bytes, tuple[Entry, frozenset[bytes], set[bytes]]] = {}
        self._waiting_for: dict[bytes, dict[bytes, Entry]] = {}
        self.settled: list[Entry] = []
        self._tracked: set[bytes] = set()
        self.reordered = False  # the last ``note`` changed where a settled entry folds
        # The active members after each prefix of ``_membership`` (index k:
        # after its first k entries), and the state folded so far: an honest
        # entry has every membership entry before it in its past, so its
        # members are a prefix's.
        self._prefix: list[frozenset[bytes]] = []
        self._prefix_state: MeetingState | None = None
        self._folded: dict[tuple[bytes, ...], frozenset[bytes]] = {}
        self._by_clock: list[tuple[int, bytes]] = []  # settled, by clock
        self._settled_by_hash: dict[bytes, Entry] = {}

    def reset(self, entries: Iterable[Entry]) -> None:
        """Start again from these entries (after a fork cut a feed)."""
        self._membership, self._unsettled, self.settled = [], {}, []
        self._waiting_for = {}
        self._tracked.clear()
        self._folded.clear()
        self._prefix, self._prefix_state = [], None
        self._by_clock, self._settled_by_hash = [], {}
        newly: list[Entry] = []
        for entry in sorted(entries, key=plain_key):
            newly += self._track(entry)
        self._mark(newly)

    def note(self, entry: Entry) -> list[Entry]:
        newly = self._track(entry)
        # Only the author's own entries can add the author's acknowledgements.
        waiting = self._waiting_for.get(entry.author, {})
        if waiting:
            past = self._past(entry)
            for digest, candidate in list(waiting.items()):
                if past.get(candidate.author, 0) >= candidate.seq:
                    del waiting[digest]
                    if self._acknowledge(digest, entry.author):
                        newly.append(candidate)
        self._mark(newly)
        return newly

    def _track(self, entry: Entry) -> list[Entry]:
        """Take in one entry; returns it if it is settled at once."""
        if entry.hash in self._tracked:
            return []
        self._tracked.add(entry.hash)
        if entry.type in MEMBERSHIP_TYPES:
            place = bisect_right(self._membership, plain_key(entry), key=plain_key)
            self._membership.insert(place, entry)
            if place < len(self._prefix) - 1:
                # Sorted before entries already folded: fold again from there.
                self._prefix, self._prefix_state = [], None
        if entry.type not in ACKED_TYPES:
            return []
        members = self.members_of(entry)
        if not members:
            return []  # nobody in its past: it can never settle
        self._unsettled[entry.hash] = (entry, members, set())
        settled = False
        for member in sorted(members):
            if self.acknowledged_by(entry, member):
                settled = self._acknowledge(entry.hash, member) or settled
            else:
                self._waiting_for.setdefault(member, {})[entry.hash] = entry
        return [entry] if settled else []

    def _acknowledge(self, digest: bytes, member: bytes) -> bool:
        """Count ``member``'s acknowledgement; True when that settles it."""
        found = self._unsettled.get(digest)
        if found is None:
            return False
        _, members, acks = found
        acks.add(member)
        if len(acks) < len(members) // 2 + 1:
            return False
        del self._unsettled[digest]
        for other in members:
            self._waiting_for.get(other, {}).pop(digest, None)
        return True

    def _prefix_members(self, length: int) -> frozenset[bytes]:
        """The active members after the first ``length`` membership entries."""
        if self._prefix_state is None:
            self._prefix_state = self._fold_membership([])
            self._prefix = [frozenset()]
        while len(self._prefix) <= length:
            entry = self._membership[len(self._prefix) - 1]
            if not self._apply_membership(self._prefix_state, entry):
                # A removal that needs the fold's restart (SPEC §5.3).
                self._prefix_state = self._fold_membership(self._membership[: len(self._prefix)])
            self._prefix.append(frozenset(m.key for m in self._prefix_state.active_members()))
        return self._prefix[length]

    def members_of(self, entry: Entry) -> frozenset[bytes]:
        """The active members of the membership fold of ``entry``'s past."""
        past = self._past(entry)
        inside = [
            index
            for index, member_entry in enumerate(self._membership)
            if past.get(member_entry.author, 0) >= member_entry.seq
        ]
        if not inside or inside[-1] == len(inside) - 1:
            return self._prefix_members(len(inside))
        key = tuple(self._membership[i].hash for i in inside)
        members = self._folded.get(key)
        if members is None:
            state = self._fold_membership([self._membership[i] for i in inside])
            members = frozenset(m.key for m in state.active_members())
            self._folded[key] = members
        return members

    def acknowledged_by(self, entry: Entry, member: bytes) -> bool:
        head = self._head(member)
        return head is not None and self._past(head).get(entry.author, 0) >= entry.seq

    def is_settled(self, entry: Entry) -> bool:
        members = self.members_of(entry)
        acks = sum(1 for member in members if self.acknowledged_by(entry, member))
        return bool(members) and acks >= len(members) // 2 + 1

    def _mark(self, newly: list[Entry]) -> None:
        # An entry re-dated to its own clock stops being re-dated once it
        # settles (``moves``): the order changes, whatever it re-dates.
        self.reordered = any(self.redate_of(entry) == entry.lam for entry in newly)
        self.settled.extend(newly)
        for entry in newly:
            insort(self._by_clock, (entry.lam, entry.hash))
            self._settled_by_hash[entry.hash] = entry

    def redate_of(self, entry: Entry) -> int | None:
        """The clock ``entry`` is re-dated to now (``redated`` for one entry):
        only settled entries with a clock at least its own can move it."""
        moved: int | None = None
        start = bisect_left(self._by_clock, (entry.lam, b""))
        own = entry.hash in self._settled_by_hash
        for lam, digest in self._by_clock[start:]:
            settled = self._settled_by_hash[digest]
            if moves(settled, entry, own) and self._past(settled).get(entry.author, 0) < entry.seq:
                moved = lam
        return moved


def moves(settled: Entry, entry: Entry, entry_settled: bool) -> bool:
    """Whether ``settled`` may re-date ``entry`` (which it does not have in its
    past): it has a clock at least ``entry``'s, and strictly greater when
    ``entry`` is settled too. Two settled entries with one clock that do not
    have each other in their past (written at the same time) keep their
    ``(lam, au, seq)`` order: re-dating each after the other has no order."""
    return settled.lam > entry.lam or (settled.lam == entry.lam and not entry_settled)


def redated(
    feeds: Mapping[bytes, Sequence[Entry]], settled: Iterable[Entry], past: PastOf
) -> dict[bytes, int]:
    """For each entry to re-date (by hash), the clock it is re-dated to: the
    largest ``lam(C)`` of a settled C with ``lam(C) >= lam(E)`` and E not in
    past(C). Along a feed the clock grows, so for each C and author the
    entries concerned are one run of seqs: those after ``past(C)[author]``
    with a clock up to ``lam(C)``."""
    clocks = {author: [e.lam for e in feed] for author, feed in feeds.items()}
    settled = list(settled)
    hashes = {entry.hash for entry in settled}
    result: dict[bytes, int] = {}
    for settled_entry in settled:
        covered = past(settled_entry)
        for author, feed in feeds.items():
            first = covered.get(author, 0)
            last = bisect_right(clocks[author], settled_entry.lam)
            for entry in feed[first:last]:
                if not moves(settled_entry, entry, entry.hash in hashes):
                    continue
                if result.get(entry.hash, 0) < settled_entry.lam:
                    result[entry.hash] = settled_entry.lam
    return result


def order_key(entry: Entry, redate: Mapping[bytes, int]) -> OrderKey:
    """An entry's place in the fold (SPEC §5.1). A re-dated entry goes after
    every entry at its new clock that is not re-dated, so after the settled
    entry it did not have in its past even when their clocks are equal."""
    moved = redate.get(entry.hash)
    if moved is None:
        return plain_key(entry)
    return (moved, True, entry.lam, entry.author, entry.seq)


def fold_order(
    feeds: Mapping[bytes, Sequence[Entry]], settled: Iterable[Entry], past: PastOf
) -> list[Entry]:
    """Every entry of ``feeds`` in fold order."""
    redate = redated(feeds, settled, past)
    entries = [entry for feed in feeds.values() for entry in feed]
    return sorted(entries, key=lambda entry: order_key(entry, redate))


__all__ = [
    "ACKED_TYPES",
    "OrderKey",
    "Settlement",
    "fold_order",
    "order_key",
    "plain_key",
    "redated",
]
