"""The link handshake and the join handshake against their vectors
(protocol/vectors/link.json, duplicate_links.json, admission.json; SPEC §11, §12).

Each vector is checked twice: recomputed from the SPEC's formulas with the
primitives alone (libsodium through PyNaCl, hashlib, hmac), which checks that
the text and the vectors agree; and reproduced byte for byte by the
implementation (``core.link``, ``core.admission``), with its randomness fixed
to the vectors' values. The secretstream header is random, so the stream is
tested by round trip instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import spake2
from nacl import bindings, pwhash
from nacl.secret import SecretBox
from nacl.signing import SigningKey, VerifyKey

from relsec_p2p.core import admission, joincode, safety
from relsec_p2p.core import link as link_core
from relsec_p2p.core.codec import pack, unpack
from relsec_p2p.core.errors import LocalProtocolError, RelsecError
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.link import (
    HANDSHAKE_LIMITS,
    Handshake,
    LinkKeys,
    StreamReceiver,
    StreamSender,
)
from relsec_p2p.core.wordlist import ALIASES, WORDS

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "protocol" / "vectors"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert document["description"]
    return document


def b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


ENTRIES = load("entries.json")
SEEDS = {row["name"]: b(row["seed_hex"]) for row in ENTRIES["identities"]}
KEYS = {row["name"]: b(row["key_hex"]) for row in ENTRIES["identities"]}


def identity(name: str) -> Identity:
    return Identity.from_seed(SEEDS[name])


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(RelsecError) as info:
        call()
    return info.value.code


# --- link.json ---------------------------------------------------------------------

LINK = load("link.json")
HS = LINK["handshake"]
LABELS = LINK["labels"]


def blake256(data: bytes, key: bytes = b"") -> bytes:
    return hashlib.blake2b(data, key=key, digest_size=32).digest()


def test_link_labels_are_the_implementations() -> None:
    assert link_core.LINK_CONTEXT_INITIATOR == b(LABELS["initiator_context_hex"])
    assert link_core.LINK_CONTEXT_RESPONDER == b(LABELS["responder_context_hex"])
    assert b(LABELS["transcript_hex"]) == b"relsec/v2/link\x00"
    assert b(LABELS["initiator_context_hex"]) == b"relsec/v2/link-initiator\x00"
    assert b(LABELS["responder_context_hex"]) == b"relsec/v2/link-responder\x00"


def test_link_handshake_from_the_spec_formulas() -> None:
    """Every value of link.json's handshake, recomputed from SPEC §11.3-§11.6."""
    mid = b(LINK["mid_hex"])
    ini, res = HS["initiator"], HS["responder"]
    e_i = bindings.crypto_scalarmult_base(b(ini["ephemeral_secret_hex"]))
    e_r = bindings.crypto_scalarmult_base(b(res["ephemeral_secret_hex"]))
    assert (e_i.hex(), e_r.hex()) == (ini["ephemeral_public_hex"], res["ephemeral_public_hex"])
    shared = bindings.crypto_scalarmult(b(ini["ephemeral_secret_hex"]), e_r)
    assert shared == bindings.crypto_scalarmult(b(res["ephemeral_secret_hex"]), e_i)
    assert shared.hex() == HS["shared_secret_hex"]
    transcript = blake256(b"relsec/v2/link\x00" + mid + e_i + e_r)
    assert transcript.hex() == HS["transcript_hash_hex"]
    assert pack({"t": "hi1", "e": e_i}).hex() == HS["hi1_hex"]

    key_i, key_r = KEYS[ini["name"]], KEYS[res["name"]]
    assert (key_i.hex(), key_r.hex()) == (ini["key_hex"], res["key_hex"])
    sides = (
        # box, label, context, signer, own key, epoch, the peer key signed first
        ("responder_box", b"box-r", "responder_context_hex", res, key_r, b""),
        ("initiator_box", b"box-i", "initiator_context_hex", ini, key_i, key_r),
    )
    for name, label, context, who, key, extra in sides:
        row = HS[name]
        box_key = blake256(label + transcript, key=shared)
        assert box_key.hex() == row["box_key_hex"], name
        signed = transcript + extra + key + who["epoch"].to_bytes(8, "big")
        assert signed.hex() == row["signed_hex"], name
        signature = SigningKey(SEEDS[who["name"]]).sign(b(LABELS[context]) + signed).signature
        assert signature.hex() == row["signature_hex"], name
        VerifyKey(key).verify(b(LABELS[context]) + signed, signature)
        inner = pack({"epoch": who["epoch"], "key": key, "sig": signature})
        assert inner.hex() == row["inner_hex"], name
        box = SecretBox(box_key).encrypt(inner, nonce=bytes(24)).ciphertext
        assert box.hex() == row["box_hex"], name
        assert len(box) == len(inner) + SecretBox.MACBYTES

    hi2 = pack({"box": b(HS["responder_box"]["box_hex"]), "e": e_r, "t": "hi2"})
    hi3 = pack({"box": b(HS["initiator_box"]["box_hex"]), "t": "hi3"})
    assert (hi2.hex(), hi3.hex()) == (HS["hi2_hex"], HS["hi3_hex"])
    final = blake256(transcript + key_r + key_i)
    assert final.hex() == HS["final_hash_hex"]
    assert blake256(b"stream-i2r" + final, key=shared).hex() == HS["i2r_key_hex"]
    assert blake256(b"stream-r2i" + final, key=shared).hex() == HS["r2i_key_hex"]


