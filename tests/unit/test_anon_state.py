"""Anonymous rounds in the meeting: the ``anon.round`` fold rule (core/anon_rules.py)
and the Session's channel (core/anon.py) on the fake network.

Fold tests write certified rounds by hand (``certified``), as a modified
client could; network tests let real Sessions run rounds on a fake clock.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from fakenet import IDENTITIES, MID, START_MS, FakeNetwork, InFlight, Scribe
from nacl import bindings

from relsec_p2p.core import anon, ring, shuffle
from relsec_p2p.core.anon_rules import (
    BoundedMemo,
    check_anonymous_item,
    decode_item,
    ring_of,
    round_id_of,
    vote_message,
)
from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import EntryRefused, LocalProtocolError
from relsec_p2p.core.feed import Entry, encode_entry
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.record import item_labels, render_json, step_ratings
from relsec_p2p.core.refusals import Refusal, Refused
from relsec_p2p.core.requests import (
    TEXT_CAPACITY,
    AnonymousAnswer,
    AnonymousRating,
    AnonymousRequest,
    AnonymousVote,
    PauseRequest,
    wire_item,
)
from relsec_p2p.core.rules import why_ignored
from relsec_p2p.core.session import Session
from relsec_p2p.core.state import MeetingState

A, B, C, D, E = IDENTITIES[:5]
UNSAID, FEEL, DECIDE, OPEN, NAMED, BOTH_RATE, WAY, LIKELY, IMPACT = range(9)
ANON_AGENDA: list[dict[str, Any]] = [
    {"id": "unsaid", "title": "Unsaid", "prompt": "What is hard to say?", "mode": "anonymous",
     "kind": "text"},
    {"id": "feel", "title": "Feel", "prompt": "How safe do you feel?", "mode": "anonymous",
     "kind": "rating", "scale": ["low", "some", "high"]},
    {"id": "decide", "title": "Decide", "prompt": "What do we do?", "mode": "anonymous",
     "kind": "proposal"},
    {"id": "open", "title": "Open", "prompt": "Anything else?", "mode": "both", "kind": "text"},
    {"id": "named", "title": "Named", "prompt": "Who does what?", "mode": "named",
     "kind": "proposal"},
    {"id": "both", "title": "Both", "prompt": "How was it?", "mode": "both", "kind": "rating",
     "scale": ["bad", "good"]},
    {"id": "way", "title": "Way", "prompt": "Which way?", "mode": "both", "kind": "proposal"},
    {"id": "likely", "title": "Likely", "prompt": "How likely is each?", "mode": "anonymous",
     "kind": "rating", "scale": ["no", "maybe", "yes"], "links": ["unsaid"]},
    {"id": "impact", "title": "Impact", "prompt": "What harm?", "mode": "both", "kind": "text",
     "links": ["unsaid"]},
]  # fmt: skip


# --- writing certified rounds by hand -------------------------------------------------


class Room:
    """A meeting of A, B, C, D written with a Scribe, and certified rounds."""

    def __init__(self, members: int = 4) -> None:
        self.scribe = Scribe(A)
        self.scribe.create(agenda=ANON_AGENDA)
        self.ids = IDENTITIES[:members]
        for member in self.ids[1:]:
            self.scribe.add(A, member)
        self.poll: bytes | None = None

    @property
    def state(self) -> MeetingState:
        return self.scribe.state()

    def open(self, step: int) -> None:
        self.scribe.write(A, "step.open", {"step": step})

    def open_poll(self, step: int = DECIDE) -> bytes:
        self.open(step)
        proposal = self.scribe.write(B, "proposal.add", {"step": step, "text": "We do X"})
        self.poll = self.scribe.write(A, "poll.open", {"proposal": proposal.hash}).hash
        return self.poll

    def cut(self) -> list[list[Any]]:
        """Every feed's length now, as the facilitator's laptop would cut."""
        return [[k.key, sum(1 for e in self.scribe.entries if e.author == k.key)] for k in self.ids]

    def start(self, who: list[Identity] | None = None) -> shuffle.RoundStart:
        keys = [i.key for i in (who or self.ids)]
        return shuffle.RoundStart.new(MID, self.state.epoch, keys)

    def item(
        self, start: shuffle.RoundStart, signer: Identity, request: AnonymousRequest | None
    ) -> bytes:
        keys = ring_of(self.state, start.parts)
        return anon.encode_item(
            request, mid=MID, rid=start.rid, keys=keys, secret=signer.ring_secret
        )

    def certified(
        self,
        start: shuffle.RoundStart,
        items: list[bytes],
        *,
        signers: list[Identity] | None = None,
    ) -> dict[str, Any]:
        ids = sorted({shuffle.item_id(i) for i in items})
        body = shuffle.statement("release", MID, start.rid, shuffle.release_digest(ids))
        by_key = {i.key: i for i in (signers or IDENTITIES)}
        return {
            "after": start.after,
            "epoch": start.epoch,
            "nonce": start.nonce,
            "members": list(start.parts),
            "ids": ids,
            "items": items,
            "go": [by_key[k].sign(shuffle.ANON_CONTEXT, body) for k in start.parts],
        }

    def release(self, data: dict[str, Any], author: Identity = C) -> Entry:
        return self.scribe.write(author, "anon.round", data)

    def why(self, data: dict[str, Any], author: Identity = C) -> Refused | None:
        entry = self.scribe.write(author, "anon.round", data, keep=False)
        return why_ignored(self.state, entry)


contrib = AnonymousAnswer
vote = AnonymousVote


# --- the fold: contributions, pauses, certificates -------------------------------------


def test_anonymous_contribution_is_unattributed_with_members_and_slots() -> None:
    room = Room()
    room.open(UNSAID)
    start = room.start()
    items = [room.item(start, B, contrib(UNSAID, "I am afraid of X"))]
    room.release(room.certified(start, items))
    state = room.state
    (shown,) = state.anonymous_contributions
    assert (shown.step, shown.text, shown.round, shown.members, shown.slots) == (
        UNSAID,
        "I am afraid of X",
        1,
        4,
        4,
    )
    assert not hasattr(shown, "author")
    assert state.contributions == []  # nothing named


def test_round_of_a_subset_shows_the_missing_slots() -> None:
    room = Room(5)
    room.open(UNSAID)
    start = room.start(room.ids[:4])  # E was left out
    room.release(room.certified(start, [room.item(start, B, contrib(UNSAID, "hm"))]))
    (shown,) = room.state.anonymous_contributions
    assert (shown.members, shown.slots) == (5, 4)


def test_pause_requests_count_up() -> None:
    room = Room()
    start = room.start()
    items = [room.item(start, k, PauseRequest()) for k in (A, B)]
    room.release(room.certified(start, items))
    assert room.state.pause_requests == 2


def test_certificate_must_hold_every_participant() -> None:
    room = Room()
    room.open(UNSAID)
    start = room.start()
    data = room.certified(start, [room.item(start, B, contrib(UNSAID, "x"))])
    forged = dict(data, go=[*data["go"][:-1], bytes(64)])
    assert room.why(forged) == Refused(
        Refusal.ROUND_NOT_CERTIFIED, "the round is not signed by every participant"
    )
    shorter = dict(data, go=data["go"][:-1])
    assert room.why(shorter) == Refused(
        Refusal.BAD_FIELDS, "anon.round fields have the wrong shape"
    )
    # Claiming other participants breaks the round id the signatures cover.
    others = dict(data, members=sorted(data["members"][:3]), go=data["go"][:3])
    assert room.why(others) == Refused(
        Refusal.ROUND_NOT_CERTIFIED, "the round is not signed by every participant"
    )
    assert room.why(data) is None


def test_round_with_a_stranger_or_too_few_members_is_ignored() -> None:
    room = Room()
    room.open(UNSAID)
    stranger = Identity.from_seed(b"\x99" * 32)
    start = shuffle.RoundStart.new(MID, 1, [A.key, B.key, stranger.key])
    data = room.certified(start, [b"\x90"], signers=[A, B, stranger])
    assert room.why(data) == Refused(
        Refusal.STRANGER_IN_ROUND, "a participant of the round is not a current member"
    )
    small = room.start([A, B, C])
    data = room.certified(small, [b"\x90"])
    data["members"], data["go"] = data["members"][:2], data["go"][:2]
    assert room.why(data) == Refused(Refusal.BAD_FIELDS, "anon.round fields have the wrong shape")


def test_items_not_in_the_certificate_are_refused() -> None:
    room = Room()
    room.open(UNSAID)
    start = room.start()
    real = [room.item(start, k, contrib(UNSAID, "real")) for k in (B, C)]
    data = room.certified(start, real)
    data["items"] = [real[0], room.item(start, C, contrib(UNSAID, "slipped in"))]
    assert room.why(data) == Refused(Refusal.ITEM_NOT_RELEASED, "an item the round did not release")


def test_second_identical_release_is_ignored_and_split_releases_add_up() -> None:
    room = Room()
    room.open(UNSAID)
    start = room.start()
    items = [room.item(start, k, contrib(UNSAID, f"from {n}")) for n, k in enumerate((A, B, C))]
    whole = room.certified(start, items)
    first = dict(whole, items=items[:1])
    rest = dict(whole, items=items[1:])
    room.release(first, author=A)
    assert room.why(first, author=B) == Refused(
        Refusal.ROUND_ALREADY_IN, "those items of the round are already in"
    )
    room.release(rest, author=B)
    state = room.state
    assert sorted(c.text for c in state.anonymous_contributions) == ["from 0", "from 1", "from 2"]
    assert {c.round for c in state.anonymous_contributions} == {1}
    assert room.why(whole, author=D) == Refused(
        Refusal.ROUND_ALREADY_IN, "those items of the round are already in"
    )


def test_items_on_closed_or_named_steps_and_garbage_are_dropped_alone() -> None:
    room = Room()
    room.open(UNSAID)
    start = room.start()
    items = [
        room.item(start, A, contrib(UNSAID, "kept")),
        room.item(start, B, contrib(NAMED, "a named-only step")),
        room.item(start, C, contrib(OPEN, "a step not opened yet")),
        b"\xc1not msgpack",
        room.item(start, D, None),  # an empty dummy would not be released; b"" is no item
    ]
    items = [i for i in items if i]
    room.release(room.certified(start, items))
    assert [c.text for c in room.state.anonymous_contributions] == ["kept"]


# --- the fold: anonymous votes -------------------------------------------------------------


def test_anonymous_votes_latest_round_wins_and_close_counts_them() -> None:
    room = Room()
    poll = room.open_poll()
    first = room.start()
    room.release(
        room.certified(
            first,
            [
                room.item(first, A, vote(poll, "agree")),
                room.item(first, B, vote(poll, "block")),
                room.item(first, C, vote(poll, "agree")),
            ],
        )
    )
    assert room.state.polls[poll].anonymous_tally(3) == {
        "agree": 2,
        "concerns": 0,
        "stand_aside": 0,
        "block": 1,
    }
    second = room.start()
    room.release(room.certified(second, [room.item(second, B, vote(poll, "concerns"))]))
    tally = room.state.polls[poll].anonymous_tally(3)
    assert tally == {"agree": 2, "concerns": 1, "stand_aside": 0, "block": 0}
    room.scribe.write(A, "poll.close", {"poll": poll, "cut": room.cut()})
    result = room.state.polls[poll].result
    assert result is not None and result.outcome == "consensus"
    assert result.counts == tally and result.voters == 3


def test_anonymous_tally_hidden_below_the_threshold() -> None:
    room = Room()
    poll = room.open_poll()
    start = room.start()
    items = [room.item(start, A, vote(poll, "agree")), room.item(start, B, vote(poll, "block"))]
    room.release(room.certified(start, items))
    assert room.state.polls[poll].anonymous_tally(3) is None
    assert room.state.polls[poll].anonymous_tally(2) is not None


def test_voting_twice_with_the_same_key_counts_once() -> None:
    room = Room()
    poll = room.open_poll()
    start = room.start()
    items = [
        room.item(start, A, vote(poll, "agree")),
        room.item(start, A, vote(poll, "block")),  # the same member's second slot
        room.item(start, B, vote(poll, "agree")),
    ]
    room.release(room.certified(start, items))
    latest = room.state.polls[poll].latest_anonymous()
    assert len(latest) == 2
    assert sorted(latest.values()) in (["agree", "agree"], ["agree", "block"])


def test_replayed_vote_from_an_earlier_round_is_rejected() -> None:
    room = Room()
    poll = room.open_poll()
    first = room.start()
    old = room.item(first, B, vote(poll, "block"))
    room.release(room.certified(first, [old, room.item(first, A, vote(poll, "agree"))]))
    # B changes its mind; someone replays B's old "block" into a later round.
    second = room.start()
    changed = room.item(second, B, vote(poll, "agree"))
    room.release(room.certified(second, [changed, old]))
    latest = room.state.polls[poll].latest_anonymous()
    assert sorted(latest.values()) == ["agree", "agree"]
    assert len(room.state.polls[poll].anon_votes) == 3  # two in round 1, one in round 2


def test_vote_with_a_small_order_tag_component_is_rejected() -> None:
    room = Room()
    poll = room.open_poll()
    start = room.start()
    good = room.item(start, A, vote(poll, "agree"))
    item = decode_item(good)
    assert item is not None
    torsion = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
    tag = item["sig"][:32]
    bad_tag = bindings.crypto_core_ed25519_add(tag, torsion)
    assert bad_tag != tag and not bindings.crypto_core_ed25519_is_valid_point(bad_tag)
    bad = pack({**item, "sig": bad_tag + item["sig"][32:]})
    keys = ring_of(room.state, start.parts)
    message = vote_message(MID, start.rid, poll, "agree")
    assert ring.verify(message, keys, item["sig"], poll) == tag
    with pytest.raises(ring.BadRingSignature):
        ring.verify(message, keys, bad_tag + item["sig"][32:], poll)
    room.release(room.certified(start, [bad]))
    assert room.state.polls[poll].anon_votes == []
    # The honest version of the same vote counts.
    second = room.start()
    room.release(room.certified(second, [room.item(second, A, vote(poll, "agree"))]))
    assert len(room.state.polls[poll].anon_votes) == 1


def test_the_verification_memo_remembers_results_and_stays_bounded() -> None:
    memo: BoundedMemo[bytes | None] = BoundedMemo(2)
    calls: list[bytes] = []

    def verify(key: bytes, result: bytes | None) -> bytes | None:
        def compute() -> bytes | None:
            calls.append(key)
            return result

        return memo.recall(key, compute)

    assert verify(b"a", None) is None and verify(b"a", b"other") is None  # None is remembered
    assert verify(b"b", b"tag") == b"tag" and calls == [b"a", b"b"] and len(memo) == 2
    assert verify(b"c", b"new") == b"new" and len(memo) == 1  # full: forgot everything
    assert verify(b"a", b"again") == b"again" and calls == [b"a", b"b", b"c", b"a"]


def test_anonymous_votes_only_on_anonymous_steps() -> None:
    room = Room()
    poll = room.open_poll(NAMED)
    start = room.start()
    room.release(room.certified(start, [room.item(start, A, vote(poll, "block"))]))
    assert room.state.polls[poll].anon_votes == []


def test_anonymous_vote_after_the_cut_does_not_count() -> None:
    room = Room()
    poll = room.open_poll()
    cut = room.cut()
    start = room.start()
    # Released (by C) after what the facilitator had seen, back-dated before the close.
    late = room.certified(start, [room.item(start, A, vote(poll, "block"))])
    room.scribe.write(C, "anon.round", late, lam=room.scribe.lam + 5)
    room.scribe.write(A, "poll.close", {"poll": poll, "cut": cut}, lam=room.scribe.lam + 10)
    result = room.state.polls[poll].result
    assert result is not None and result.counts["block"] == 0


# --- the fold: anonymous ratings --------------------------------------------------------------


def test_anonymous_ratings_one_per_member_thresholded() -> None:
    room = Room()
    room.open(FEEL)

    def rating(value: int) -> AnonymousRating:
        return AnonymousRating(FEEL, value)

    start = room.start()
    room.release(
        room.certified(start, [room.item(start, A, rating(0)), room.item(start, B, rating(2))])
    )
    assert room.state.anonymous_rating_counts(FEEL, None, 3) is None
    second = room.start()
    room.release(
        room.certified(second, [room.item(second, A, rating(1)), room.item(second, C, rating(2))])
    )
    assert room.state.anonymous_rating_counts(FEEL, None, 3) == [0, 1, 2]  # A's 0 became 1


def test_anonymous_ratings_refused_where_ratings_are_named() -> None:
    room = Room()
    room.open(BOTH_RATE)
    start = room.start()
    item = room.item(start, A, AnonymousRating(BOTH_RATE, 1))
    room.release(room.certified(start, [item]))
    assert room.state.anonymous_ratings == {}


# --- the channel on the fake network ------------------------------------------------------------


def meeting(n: int = 4, **settings: Any) -> FakeNetwork:
    return FakeNetwork.meeting(n, agenda=ANON_AGENDA, settings=settings or None)


def open_step(net: FakeNetwork, step: int) -> None:
    net[0].open_step(step)
    net.settle()


def anonymous_texts(session: Session) -> list[str]:
    return sorted(c.text for c in session.state.anonymous_contributions)


def test_anonymous_contribution_reaches_everyone_unattributed() -> None:
    net = meeting()
    open_step(net, UNSAID)
    net[2].submit_anonymous(AnonymousAnswer(UNSAID, "I feel unsafe"))
    net.run_rounds(lambda: all(anonymous_texts(s) == ["I feel unsafe"] for s in net))
    net.settle()
    assert len(set(net.digests())) == 1
    (shown,) = net[0].state.anonymous_contributions
    assert (shown.members, shown.slots, shown.round) == (4, 4, 1)
    releases = [e for e in net[0].log.entries() if e.type == "anon.round"]
    assert len(releases) == 1
    assert net.rejections() == []
    assert net[2].anonymous.pending() == 0


def test_rounds_run_whether_or_not_anyone_speaks() -> None:
    net = meeting()
    open_step(net, UNSAID)
    net[1].take_round_reports()
    for _ in range(50):  # five seconds with nothing to say
        net.advance(100)
        net.tick_rounds()
        net.deliver_all()
    reports = net[1].take_round_reports()
    assert sum(1 for r in reports if isinstance(r, anon.RoundStarted)) >= 2
    assert sum(1 for r in reports if isinstance(r, shuffle.Released)) >= 2
    assert not any(e.type == "anon.round" for e in net[0].log.entries())  # dummies only


def test_votes_from_three_laptops_close_with_the_anonymous_tally() -> None:
    net = meeting()
    open_step(net, DECIDE)
    proposal = net[1].propose(DECIDE, "We ask them to step back")
    net.settle()
    poll = net[0].open_poll(proposal.hash).hash
    net.settle()
    for session, choice in zip(net, ["agree", "agree", "concerns", "agree"], strict=True):
        session.submit_anonymous(AnonymousVote(poll, choice))
    net.run_rounds(lambda: len(net[0].state.polls[poll].latest_anonymous()) == 4)
    net.settle()
    net[0].close_poll(poll)
    net.settle()
    for state in net.states():
        result = state.polls[poll].result
        assert result is not None
        assert result.counts == {"agree": 3, "concerns": 1, "stand_aside": 0, "block": 0}
        assert result.outcome == "consensus"
    assert len(set(net.digests())) == 1


def test_a_changed_vote_replaces_the_old_one() -> None:
    net = meeting()
    open_step(net, DECIDE)
    proposal = net[1].propose(DECIDE, "X")
    net.settle()
    poll = net[0].open_poll(proposal.hash).hash
    net.settle()
    net[3].submit_anonymous(AnonymousVote(poll, "block"))
    net.run_rounds(lambda: len(net[0].state.polls[poll].anon_votes) == 1)
    net[3].submit_anonymous(AnonymousVote(poll, "agree"))
    net.run_rounds(lambda: len(net[0].state.polls[poll].anon_votes) == 2)
    assert list(net[0].state.polls[poll].latest_anonymous().values()) == ["agree"]


def test_submit_refusals_are_plain_sentences() -> None:
    net = meeting()
    open_step(net, UNSAID)
    session = net[1]
    with pytest.raises(EntryRefused, match="not been opened") as refused:
        session.submit_anonymous(AnonymousAnswer(OPEN, "hello"))
    assert refused.value.code is Refusal.STEP_NOT_OPENED
    with pytest.raises(EntryRefused, match="no such poll") as refused:
        session.submit_anonymous(AnonymousVote(os.urandom(32), "agree"))
    assert refused.value.code is Refusal.NO_SUCH_POLL
    assert str(refused.value) == "This cannot be sent anonymously: no such poll."
    session.submit_anonymous(AnonymousAnswer(UNSAID, "x" * 1000))
    assert session.anonymous_capacity() == 1000
    small = FakeNetwork.meeting(2, agenda=ANON_AGENDA)
    small[0].open_step(UNSAID)
    with pytest.raises(LocalProtocolError, match="at least 3 members"):
        small[0].submit_anonymous(AnonymousAnswer(UNSAID, "hi"))


def test_a_request_checks_its_fields_when_it_is_made() -> None:
    with pytest.raises(LocalProtocolError, match="too long for one anonymous slot by 1 "):
        AnonymousAnswer(UNSAID, "x" * (TEXT_CAPACITY + 1))
    with pytest.raises(LocalProtocolError, match="by 2 characters"):
        AnonymousAnswer(UNSAID, "é" * (TEXT_CAPACITY // 2 + 1))  # two bytes each in UTF-8
    with pytest.raises(LocalProtocolError, match="Write something"):
        AnonymousAnswer(UNSAID, " \n ")
    with pytest.raises(LocalProtocolError, match="a step number and some text"):
        AnonymousAnswer(True, "yes")
    with pytest.raises(LocalProtocolError, match="a step, a value and maybe a ref"):
        AnonymousRating(FEEL, 1, b"not a hash")
    with pytest.raises(LocalProtocolError, match="a step, a value and maybe a ref"):
        AnonymousRating(FEEL, "1")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="the poll it is for"):
        AnonymousVote(b"short", "agree")
    with pytest.raises(LocalProtocolError, match="Choose one of: agree, concerns"):
        AnonymousVote(os.urandom(32), "maybe")
    assert AnonymousRating(FEEL, 2) == AnonymousRating(FEEL, 2, None)  # requests are values


@pytest.mark.parametrize(
    "request_",
    [
        AnonymousAnswer(UNSAID, "words"),
        AnonymousRating(FEEL, 1),
        AnonymousRating(BOTH_RATE, 0, bytes(32)),
        AnonymousVote(bytes(32), "stand_aside"),
        PauseRequest(),
        None,
    ],
    ids=lambda r: type(r).__name__,
)
def test_a_request_fills_a_slot_with_the_item_the_fold_reads(
    request_: AnonymousRequest | None,
) -> None:
    room = Room()
    start = room.start()
    raw = room.item(start, B, request_)
    if request_ is None:
        assert raw == b""  # a dummy: nothing to read
        return
    item = decode_item(raw)
    assert item is not None
    fields = wire_item(request_)
    assert {k: v for k, v in item.items() if k not in ("n", "sig")} == fields
    assert set(item) - set(fields) == ({"sig"} if "value" in fields or "poll" in fields else {"n"})


def test_capacity_fits_every_round_size() -> None:
    text = "x" * TEXT_CAPACITY
    item = pack({"k": "contrib", "n": bytes(8), "step": 63, "text": text})
    for n in range(shuffle.MIN_PARTICIPANTS, shuffle.MAX_PARTICIPANTS + 1):
        assert len(shuffle.pad(item, anon.slot_size(n))) == anon.slot_size(n)
    with pytest.raises(LocalProtocolError):
        shuffle.pad(item + b"x" * 200, anon.slot_size(shuffle.MIN_PARTICIPANTS))


def test_member_vanishing_mid_round_aborts_and_restarts_without_them() -> None:
    net = meeting(5)
    open_step(net, UNSAID)
    keys = sorted(net.sessions)
    gone = net.sessions[keys[2]]  # a hop in the middle of the cascade
    speaker = net.sessions[keys[3]]
    speaker.submit_anonymous(AnonymousAnswer(UNSAID, "said once"))
    # Run until a round with all five is under way, then cut the fifth off.
    net.history = []
    while not any(
        r.round.phase is shuffle.Phase.SHUFFLE and len(r.round.parts) == 5
        for r in net.sessions[keys[0]].anonymous.rounds.values()
    ):
        net.advance(100)
        net.tick_rounds()
        while net.in_flight and not any(
            r.round.phase is shuffle.Phase.SHUFFLE
            for r in net.sessions[keys[0]].anonymous.rounds.values()
        ):
            net.deliver()
        assert net.now_ms < START_MS + 60_000
    survivors = [s for s in net if s is not gone]
    net.partition([s.me for s in survivors], [gone.me])
    net.run_rounds(lambda: anonymous_texts(speaker) == ["said once"], max_ms=20_000)
    net.settle()
    for session in survivors:
        assert anonymous_texts(session) == ["said once"]
    (shown,) = speaker.state.anonymous_contributions
    assert (shown.members, shown.slots) == (5, 4)  # the suppression shows
    # The aborted round released nothing: no inner key went out before the abort.
    leader = net.sessions[keys[0]]  # it follows the cascade hop by hop
    (aborted,) = [r for r in leader.take_round_reports() if isinstance(r, shuffle.Aborted)]
    assert aborted.missing == (gone.me,)
    sent = [unpack(m.payload) for m in net.history]
    in_aborted = {m["t"] for m in sent if m.get("r") == aborted.rid}
    assert "anon.abort" in in_aborted
    assert not in_aborted & {"anon.reveal", "anon.ack", "anon.blame"}


def test_late_joiner_verifies_released_rounds() -> None:
    net = meeting()
    open_step(net, UNSAID)
    net[1].submit_anonymous(AnonymousAnswer(UNSAID, "before you came"))
    net.run_rounds(lambda: anonymous_texts(net[0]) == ["before you came"])
    late = net.join(E, "Eve", sponsor=net[0])
    net.settle()
    assert anonymous_texts(late) == ["before you came"]
    assert len(set(net.digests())) == 1


def test_if_the_first_participant_vanishes_the_next_one_appends() -> None:
    net = meeting()
    open_step(net, UNSAID)
    net[2].submit_anonymous(AnonymousAnswer(UNSAID, "still logged"))
    first = min(s.me for s in net)
    leader = net.sessions[first]

    reports: list[anon.Report] = []

    def released() -> bool:
        reports.extend(leader.take_round_reports())
        return any(isinstance(r, shuffle.Released) and r.items for r in reports)

    while not released():  # message by message, up to the leader's release
        net.advance(100)
        net.tick_rounds()
        while net.in_flight and not released():
            net.deliver()
    # The leader appended at once, but vanishes before its entry gets out.
    assert any(e.type == "anon.round" for e in leader.log.feed(first))
    others = [s.me for s in net if s.me != first]
    net.partition(others, [first])
    net.run_rounds(lambda: anonymous_texts(net.sessions[others[0]]) == ["still logged"])
    (entry,) = [e for e in net.sessions[others[0]].log.entries() if e.type == "anon.round"]
    assert entry.author == others[0]  # the next in key order
    net.heal()  # the leader's own entry arrives too, and changes nothing
    net.run_rounds(lambda: all(anonymous_texts(s) == ["still logged"] for s in net))
    net.settle()
    assert len(set(net.digests())) == 1
    assert all(anonymous_texts(s) == ["still logged"] for s in net)
    assert sum(1 for e in net[0].log.entries() if e.type == "anon.round") == 2


def keys_before_start(history: list[InFlight]) -> int:
    """Key announcements that reached a member before their round's start did."""
    started: set[tuple[bytes, bytes]] = set()  # (member, round)
    early = 0
    for delivered in history:
        message = unpack(delivered.payload)
        if message["t"] == "anon.start":
            rid = shuffle.RoundStart.from_message(delivered.src, message).rid
            started |= {(delivered.src, rid), (delivered.dst, rid)}  # the leader has it
        elif message["t"] == "anon.keys" and (delivered.dst, message["r"]) not in started:
            early += 1
    return early


