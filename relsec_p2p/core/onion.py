"""The layers of one shuffle slot, the hashes a round signs, field shapes; sans-IO.

Part of the verifiable shuffle of Brickell and Shmatikov ("Efficient
anonymity-preserving data collection", KDD 2006, §4) as Dissent v1 runs it
(Corrigan-Gibbs and Ford, CCS 2010, §3): one member's round is
core/shuffle_round.py, the round's vocabulary core/shuffle.py, the blame
judgement core/blame.py; all of them build on this file. Normative text:
protocol/SPEC.md §13.2 (the inner layer §13.2.5).

Rules of this file:
- Pure functions of their inputs (the one exception: ``seal_to_all``,
  ``seal_layer`` and ``keypair`` draw fresh secrets, all through
  ``random_bytes``, so vectors can fix them). No round state, no I/O.
- Outer layers are libsodium sealed boxes, one per participant; the inner
  layer is one box that needs every participant's share to open (below).
- Opening never raises on hostile input: it returns None, and the caller
  decides whom that convicts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from nacl import bindings
from nacl.exceptions import CryptoError

from .codec import pack
from .errors import LocalProtocolError
from .feed import HASH_BYTES

BATCH_LABEL = b"relsec/v2/anon-batch\x00"
ONION_LABEL = b"relsec/v2/anon-onion\x00"
TRANSCRIPT_LABEL = b"relsec/v2/anon-transcript\x00"

SEAL_BYTES = bindings.crypto_box_SEALBYTES  # 48: ephemeral key + MAC per layer
SIG_BYTES = 64


# --- hashes ---------------------------------------------------------------------


def label_hash(label: bytes, data: bytes) -> bytes:
    """BLAKE2b-256 of a domain label and the data it hashes."""
    return hashlib.blake2b(label + data, digest_size=HASH_BYTES).digest()


def batch_hash(items: Sequence[bytes]) -> bytes:
    return label_hash(BATCH_LABEL, pack(list(items)))


def onion_hash(onion: bytes) -> bytes:
    return label_hash(ONION_LABEL, onion)


def transcript_hash(
    rid: bytes,
    keys: Sequence[tuple[bytes, bytes]],
    onions: Sequence[bytes],
    hop_hashes: Sequence[bytes],
) -> bytes:
    """What a GO signs: the round id, every participant's (inner, outer) public
    keys and submitted onion in roster order, and every hop's output hash."""
    return label_hash(
        TRANSCRIPT_LABEL,
        pack(
            [
                rid,
                [[*pair] for pair in keys],
                [onion_hash(onion) for onion in onions],
                list(hop_hashes),
            ]
        ),
    )


# --- sizes and outer layers ---------------------------------------------------------


def inner_size(slot: int) -> int:
    """Bytes of an inner ciphertext: ephemeral key, MAC, slot."""
    return slot + SEAL_BYTES


def onion_size(slot: int, n: int, peeled: int = 0) -> int:
    """Bytes of an onion (inner ciphertext in n outer layers, the first
    also holding its owner's key) with ``peeled`` outer layers removed."""
    owner = OWNER_BYTES if peeled == 0 else 0
    return inner_size(slot) + SEAL_BYTES * (n - peeled) + owner


def random_bytes(size: int) -> bytes:
    """Fresh secret bytes from the operating system's CSPRNG (libsodium's
    ``randombytes``); the one source of every secret a round draws."""
    drawn: bytes = bindings.randombytes(size)
    return drawn


def keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair (public, secret) for one round."""
    public, secret = bindings.crypto_box_seed_keypair(random_bytes(32))
    return public, secret


def seal_layer(message: bytes, public: bytes) -> bytes:
    """Wrap one outer layer: a sealed box to one participant's outer key.
    Built as libsodium's ``crypto_box_seal`` builds it (ephemeral public key
    ``E``, then ``crypto_box(message, nonce = BLAKE2b-192(E || public))``), so
    ``crypto_box_seal_open`` opens it; written out only so that the ephemeral
    secret comes from ``random_bytes``."""
    ephemeral, secret = keypair()
    nonce = hashlib.blake2b(ephemeral + public, digest_size=bindings.crypto_box_NONCEBYTES).digest()
    box: bytes = bindings.crypto_box(message, nonce, public, secret)
    return ephemeral + box


# The first outer layer carries its submitter's identity key before the rest
# of the onion, so a copied onion convicts its copier: hop 1 (and the blame
# replay, with hop 1's outer secret) sees that the key inside is not the
# submitter's. Nobody else can make a first layer naming another member with
# that member's inner onion inside: only its builder knows what is under it.
OWNER_BYTES = 32


def bind_owner(owner: bytes, onion: bytes) -> bytes:
    """What the first outer layer seals: the submitter's key, then the onion."""
    return owner + onion


