"""Signed hash-chained feeds, the gap buffer and fork proofs (core/feed.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fakenet import IDENTITIES, MID, OUTSIDER, FakeNetwork, codes, fork_frame, forks

from relsec_p2p.core import feed as feed_module
from relsec_p2p.core.codec import ENTRY_LIMITS, pack, unpack
from relsec_p2p.core.errors import (
    BadClock,
    BadForkProof,
    BadSignature,
    BrokenChain,
    BufferFull,
    FrozenFeed,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    NonCanonical,
    RemoteProtocolError,
    UnknownAuthor,
    UnsupportedVersion,
    WrongMeeting,
)
from relsec_p2p.core.feed import (
    ENTRY_CONTEXT,
    Entry,
    Log,
    decode_entry,
    encode_entry,
    entry_hash,
)
from relsec_p2p.core.identity import Identity

ALICE, BOB, CAROL = IDENTITIES[:3]


def chain(
    identity: Identity,
    n: int,
    *,
    start_lam: int = 1,
    mid: bytes = MID,
    after: Entry | None = None,
    kind: str = "hand.raise",
    data: dict[str, Any] | None = None,
) -> list[Entry]:
    """``n`` correctly linked entries of one author (continuing ``after``)."""
    out: list[Entry] = []
    prev = after
    for i in range(n):
        entry = encode_entry(
            identity,
            mid=mid,
            seq=prev.seq + 1 if prev else 1,
            prev=prev.hash if prev else None,
            lam=(prev.lam + 1) if prev else start_lam + i,
            ts=1000 + i,
            kind=kind,
            data={"i": i} if data is None else data,
        )
        out.append(entry)
        prev = entry
    return out


def new_log(*members: Identity) -> Log:
    known = {m.key for m in (members or (ALICE, BOB))}
    return Log(MID, known.__contains__)


def observe(log: Log) -> tuple[Any, ...]:
    """Everything a rejected input must leave alone."""
    return (
        log.summary(),
        len(log),
        {au: p.seq for au, p in log.forks.items()},
        {au: log.missing_range(au) for au in (ALICE.key, BOB.key, CAROL.key)},
        log.max_lamport,
        log.pending_count,
    )


# --- encoding and decoding ------------------------------------------------------


def test_encode_then_decode_gives_the_same_entry() -> None:
    entry = chain(ALICE, 1, data={"text": "x", "n": 3})[0]
    again = decode_entry(entry.envelope)
    assert again == entry
    assert entry.hash == entry_hash(entry.body)
    assert (entry.author, entry.seq, entry.prev, entry.mid) == (ALICE.key, 1, None, MID)
    assert entry.data == {"text": "x", "n": 3}
    ALICE.signing_key.verify_key.verify(ENTRY_CONTEXT + entry.body, entry.signature)


def _body(**override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 2,
        "mid": MID,
        "au": ALICE.key,
        "seq": 2,
        "prev": b"\x11" * 32,
        "lam": 5,
        "ts": 10,
        "type": "hand.raise",
        "data": {},
        "deps": [],
    }
    for key, value in override.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def _envelope(body: Any, signature: Any = b"\x00" * 64) -> bytes:
    return pack([pack(body) if not isinstance(body, bytes) else body, signature])


MALFORMED: list[tuple[str, bytes, type[RemoteProtocolError]]] = [
    ("not an array", pack({"a": 1}), MalformedFrame),
    ("three items", pack([pack(_body()), b"\x00" * 64, b""]), MalformedFrame),
    ("body not bin", pack([_body(), b"\x00" * 64]), MalformedFrame),
    ("short signature", _envelope(_body(), b"\x00" * 63), MalformedFrame),
    ("signature as str", _envelope(_body(), "x" * 64), MalformedFrame),
    ("body not a map", _envelope(pack([1, 2])), MalformedFrame),
    ("body key missing", _envelope(_body(ts=...)), MalformedFrame),
    ("extra body key", _envelope(_body(zz=1)), MalformedFrame),
    ("version 1", _envelope(_body(v=1)), UnsupportedVersion),
    ("version 3", _envelope(_body(v=3)), UnsupportedVersion),
    ("version as str", _envelope(_body(v="2")), UnsupportedVersion),
    ("mid of 15 bytes", _envelope(_body(mid=MID[:15])), MalformedFrame),
    ("author of 31 bytes", _envelope(_body(au=ALICE.key[:31])), MalformedFrame),
    ("seq 0", _envelope(_body(seq=0)), MalformedFrame),
    ("seq as bool", _envelope(_body(seq=True, prev=None)), MalformedFrame),
    ("seq over 32 bits", _envelope(_body(seq=1 << 32)), MalformedFrame),
    ("prev at seq 1", _envelope(_body(seq=1)), MalformedFrame),
    ("no prev at seq 2", _envelope(_body(prev=None)), MalformedFrame),
    ("short prev", _envelope(_body(prev=b"\x11" * 31)), MalformedFrame),
    ("lam 0", _envelope(_body(lam=0)), MalformedFrame),
    ("lam over 2**53", _envelope(_body(lam=1 << 53)), MalformedFrame),
    ("negative ts", _envelope(_body(ts=-1)), MalformedFrame),
    ("empty type", _envelope(_body(type="")), MalformedFrame),
    ("long type", _envelope(_body(type="x" * 33)), MalformedFrame),
    ("data not a map", _envelope(_body(data=[])), MalformedFrame),
    ("deps not a list", _envelope(_body(deps={})), MalformedFrame),
    ("deps naming the author", _envelope(_body(deps=[[ALICE.key, 1]])), MalformedFrame),
    (
        "deps not ascending",
        _envelope(_body(deps=[[b"\x02" * 32, 1], [b"\x01" * 32, 1]])),
        MalformedFrame,
    ),
    (
        "deps naming one author twice",
        _envelope(_body(deps=[[BOB.key, 1], [BOB.key, 2]])),
        MalformedFrame,
    ),
    ("deps seq 0", _envelope(_body(deps=[[BOB.key, 0]])), MalformedFrame),
    ("deps key of 31 bytes", _envelope(_body(deps=[[BOB.key[:31], 1]])), MalformedFrame),
    (
        "deps of 257 pairs",
        _envelope(_body(deps=[[i.to_bytes(2, "big") * 16, 1] for i in range(257)])),
        MalformedFrame,
    ),
    ("non-canonical body", _envelope(b"\x81\xa1v\xcc\x01"), NonCanonical),
    ("entry over entry limits", _envelope(_body(data={"x": b"y" * 70_000})), LimitExceeded),
    ("trailing byte", _envelope(_body()) + b"\x00", MalformedFrame),
]


@pytest.mark.parametrize(
    ("envelope", "error"), [r[1:] for r in MALFORMED], ids=[r[0] for r in MALFORMED]
)
def test_decode_rejects_malformed_entries(envelope: bytes, error: type[Exception]) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_entry(envelope)
    assert type(caught.value) is error


def test_the_unmodified_body_decodes() -> None:
    # The table above differs from this one field at a time.
    entry = decode_entry(_envelope(_body()))
    assert entry.seq == 2 and entry.lam == 5


def _data_for_body_of(size: int) -> dict[str, Any]:
    """Entry data that makes Alice's first entry's body exactly ``size`` bytes."""
    for pad in range(size - 200, size):
        data = {"x": b"y" * pad}
        body = pack({"v": 2, "mid": MID, "au": ALICE.key, "seq": 1, "prev": None, "lam": 1,
                     "ts": 1000, "type": "hand.raise", "data": data, "deps": []})  # fmt: skip
        if len(body) == size:
            return data
    raise AssertionError(f"no body of {size} bytes")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        # A body one byte over max_bin: the body is the binding limit (SPEC §2.3).
        (_data_for_body_of(ENTRY_LIMITS.max_bin + 1), "too large: its body is 65409 bytes"),
        (_data_for_body_of(ENTRY_LIMITS.max_bytes), "too large"),
        ({"x": "y" * (ENTRY_LIMITS.max_str + 1)}, "max_str_len"),
        ({"x": [[[[[[[[[1]]]]]]]]]}, "deeper"),  # nested deeper than an entry may be
    ],
    ids=["body-over-max-bin", "envelope-over-max-bytes", "str-over-max-str", "too-deep"],
)
def test_encode_refuses_what_peers_would_refuse_as_a_local_error(
    data: dict[str, Any], why: str
) -> None:
    # Our own oversized entry is a local misuse, never a remote error.
    with pytest.raises(LocalProtocolError, match=why):
        chain(ALICE, 1, data=data)


def test_the_largest_entry_that_fits_is_accepted() -> None:
    # The control for the rows above: one byte less of body encodes and decodes,
    # and its envelope is exactly max_bytes long: both entry limits are reached.
    (entry,) = chain(ALICE, 1, data=_data_for_body_of(ENTRY_LIMITS.max_bin))
    assert len(entry.body) == ENTRY_LIMITS.max_bin
    assert len(entry.envelope) == ENTRY_LIMITS.max_bytes == 65_478
    assert new_log().ingest(entry.envelope).accepted == [entry]


def test_an_envelope_one_byte_over_max_bytes_is_refused_by_size() -> None:
    # A peer's envelope holding a body one byte over max_bin is one byte over
    # max_bytes: refused by the size check, before any parsing (SPEC §2.4 phase 1).
    body = pack({"v": 2, "mid": MID, "au": ALICE.key, "seq": 1, "prev": None, "lam": 1,
                 "ts": 1000, "type": "hand.raise",
                 "data": _data_for_body_of(ENTRY_LIMITS.max_bin + 1), "deps": []})  # fmt: skip
    envelope = pack([body, ALICE.sign(ENTRY_CONTEXT, body)])
    assert len(envelope) == ENTRY_LIMITS.max_bytes + 1
    with pytest.raises(LimitExceeded, match="over the limit of 65478"):
        decode_entry(envelope)


# --- accepting, duplicates, gaps ------------------------------------------------


def test_entries_in_order_are_accepted_and_chained() -> None:
    log = new_log()
    entries = chain(ALICE, 3)
    for entry in entries:
        result = log.ingest(entry.envelope)
        assert result.accepted == [entry]
    assert log.feed(ALICE.key) == entries
    assert log.summary() == [[ALICE.key, 3, entries[-1].hash]]
    assert log.max_lamport == entries[-1].lam


def test_duplicate_is_ignored() -> None:
    log = new_log()
    entries = chain(ALICE, 2)
    for entry in entries:
        log.ingest(entry.envelope)
    before = observe(log)
    result = log.ingest(entries[0].envelope)
    assert result.duplicate and not result.accepted and result.fork is None
    assert observe(log) == before


def test_gap_is_buffered_then_released_in_order() -> None:
    log = new_log()
    e1, e2, e3, e4 = chain(ALICE, 4)
    log.ingest(e1.envelope)
    assert log.ingest(e4.envelope).buffered == e4
    assert log.ingest(e3.envelope).buffered == e3
    assert log.feed(ALICE.key) == [e1]
    assert log.missing_range(ALICE.key) == (2, 2)
    assert log.ingest(e3.envelope).duplicate  # a buffered entry again is a duplicate
    result = log.ingest(e2.envelope)
    assert result.accepted == [e2, e3, e4]
    assert log.feed(ALICE.key) == [e1, e2, e3, e4]
    assert log.missing_range(ALICE.key) is None
    assert log.pending_count == 0


def test_buffered_entry_that_does_not_link_is_dropped_on_release() -> None:
    log = new_log()
    e1, e2, _ = chain(ALICE, 3)
    other2, other3 = chain(ALICE, 2, after=e1, data={"other": True})
    log.ingest(e1.envelope)
    log.ingest(other3.envelope)  # seq 3 of another branch
    result = log.ingest(e2.envelope)
    assert result.accepted == [e2]  # other3 does not link to e2
    assert log.missing_range(ALICE.key) is None
    assert log.pending_count == 0
    assert other2.seq == 2  # sync will bring it, and with it a fork proof


def test_buffer_is_bounded_per_author(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "MAX_PENDING_PER_AUTHOR", 3)
    log = new_log()
    entries = chain(ALICE, 6)
    for entry in entries[1:4]:
        log.ingest(entry.envelope)
    before = observe(log)
    with pytest.raises(BufferFull):
        log.ingest(entries[4].envelope)
    assert observe(log) == before
    log.ingest(chain(BOB, 2)[1].envelope)  # another author still has room
    log.ingest(entries[0].envelope)  # the gap fills: all four come out
    assert len(log.feed(ALICE.key)) == 4


def test_buffer_is_bounded_in_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_module, "MAX_PENDING_TOTAL", 4)
    log = new_log()
    alice, bob = chain(ALICE, 4), chain(BOB, 4)
    for entry in alice[1:] + bob[1:2]:
        log.ingest(entry.envelope)
    with pytest.raises(BufferFull):
        log.ingest(bob[2].envelope)
    log.ingest(alice[0].envelope)  # releasing frees room
    assert log.ingest(bob[2].envelope).buffered == bob[2]


def test_default_buffer_bound_is_real() -> None:
    log = new_log()
    limit = feed_module.MAX_PENDING_PER_AUTHOR
    entries = chain(ALICE, limit + 2)
    for entry in entries[1 : limit + 1]:
        log.ingest(entry.envelope)
    with pytest.raises(BufferFull):
        log.ingest(entries[limit + 1].envelope)


# --- rejected input changes nothing ---------------------------------------------


def _resign(entry: Entry, body: bytes, identity: Identity) -> bytes:
    return pack([body, identity.sign(ENTRY_CONTEXT, body)])


def _with_fields(entry: Entry, identity: Identity, **changes: Any) -> bytes:
    fields = unpack(entry.body)
    fields.update(changes)
    return _resign(entry, pack(fields), identity)


def _rejections(e1: Entry, e2: Entry) -> list[tuple[str, bytes, type[RemoteProtocolError]]]:
    body, signature = unpack(e2.envelope)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    return [
        ("wrong meeting", chain(ALICE, 1, mid=b"\x99" * 16)[0].envelope, WrongMeeting),
        ("unknown author", chain(CAROL, 1)[0].envelope, UnknownAuthor),
        ("signature bit flipped", pack([body, flipped]), BadSignature),
        ("zero signature", pack([body, bytes(64)]), BadSignature),
        ("signed by another member", _resign(e2, body, BOB), BadSignature),
        ("signed by an outsider", _resign(e2, body, OUTSIDER), BadSignature),
        ("body changed after signing", pack([_with_fields(e2, ALICE), signature]), MalformedFrame),
        ("broken prev", _with_fields(e2, ALICE, prev=b"\x42" * 32), BrokenChain),
        ("same Lamport clock", _with_fields(e2, ALICE, lam=e1.lam), BadClock),
        ("lower Lamport clock", _with_fields(e2, ALICE, lam=e1.lam - 1), BadClock),
        ("a clock beyond its past", _with_fields(e2, ALICE, lam=e1.lam + 2), BadClock),
        ("a clock at the limit", _with_fields(e2, ALICE, lam=(1 << 53) - 1), BadClock),
    ]


def test_each_rejection_is_typed_and_changes_nothing() -> None:
    e0, e1 = chain(ALICE, 2)
    e2 = chain(ALICE, 1, after=e1)[0]
    cases = _rejections(e1, e2)
    for name, envelope, error in cases:
        log = new_log()
        log.ingest(e0.envelope)
        log.ingest(e1.envelope)
        before = observe(log)
        with pytest.raises(RemoteProtocolError) as caught:
            log.ingest(envelope)
        assert type(caught.value) is error, name
        assert observe(log) == before, name
        # The honest entry is still accepted afterwards: nothing was poisoned.
        assert log.ingest(e2.envelope).accepted == [e2], name


def test_body_changed_after_signing_fails_the_signature() -> None:
    # The table's "body changed" row builds a bin inside a bin; this one
    # changes a field in place so it still decodes.
    e1 = chain(ALICE, 1)[0]
    body = unpack(e1.body)
    body["data"] = {"i": 99}
    log = new_log()
    with pytest.raises(BadSignature):
        log.ingest(pack([pack(body), e1.signature]))
    assert len(log) == 0


def test_a_replay_with_another_signature_is_still_checked() -> None:
    # A held body with a forged signature must not pass as a duplicate-free
    # check: it would poison fork proofs (see test_adversarial).
    log = new_log()
    (e1,) = chain(ALICE, 1)
    log.ingest(e1.envelope)
    with pytest.raises(BadSignature):
        log.authenticate(pack([e1.body, bytes(64)]))
    assert log.authenticate(e1.envelope) == e1


def test_a_buffered_body_with_another_signature_is_still_checked() -> None:
    log = new_log()
    _, e2 = chain(ALICE, 2)
    log.ingest(e2.envelope)
    with pytest.raises(BadSignature):
        log.authenticate(pack([e2.body, bytes(64)]))


def test_log_needs_a_16_byte_meeting_id() -> None:
    with pytest.raises(LocalProtocolError):
        Log(b"short", lambda _: True)


# --- forks ------------------------------------------------------------------------


def test_fork_gives_a_proof_truncates_and_freezes() -> None:
    log = new_log()
    e1, e2, e3 = chain(ALICE, 3)
    (b2,) = chain(ALICE, 1, after=e1, data={"other": 1})
    for entry in (e1, e2, e3):
        log.ingest(entry.envelope)
    result = log.ingest(b2.envelope)
    assert result.fork is not None
    assert {result.fork.first.hash, result.fork.second.hash} == {e2.hash, b2.hash}
    assert result.removed == [e2, e3]
    assert log.feed(ALICE.key) == [e1]  # truncated before the fork
    assert log.frozen_at(ALICE.key) == 2
    # Frozen: a third version, and anything later, is refused with a typed error.
    (c2,) = chain(ALICE, 1, after=e1, data={"third": 1})
    for late in (c2, e3, chain(ALICE, 1, after=e3)[0]):
        before = observe(log)
        with pytest.raises(FrozenFeed):
            log.ingest(late.envelope)
        assert observe(log) == before
    # The two sides of the proof are duplicates now, and seq 1 stays.
    assert log.ingest(e2.envelope).duplicate
    assert log.ingest(b2.envelope).duplicate
    assert log.ingest(e1.envelope).duplicate
    # Other authors are not affected.
    assert log.ingest(chain(BOB, 1)[0].envelope).accepted


def test_fork_against_a_buffered_entry() -> None:
    log = new_log()
    e1, e2, e3 = chain(ALICE, 3)
    (b2,) = chain(ALICE, 1, after=e1, data={"other": 1})
    log.ingest(e3.envelope)
    log.ingest(e2.envelope)  # both buffered, waiting for e1
    result = log.ingest(b2.envelope)
    assert result.fork is not None and log.frozen_at(ALICE.key) == 2
    assert log.pending_count == 0  # e2 and e3 left the buffer
    assert log.ingest(e1.envelope).accepted == [e1]
    assert log.feed(ALICE.key) == [e1]


def test_fork_proof_envelopes_are_in_canonical_order() -> None:
    log_a, log_b = new_log(), new_log()
    (e1,) = chain(ALICE, 1)
    (b1,) = chain(ALICE, 1, data={"other": 1})
    proof_a = log_a.ingest(e1.envelope) and log_a.ingest(b1.envelope).fork
    proof_b = log_b.ingest(b1.envelope) and log_b.ingest(e1.envelope).fork
    assert proof_a and proof_b
    assert proof_a.envelopes() == proof_b.envelopes()
    assert [entry_hash(unpack(x)[0]) for x in proof_a.envelopes()] == sorted([e1.hash, b1.hash])


def test_fork_proof_is_accepted_by_another_log() -> None:
    log_a, log_b = new_log(), new_log()
    e1, e2 = chain(ALICE, 2)
    (b2,) = chain(ALICE, 1, after=e1, data={"other": 1})
    for entry in (e1, e2, b2):
        log_a.ingest(entry.envelope)
    proof = log_a.forks[ALICE.key]
    log_b.ingest(e1.envelope)
    log_b.ingest(e2.envelope)
    result = log_b.ingest_fork_proof(proof.envelopes())
    assert result.fork is not None and result.removed == [e2]
    assert log_b.frozen_at(ALICE.key) == 2
    assert log_b.summary() == log_a.summary()
    # The same proof again changes nothing.
    assert log_b.ingest_fork_proof(proof.envelopes()).duplicate


def test_an_earlier_fork_replaces_a_later_one_and_not_the_reverse() -> None:
    e1, e2, e3 = chain(ALICE, 3)
    (b2,) = chain(ALICE, 1, after=e1, data={"b": 1})
    (c3,) = chain(ALICE, 1, after=e2, data={"c": 1})
    late = [e3.envelope, c3.envelope]
    early = [e2.envelope, b2.envelope]
    log = new_log()
    for entry in (e1, e2):
        log.ingest(entry.envelope)
    log.ingest_fork_proof(late)
    assert log.frozen_at(ALICE.key) == 3
    assert log.ingest_fork_proof(early).fork is not None
    assert log.frozen_at(ALICE.key) == 2 and log.feed(ALICE.key) == [e1]
    assert log.ingest_fork_proof(late).duplicate
    assert log.frozen_at(ALICE.key) == 2


def test_bad_fork_proofs_are_refused_and_change_nothing() -> None:
    e1, e2 = chain(ALICE, 2)
    (b2,) = chain(ALICE, 1, after=e1, data={"other": 1})
    (bob1,) = chain(BOB, 1)
    body, _ = unpack(b2.envelope)
    cases: list[tuple[str, list[bytes], type[RemoteProtocolError]]] = [
        ("one entry", [e2.envelope], BadForkProof),
        ("three entries", [e1.envelope, e2.envelope, b2.envelope], BadForkProof),
        ("same entry twice", [e2.envelope, e2.envelope], BadForkProof),
        ("different seqs", [e1.envelope, b2.envelope], BadForkProof),
        ("different authors", [e1.envelope, bob1.envelope], BadForkProof),
        ("forged side", [e2.envelope, pack([body, bytes(64)])], BadSignature),
        ("outsider's entries", [x.envelope for x in chain(CAROL, 1)] * 2, UnknownAuthor),
        ("garbage", [b"\x00", b"\x01"], MalformedFrame),
    ]
    for name, envelopes, error in cases:
        log = new_log()
        log.ingest(e1.envelope)
        log.ingest(e2.envelope)
        before = observe(log)
        with pytest.raises(RemoteProtocolError) as caught:
            log.ingest_fork_proof(envelopes)
        assert isinstance(caught.value, error), name
        assert observe(log) == before, name


def test_fork_proof_travels_between_sessions() -> None:
    """A proof found by one Session reaches another, which accepts it."""
    net = FakeNetwork.meeting(3)
    alice, bob, carol = net
    a2 = bob.raise_hand()
    net.drop_from(bob.me)
    from fakenet import entries_frame, forge_next

    b2 = forge_next(bob, "hand.lower", {}, seq=a2.seq, prev=a2.prev, lam=a2.lam)
    net.send_now(bob.me, alice.me, entries_frame(net.sessions[alice.me].mid, a2.envelope))
    found = net.send_now(bob.me, alice.me, entries_frame(alice.mid, b2.envelope))
    assert forks(found) and alice.log.frozen_at(bob.me) == a2.seq
    # Alice broadcast the proof; Carol had nothing of Bob's at that seq.
    to_carol = [m for m in net.in_flight if m.dst == carol.me]
    assert any(
        m.payload == fork_frame(alice.mid, *alice.log.forks[bob.me].envelopes()) for m in to_carol
    )
    net.deliver_all()
    assert carol.log.frozen_at(bob.me) == a2.seq
    assert not codes(net.events[carol.me])
    assert carol.digest() == alice.digest()