def test_rounds_complete_when_messages_arrive_in_any_order() -> None:
    """Under random delivery a member's keys often overtake the leader's start
    (they come over another link): they wait for it, and the round completes."""
    net = meeting(5)
    net.history = []
    open_step(net, UNSAID)
    net[3].submit_anonymous(AnonymousAnswer(UNSAID, "shuffled mail"))
    rng = random.Random(7)
    net.run_rounds(lambda: all(anonymous_texts(s) == ["shuffled mail"] for s in net), rng=rng)
    net.settle()
    assert len(set(net.digests())) == 1
    assert net.rejections() == []
    assert keys_before_start(net.history) > 0  # the case this test is about did happen


def test_only_key_announcements_wait_for_an_unknown_round() -> None:
    net = meeting()
    channel = net[1].anonymous
    rid = os.urandom(32)
    stray = {"t": "anon.go", "mid": MID, "r": rid, "ok": False, "h": bytes(32), "g": bytes(64)}
    for _ in range(100):
        channel.receive(net[0].me, stray)
    assert channel.held_early == 0
    keys = {"t": "anon.keys", "mid": MID, "r": rid, "i": bytes(32), "o": bytes(32), "g": bytes(64)}
    for _ in range(100):
        channel.receive(net[0].me, keys)
    assert channel.held_early == shuffle.MAX_PARTICIPANTS