def make_handshake(
    role: str, me: str, epoch: int, mid: bytes, secret: bytes, accept: list[str]
) -> Handshake:
    return Handshake(
        identity(me),
        mid,
        initiator=role == "initiator",
        epoch=epoch,
        accept={KEYS[name] for name in accept}.__contains__,
        ephemeral_secret=secret,
    )


def happy_pair() -> tuple[Handshake, Handshake]:
    ini, res = HS["initiator"], HS["responder"]
    mid = b(LINK["mid_hex"])
    initiator = make_handshake(
        "initiator", ini["name"], ini["epoch"], mid, b(ini["ephemeral_secret_hex"]), [res["name"]]
    )
    responder = make_handshake(
        "responder", res["name"], res["epoch"], mid, b(res["ephemeral_secret_hex"]), [ini["name"]]
    )
    return initiator, responder


def test_link_handshake_implementation_matches() -> None:
    initiator, responder = happy_pair()
    assert initiator.start().hex() == HS["hi1_hex"]
    hi2 = responder.receive(b(HS["hi1_hex"]))
    assert hi2 is not None and hi2.hex() == HS["hi2_hex"]
    assert not responder.done
    hi3 = initiator.receive(b(HS["hi2_hex"]))
    assert hi3 is not None and hi3.hex() == HS["hi3_hex"]
    assert responder.receive(b(HS["hi3_hex"])) is None
    ini, res = HS["initiator"], HS["responder"]
    i2r, r2i = b(HS["i2r_key_hex"]), b(HS["r2i_key_hex"])
    link_id = b(HS["transcript_hash_hex"])  # the link id of SPEC §11.9, the same at both ends
    assert initiator.result == LinkKeys(KEYS[res["name"]], res["epoch"], i2r, r2i, link_id)
    assert responder.result == LinkKeys(KEYS[ini["name"]], ini["epoch"], r2i, i2r, link_id)


@pytest.mark.parametrize("case", LINK["refused"], ids=lambda c: c["note"])
def test_link_refused(case: dict[str, Any]) -> None:
    handshake = make_handshake(
        case["role"],
        case["me"],
        case["epoch"],
        b(case["mid_hex"]),
        b(case["ephemeral_secret_hex"]),
        case["accept"],
    )
    if case["role"] == "initiator":
        assert handshake.start().hex() == case["start_hex"]
    *answered, last = [b(x) for x in case["receive_hex"]]
    for payload, expected in zip(answered, case["replies_hex"], strict=True):
        reply = handshake.receive(payload)
        assert (None if reply is None else reply.hex()) == expected
    assert code_of(lambda: handshake.receive(last)) == case["code"]
    assert not handshake.done
    # A handshake that refused a message is dead, whatever comes next.
    with pytest.raises(RelsecError):
        handshake.receive(b(HS["hi1_hex"]))


