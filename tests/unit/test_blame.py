"""The blame judgement (core/blame.py) as a pure function of its evidence.

The evidence is real: rounds are played in memory by honest and modified
clients (tests/roundnet.py) until they fail, and an honest member's facts and
blame messages are handed to ``judge`` directly, as they are or with one piece
changed the way a cheating member could change it. The signature check is
built here from the public statement format, not taken from the round. Every
case checks the verdict against SPEC §13.2.7.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import pytest
from roundnet import Liar, RoundNet, cheating_shuffler, garbage_layer

from relsec_p2p.core.blame import Blame, RoundFacts, SignatureCheck, judge
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.onion import transcript_hash
from relsec_p2p.core.shuffle import ANON_CONTEXT, Blamed, RoundStart, statement, verify_statement
from relsec_p2p.core.shuffle_round import Round

Blames = dict[bytes, Blame]


def signed_in(start: RoundStart) -> SignatureCheck:
    """The signature check of one round, from the statement format alone."""

    def check(who: bytes, signature: bytes, kind: str, /, *fields: Any) -> bool:
        return verify_statement(who, statement(kind, start.mid, start.rid, *fields), signature)

    return check


def failed(n: int, adversaries: dict[int, type[Round]]) -> RoundNet:
    """A round played to its end (blame included) by ``n`` members."""
    net = RoundNet(n, adversaries=adversaries)
    net.run()
    net.expire()
    return net


def evidence(net: RoundNet, k: int) -> tuple[RoundFacts, Blames]:
    """Member ``k``'s input to the judgement (a copy: changing it changes no round)."""
    member = net[k]
    return member.facts(), dict(member.blames)


def sign(identity: Identity, start: RoundStart, kind: str, *fields: Any) -> bytes:
    return identity.sign(ANON_CONTEXT, statement(kind, start.mid, start.rid, *fields))


def with_seen(blame: Blame, change: Callable[[list[list[Any]]], list[list[Any]]]) -> Blame:
    return dataclasses.replace(blame, seen=change([list(entry) for entry in blame.seen]))


# --- rounds broken by a modified client ------------------------------------------------------

SCENARIOS = [
    pytest.param(4, {1: Liar}, 1, "said NO-GO with no cause", id="false NO-GO"),
    *(
        pytest.param(
            5,
            {hop: cheating_shuffler(action)},
            hop,
            "dropped, replaced or duplicated an item",
            id=f"hop {hop + 1} {action}s an item",
        )
        for action in ("drop", "duplicate", "replace")
        for hop in (0, 2, 4)
    ),
    *(
        pytest.param(
            4,
            {2: garbage_layer(layer)},
            2,
            "submitted a slot that does not decrypt",
            id=f"garbage layer for hop {layer + 1}",
        )
        for layer in (0, 1, 3)
    ),
]


@pytest.mark.parametrize(("n", "adversaries", "culprit", "reason"), SCENARIOS)
def test_judge_names_the_modified_client(
    n: int, adversaries: dict[int, type[Round]], culprit: int, reason: str
) -> None:
    net = failed(n, adversaries)
    check = signed_in(net.start)
    for honest in net.honest(*adversaries):
        facts, blames = evidence(net, net.keys.index(honest.me))
        assert set(blames) == set(net.keys)  # everyone answered
        assert judge(facts, blames, check) == {net.keys[culprit]: reason}
        # The round reached the same verdict through the same function.
        assert isinstance(honest.outcome, Blamed)
        assert honest.outcome.culprits == {net.keys[culprit]: reason}


# --- one piece of real evidence changed ---------------------------------------------------------
#
# The base: member 1 said NO-GO with no cause in a round of 4; member 0 judges.
# Each case changes what member 0 holds and states the verdict SPEC §13.2.7 gives.

LIAR = 1


def _liar_round() -> tuple[RoundNet, RoundFacts, Blames]:
    net = failed(4, {LIAR: Liar})
    facts, blames = evidence(net, 0)
    return net, facts, blames