def test_largest_release_splits_into_entries_that_fit() -> None:
    n = shuffle.MAX_PARTICIPANTS
    parts = sorted(os.urandom(32) for _ in range(n))
    start = shuffle.RoundStart.new(MID, 1, parts)
    items = tuple(os.urandom(anon.slot_size(n) - 2) for _ in range(n))
    ids = tuple(sorted(shuffle.item_id(i) for i in items))
    released = shuffle.Released(start, items, ids, tuple(bytes(64) for _ in parts))
    entries = anon.release_entries(released)
    assert len(entries) > 1
    assert sorted(i for e in entries for i in e["items"]) == sorted(items)
    for seq, data in enumerate(entries, start=1):
        entry = encode_entry(
            A, mid=MID, seq=seq, prev=None if seq == 1 else bytes(32), lam=seq, ts=0,
            kind="anon.round", data=data,
        )  # fmt: skip
        assert entry.data["ids"] == list(ids)


def test_the_round_an_entry_releases_is_named_from_its_fields() -> None:
    """``round_id_of``: what drivers use to tell this round's entry from a
    late entry of another (the anonymity benchmark waits on it)."""
    room = Room()
    room.open(UNSAID)
    start = room.start()
    data = room.certified(start, [room.item(start, A, contrib(UNSAID, "kept"))])
    entry = room.release(data)
    assert round_id_of(MID, entry) == start.rid
    assert (
        round_id_of(MID, room.scribe.write(C, "anon.round", {**data, "nonce": b"x"}, keep=False))
        is None
    )


