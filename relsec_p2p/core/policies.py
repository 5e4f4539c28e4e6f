"""What a member's laptop does on its own initiative, decided without I/O.

Rules of this file:
- Each policy is a decision over the folded meeting (and, for the ones that
  wait, the time the driver passes in); the driver acts on the answer through
  its Session. Each decision is made here and nowhere else.
- No clock of its own: the driver says what time it is (any monotonic
  milliseconds), so every policy is tested as a table.
- Presence is local knowledge (this laptop's links); what the fold decides
  from it is only what a majority of such proposals in the log says.
- A policy only proposes: the entry it leads to is checked by the fold like
  any other (core/rules.py), so a wrong policy cannot break a meeting.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from .state import MeetingState

DEFAULT_ABSENT_AFTER_MS = 15_000


@dataclass(frozen=True, slots=True)
class TallyAnswer:
    """What ``me`` answers to one close: co-sign it (``object`` false), or
    object, naming the votes it did not count (``left_out``; empty when its
    author was not the facilitator this laptop knew)."""

    poll: bytes
    digest: bytes
    object: bool = False
    left_out: tuple[tuple[bytes, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Held:
    """What this laptop held when a close reached it: the named votes on the
    poll by members active in its own view, the round entries that released
    anonymous votes on it, and who it took for the facilitator."""

    named: frozenset[tuple[bytes, int]] = frozenset()
    released: frozenset[tuple[bytes, int]] = frozenset()
    facilitator: bytes | None = None


def tally_answers(state: MeetingState, me: bytes, held: Mapping[bytes, Held]) -> list[TallyAnswer]:
    """The closes ``me`` should answer now (SPEC §6.5, co-signing is a check):
    for each poll not yet answered, the first close that counted ``me`` and
    that this laptop saw arrive (``held``, by close id). It co-signs only if
    the close's author was the facilitator it knew, and the close counts every
    vote it held: each named vote inside the cut and by a member the close
    counted, each released anonymous vote inside the cut. Otherwise it objects,
    naming what was left out."""
    answers: list[TallyAnswer] = []
    for poll in state.polls.values():
        if any(me in c.cosigners or me in c.objections for c in poll.closes):
            continue
        close = next((c for c in poll.closes if me in c.members and c.id in held), None)
        if close is None:
            continue
        seen = held[close.id]
        left_out = sorted(
            [
                (author, seq)
                for author, seq in seen.named
                if seq > close.cut.get(author, 0) or author not in close.members
            ]
            + [(author, seq) for author, seq in seen.released if seq > close.cut.get(author, 0)]
        )
        recognised = seen.facilitator == close.author
        answers.append(
            TallyAnswer(poll.id, close.digest, bool(left_out) or not recognised, tuple(left_out))
        )
    return answers


class FacilitatorWatch:
    """When to declare the facilitator absent (``facil.absent``, SPEC §6.2):
    once their laptop has been unreachable for ``absent_after_ms`` in a row,
    at most once per facilitation term, only by a current member who is not
    the facilitator. Reaching them again starts the wait over; a majority of
    such declarations in the log passes facilitation on."""

    def __init__(self, absent_after_ms: int = DEFAULT_ABSENT_AFTER_MS) -> None:
        self.absent_after_ms = absent_after_ms
        self._missing_since: int | None = None
        self._declared_term = -1

    def observe(
        self, now_ms: int, state: MeetingState | None, me: bytes, reachable: Container[bytes]
    ) -> bool:
        """Look at the meeting at ``now_ms`` (``reachable``: the members this
        laptop has a link to); True when ``me`` should declare the
        facilitator absent now."""
        if state is None or not state.is_member(me) or state.facilitator in (None, me):
            self._missing_since = None
            return False
        if state.facilitator in reachable:
            self._missing_since = None
            return False
        if self._missing_since is None:
            self._missing_since = now_ms
            return False
        if now_ms - self._missing_since >= self.absent_after_ms and (
            self._declared_term != state.term
        ):
            self._declared_term = state.term
            return True
        return False


@dataclass(frozen=True, slots=True)
class PresenceActions:
    """What ``PresenceWatch`` says to write now: a ``roster.away`` about each
    key in ``away``, and ``roster.back`` if ``back``."""

    away: tuple[bytes, ...] = ()
    back: bool = False


class PresenceWatch:
    """When to declare a member away (``roster.away``, SPEC §6.1 "Presence")
    and when to say this laptop is back (``roster.back``).

    A present member whose laptop this one has not reached for the wait in
    a row is declared away, once per absence (the member's ``returns`` count
    names the absence); only a present member declares, and only while it
    reaches at least one other present member. The wait is
    ``away_after_ms``, doubled for each earlier declaration about the same
    member (at most 16 times): a laptop that some can reach and others
    cannot comes back and is declared away again, and without the growing
    wait that would write entries every second. A member declared away
    writes ``roster.back`` as soon as it reaches a present member again,
    once per absence. Presence is local knowledge: these are proposals; the
    log's majority rule decides."""

    def __init__(self, away_after_ms: int = DEFAULT_ABSENT_AFTER_MS) -> None:
        self.away_after_ms = away_after_ms
        # key -> (missing since, the member's returns count then)
        self._missing_since: dict[bytes, tuple[int, int]] = {}
        self._declared: set[tuple[bytes, int]] = set()
        self._declarations: dict[bytes, int] = {}
        self._came_back: set[int] = set()

    def wait_ms(self, key: bytes) -> int:
        """How long ``key`` must be unreachable before this laptop declares it."""
        doublings: int = min(self._declarations.get(key, 0), 4)
        return self.away_after_ms << doublings

    def observe(
        self, now_ms: int, state: MeetingState | None, me: bytes, reachable: Container[bytes]
    ) -> PresenceActions:
        if state is None or not state.is_member(me):
            self._missing_since.clear()
            return PresenceActions()
        mine = state.members[me]
        if mine.away:
            linked = any(m.key in reachable for m in state.present_members())
            if linked and mine.returns not in self._came_back:
                self._came_back.add(mine.returns)
                return PresenceActions(back=True)
            return PresenceActions()
        others = [m.key for m in state.present_members() if m.key != me]
        if not any(key in reachable for key in others):
            # Reaching no one, this laptop is more likely the one cut off
            # (its Wi-Fi dropped): it declares nobody, and its waits start
            # over once it is back among the others.
            self._missing_since.clear()
            return PresenceActions()
        away: list[bytes] = []
        for member in state.present_members():
            key = member.key
            if key == me or key in reachable:
                self._missing_since.pop(key, None)
                continue
            since, returns_then = self._missing_since.get(key, (now_ms, member.returns))
            if returns_then != member.returns:
                since = now_ms  # they came back since: a new absence, a new wait
            self._missing_since[key] = (since, member.returns)
            absence = (key, member.returns)
            if now_ms - since >= self.wait_ms(key) and absence not in self._declared:
                self._declared.add(absence)
                self._declarations[key] = self._declarations.get(key, 0) + 1
                away.append(key)
        return PresenceActions(away=tuple(away))


__all__ = [
    "DEFAULT_ABSENT_AFTER_MS",
    "FacilitatorWatch",
    "Held",
    "PresenceActions",
    "PresenceWatch",
    "TallyAnswer",
    "tally_answers",
]
