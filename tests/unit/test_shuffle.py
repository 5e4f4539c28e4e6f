"""The sans-IO shuffle round (core/shuffle_round.py) on in-memory members.

Adversaries are modified clients: subclasses of ``Round`` that override one
of its public honest steps (how to shuffle, what to submit, what to say at
GO) or hold back some of what it sends. Every
adversarial test checks the same two things: nothing is released (no inner
key leaves any laptop) and every honest member names the culprit.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from typing import Any

import pytest
from fakenet import IDENTITIES, MID
from nacl import bindings
from roundnet import (
    SLOT,
    Liar,
    RoundNet,
    cheating_shuffler,
    garbage_layer,
    record_round_keys,
    withholding,
)

from relsec_p2p.core.codec import pack
from relsec_p2p.core.errors import MalformedFrame
from relsec_p2p.core.onion import onion_size, open_layer, open_with_shares
from relsec_p2p.core.shuffle import (
    ANON_CONTEXT,
    MAX_PARTICIPANTS,
    Aborted,
    BadRoundMessage,
    Blamed,
    Phase,
    Released,
    RoundStart,
    pad,
    release_digest,
    statement,
    unpad,
    verify_statement,
)
from relsec_p2p.core.shuffle_round import Round


def assert_nothing_released(net: RoundNet, *bad: int) -> None:
    """No honest member let its inner key go, and nobody opened anything."""
    cheats = {net.keys[k] for k in bad}
    assert [src for src, _ in net.kinds_sent("anon.reveal") if src not in cheats] == []
    assert not any(isinstance(r.outcome, Released) for r in net.rounds.values())
    assert all(r.opened is None for r in net.rounds.values())


def assert_one_key_each(net: RoundNet) -> None:
    """No member sent both its inner key and its outer key (they would link)."""
    inner = {src for src, m in net.kinds_sent("anon.reveal")}
    outer = {src for src, m in net.kinds_sent("anon.blame") if m["s"] is not None}
    assert not inner & outer


# --- honest rounds ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 5, 8])
def test_honest_round_releases_the_same_items_everywhere(n: int) -> None:
    payloads = [f"said by {k}".encode() if k % 2 else b"" for k in range(n)]
    net = RoundNet(n, payloads=payloads)
    net.run()
    outcomes = [r.outcome for r in net.rounds.values()]
    assert all(isinstance(o, Released) for o in outcomes)
    assert len({(o.items, o.certificate) for o in outcomes if isinstance(o, Released)}) == 1
    first = outcomes[0]
    assert isinstance(first, Released)
    assert sorted(first.items) == sorted(p for p in payloads if p)  # dummies dropped
    assert first.undecodable == 0
    # The certificate: every participant signed the release of exactly these ids.
    body = statement("release", MID, net.start.rid, release_digest(first.ids))
    for key, signature in zip(net.keys, first.certificate, strict=True):
        assert verify_statement(key, body, signature)
    assert net.errors == []
    assert_one_key_each(net)


def test_round_with_only_dummies_releases_nothing_but_succeeds() -> None:
    net = RoundNet(3, payloads=[b"", b"", b""])
    net.run()
    assert all(
        isinstance(r.outcome, Released) and r.outcome.items == () for r in net.rounds.values()
    )


def test_release_holds_no_trace_of_order_or_sender() -> None:
    net = RoundNet(4)
    net.run()
    outcome = net[0].outcome
    assert isinstance(outcome, Released)
    assert list(outcome.ids) == sorted(outcome.ids)  # sorted by id, not by sender


def test_outer_secrets_never_leave_a_laptop_in_a_released_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = record_round_keys(monkeypatch)
    net = RoundNet(4)
    net.run()
    secrets = {r.me: made[r.keys[r.me][1]] for r in net.rounds.values()}
    assert len(set(secrets.values())) == 4
    wire = b"".join(pack(m) for _, _, m in net.sent)
    for secret in secrets.values():
        assert secret not in wire


# --- adversarial shufflers -----------------------------------------------------------------


@pytest.mark.parametrize("action", ["drop", "duplicate", "replace"])
@pytest.mark.parametrize("position", [0, 2, 4])
def test_cheating_shuffler_is_caught_and_nothing_is_released(action: str, position: int) -> None:
    net = RoundNet(5, adversaries={position: cheating_shuffler(action)})
    net.run()
    net.expire()
    assert_nothing_released(net)
    assert_one_key_each(net)
    cheat = net.keys[position]
    for honest in net.honest(position):
        assert isinstance(honest.outcome, Blamed), honest.outcome
        assert set(honest.outcome.culprits) == {cheat}, honest.outcome
        assert "dropped, replaced or duplicated" in honest.outcome.culprits[cheat]


def test_false_no_go_is_named() -> None:
    net = RoundNet(4, adversaries={1: Liar})
    net.run()
    net.expire()
    assert_nothing_released(net)
    for honest in net.honest(1):
        assert isinstance(honest.outcome, Blamed)
        assert honest.outcome.culprits == {net.keys[1]: "said NO-GO with no cause"}


@pytest.mark.parametrize("layer", [0, 1, 3])
def test_garbage_layer_is_traced_to_its_signer(layer: int) -> None:
    net = RoundNet(4, adversaries={2: garbage_layer(layer)})
    net.run()
    net.expire()
    assert_nothing_released(net)
    for honest in net.honest(2):
        assert isinstance(honest.outcome, Blamed)
        assert honest.outcome.culprits == {net.keys[2]: "submitted a slot that does not decrypt"}


def test_equivocating_key_announcement_is_named() -> None:
    """Different per-round keys to different members (to tell their slots
    apart later): the transcripts differ, nobody releases, the two signed
    announcements convict."""

    class TwoFaced(Round):
        def begin(self) -> list[tuple[bytes, dict[str, Any]]]:
            sends = super().begin()
            other_inner = bindings.crypto_box_keypair()[0]
            outer = self.keys[self.me][1]  # the one it announced to the others
            signature = self.sign("keys", other_inner, outer)
            victim = next(p for p in self.parts if p != self.me)
            forged = self.message("anon.keys", i=other_inner, o=outer, g=signature)
            return [(p, forged if p == victim else m) for p, m in sends]

    net = RoundNet(4, adversaries={0: TwoFaced})
    net.run()
    net.expire()
    assert_nothing_released(net)
    for honest in net.honest(0):
        assert isinstance(honest.outcome, Blamed)
        assert net.keys[0] in honest.outcome.culprits
        assert all(key == net.keys[0] for key in honest.outcome.culprits)


def test_member_vanishing_mid_round_aborts_and_leaks_nothing() -> None:
    net = RoundNet(4)
    net.begin()
    gone = net.keys[2]
    # It announces keys and submits, then its laptop disappears.
    net.pump(until=lambda: net[2].phase is Phase.SHUFFLE)
    net.silenced.add(gone)
    net.pump()
    net.expire()
    assert_nothing_released(net)
    for honest in net.honest(2):
        assert isinstance(honest.outcome, Aborted)
        assert set(honest.outcome.missing) <= {gone}
        assert not honest.holds_keys  # its keys died
    # The leader follows the cascade and names the hop that stopped it.
    leader = net[0].outcome
    assert isinstance(leader, Aborted) and leader.missing == (gone,)


@pytest.mark.parametrize("withheld", ["anon.keys", "anon.submit", "anon.hop", "anon.go"])
def test_member_who_withholds_a_message_is_named_missing(withheld: str) -> None:
    net = RoundNet(4, adversaries={1: withholding(withheld)})
    net.run()
    net.expire()
    assert_nothing_released(net, 1)
    for honest in net.honest(1):
        assert isinstance(honest.outcome, Aborted), honest.outcome
        if withheld == "anon.hop" and honest is not net[0]:
            # Only the leader follows the cascade; the others cannot tell who stalls.
            assert honest.outcome.missing in ((), (net.keys[1],))
        else:
            assert honest.outcome.missing == (net.keys[1],)


@pytest.mark.parametrize("withheld", ["anon.reveal", "anon.ack"])
def test_vanishing_after_keys_are_out_releases_nothing_to_the_log(withheld: str) -> None:
    """A member who never sends its inner key, or its release signature: no
    certificate, so nothing can be logged (laptops that had every key opened
    the items, but their senders stay unknown: the outer keys never left)."""
    net = RoundNet(4, adversaries={1: withholding(withheld)})
    net.run()
    net.expire()
    for honest in net.honest(1):
        assert isinstance(honest.outcome, Aborted), honest.outcome
        assert honest.outcome.missing == (net.keys[1],)
    assert net.kinds_sent("anon.blame") == []


# --- messages from outside or malformed -----------------------------------------------------


def test_stranger_and_forged_messages_are_refused() -> None:
    net = RoundNet(3)
    net.begin()
    src, dst, keys = next((s, d, m) for s, d, m in net.sent if s == net.keys[1])
    receiver = net.rounds[dst]
    with pytest.raises(BadRoundMessage):
        receiver.receive(os.urandom(32), keys, 0)  # not a participant
    with pytest.raises(BadRoundMessage):
        receiver.receive(src, {**keys, "g": bytes(64)}, 0)  # forged signature
    with pytest.raises(MalformedFrame):
        receiver.receive(src, {**keys, "extra": 1}, 0)
    with pytest.raises(MalformedFrame):
        receiver.receive(src, {**keys, "i": b"short"}, 0)
    assert src not in receiver.keys  # none of it was taken


def test_hop_chain_must_carry_every_earlier_hops_signature() -> None:
    """The signed hashes of earlier hops ride with the batch; a hop cannot
    drop or forge one (they end up in everyone's transcript)."""
    net = RoundNet(4)
    net.begin()
    net.pump(until=lambda: any(m["t"] == "anon.hop" and m["k"] == 2 for _, _, m in net.sent))
    src, dst, message = next(
        (s, d, m) for s, d, m in net.sent if m["t"] == "anon.hop" and m["k"] == 2 and m["b"]
    )
    receiver = net.rounds[dst]
    assert len(message["c"]) == 1
    forged = [[message["c"][0][0], bytes(64)]]
    with pytest.raises(BadRoundMessage):
        receiver.receive(src, {**message, "c": forged}, 0)
    with pytest.raises(BadRoundMessage):
        receiver.receive(src, {**message, "c": []}, 0)
    assert 2 not in receiver.hops


def test_low_order_round_key_is_refused() -> None:
    net = RoundNet(3)
    sender = net.ids[1]
    rid = net.start.rid
    low = bytes(32)
    signature = sender.sign(ANON_CONTEXT, statement("keys", MID, rid, low, low))
    message = {"t": "anon.keys", "mid": MID, "r": rid, "i": low, "o": low, "g": signature}
    with pytest.raises(BadRoundMessage):
        net[0].receive(sender.key, message, 0)


def test_round_start_checks_leader_signature_and_order() -> None:
    ids = sorted(IDENTITIES[:3], key=lambda i: i.key)
    start = RoundStart.new(MID, 2, [i.key for i in ids])
    message = start.message(ids[0])
    assert RoundStart.from_message(ids[0].key, message).rid == start.rid
    with pytest.raises(BadRoundMessage):
        RoundStart.from_message(ids[1].key, message)  # not the first participant
    with pytest.raises(BadRoundMessage):
        RoundStart.from_message(ids[0].key, {**message, "ep": 3})  # signature covers it
    with pytest.raises(BadRoundMessage):
        RoundStart.from_message(ids[0].key, {**message, "p": list(reversed(message["p"]))})
    with pytest.raises(BadRoundMessage):
        RoundStart.from_message(ids[0].key, {**message, "p": message["p"][:2]})  # too few
    too_many = [os.urandom(32) for _ in range(MAX_PARTICIPANTS + 1)]
    with pytest.raises(BadRoundMessage):
        RoundStart.from_message(ids[0].key, {**message, "p": sorted(too_many)})


# --- what the wire shows ----------------------------------------------------------------------


def test_every_submission_has_the_same_size() -> None:
    net = RoundNet(5, payloads=[b"", b"x" * 200, b"", b"short", b"y"])
    net.run()
    sizes = {len(pack(m)) for _, m in net.kinds_sent("anon.submit")}
    assert len(sizes) == 1
    assert {len(m["o"]) for _, m in net.kinds_sent("anon.submit")} == {onion_size(SLOT, 5)}


def _traffic(payload: bytes, position: int) -> list[tuple[bytes, str, int]]:
    payloads = [b"other"] * 4
    payloads[position] = payload
    net = RoundNet(4, payloads=payloads)
    net.run()
    me = net.keys[position]
    return [(dst, m["t"], len(pack(m))) for src, dst, m in net.sent if src == me]


def test_silent_member_sends_exactly_what_a_speaking_one_sends() -> None:
    for position in range(4):
        assert _traffic(b"", position) == _traffic(b"I have something to say", position)


# --- unlinkability ------------------------------------------------------------------------------

# chi-square critical values at p = 1e-4 for 5 degrees of freedom (3! - 1).
CHI2_5_P1E4 = 25.74


def _final_order(net: RoundNet) -> tuple[int, ...]:
    """Whose item sits at each place of the final batch: opened with the
    inner keys' shares every member revealed, and told by its payload."""
    leader = net[0]
    publics = [leader.keys[p][0] for p in leader.parts]
    order = []
    for position, sealed in enumerate(leader.batches[leader.n]):
        shares = [leader.reveals[p][1][position] for p in leader.parts]
        opened = open_with_shares(sealed, publics, shares)
        payload = None if opened is None else unpad(opened)
        assert payload is not None
        order.append(net.payloads.index(payload))
    return tuple(order)


def _chi_square(counts: Counter[tuple[int, ...]], rounds: int) -> float:
    expected = rounds / 6
    return sum(
        (counts.get(p, 0) - expected) ** 2 / expected for p in itertools.permutations(range(3))
    )


def test_output_order_is_a_uniform_permutation() -> None:
    rounds = 180
    counts: Counter[tuple[int, ...]] = Counter()
    for _ in range(rounds):
        net = RoundNet(3)  # the real random source
        net.run()
        counts[_final_order(net)] += 1
    assert _chi_square(counts, rounds) < CHI2_5_P1E4, counts


def test_one_honest_shuffler_is_enough_for_a_uniform_order() -> None:
    """Two curious members keep the order they received (so they know their
    own permutation): the one honest hop still makes the output uniform."""

    class Keeper(Round):
        def permute(self, items: list[bytes]) -> list[bytes]:
            return items

    rounds = 180
    counts: Counter[tuple[int, ...]] = Counter()
    for _ in range(rounds):
        net = RoundNet(3, adversaries={0: Keeper, 2: Keeper})
        net.run()
        counts[_final_order(net)] += 1
    assert _chi_square(counts, rounds) < CHI2_5_P1E4, counts
    # And the check can fail: with no honest shuffler the order is fixed.
    fixed = RoundNet(3, adversaries={0: Keeper, 1: Keeper, 2: Keeper})
    fixed.run()
    assert _final_order(fixed) == (0, 1, 2)


def test_a_members_own_transcript_does_not_link_another_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Member 2 (a hop in the middle) holds everything it received, its own
    keys and, after the release, every inner key. The only link between a
    submission and the final batch is each hop's permutation under that hop's
    outer key, and no other member's outer key or permutation reaches it."""
    made = record_round_keys(monkeypatch)
    net = RoundNet(4)
    net.run()
    outer = {r.me: made[r.keys[r.me][1]] for r in net.rounds.values()}
    me = net[2]
    mine = outer.pop(me.me)  # the round itself forgot it once over
    others_outer = outer
    received = b"".join(pack(m) for _, dst, m in net.sent if dst == me.me)
    assert not any(secret in received for secret in others_outer.values())
    # What member 2 can open with its own outer key is only its own input batch:
    # no item of any other batch it holds, no submission past hop 1.
    assert me.index in me.batches and len(me.batches) == 4  # submissions, in, out, final
    for hop, batch in me.batches.items():
        opened = [open_layer(x, me.keys[me.me][1], mine) for x in batch]
        if hop == me.index:
            assert None not in opened  # its own layer, on its own input
        else:
            assert opened == [None] * len(batch), hop
    assert isinstance(me.outcome, Released)


# --- slot framing --------------------------------------------------------------------------------


def test_pad_and_unpad() -> None:
    assert unpad(pad(b"hello", 64)) == b"hello"
    assert unpad(pad(b"", 64)) == b""  # a dummy
    assert len(pad(b"x", 64)) == 64
    assert unpad(b"\x00\x05abc") is None  # says 5, holds 3
    assert unpad(pad(b"hi", 16)[:-1] + b"\x01") is None  # junk after the content
    with pytest.raises(Exception, match="does not fit"):
        pad(b"x" * 63, 64)
