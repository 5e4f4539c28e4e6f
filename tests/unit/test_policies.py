"""The policies a laptop applies on its own (core/policies.py), as tables.

``tally_answers``: which closes a member co-signs, and which it objects to
because they left out a vote its laptop had already accepted. ``FacilitatorWatch``:
when a member declares an unreachable facilitator absent (15 s by default,
once per term, only members, never about oneself, the wait restarting
whenever the facilitator is reached again).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from relsec_p2p.core.policies import DEFAULT_ABSENT_AFTER_MS, FacilitatorWatch, Held, tally_answers
from relsec_p2p.core.state import Close, MeetingState, Member, Poll, PollResult, Vote

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


VOTE_IN, VOTE_OUT, LATE = (OTHER, 3), (OTHER, 7), (ME, 9)


def poll(
    number: int,
    *,
    closed: bool = True,
    cosigners: set[bytes] | None = None,
    objections: set[bytes] | None = None,
    members: frozenset[bytes] = frozenset({ME, FACILITATOR, OTHER}),
    votes: tuple[tuple[bytes, int], ...] = (VOTE_IN, VOTE_OUT),
) -> Poll:
    """A poll whose close (if ``closed``) has OTHER's feed up to seq 5 in its
    cut; OTHER voted at seq 3 (inside) and seq 7 (outside)."""
    made = Poll(id=bytes([number]) * 32, proposal=b"\x99" * 32, step=0)
    made.votes = [Vote(author, seq, "agree") for author, seq in votes]
    if closed:
        made.status = "closed"
        made.closes.append(
            Close(
                id=bytes([100 + number]) * 32,
                author=FACILITATOR,
                cut={OTHER: 5, FACILITATOR: 4},
                members=members,
                result=PollResult("consensus", {}, 0, len(members), 1, 0),
                digest=DIGEST,
                cosigners=set(cosigners or ()),
                objections={key: [] for key in objections or ()},
            )
        )
    return made


def held(
    *numbers: int,
    votes: tuple[tuple[bytes, int], ...] = (VOTE_IN,),
    facilitator: bytes = FACILITATOR,
) -> dict:
    """What this laptop had when each close (by poll number) reached it."""
    return {
        bytes([100 + n]) * 32: Held(frozenset(votes), frozenset(), facilitator) for n in numbers
    }


# --- tally_answers ---------------------------------------------------------------

SIGN, OBJECT = "sign", "object"
ANSWER_CASES = [
    ("no polls", ME, [], {}, []),
    ("an open poll has no close yet", ME, [poll(1, closed=False)], held(1), []),
    ("a close whose cut holds every vote I had: co-sign", ME, [poll(1)], held(1), [(1, SIGN)]),
    ("others' co-signatures change nothing", ME, [poll(1, cosigners={OTHER})], held(1),
     [(1, SIGN)]),
    ("answered already by co-signing", ME, [poll(1, cosigners={ME})], held(1), []),
    ("answered already by objecting", ME, [poll(1, objections={ME})], held(1), []),
    ("a vote I had is outside the cut: object", ME, [poll(1)],
     held(1, votes=(VOTE_IN, VOTE_OUT)), [(1, OBJECT)]),
    ("a vote I did not have when the close came is not mine to raise", ME, [poll(1)],
     held(1), [(1, SIGN)]),
    ("a vote I held that the close does not count is left out, applied or not", ME,
     [poll(1, votes=(VOTE_IN,))], held(1, votes=(VOTE_IN, VOTE_OUT)), [(1, OBJECT)]),
    ("a close by someone I did not take for the facilitator: object, naming nothing", ME,
     [poll(1)], held(1, facilitator=OTHER), [(1, OBJECT)]),
    ("a close I never saw arrive is not answered", ME, [poll(1)], {}, []),
    ("a close that did not count me is not mine to answer", ME,
     [poll(1, members=frozenset({FACILITATOR, OTHER}))], held(1), []),
    ("in the meeting's order", ME, [poll(3), poll(1, cosigners={ME}), poll(2, closed=False),
     poll(4)], held(1, 2, 3, 4), [(3, SIGN), (4, SIGN)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("me", "polls", "seen", "expected"),
    [case[1:] for case in ANSWER_CASES],
    ids=[case[0] for case in ANSWER_CASES],
)
def test_tally_answers(
    me: bytes, polls: list[Poll], seen: dict, expected: list[tuple[int, str]]
) -> None:
    answers = tally_answers(meeting(polls=polls), me, seen)
    assert [(a.poll, OBJECT if a.object else SIGN) for a in answers] == [
        (bytes([n]) * 32, kind) for n, kind in expected
    ]
    for answer in answers:
        assert answer.digest == DIGEST
        assert answer.left_out in ((), (VOTE_OUT,))


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
