"""The Session façade (core/session.py): local actions, sync messages and events."""

from __future__ import annotations

import pytest
from fakenet import (
    AGENDA,
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
)

from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import LocalProtocolError
from relsec_p2p.core.events import (
    EntryAccepted,
    ForkDetected,
    InputRejected,
    MeetingChanged,
    Send,
)
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.rules import fold
from relsec_p2p.core.session import Session


def message(payload: bytes) -> dict[str, object]:
    value = unpack(payload)
    assert isinstance(value, dict)
    return value


# --- creating and joining ---------------------------------------------------------------


def test_create_makes_the_creator_facilitator() -> None:
    session = Session.create(IDENTITIES[0], title="T", name="Ana", agenda=AGENDA, clock=lambda: 5)
    state = session.state
    assert state.created and state.facilitator == session.me and state.title == "T"
    assert len(session.mid) == 16
    assert session.log.feed(session.me)[0].ts == 5
    assert session.take_sends() == []  # no peers yet


def test_two_meetings_get_different_ids() -> None:
    def make() -> Session:
        return Session.create(IDENTITIES[0], title="T", name="Ana", agenda=AGENDA, clock=lambda: 0)

    assert make().mid != make().mid


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        Session(IDENTITIES[0], b"short", IDENTITIES[0].key, lambda: 0)
    with pytest.raises(LocalProtocolError):
        Session(IDENTITIES[0], MID, b"short", lambda: 0)


def test_joiners_catch_up_and_see_the_same_meeting() -> None:
    net = FakeNetwork.meeting(4)
    assert len(set(net.digests())) == 1
    assert len({repr(s) for s in net.summaries()}) == 1
    for session in net:
        assert session.state.is_member(session.me)
        assert session.peers == frozenset(k for k in net.sessions if k != session.me)
    assert net.rejections() == []


def test_fresh_identities_work_too() -> None:
    identities = [Identity.generate() for _ in range(3)]
    net = FakeNetwork.meeting(3, identities=identities)
    assert len(set(net.digests())) == 1
    assert net[2].state.members[identities[2].key].name == "Cy"


def test_a_late_joiner_gets_the_whole_history() -> None:
    net = FakeNetwork.meeting(3)
    net[0].open_step(TEXT)
    net.deliver_all()
    for i in range(3):
        net[i].contribute(TEXT, f"point {i}")
        net.deliver_all()
    late = net.join(IDENTITIES[5], "Fe", sponsor=net[1])
    net.settle()
    assert late.digest() == net[0].digest()
    assert [c.text for c in late.state.contributions] == ["point 0", "point 1", "point 2"]


# --- local actions ----------------------------------------------------------------------


def test_act_signs_stores_and_broadcasts() -> None:
    net = FakeNetwork.meeting(3)
    alice = net[0]
    entry = alice.open_step(TEXT)
    assert alice.log.head(alice.me) == entry
    assert alice.state.current == TEXT
    sends = alice.take_sends()
    assert {s.peer for s in sends} == {net[1].me, net[2].me}
    for send in sends:
        assert message(send.payload) == {"t": "entries", "mid": alice.mid, "e": [entry.envelope]}


def test_act_refuses_what_the_fold_would_ignore_and_changes_nothing() -> None:
    net = FakeNetwork.meeting(3)
    bob = net[1]
    summary, digest = bob.log.summary(), bob.digest()
    with pytest.raises(LocalProtocolError, match="only the facilitator"):
        bob.open_step(TEXT)
    with pytest.raises(LocalProtocolError):
        bob.contribute(TEXT, "no step is open")
    with pytest.raises(LocalProtocolError):
        bob.act("no.such.type", {})
    with pytest.raises(LocalProtocolError):
        bob.act("hand.raise", {"x": 1.5})  # no canonical encoding
    assert bob.log.summary() == summary and bob.digest() == digest
    assert bob.take_sends() == []


def test_entries_chain_and_lamport_clocks_follow_what_was_seen() -> None:
    net = FakeNetwork.meeting(3)
    alice, bob = net[0], net[1]
    first = alice.open_step(TEXT)
    net.deliver_all()
    reply = bob.contribute(TEXT, "x")
    assert reply.lam > first.lam  # bob saw alice's entry
    again = bob.raise_hand()
    assert again.prev == reply.hash and again.seq == reply.seq + 1


