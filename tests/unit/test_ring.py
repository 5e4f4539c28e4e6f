"""Linkable ring signatures (core/ring.py, SPEC §13.1): correctness, linking,
every rejection a verifier must make, the signer's misuse errors, and the
stored vectors (protocol/vectors/ring.json) byte for byte.

Adversarial inputs are built here from real signatures: torsion points added
to tags and keys, scalars pushed past L, bits flipped in every field, rings
reordered, events and messages swapped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import pathlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl import bindings

from relsec_p2p.core import ring
from relsec_p2p.core.errors import LocalProtocolError, RemoteProtocolError
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.ring import BadRingSignature, link_tag, sign, signature_size, verify

L = 2**252 + 27742317777372353535851937790883648493
IDENTITY = bytes([1]) + bytes(31)
# A point of order 8 (its multiples are the whole torsion subgroup).
T8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
POLL = b"poll-1" + bytes(26)
OTHER_POLL = b"poll-2" + bytes(26)
VECTORS = pathlib.Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "ring.json"


def members(n: int, offset: int = 0) -> list[Identity]:
    return [Identity.from_seed((offset + i + 1).to_bytes(2, "little") * 16) for i in range(n)]


def ring_of(people: list[Identity]) -> list[bytes]:
    return sorted(p.ring_key for p in people)


def reason_of(message: bytes, keys: list[bytes], signature: bytes, event: bytes) -> str:
    with pytest.raises(BadRingSignature) as info:
        verify(message, keys, signature, event)
    assert info.value.code == "bad_ring_signature"
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.reason in ring.REASONS
    return info.value.reason


def torsion_points() -> list[bytes]:
    """k*T8 for k = 1..7, by repeated addition (libsodium's scalarmult refuses them)."""
    points = [T8]
    for _ in range(6):
        points.append(bindings.crypto_core_ed25519_add(points[-1], T8))
    return points


def scalar(value: int) -> bytes:
    return value.to_bytes(32, "little")


def as_int(data: bytes) -> int:
    return int.from_bytes(data, "little")


# Four members and one signature that most rejection tests tamper with.
FOUR = members(4)
KEYS = ring_of(FOUR)
SIGNER = FOUR[2]
MESSAGE = b"round 7: agree"
SIG = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL)
TAG = SIG[:32]


# --- correctness --------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 9))
def test_every_member_of_small_rings_can_sign(n: int) -> None:
    people = members(n)
    keys = ring_of(people)
    for person in people:
        signature = sign(b"hello", keys, person.ring_secret, POLL)
        assert len(signature) == signature_size(n) == 64 + 32 * n
        assert verify(b"hello", keys, signature, POLL) == link_tag(person.ring_secret, POLL)


@pytest.mark.parametrize("n", [20, 50, 256])
def test_larger_rings(n: int) -> None:
    people = members(n, offset=100)
    keys = ring_of(people)
    for person in (people[0], people[-1]):
        signature = sign(b"m", keys, person.ring_secret, POLL)
        assert verify(b"m", keys, signature, POLL) == link_tag(person.ring_secret, POLL)


def test_the_ring_order_is_the_callers() -> None:
    keys = [p.ring_key for p in reversed(FOUR)]  # not sorted: still a valid ring
    signature = sign(MESSAGE, keys, SIGNER.ring_secret, POLL)
    assert verify(MESSAGE, keys, signature, POLL) == TAG
    assert reason_of(MESSAGE, sorted(keys), signature, POLL) == "mismatch"


def test_signatures_are_fresh_each_time_but_carry_one_tag() -> None:
    again = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL)
    assert again != SIG
    assert again[:32] == TAG


def test_signature_size_bounds() -> None:
    assert signature_size(1) == 96
    assert signature_size(256) == 64 + 32 * 256
    for n in (0, 257, -1):
        with pytest.raises(LocalProtocolError):
            signature_size(n)


# --- linking --------------------------------------------------------------------------