def test_link_ephemeral_secret_is_optional_and_checked() -> None:
    alice = identity("alice")
    mid = b(LINK["mid_hex"])
    fresh = [Handshake(alice, mid, initiator=True, epoch=1, accept=bool) for _ in range(2)]
    assert fresh[0].start() != fresh[1].start()  # drawn from the OS each time
    with pytest.raises(LocalProtocolError):
        Handshake(alice, mid, initiator=True, epoch=1, accept=bool, ephemeral_secret=bytes(31))


def test_link_limits_and_stream_constants() -> None:
    stored = LINK["limits"]["handshake"]
    assert stored == {name: getattr(HANDSHAKE_LIMITS, name) for name in stored}
    stream = LINK["stream"]
    assert stream["header_bytes"] == link_core.STREAM_HEADER_BYTES == 24
    assert stream["overhead_bytes"] == link_core.STREAM_OVERHEAD == 17
    assert bytes([stream["kind_data"]]) == link_core.KIND_DATA
    assert bytes([stream["kind_ping"]]) == link_core.KIND_PING
    assert stream["max_link_frame"] == link_core.MAX_LINK_FRAME == (1 << 20) + 17 + 1
    assert stream["keepalive_s"] == link_core.KEEPALIVE_S < stream["idle_timeout_s"]
    assert stream["idle_timeout_s"] == link_core.IDLE_TIMEOUT_S
    assert stream["max_queue_bytes"] == link_core.MAX_QUEUE_BYTES


def test_link_stream_round_trip_with_the_vector_keys() -> None:
    """Each direction is a secretstream under the derived key: what one side
    seals the other opens, in order, and libsodium itself agrees."""
    initiator, responder = happy_pair()
    hi1 = initiator.start()
    hi2 = responder.receive(hi1)
    assert hi2 is not None
    hi3 = initiator.receive(hi2)
    assert hi3 is not None
    responder.receive(hi3)
    assert initiator.result is not None and responder.result is not None
    frames = [
        link_core.KIND_DATA + b"first",
        link_core.KIND_PING,
        link_core.KIND_DATA + bytes(1000),
    ]
    for sender_keys, receiver_keys in (
        (initiator.result, responder.result),
        (responder.result, initiator.result),
    ):
        sender = StreamSender(sender_keys.send_key)
        receiver = StreamReceiver(receiver_keys.receive_key)
        assert len(sender.header) == link_core.STREAM_HEADER_BYTES
        receiver.start(sender.header)
        sealed = [sender.seal(plain) for plain in frames]
        assert [len(s) - len(p) for s, p in zip(sealed, frames, strict=True)] == [17] * 3
        assert [receiver.open(s) for s in sealed] == frames
    # libsodium, driven directly with the key from the vector, reads the stream.
    sender = StreamSender(b(HS["i2r_key_hex"]))
    state = bindings.crypto_secretstream_xchacha20poly1305_state()
    bindings.crypto_secretstream_xchacha20poly1305_init_pull(
        state, sender.header, b(HS["i2r_key_hex"])
    )
    plain, tag = bindings.crypto_secretstream_xchacha20poly1305_pull(state, sender.seal(b"\x00hi"))
    assert (plain, tag) == (b"\x00hi", bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)


def test_link_stream_refuses_tampering_reordering_and_the_other_key() -> None:
    i2r, r2i = b(HS["i2r_key_hex"]), b(HS["r2i_key_hex"])
    sender = StreamSender(i2r)
    one, two = sender.seal(b"\x00one"), sender.seal(b"\x00two")

    receiver = StreamReceiver(i2r)
    receiver.start(sender.header)
    assert code_of(lambda: receiver.open(two)) == "bad_ciphertext"  # skipped a frame

    receiver = StreamReceiver(i2r)
    receiver.start(sender.header)
    assert code_of(lambda: receiver.open(one[:-1] + bytes([one[-1] ^ 1]))) == "bad_ciphertext"

    receiver = StreamReceiver(i2r)
    receiver.start(sender.header)
    assert receiver.open(one) == b"\x00one"
    assert code_of(lambda: receiver.open(one)) == "bad_ciphertext"  # a replay

    wrong_way = StreamReceiver(r2i)
    wrong_way.start(sender.header)
    assert code_of(lambda: wrong_way.open(one)) == "bad_ciphertext"

    assert code_of(lambda: StreamReceiver(i2r).start(sender.header[:23])) == "malformed"


