"""What a member's laptop does on its own initiative, decided without I/O.

Rules of this file:
- Each policy is a decision over the folded meeting (and, for the ones that
  wait, the time the driver passes in); the driver acts on the answer through
  its Session. Each decision is made here and nowhere else.
- No clock of its own: the driver says what time it is (any monotonic
  milliseconds), so every policy is tested as a table.
- A policy only proposes: the entry it leads to is checked by the fold like
  any other (core/rules.py), so a wrong policy cannot break a meeting.
"""

from __future__ import annotations

from collections.abc import Container

from .state import MeetingState

DEFAULT_ABSENT_AFTER_MS = 15_000


def tallies_to_cosign(state: MeetingState, me: bytes) -> list[bytes]:
    """The polls whose tally ``me`` should co-sign now: every closed poll
    (its tally digest is set) that ``me``, a current member, has not signed.
    The laptop recomputed each tally from its own log; a co-signature over a
    different digest would not be accepted (``tally.sign``, SPEC §6.5)."""
    if not state.is_member(me):
        return []
    return [
        poll.id
        for poll in state.polls.values()
        if poll.tally_digest is not None and me not in poll.cosigners
    ]


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


__all__ = ["DEFAULT_ABSENT_AFTER_MS", "FacilitatorWatch", "tallies_to_cosign"]
