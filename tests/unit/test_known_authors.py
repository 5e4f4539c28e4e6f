"""Known authors and the hold (SPEC §3.3, §3.4; Appendix B item 6; issue 13.8).

Known authors are the keys the fold has added, so they do not depend on the
order entries arrive in, and entries of keys not known yet are held (their
signature checked) instead of refused and fetched again.
"""

from __future__ import annotations

import random

import pytest
from fakenet import (
    IDENTITIES,
    MID,
    OUTSIDER,
    FakeNetwork,
    Scribe,
    accepted,
    codes,
    entries_frame,
)

from relsec_p2p.core import feed as feed_module
from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import HoldFull
from relsec_p2p.core.events import Event
from relsec_p2p.core.feed import ENTRY_CONTEXT, Entry, Log
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.refusals import Refusal
from relsec_p2p.core.rules import why_ignored
from relsec_p2p.core.session import Session
from relsec_p2p.core.state import MAX_MEMBERS_EVER, Member

ALICE, MALLORY, DANA = IDENTITIES[0], IDENTITIES[1], IDENTITIES[2]
JUNK_ADDS = MAX_MEMBERS_EVER + 100


def _junk_log() -> tuple[Scribe, list[Entry], list[Entry], list[Entry], list[Identity]]:
    """Mallory, a member, names more junk keys than the old known-author bound
    in roster.add entries the fold ignores (no valid ring point); five of the
    keys are real and sign an entry each. Then Alice adds Dana, who writes."""
    scribe = Scribe(ALICE)
    scribe.create()
    scribe.add(ALICE, MALLORY, "Mal")
    setup = list(scribe.entries)
    rng = random.Random(11)
    signers = [Identity.from_seed(bytes([0x40 + i]) * 32) for i in range(5)]
    junk = []
    for i in range(JUNK_ADDS):
        key = signers[i].key if i < len(signers) else rng.randbytes(32)
        junk.append(
            scribe.write(MALLORY, "roster.add", {"key": key, "ring": bytes(32), "name": "J"})
        )
    # Never accepted by an honest log (their keys are never added), so no
    # honest entry names them as a dependency: written outside the room.
    junk += [scribe.write(s, "hand.raise", {}, keep=False) for s in signers]
    honest = [scribe.add(ALICE, DANA, "Dana")]
    honest += [scribe.write(DANA, "hand.raise", {}), scribe.write(DANA, "hand.lower", {})]
    return scribe, setup, junk, honest, signers


def _deliver(laptop: Session, order: list[Entry], batch: int) -> list[Event]:
    events: list[Event] = []
    for i in range(0, len(order), batch):
        chunk = order[i : i + batch]
        events += laptop.receive(ALICE.key, entries_frame(MID, *(e.envelope for e in chunk)))
    return events


def test_junk_keys_in_any_order_lock_no_later_member_out() -> None:
    scribe, setup, junk, honest, signers = _junk_log()
    # A random interleaving of the feeds, each in its own order (as sync
    # sends them; the gap buffer, §3.4, is another matter).
    rng = random.Random(5)
    queues: dict[bytes, list[Entry]] = {}
    for entry in setup + junk + honest:
        queues.setdefault(entry.author, []).append(entry)
    shuffled = []
    while queues:
        author = rng.choice(sorted(queues))
        shuffled.append(queues[author].pop(0))
        if not queues[author]:
            del queues[author]
    orders = {
        "junk first": setup + junk + honest,
        "honest member first": honest[1:] + setup + honest[:1] + junk,
        "shuffled": shuffled,
    }
    laptops = {}
    for name, order in orders.items():
        laptop = Session.join(IDENTITIES[5], MID, ALICE.key, clock=lambda: 0)
        events = _deliver(laptop, order, 64)
        assert codes(events) == [], name  # nothing refused, nothing fetched again
        laptops[name] = laptop
    expected = scribe.state()
    honest_keys = {ALICE.key, MALLORY.key, DANA.key}
    for name, laptop in laptops.items():
        # Every entry of a member is in, and no junk key's entry.
        assert {au for au, _, _ in laptop.log.summary()} == honest_keys, name
        assert len(laptop.log) == len(setup) + JUNK_ADDS + len(honest), name
        assert laptop.log.held_count == len(signers), name
        assert laptop.digest() == expected.digest(), name
        assert DANA.key in laptop.state.members, name
    summaries = [laptop.log.summary() for laptop in laptops.values()]
    assert summaries[0] == summaries[1] == summaries[2]


