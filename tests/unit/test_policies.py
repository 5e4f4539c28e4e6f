"""The policies a laptop applies on its own (core/policies.py), as tables.

``tallies_to_cosign``: which closed tallies a member co-signs. ``FacilitatorWatch``:
when a member declares an unreachable facilitator absent (15 s by default,
once per term, only members, never about oneself, the wait restarting
whenever the facilitator is reached again).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from relsec_p2p.core.policies import DEFAULT_ABSENT_AFTER_MS, FacilitatorWatch, tallies_to_cosign
from relsec_p2p.core.state import MeetingState, Member, Poll

ME, FACILITATOR, OTHER, GONE, OUTSIDER = (bytes([i]) * 32 for i in range(1, 6))
DIGEST = b"\xdd" * 32


def meeting(
    *, facilitator: bytes | None = FACILITATOR, term: int = 0, polls: list[Poll] | None = None
) -> MeetingState:
    """A meeting of ME, FACILITATOR and OTHER (GONE has left)."""
    members = {
        key: Member(key=key, ring=key, name=str(order), order=order)
        for order, key in enumerate([FACILITATOR, ME, OTHER, GONE])
    }
    members[GONE].active = False
    return MeetingState(
        mid=b"\x00" * 32,
        creator=FACILITATOR,
        created=True,
        members=members,
        facilitator=facilitator,
        term=term,
        polls={poll.id: poll for poll in polls or []},
    )


def poll(number: int, *, closed: bool = True, cosigners: set[bytes] | None = None) -> Poll:
    return Poll(
        id=bytes([number]) * 32,
        proposal=b"\x99" * 32,
        step=0,
        status="closed" if closed else "open",
        tally_digest=DIGEST if closed else None,
        cosigners=cosigners or set(),
    )


# --- tallies_to_cosign ---------------------------------------------------------

COSIGN_CASES = [
    ("no polls", ME, [], []),
    ("an open poll has no tally yet", ME, [poll(1, closed=False)], []),
    ("a closed poll nobody signed", ME, [poll(1)], [1]),
    ("a closed poll others signed", ME, [poll(1, cosigners={OTHER, FACILITATOR})], [1]),
    ("a closed poll I signed", ME, [poll(1, cosigners={ME})], []),
    (
        "only the ones I have not signed, in the meeting's order",
        ME,
        [poll(3), poll(1, cosigners={ME}), poll(2, closed=False), poll(4, cosigners={OTHER})],
        [3, 4],
    ),
    ("a member who left signs nothing", GONE, [poll(1)], []),
    ("an outsider signs nothing", OUTSIDER, [poll(1)], []),
]


@pytest.mark.parametrize(
    ("me", "polls", "expected"),
    [case[1:] for case in COSIGN_CASES],
    ids=[case[0] for case in COSIGN_CASES],
)
def test_tallies_to_cosign(me: bytes, polls: list[Poll], expected: list[int]) -> None:
    assert tallies_to_cosign(meeting(polls=polls), me) == [bytes([n]) * 32 for n in expected]


# --- FacilitatorWatch ----------------------------------------------------------


@dataclass(frozen=True)
class Look:
    """One observation: at ``at`` ms, is the facilitator reachable, and what
    the watch should answer."""

    at: int
    declare: bool
    reachable: bool = False
    facilitator: bytes | None = FACILITATOR
    term: int = 0
    me: bytes = ME
    no_meeting: bool = False


@dataclass(frozen=True)
class Watch:
    name: str
    looks: list[Look]
    absent_after_ms: int = DEFAULT_ABSENT_AFTER_MS


WATCH_CASES = [
    Watch(
        "declares once 15 s unreachable in a row",
        [Look(0, False), Look(14_999, False), Look(15_000, True)],
    ),
    Watch(
        "once per term",
        [Look(0, False), Look(15_000, True), Look(16_000, False), Look(600_000, False)],
    ),
    Watch(
        "once per term, even after the facilitator was reached in between",
        [
            Look(0, False),
            Look(15_000, True),
            Look(16_000, False, reachable=True),
            Look(17_000, False),
            Look(60_000, False),
        ],
    ),
    Watch(
        "a new term with its facilitator unreachable too: the wait is not restarted",
        [Look(0, False), Look(15_000, True), Look(16_000, True, term=1)],
    ),
    Watch(
        "reaching the facilitator restarts the wait",
        [
            Look(0, False),
            Look(10_000, False, reachable=True),
            Look(20_000, False),
            Look(34_999, False),
            Look(35_000, True),
        ],
    ),
    Watch(
        "the first look only starts the wait, however late",
        [Look(1_000_000, False), Look(1_014_999, False), Look(1_015_000, True)],
    ),
    Watch(
        "never when I am the facilitator",
        [Look(0, False, facilitator=ME), Look(60_000, False, facilitator=ME)],
    ),
    Watch(
        "never while there is no facilitator",
        [Look(0, False, facilitator=None), Look(60_000, False, facilitator=None)],
    ),
    Watch("never by a member who left", [Look(0, False, me=GONE), Look(60_000, False, me=GONE)]),
    Watch("never by an outsider", [Look(0, False, me=OUTSIDER), Look(60_000, False, me=OUTSIDER)]),
    Watch(
        "no meeting restarts the wait",
        [
            Look(0, False),
            Look(10_000, False, no_meeting=True),
            Look(20_000, False),
            Look(34_999, False),
            Look(35_000, True),
        ],
    ),
    Watch(
        "being the facilitator for a while restarts the wait",
        [
            Look(0, False),
            Look(10_000, False, facilitator=ME),
            Look(20_000, False),
            Look(35_000, True),
        ],
    ),
    Watch(
        "another wait than the default",
        [Look(0, False), Look(499, False), Look(500, True)],
        absent_after_ms=500,
    ),
]


@pytest.mark.parametrize("case", WATCH_CASES, ids=[case.name for case in WATCH_CASES])
def test_facilitator_watch(case: Watch) -> None:
    watch = FacilitatorWatch(case.absent_after_ms)
    answers = []
    for look in case.looks:
        state = None if look.no_meeting else meeting(facilitator=look.facilitator, term=look.term)
        reachable = {OTHER, FACILITATOR} if look.reachable else {OTHER}
        answers.append(watch.observe(look.at, state, look.me, reachable))
    assert answers == [look.declare for look in case.looks]


def test_the_default_wait_is_15_seconds() -> None:
    assert FacilitatorWatch().absent_after_ms == DEFAULT_ABSENT_AFTER_MS == 15_000