def test_a_removed_member_has_no_voice_in_a_round_two_others_run() -> None:
    """Issue 12.5: a removed member's anonymous block, in a round run with
    two current members, is not counted."""
    room = Room()
    room.open(UNSAID)
    room.scribe.write(A, "roster.remove", {"who": D.key, "upto": 99})
    start = room.start([A, B, D])
    data = room.certified(start, [room.item(start, D, contrib(UNSAID, "from outside"))])
    assert room.why(data) == Refused(
        Refusal.STRANGER_IN_ROUND, "a participant of the round is not a current member"
    )
    room.release(data)
    assert room.state.anonymous_contributions == []


def test_a_release_back_dated_before_its_poll_cannot_swallow_the_votes() -> None:
    """Issue 12.2: the appender of a released round gives its entry a clock
    from before the poll opened. The fold drops the votes there but no longer
    marks them applied, so an honest entry of the same round brings them in
    (and their senders, who wait to see them take effect, would send again)."""
    room = Room()
    poll = room.open_poll()
    opened = next(e for e in room.scribe.entries if e.hash == poll)
    start = room.start()
    block = room.item(start, B, vote(poll, "block"))
    data = room.certified(
        start,
        [room.item(start, A, vote(poll, "agree")), block, room.item(start, C, vote(poll, "agree"))],
    )
    early = room.scribe.write(D, "anon.round", data, lam=opened.lam - 1)
    assert early.order_key < opened.order_key
    record = room.state.anon_rounds[start.rid]
    assert shuffle.item_id(block) not in record.applied  # not swallowed
    assert room.state.polls[poll].latest_anonymous() == {}
    room.release(data, author=C)  # an honest participant's entry of the same round
    assert sorted(room.state.polls[poll].latest_anonymous().values()) == ["agree", "agree", "block"]