# --- duplicate_links.json ---------------------------------------------------------

DUPLICATES = load("duplicate_links.json")


@dataclass(frozen=True)
class HeldLink:
    """A link as one end holds it: what SPEC §11.9's rule reads."""

    name: str
    peer: bytes
    initiator: bool
    link_id: bytes


def test_duplicate_link_ids_are_transcript_hashes() -> None:
    """Each link id recomputed from SPEC §11.3 (the transcript hash), and each
    ephemeral public key from its secret."""
    mid = b(DUPLICATES["mid_hex"])
    assert {name: b(key) for name, key in DUPLICATES["keys"].items()} == {
        name: KEYS[name] for name in ("alice", "bob")
    }
    for link in DUPLICATES["links"].values():
        e_i = bindings.crypto_scalarmult_base(b(link["initiator_ephemeral_secret_hex"]))
        e_r = bindings.crypto_scalarmult_base(b(link["responder_ephemeral_secret_hex"]))
        assert e_i.hex() == link["initiator_ephemeral_public_hex"]
        assert e_r.hex() == link["responder_ephemeral_public_hex"]
        assert blake256(b"relsec/v2/link\x00" + mid + e_i + e_r).hex() == link["link_id_hex"]


def test_duplicate_link_id_is_the_handshakes_transcript_hash() -> None:
    """A real handshake hands both ends the same link id: link.json's th."""
    initiator, responder = happy_pair()
    responder_hi2 = responder.receive(initiator.start())
    assert responder_hi2 is not None
    hi3 = initiator.receive(responder_hi2)
    assert hi3 is not None and responder.receive(hi3) is None
    assert initiator.result is not None and responder.result is not None
    assert initiator.result.link_id == responder.result.link_id == b(HS["transcript_hash_hex"])


def _rank_from_the_spec(name: str) -> tuple[int, bytes]:
    link = DUPLICATES["links"][name]
    lower = min(KEYS["alice"], KEYS["bob"])
    assert DUPLICATES["lower_key"] == ("alice" if lower == KEYS["alice"] else "bob")
    return (0 if KEYS[link["initiator"]] == lower else 1, b(link["link_id_hex"]))


@pytest.mark.parametrize("case", DUPLICATES["cases"], ids=lambda c: c["note"])
def test_duplicate_links(case: dict[str, Any]) -> None:
    """Every end, in every order of arrival, closes what the vector says and
    keeps the link both ends keep; the kept link is the first by SPEC §11.9."""
    assert case["kept"] == min(case["links"], key=_rank_from_the_spec)
    orders = {(view["me"], tuple(view["arrival"])) for view in case["views"]}
    assert len(orders) == len(case["views"]) == 2 * math.factorial(len(case["links"]))
    for view in case["views"]:
        me = view["me"]
        other = "bob" if me == "alice" else "alice"
        held: HeldLink | None = None
        closed: list[str] = []
        for name in view["arrival"]:
            link = DUPLICATES["links"][name]
            new = HeldLink(name, KEYS[other], link["initiator"] == me, b(link["link_id_hex"]))
            if held is None:
                held = new
                continue
            winner = link_core.keep_link(KEYS[me], [held, new])
            closed.append(new.name if winner is held else held.name)
            held = winner
        assert held is not None and held.name == case["kept"]
        assert closed == view["closed"]
        assert case["kept"] not in closed


# --- admission.json ---------------------------------------------------------------

ADMISSION = load("admission.json")
SPAKE = ADMISSION["spake2"]
JOIN_KEYS = ADMISSION["keys"]
RUN = ADMISSION["run"]


def test_wordlist_is_the_implementations() -> None:
    words = ADMISSION["wordlist"]["words"]
    assert tuple(words) == WORDS
    assert ADMISSION["wordlist"]["count"] == len(words) == 333
    assert ADMISSION["wordlist"]["aliases"] == ALIASES
    assert words == sorted(set(words))
    assert all(w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 8 for w in words)


