"""Linkable ring signatures for anonymous votes (SPEC §13.1).

A member proves "one of these ring keys signed this message" without saying
which, and leaves a link tag that is the same for the same member within one
event (a poll) and unlinkable across events. The construction is bLSAG
(Liu, Wei and Wong, "Linkable spontaneous anonymous group signature for ad hoc
groups", ACISP 2004, §4; Noether and Goodell, "Zero to Monero" 2nd ed., §3.4)
over the prime-order subgroup of edwards25519, with the event-oriented tag
base of Tsang, Wei, Chan, Au, Liu and Wong ("Separable linkable threshold ring
signatures", INDOCRYPT 2004): ``I = x * Hp(event)``.

Rules of this file:
- Only libsodium's ed25519 operations (``nacl.bindings``); every point from
  outside passes ``crypto_core_ed25519_is_valid_point`` and every scalar must be
  canonical and nonzero before it is used (a tag with a torsion component would
  give one member eight tags: the 2017 CryptoNote key-image bug).
- ``verify`` checks the exact bytes it is given, in the order SPEC §13.1.6
  lists, and raises ``BadRingSignature`` with a stable ``reason``.
- ``sign`` never reuses a nonce: each scalar is hashed from the secret, the
  whole transcript, a draw counter and fresh randomness (hedged), so a broken
  random source cannot leak the ring secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from typing import Final

from nacl import bindings
from nacl.exceptions import RuntimeError as NaclRuntimeError

from .errors import LocalProtocolError, RemoteProtocolError

L: Final = 2**252 + 27742317777372353535851937790883648493  # prime subgroup order
POINT_BYTES: Final = 32
SCALAR_BYTES: Final = 32
MAX_RING: Final = 256
DRAW_BYTES: Final = 64  # what ``sign`` asks of ``rng`` per scalar

EVENT_LABEL: Final = b"relsec/v2/ring-event\x00"
CHALLENGE_LABEL: Final = b"relsec/v2/ring-challenge\x00"
NONCE_LABEL: Final = b"relsec/v2/ring-nonce\x00"
TEST_RNG_LABEL: Final = b"relsec/v2/ring-test-rng\x00"

# Reasons carried by BadRingSignature, in the order verify checks them.
REASONS: Final = (
    "ring_size",
    "ring_key",
    "duplicate_key",
    "length",
    "tag",
    "scalar",
    "event_base",
    "identity",
    "mismatch",
)

Rng = Callable[[int], bytes]


class BadRingSignature(RemoteProtocolError):
    """A ring signature that does not verify; ``reason`` says which check failed."""

    code = "bad_ring_signature"

    def __init__(self, reason: str) -> None:
        super().__init__(f"ring signature rejected: {reason}")
        self.reason = reason


class _IdentityResult(Exception):
    """libsodium refused a multiplication: zero scalar or identity result."""


# --- hashing to scalars and points ---------------------------------------------


def _reduce(wide: bytes) -> bytes:
    """``Hs`` of SPEC §13.1.2 once the BLAKE2b-512 digest is taken: the 64 bytes
    read little-endian and reduced mod L. Callers hash through copied BLAKE2b
    states, so the long shared prefix of every challenge is hashed once."""
    scalar: bytes = bindings.crypto_core_ed25519_scalar_reduce(wide)
    return scalar


def hash_to_point(data: bytes) -> bytes:
    """Two Elligator 2 maps of the halves of BLAKE2b-512(data), added (SPEC §13.1.2).

    The same shape as RFC 9380's random-oracle encodings: one map alone is not
    uniform, the sum of two is. ``from_uniform`` multiplies by the cofactor, so
    the sum lies in the prime-order subgroup and its discrete log to B is
    unknown to everyone."""
    wide = hashlib.blake2b(data, digest_size=64).digest()
    first = bindings.crypto_core_ed25519_from_uniform(wide[:32])
    second = bindings.crypto_core_ed25519_from_uniform(wide[32:])
    point: bytes = bindings.crypto_core_ed25519_add(first, second)
    return point


def event_base(event: bytes) -> bytes:
    """The tag base point of one event: ``Hp(EVENT_LABEL || event)``.

    Every member's tag in the event is a multiple of this one point, so the
    tag does not depend on the ring (a poll that spans a roster change still
    gets one tag per member), and two events' bases are unrelated points, so
    tags in different events cannot be linked without solving DDH."""
    return hash_to_point(EVENT_LABEL + _bytes(event, "event"))


# --- small checked operations --------------------------------------------------


def _canonical_nonzero(scalar: bytes) -> bool:
    return len(scalar) == SCALAR_BYTES and 0 < int.from_bytes(scalar, "little") < L


def _valid_point(point: object) -> bool:
    return (
        isinstance(point, bytes)
        and len(point) == POINT_BYTES
        and bool(bindings.crypto_core_ed25519_is_valid_point(point))
    )


def _mul(scalar: bytes, point: bytes) -> bytes:
    try:
        product: bytes = bindings.crypto_scalarmult_ed25519_noclamp(scalar, point)
    except NaclRuntimeError as error:
        raise _IdentityResult from error
    return product


def _mul_base(scalar: bytes) -> bytes:
    try:
        product: bytes = bindings.crypto_scalarmult_ed25519_base_noclamp(scalar)
    except NaclRuntimeError as error:
        raise _IdentityResult from error
    return product


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise LocalProtocolError(f"The {what} must be bytes.")
    return value


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def _check_secret(secret: object) -> bytes:
    if not isinstance(secret, bytes) or not _canonical_nonzero(secret):
        raise LocalProtocolError("The ring secret must be a canonical nonzero 32-byte scalar.")
    return secret


# --- public API ----------------------------------------------------------------


def signature_size(n: int) -> int:
    """Bytes in a signature over a ring of ``n`` keys: tag, c_0 and n responses."""
    if not 1 <= n <= MAX_RING:
        raise LocalProtocolError(f"A ring has 1 to {MAX_RING} keys.")
    return POINT_BYTES + SCALAR_BYTES + SCALAR_BYTES * n


def link_tag(secret: bytes, event: bytes) -> bytes:
    """The tag ``x * Hp(event)`` that every signature by ``secret`` in ``event`` carries."""
    base = event_base(event)
    if not _valid_point(base):  # probability ~2^-250; no one can aim for it
        raise LocalProtocolError("This event id cannot be used for ring signatures; pick another.")
    return _mul(_check_secret(secret), base)


def transcript(message: bytes, ring: Sequence[bytes], tag: bytes, event: bytes) -> bytes:
    """The bytes every challenge hash starts with (SPEC §13.1.4): the label, the
    ring in order, the event, the message and the tag, lengths prefixed."""
    message = _bytes(message, "message")
    event = _bytes(event, "event")
    return b"".join(
        (
            CHALLENGE_LABEL,
            len(ring).to_bytes(2, "little"),
            *ring,
            _u64(len(event)),
            event,
            _u64(len(message)),
            message,
            tag,
        )
    )


def seeded_rng(seed: bytes) -> Rng:
    """A reproducible random source for test vectors and tests ONLY: the k-th call
    returns the first n bytes of BLAKE2b-512(TEST_RNG_LABEL || seed || u32(k))."""
    counter = 0

    def draw(n: int) -> bytes:
        nonlocal counter
        if not 0 <= n <= 64:
            raise LocalProtocolError("seeded_rng gives at most 64 bytes a call.")
        block = TEST_RNG_LABEL + seed + counter.to_bytes(4, "little")
        counter += 1
        return hashlib.blake2b(block, digest_size=64).digest()[:n]

    return draw


def sign(
    message: bytes,
    ring: Sequence[bytes],
    secret: bytes,
    event: bytes,
    *,
    rng: Rng | None = None,
) -> bytes:
    """A bLSAG signature on ``message`` by the holder of ``secret``, hidden among
    ``ring`` (ordered as the caller wants verifiers to see it), with the tag of
    ``event``. ``rng`` exists for test vectors; real callers leave it out."""
    message = _bytes(message, "message")
    event = _bytes(event, "event")
    secret = _check_secret(secret)
    keys = tuple(ring)
    if not 1 <= len(keys) <= MAX_RING:
        raise LocalProtocolError(f"A ring has 1 to {MAX_RING} keys.")
    if not all(_valid_point(key) for key in keys):
        raise LocalProtocolError("Every ring key must be a valid prime-order point.")
    if len(set(keys)) != len(keys):
        raise LocalProtocolError("The ring lists a key twice.")
    own = _mul_base(secret)
    if own not in keys:
        raise LocalProtocolError("Your ring key is not in this ring; sign with the current roster.")
    n, pi = len(keys), keys.index(own)
    base = event_base(event)
    if not _valid_point(base):
        raise LocalProtocolError("This event id cannot be used for ring signatures; pick another.")
    tag = _mul(secret, base)
    prefix = transcript(message, keys, tag, event)
    challenge_state = hashlib.blake2b(prefix, digest_size=64)
    nonce_state = hashlib.blake2b(NONCE_LABEL + secret + prefix, digest_size=64)
    random_bytes = os.urandom if rng is None else rng
    draws = 0

    def draw() -> bytes:
        # Hedged nonce (SPEC §13.1.5): secret, transcript and counter make the
        # scalar unique per signature even if random_bytes repeats itself.
        nonlocal draws
        state = nonce_state.copy()
        state.update(draws.to_bytes(4, "little"))
        draws += 1
        noise = random_bytes(DRAW_BYTES)
        if len(noise) != DRAW_BYTES:
            raise LocalProtocolError("The random source returned the wrong number of bytes.")
        state.update(noise)
        return _reduce(state.digest())

    def challenge(left: bytes, right: bytes) -> bytes:
        state = challenge_state.copy()
        state.update(left)
        state.update(right)
        return _reduce(state.digest())

    while True:
        try:
            return _sign_once(keys, n, pi, secret, base, tag, draw, challenge)
        except _IdentityResult:
            continue  # a zero scalar somewhere (~2^-250): start again with new draws


def _sign_once(
    keys: tuple[bytes, ...],
    n: int,
    pi: int,
    secret: bytes,
    base: bytes,
    tag: bytes,
    draw: Callable[[], bytes],
    challenge: Callable[[bytes, bytes], bytes],
) -> bytes:
    add = bindings.crypto_core_ed25519_add
    alpha = draw()
    responses: list[bytes] = [b""] * n
    challenges: list[bytes] = [b""] * n
    nxt = (pi + 1) % n
    challenges[nxt] = challenge(_mul_base(alpha), _mul(alpha, base))
    for step in range(1, n):
        i = (pi + step) % n
        responses[i] = draw()
        c = challenges[i]
        left = add(_mul_base(responses[i]), _mul(c, keys[i]))
        right = add(_mul(responses[i], base), _mul(c, tag))
        challenges[(i + 1) % n] = challenge(left, right)
    # c_pi is never multiplied while signing, but the verifier multiplies it.
    if not any(challenges[pi]):
        raise _IdentityResult
    product = bindings.crypto_core_ed25519_scalar_mul(challenges[pi], secret)
    responses[pi] = bindings.crypto_core_ed25519_scalar_sub(alpha, product)
    if not any(responses[pi]):
        raise _IdentityResult
    return tag + challenges[0] + b"".join(responses)


def verify(message: bytes, ring: Sequence[bytes], signature: bytes, event: bytes) -> bytes:
    """Check ``signature`` on ``message`` over ``ring`` in ``event`` and return its
    32-byte link tag; raise ``BadRingSignature`` otherwise (checks in SPEC
    §13.1.6 order)."""
    message = _bytes(message, "message")
    event = _bytes(event, "event")
    keys = tuple(ring)
    n = len(keys)
    if not 1 <= n <= MAX_RING:
        raise BadRingSignature("ring_size")
    if not all(_valid_point(key) for key in keys):
        raise BadRingSignature("ring_key")
    if len(set(keys)) != n:
        raise BadRingSignature("duplicate_key")
    if not isinstance(signature, bytes) or len(signature) != signature_size(n):
        raise BadRingSignature("length")
    tag = signature[:POINT_BYTES]
    if not _valid_point(tag):
        raise BadRingSignature("tag")
    scalars = [
        signature[offset : offset + SCALAR_BYTES]
        for offset in range(POINT_BYTES, len(signature), SCALAR_BYTES)
    ]
    if not all(_canonical_nonzero(scalar) for scalar in scalars):
        raise BadRingSignature("scalar")
    first, responses = scalars[0], scalars[1:]
    base = event_base(event)
    if not _valid_point(base):
        raise BadRingSignature("event_base")
    state = hashlib.blake2b(transcript(message, keys, tag, event), digest_size=64)
    add = bindings.crypto_core_ed25519_add
    c = first
    try:
        for key, response in zip(keys, responses, strict=True):
            left = add(_mul_base(response), _mul(c, key))
            right = add(_mul(response, base), _mul(c, tag))
            step = state.copy()
            step.update(left)
            step.update(right)
            c = _reduce(step.digest())
    except _IdentityResult:  # a computed challenge was zero
        raise BadRingSignature("identity") from None
    if not hmac.compare_digest(c, first):
        raise BadRingSignature("mismatch")
    return tag