def test_helpers_write_the_expected_entries() -> None:
    net = FakeNetwork.meeting(4)
    alice, bob, carol, _ = net
    alice.open_step(PROPOSAL)
    net.settle()
    proposal = bob.propose(PROPOSAL, "We do X")
    net.settle()
    poll = alice.open_poll(proposal.hash)
    net.settle()
    bob.vote(poll.hash, "agree")
    carol.vote(poll.hash, "concerns")
    net.settle()
    close = alice.close_poll(poll.hash)
    cut = dict((k, v) for k, v in close.data["cut"])
    assert cut == {au: seq for au, seq, _ in alice.log.summary() if au != alice.me} | {
        alice.me: close.seq - 1
    }
    net.settle()
    result = net[3].state.polls[poll.hash].result
    assert result is not None and result.counts["agree"] == 1 and result.counts["concerns"] == 1


def test_remove_names_the_last_seq_this_laptop_holds() -> None:
    net = FakeNetwork.meeting(3)
    carol = net[2]
    carol.raise_hand()
    carol.lower_hand()
    net.settle()
    removal = net[0].remove(carol.me)
    assert removal.data == {"who": carol.me, "upto": 2}


def test_frozen_own_feed_refuses_to_act() -> None:
    net = FakeNetwork.meeting(3)
    bob = net[1]
    a = bob.raise_hand()
    b = forge_next(bob, "hand.lower", {}, seq=a.seq, prev=a.prev, lam=a.lam)
    events = bob.receive(net[0].me, entries_frame(bob.mid, b.envelope))
    assert forks(events)
    with pytest.raises(LocalProtocolError, match="frozen"):
        bob.raise_hand()


# --- receiving --------------------------------------------------------------------------


def test_receive_reports_accepted_entries_and_a_change() -> None:
    net = FakeNetwork.meeting(3)
    entry = net[0].open_step(TEXT)
    net[0].take_sends()
    events = net[1].receive(net[0].me, entries_frame(MID, entry.envelope))
    assert events == [
        EntryAccepted(entry.author, entry.seq, "step.open", entry.hash),
        MeetingChanged(),
    ]
    assert net[1].state.current == TEXT


def test_a_duplicate_reports_nothing() -> None:
    net = FakeNetwork.meeting(3)
    entry = net[0].open_step(TEXT)
    net[1].receive(net[0].me, entries_frame(MID, entry.envelope))
    assert net[1].receive(net[0].me, entries_frame(MID, entry.envelope)) == []


@pytest.mark.parametrize(
    ("payload", "code", "fatal"),
    [
        (b"\xc1", "malformed", True),
        (pack([1, 2]), "malformed", True),
        (pack({"t": 1, "mid": MID}), "malformed", True),
        (pack({"t": "have", "mid": b"\x00" * 16, "heads": []}), "wrong_meeting", True),
        (pack({"t": "gossip", "mid": MID}), "malformed", True),
        (pack({"t": "entries", "mid": MID, "e": [], "x": 1}), "malformed", True),
        (pack({"t": "entries", "mid": MID, "e": ["text"]}), "malformed", True),
        (pack({"t": "have", "mid": MID, "heads": [[b"k", 1, b"h"]]}), "malformed", True),
        (pack({"t": "have", "mid": MID, "heads": [[b"k" * 32, 0, b"h" * 32]]}), "malformed", True),
        (pack({"t": "want", "mid": MID, "r": [[b"k", 0, 1]]}), "malformed", True),
        (pack({"t": "want", "mid": MID, "r": [[b"k", 1, 1]] * 257}), "malformed", True),
        (pack({"t": "fork", "mid": MID, "p": [1, 2]}), "malformed", True),
        (pack({"t": "fork", "mid": MID, "p": [b"x"]}), "bad_fork_proof", True),
        (b"\x81\xa1t\xcb" + bytes(8), "non_canonical", True),
        (
            pack({"t": "have", "mid": MID, "heads": [[b"k" * 32, 1, b"h" * 32]] * 17_000}),
            "limit_exceeded",
            True,
        ),
    ],
)
def test_bad_messages_are_rejected_with_a_code(payload: bytes, code: str, fatal: bool) -> None:
    net = FakeNetwork.meeting(3)
    session = net[1]
    digest, summary = session.digest(), session.log.summary()
    events = session.receive(net[0].me, payload)
    assert len(events) == 1 and isinstance(events[0], InputRejected)
    assert events[0].code == code and events[0].fatal is fatal
    assert events[0].peer == net[0].me
    assert session.digest() == digest and session.log.summary() == summary
    assert session.take_sends() == []