def test_same_member_same_event_same_tag_whatever_the_message_or_ring() -> None:
    bigger = ring_of([*FOUR, *members(3, offset=50)])  # the roster grew mid-poll
    first = verify(MESSAGE, KEYS, SIG, POLL)
    second = verify(
        b"round 8: block", bigger, sign(b"round 8: block", bigger, SIGNER.ring_secret, POLL), POLL
    )
    assert first == second == link_tag(SIGNER.ring_secret, POLL)


def test_tags_differ_across_members_and_events() -> None:
    people = members(5)
    tags = [link_tag(p.ring_secret, e) for p in people for e in (POLL, OTHER_POLL, b"")]
    assert len(set(tags)) == len(tags)
    for tag in tags:
        assert bindings.crypto_core_ed25519_is_valid_point(tag)


def test_tags_of_two_members_across_two_events_show_no_relation() -> None:
    # Unlinkability rests on DDH (SPEC §13.1.3); here we check the relations a
    # careless design would leak: equal tags, or equal differences between
    # events (which a tag base shared by all events, or x*Hp(event) + x*B, gives).
    a, b = FOUR[0], FOUR[1]
    a1, a2 = link_tag(a.ring_secret, POLL), link_tag(a.ring_secret, OTHER_POLL)
    b1, b2 = link_tag(b.ring_secret, POLL), link_tag(b.ring_secret, OTHER_POLL)
    assert len({a1, a2, b1, b2}) == 4
    sub = bindings.crypto_core_ed25519_sub
    assert sub(a1, a2) != sub(b1, b2)
    assert sub(a1, b1) != sub(a2, b2)
    assert a.ring_key not in {a1, a2} and b.ring_key not in {b1, b2}


def test_voting_twice_counts_once() -> None:
    """Two ballots by one member in one poll carry one tag: a tally keyed by tag
    keeps one (the caller decides which; SPEC §6.5 takes the latest round)."""
    ballots = [
        (b"round 1: agree", sign(b"round 1: agree", KEYS, SIGNER.ring_secret, POLL)),
        (b"round 1: block", sign(b"round 1: block", KEYS, SIGNER.ring_secret, POLL)),
        (b"round 1: agree", sign(b"round 1: agree", KEYS, FOUR[0].ring_secret, POLL)),
    ]
    tally = {verify(message, KEYS, signature, POLL): message for message, signature in ballots}
    assert len(tally) == 2
    assert tally[link_tag(SIGNER.ring_secret, POLL)] == b"round 1: block"


def test_replaying_a_vote_in_a_later_round_fails() -> None:
    """The caller puts the round id in the message; an old ballot checked against
    the message of the current round does not verify."""
    old = sign(b"round 3|agree", KEYS, SIGNER.ring_secret, POLL)
    assert verify(b"round 3|agree", KEYS, old, POLL) == TAG
    assert reason_of(b"round 4|agree", KEYS, old, POLL) == "mismatch"


# --- rejections: ring -----------------------------------------------------------------


def test_empty_and_oversized_rings() -> None:
    assert reason_of(MESSAGE, [], SIG, POLL) == "ring_size"
    crowd = members(257, offset=300)
    big = ring_of(crowd)
    assert reason_of(MESSAGE, big, SIG, POLL) == "ring_size"
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, big, crowd[0].ring_secret, POLL)
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, [], SIGNER.ring_secret, POLL)


@pytest.mark.parametrize(
    ("note", "bad"),
    [
        ("order 8", T8),
        ("identity", IDENTITY),
        ("key plus torsion", bindings.crypto_core_ed25519_add(KEYS[3], T8)),
        ("31 bytes", KEYS[3][:31]),
        ("33 bytes", KEYS[3] + b"\x00"),
        ("not bytes", KEYS[3].hex()),
        ("y = p, not canonical", bytes.fromhex("ed" + "ff" * 30 + "7f")),
        ("not on the curve", bytes([2]) + bytes(31)),
    ],
)
def test_invalid_ring_keys(note: str, bad: Any) -> None:
    if isinstance(bad, bytes) and len(bad) == 32:
        assert not bindings.crypto_core_ed25519_is_valid_point(bad), note
    keys = [*KEYS[:3], bad]
    assert reason_of(MESSAGE, keys, SIG, POLL) == "ring_key"
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, keys, SIGNER.ring_secret, POLL)


