"""Presence and replacement in the fold (SPEC §6.1 "Presence", §6.2, §6.5):
``roster.away``, ``roster.back``, ``roster.replace``, the quorum over the
members present, succession that skips members declared away, and the
``PresenceWatch`` policy that proposes the declarations.

Entries are written with ``Scribe`` (fakenet.py), which signs what a modified
client could write, so each rule is checked in the fold.
"""

from __future__ import annotations

from typing import Any

from fakenet import IDENTITIES, PROPOSAL, Scribe

from relsec_p2p.core.identity import Identity
from relsec_p2p.core.policies import PresenceWatch
from relsec_p2p.core.refusals import Refusal
from relsec_p2p.core.rules import presence_quorum
from relsec_p2p.core.state import MeetingState

A, B, C, D, E, F = IDENTITIES[:6]


def meeting(*others: Identity, **settings: Any) -> Scribe:
    scribe = Scribe(A)
    scribe.create(**settings)
    for member in others:
        scribe.add(A, member)
    return scribe


def away(scribe: Scribe, by: Identity, who: Identity, returns: int = 0) -> None:
    scribe.write(by, "roster.away", {"who": who.key, "returns": returns})


def refusal_of(scribe: Scribe, who: Identity, kind: str, data: dict[str, Any]) -> Refusal | None:
    entry = scribe.write(who, kind, data)
    reasons = [r.code for h, r in scribe.state().ignored if h == entry.hash]
    return reasons[0] if reasons else None


def present_keys(state: MeetingState) -> set[bytes]:
    return {m.key for m in state.present_members()}


# --- roster.away: a strict majority of the present members ----------------------------


def test_one_member_alone_cannot_declare_anyone_away() -> None:
    scribe = meeting(B, C, D)  # 4 present: a strict majority is 3
    assert presence_quorum(scribe.state()) == 3
    away(scribe, B, D)
    away(scribe, B, D)  # twice by one member counts once
    state = scribe.state()
    assert state.is_present(D.key) and state.away_declared[D.key] == {B.key}
    away(scribe, C, D)
    assert scribe.state().is_present(D.key)  # 2 of 4 is not a strict majority
    away(scribe, A, D)
    state = scribe.state()
    assert not state.is_present(D.key) and state.members[D.key].away
    assert state.is_member(D.key)  # away is not gone: D may still write
    assert present_keys(state) == {A.key, B.key, C.key}


def test_each_member_declared_away_lowers_the_quorum_of_the_others() -> None:
    """Three present and two ghosts (the reported room): the three present
    declare both; the second ghost needs only 3 of 4 once the first is away."""
    scribe = meeting(B, C, D, E)  # D and E vanished
    for declarer in (A, B):
        away(scribe, declarer, D)
        away(scribe, declarer, E)
    state = scribe.state()
    assert present_keys(state) == {A.key, B.key, C.key, D.key, E.key}
    away(scribe, C, E)  # 3 of 5: E is away; D has 2 of 4 declarers
    state = scribe.state()
    assert state.members[E.key].away and state.is_present(D.key)
    away(scribe, C, D)
    assert present_keys(scribe.state()) == {A.key, B.key, C.key}


def test_two_halves_of_a_split_room_cannot_both_declare_the_other_away() -> None:
    scribe = meeting(B, C, D, E, F)  # 6: A B C | D E F
    for declarer in (A, B, C):
        for target in (D, E, F):
            away(scribe, declarer, target)
    for declarer in (D, E, F):
        for target in (A, B, C):
            away(scribe, declarer, target)
    state = scribe.state()
    assert present_keys(state) == {m.key for m in (A, B, C, D, E, F)}  # 3 of 6 is no majority


def test_declarations_of_members_declared_away_do_not_count() -> None:
    scribe = meeting(B, C, D, E)
    for declarer in (A, B, C):
        away(scribe, declarer, E)
    assert scribe.state().members[E.key].away
    assert refusal_of(scribe, E, "roster.away", {"who": D.key, "returns": 0}) == (
        Refusal.NOT_A_CURRENT_MEMBER
    )


def test_away_declarations_refused() -> None:
    scribe = meeting(B, C)
    assert refusal_of(scribe, B, "roster.away", {"who": B.key, "returns": 0}) == (
        Refusal.BAD_TARGET
    )
    assert refusal_of(scribe, B, "roster.away", {"who": C.key, "returns": 1}) == (
        Refusal.STALE_RETURN
    )
    assert refusal_of(scribe, B, "roster.away", {"who": C.key}) == Refusal.BAD_FIELDS
    assert refusal_of(scribe, B, "roster.away", {"who": b"x", "returns": 0}) == (Refusal.BAD_FIELDS)
    assert refusal_of(scribe, B, "roster.back", {}) == Refusal.NOT_AWAY