def test_one_bad_entry_does_not_spoil_the_batch() -> None:
    net = FakeNetwork.meeting(3)
    alice = net[0]
    e1 = alice.open_step(TEXT)
    e2 = alice.contribute(TEXT, "x")
    stranger = forge_next(alice, "hand.raise", {}, identity=OUTSIDER)
    events = net[1].receive(
        alice.me, entries_frame(MID, e1.envelope, b"junk", stranger.envelope, e2.envelope)
    )
    assert [e.seq for e in accepted(events)] == [e1.seq, e2.seq]
    assert codes(events) == ["malformed"] and net[1].log.held_count == 1


def test_a_batch_may_introduce_its_own_authors() -> None:
    """A new member's entries can come before the roster.add that admits them."""
    net = FakeNetwork.meeting(2)
    alice = net[0]
    late_key = IDENTITIES[4]
    add = alice.add_member(late_key.key, late_key.ring_key, "Ed")
    joiner = Session.join(late_key, MID, alice.creator, net.clock)
    joiner.receive(alice.me, entries_frame(MID, *(e.envelope for e in alice.log.entries())))
    hand = joiner.raise_hand()
    observer = Session.join(IDENTITIES[6], MID, alice.creator, net.clock)
    batch = [hand.envelope, *(e.envelope for e in alice.log.entries())]
    events = observer.receive(alice.me, entries_frame(MID, *batch))
    assert codes(events) == [] and len(accepted(events)) == len(batch)
    assert observer.state.queue.waiting == [late_key.key]
    assert add.data["key"] == late_key.key


def test_an_unknown_authors_entry_is_held_until_the_fold_adds_the_key() -> None:
    net = FakeNetwork.meeting(2)
    alice, bob = net
    # Written after the roster.add it names as a dependency, as a new
    # member's first entries are; it reaches bob first.
    add = alice.add_member(OUTSIDER.key, OUTSIDER.ring_key, "Olu")
    stranger = forge_next(alice, "hand.raise", {}, identity=OUTSIDER)
    assert (alice.me, add.seq) in stranger.deps
    events = bob.receive(alice.me, entries_frame(MID, stranger.envelope))
    assert events == [] and bob.log.held_count == 1 and len(bob.log.feed(OUTSIDER.key)) == 0
    events = bob.receive(alice.me, entries_frame(MID, add.envelope))
    assert [e.hash for e in accepted(events)] == [add.hash, stranger.hash]
    assert bob.log.held_count == 0 and bob.state.queue.waiting == [OUTSIDER.key]


# --- sync: have, want, fork ---------------------------------------------------------------


def test_connect_swaps_summaries() -> None:
    net = FakeNetwork.meeting(2)
    alice = net[0]
    alice.peer_connected(b"p" * 32)
    sends = alice.take_sends()
    have = {"t": "have", "mid": MID, "heads": alice.log.summary(), "forks": []}
    assert sends == [Send(b"p" * 32, pack(have))]


def test_tick_sends_a_summary_to_every_peer_still_connected() -> None:
    net = FakeNetwork.meeting(3)
    alice = net[0]
    alice.peer_disconnected(net[2].me)
    alice.tick()
    sends = alice.take_sends()
    assert [s.peer for s in sends] == [net[1].me]
    assert message(sends[0].payload)["t"] == "have"


def test_have_gets_what_the_peer_lacks() -> None:
    net = FakeNetwork.meeting(3)
    alice, bob = net[0], net[1]
    entries = [alice.open_step(TEXT), alice.contribute(TEXT, "a"), alice.contribute(TEXT, "b")]
    alice.take_sends()  # lost
    bob.tick()
    to_alice = [s for s in bob.take_sends() if s.peer == alice.me]
    alice.receive(bob.me, to_alice[0].payload)
    reply = [s for s in alice.take_sends() if s.peer == bob.me]
    assert len(reply) == 1
    assert message(reply[0].payload)["e"] == [e.envelope for e in entries]
    bob.receive(alice.me, reply[0].payload)
    assert bob.digest() == alice.digest()


