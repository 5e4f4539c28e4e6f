"""Fixes from the protocol review, each pinned by a test that fails without it."""

from __future__ import annotations

from fakenet import IDENTITIES, FakeNetwork, entries_frame, forge_next

from relsec_p2p.core.events import InputRejected
from relsec_p2p.core.feed import MAX_LAMPORT
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.link import FloodGuard


def test_a_clock_at_the_limit_is_refused_everywhere_and_honest_clocks_stay_small() -> None:
    """Issue 11, App. B item 5: clocks are computed (SPEC §3.3 step 5.4), so
    an entry at 2^53 - 1 is refused with bad_clock on every laptop, changes
    nothing, and honest clocks stay the length of the causal chain."""
    net = FakeNetwork.meeting(3)
    mallory = net[2]
    before = net.digests()
    far = forge_next(mallory, "hand.raise", {}, lam=MAX_LAMPORT)
    for honest in (net[0], net[1]):
        events = net.send_now(mallory.me, honest.me, entries_frame(mallory.mid, far.envelope))
        assert [e.error.code for e in events if isinstance(e, InputRejected)] == ["bad_clock"]
        assert honest.log.head(mallory.me) != far
    assert net.digests()[:2] == before[:2]
    net[0].open_step(0)
    net.settle()
    for i in range(50):
        entry = net[i % 2].contribute(0, f"still writing {i}")
        net.settle()
        assert entry.lam < 100  # one step per entry of the causal chain
    assert len({s.digest() for s in net}) == 1
    texts = [c.text for c in net[0].state.contributions]
    assert texts == [f"still writing {i}" for i in range(50)]  # causal order kept


def test_join_code_words_must_come_from_the_list() -> None:
    net = FakeNetwork.meeting(2)
    host, other = net[0], net[1]
    host.set_join_code(42, ("harbor", "velvet", "orbit"))
    net.settle()
    for words in (["zzzz", "harbor", "velvet"], ["harbor", "harbor", "velvet"]):
        entry = forge_next(host, "join.code", {"np": 42, "words": words})
        host.receive(host.me, entries_frame(host.mid, entry.envelope))  # held, to chain on
        net.send_now(host.me, other.me, entries_frame(host.mid, entry.envelope))
        assert other.log.head(host.me) == entry  # stored: it is validly signed ...
        assert other.state.join_code == (42, ("harbor", "velvet", "orbit"))  # ... ignored
        assert entry.hash in {h for h, _ in other.state.ignored}


def test_names_that_could_disguise_themselves_are_ignored_by_the_fold() -> None:
    net = FakeNetwork.meeting(2)
    host = net[0]
    for name in ("Ana\u202eevil", "Bo\u200b", "line\nbreak", "\x1b[31mred"):
        newcomer = Identity.generate()
        entry = forge_next(
            host, "roster.add", {"key": newcomer.key, "ring": newcomer.ring_key, "name": name}
        )
        net.send_now(host.me, net[1].me, entries_frame(host.mid, entry.envelope))
        assert not net[1].state.is_member(newcomer.key), repr(name)
        host.receive(host.me, entries_frame(host.mid, entry.envelope))  # held, to chain on
    plain = IDENTITIES[5] if len(IDENTITIES) > 5 else Identity.generate()
    host.add_member(plain.key, plain.ring_key, "Zoë 🌱")  # ordinary names still work
    net.settle()
    assert net[1].state.is_member(plain.key)


def test_flood_guard_counts_only_what_it_is_told() -> None:
    guard = FloodGuard(rate=12 / 60, burst=2)
    assert guard.available(0.0) and guard.available(0.0)  # peeking spends nothing
    assert guard.allow(0.0) and guard.allow(0.0)
    assert not guard.available(0.0)
    assert guard.available(5.0)  # one back after 5 s at 12 a minute