def test_items_typed_within_one_beat_appear_together_on_every_laptop() -> None:
    """Issue 12.5: three authors press Enter at different moments of one beat
    (an answer, a pause request, another answer); on each laptop all three
    appear at the same moment, after the beat, in one round. So the moment an
    item appears (on a screen or in the log) says nothing about who pressed
    Enter when."""
    net = meeting(5)
    open_step(net, UNSAID)
    beat = anon.next_beat(net.now_ms)
    typed = {
        1200: (1, AnonymousAnswer(UNSAID, "the deadline scares me")),
        4700: (2, PauseRequest()),
        9400: (3, AnonymousAnswer(UNSAID, "we never talk about money")),
    }
    seen: list[dict[str, int]] = [{} for _ in net]

    def look() -> None:
        for i, session in enumerate(net):
            state = session.state
            for item in state.anonymous_contributions:
                seen[i].setdefault(item.text, net.now_ms)
            if state.pause_requests:
                seen[i].setdefault("pause", net.now_ms)

    while any(len(s) < 3 for s in seen):
        assert net.now_ms < beat + 30_000, seen
        net.advance(100)
        offset = net.now_ms - (beat - anon.BEAT_MS)
        if offset in typed:
            who, request = typed[offset]
            net[who].submit_anonymous(request)
            assert net[who].anonymous.pending() == 1
        net.tick_rounds()
        net.deliver_all()
        if net.now_ms % 1000 == 0:
            net.tick_all()
            net.deliver_all()
        look()
    for times in seen:
        assert len(set(times.values())) == 1, times  # one moment for all three
        assert min(times.values()) >= beat + anon.LEAD_OFFSET_MS  # none before the beat's round
    rounds = {c.round for c in net[0].state.anonymous_contributions}
    assert rounds == {1}  # one batch, one round
    assert [e.type for e in net[0].log.entries()].count("anon.round") == 1
    assert all(s.anonymous.pending() == 0 for s in net)


