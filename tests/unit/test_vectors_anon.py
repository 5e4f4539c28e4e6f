"""The shuffle round and the ``anon.round`` fold against protocol/vectors/anon.json.

Rules of this file: every check recomputes from the file with the primitives
and the SPEC §13 formulas (BLAKE2b labels, sealed boxes, Ed25519), never by
running a round: an independent implementation can do the same. The last
check replays the file's meeting into a fresh laptop and compares the
state digest. The generator's reproduction of the file is checked in
test_vectors.py.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from nacl import bindings
from test_vectors import KEYS, MID, replay, value

from relsec_p2p.core import onion, shuffle
from relsec_p2p.core.codec import pack

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "protocol" / "vectors"
ANON = json.loads((VECTORS / "anon.json").read_text(encoding="utf-8"))
ROUND = ANON["round"]
NAMES = ROUND["participants"]
PARTS = [KEYS[n] for n in NAMES]
N = len(PARTS)
RID = bytes.fromhex(ROUND["start"]["rid_hex"])
KEYPAIRS = {n: {k: bytes.fromhex(v) for k, v in row.items()} for n, row in ROUND["keys"].items()}


def b(text: str) -> bytes:
    return bytes.fromhex(text)


def messages(kind: str) -> list[dict[str, Any]]:
    return [
        {"from": m["from"], "to": m["to"], **value(m["message"])}
        for m in ROUND["messages"]
        if m["message"]["t"] == kind
    ]


def signed(who: str, kind: str, *fields: Any, signature: bytes) -> bool:
    return shuffle.verify_statement(
        KEYS[who], shuffle.statement(kind, MID, RID, *fields), signature
    )


def test_participants_are_sorted_and_the_rid_hashes_the_start() -> None:
    start = ROUND["start"]
    assert PARTS == sorted(PARTS) and NAMES[0] == ROUND["leader"]
    assert shuffle.rid_of(MID, start["epoch"], b(start["nonce_hex"]), PARTS, start["after"]) == RID
    message = value(start["message"])
    assert pack(message).hex() == start["hex"]
    assert message["a"] == start["after"] and message["p"] == PARTS
    assert signed(NAMES[0], "start", signature=message["g"])


def test_every_message_is_canonical_and_every_statement_signed() -> None:
    for sent in ROUND["messages"]:
        message = value(sent["message"])
        assert pack(message).hex() == sent["hex"]
        assert message["mid"] == MID and message["r"] == RID
    for m in messages("anon.keys"):
        assert signed(m["from"], "keys", m["i"], m["o"], signature=m["g"])
        assert (m["i"], m["o"]) == (
            KEYPAIRS[m["from"]]["inner_public_hex"],
            KEYPAIRS[m["from"]]["outer_public_hex"],
        )
    for m in messages("anon.submit"):
        assert len(m["o"]) == ROUND["onion_bytes"] == ROUND["slot_bytes"] + 48 + 48 * N + 32
        assert signed(m["from"], "submit", onion.onion_hash(m["o"]), signature=m["g"])
    for m in messages("anon.hop"):
        assert signed(m["from"], "hop", m["k"], m["h"], signature=m["g"])
    for m in messages("anon.go"):
        assert m["ok"] is True
        assert signed(m["from"], "go", True, m["h"], signature=m["g"])
    for m in messages("anon.reveal"):
        assert signed(m["from"], "reveal", m["s"], m["x"], signature=m["g"])
        assert m["s"] == KEYPAIRS[m["from"]]["inner_secret_hex"]
    for m in messages("anon.ack"):
        assert signed(m["from"], "release", m["d"], signature=m["g"])


def open_sealed(sealed: bytes, who: str) -> bytes:
    opened: bytes = bindings.crypto_box_seal_open(
        sealed, KEYPAIRS[who]["outer_public_hex"], KEYPAIRS[who]["outer_secret_hex"]
    )
    return opened


def batches() -> dict[int, list[bytes]]:
    """B_0 (the submissions in participant order) and every hop's batch."""
    submitted = {m["from"]: m["o"] for m in messages("anon.submit")}
    found = {0: [submitted[n] for n in NAMES]}
    for m in messages("anon.hop"):
        if m["b"] is not None:
            assert shuffle_batch_hash(m["b"]) == m["h"]
            found[m["k"]] = m["b"]
    assert sorted(found) == list(range(N + 1))
    return found