def test_have_with_nothing_missing_sends_nothing() -> None:
    net = FakeNetwork.meeting(3)
    net[1].tick()
    payload = next(s.payload for s in net[1].take_sends() if s.peer == net[0].me)
    net[0].receive(net[1].me, payload)
    assert net[0].take_sends() == []


def test_a_gap_asks_for_what_is_missing() -> None:
    net = FakeNetwork.meeting(2)
    alice, bob = net[0], net[1]
    e1, e2, e3 = alice.open_step(TEXT), alice.contribute(TEXT, "a"), alice.contribute(TEXT, "b")
    alice.take_sends()
    events = bob.receive(alice.me, entries_frame(MID, e3.envelope))
    assert events == []  # buffered, not rejected
    want = bob.take_sends()
    assert [message(s.payload) for s in want] == [
        {"t": "want", "mid": MID, "r": [[alice.me, e1.seq, e2.seq]]}
    ]
    alice.receive(bob.me, want[0].payload)
    answer = alice.take_sends()
    assert message(answer[0].payload)["e"] == [e1.envelope, e2.envelope]
    events = bob.receive(alice.me, answer[0].payload)
    assert [e.seq for e in accepted(events)] == [e1.seq, e2.seq, e3.seq]


def test_want_for_an_unknown_author_or_range_sends_nothing() -> None:
    net = FakeNetwork.meeting(2)
    alice = net[0]
    r = [[b"\x00" * 32, 1, 5], [alice.me, 50, 60], [alice.me, 3, 1]]
    assert alice.receive(net[1].me, pack({"t": "want", "mid": MID, "r": r})) == []
    assert alice.take_sends() == []


def test_sync_converges_from_nothing() -> None:
    """Every peer's entries reach every other through have/want alone."""
    net = FakeNetwork.meeting(4)
    net[0].open_step(TEXT)
    for session in net:
        session.take_sends()
    net.in_flight.clear()
    for i, session in enumerate(net):
        if session.state.current == TEXT:
            session.contribute(TEXT, f"from {i}")
        session.take_sends()  # every broadcast lost
    net.settle()
    assert len(set(net.digests())) == 1
    assert len(net[3].state.contributions) == 1


def test_fork_found_by_one_session_reaches_all() -> None:
    net = FakeNetwork.meeting(4)
    alice, bob, carol, dan = net
    a = dan.raise_hand()
    net.drop_from(dan.me)
    b = forge_next(dan, "hand.lower", {"who": dan.me}, seq=a.seq, prev=a.prev, lam=a.lam)
    net.send_now(dan.me, alice.me, entries_frame(MID, a.envelope))
    found = net.send_now(dan.me, alice.me, entries_frame(MID, b.envelope))
    assert [type(e) for e in found] == [ForkDetected, MeetingChanged]
    net.deliver_all()
    for session in (bob, carol, dan):
        assert session.log.frozen_at(dan.me) == a.seq
        assert forks(net.events[session.me])
    assert len(set(net.digests())) == 1


def test_a_peer_on_the_other_branch_behind_our_head_is_shown_the_fork() -> None:
    """Quinn holds Mallory's A and what followed it; Pat holds only B, the
    other entry at A's place. Quinn's summary is ahead, so Pat has nothing
    to send; Quinn must send A itself, not just what follows it (which
    cannot link onto B)."""
    net = FakeNetwork.meeting(3)
    pat, quinn, mallory = net
    a = mallory.raise_hand()
    after = mallory.lower_hand()
    b = forge_next(mallory, "hand.raise", {"x": 1}, seq=a.seq, prev=a.prev, lam=a.lam)
    mallory.take_sends()
    quinn.receive(mallory.me, entries_frame(MID, a.envelope, after.envelope))
    pat.receive(mallory.me, entries_frame(MID, b.envelope))
    pat.tick()
    to_quinn = next(s.payload for s in pat.take_sends() if s.peer == quinn.me)
    quinn.receive(pat.me, to_quinn)
    reply = [s.payload for s in quinn.take_sends() if s.peer == pat.me]
    sent = message(reply[0])["e"]
    assert isinstance(sent, list) and a.envelope in sent
    events = pat.receive(quinn.me, reply[0])
    assert [e.seq for e in forks(events)] == [a.seq]
    assert pat.log.frozen_at(mallory.me) == a.seq


