"""Issue 11's attacks, each played by a modified member over the fake network,
each asserting the honest outcome on every laptop (SPEC §6.5, §9).

Every laptop here answers closes as the reference node does
(``policies.tally_answers``: co-sign, or object naming what was left out),
except where a test says a member runs a modified client.
"""

from __future__ import annotations

from fakenet import (
    IDENTITIES,
    MID,
    OUTSIDER,
    PROPOSAL,
    TEXT,
    FakeNetwork,
    acknowledge,
    entries_frame,
    forge_next,
    open_poll,
)

from relsec_p2p.core.feed import Entry
from relsec_p2p.core.policies import tally_answers
from relsec_p2p.core.refusals import Refusal
from relsec_p2p.core.session import Session


def answer_closes(*sessions: Session) -> None:
    """What every honest node does after each change (net/node.py)."""
    for session in sessions:
        for answer in tally_answers(session.state, session.me, session.held_at_close):
            if answer.object:
                session.object_to_tally(answer.poll, answer.digest, list(answer.left_out))
            else:
                session.sign_tally(answer.poll, answer.digest)


def snapshot(session: Session, poll: bytes) -> tuple[object, ...]:
    found = session.state.polls[poll]
    return (found.result, found.tally_digest, frozenset(found.cosigners), found.final)


def test_a_back_dated_roster_add_cannot_flip_a_co_signed_close() -> None:
    """Attack 1: 3 of 4 agree, the close is co-signed by a majority; the
    fourth member (modified: it never co-signs) then adds a fifth member with
    a clock from before the close. Before the fix, every laptop turned the
    result into no_quorum (5 members, quorum 4)."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, mallory = net
    poll = open_poll(net)
    for session in (alice, bob, carol):
        session.vote(poll, "agree")
    net.settle()
    assert mallory.log.head(mallory.me) is None  # mallory has written nothing yet
    close = alice.close_poll(poll)
    net.settle()
    answer_closes(alice, bob, carol)  # mallory does not co-sign
    net.settle()
    expected = snapshot(alice, poll)
    result = alice.state.polls[poll].result
    assert result is not None and result.outcome == "consensus" and result.members == 4
    assert alice.state.polls[poll].final
    acknowledge(net, alice, bob, carol)  # mallory acknowledges nothing

    # It claims to have seen nothing since its own admission (omits deps).
    admitted = next(
        e
        for e in alice.log.feed(alice.me)
        if e.type == "roster.add" and e.data["key"] == mallory.me
    )
    sneaky = forge_next(
        mallory,
        "roster.add",
        {"key": OUTSIDER.key, "ring": OUTSIDER.ring_key, "name": "Eve"},
        deps=[(alice.me, admitted.seq)],
    )
    assert sneaky.order_key < close.order_key  # it sorts before the close...
    net.post(mallory.me, bob.me, entries_frame(MID, sneaky.envelope))
    net.deliver_all()
    net.settle()
    for session in net:
        assert session.log.head(mallory.me) == sneaky  # ...is in every log...
        assert _sorted_after(session, sneaky, close)  # ...re-dated after the settled close...
        assert OUTSIDER.key in session.state.members  # ...and applied there...
        assert snapshot(session, poll) == expected  # ...changing nothing decided
    assert len(set(net.digests())) == 1


def test_a_back_dated_departure_cannot_take_a_counted_vote_out_of_a_closed_poll() -> None:
    """A variation: a member blocks, the close counts the block and is
    co-signed; the blocker (modified: it never co-signs) then leaves with a
    clock from before the close. Before the fix, every laptop stopped
    counting the block (it counted only members still present at the close's
    place in the fold) and showed consensus."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, dan = net
    poll = open_poll(net)
    for session in net:
        session.vote(poll, "agree" if session is not dan else "block")
    net.settle()
    head = dan.log.head(dan.me)
    assert head is not None
    for session in (alice, bob, carol):  # the meeting goes on before the close
        session.raise_hand()
        net.settle()
    close = alice.close_poll(poll)
    net.settle()
    answer_closes(alice, bob, carol)
    net.settle()
    expected = snapshot(bob, poll)
    assert bob.state.polls[poll].final
    leave = forge_next(dan, "roster.leave", {}, deps=[])
    assert leave.order_key < close.order_key
    net.post(dan.me, bob.me, entries_frame(MID, leave.envelope))
    net.deliver_all()
    net.settle()
    for session in net:
        assert not session.state.is_member(dan.me)  # the departure itself stands
        assert snapshot(session, poll) == expected
        decided = session.state.polls[poll].result
        assert decided is not None and decided.outcome == "blocked"
    assert len(set(net.digests())) == 1