def test_rounds_start_just_after_each_beat() -> None:
    assert anon.next_beat(20_000) == 30_000
    assert anon.next_beat(29_999) == 30_000
    assert anon.next_start(20_600, anon.ROUND_INTERVAL_MS) == 22_500
    assert anon.next_start(20_400, anon.ROUND_INTERVAL_MS) == 20_500
    assert anon.next_start(20_500, anon.IDLE_INTERVAL_MS) == 30_500
    # Both schedules put a round just after every beat.
    for interval in (anon.ROUND_INTERVAL_MS, anon.IDLE_INTERVAL_MS):
        assert anon.BEAT_MS % interval == 0


# --- votes with reasons (SPEC §6.5, §13.3) -------------------------------------------


def test_an_anonymous_block_carries_its_reason_signed_with_it() -> None:
    room = Room()
    poll = room.open_poll()
    start = room.start()
    items = [
        room.item(start, A, vote(poll, "block", "The owner reports us.")),
        room.item(start, B, vote(poll, "concerns", "The hall has steps.")),
        room.item(start, C, vote(poll, "agree")),
    ]
    room.release(room.certified(start, items))
    named, anonymous = room.state.polls[poll].latest_reasons()
    assert named == []
    assert sorted(anonymous) == [
        ("block", "The owner reports us."),
        ("concerns", "The hall has steps."),
    ]


def test_a_reason_swapped_after_signing_makes_the_vote_not_count() -> None:
    room = Room()
    poll = room.open_poll()
    start = room.start()
    honest = room.item(start, A, vote(poll, "block", "The owner reports us."))
    fields = unpack(honest)
    forged = pack({**fields, "reason": "I just dislike Bo."})  # same signature
    room.release(room.certified(start, [forged, room.item(start, B, vote(poll, "agree"))]))
    assert room.state.polls[poll].latest_reasons() == ([], [])
    assert sorted(room.state.polls[poll].latest_anonymous().values()) == ["agree"]