def _replace_go(net: RoundNet, blames: Blames, ok: bool, digest: bytes) -> Blames:
    """Every ``seen`` shows the liar's GO as ``(ok, digest)``, signed by the liar."""
    liar = net.keys[LIAR]
    signature = sign(net.ids[LIAR], net.start, "go", ok, digest)

    def swap(seen: list[list[Any]]) -> list[list[Any]]:
        liars_go = ["go", liar, ok, digest, signature]
        return [liars_go if entry[:2] == ["go", liar] else entry for entry in seen]

    return {who: with_seen(blame, swap) for who, blame in blames.items()}


def _true_transcript(net: RoundNet) -> bytes:
    member = net[0]
    return transcript_hash(
        member.rid,
        [member.keys[p][:2] for p in member.parts],
        [member.submissions[p][0] for p in member.parts],
        [member.hops[k][0] for k in range(1, member.n + 1)],
    )


def honest_go(net: RoundNet, blames: Blames) -> Blames:
    return _replace_go(net, blames, True, _true_transcript(net))


def go_over_another_transcript(net: RoundNet, blames: Blames) -> Blames:
    return _replace_go(net, blames, True, os.urandom(32))


def second_go(net: RoundNet, blames: Blames) -> Blames:
    """One more signed GO by the liar, in member 3's seen only."""
    liar, digest = net.keys[LIAR], _true_transcript(net)
    entry = ["go", liar, True, digest, sign(net.ids[LIAR], net.start, "go", True, digest)]
    third = net.keys[3]
    return {**blames, third: with_seen(blames[third], lambda seen: [*seen, entry])}


def unanswered(net: RoundNet, blames: Blames) -> Blames:
    return {who: blame for who, blame in blames.items() if who != net.keys[2]}


def wrong_outer_key(net: RoundNet, blames: Blames) -> Blames:
    who = net.keys[3]
    return {**blames, who: dataclasses.replace(blames[who], outer_secret=os.urandom(32))}


def inner_key_released(net: RoundNet, blames: Blames) -> Blames:
    """Member 3 answered without its outer key (it had released its inner key)."""
    who = net.keys[3]
    return {**blames, who: dataclasses.replace(blames[who], outer_secret=None)}


def forged_no_go(net: RoundNet, blames: Blames) -> Blames:
    """A claim that member 2 said NO-GO, with a signature it never made."""
    entry = ["go", net.keys[2], False, bytes(32), bytes(64)]
    return {who: with_seen(blame, lambda seen: [*seen, entry]) for who, blame in blames.items()}


def claim_about_a_stranger(net: RoundNet, blames: Blames) -> Blames:
    stranger = Identity.generate()
    entry = [
        "go",
        stranger.key,
        False,
        bytes(32),
        sign(stranger, net.start, "go", False, bytes(32)),
    ]
    return {who: with_seen(blame, lambda seen: [*seen, entry]) for who, blame in blames.items()}


def hop_claimed_by_another_member(net: RoundNet, blames: Blames) -> Blames:
    """Member 0 signs an output for hop 2, which is member 1's hop."""
    digest = os.urandom(32)
    entry = ["hop", net.keys[0], 2, digest, sign(net.ids[0], net.start, "hop", 2, digest)]
    return {who: with_seen(blame, lambda seen: [*seen, entry]) for who, blame in blames.items()}


def malformed_entries(net: RoundNet, blames: Blames) -> Blames:
    junk: list[list[Any]] = [
        ["keys", net.keys[2], b"short", b"short", bytes(64)],
        ["hop", net.keys[2], 0, bytes(32), bytes(64)],
        ["hop", net.keys[2], 99, bytes(32), bytes(64)],
        ["go", net.keys[2], 1, bytes(32), bytes(64)],
        ["vote", net.keys[2], True, bytes(32), bytes(64)],
        ["go", net.keys[2], False, bytes(32), b"short"],
        # Shapes a modified client could send: must be no claim, not a crash.
        ["go", [net.keys[2]], False, bytes(32), bytes(64)],
        ["go", {b"k": 1}, False, bytes(32), bytes(64)],
        ["go", net.keys[2], False],
        "go",
    ]
    return {who: with_seen(blame, lambda seen: [*seen, *junk]) for who, blame in blames.items()}


def batch_withheld(net: RoundNet, blames: Blames) -> Blames:
    """Hop 2's blame message leaves out the batch it received from hop 1."""
    who = net.keys[1]
    return {**blames, who: dataclasses.replace(blames[who], received=None)}