def test_a_back_dated_hand_over_cannot_erase_the_successors_close() -> None:
    """Attack 2: the facilitator's laptop vanishes, a majority declares it
    absent, the successor runs a poll that everyone present co-signs. The old
    facilitator comes back with a hand-over to an accomplice dated before the
    declarations. The successor's close still decides the poll everywhere."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, dan = net
    assert alice.state.facilitator == alice.me
    net.partition([alice.me], [bob.me, carol.me, dan.me])
    alice_head = alice.log.head(alice.me)
    assert alice_head is not None
    for session in (bob, carol):
        session.declare_absent()
    net.settle()
    assert bob.state.facilitator == bob.me  # the successor
    bob.open_step(PROPOSAL)
    net.settle()
    proposal = carol.propose(PROPOSAL, "We do Y")
    net.settle()
    poll = bob.open_poll(proposal.hash).hash
    net.settle()
    for session in (bob, carol, dan):
        session.vote(poll, "agree")
    net.settle()
    bob.close_poll(poll)
    net.settle()
    answer_closes(bob, carol, dan)
    net.settle()
    acknowledge(net, bob, carol, dan)
    expected = snapshot(bob, poll)
    assert bob.state.polls[poll].final

    # Alice, back: a hand-over to dan with a clock before the declarations.
    handover = forge_next(alice, "facil.handover", {"to": dan.me}, deps=[])
    net.heal()
    net.post(alice.me, carol.me, entries_frame(MID, handover.envelope))
    net.deliver_all()
    net.settle()
    for session in net:
        assert snapshot(session, poll) == expected
        result = session.state.polls[poll].result
        assert result is not None and result.outcome == "consensus"
        # The declarations had settled: it lands after them, where alice no
        # longer facilitates (the overruled rule of §6.2 would void it too).
        refused = dict(session.state.ignored).get(handover.hash)
        assert refused is not None and refused.code == Refusal.NOT_FACILITATOR
        assert session.state.facilitator == bob.me
    assert len(set(net.digests())) == 1


def test_a_short_cut_is_objected_to_and_never_final() -> None:
    """Attack 3: the facilitator closes with a cut that leaves out a block it
    had received. Every laptop that held the block before the close objects
    instead of co-signing, the blocker's own included; the close never becomes
    final, and every laptop records who objected and which vote was left out."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, dan = net
    poll = open_poll(net)
    for session in (alice, bob, carol):
        session.vote(poll, "agree")
    net.settle()
    block = dan.vote(poll, "block")
    net.settle()
    honest_cut = {author: seq for author, seq, _ in alice.log.summary()}
    short = [[a, seq if a != dan.me else block.seq - 1] for a, seq in sorted(honest_cut.items())]
    forged = forge_next(alice, "poll.close", {"poll": poll, "cut": short})
    for session in net:
        session.receive(alice.me, entries_frame(MID, forged.envelope))
    net.settle()
    answer_closes(bob, carol, dan)  # alice's modified client answers nothing
    net.settle()
    for session in net:
        found = session.state.polls[poll]
        result = found.result
        assert result is not None and result.outcome == "consensus"  # what the close says...
        assert not found.final  # ...but it is not final:
        close = found.closes[0]
        assert close.cosigners == set()
        assert set(close.objections) == {bob.me, carol.me, dan.me}
        assert all(left == [(dan.me, block.seq)] for left in close.objections.values())
    assert len(set(net.digests())) == 1