def test_anonymous_reasons_follow_the_named_rule() -> None:
    poll = bytes(32)
    with pytest.raises(LocalProtocolError, match="concern or a block"):
        vote(poll, "agree", "Because.")
    with pytest.raises(LocalProtocolError, match="one line"):
        vote(poll, "block", "x" * 201)
    with pytest.raises(LocalProtocolError, match="one line"):
        vote(poll, "block", "two\nlines")
    assert wire_item(vote(poll, "block", "Why")) == {
        "k": "vote",
        "poll": poll,
        "choice": "block",
        "reason": "Why",
    }
    assert "reason" not in wire_item(vote(poll, "block"))
    # A reason of 200 four-byte characters still fits the smallest slot.
    request = vote(poll, "block", "\U0001f600" * 200)
    room = Room()
    start = room.start()
    item = room.item(start, A, request)
    assert len(item) <= anon.slot_size(len(start.parts)) - 2
    assert decode_item(item) is not None


# --- anonymous polls on a "both" step (SPEC §6.5 poll.open) ------------------------------


def _way_poll(room: Room, **extra: Any) -> bytes:
    room.open(WAY)
    proposal = room.scribe.write(B, "proposal.add", {"step": WAY, "text": "We do Y"})
    return room.scribe.write(A, "poll.open", {"proposal": proposal.hash, **extra}).hash


def test_an_anonymous_poll_on_a_both_step_counts_anonymous_votes_only() -> None:
    room = Room()
    poll = _way_poll(room, anonymous=True)
    assert room.state.polls[poll].secret and room.state.anonymous_open()
    named = room.scribe.write(C, "vote.cast", {"poll": poll, "choice": "block"}, keep=False)
    refused = why_ignored(room.state, named)
    assert refused is not None and refused.code == Refusal.ANONYMOUS_ONLY
    start = room.start()
    items = [
        room.item(start, A, vote(poll, "agree")),
        room.item(start, B, vote(poll, "concerns", "Slowly.")),
        room.item(start, C, vote(poll, "agree")),
    ]
    room.release(room.certified(start, items))
    room.scribe.write(A, "poll.close", {"poll": poll, "cut": room.cut()})
    result = room.state.polls[poll].result
    assert result is not None and result.outcome == "consensus" and result.voters == 3
    assert result.counts == {"agree": 2, "concerns": 1, "stand_aside": 0, "block": 0}
    assert room.state.to_canonical()["polls"][0][-1] is True


def test_a_named_poll_on_a_both_step_drops_anonymous_votes_and_keeps_its_row() -> None:
    room = Room()
    poll = _way_poll(room)
    assert not room.state.polls[poll].secret
    start = room.start()
    room.release(room.certified(start, [room.item(start, A, vote(poll, "block"))]))
    assert room.state.polls[poll].anon_votes == []
    assert len(room.state.to_canonical()["polls"][0]) == 7  # the shape before anonymous polls


def test_anonymous_poll_refused_on_a_named_step_and_as_a_non_boolean() -> None:
    room = Room()
    room.open(NAMED)
    proposal = room.scribe.write(B, "proposal.add", {"step": NAMED, "text": "Ana does it"})
    for extra, code in (
        ({"anonymous": True}, Refusal.NAMED_ONLY),
        ({"anonymous": 1}, Refusal.BAD_FIELDS),
    ):
        entry = room.scribe.write(A, "poll.open", {"proposal": proposal.hash, **extra}, keep=False)
        refused = why_ignored(room.state, entry)
        assert refused is not None and refused.code == code
    opened = room.scribe.write(A, "poll.open", {"proposal": proposal.hash, "anonymous": False})
    assert not room.state.polls[opened.hash].secret


# --- anonymous answers are first-class: tags, refs, labels (issue 12.6) --------------------


def _two_anonymous_threats(room: Room) -> tuple[bytes, bytes]:
    """Two anonymous answers to UNSAID (an anonymous-only step), one tagged;
    their ids (item ids) in fold order."""
    room.open(UNSAID)
    start = room.start()
    items = [
        room.item(start, A, contrib(UNSAID, "The landlord knows.", tag="external")),
        room.item(start, B, contrib(UNSAID, "One of us talks over others.")),
    ]
    room.release(room.certified(start, items))
    ids = [c.id for c in room.state.anonymous_contributions]
    return ids[0], ids[1]


def test_anonymous_answers_carry_a_tag_and_are_numbered_in_fold_order() -> None:
    room = Room()
    first, second = _two_anonymous_threats(room)
    state = room.state
    tags = {c.text: c.tag for c in state.anonymous_contributions}
    assert tags == {"The landlord knows.": "external", "One of us talks over others.": None}
    assert item_labels(state) == {first: "1.1", second: "1.2"}
    # A row without a tag or ref keeps its old shape; one with a tag grows.
    rows = {row[1]: row for row in state.to_canonical()["anonymous"]}
    assert len(rows["One of us talks over others."]) == 5
    assert rows["The landlord knows."][5:] == ["external", None]


def test_answers_and_ratings_can_be_about_an_anonymous_answer() -> None:
    room = Room()
    first, second = _two_anonymous_threats(room)
    room.open(IMPACT)
    impact = room.scribe.write(
        C, "contrib.add", {"step": IMPACT, "text": "We lose the room.", "ref": first}
    )
    assert room.state.contribution_index[impact.hash].ref == first
    start = room.start()
    items = [
        room.item(start, A, contrib(IMPACT, "People leave.", ref=second)),
        room.item(start, B, contrib(IMPACT, "x", ref=bytes(32))),  # names nothing: dropped
    ]
    room.release(room.certified(start, items))
    about = {c.text: c.ref for c in room.state.anonymous_contributions if c.step == IMPACT}
    assert about == {"People leave.": second}
    labels = item_labels(room.state)
    assert sorted(
        labels[i]
        for i in (
            impact.hash,
            *[c.id for c in room.state.anonymous_contributions if c.step == IMPACT],
        )
    ) == ["9.1", "9.2"]
    # Rated anonymously by three members: the record's row and grid count it.
    room.open(LIKELY)
    start = room.start()
    items = [
        room.item(start, who, AnonymousRating(LIKELY, value, first))
        for who, value in ((A, 2), (B, 2), (C, 1))
    ]
    room.release(room.certified(start, items))
    rows = step_ratings(room.state, LIKELY)
    by_label = {row["about"]: row for row in rows}
    assert by_label["1.1"]["shown"] and by_label["1.1"]["middle"] == "yes"
    assert by_label["1.1"]["about_text"] == "The landlord knows."
    assert by_label["1.2"]["answers"] is None  # nobody rated it yet
    # The record numbers anonymous answers and says what they are about.
    record = render_json(room.state, safety_number="")
    impacts = {i["text"]: i for i in record["steps"][IMPACT]["items"]}
    assert impacts["People leave."]["about"] == "1.2"
    assert impacts["People leave."]["label"] == "9.2" and impacts["People leave."]["anonymous"]
    assert "by" not in impacts["People leave."]