@pytest.mark.parametrize("case", ADMISSION["parse"], ids=lambda c: repr(c["text"])[:40])
def test_join_code_parsing(case: dict[str, Any]) -> None:
    if "code" in case:
        assert code_of(lambda: joincode.parse_join_code(case["text"])) == case["code"]
        return
    code = joincode.parse_join_code(case["text"])
    assert str(code) == case["canonical"]
    assert (code.nameplate, list(code.words)) == (case["nameplate"], case["words"])
    assert code.password.hex() == case["password_hex"] == case["canonical"].encode().hex()


@pytest.mark.parametrize("case", ADMISSION["safety_number"], ids=lambda c: c["note"])
def test_safety_number(case: dict[str, Any]) -> None:
    mid, epoch = b(case["mid_hex"]), case["epoch"]
    keys = [b(k) for k in case["keys_hex"]]
    assert keys == [KEYS[name] for name in case["keys"]]
    # SPEC §12.9, from the text.
    ordered = sorted(keys)
    data = bytes([len(mid)]) + mid + epoch.to_bytes(8, "big") + len(ordered).to_bytes(4, "big")
    material = hashlib.blake2b(
        data + b"".join(ordered), digest_size=64, person=b"relsec/v2/sn"
    ).digest()
    assert material.hex() == case["material_hex"]
    salt = hashlib.blake2b(material, digest_size=16, person=b"relsec/v2/snsalt").digest()
    assert salt.hex() == case["salt_hex"]
    stretched = pwhash.argon2id.kdf(16, material, salt, opslimit=3, memlimit=2 * 1024 * 1024)
    assert stretched.hex() == case["stretched_hex"]
    digits = f"{int.from_bytes(stretched, 'big') % 10**20:020d}"
    assert " ".join(digits[i : i + 5] for i in range(0, 20, 5)) == case["number"]
    # The implementation, given the keys in the order listed.
    assert safety.safety_number(mid, epoch, keys) == case["number"]