def test_an_answer_racing_a_step_change_is_kept_everywhere() -> None:
    """Attack-free race 4: a member answers while the facilitator moves on,
    with equal clocks; the tie sorts the step change first. The answer used to
    be ignored ("that step is not open") on every laptop, silently."""
    net = FakeNetwork.meeting(3)
    alice, bob, carol = net
    alice.open_step(TEXT)
    net.settle()
    net.partition([alice.me], [bob.me, carol.me])
    step_change = alice.open_step(TEXT + 1)
    answer = carol.contribute(TEXT, "said just as we moved on")
    assert step_change.lam == answer.lam
    net.heal()
    net.settle()
    for session in net:
        texts = [c.text for c in session.state.contributions]
        assert "said just as we moved on" in texts
        assert not [h for h, _ in session.state.ignored if h == answer.hash]
    assert not carol.own_ignored()
    assert len(set(net.digests())) == 1


def test_a_vote_racing_the_close_is_reported_to_its_author() -> None:
    """A vote written while the close was in flight: it sorts after the close
    and does not count; its author's laptop says so (nothing vanishes)."""
    net = FakeNetwork.meeting(3)
    alice, bob, carol = net
    poll = open_poll(net)
    alice.vote(poll, "agree")
    bob.vote(poll, "agree")
    net.settle()
    net.partition([alice.me, bob.me], [carol.me])
    carol.raise_hand()  # carol's clock moves on: her vote will sort after the close
    alice.close_poll(poll)
    net.settle()
    vote = carol.vote(poll, "block")
    net.heal()
    net.settle()
    ignored = carol.own_ignored()
    assert [(entry.hash, refused.code) for entry, refused in ignored] == [
        (vote.hash, Refusal.POLL_CLOSED)
    ]
    for session in net:
        result = session.state.polls[poll].result
        assert result is not None and result.counts["block"] == 0
    assert len(set(net.digests())) == 1


# --- variations found by playing the attacker further (SPEC §9.2) ------------------------


def test_a_low_upto_after_a_close_takes_nothing_out_of_it() -> None:
    """The facilitator removes the blocker after the close, with an ``upto``
    below the block: the block stays counted, and so do the co-signatures."""
    net = FakeNetwork.meeting(4)
    alice, bob, _, dan = net
    poll = open_poll(net)
    for session in net:
        session.vote(poll, "agree" if session is not dan else "block")
    net.settle()
    alice.close_poll(poll)
    net.settle()
    answer_closes(*net)
    net.settle()
    expected = snapshot(bob, poll)
    block = next(v for v in bob.state.polls[poll].votes if v.author == dan.me)
    removal = forge_next(alice, "roster.remove", {"who": dan.me, "upto": block.seq - 1})
    for session in net:
        session.receive(alice.me, entries_frame(MID, removal.envelope))
    net.settle()
    for session in net:
        assert not session.state.is_member(dan.me)
        assert snapshot(session, poll) == expected
        assert len(session.state.polls[poll].cosigners) == 4
    assert len(set(net.digests())) == 1


def _voted_out(members: int) -> tuple[FakeNetwork, bytes, Entry]:
    """alice facilitates and opens a poll, then goes silent; the others vote
    (dan blocks) and a majority declares her absent, so bob facilitates."""
    net = FakeNetwork.meeting(members)
    alice, bob, carol, dan = net[0], net[1], net[2], net[3]
    poll = open_poll(net)
    net.partition([alice.me], [s.me for s in net if s is not alice])
    for session in net:
        if session not in (alice, dan):
            session.vote(poll, "agree")
    net.settle()
    dan.raise_hand()
    block = dan.vote(poll, "block")
    net.settle()
    for session in (bob, carol, dan):
        session.declare_absent()
    net.settle()
    assert bob.state.facilitator == bob.me
    return net, poll, block


