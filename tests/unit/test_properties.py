"""Properties of the whole core, on N in-memory Sessions (fakenet.py):

(a) any delivery order, duplication and loss: after anti-entropy settles,
    every Session has the same log and digest, equal to a reference that
    received the same entries one by one in fold order;
(b) partitions, then merge: the same;
(c) forged, replayed, truncated and out-of-roster frames change neither a
    Session's digest nor its log, and are rejected with the expected code.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

from fakenet import (
    IDENTITIES,
    MID,
    OUTSIDER,
    PROPOSAL,
    TEXT,
    FakeNetwork,
    InFlight,
    accepted,
    codes,
    entries_frame,
    forge_next,
    fork_frame,
    forks,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import LocalProtocolError
from relsec_p2p.core.events import InputRejected
from relsec_p2p.core.feed import ENTRY_CONTEXT, Entry
from relsec_p2p.core.session import Session
from relsec_p2p.core.state import CHOICES

N = 4
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- scripts of member actions and network events -----------------------------------------

# Repeats weight the draw: a script should reach polls and closes often.
ACTIONS = (
    ["open_step"] * 4
    + ["contribute"] * 3
    + ["reply", "rate", "rate", "propose", "propose"]
    + ["open_poll"] * 2
    + ["vote"] * 4
    + ["close_poll"] * 2
    + ["raise"] * 2
    + ["lower", "lower_other", "next", "next", "close_step", "handover", "absent"]
    + ["leave", "remove"]
)
FACILITATOR_ACTIONS = {
    "open_step",
    "close_step",
    "open_poll",
    "close_poll",
    "next",
    "lower_other",
    "handover",
    "remove",
}

act_op = st.tuples(
    st.just("act"),
    st.integers(0, N - 1),
    st.sampled_from(ACTIONS),
    st.integers(0, 31),
    st.integers(0, 31),
)
net_op = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 255)),
    st.tuples(st.just("dup"), st.integers(0, 255)),
    st.tuples(st.just("drop"), st.integers(0, 255)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("tick"), st.integers(0, N - 1)),
    st.tuples(st.just("clock"), st.integers(1, 90_000)),
)
script_op = st.one_of(act_op, act_op, net_op)
partition_op = st.one_of(
    st.tuples(st.just("split"), st.lists(st.integers(0, 2), min_size=N, max_size=N)),
    st.tuples(st.just("heal")),
)


def _pick(items: list[Any], index: int) -> Any:
    return items[index % len(items)] if items else None


def perform(net: FakeNetwork, who: int, action: str, x: int, y: int) -> bool:
    """Member ``who`` tries ``action``; the Session refuses what the fold
    would ignore (then nothing happens). Facilitator actions are tried by
    whoever ``who`` believes is the facilitator, so scripts reach them."""
    session = net[who]
    state = session.state
    if action in FACILITATOR_ACTIONS and state.facilitator in net.sessions:
        session = net.sessions[state.facilitator]
        state = session.state
    members = [m.key for m in state.active_members()]
    polls = sorted(state.polls)
    open_polls = [p for p in polls if state.polls[p].status == "open"]
    step = x % len(state.steps) if state.steps else 0
    try:
        match action:
            case "open_step":
                session.open_step(step)
            case "close_step":
                session.close_step(state.current if state.current is not None else step)
            case "contribute":
                session.contribute(state.current if state.current is not None else step, f"c{y}")
            case "reply":
                target = _pick(state.contributions, y)
                if target is None or state.current is None:
                    return False
                session.contribute(state.current, f"r{y}", ref=target.id)
            case "rate":
                session.rate(state.current if state.current is not None else step, y % 3)
            case "propose":
                session.propose(PROPOSAL, f"p{y}")
            case "open_poll":
                proposal = _pick(sorted(state.proposals), y)
                if proposal is None:
                    return False
                session.open_poll(proposal)
            case "vote":
                poll = _pick(open_polls, y)
                if poll is None:
                    return False
                session.vote(poll, CHOICES[x % len(CHOICES)])
            case "close_poll":
                poll = _pick(open_polls, y)
                if poll is None:
                    return False
                session.close_poll(poll)
            case "raise":
                session.raise_hand()
            case "lower":
                session.lower_hand()
            case "lower_other":
                session.lower_hand(_pick(members, y))
            case "next":
                session.next_speaker()
            case "handover":
                session.hand_over(_pick(members, y))
            case "absent":
                session.declare_absent()
            case "leave":
                session.leave()
            case "remove":
                session.remove(_pick(members, y))
            case _:
                raise AssertionError(action)
    except LocalProtocolError:
        return False
    return True


def run(net: FakeNetwork, script: list[tuple[Any, ...]], rng: random.Random) -> int:
    """Play ``script``; returns how many actions the Sessions accepted."""
    acted = 0
    for op in script:
        kind = op[0]
        if kind == "act":
            net.pump()
            acted += perform(net, *op[1:])
            net.pump()
        elif kind == "deliver" and net.in_flight:
            net.deliver(op[1] % len(net.in_flight))
        elif kind == "dup" and net.in_flight:
            net.duplicate(op[1] % len(net.in_flight))
        elif kind == "drop" and net.in_flight:
            net.drop(op[1] % len(net.in_flight))
        elif kind == "flush":
            net.deliver_all(rng=rng)
        elif kind == "tick":
            net[op[1]].tick()
            net.pump()
        elif kind == "clock":
            net.advance(op[1])
        elif kind == "split":
            groups: dict[int, list[bytes]] = {}
            for key, group in zip(net.sessions, op[1], strict=True):
                groups.setdefault(group, []).append(key)
            net.heal()
            net.partition(*groups.values())
        elif kind == "heal":
            net.heal()
    return acted


def meeting() -> FakeNetwork:
    """Four members, the proposal step open with a poll on one proposal:
    scripts start where votes, closes and new polls are a step away."""
    net = FakeNetwork.meeting(N)
    net[0].open_step(PROPOSAL)
    net.deliver_all()
    proposal = net[1].propose(PROPOSAL, "p")
    net.deliver_all()
    net[0].open_poll(proposal.hash)
    net.settle()
    return net


def reference_digest(net: FakeNetwork) -> bytes:
    """A fresh Session that gets every entry of the settled log, one frame
    each, in fold order (so it folds incrementally, with no refold)."""
    holder = net[0]
    observer = Session.join(IDENTITIES[7], MID, holder.creator, net.clock)
    for entry in sorted(holder.log.entries(), key=lambda e: e.order_key):
        events = observer.receive(holder.me, entries_frame(MID, entry.envelope))
        assert [e.seq for e in accepted(events)] == [entry.seq]
    return observer.digest()


def assert_converged(net: FakeNetwork) -> None:
    digests = net.digests()
    assert len(set(digests)) == 1
    summaries = net.summaries()
    assert all(s == summaries[0] for s in summaries)
    assert not any(s.log.forks for s in net)
    # Honest members only: nothing anyone sent was refused.
    assert net.rejections() == []
    assert reference_digest(net) == digests[0]


@PROPERTY
@given(script=st.lists(script_op, max_size=40), rng=st.randoms(use_true_random=False))
def test_any_delivery_order_duplication_and_loss_converge(
    script: list[tuple[Any, ...]], rng: random.Random
) -> None:
    net = meeting()
    run(net, script, rng)
    net.lossy_rounds(rng)
    net.settle(rng=rng)
    assert_converged(net)


@PROPERTY
@given(
    script=st.lists(st.one_of(script_op, partition_op), max_size=40),
    hold=st.booleans(),
    rng=st.randoms(use_true_random=False),
)
def test_partition_then_merge_converges(
    script: list[tuple[Any, ...]], hold: bool, rng: random.Random
) -> None:
    net = meeting()
    net.hold_partitioned = hold
    # Start split, so every example has at least one partition in it.
    net.partition([net[0].me, net[1].me])
    run(net, script, rng)
    net.lossy_rounds(rng)
    net.heal()
    net.settle(rng=rng)
    assert_converged(net)


def test_scripts_do_reach_the_interesting_rules() -> None:
    """Guards the two properties above against testing an empty meeting: a
    fixed sample of scripts accepts polls, closes and votes."""
    seen: set[str] = set()
    data_rng = random.Random(7)
    for _ in range(30):
        net = meeting()
        script = [
            (
                "act",
                data_rng.randrange(N),
                data_rng.choice(ACTIONS),
                data_rng.randrange(32),
                data_rng.randrange(32),
            )
            if data_rng.random() < 0.7
            else ("flush",)
            for _ in range(40)
        ]
        run(net, script, data_rng)
        net.settle()
        seen |= {e.type for e in net[0].log.entries() if e.seq > 3}
    assert {
        "poll.open",
        "vote.cast",
        "poll.close",
        "contrib.add",
        "hand.next",
        "roster.remove",
        "facil.absent",
        "facil.handover",
        "rating.set",
    } <= seen


# --- (c) forged frames ------------------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    envelopes: list[bytes]  # the whole log, in fold order
    fresh: Entry  # a valid next entry by a member that the target has not seen
    replays: list[InFlight]  # frames the target already received
    digest: bytes
    summary: list[list[Any]]


@functools.cache
def base() -> Base:
    net = FakeNetwork.meeting(N)
    net.history = []
    alice, bob, carol, dan = net
    alice.open_step(TEXT)
    net.deliver_all()
    bob.contribute(TEXT, "b")
    carol.contribute(TEXT, "c")
    dan.raise_hand()
    net.settle()
    alice.open_step(PROPOSAL)
    net.deliver_all()
    proposal = bob.propose(PROPOSAL, "p")
    net.deliver_all()
    poll = alice.open_poll(proposal.hash)
    net.deliver_all()
    carol.vote(poll.hash, "agree")
    net.settle()
    fresh = bob.vote(poll.hash, "block")
    bob.take_sends()  # never sent
    envelopes = [e.envelope for e in sorted(alice.log.entries(), key=lambda e: e.order_key)]
    replays = [m for m in net.history if m.dst == alice.me]
    return Base(envelopes, fresh, replays, alice.digest(), alice.log.summary())


def fresh_target() -> Session:
    """Member Alice's view of the base meeting, caught up from one frame."""
    b = base()
    target = Session.join(IDENTITIES[0], MID, IDENTITIES[0].key, lambda: 0)
    events = target.receive(IDENTITIES[1].key, entries_frame(MID, *b.envelopes))
    assert codes(events) == []
    assert target.digest() == b.digest and target.log.summary() == b.summary
    return target


