"""Members and outsiders who break the rules on purpose: equivocation,
double and back-dated votes, replays, outsiders, removed members who keep
writing, and inputs built to crash the fold or split the honest peers."""

from __future__ import annotations

import random
from typing import Any

from fakenet import (
    IDENTITIES,
    MID,
    OUTSIDER,
    PROPOSAL,
    TEXT,
    FakeNetwork,
    accepted,
    codes,
    entries_frame,
    forge_next,
    fork_frame,
    forks,
    open_poll,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.events import ForkDetected
from relsec_p2p.core.feed import Entry
from relsec_p2p.core.session import Session


def equivocate(
    net: FakeNetwork, cheat: Session, first: Entry, kind: str, data: dict[str, Any]
) -> Entry:
    """``cheat`` signs a second entry at ``first``'s place; ``first`` was sent
    to nobody yet. Each honest peer gets one of the two, alternately."""
    second = forge_next(cheat, kind, data, seq=first.seq, prev=first.prev, lam=first.lam)
    assert second.hash != first.hash
    net.drop_from(cheat.me)
    honest = [s for s in net if s is not cheat]
    for i, session in enumerate(honest):
        version = first if i % 2 == 0 else second
        net.post(cheat.me, session.me, entries_frame(MID, version.envelope))
    return second


def test_equivocation_is_found_proved_and_frozen_everywhere() -> None:
    net = FakeNetwork.meeting(4)
    alice, bob, carol, mallory = net
    alice.open_step(TEXT)
    net.settle()
    before = mallory.contribute(TEXT, "honest start")
    net.settle()
    first = mallory.contribute(TEXT, "version for Alice and Carol")
    second = equivocate(net, mallory, first, "contrib.add", {"step": TEXT, "text": "for Bob"})
    net.deliver_all()
    net.settle()
    for session in net:
        proof = session.log.forks[mallory.me]
        assert {proof.first.hash, proof.second.hash} == {first.hash, second.hash}
        assert session.log.feed(mallory.me)[-1] == before  # truncated before the fork
        assert session.state.frozen == {mallory.me: first.seq}
        texts = [c.text for c in session.state.contributions]
        assert "honest start" in texts and "for Bob" not in texts
        assert "version for Alice and Carol" not in texts
    assert any(forks(net.events[s.me]) for s in (alice, bob, carol))
    assert len(set(net.digests())) == 1
    assert len({repr(s) for s in net.summaries()}) == 1


def test_after_equivocating_nothing_more_of_theirs_is_accepted() -> None:
    net = FakeNetwork.meeting(3)
    alice, bob, mallory = net
    first = mallory.raise_hand()
    equivocate(net, mallory, first, "hand.raise", {"x": 1})
    net.settle()
    digests = net.digests()
    # Continuing either branch, or a third version, is refused by everyone.
    later = [
        forge_next(
            mallory, "hand.lower", {}, seq=first.seq + 1, prev=first.hash, lam=first.lam + 1
        ),
        forge_next(mallory, "hand.raise", {"y": 2}, seq=first.seq, prev=first.prev, lam=first.lam),
    ]
    for session in (alice, bob):
        events = session.receive(mallory.me, entries_frame(MID, *(e.envelope for e in later)))
        assert codes(events) == ["frozen_feed", "frozen_feed"]
    assert net.digests() == digests


def test_entries_that_built_on_an_equivocated_entry_fall_with_it() -> None:
    """Votes on a proposal that only existed in one branch count nowhere."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, mallory = net
    alice.open_step(PROPOSAL)
    net.settle()
    proposal = mallory.propose(PROPOSAL, "branch one")
    net.drop_from(mallory.me)
    net.post(mallory.me, alice.me, entries_frame(MID, proposal.envelope))
    net.deliver_all()
    poll = alice.open_poll(proposal.hash)  # Alice saw only branch one
    net.deliver_all()
    bob.vote(poll.hash, "agree")
    second = forge_next(
        mallory,
        "proposal.add",
        {"step": PROPOSAL, "text": "branch two"},
        seq=proposal.seq,
        prev=proposal.prev,
        lam=proposal.lam,
    )
    net.post(mallory.me, carol.me, entries_frame(MID, second.envelope))
    net.settle()
    for session in net:
        assert session.state.proposals == {} and session.state.polls == {}
    assert len(set(net.digests())) == 1


def test_a_poisoned_fork_proof_cannot_split_the_honest_peers() -> None:
    """Mallory equivocates and hands Sam a fork proof whose copy of the entry
    Sam holds carries a forged signature. Were the held body trusted without
    its signature, Sam would freeze Mallory on a proof no one else can
    check, while Tess counts Mallory's other entry: two meetings for ever."""
    net = FakeNetwork.meeting(3, identities=IDENTITIES[:3])
    sam, tess, mallory = net
    a = mallory.raise_hand()
    net.drop_from(mallory.me)
    b = forge_next(mallory, "hand.raise", {}, seq=a.seq, prev=a.prev, lam=a.lam, ts=a.ts + 1)
    net.send_now(mallory.me, sam.me, entries_frame(MID, a.envelope))
    a_forged = pack([a.body, bytes(64)])
    events = net.send_now(mallory.me, sam.me, fork_frame(MID, a_forged, b.envelope))
    assert codes(events) == ["bad_signature"] and not forks(events)
    assert sam.log.frozen_at(mallory.me) is None
    net.send_now(mallory.me, tess.me, entries_frame(MID, b.envelope))
    # Mallory leaves the room; the honest two sort it out between them.
    net.hold_partitioned = False
    net.partition([sam.me, tess.me])
    net.settle()
    assert sam.log.frozen_at(mallory.me) == tess.log.frozen_at(mallory.me) == a.seq
    assert sam.digest() == tess.digest()


# --- votes ------------------------------------------------------------------------------------


def test_double_vote_counts_once_the_latest() -> None:
    net = FakeNetwork.meeting(4)
    poll = open_poll(net)
    alice, bob, carol, dan = net
    for session in (alice, bob, carol):
        session.vote(poll, "agree")
    dan.vote(poll, "block")
    dan.vote(poll, "agree")  # changed their mind: one vote, the latest
    net.settle()
    alice.close_poll(poll)
    net.settle()
    for session in net:
        result = session.state.polls[poll].result
        assert result is not None and result.outcome == "consensus"
        assert result.counts["agree"] == 4 and result.voters == 4


def test_replayed_vote_from_a_closed_poll_has_no_effect_on_a_new_poll() -> None:
    net = FakeNetwork.meeting(4)
    poll1 = open_poll(net)
    alice, bob, carol, dan = net
    old_block = dan.vote(poll1, "block")
    net.settle()
    alice.close_poll(poll1)
    net.settle()
    proposal = net[0].state.polls[poll1].proposal
    poll2 = alice.open_poll(proposal).hash
    net.settle()
    assert poll2 != poll1
    for session in (alice, bob, carol):
        session.vote(poll2, "agree")
    net.settle()
    digests = net.digests()
    assert len(set(digests)) == 1
    # The same bytes again: a duplicate, nothing happens.
    for session in (alice, bob, carol):
        assert session.receive(dan.me, entries_frame(MID, old_block.envelope)) == []
    # Dan's modified client writes the old vote again as a new entry: the old
    # poll is closed, and a vote names its poll, so it cannot land in poll2.
    copy = forge_next(dan, "vote.cast", dict(old_block.data))
    net.post(dan.me, alice.me, entries_frame(MID, copy.envelope))
    net.settle()
    for session in net:
        assert dan.me not in session.state.polls[poll2].latest_votes()
        assert session.state.polls[poll1].result == net[0].state.polls[poll1].result
    assert [s.state.polls[poll2].tally()["block"] for s in net] == [0, 0, 0, 0]
    assert all(s.log.head(dan.me) == copy for s in net)  # the copy is in every log...
    assert net.digests() == digests  # ...and ignored by every fold
    alice.close_poll(poll2)
    net.settle()
    result = net[3].state.polls[poll2].result
    assert result is not None and result.outcome == "consensus"  # ...and did not block


def test_vote_back_dated_after_the_close_is_not_counted() -> None:
    net = FakeNetwork.meeting(4)
    poll = open_poll(net)
    alice, bob, carol, dan = net
    for session in (alice, bob, carol, dan):
        session.vote(poll, "agree")
    net.settle()
    head = dan.log.head(dan.me)
    assert head is not None
    for session in (alice, bob, carol):  # the meeting moves on
        session.raise_hand()
        net.settle()
    close = alice.close_poll(poll)
    net.settle()
    result = alice.state.polls[poll].result
    # Dan's client signs a block claiming to have seen nothing since its vote,
    # so its clock is from before the close.
    late = forge_next(dan, "vote.cast", {"poll": poll, "choice": "block"}, deps=[])
    assert late.order_key < close.order_key
    net.post(dan.me, bob.me, entries_frame(MID, late.envelope))
    net.deliver_all()
    net.settle()
    for session in net:
        assert session.log.head(dan.me) == late  # it is in every log...
        assert session.state.polls[poll].result == result  # ...and changes no result
    assert result is not None and result.outcome == "consensus"
    assert len(set(net.digests())) == 1


# --- outsiders and removed members ----------------------------------------------------------


def test_an_outsider_frames_are_rejected_everywhere() -> None:
    net = FakeNetwork.meeting(3)
    net[0].open_step(TEXT)
    net.settle()
    digests, summaries = net.digests(), net.summaries()
    # An outsider writes a contribution, and a roster.add of itself, and
    # sends them together, as if it were a member relaying.
    holder = net[0]
    own_add = forge_next(
        holder,
        "roster.add",
        {"key": OUTSIDER.key, "ring": OUTSIDER.ring_key, "name": "Eve"},
        identity=OUTSIDER,
    )
    contribution = forge_next(
        holder,
        "contrib.add",
        {"step": TEXT, "text": "x"},
        identity=OUTSIDER,
        seq=2,
        prev=own_add.hash,
        lam=own_add.lam + 1,
    )
    for session in net:
        events = session.receive(
            OUTSIDER.key, entries_frame(MID, own_add.envelope, contribution.envelope)
        )
        # Held (signatures checked), never placed: the fold never adds the
        # key, so nothing of the outsider's enters any log or state.
        assert events == [] and session.log.held_count == 2
    net.settle()
    assert net.digests() == digests and net.summaries() == summaries


def test_a_removed_member_keeps_writing_and_is_ignored() -> None:
    net = FakeNetwork.meeting(4)
    alice, bob, carol, mallory = net
    alice.open_step(TEXT)
    net.settle()
    mallory.contribute(TEXT, "before")
    mallory.raise_hand()
    net.settle()
    alice.remove(mallory.me)
    net.settle()
    digests = net.digests()
    # Mallory's client ignores the removal: it writes on, adds a friend, and
    # the friend writes too.
    friend = IDENTITIES[6]
    notes = [
        forge_next(mallory, "contrib.add", {"step": TEXT, "text": "after"}),
    ]
    mallory.log.add(notes[-1])
    notes.append(
        forge_next(
            mallory, "roster.add", {"key": friend.key, "ring": friend.ring_key, "name": "Pal"}
        )
    )
    mallory.log.add(notes[-1])
    notes.append(forge_next(mallory, "facil.absent", {"term": alice.state.term}))
    mallory.log.add(notes[-1])
    friend_entry = forge_next(
        mallory, "contrib.add", {"step": TEXT, "text": "pal"}, identity=friend, seq=1, prev=None
    )
    for session in (alice, bob, carol):
        session.receive(
            mallory.me, entries_frame(MID, *(e.envelope for e in notes), friend_entry.envelope)
        )
    net.settle()
    for session in (alice, bob, carol):
        texts = [c.text for c in session.state.contributions]
        assert texts == ["before"]
        assert friend.key not in session.state.members
        assert session.state.facilitator == alice.me
    honest = [s.digest() for s in (alice, bob, carol)]
    assert honest == digests[:3]


def test_a_removed_member_back_dated_entry_is_ignored_by_every_path() -> None:
    """The back-dated entry folds before the removal. A Session that holds
    the removal already refolds; a fresh Session that gets the whole log in
    fold order folds it in one pass; both must ignore it."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, mallory = net
    alice.open_step(TEXT)
    net.settle()
    m1 = mallory.raise_hand()
    net.settle()
    for session in (alice, bob, carol):
        session.contribute(TEXT, "pushing the clock on")
    net.settle()
    removal = alice.remove(mallory.me)
    net.settle()
    digests = net.digests()
    sneaky = forge_next(mallory, "contrib.add", {"step": TEXT, "text": "sneaky"}, deps=[])
    assert sneaky.lam == m1.lam + 1
    assert sneaky.order_key < removal.order_key
    net.post(mallory.me, bob.me, entries_frame(MID, sneaky.envelope))
    net.settle()
    for session in (alice, bob, carol):
        assert session.log.head(mallory.me) == sneaky
        assert "sneaky" not in [c.text for c in session.state.contributions]
    assert [s.digest() for s in (alice, bob, carol)] == digests[:3]
    observer = Session.join(IDENTITIES[7], MID, alice.creator, net.clock)
    ordered = sorted(alice.log.entries(), key=lambda e: e.order_key)
    observer.receive(alice.me, entries_frame(MID, *(e.envelope for e in ordered)))
    assert observer.digest() == alice.digest()


# --- inputs built to crash the core ---------------------------------------------------------


def test_a_facilitator_poll_on_an_unhashable_proposal_crashes_no_one() -> None:
    net = FakeNetwork.meeting(3)
    alice = net[0]
    digests = net.digests()
    for bad in ([1], {"x": 1}):
        entry = forge_next(alice, "poll.open", {"proposal": bad})
        alice.log.add(entry)
        for session in net[1], net[2]:
            events = session.receive(alice.me, entries_frame(MID, entry.envelope))
            assert [e.seq for e in accepted(events)] == [entry.seq]
            session.digest()  # folds without raising
    net.settle()
    assert [s.digest() for s in net][1:] == digests[1:]


def test_messages_with_bin_map_keys_are_rejected_not_raised() -> None:
    net = FakeNetwork.meeting(2)
    session = net[1]
    mixed = b"\x84\xa1e\x90\xa3mid\xc4\x10" + MID + b"\xa1t\xa7entries\xc4\x01x\x01"
    only_bin = b"\x81\xc4\x01t\xa4have"
    for payload in (mixed, only_bin):
        events = session.receive(net[0].me, payload)
        assert codes(events) == ["malformed"]


def test_flooding_the_gap_buffer_changes_nothing_and_blocks_no_one() -> None:
    net = FakeNetwork.meeting(3)
    alice, bob, mallory = net
    digests = net.digests()
    # Mallory signs a long feed and sends everything but its first entry.
    head = mallory.log.head(mallory.me)
    entries: list[Entry] = []
    for _ in range(1030):
        prev = entries[-1] if entries else head
        entries.append(
            forge_next(
                mallory,
                "hand.raise",
                {},
                seq=(prev.seq + 1) if prev else 1,
                prev=prev.hash if prev else None,
                lam=(prev.lam + 1) if prev else 1,
            )
        )
    events = bob.receive(mallory.me, entries_frame(MID, *(e.envelope for e in entries[1:])))
    assert set(codes(events)) == {"buffer_full"} and not accepted(events)
    assert bob.digest() == digests[1]
    # Honest traffic still flows.
    alice.open_step(TEXT)
    net.settle()
    assert bob.state.current == TEXT


# --- a property: an equivocating member never splits the room --------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    moves=st.lists(
        st.tuples(
            st.sampled_from(["act", "cheat", "deliver", "drop", "dup", "tick"]),
            st.integers(0, 3),
            st.integers(0, 255),
        ),
        max_size=30,
    ),
    rng=st.randoms(use_true_random=False),
)
def test_an_equivocating_member_never_splits_the_room(
    moves: list[tuple[str, int, int]], rng: random.Random
) -> None:
    """Mallory (member 3) equivocates whenever the script says, sending each
    version to a different subset of peers; messages are reordered,
    duplicated and lost. After settling, every Session agrees."""
    net = FakeNetwork.meeting(4)
    net[0].open_step(TEXT)
    net.settle()
    mallory = net[3]
    seconds: set[bytes] = set()  # the versions Mallory kept from her own feed
    for move, who, x in moves:
        if move == "act":
            session = net[who]
            if session.log.frozen_at(session.me) is None and session.state.is_member(session.me):
                session.contribute(TEXT, f"{who}:{x}")
            net.pump()
        elif move == "cheat" and mallory.log.frozen_at(mallory.me) is None:
            first = mallory.contribute(TEXT, f"a{x}")
            after = x & 8  # then go on writing on her own branch
            second = forge_next(
                mallory,
                "contrib.add",
                {"step": TEXT, "text": f"b{x}"},
                seq=first.seq,
                prev=first.prev,
                lam=first.lam,
            )
            net.drop_from(mallory.me)
            for i, session in enumerate(net):
                if session is not mallory and (x >> i) & 1:
                    net.post(mallory.me, session.me, entries_frame(MID, second.envelope))
                elif session is not mallory:
                    net.post(mallory.me, session.me, entries_frame(MID, first.envelope))
            seconds.add(second.hash)
            if after:
                mallory.contribute(TEXT, f"a{x}+")
                net.pump()
        elif net.in_flight and move in ("deliver", "drop", "dup"):
            index = x % len(net.in_flight)
            if move == "deliver":
                net.deliver(index)
            elif move == "drop":
                net.drop(index)
            else:
                net.duplicate(index)
        elif move == "tick":
            net[who].tick()
            net.pump()
    net.lossy_rounds(rng)
    net.settle(rng=rng)
    assert len(set(net.digests())) == 1
    assert len({repr(s) for s in net.summaries()}) == 1
    # If a second version reached anyone, it met the first somewhere (Mallory
    # holds every first): the fork must have come out, everywhere.
    if any(e.hash in seconds for s in net for e in accepted(net.events[s.me])):
        assert all(s.log.frozen_at(mallory.me) is not None for s in net)
        assert all(isinstance(e, ForkDetected) for s in net for e in forks(net.events[s.me]))
    # Nobody but Mallory is ever frozen.
    assert all(set(s.log.forks) <= {mallory.me} for s in net)


def test_unpack_sanity_of_helpers() -> None:
    # The helpers above send what they claim to.
    assert unpack(entries_frame(MID, b"x")) == {"t": "entries", "mid": MID, "e": [b"x"]}
    assert unpack(fork_frame(MID, b"x", b"y")) == {"t": "fork", "mid": MID, "p": [b"x", b"y"]}