def test_a_peer_that_knows_only_a_later_fork_is_sent_the_earlier_one() -> None:
    """Mallory equivocated at seq 1 and, on one branch, again at seq 3. Alice
    holds the seq 1 proof, Bob only the seq 3 one (the seq 1 broadcast to
    him was lost). Both list Mallory among their forks; tick must still
    bring Bob the earlier proof, which is the one the state is frozen at."""
    net = FakeNetwork.meeting(3)
    alice, bob, mallory = net
    a1 = mallory.raise_hand()
    a2 = mallory.lower_hand()
    a3 = mallory.raise_hand()
    mallory.take_sends()
    b1 = forge_next(mallory, "hand.raise", {"x": 1}, seq=1, prev=None, lam=a1.lam)
    b3 = forge_next(mallory, "hand.raise", {"x": 3}, seq=3, prev=a2.hash, lam=a3.lam)
    assert forks(alice.receive(mallory.me, fork_frame(MID, a1.envelope, b1.envelope)))
    assert forks(bob.receive(mallory.me, fork_frame(MID, a3.envelope, b3.envelope)))
    alice.take_sends()
    bob.take_sends()
    assert (alice.log.frozen_at(mallory.me), bob.log.frozen_at(mallory.me)) == (1, 3)
    assert alice.digest() != bob.digest()
    # Alice's summary tells Bob nothing he can improve on: no fork for her.
    alice.tick()
    to_bob = next(s.payload for s in alice.take_sends() if s.peer == bob.me)
    bob.receive(alice.me, to_bob)
    assert [message(s.payload)["t"] for s in bob.take_sends()] == []
    # Bob's summary shows a later fork: Alice sends hers.
    bob.tick()
    to_alice = next(s.payload for s in bob.take_sends() if s.peer == alice.me)
    alice.receive(bob.me, to_alice)
    replies = [s.payload for s in alice.take_sends() if s.peer == bob.me]
    assert [message(p)["t"] for p in replies] == ["fork"]
    assert forks(bob.receive(alice.me, replies[0]))
    assert bob.log.frozen_at(mallory.me) == 1
    assert alice.digest() == bob.digest()


def test_fork_proofs_are_offered_on_connect() -> None:
    net = FakeNetwork.meeting(2)
    alice, bob = net
    a = bob.raise_hand()
    b = forge_next(bob, "hand.lower", {}, seq=a.seq, prev=a.prev, lam=a.lam)
    alice.receive(bob.me, entries_frame(MID, a.envelope, b.envelope))
    alice.take_sends()
    alice.peer_connected(b"p" * 32)
    payloads = [message(s.payload) for s in alice.take_sends()]
    assert [p["t"] for p in payloads] == ["have", "fork"]
    assert payloads[1]["p"] == alice.log.forks[bob.me].envelopes()


def test_a_lost_fork_broadcast_at_seq_1_is_repaired_by_tick() -> None:
    """The proof of a fork at an author's first entry leaves their feed
    empty, so the summary no longer names them; anti-entropy must still
    hand the proof to a peer that holds one side."""
    net = FakeNetwork.meeting(4)
    s0, s1, s2, s3 = net
    a = s3.raise_hand()
    assert a.seq == 1
    b = forge_next(s3, "hand.raise", {}, seq=1, prev=None, lam=a.lam, ts=a.ts + 1)
    net.drop_from(s3.me)
    for target, entry in ((s0, a), (s1, a), (s2, b)):
        net.send_now(s3.me, target.me, entries_frame(MID, entry.envelope))
    # s0 and s2 compare notes: s2 finds the fork.
    s2.tick()
    net.pump()
    for m in [m for m in net.in_flight if m.src == s2.me and m.dst == s0.me]:
        net.send_now(m.src, m.dst, m.payload)
    for m in [m for m in net.in_flight if m.src == s0.me and m.dst == s2.me]:
        net.send_now(m.src, m.dst, m.payload)
    assert s2.log.frozen_at(s3.me) == 1
    assert s0.log.frozen_at(s3.me) is None
    net.in_flight.clear()  # every message of that moment is lost, the fork broadcast too
    net.settle()
    assert all(s.log.frozen_at(s3.me) == 1 for s in net)
    assert len(set(net.digests())) == 1


# --- the incremental fold ---------------------------------------------------------------------