def test_a_removal_back_dated_before_a_block_cannot_drop_it_from_a_final_close() -> None:
    net, poll, block = _voted_out(5)
    alice, bob, _, dan, _ = net
    bob.close_poll(poll)
    net.settle()
    answer_closes(*list(net)[1:])
    net.settle()
    expected = snapshot(bob, poll)
    assert expected[0].outcome == "blocked" and expected[3]  # type: ignore[union-attr]
    removal = forge_next(alice, "roster.remove", {"who": dan.me, "upto": 99}, deps=[])
    assert removal.order_key < block.order_key
    net.heal()
    for session in net:
        session.receive(alice.me, entries_frame(MID, removal.envelope))
    net.settle()
    for session in net:
        assert snapshot(session, poll) == expected
    assert len(set(net.digests())) == 1


def test_a_close_back_dated_by_a_voted_out_facilitator_is_never_final() -> None:
    """alice, declared absent, writes a close dated before dan's block, with a
    cut that leaves the block out. Honest laptops co-signed bob's close and
    it settled: alice's close folds after it, where she does not facilitate,
    and is ignored everywhere; bob's close stays final and decides."""
    net, poll, block = _voted_out(5)
    alice, bob = net[0], net[1]
    bob.close_poll(poll)
    net.settle()
    answer_closes(*list(net)[1:])
    net.settle()
    expected = snapshot(bob, poll)
    place = (block.lam - 1, alice.me, len(alice.log.feed(alice.me)) + 1)
    cut = []
    for author, _, _ in bob.log.summary():
        held = sum(1 for e in bob.log.feed(author) if e.order_key < place)
        if held:
            cut.append([author, held])
    # It names as dependencies just what its cut covers (bob's log holds
    # alice's feed as she left it).
    deps = [(author, held) for author, held in cut if author != alice.me]
    early = forge_next(
        bob, "poll.close", {"poll": poll, "cut": cut}, identity=alice.identity, deps=deps
    )
    assert early.order_key < block.order_key
    net.heal()
    for session in net:
        session.receive(alice.me, entries_frame(MID, early.envelope))
    net.settle()
    answer_closes(*list(net)[1:])
    net.settle()
    for session in net:
        found = session.state.polls[poll]
        # bob's close had settled (a majority's entries have it in their
        # past); alice's claims not to have seen it and is re-dated after it.
        assert [c.author for c in found.closes] == [bob.me]
        order = session.fold_order()
        assert order.index(early) > order.index(
            next(e for e in order if e.hash == found.closes[0].id)
        )
        assert snapshot(session, poll) == expected  # bob's close decides
        refused = dict(session.state.ignored).get(early.hash)
        assert refused is not None and refused.code == Refusal.NOT_FACILITATOR
    assert len(set(net.digests())) == 1