# --- roster.back ------------------------------------------------------------------------


def test_back_makes_a_member_present_and_old_declarations_stale() -> None:
    scribe = meeting(B, C)  # 3 present: 2 declarations
    away(scribe, A, C)
    away(scribe, B, C)
    assert scribe.state().members[C.key].away
    assert refusal_of(scribe, C, "roster.back", {"x": 1}) == Refusal.BAD_FIELDS
    scribe.write(C, "roster.back", {})
    state = scribe.state()
    assert state.is_present(C.key) and state.members[C.key].returns == 1
    assert C.key not in state.away_declared
    # A declaration about the absence C came back from is stale.
    assert refusal_of(scribe, A, "roster.away", {"who": C.key, "returns": 0}) == (
        Refusal.STALE_RETURN
    )
    away(scribe, A, C, returns=1)
    assert scribe.state().is_present(C.key)  # one of 3 again


# --- quorum over the members present -------------------------------------------------------


def _poll(scribe: Scribe) -> bytes:
    scribe.write(A, "step.open", {"step": PROPOSAL})
    proposal = scribe.write(A, "proposal.add", {"step": PROPOSAL, "text": "P"}).hash
    return scribe.write(A, "poll.open", {"proposal": proposal}).hash


def _close(scribe: Scribe, poll: bytes) -> None:
    cut = sorted([e.author, e.seq] for e in scribe.heads())
    scribe.write(A, "poll.close", {"poll": poll, "cut": cut})


def test_unanimous_present_members_reach_quorum_with_two_ghosts() -> None:
    """The reported case: 3 agree, 2 vanished laptops in a roster of 5."""
    scribe = meeting(B, C, D, E)
    poll = _poll(scribe)
    for voter in (A, B, C):
        scribe.write(voter, "vote.cast", {"poll": poll, "choice": "agree"})
    ghosts_counted = meeting(B, C, D, E)
    poll_g = _poll(ghosts_counted)
    for voter in (A, B, C):
        ghosts_counted.write(voter, "vote.cast", {"poll": poll_g, "choice": "agree"})
    _close(ghosts_counted, poll_g)
    before = ghosts_counted.state().polls[poll_g].result
    assert before is not None and before.outcome == "no_quorum"  # 3 < 4 of 5

    for declarer in (A, B, C):
        away(scribe, declarer, D)
        away(scribe, declarer, E)
    _close(scribe, poll)
    result = scribe.state().polls[poll].result
    assert result is not None
    assert (result.outcome, result.members, result.quorum, result.voters) == (
        "consensus",
        3,
        3,
        3,
    )
    assert "of the 3 members present" in result.rule()


def test_a_member_declared_away_who_votes_is_counted_present_and_a_block_still_blocks() -> None:
    scribe = meeting(B, C, D)
    poll = _poll(scribe)
    for declarer in (A, B, C):
        away(scribe, declarer, D)
    for voter in (A, B, C):
        scribe.write(voter, "vote.cast", {"poll": poll, "choice": "agree"})
    scribe.write(D, "vote.cast", {"poll": poll, "choice": "block"})
    _close(scribe, poll)
    result = scribe.state().polls[poll].result
    assert result is not None and result.outcome == "blocked" and result.members == 4


def test_the_quorum_is_read_from_the_close_cut_alone() -> None:
    """An away declaration written after the close's cut changes nothing."""
    scribe = meeting(B, C, D)
    poll = _poll(scribe)
    for voter in (A, B):
        scribe.write(voter, "vote.cast", {"poll": poll, "choice": "agree"})
    _close(scribe, poll)
    for declarer in (A, B, C):
        away(scribe, declarer, D)
    result = scribe.state().polls[poll].result
    assert result is not None and result.members == 4 and result.outcome == "no_quorum"


# --- succession ----------------------------------------------------------------------------


def test_succession_skips_members_declared_away() -> None:
    scribe = meeting(B, C, D, E)  # B and C vanish with A
    for declarer in (D, E):
        away(scribe, declarer, B)
        away(scribe, declarer, C)
    assert scribe.state().is_present(B.key)  # 2 of 5 is no majority yet
    away(scribe, A, B)
    away(scribe, A, C)
    state = scribe.state()
    assert present_keys(state) == {A.key, D.key, E.key}
    assert state.successor(A.key) == D.key
    # A vanishes too: D and E are a majority of the present others.
    scribe.write(D, "facil.absent", {"term": 1})
    scribe.write(E, "facil.absent", {"term": 1})
    assert scribe.state().facilitator == D.key