def test_incremental_fold_equals_a_full_fold() -> None:
    net = FakeNetwork.meeting(3)
    alice, bob, carol = net
    alice.open_step(TEXT)
    net.settle()
    bob.contribute(TEXT, "b")
    carol.contribute(TEXT, "c")  # concurrent: same Lamport clock as bob's
    bob.raise_hand()
    net.deliver_all(rng=__import__("random").Random(3))
    net.settle()
    for session in net:
        ordered = sorted(session.log.entries(), key=lambda e: e.order_key)
        assert session.digest() == fold(session.mid, session.creator, ordered, {}).digest()


# --- events -----------------------------------------------------------------------------


def test_events_carry_no_contribution_text() -> None:
    net = FakeNetwork.meeting(2)
    net[0].open_step(TEXT)
    private = "the name of the person who hurt me"
    entry = net[0].contribute(TEXT, private)
    net.deliver_all()
    bad = pack([entry.body, bytes(64)])
    events = net[1].receive(net[0].me, entries_frame(MID, bad))
    events += net.events[net[1].me]
    assert events and all(private not in str(e) and private not in repr(e) for e in events)


def test_a_copy_of_stored_entries_changes_nothing_and_says_nothing() -> None:
    """Entries a laptop holds, sent again (a catching-up laptop gets many such
    copies): no event, no send, no change (SPEC §3.3; they are skipped
    before decoding)."""
    net = FakeNetwork.meeting(2)
    alice, bob = net
    alice.open_step(TEXT)
    entry = alice.contribute(TEXT, "once")
    net.deliver_all()
    before = (bob.digest(), len(bob.log))
    frame = entries_frame(MID, *(e.envelope for e in alice.log.entries()))
    assert bob.receive(alice.me, frame) == []
    assert bob.take_sends() == []
    assert (bob.digest(), len(bob.log)) == before
    assert entry in bob.log.feed(alice.me)


def test_an_entry_a_fork_took_out_is_refused_again_not_skipped() -> None:
    """Entries after a fork leave the feed (SPEC §3.5). A copy arriving later
    is no longer a stored entry: it is refused as frozen_feed, as it always
    was, not skipped as a duplicate."""
    net = FakeNetwork.meeting(2)
    pat, mallory = net
    a = mallory.raise_hand()
    after = mallory.lower_hand()
    mallory.take_sends()
    pat.receive(mallory.me, entries_frame(MID, a.envelope, after.envelope))
    b = forge_next(mallory, "hand.raise", {"x": 1}, seq=a.seq, prev=a.prev, lam=a.lam)
    assert forks(pat.receive(mallory.me, entries_frame(MID, b.envelope)))
    assert after not in pat.log.feed(mallory.me)
    events = pat.receive(mallory.me, entries_frame(MID, after.envelope))
    assert codes(events) == ["frozen_feed"]


def test_a_late_joiner_folds_each_entry_once_and_holds_nothing() -> None:
    """A have is answered in fold order (SPEC §7.2): the joiner meets every
    roster.add before that member's entries, so it holds none of them, and
    folds each entry once as it arrives (its state is only ever extended,
    never folded again from the start), whatever the order of the keys."""
    for sponsor_first in (True, False):
        # The sponsor's feed, written last, sorts before or after the creator's.
        creator, sponsor = sorted(IDENTITIES[:2], key=lambda i: i.key, reverse=sponsor_first)
        net = FakeNetwork.meeting(2, identities=[creator, sponsor])
        a, b = net
        a.open_step(TEXT)
        net.deliver_all()
        b.contribute(TEXT, "early, by the sponsor")
        net.deliver_all()
        for i in range(50):
            a.contribute(TEXT, f"before the joiner #{i}")
        net.deliver_all()
        late = Session.join(IDENTITIES[2], MID, a.creator, net.clock)
        b.add_member(late.me, IDENTITIES[2].ring_key, "Late")  # the latest entry of all
        b.take_sends()
        a.receive(b.me, entries_frame(MID, *(e.envelope for e in b.log.feed(b.me))))
        a.take_sends()
        state = late.state
        late.peer_connected(b.me)
        b.peer_connected(late.me)
        have = next(s.payload for s in late.take_sends() if s.peer == b.me)
        b.receive(late.me, have)
        for send in b.take_sends():
            if send.peer == late.me:
                late.receive(b.me, send.payload)
                assert late.log.held_count == 0
                assert late.state is state  # extended, not folded again
        assert late.state.is_member(late.me)
        assert late.digest() == b.digest()