def test_a_close_by_someone_no_longer_facilitating_is_ignored_once_the_succession_settles() -> None:
    """alice is declared absent, comes back and closes the poll with a cut
    from before the declarations, claiming not to have seen them (its deps
    are its cut). In that window the close is valid where its clock puts it,
    and every laptop that knows bob facilitates objects; once the
    declarations settle (the objections acknowledge them), the close folds
    after them, where alice does not facilitate: ignored on every laptop
    (SPEC §6.5 condition 7), and the poll is open for bob to close."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, dan = net
    poll = open_poll(net)
    for session in (bob, carol, dan):
        session.vote(poll, "agree")
    net.settle()
    net.partition([alice.me], [bob.me, carol.me, dan.me])
    heads = {s.me: s.log.head(s.me) for s in (bob, carol)}
    bob.raise_hand()  # the room goes on before declaring
    net.settle()
    declarations = [bob.declare_absent(), carol.declare_absent()]
    net.settle()
    net.heal()
    net.settle()
    cut = []
    for author, length, _ in alice.log.summary():
        head = heads.get(author)
        cut.append([author, head.seq if head is not None else length])
    deps = [(author, seq) for author, seq in cut if author != alice.me]
    close = forge_next(alice, "poll.close", {"poll": poll, "cut": cut}, deps=deps)
    assert all(close.order_key < d.order_key for d in declarations)
    for session in net:
        session.receive(alice.me, entries_frame(MID, close.envelope))
    net.settle()
    assert all(session.state.polls[poll].closes for session in net)  # the window
    answer_closes(bob, carol, dan)
    net.settle()
    acknowledge(net, bob, carol, dan)
    for session in net:
        found = session.state.polls[poll]
        assert found.closes == [] and found.status == "open" and not found.final
        refused = dict(session.state.ignored).get(close.hash)
        assert refused is not None and refused.code == Refusal.NOT_FACILITATOR
        assert session.state.facilitator == bob.me
    assert len(set(net.digests())) == 1


def test_a_cut_that_leaves_out_a_voters_admission_is_objected_to() -> None:
    """The cut covers a newcomer's block but not the roster.add that admitted
    them, so the close does not count them: every laptop that held the block
    objects, naming it; the close is never final."""
    net = FakeNetwork.meeting(4)
    alice, _, _, dan = net
    newcomer = net.join(IDENTITIES[5], "Ed", sponsor=dan)
    net.settle()
    poll = open_poll(net)
    for session in list(net)[:3]:
        session.vote(poll, "agree")
    net.settle()
    block = newcomer.vote(poll, "block")
    net.settle()
    admission = next(e for e in dan.log.feed(dan.me) if e.type == "roster.add")
    cut = [
        [author, admission.seq - 1 if author == dan.me else length]
        for author, length, _ in alice.log.summary()
    ]
    close = forge_next(alice, "poll.close", {"poll": poll, "cut": cut})
    for session in net:
        session.receive(alice.me, entries_frame(MID, close.envelope))
    net.settle()
    answer_closes(*list(net)[1:])
    net.settle()
    for session in net:
        found = session.state.polls[poll]
        assert not found.final and not found.closes[0].cosigners
        objections = found.closes[0].objections
        assert objections and all(
            left == [(newcomer.me, block.seq)] for left in objections.values()
        )
    assert len(set(net.digests())) == 1


# --- settlement (SPEC §5.1, §6.10, §9.2): what a majority acknowledged stays first ------------


def _sorted_after(session: Session, intruder: Entry, settled: Entry) -> bool:
    order = session.fold_order()
    return order.index(intruder) > order.index(settled)


def test_a_claimed_ignorance_roster_add_cannot_undo_a_succession() -> None:
    """alice's laptop goes silent; bob, carol and eve declare her absent and
    bob facilitates and opens a poll. dan (modified: never acknowledges)
    then adds two members claiming not to have seen the declarations, so
    that in (lam, au, seq) order the absent quorum rises before they count:
    the succession failed and bob's poll vanished on every laptop. The
    declarations were settled (3 of 5 acknowledged them): the additions are
    re-dated after them, the succession and the poll stand everywhere."""
    net = FakeNetwork.meeting(5)
    alice, bob, carol, dan, eve = net
    alice.open_step(PROPOSAL)
    net.settle()
    before = {author: length for author, length, _ in dan.log.summary()}
    proposal = carol.propose(PROPOSAL, "We do Z")
    net.settle()
    net.partition([alice.me], [s.me for s in net if s is not alice])
    declarations = [s.declare_absent() for s in (bob, carol, eve)]
    net.settle()
    assert bob.state.facilitator == bob.me
    poll = bob.open_poll(proposal.hash)
    net.settle()
    acknowledge(net, bob, carol, eve)  # dan never acknowledges
    for session in (bob, carol, eve):
        assert all(d.hash in {e.hash for e in session.settlement.settled} for d in declarations)
    claim = [(author, length) for author, length in sorted(before.items()) if author != dan.me]
    first = forge_next(
        dan,
        "roster.add",
        {"key": OUTSIDER.key, "ring": OUTSIDER.ring_key, "name": "Ona"},
        deps=claim,
    )
    assert all(first.order_key < d.order_key for d in declarations)  # plain order: before
    dan.receive(dan.me, entries_frame(MID, first.envelope))  # dan's own log takes it
    extra = IDENTITIES[6]
    second = forge_next(
        dan, "roster.add", {"key": extra.key, "ring": extra.ring_key, "name": "Gus"}, deps=[]
    )
    for session in (bob, carol, eve):
        session.receive(dan.me, entries_frame(MID, first.envelope, second.envelope))
    net.settle()
    for session in (bob, carol, eve):
        assert _sorted_after(session, first, declarations[-1])
        assert session.state.facilitator == bob.me
        assert poll.hash in session.state.polls
        assert OUTSIDER.key in session.state.members and extra.key in session.state.members
    assert len({s.digest() for s in (bob, carol, eve, dan)}) == 1


def test_a_back_dated_removal_of_a_voter_by_a_voted_out_facilitator_is_ignored() -> None:
    """alice, declared absent while silent, removes dan with a removal that
    claims not to have seen his block or the declarations: in (lam, au, seq)
    order it came while she facilitated, before the block. The declarations
    and bob's close had settled, so it is re-dated after them, where alice is
    not the facilitator: ignored on every laptop; dan stays, his block counts."""
    net, poll, block = _voted_out(5)
    alice, bob, _, dan, _ = net
    bob.close_poll(poll)
    net.settle()
    answer_closes(*list(net)[1:])
    net.settle()
    acknowledge(net, *list(net)[1:])
    expected = snapshot(bob, poll)
    removal = forge_next(alice, "roster.remove", {"who": dan.me, "upto": 99})
    assert removal.order_key < block.order_key
    net.heal()
    for session in net:
        session.receive(alice.me, entries_frame(MID, removal.envelope))
    net.settle()
    for session in net:
        assert session.state.is_member(dan.me)
        refused = dict(session.state.ignored).get(removal.hash)
        assert refused is not None and refused.code == Refusal.NOT_FACILITATOR
        assert snapshot(session, poll) == expected
        assert dan.me in {vote.author for vote in session.state.polls[poll].votes}
    assert len(set(net.digests())) == 1


def test_a_back_dated_step_change_by_a_voted_out_facilitator_is_ignored() -> None:
    """alice, declared absent while silent, moves the agenda on with a step
    change that claims not to have seen the answers and the declarations. It
    is re-dated after the settled declarations: ignored everywhere; the step
    bob opened stays open and every answer stays under its step."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, dan = net
    alice.open_step(TEXT)
    net.settle()
    net.partition([alice.me], [bob.me, carol.me, dan.me])
    answers = [s.contribute(TEXT, f"answer {i}") for i, s in enumerate((bob, carol, dan))]
    net.settle()
    declarations = [session.declare_absent() for session in (bob, carol)]
    net.settle()
    bob.open_step(TEXT + 1)
    net.settle()
    acknowledge(net, bob, carol, dan)
    step_change = forge_next(alice, "step.open", {"step": PROPOSAL})
    # plain order: with the answers, before the declarations
    assert all(step_change.lam <= a.lam for a in answers)
    assert all(step_change.order_key < d.order_key for d in declarations)
    net.heal()
    net.post(alice.me, carol.me, entries_frame(MID, step_change.envelope))
    net.settle()
    for session in net:
        assert session.state.current == TEXT + 1
        refused = dict(session.state.ignored).get(step_change.hash)
        assert refused is not None and refused.code == Refusal.NOT_FACILITATOR
        texts = {c.text for c in session.state.contributions}
        assert texts == {"answer 0", "answer 1", "answer 2"}
    assert len(set(net.digests())) == 1


def test_claimed_ignorance_is_re_dated_after_what_settled() -> None:
    """A member omits deps: its first entry claims to have seen nothing, so
    its clock is 1 and in (lam, au, seq) order it sorts before the meeting
    even exists (ignored: "the meeting does not exist yet"). What the room
    had settled stays before it on every laptop: the answer lands after the
    step opened, and counts."""
    net = FakeNetwork.meeting(4)
    alice, bob, carol, mallory = net
    opened = alice.open_step(TEXT)
    net.settle()
    acknowledge(net, alice, bob, carol)
    sneaky = forge_next(mallory, "contrib.add", {"step": TEXT, "text": "I was here"}, deps=[])
    assert sneaky.lam == 1 and sneaky.deps == ()
    net.post(mallory.me, bob.me, entries_frame(MID, sneaky.envelope))
    net.settle()
    for session in net:
        assert _sorted_after(session, sneaky, opened)
        assert "I was here" in [c.text for c in session.state.contributions]
    assert len(set(net.digests())) == 1
