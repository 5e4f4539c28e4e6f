"""The duplicate-link rule (SPEC §11.9) as a pure function, ``core.link.keep_link``.

Two laptops can end up with several links between them: both dialled at once,
or one dialled twice (a joiner that found the sponsor at two addresses). Both
ends must keep the same link and close the others, each deciding alone,
whatever order the links completed in at either end. Here the rule is played
on fake links, in every order, and with the links' closes racing across.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest

from relsec_p2p.core.errors import LocalProtocolError
from relsec_p2p.core.link import keep_link, link_rank

LOW = bytes([0x10]) * 32
HIGH = bytes([0x20]) * 32


@dataclass(frozen=True)
class Seen:
    """One link as one end holds it."""

    name: str
    peer: bytes
    initiator: bool
    link_id: bytes


@dataclass(frozen=True)
class Wire:
    """One link as the world sees it: who dialled it and its id (the
    transcript hash, which both ends compute)."""

    name: str
    dialler: bytes
    link_id: bytes

    def at(self, me: bytes) -> Seen:
        peer = HIGH if me == LOW else LOW
        return Seen(self.name, peer, self.dialler == me, self.link_id)


def link(name: str, dialler: bytes, first_byte: int) -> Wire:
    return Wire(name, dialler, bytes([first_byte]) + bytes(31))


def settle(me: bytes, arrival: list[Wire]) -> tuple[str, list[str]]:
    """One end taking links as they complete: it holds the first and, at each
    later one, keeps ``keep_link`` of the two and closes the other."""
    held: Seen | None = None
    closed: list[str] = []
    for wire in arrival:
        new = wire.at(me)
        if held is None:
            held = new
            continue
        winner = keep_link(me, [held, new])
        closed.append(new.name if winner is held else held.name)
        held = winner
    assert held is not None
    return held.name, closed


def test_one_link_each_way_both_orders_keep_the_one_the_lower_key_dialled() -> None:
    # The link the higher key dialled has the smaller id, and still loses.
    by_low, by_high = link("by_low", LOW, 0x90), link("by_high", HIGH, 0x01)
    for low_order, high_order in itertools.product(
        itertools.permutations([by_low, by_high]), repeat=2
    ):
        kept_low, closed_low = settle(LOW, list(low_order))
        kept_high, closed_high = settle(HIGH, list(high_order))
        assert kept_low == kept_high == "by_low"
        assert closed_low == closed_high == ["by_high"]


@pytest.mark.parametrize("dialler", [LOW, HIGH], ids=["dialled-by-lower", "dialled-by-higher"])
def test_two_links_from_one_laptop_in_opposite_orders_keep_the_same(dialler: bytes) -> None:
    """The live case: a joiner dialled its sponsor twice. The old rule (keep the
    link the lower key initiated) could not tell these two apart, so the ends
    could each close the other's choice and be left with no link at all."""
    first, second = link("first", dialler, 0x30), link("second", dialler, 0x05)
    for low_order, high_order in itertools.product(
        itertools.permutations([first, second]), repeat=2
    ):
        kept_low, _ = settle(LOW, list(low_order))
        kept_high, _ = settle(HIGH, list(high_order))
        assert kept_low == kept_high == "second"  # the smaller link id


def test_every_order_at_either_end_keeps_the_same_link() -> None:
    rng = random.Random(11)
    for _ in range(200):
        count = rng.randint(2, 4)
        wires = [
            link(f"l{i}", rng.choice([LOW, HIGH]), first)
            for i, first in enumerate(rng.sample(range(256), count))
        ]
        orders = list(itertools.permutations(wires))
        kept = {settle(me, list(order))[0] for me in (LOW, HIGH) for order in orders}
        assert len(kept) == 1
        # Seen from either end, a link has the same rank.
        for wire in wires:
            assert link_rank(LOW, wire.at(LOW)) == link_rank(HIGH, wire.at(HIGH))


class End:
    """One laptop in the race: links complete here in its own order, and the
    other end's closes arrive as hang-ups."""

    def __init__(self, me: bytes, arrival: list[Wire]) -> None:
        self.me = me
        self.todo = arrival
        self.held: Seen | None = None
        self.dead: set[str] = set()  # closed here, or hung up on by the peer
        self.closed: set[str] = set()  # what this end decided to close

    def complete(self, wire: Wire) -> str | None:
        """A link's handshake finished here; returns the link this end closes."""
        if wire.name in self.dead:
            return None  # the peer hung up before its handshake finished here
        new = wire.at(self.me)
        if self.held is None:
            self.held = new
            return None
        winner = keep_link(self.me, [self.held, new])
        loser = new.name if winner is self.held else self.held.name
        self.held = winner
        self.closed.add(loser)
        self.dead.add(loser)
        return loser

    def hung_up(self, name: str) -> None:
        self.dead.add(name)
        if self.held is not None and self.held.name == name:
            self.held = None


def test_closes_racing_across_never_leave_the_ends_apart() -> None:
    """Both ends take completions and the other end's closes in random
    interleavings (a link closed at one end reaches the other as a hang-up,
    possibly before that end has finished the link's handshake). Whatever the
    timing, both end up holding the same open link: an end only closes a
    link the other end considers a loser too."""
    rng = random.Random(7)
    for _ in range(500):
        count = rng.randint(2, 4)
        wires = [
            link(f"l{i}", rng.choice([LOW, HIGH]), first)
            for i, first in enumerate(rng.sample(range(256), count))
        ]
        ends = {LOW: End(LOW, rng.sample(wires, count)), HIGH: End(HIGH, rng.sample(wires, count))}
        hang_ups: list[tuple[bytes, str]] = []  # (the end that will hear of it, link)
        while hang_ups or any(end.todo for end in ends.values()):
            busy = [end for end in ends.values() if end.todo]
            if hang_ups and (not busy or rng.random() < 0.5):
                to, name = hang_ups.pop(rng.randrange(len(hang_ups)))
                ends[to].hung_up(name)
                continue
            end = rng.choice(busy)
            closed = end.complete(end.todo.pop(0))
            if closed is not None:
                hang_ups.append((HIGH if end.me == LOW else LOW, closed))
        best = min(wires, key=lambda wire: link_rank(LOW, wire.at(LOW))).name
        low, high = ends[LOW], ends[HIGH]
        assert low.held is not None and high.held is not None
        assert low.held.name == high.held.name == best
        assert best not in low.closed | high.closed


def test_keep_link_compares_links_to_one_peer_only() -> None:
    with pytest.raises(LocalProtocolError):
        keep_link(LOW, [])
    one = Seen("one", HIGH, True, bytes(32))
    other = Seen("other", bytes([0x30]) * 32, True, bytes(32))
    with pytest.raises(LocalProtocolError):
        keep_link(LOW, [one, other])
    assert keep_link(LOW, [one]) is one