def batch_altered(net: RoundNet, blames: Blames) -> Blames:
    """Hop 2 shows a batch that is not the one hop 1 signed."""
    who = net.keys[1]
    received = blames[who].received
    assert received is not None
    hop, batch, signature = received
    altered = (hop, [batch[1], batch[1], *batch[2:]], signature)
    return {**blames, who: dataclasses.replace(blames[who], received=altered)}


def final_withheld(net: RoundNet, blames: Blames) -> Blames:
    """No one shows the final batch: the replay stops at the last hop, naming no
    one for it, and goes on to the GOs."""
    return {who: dataclasses.replace(b, final=None) for who, b in blames.items()}


CHANGES: list[tuple[Callable[[RoundNet, Blames], Blames], dict[int, str]]] = [
    (lambda net, blames: blames, {LIAR: "said NO-GO with no cause"}),
    (honest_go, {}),
    (go_over_another_transcript, {LIAR: "said GO over a transcript the others did not see"}),
    (second_go, {LIAR: "signed two different versions of one round message"}),
    (unanswered, {2: "did not answer in the blame phase before the deadline"}),
    (wrong_outer_key, {3: "revealed an outer key that does not match its announcement"}),
    (inner_key_released, {}),
    (forged_no_go, {LIAR: "said NO-GO with no cause"}),
    (claim_about_a_stranger, {LIAR: "said NO-GO with no cause"}),
    (hop_claimed_by_another_member, {LIAR: "said NO-GO with no cause"}),
    (malformed_entries, {LIAR: "said NO-GO with no cause"}),
    (batch_withheld, {1: "withheld the batch it received"}),
    (batch_altered, {1: "withheld the batch it received"}),
    (final_withheld, {LIAR: "said NO-GO with no cause"}),
]


@pytest.mark.parametrize(
    ("change", "verdict"),
    CHANGES,
    ids=["as played" if k == 0 else change.__name__ for k, (change, _) in enumerate(CHANGES)],
)
def test_judge_on_changed_evidence(
    change: Callable[[RoundNet, Blames], Blames], verdict: dict[int, str]
) -> None:
    net, facts, blames = _liar_round()
    changed = change(net, blames)
    assert judge(facts, changed, signed_in(net.start)) == {
        net.keys[k]: reason for k, reason in verdict.items()
    }


def test_judge_is_a_function_of_its_inputs() -> None:
    """The same evidence gives the same verdict on every honest laptop, in any
    order of arrival, and judging changes nothing it was given."""
    net, facts, blames = _liar_round()
    check = signed_in(net.start)
    before = copy.deepcopy(blames)
    verdict = judge(facts, blames, check)
    assert judge(facts, dict(reversed(blames.items())), check) == verdict
    for k in (2, 3):
        assert judge(*evidence(net, k), check) == verdict
    assert blames == before


def test_no_signature_check_passes_no_claim() -> None:
    """With a check that accepts nothing, no statement is evidence: the replay
    still runs (every outer key is there) and convicts no GO."""
    _, facts, blames = _liar_round()
    assert judge(facts, blames, lambda who, signature, kind, /, *fields: False) == {}


def test_a_copied_onion_convicts_its_copier_not_the_hop_that_refused_it() -> None:
    """Issue 12.3: a member submits a copy of another member's onion (so a
    duplicate would mark that member's item). Hop 1 refuses the batch with a
    NO-GO; the replay finds, in the first layer, the key of the member who
    built the onion, and names the copier: never the hop, never the owner."""
    from test_anon_attacks import copier

    net = RoundNet(7)
    owner, thief = 5, 3  # the thief copies in the middle of the roster
    net.rounds[net.keys[thief]] = copier(net.keys[owner])(
        net.ids[thief], net.start, net[thief]._payload, now_ms=0, timeout_ms=1000
    )
    net.run()
    net.expire()
    for k, round_ in enumerate(net.rounds.values()):
        if k == thief:
            continue
        assert isinstance(round_.outcome, Blamed), round_.outcome
        assert round_.outcome.culprits == {
            net.keys[thief]: "submitted a copy of another member's slot"
        }
    hop_one = net[0]
    assert hop_one.gos[hop_one.me][0] is False  # it refused the batch, and is not blamed