def test_anonymous_tags_and_refs_follow_the_named_rules() -> None:
    room = Room()
    first, _ = _two_anonymous_threats(room)
    room.open(OPEN)  # a step that links to nothing
    state = room.state
    assert check_anonymous_item(state, wire_item(contrib(OPEN, "y", ref=first))) == Refused(
        Refusal.BAD_REF, "ref must point into this step or a step it links to"
    )
    long_tag = {"k": "contrib", "step": OPEN, "text": "y", "tag": "t" * 33}
    refused = check_anonymous_item(state, long_tag)
    assert refused is not None and refused.code == Refusal.BAD_TEXT
    with pytest.raises(LocalProtocolError, match="label is 1 to 32"):
        contrib(OPEN, "y", tag="")
    # The text and its label share the room for words, so any item fits a slot.
    fits = contrib(OPEN, "x" * (TEXT_CAPACITY - 4 * 32), tag="\U0001f600" * 32, ref=first)
    item = room.item(room.start(), A, fits)
    assert len(item) <= anon.slot_size(shuffle.MIN_PARTICIPANTS) - 2
    with pytest.raises(LocalProtocolError, match="too long"):
        contrib(OPEN, "x" * (TEXT_CAPACITY - 4 * 32 + 1), tag="\U0001f600" * 32)


# --- a release sorts after its round's start; withholdings in the log ----------------


def test_a_release_cannot_sort_before_its_round_started() -> None:
    """Issue 12.2: the round start carries the leader's log clock ``after``
    (in the rid); an ``anon.round`` entry at or below it is refused, so an
    appender cannot put a release before the poll its votes answer."""
    room = Room()
    poll = room.open_poll()
    opened = next(e for e in room.scribe.entries if e.hash == poll)
    start = shuffle.RoundStart.new(MID, room.state.epoch, [i.key for i in room.ids], opened.lam)
    data = room.certified(start, [room.item(start, B, vote(poll, "block"))])
    early = room.scribe.write(D, "anon.round", data, lam=opened.lam, keep=False)
    assert why_ignored(room.state, early) == Refused(
        Refusal.RELEASE_BEFORE_START, "the entry sorts before its round started"
    )
    # Claiming an older start changes the round id the certificate signed.
    older = dict(data, after=0)
    assert room.why(older) == Refused(
        Refusal.ROUND_NOT_CERTIFIED, "the round is not signed by every participant"
    )
    room.release(data)
    assert room.state.polls[poll].latest_anonymous() != {}


def naming(room: Room, start: shuffle.RoundStart, withheld: list[Identity]) -> dict[str, Any]:
    """An ``anon.blame`` for ``start``: every participant's GO over one transcript."""
    transcript = os.urandom(32)
    body = shuffle.statement("go", MID, start.rid, True, transcript)
    by_key = {i.key: i for i in IDENTITIES}
    return {
        "epoch": start.epoch,
        "nonce": start.nonce,
        "members": list(start.parts),
        "after": start.after,
        "h": transcript,
        "go": [by_key[k].sign(shuffle.ANON_CONTEXT, body) for k in start.parts],
        "withheld": sorted(i.key for i in withheld),
    }


def why_named(room: Room, data: dict[str, Any], author: Identity) -> Refused | None:
    entry = room.scribe.write(author, "anon.blame", data, keep=False)
    return why_ignored(room.state, entry)


def test_a_withholding_bars_only_when_most_of_the_others_name_it() -> None:
    """``anon.blame`` records who named whom; not receiving a key cannot be
    proved, so one member's word bars no one: a member is barred (never
    leads again) once most of the round's other participants named it."""
    room = Room(5)
    start = room.start()
    data = naming(room, start, [E])
    room.scribe.write(A, "anon.blame", data)
    assert room.state.anon_barred() == set()  # one of four others
    assert why_named(room, data, A) == Refused(
        Refusal.ALREADY_NAMED, "its author named that round's withholding already"
    )
    room.scribe.write(B, "anon.blame", data)
    assert room.state.anon_barred() == set()  # two of four: not most
    room.scribe.write(C, "anon.blame", data)
    assert room.state.anon_barred() == {E.key}
    # The liar's word against an honest member stays one word.
    room.scribe.write(E, "anon.blame", naming(room, start, [A]))
    assert room.state.anon_barred() == {E.key}
    assert "anon_namings" in room.state.to_canonical()


def test_a_naming_needs_a_unanimous_go_and_a_round_that_did_not_release() -> None:
    room = Room()
    room.open(UNSAID)
    start = room.start()
    data = naming(room, start, [D])
    forged = dict(data, go=[*data["go"][:-1], bytes(64)])
    assert why_named(room, forged, A) == Refused(
        Refusal.ROUND_NOT_CERTIFIED, "the round's GO is not signed by every participant"
    )
    assert why_named(room, dict(data, withheld=[A.key]), A) == Refused(
        Refusal.BAD_FIELDS, "anon.blame fields have the wrong shape"
    )  # naming oneself
    outsider = room.start(room.ids[:3])  # D is not in it
    assert why_named(room, naming(room, outsider, [B]), D) == Refused(
        Refusal.BAD_FIELDS, "anon.blame fields have the wrong shape"
    )
    room.release(room.certified(start, [room.item(start, B, contrib(UNSAID, "out"))]))
    assert why_named(room, data, A) == Refused(
        Refusal.ROUND_RELEASED, "the round was released, so every key came out"
    )
    assert "anon_namings" not in room.state.to_canonical()  # digests unchanged without one