# SPAKE2 over edwards25519, written from SPEC §12.5 with Python integers
# (the arbitrary element) and libsodium's group operations (everything else).
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with an empty salt (HMAC pads it to the same key as HashLen zeros)."""
    prk = hmac.new(b"", ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def x_even(y: int) -> int:
    xx = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    x = pow(xx, (P + 3) // 8, P)
    if (x * x - xx) % P:
        x = x * SQRT_M1 % P
    return P - x if x % 2 else x


def on_curve(x: int, y: int) -> bool:
    return (-x * x + y * y - 1 - D * x * x * y * y) % P == 0


def add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    return (
        (x1 * y2 + y1 * x2) * pow(1 + t, -1, P) % P,
        (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P,
    )


def encode(point: tuple[int, int]) -> bytes:
    x, y = point
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def arbitrary_element(seed: bytes) -> bytes:
    y0 = int.from_bytes(hkdf_sha256(seed, b"SPAKE2 arbitrary element", 48), "big") % P
    plus = 0
    while True:
        y = (y0 + plus) % P
        plus += 1
        x = x_even(y)
        if not on_curve(x, y):
            continue
        point = (x, y)
        for _ in range(3):
            point = add(point, point)
        if point != (0, 1):
            return encode(point)


def le_scalar(value: int) -> bytes:
    return (value % L).to_bytes(32, "little")


def test_spake2_from_the_spec_formulas() -> None:
    s_point = arbitrary_element(SPAKE["S_seed"].encode())
    assert s_point.hex() == SPAKE["S_hex"]
    assert bindings.crypto_core_ed25519_is_valid_point(s_point)
    password = SPAKE["password"].encode("ascii")
    assert password.hex() == SPAKE["password_hex"]
    w = int.from_bytes(hkdf_sha256(password, b"SPAKE2 pw", 48), "big") % L
    assert le_scalar(w).hex() == SPAKE["password_scalar_hex"]
    blind = bindings.crypto_scalarmult_ed25519_noclamp(le_scalar(w), s_point)
    elements = {}
    for side in ("joiner", "sponsor"):
        x = int.from_bytes(b(SPAKE[side]["entropy_hex"]), "big") % L
        assert le_scalar(x).hex() == SPAKE[side]["scalar_hex"]
        public = bindings.crypto_scalarmult_ed25519_base_noclamp(le_scalar(x))
        element = bindings.crypto_core_ed25519_add(public, blind)
        assert (b"S" + element).hex() == SPAKE[side]["message_hex"]
        elements[side] = (x, element)
    x_j, mine = elements["joiner"]
    x_s, theirs = elements["sponsor"]
    k_joiner = bindings.crypto_scalarmult_ed25519_noclamp(
        le_scalar(x_j), bindings.crypto_core_ed25519_sub(theirs, blind)
    )
    k_sponsor = bindings.crypto_scalarmult_ed25519_noclamp(
        le_scalar(x_s), bindings.crypto_core_ed25519_sub(mine, blind)
    )
    assert k_joiner == k_sponsor and k_joiner.hex() == SPAKE["K_hex"]
    first, second = sorted([mine, theirs])
    key = hashlib.sha256(
        hashlib.sha256(password).digest()
        + hashlib.sha256(b(SPAKE["id_hex"])).digest()
        + first
        + second
        + k_joiner
    ).digest()
    assert key.hex() == SPAKE["key_hex"]
    assert b(SPAKE["id_hex"]) == admission.JOIN_CONTEXT == b"relsec/v2/join"


def join_kdf(label: bytes) -> bytes:
    return hashlib.blake2b(
        label, key=b(SPAKE["key_hex"]), digest_size=32, person=b"relsec/v2/kdf"
    ).digest()


def test_join_keys_and_messages_from_the_spec_formulas() -> None:
    joiner_pake, sponsor_pake = (
        b(SPAKE["joiner"]["message_hex"]),
        b(SPAKE["sponsor"]["message_hex"]),
    )
    transcript = joiner_pake + sponsor_pake
    assert transcript.hex() == JOIN_KEYS["transcript_hex"]

    def mac(key: bytes) -> bytes:
        return hashlib.blake2b(
            transcript, key=key, digest_size=32, person=b"relsec/v2/mac"
        ).digest()

    confirm_joiner, confirm_sponsor = join_kdf(b"confirm/joiner"), join_kdf(b"confirm/sponsor")
    assert confirm_joiner.hex() == JOIN_KEYS["confirm_joiner_key_hex"]
    assert confirm_sponsor.hex() == JOIN_KEYS["confirm_sponsor_key_hex"]
    assert mac(confirm_joiner).hex() == JOIN_KEYS["joiner_tag_hex"]
    assert mac(confirm_sponsor).hex() == JOIN_KEYS["sponsor_tag_hex"]
    j2s, s2j = join_kdf(b"box/joiner-to-sponsor"), join_kdf(b"box/sponsor-to-joiner")
    assert j2s.hex() == JOIN_KEYS["joiner_to_sponsor_key_hex"]
    assert s2j.hex() == JOIN_KEYS["sponsor_to_joiner_key_hex"]

    joiner = RUN["joiner"]
    hello = pack(
        {"key": b(joiner["key_hex"]), "name": joiner["name"], "ring": b(joiner["ring_hex"])}
    )
    assert hello.hex() == RUN["hello_plain_hex"]
    grant = pack(
        {
            "creator": b(RUN["creator_hex"]),
            "mid": b(RUN["mid_hex"]),
            "sponsor": b(RUN["sponsor_hex"]),
        }
    )
    assert grant.hex() == RUN["grant_plain_hex"]

    def sealed(key: bytes, plain: bytes, nonce: str) -> bytes:
        # nonce || XSalsa20-Poly1305 (tag || ciphertext): libsodium's secretbox.
        return b(nonce) + bindings.crypto_secretbox(plain, b(nonce), key)

    expected = [
        ("joiner", "pake", {"m": joiner_pake, "t": "pake"}),
        ("sponsor", "pake", {"m": sponsor_pake, "t": "pake"}),
        ("sponsor", "confirm", {"c": mac(confirm_sponsor), "t": "confirm"}),
        ("joiner", "confirm", {"c": mac(confirm_joiner), "t": "confirm"}),
        ("joiner", "hello", {"s": sealed(j2s, hello, RUN["hello_nonce_hex"]), "t": "hello"}),
        ("sponsor", "grant", {"s": sealed(s2j, grant, RUN["grant_nonce_hex"]), "t": "grant"}),
    ]
    assert [(m["from"], m["name"], m["hex"]) for m in RUN["messages"]] == [
        (who, name, pack(message).hex()) for who, name, message in expected
    ]


@pytest.fixture
def fixed_spake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make admission's SPAKE2 draw the given 64-byte secrets, one per handshake."""

    def fix(*entropies: bytes) -> None:
        queue = list(entropies)
        original = spake2.SPAKE2_Symmetric  # what admission calls
        assert admission.SPAKE2_Symmetric is original  # type: ignore[attr-defined]

        def make(password: bytes, idSymmetric: bytes) -> Any:  # spake2's keyword name
            entropy = queue.pop(0)
            return original(password, idSymmetric=idSymmetric, entropy_f=lambda n: entropy[:n])

        monkeypatch.setattr(admission, "SPAKE2_Symmetric", make)

    return fix