def owner_of(opened: bytes) -> tuple[bytes, bytes] | None:
    """(owner key, the rest) of an opened first layer, or None if too short."""
    if len(opened) < OWNER_BYTES:
        return None
    return opened[:OWNER_BYTES], opened[OWNER_BYTES:]


def open_layer(sealed: bytes, public: bytes, secret: bytes) -> bytes | None:
    """Peel one outer layer, or None if it does not open under this key pair."""
    try:
        opened: bytes = bindings.crypto_box_seal_open(sealed, public, secret)
    except (CryptoError, ValueError, TypeError):
        return None
    return opened


def _dh(secret: bytes, public: bytes) -> bytes | None:
    """X25519, or None for a low-order point (libsodium refuses an all-zero result)."""
    try:
        shared: bytes = bindings.crypto_scalarmult(secret, public)
    except (CryptoError, RuntimeError, ValueError, TypeError):
        return None
    return shared


# The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519, and
# the non-canonical encodings p and p + 1 of 0 and 1; the top bit is ignored.
# The same list as libsodium's ``has_small_order`` (x25519_ref10.c).
_LOW_ORDER = frozenset(
    bytes.fromhex(h)
    for h in (
        "00" * 32,
        "01" + "00" * 31,
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ec" + "ff" * 30 + "7f",
        "ed" + "ff" * 30 + "7f",
        "ee" + "ff" * 30 + "7f",
    )
)


def usable_public(public: bytes) -> bool:
    """An X25519 key that is not of low order: a low-order key would make
    every share with it predictable (and libsodium would refuse to seal to it)."""
    return len(public) == 32 and public[:31] + bytes([public[31] & 0x7F]) not in _LOW_ORDER


# The inner layer: one box that needs every participant's share to open.
# It is a multi-recipient DH KEM (Smart, "Efficient key encapsulation to
# multiple parties", SCN 2004, §3) whose component keys are combined by
# hashing them all with the ciphertext and the public keys, the combiner
# of Giacon, Heuer and Poettering ("KEM combiners", PKC 2018, §5): the key
# stays hidden while any one participant's inner secret does. It replaces
# Brickell-Shmatikov's N nested inner layers, whose opening costs N^2 X25519
# operations per member, by N per member: each participant publishes its
# share for every item along with its inner secret (SPEC §13.2.5).

INNER_KEY_LABEL = b"relsec/v2/anon-inner-key\x00"
_ZERO_NONCE = bytes(bindings.crypto_secretbox_NONCEBYTES)  # each key is used once


def _inner_key(ephemeral: bytes, publics: Sequence[bytes], shares: Sequence[bytes]) -> bytes:
    return hashlib.blake2b(
        INNER_KEY_LABEL + ephemeral + b"".join(publics) + b"".join(shares),
        digest_size=bindings.crypto_secretbox_KEYBYTES,
    ).digest()


def seal_to_all(message: bytes, publics: Sequence[bytes]) -> bytes:
    """Encrypt ``message`` so that only the holders of every secret key behind
    ``publics`` together can open it: ephemeral key || secretbox."""
    secret = random_bytes(32)
    ephemeral: bytes = bindings.crypto_scalarmult_base(secret)
    shares = []
    for public in publics:
        shared = _dh(secret, public)
        if shared is None:
            raise LocalProtocolError("a participant's inner key is of low order")
        shares.append(shared)
    box: bytes = bindings.crypto_secretbox(
        message, _ZERO_NONCE, _inner_key(ephemeral, publics, shares)
    )
    return ephemeral + box


def inner_share(secret: bytes, sealed: bytes) -> bytes:
    """One participant's share for one inner ciphertext (zeros if the
    ciphertext's ephemeral key is of low order: it cannot open anyway)."""
    return _dh(secret, sealed[:32]) or bytes(32)


def open_with_shares(
    sealed: bytes, publics: Sequence[bytes], shares: Sequence[bytes]
) -> bytes | None:
    if len(sealed) < SEAL_BYTES:
        return None
    try:
        opened: bytes = bindings.crypto_secretbox_open(
            sealed[32:], _ZERO_NONCE, _inner_key(sealed[:32], publics, shares)
        )
    except (CryptoError, ValueError, TypeError):
        return None
    return opened


def public_of(secret: bytes) -> bytes:
    public: bytes = bindings.crypto_scalarmult_base(secret)
    return public


# --- field shapes --------------------------------------------------------------------


def is_bin(value: Any, size: int | None = None) -> bool:
    return isinstance(value, bytes) and (size is None or len(value) == size)


def is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 1 << 32