def test_the_fold_bounds_members_ever_added() -> None:
    scribe = Scribe(ALICE)
    scribe.create()
    state = scribe.state()
    for i in range(MAX_MEMBERS_EVER - 1):
        key = i.to_bytes(32, "big")
        state.members[key] = Member(key, key, "x", i + 1, active=False, gone="left", upto=0)
    add = scribe.add(ALICE, DANA, "Dana")
    refused = why_ignored(state, add)
    assert refused is not None and refused.code == Refusal.ROSTER_FULL
    del state.members[key]
    assert why_ignored(state, add) is None


def _dana_entries(count: int) -> list[Entry]:
    scribe = Scribe(ALICE)
    scribe.create()
    return [
        scribe.write(DANA, "hand.raise" if i % 2 == 0 else "hand.lower", {}) for i in range(count)
    ]


def test_a_held_entry_must_carry_its_claimed_keys_signature() -> None:
    log = Log(MID, lambda key: key == ALICE.key)
    entry = _dana_entries(1)[0]
    body, _ = unpack(entry.envelope)
    forged = feed_module.decode_entry(pack([body, OUTSIDER.sign(ENTRY_CONTEXT, body)]))
    with pytest.raises(feed_module.BadSignature):
        log.hold(forged)
    assert log.held_count == 0
    assert log.hold(entry).held == entry and log.hold(entry).duplicate


def test_the_hold_refuses_past_its_bound_per_key_and_evicts_the_oldest_when_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "MAX_HELD_PER_AUTHOR", 3)
    monkeypatch.setattr(feed_module, "MAX_HELD_TOTAL", 4)
    log = Log(MID, lambda key: key == ALICE.key)
    dana = _dana_entries(4)
    for entry in dana[:3]:
        log.hold(entry)
    with pytest.raises(HoldFull):
        log.hold(dana[3])
    assert log.held_count == 3  # the refusal changed nothing
    outsider = Scribe(OUTSIDER)
    first, second = (
        outsider.write(OUTSIDER, "hand.raise", {}),
        outsider.write(OUTSIDER, "hand.lower", {}),
    )
    assert log.hold(first).evicted == []
    assert log.hold(second).evicted == [dana[0]]  # the oldest goes
    assert log.held_count == 4


def test_evicted_entries_are_fetched_again_and_nothing_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "MAX_HELD_TOTAL", 3)
    net = FakeNetwork.meeting(2)
    alice, bob = net
    for _ in range(3):
        bob.raise_hand()
        bob.lower_hand()
    net.settle()
    late = Session.join(IDENTITIES[6], MID, alice.creator, net.clock)
    # Bob's six entries arrive before the roster.add that introduces him.
    frame = entries_frame(MID, *(e.envelope for e in bob.log.feed(bob.me)))
    events = late.receive(alice.me, frame)
    assert codes(events) == ["hold_full"] * 3 and late.log.held_count == 3
    events = late.receive(
        alice.me, entries_frame(MID, *(e.envelope for e in alice.log.feed(alice.me)))
    )
    # The three held entries went in; the evicted ones are not refused again.
    assert len(accepted(events)) == len(alice.log.feed(alice.me))
    assert codes(events) == [] and late.log.held_count == 0
    net.add_session(late)
    net.settle()
    assert late.log.summary() == alice.log.summary() and late.digest() == alice.digest()