def shuffle_batch_hash(batch: list[bytes]) -> bytes:
    return onion.label_hash(b"relsec/v2/anon-batch\x00", pack(batch))


def test_each_hop_peels_its_layer_and_permutes() -> None:
    found = batches()
    for k in range(1, N + 1):
        peeled = [open_sealed(x, NAMES[k - 1]) for x in found[k - 1]]
        if k == 1:  # the first layer also holds its submitter's key
            assert [p[:32] for p in peeled] == PARTS
            peeled = [p[32:] for p in peeled]
        assert sorted(peeled) == sorted(found[k])


def test_transcript_opening_release_and_certificate() -> None:
    found = batches()
    expect = ROUND["expect"]
    keys = {m["from"]: (m["i"], m["o"]) for m in messages("anon.keys")}
    submitted = {m["from"]: m["o"] for m in messages("anon.submit")}
    hop_hashes = {m["k"]: m["h"] for m in messages("anon.hop")}
    transcript = onion.label_hash(
        b"relsec/v2/anon-transcript\x00",
        pack(
            [
                RID,
                [list(keys[n]) for n in NAMES],
                [onion.onion_hash(submitted[n]) for n in NAMES],
                [hop_hashes[k] for k in range(1, N + 1)],
            ]
        ),
    )
    assert transcript.hex() == expect["transcript_hex"]
    assert {m["h"] for m in messages("anon.go")} == {transcript}
    publics = [keys[n][0] for n in NAMES]
    items = []
    for sealed in found[N]:
        shares = [
            bindings.crypto_scalarmult(KEYPAIRS[n]["inner_secret_hex"], sealed[:32]) for n in NAMES
        ]
        slot = onion.open_with_shares(sealed, publics, shares)
        assert slot is not None and len(slot) == ROUND["slot_bytes"]
        assert slot.hex() in ROUND["slots"].values()
        size = int.from_bytes(slot[:2], "big")
        if size:
            items.append(slot[2 : 2 + size])
    ids = sorted(onion.label_hash(b"relsec/v2/anon-item\x00", item) for item in items)
    assert [i.hex() for i in ids] == expect["ids_hex"]
    assert sorted(i.hex() for i in items) == sorted(expect["items_hex"])
    digest = onion.label_hash(b"relsec/v2/anon-items\x00", pack(ids))
    assert digest.hex() == expect["release_digest_hex"]
    assert {m["d"] for m in messages("anon.ack")} == {digest}
    for name, signature in zip(NAMES, expect["certificate_hex"], strict=True):
        assert signed(name, "release", digest, signature=b(signature))


@pytest.mark.parametrize("case", [ANON["state"]], ids=lambda c: c["name"])
def test_the_release_folds_to_the_state(case: dict[str, Any]) -> None:
    envelopes = [b(item["envelope_hex"]) for item in case["log"]]
    laptop = replay(KEYS[case["creator"]], envelopes)
    assert laptop.digest().hex() == case["expect"]["digest_hex"]
    assert pack(laptop.state.to_canonical()).hex() == case["expect"]["state_canonical_hex"]
    ignored = {i["entry"]: i["reason"] for i in case["expect"]["summary"]["ignored"]}
    assert list(ignored.values()) == [
        "the entry sorts before its round started",
        "those items of the round are already in",
    ]
    (shown,) = laptop.state.anonymous_contributions
    assert shown.text == "I am afraid to say it." and laptop.state.pause_requests == 1