def test_duplicate_ring_keys() -> None:
    keys = [KEYS[0], *KEYS[:3]]
    assert reason_of(MESSAGE, keys, SIG, POLL) == "duplicate_key"
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, [*KEYS, KEYS[0]], SIGNER.ring_secret, POLL)


def test_every_reordering_of_the_ring_fails() -> None:
    for order in itertools.permutations(KEYS):
        if list(order) != KEYS:
            assert reason_of(MESSAGE, list(order), SIG, POLL) == "mismatch"


def test_another_ring_fails() -> None:
    outsider = members(1, offset=40)[0].ring_key
    assert reason_of(MESSAGE, [*KEYS[:3], outsider], SIG, POLL) == "mismatch"
    assert reason_of(MESSAGE, [*KEYS, outsider], SIG, POLL) == "length"
    assert reason_of(MESSAGE, KEYS[:3], SIG, POLL) == "length"


# --- rejections: the signature bytes ------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 32, 64, len(SIG) - 1, len(SIG) + 1, len(SIG) + 32])
def test_wrong_length(length: int) -> None:
    data = (SIG * 2)[:length]
    assert reason_of(MESSAGE, KEYS, data, POLL) == "length"


def test_signature_not_bytes() -> None:
    assert reason_of(MESSAGE, KEYS, bytearray(SIG), POLL) == "length"  # type: ignore[arg-type]


@pytest.mark.parametrize("k", range(1, 8))
def test_tag_with_a_torsion_component_is_rejected(k: int) -> None:
    """The CryptoNote key-image bug: tag + k*T8 would be an eighth of a second tag
    for one key if only the cofactor-cleared relation were checked."""
    bad_tag = bindings.crypto_core_ed25519_add(TAG, torsion_points()[k - 1])
    assert bad_tag != TAG
    assert bindings.crypto_core_ed25519_add(bad_tag, torsion_points()[7 - k]) == TAG
    assert reason_of(MESSAGE, KEYS, bad_tag + SIG[32:], POLL) == "tag"


def test_torsion_points_are_what_the_test_claims() -> None:
    points = torsion_points()
    assert len(set(points)) == 7 and IDENTITY not in points
    assert bindings.crypto_core_ed25519_add(points[-1], T8) == IDENTITY  # 8*T8 = 0
    assert points[3] == bindings.crypto_core_ed25519_sub(IDENTITY, points[3])  # 4*T8 = -4*T8


@pytest.mark.parametrize(
    "bad_tag",
    [
        IDENTITY,
        T8,
        bytes(32),
        bytes.fromhex("ed" + "ff" * 30 + "7f"),  # y = p
        bytes.fromhex("ee" + "ff" * 30 + "7f"),  # y = p + 1, the identity not reduced
        IDENTITY[:31] + b"\x80",  # the identity with the sign bit set
    ],
)
def test_tag_not_a_valid_point(bad_tag: bytes) -> None:
    assert reason_of(MESSAGE, KEYS, bad_tag + SIG[32:], POLL) == "tag"


def test_a_valid_tag_of_someone_else_fails() -> None:
    for other in (FOUR[0], FOUR[1], FOUR[3]):
        forged = link_tag(other.ring_secret, POLL) + SIG[32:]
        assert reason_of(MESSAGE, KEYS, forged, POLL) == "mismatch"
    moved = link_tag(SIGNER.ring_secret, OTHER_POLL) + SIG[32:]
    assert reason_of(MESSAGE, KEYS, moved, POLL) == "mismatch"


def with_scalar(signature: bytes, index: int, value: int) -> bytes:
    """``index`` 0 is c_0, 1.. are r_0, r_1, ..."""
    start = 32 + 32 * index
    return signature[:start] + scalar(value) + signature[start + 32 :]