def test_a_facilitator_declared_away_passes_facilitation_to_a_present_member() -> None:
    scribe = meeting(B, C, D)
    for declarer in (B, C):
        away(scribe, declarer, D)
    away(scribe, A, D)
    for declarer in (B, C, D):  # D's declaration does not count: D is away
        away(scribe, declarer, A)
    state = scribe.state()
    assert state.members[A.key].away and state.facilitator == B.key and state.term == 2


def test_successor_falls_back_to_an_active_member_when_nobody_else_is_present() -> None:
    scribe = meeting(B, C)
    away(scribe, A, C)
    away(scribe, B, C)
    state = scribe.state()
    assert state.successor(B.key) == A.key
    assert state.successor(A.key) == B.key  # C is away


# --- anonymous rounds and the head count -----------------------------------------------------


def test_anonymous_answers_need_three_members_present() -> None:
    from relsec_p2p.core.anon import AnonymousChannel
    from relsec_p2p.core.errors import LocalProtocolError
    from relsec_p2p.core.requests import PauseRequest

    scribe = meeting(B, C, D)
    for declarer in (A, B, C):
        away(scribe, declarer, D)
    away(scribe, A, C)
    away(scribe, B, C)
    state = scribe.state()
    assert len(state.active_members()) == 4 and len(state.present_members()) == 2
    channel = AnonymousChannel(
        A,
        scribe.mid,
        state=lambda: state,
        peers=frozenset,
        clock=lambda: 0,
        send=lambda peer, payload: None,
        append=lambda kind, data: None,  # type: ignore[arg-type,return-value]
        log_clock=lambda: 0,
    )
    try:
        channel.submit(PauseRequest())
    except LocalProtocolError as error:
        assert "3 members present" in str(error)
    else:
        raise AssertionError("an anonymous round of 2 present members was accepted")


# --- roster.replace ---------------------------------------------------------------------------


def test_replace_retires_the_old_key_and_marks_the_newcomer() -> None:
    scribe = meeting(B, C)
    scribe.write(C, "hand.raise", {})
    scribe.add(B, D, "Cy")  # the person behind C rejoined after a crash
    entry = scribe.write(A, "roster.replace", {"who": C.key, "by": D.key, "upto": 1})
    state = scribe.state()
    old, new = state.members[C.key], state.members[D.key]
    assert (old.active, old.gone, old.upto) == (False, "replaced", 1)
    assert new.replaces == C.key and new.present
    assert [m.key for m in state.active_members()] == [A.key, B.key, D.key]
    assert C.key not in state.queue.waiting
    assert entry.hash not in {h for h, _ in state.ignored}
    # C's entries after upto do not count (the removal's restart rule, §5.3).
    assert refusal_of(scribe, C, "contrib.add", {"step": 0, "text": "x"}) is not None


def test_replace_refusals() -> None:
    scribe = meeting(B, C)
    scribe.add(A, D)
    scribe.add(A, E)
    cases = [
        (B, {"who": C.key, "by": D.key, "upto": 1}, Refusal.NOT_FACILITATOR),
        (A, {"who": A.key, "by": D.key, "upto": 1}, Refusal.REMOVE_SELF),
        (A, {"who": C.key, "by": C.key, "upto": 1}, Refusal.BAD_TARGET),
        (A, {"who": D.key, "by": C.key, "upto": 1}, Refusal.BAD_TARGET),  # by joined earlier
        (A, {"who": C.key, "by": F.key, "upto": 1}, Refusal.BAD_TARGET),  # not a member
        (A, {"who": C.key, "by": D.key}, Refusal.BAD_FIELDS),
    ]
    for author, data, code in cases:
        assert refusal_of(scribe, author, "roster.replace", data) == code, data
    scribe.write(A, "roster.replace", {"who": C.key, "by": D.key, "upto": 1})
    # D took someone's place already; C is gone.
    assert refusal_of(scribe, A, "roster.replace", {"who": B.key, "by": D.key, "upto": 1}) == (
        Refusal.BAD_TARGET
    )
    assert refusal_of(scribe, A, "roster.replace", {"who": C.key, "by": E.key, "upto": 1}) == (
        Refusal.BAD_TARGET
    )


