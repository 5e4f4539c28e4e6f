"""A member's keys for one meeting: an Ed25519 signing key and a ring key.

Rules of this file:
- Keys are fresh per meeting by default, so two meetings cannot be linked by
  key (docs/ARCHITECTURE.md §4 "Identity").
- The ring key is a separate ed25519 scalar used only for linkable ring
  signatures; its public point is ``scalar * B`` (no clamping), so it is a
  point of the prime-order subgroup.
- ``from_seed`` exists for test vectors; real members use ``generate``, whose
  ring secret owes nothing to the signing seed (a save holds the seed).
- The ring secret lives in memory only: a save never holds it (core/save.py,
  SPEC §4.2), so an identity restored from a save has none and cannot sign
  anonymous votes or ratings (core/anon.py refuses them in one sentence).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from nacl import bindings
from nacl.signing import SigningKey, VerifyKey

from .errors import LocalProtocolError

KEY_BYTES = 32


def random_scalar() -> bytes:
    """A uniform scalar mod L (libsodium's ``scalar_reduce`` of 64 random bytes;
    PyNaCl does not expose ``crypto_core_ed25519_scalar_random``)."""
    while True:
        scalar: bytes = bindings.crypto_core_ed25519_scalar_reduce(os.urandom(64))
        if any(scalar):
            return scalar


def ring_point(secret: bytes) -> bytes:
    """The public ring point ``secret * B`` (no clamping, SPEC §4.2)."""
    point: bytes = bindings.crypto_scalarmult_ed25519_base_noclamp(secret)
    return point


def scalar_from_seed(seed: bytes, label: bytes) -> bytes:
    wide = hashlib.blake2b(label + seed, digest_size=64).digest()
    scalar: bytes = bindings.crypto_core_ed25519_scalar_reduce(wide)
    return scalar


@dataclass(frozen=True)
class Identity:
    """The secret side of a member; never leaves this laptop, never logged."""

    signing_key: SigningKey = field(repr=False)
    # None: this laptop carried on from a save, which never holds it.
    ring_secret: bytes | None = field(repr=False)

    @classmethod
    def generate(cls) -> Identity:
        return cls(SigningKey.generate(), random_scalar())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        return cls(SigningKey(seed), scalar_from_seed(seed, b"relsec/v2/ring-key"))

    @property
    def key(self) -> bytes:
        """The public signing key: the member's id in the log."""
        return bytes(self.signing_key.verify_key)

    @property
    def ring_key(self) -> bytes:
        """The public ring point; only a fresh identity (which joins or creates
        a meeting) needs it, and only a fresh identity has its secret."""
        if self.ring_secret is None:
            raise LocalProtocolError(
                "This identity was restored from a save, which holds no ring secret."
            )
        return ring_point(self.ring_secret)

    def sign(self, context: bytes, message: bytes) -> bytes:
        """Ed25519 signature over ``context || message``; contexts are the
        domain-separation labels listed in SPEC §3.2."""
        signature: bytes = self.signing_key.sign(context + message).signature
        return signature


def verify_key(key: bytes) -> VerifyKey:
    return VerifyKey(key)