@pytest.mark.parametrize("index", range(5))
def test_non_canonical_and_zero_scalars(index: int) -> None:
    current = as_int(SIG[32 + 32 * index : 64 + 32 * index])
    for value in (current + L, L, 0, 2**256 - 1, current + 2 * L):
        if value < 2**256:
            assert reason_of(MESSAGE, KEYS, with_scalar(SIG, index, value), POLL) == "scalar"


def test_every_single_bit_flip_is_rejected() -> None:
    people = members(2, offset=60)
    keys = ring_of(people)
    signature = sign(b"m", keys, people[1].ring_secret, POLL)
    seen: dict[str, set[str]] = {"tag": set(), "c_0": set(), "r": set()}
    for bit in range(len(signature) * 8):
        flipped = bytearray(signature)
        flipped[bit // 8] ^= 1 << (bit % 8)
        reason = reason_of(b"m", keys, bytes(flipped), POLL)
        field = "tag" if bit < 256 else "c_0" if bit < 512 else "r"
        seen[field].add(reason)
    assert seen["tag"] <= {"tag", "mismatch"} and "tag" in seen["tag"]
    assert seen["c_0"] == {"scalar", "mismatch"}
    assert seen["r"] == {"scalar", "mismatch"}


def test_another_event_or_message_fails() -> None:
    assert reason_of(MESSAGE, KEYS, SIG, OTHER_POLL) == "mismatch"
    assert reason_of(MESSAGE, KEYS, SIG, POLL + b"\x00") == "mismatch"
    assert reason_of(MESSAGE + b"\x00", KEYS, SIG, POLL) == "mismatch"
    assert reason_of(b"", KEYS, SIG, POLL) == "mismatch"


def test_length_prefixes_keep_event_and_message_apart() -> None:
    # Moving bytes from the end of the event to the start of the message must
    # change the transcript (no ambiguity in the challenge input).
    signature = sign(b"cd", KEYS, SIGNER.ring_secret, b"ab")
    assert verify(b"cd", KEYS, signature, b"ab")
    assert reason_of(b"bcd", KEYS, signature, b"a") == "mismatch"


# --- identity results ---------------------------------------------------------------------


def test_a_zero_challenge_while_verifying_is_an_identity_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A computed challenge of zero (probability ~2^-252) makes libsodium refuse
    the multiplication; verify turns that into a rejection, not a crash."""
    real = bindings.crypto_core_ed25519_scalar_reduce  # every hash-to-scalar of ring goes here
    calls = 0

    def zero_first_computed_challenge(wide: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return bytes(32) if calls == 1 else real(wide)

    monkeypatch.setattr(
        bindings, "crypto_core_ed25519_scalar_reduce", zero_first_computed_challenge
    )
    assert reason_of(MESSAGE, KEYS, SIG, POLL) == "identity"


@pytest.mark.parametrize("zero_at", range(8))
def test_signing_starts_again_after_a_zero_scalar(
    monkeypatch: pytest.MonkeyPatch, zero_at: int
) -> None:
    """Force the zero_at-th reduced hash to zero: with four keys, even calls are
    the nonces (alpha, then three responses), odd calls the challenges, the last
    one c_pi, which signing never multiplies and must check by itself. Sign
    draws fresh scalars and still returns a signature that verifies."""
    real = bindings.crypto_core_ed25519_scalar_reduce
    calls = 0

    def one_zero(wide: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return bytes(32) if calls == zero_at + 1 else real(wide)

    draws = 0
    source = ring.seeded_rng(b"retry")

    def counted(n: int) -> bytes:
        nonlocal draws
        draws += 1
        return source(n)

    monkeypatch.setattr(bindings, "crypto_core_ed25519_scalar_reduce", one_zero)
    signature = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL, rng=counted)
    monkeypatch.undo()
    assert verify(MESSAGE, KEYS, signature, POLL) == TAG
    assert draws > len(KEYS)  # the first attempt was thrown away


def test_signing_starts_again_when_the_own_response_is_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = bindings.crypto_core_ed25519_scalar_sub
    calls = 0

    def zero_once(a: bytes, b: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return bytes(32) if calls == 1 else real(a, b)

    monkeypatch.setattr(bindings, "crypto_core_ed25519_scalar_sub", zero_once)
    signature = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL)
    monkeypatch.undo()
    assert calls == 2
    assert verify(MESSAGE, KEYS, signature, POLL) == TAG


def test_event_whose_base_is_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ring, "event_base", lambda event: IDENTITY)
    assert reason_of(MESSAGE, KEYS, SIG, POLL) == "event_base"
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL)
    with pytest.raises(LocalProtocolError):
        link_tag(SIGNER.ring_secret, POLL)


# --- the signer's mistakes -------------------------------------------------------------


def test_signer_not_in_the_ring() -> None:
    outsider = members(1, offset=70)[0]
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, KEYS, outsider.ring_secret, POLL)


@pytest.mark.parametrize(
    "secret",
    [bytes(32), scalar(L), scalar(L + 5), b"\x01" * 31, b"\x01" * 33, "01" * 32],
)
def test_bad_secrets(secret: Any) -> None:
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, KEYS, secret, POLL)
    with pytest.raises(LocalProtocolError):
        link_tag(secret, POLL)


def test_message_and_event_must_be_bytes() -> None:
    with pytest.raises(LocalProtocolError):
        sign("text", KEYS, SIGNER.ring_secret, POLL)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        verify(MESSAGE, KEYS, SIG, "poll")  # type: ignore[arg-type]


def test_a_short_random_source_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL, rng=lambda n: bytes(n - 1))


def test_a_broken_random_source_does_not_leak_the_secret() -> None:
    """With a constant random source, a plain Schnorr-style signer would reuse its
    nonce across messages, and r1 - r2 = (c2 - c1) * x would give x away. The
    hedged nonce (SPEC §13.1.5) depends on the message, so it does not."""
    me = [SIGNER.ring_key]

    def stuck(n: int) -> bytes:
        return bytes(n)

    first = sign(b"one", me, SIGNER.ring_secret, POLL, rng=stuck)
    second = sign(b"two", me, SIGNER.ring_secret, POLL, rng=stuck)
    verify(b"one", me, first, POLL)
    verify(b"two", me, second, POLL)
    c1, r1 = as_int(first[32:64]), as_int(first[64:96])
    c2, r2 = as_int(second[32:64]), as_int(second[64:96])
    guess = (r1 - r2) * pow(c2 - c1, -1, L) % L
    assert guess != as_int(SIGNER.ring_secret)
    # ... while the same stuck source on the same inputs does repeat itself.
    assert sign(b"one", me, SIGNER.ring_secret, POLL, rng=stuck) == first


def test_a_predictable_random_source_does_not_let_outsiders_compute_the_nonce() -> None:
    """Someone who knows the random bytes and everything public (the transcript)
    still cannot recompute alpha: the secret is an input of the nonce hash. With
    n = 1, r_0 = alpha - c_0 * x, so a computable alpha would give x."""
    me = [SIGNER.ring_key]
    signature = sign(b"one", me, SIGNER.ring_secret, POLL, rng=lambda n: bytes(n))
    tag, c0, r0 = signature[:32], as_int(signature[32:64]), as_int(signature[64:96])
    public = ring.transcript(b"one", me, tag, POLL)
    wide = hashlib.blake2b(ring.NONCE_LABEL + public + bytes(4) + bytes(64), digest_size=64)
    alpha_guess = as_int(wide.digest()) % L
    assert (alpha_guess - r0) * pow(c0, -1, L) % L != as_int(SIGNER.ring_secret)
    # The same computation with the secret in its place (SPEC §13.1.5) does find alpha.
    wide = hashlib.blake2b(
        ring.NONCE_LABEL + SIGNER.ring_secret + public + bytes(4) + bytes(64), digest_size=64
    )
    alpha = as_int(wide.digest()) % L
    assert (alpha - r0) * pow(c0, -1, L) % L == as_int(SIGNER.ring_secret)


def test_seeded_signing_is_reproducible() -> None:
    one = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL, rng=ring.seeded_rng(b"s"))
    two = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL, rng=ring.seeded_rng(b"s"))
    three = sign(MESSAGE, KEYS, SIGNER.ring_secret, POLL, rng=ring.seeded_rng(b"t"))
    assert one == two != three
    assert one[:32] == three[:32] == TAG


# --- properties -----------------------------------------------------------------------


@st.composite
def rings(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], int]:
    """Distinct nonzero secrets, their keys in a random order, a signer index."""
    wides = draw(st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=6))
    secrets: list[bytes] = []
    for wide in wides:
        secret = bindings.crypto_core_ed25519_scalar_reduce(wide)
        if any(secret) and secret not in secrets:
            secrets.append(secret)
    if not secrets:
        secrets = [scalar(1)]
    keys = [bindings.crypto_scalarmult_ed25519_base_noclamp(s) for s in secrets]
    return secrets, keys, draw(st.integers(0, len(keys) - 1))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(material=rings(), message=st.binary(max_size=300), event=st.binary(max_size=64))
def test_property_sign_verify(
    material: tuple[list[bytes], list[bytes], int], message: bytes, event: bytes
) -> None:
    secrets, keys, index = material
    signature = sign(message, keys, secrets[index], event)
    assert verify(message, keys, signature, event) == link_tag(secrets[index], event)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    material=rings(),
    message=st.binary(max_size=100),
    position=st.integers(min_value=0),
    change=st.integers(1, 255),
)
def test_property_any_changed_byte_is_rejected(
    material: tuple[list[bytes], list[bytes], int], message: bytes, position: int, change: int
) -> None:
    secrets, keys, index = material
    signature = bytearray(sign(message, keys, secrets[index], POLL))
    signature[position % len(signature)] ^= change
    with pytest.raises(BadRingSignature):
        verify(message, keys, bytes(signature), POLL)


@settings(max_examples=30, deadline=None)
@given(material=rings(), message=st.binary(max_size=50), other=st.binary(max_size=50))
def test_property_other_message_rejected(
    material: tuple[list[bytes], list[bytes], int], message: bytes, other: bytes
) -> None:
    secrets, keys, index = material
    signature = sign(message, keys, secrets[index], POLL)
    if other != message:
        assert reason_of(other, keys, signature, POLL) == "mismatch"


# --- vectors (protocol/vectors/ring.json) ------------------------------------------------

VEC: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
SECRETS = {row["name"]: bytes.fromhex(row["ring_secret_hex"]) for row in VEC["members"]}


def test_vector_labels_and_members() -> None:
    labels = VEC["labels"]
    assert labels["event_hex"] == b"relsec/v2/ring-event\x00".hex() == ring.EVENT_LABEL.hex()
    assert labels["challenge_hex"] == b"relsec/v2/ring-challenge\x00".hex()
    assert labels["nonce_hex"] == b"relsec/v2/ring-nonce\x00".hex()
    assert labels["test_rng_hex"] == b"relsec/v2/ring-test-rng\x00".hex()
    assert VEC["max_ring"] == 256
    for row in VEC["members"]:
        member = Identity.from_seed(bytes.fromhex(row["seed_hex"]))
        assert member.ring_secret.hex() == row["ring_secret_hex"]
        assert member.ring_key.hex() == row["ring_key_hex"]


@pytest.mark.parametrize("case", VEC["from_uniform"], ids=lambda c: c["input_hex"][:8])
def test_vector_from_uniform(case: dict[str, str]) -> None:
    point = bindings.crypto_core_ed25519_from_uniform(bytes.fromhex(case["input_hex"]))
    assert point.hex() == case["point_hex"]


@pytest.mark.parametrize("case", VEC["event_bases"], ids=lambda c: c["event_hex"][:8] or "empty")
def test_vector_event_base(case: dict[str, str]) -> None:
    event = bytes.fromhex(case["event_hex"])
    wide = hashlib.blake2b(bytes.fromhex(VEC["labels"]["event_hex"]) + event, digest_size=64)
    assert wide.hexdigest() == case["wide_hex"]
    first = bindings.crypto_core_ed25519_from_uniform(wide.digest()[:32])
    second = bindings.crypto_core_ed25519_from_uniform(wide.digest()[32:])
    assert (first.hex(), second.hex()) == (case["first_hex"], case["second_hex"])
    assert bindings.crypto_core_ed25519_add(first, second).hex() == case["base_hex"]
    assert ring.event_base(event).hex() == case["base_hex"]


@pytest.mark.parametrize("case", VEC["link_tags"], ids=lambda c: c["member"] + c["event_hex"][:4])
def test_vector_link_tag(case: dict[str, str]) -> None:
    event = bytes.fromhex(case["event_hex"])
    assert link_tag(SECRETS[case["member"]], event).hex() == case["tag_hex"]
    base = next(b for b in VEC["event_bases"] if b["event_hex"] == case["event_hex"])
    product = bindings.crypto_scalarmult_ed25519_noclamp(
        SECRETS[case["member"]], bytes.fromhex(base["base_hex"])
    )
    assert product.hex() == case["tag_hex"]


def test_vector_test_rng() -> None:
    source = ring.seeded_rng(b"\x07" * 32)
    label = bytes.fromhex(VEC["labels"]["test_rng_hex"])
    for k in range(3):
        block = label + b"\x07" * 32 + k.to_bytes(4, "little")
        assert source(64) == hashlib.blake2b(block, digest_size=64).digest()


@pytest.mark.parametrize("case", VEC["valid"], ids=lambda c: c["note"])
def test_vector_signature(case: dict[str, Any]) -> None:
    keys = [bytes.fromhex(k) for k in case["ring_hex"]]
    event = bytes.fromhex(case["event_hex"])
    message = bytes.fromhex(case["message_hex"])
    secret = SECRETS[case["signer"]]
    assert (
        keys.index(bindings.crypto_scalarmult_ed25519_base_noclamp(secret)) == case["signer_index"]
    )
    source = ring.seeded_rng(bytes.fromhex(case["rng_seed_hex"]))
    draws = 0

    def counted(n: int) -> bytes:
        nonlocal draws
        draws += 1
        assert n == 64
        return source(n)

    signature = sign(message, keys, secret, event, rng=counted)
    assert signature.hex() == case["signature_hex"]
    assert draws == case["draws"] == len(keys)
    tag = bytes.fromhex(case["tag_hex"])
    assert ring.transcript(message, keys, tag, event).hex() == case["transcript_hex"]
    assert verify(message, keys, bytes.fromhex(case["signature_hex"]), event) == tag
    assert signature[:32] == tag


def test_vector_tags_link_as_described() -> None:
    by_note = {c["note"]: c for c in VEC["valid"]}
    bob = by_note["four members"]
    assert by_note["bob again, same poll, later round: same tag"]["tag_hex"] == bob["tag_hex"]
    assert by_note["bob in another poll: another tag"]["tag_hex"] != bob["tag_hex"]
    assert by_note["carol in the first poll: her own tag"]["tag_hex"] != bob["tag_hex"]


@pytest.mark.parametrize("case", VEC["invalid"], ids=lambda c: c["note"])
def test_vector_rejections(case: dict[str, Any]) -> None:
    keys = [bytes.fromhex(k) for k in case["ring_hex"]]
    with pytest.raises(BadRingSignature) as info:
        verify(
            bytes.fromhex(case["message_hex"]),
            keys,
            bytes.fromhex(case["signature_hex"]),
            bytes.fromhex(case["event_hex"]),
        )
    assert (info.value.code, info.value.reason) == (case["code"], case["reason"])


def test_vector_rejections_cover_every_reason_that_can_be_built() -> None:
    reasons = {case["reason"] for case in VEC["invalid"]}
    # event_base and identity need a hash to hit a chosen value: tested above.
    assert reasons == set(ring.REASONS) - {"event_base", "identity"}