def test_replace_back_dated_entries_of_the_old_key_are_cut() -> None:
    scribe = meeting(B, C)
    scribe.write(A, "step.open", {"step": 0})
    scribe.add(A, D)
    scribe.write(A, "roster.replace", {"who": C.key, "by": D.key, "upto": 0}, lam=20)
    late = scribe.write(C, "contrib.add", {"step": 0, "text": "back-dated"}, lam=10)
    state = scribe.state()
    assert late.hash in {h for h, _ in state.ignored}
    assert state.caps[C.key] == 0


# --- the policy that proposes declarations ----------------------------------------------------


def test_presence_watch_declares_once_per_absence_and_comes_back_once() -> None:
    scribe = meeting(B, C)
    state = scribe.state()
    watch = PresenceWatch(away_after_ms=1000)
    assert watch.observe(0, state, A.key, {B.key}).away == ()
    assert watch.observe(999, state, A.key, {B.key}).away == ()
    assert watch.observe(1000, state, A.key, {B.key}).away == (C.key,)
    assert watch.observe(5000, state, A.key, {B.key}).away == ()  # once
    # Reaching C resets the wait.
    assert watch.observe(6000, state, A.key, {B.key, C.key}).away == ()
    away(scribe, A, C)
    away(scribe, B, C)
    state = scribe.state()
    mine = PresenceWatch(away_after_ms=1000)
    assert not mine.observe(0, state, C.key, set()).back  # nobody reachable yet
    assert mine.observe(10, state, C.key, {A.key}).back
    assert not mine.observe(20, state, C.key, {A.key}).back  # once per absence
    assert mine.observe(30, state, C.key, {A.key}).away == ()  # an away member declares nobody
    scribe.write(C, "roster.back", {})
    state = scribe.state()
    # A new absence (returns 1) is declared again, after a wait that starts
    # when C came back and is twice as long: a laptop some can reach and
    # others cannot does not make the log grow every second.
    assert watch.wait_ms(C.key) == 2000
    assert watch.observe(7000, state, A.key, {B.key}).away == ()
    assert watch.observe(8999, state, A.key, {B.key}).away == ()
    assert watch.observe(9000, state, A.key, {B.key}).away == (C.key,)
    assert watch.wait_ms(C.key) == 4000


def test_a_laptop_that_reaches_nobody_declares_nobody() -> None:
    """Cut off itself (its Wi-Fi dropped), a laptop cannot tell who vanished:
    it declares no one, and its wait starts over once it is back."""
    state = meeting(B, C).state()
    watch = PresenceWatch(away_after_ms=1000)
    for now in (0, 1000, 5000):
        assert watch.observe(now, state, A.key, set()).away == ()
    assert watch.observe(6000, state, A.key, {B.key}).away == ()  # C's wait starts now
    assert watch.observe(7000, state, A.key, {B.key}).away == (C.key,)


# --- a modified member, every laptop -----------------------------------------------------------


def test_a_modified_member_alone_cannot_declare_the_room_away_or_seize_facilitation() -> None:
    """Mallory's laptop declares every other member away and the facilitator
    absent: on every laptop nobody is away, the quorum's base is unchanged
    and Ana still facilitates."""
    from fakenet import FakeNetwork

    net = FakeNetwork.meeting(5)
    mallory = net[4]
    for victim in list(net)[:4]:
        mallory.declare_away(victim.me)
    mallory.declare_absent()
    net.settle()
    for session in net:
        state = session.state
        assert len(state.present_members()) == 5, session.me.hex()[:8]
        assert state.facilitator == net[0].me
        assert state.successor(net[0].me) == net[1].me
    assert len({session.digest() for session in net}) == 1


def test_two_halves_of_a_split_room_each_keep_counting_the_other() -> None:
    """A Wi-Fi split 3 | 3: each side's laptops declare the other side away,
    and on no laptop, during the split or after the heal, is anyone away: a
    half of the room can never take decisions as if it were all of it."""
    from fakenet import FakeNetwork

    net = FakeNetwork.meeting(6)
    sessions = list(net)
    left, right = sessions[:3], sessions[3:]
    net.partition([s.me for s in left], [s.me for s in right])
    for side, other in ((left, right), (right, left)):
        for session in side:
            for target in other:
                session.declare_away(target.me)
    net.settle()
    for session in sessions:
        assert len(session.state.present_members()) == 6
    net.heal()
    net.settle()
    for session in sessions:
        assert len(session.state.present_members()) == 6
    assert len({session.digest() for session in sessions}) == 1