def _flip(data: bytes, flips: set[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, bit in flips:
        out[position % len(out)] ^= 1 << bit
    return bytes(out)


# Every code an altered entry may earn, depending on where the change falls.
ENTRY_CODES = {
    "malformed",
    "non_canonical",
    "limit_exceeded",
    "unsupported_version",
    "wrong_meeting",
    "unknown_author",
    "bad_signature",
}
FRAME_CODES = ENTRY_CODES | {"bad_fork_proof"}


@st.composite
def forgeries(draw: st.DrawFn) -> tuple[str, bytes, set[str] | None]:
    """(what, payload, codes it may earn). ``None`` codes: a replay, which
    must earn no event at all."""
    b = base()
    fresh = b.fresh
    body, _ = unpack(fresh.envelope)
    flips = draw(
        st.sets(st.tuples(st.integers(0, 1 << 16), st.integers(0, 7)), min_size=1, max_size=4)
    )
    kind = draw(
        st.sampled_from(
            [
                "flip-entry",
                "flip-frame",
                "resign-outsider",
                "resign-member",
                "outsider",
                "wrong-mid-entry",
                "wrong-mid-frame",
                "truncated-frame",
                "truncated-entry",
                "random",
                "replay",
                "replay-forged-signature",
                "forged-fork",
            ]
        )
    )
    if kind == "flip-entry":
        # Distinct flips never cancel out, so the entry really changed.
        return kind, entries_frame(MID, _flip(fresh.envelope, flips)), ENTRY_CODES
    if kind == "flip-frame":
        return kind, _flip(entries_frame(MID, fresh.envelope), flips), FRAME_CODES
    if kind == "resign-outsider":
        forged = pack([body, OUTSIDER.sign(ENTRY_CONTEXT, body)])
        return kind, entries_frame(MID, forged), {"bad_signature"}
    if kind == "resign-member":
        forged = pack([body, IDENTITIES[2].sign(ENTRY_CONTEXT, body)])
        return kind, entries_frame(MID, forged), {"bad_signature"}
    if kind == "outsider":
        # Shaped like a real member's next entry, signed by someone not in the room.
        fields = unpack(body)
        fields.update(au=OUTSIDER.key, seq=1, prev=None)
        raw = pack(fields)
        return (
            kind,
            entries_frame(MID, pack([raw, OUTSIDER.sign(ENTRY_CONTEXT, raw)])),
            None,  # held until the fold adds the key (SPEC §3.4): no event, no change
        )
    if kind == "wrong-mid-entry":
        fields = unpack(body)
        fields["mid"] = bytes(16)
        raw = pack(fields)
        signed = pack([raw, IDENTITIES[1].sign(ENTRY_CONTEXT, raw)])
        return kind, entries_frame(MID, signed), {"wrong_meeting"}
    if kind == "wrong-mid-frame":
        return kind, entries_frame(bytes(16), fresh.envelope), {"wrong_meeting"}
    if kind == "truncated-frame":
        frame = entries_frame(MID, fresh.envelope)
        cut = draw(st.integers(0, len(frame) - 1))
        return kind, frame[:cut], {"malformed"}
    if kind == "truncated-entry":
        cut = draw(st.integers(0, len(fresh.envelope) - 1))
        return kind, entries_frame(MID, fresh.envelope[:cut]), {"malformed"}
    if kind == "random":
        noise = draw(st.binary(min_size=0, max_size=200))
        return kind, noise, {"malformed", "non_canonical", "limit_exceeded", "wrong_meeting"}
    if kind == "replay":
        return kind, draw(st.sampled_from(b.replays)).payload, None
    held = unpack(draw(st.sampled_from(b.envelopes)))
    forged_held = pack([held[0], bytes(64)])
    if kind == "replay-forged-signature":
        return kind, entries_frame(MID, forged_held), {"bad_signature"}
    assert kind == "forged-fork"
    # A real entry of the log against a forged one at the same place.
    fields = unpack(held[0])
    fields["ts"] += 1
    return (
        kind,
        fork_frame(MID, pack([held[0], held[1]]), pack([pack(fields), held[1]])),
        {"bad_signature"},
    )


@PROPERTY
@given(forgery=forgeries(), peer=st.sampled_from([k.key for k in IDENTITIES[:N]] + [OUTSIDER.key]))
def test_forged_frames_change_nothing(
    forgery: tuple[str, bytes, set[str] | None], peer: bytes
) -> None:
    kind, payload, allowed = forgery
    b = base()
    target = fresh_target()
    events = target.receive(peer, payload)
    assert target.digest() == b.digest, kind
    assert target.log.summary() == b.summary, kind
    assert not target.log.forks and not forks(events) and not accepted(events), kind
    rejected = [e for e in events if isinstance(e, InputRejected)]
    if allowed is None:
        assert events == [], kind
    else:
        assert len(rejected) == 1 and len(events) == 1, (kind, events)
        assert rejected[0].code in allowed, (kind, rejected[0].code)
        assert rejected[0].peer == peer
    # And the genuine entry the forgeries were made from is still welcome.
    again = target.receive(peer, entries_frame(MID, b.fresh.envelope))
    assert [e.hash for e in accepted(again)] == [b.fresh.hash]


def test_the_unforged_fresh_entry_is_accepted_by_the_base() -> None:
    # The control: the forgeries start from an entry that would change the state.
    b = base()
    target = fresh_target()
    target.receive(IDENTITIES[1].key, entries_frame(MID, b.fresh.envelope))
    assert target.digest() != b.digest
    assert len(b.replays) > 5


def test_forged_frames_leave_every_session_of_a_network_unchanged() -> None:
    """The same forgeries, injected into a live network and gossiped about
    by anti-entropy, leave all digests where they were."""
    net = FakeNetwork.meeting(N)
    net[0].open_step(TEXT)
    net.settle()
    digests = net.digests()
    rng = random.Random(11)
    fresh = forge_next(net[1], "contrib.add", {"step": TEXT, "text": "x"})
    body, _ = unpack(fresh.envelope)
    payloads = [
        entries_frame(MID, _flip(fresh.envelope, {(rng.randrange(400), rng.randrange(8))}))
        for _ in range(30)
    ]
    payloads += [entries_frame(MID, pack([body, OUTSIDER.sign(ENTRY_CONTEXT, body)]))]
    payloads += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))) for _ in range(30)]
    for payload in payloads:
        net.post(OUTSIDER.key, net[rng.randrange(N)].me, payload)
    net.deliver_all(rng=rng)
    net.settle(rng=rng)
    assert net.digests() == digests
    assert len(net.rejections()) == len(payloads)