def test_join_run_implementation_matches(fixed_spake: Callable[..., None]) -> None:
    messages = {(m["from"], m["name"]): b(m["hex"]) for m in RUN["messages"]}
    fixed_spake(b(SPAKE["joiner"]["entropy_hex"]), b(SPAKE["sponsor"]["entropy_hex"]))
    code = joincode.parse_join_code(SPAKE["password"])
    joiner_info = RUN["joiner"]
    dan_key, dan_ring = b(joiner_info["key_hex"]), b(joiner_info["ring_hex"])
    joiner = admission.JoinerHandshake(code, dan_key, dan_ring, joiner_info["name"])
    sponsor = admission.SponsorHandshake(code)

    assert joiner.start() == messages["joiner", "pake"]
    assert sponsor.receive(messages["joiner", "pake"]).send == (
        messages["sponsor", "pake"],
        messages["sponsor", "confirm"],
    )
    assert joiner.receive(messages["sponsor", "pake"]).send == (messages["joiner", "confirm"],)
    (hello,) = joiner.receive(messages["sponsor", "confirm"]).send
    # Sealed with a fresh nonce: compare what it carries.
    j2s = SecretBox(b(JOIN_KEYS["joiner_to_sponsor_key_hex"]))
    assert j2s.decrypt(unpack(hello)["s"]).hex() == RUN["hello_plain_hex"]
    assert unpack(hello)["s"][:24] != b(RUN["hello_nonce_hex"])
    assert sponsor.receive(messages["joiner", "confirm"]).send == ()
    request = sponsor.receive(messages["joiner", "hello"]).result
    assert request == admission.JoinRequest(dan_key, dan_ring, joiner_info["name"])
    mid, creator, sponsor_key = b(RUN["mid_hex"]), b(RUN["creator_hex"]), b(RUN["sponsor_hex"])
    grant = sponsor.grant(mid, creator, sponsor_key)
    s2j = SecretBox(b(JOIN_KEYS["sponsor_to_joiner_key_hex"]))
    assert s2j.decrypt(unpack(grant)["s"]).hex() == RUN["grant_plain_hex"]
    granted = joiner.receive(messages["sponsor", "grant"]).result
    assert granted == admission.JoinGranted(mid, creator, sponsor_key)
    assert joiner.done and sponsor.done


@pytest.mark.parametrize("case", ADMISSION["refused"], ids=lambda c: c["note"])
def test_join_refused(case: dict[str, Any], fixed_spake: Callable[..., None]) -> None:
    fixed_spake(b(case["entropy_hex"]))
    code = joincode.parse_join_code(case["code_text"])
    joiner_info = RUN["joiner"]
    side: admission.JoinerHandshake | admission.SponsorHandshake
    if case["role"] == "joiner":
        side = admission.JoinerHandshake(
            code, b(joiner_info["key_hex"]), b(joiner_info["ring_hex"]), joiner_info["name"]
        )
        assert side.start().hex() == case["start_hex"]
    else:
        side = admission.SponsorHandshake(code)
    *answered, last = [b(x) for x in case["receive_hex"]]
    for payload, expected in zip(answered, case["replies_hex"], strict=True):
        sent = side.receive(payload).send
        assert len(sent) == len(expected)
        for message, hex_text in zip(sent, expected, strict=True):
            if hex_text is None:  # a sealed hello: random nonce
                assert unpack(message)["t"] == "hello"
            else:
                assert message.hex() == hex_text
    assert code_of(lambda: side.receive(last)) == case["code"]
    assert side.failed
