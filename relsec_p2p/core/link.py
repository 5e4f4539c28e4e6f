"""Sans-IO link security: the authenticated key exchange and the AEAD stream.

Rules of this file (normative text: protocol/SPEC.md §11):
- Handshake: three messages in the shape of SIGMA-I (Krawczyk 2003, §5.2) /
  Noise XX: ephemeral X25519 first, then each side's identity key, roster
  epoch and an Ed25519 signature over the transcript, sent inside a
  secretbox under a key from the ephemeral secret, so a passive observer on
  the LAN sees no identity at all. The meeting id is mixed into every key: a
  peer of another meeting cannot even decrypt the second message.
- Both sides sign fresh ephemeral keys of both sides, so a replayed
  handshake message never completes a new link.
- ``accept(key)`` (the driver's roster check) decides who may link; a
  refused peer gets nothing beyond the first two messages.
- After the handshake, each direction is a libsodium secretstream
  (XChaCha20-Poly1305) whose messages cannot be dropped, reordered or
  replayed without the receiver noticing.
- Every stream frame is ``seal(kind || payload)``: ``KIND_DATA`` carries a
  Session payload, ``KIND_PING`` a keepalive. The link's numbers (§11.7,
  §11.8: frame size, keepalive, idle and handshake timeouts, send queue,
  flood guard) live here, beside the wire they shape; ``net.link`` only
  drives them.
- Of two links between one pair, both ends keep the same one (``keep_link``),
  named by the transcript hash both computed: nothing extra on the wire.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.secret import SecretBox
from nacl.signing import VerifyKey

from .codec import DEFAULT_MAX_FRAME, Limits, pack, unpack
from .errors import BadSignature, LocalProtocolError, MalformedFrame, RemoteProtocolError
from .identity import KEY_BYTES, Identity

LINK_CONTEXT_RESPONDER = b"relsec/v2/link-responder\x00"
LINK_CONTEXT_INITIATOR = b"relsec/v2/link-initiator\x00"
HANDSHAKE_LIMITS = Limits(max_bytes=4096, max_depth=3, max_str=64, max_bin=1024, max_array=4)
STREAM_OVERHEAD = bindings.crypto_secretstream_xchacha20poly1305_ABYTES
STREAM_HEADER_BYTES = bindings.crypto_secretstream_xchacha20poly1305_HEADERBYTES

KIND_DATA = b"\x00"
KIND_PING = b"\x01"
KEEPALIVE_S = 3.0
IDLE_TIMEOUT_S = 10.0
HANDSHAKE_TIMEOUT_S = 5.0
MAX_QUEUE_BYTES = 16 * 1024 * 1024
MAX_LINK_FRAME = DEFAULT_MAX_FRAME + STREAM_OVERHEAD + 1

FLOOD_RATE = 500  # frames a second, sustained; sync batches many entries per frame
FLOOD_BURST = 2000


class HandshakeFailed(RemoteProtocolError):
    """The peer could not prove a roster identity for this meeting."""

    code = "handshake_failed"


class NotAMember(HandshakeFailed):
    code = "not_a_member"


class BadCiphertext(RemoteProtocolError):
    code = "bad_ciphertext"


class Flooding(RemoteProtocolError):
    code = "flooding"


class FloodGuard:
    """A token bucket over received frames: a member's laptop that sends
    faster than any honest one would is cut off, so it cannot keep this one
    busy for everyone else."""

    def __init__(self, rate: float = FLOOD_RATE, burst: float = FLOOD_BURST) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.last: float | None = None

    def available(self, now: float) -> bool:
        """Whether one more event would be allowed now (consumes nothing)."""
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return self.tokens >= 1

    def allow(self, now: float) -> bool:
        if not self.available(now):
            return False
        self.tokens -= 1
        return True


def _kdf(secret: bytes, label: bytes, transcript: bytes) -> bytes:
    """BLAKE2b keyed by the X25519 secret; the label separates every key."""
    return hashlib.blake2b(label + transcript, key=secret, digest_size=32).digest()


@dataclass(frozen=True, slots=True)
class LinkKeys:
    peer: bytes
    peer_epoch: int
    send_key: bytes
    receive_key: bytes
    link_id: bytes  # the transcript hash, the same at both ends (SPEC §11.9)


class Handshake:
    """One side of the link handshake.

    Initiator: ``start()`` → hi1; ``receive(hi2)`` → hi3 and done.
    Responder: ``receive(hi1)`` → hi2; ``receive(hi3)`` → None and done.
    """

    def __init__(
        self,
        identity: Identity,
        mid: bytes,
        *,
        initiator: bool,
        epoch: int,
        accept: Callable[[bytes], bool],
        ephemeral_secret: bytes | None = None,
    ) -> None:
        self.identity = identity
        self.mid = mid
        self.initiator = initiator
        self.epoch = epoch
        self._accept = accept
        # ``ephemeral_secret`` is for test vectors only (protocol/vectors/link.json):
        # a real link draws a fresh one, which is what keeps the zero-nonce
        # identity boxes (SPEC §11.4) from ever sharing a key.
        if ephemeral_secret is None:
            ephemeral_secret = os.urandom(32)
        elif len(ephemeral_secret) != 32:
            raise LocalProtocolError("an X25519 secret key is 32 bytes")
        self._secret_key = bytes(ephemeral_secret)
        self._public_key: bytes = bindings.crypto_scalarmult_base(self._secret_key)
        self._stage = "start" if initiator else "await-hi1"
        self._shared = b""
        self._transcript = b""
        self._peer_ephemeral = b""
        self._peer_epoch = 0
        self.result: LinkKeys | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def start(self) -> bytes:
        if self._stage != "start":
            raise LocalProtocolError("start() is for the initiator, once")
        self._stage = "await-hi2"
        return pack({"t": "hi1", "e": self._public_key})

    def receive(self, payload: bytes) -> bytes | None:
        try:
            message = unpack(payload, HANDSHAKE_LIMITS)
            if not isinstance(message, dict):
                raise MalformedFrame("a handshake message is a map")
            return self._step(message)
        except RemoteProtocolError:
            self._stage = "failed"
            raise

    # -- internals ------------------------------------------------------------

    def _mix(self, peer_ephemeral: Any) -> None:
        if not (isinstance(peer_ephemeral, bytes) and len(peer_ephemeral) == 32):
            raise MalformedFrame("an ephemeral key is 32 bytes")
        try:
            shared: bytes = bindings.crypto_scalarmult(self._secret_key, peer_ephemeral)
        except (CryptoError, RuntimeError) as exc:
            raise HandshakeFailed("degenerate ephemeral key") from exc
        if not any(shared):
            raise HandshakeFailed("degenerate ephemeral key")
        self._peer_ephemeral = peer_ephemeral
        self._shared = shared
        first, second = (
            (self._public_key, peer_ephemeral)
            if self.initiator
            else (peer_ephemeral, self._public_key)
        )
        self._transcript = hashlib.blake2b(
            b"relsec/v2/link\x00" + self.mid + first + second, digest_size=32
        ).digest()

    def _box(self, label: bytes) -> SecretBox:
        return SecretBox(_kdf(self._shared, label, self._transcript))

    def _seal_identity(self, label: bytes, context: bytes, extra: bytes) -> bytes:
        signed = self._transcript + extra + self.identity.key + self.epoch.to_bytes(8, "big")
        inner = pack(
            {
                "key": self.identity.key,
                "epoch": self.epoch,
                "sig": self.identity.sign(context, signed),
            }
        )
        return bytes(self._box(label).encrypt(inner, nonce=bytes(24)).ciphertext)

    def _open_identity(self, label: bytes, context: bytes, box: Any, extra: bytes) -> bytes:
        if not isinstance(box, bytes):
            raise MalformedFrame("identity box must be bin")
        try:
            inner = unpack(self._box(label).decrypt(box, nonce=bytes(24)), HANDSHAKE_LIMITS)
        except CryptoError as exc:
            raise HandshakeFailed("cannot open the peer's identity (another meeting?)") from exc
        if not (
            isinstance(inner, dict)
            and set(inner) == {"key", "epoch", "sig"}
            and isinstance(inner["key"], bytes)
            and len(inner["key"]) == KEY_BYTES
            and type(inner["epoch"]) is int
            and 0 <= inner["epoch"] < 1 << 63
            and isinstance(inner["sig"], bytes)
            and len(inner["sig"]) == 64
        ):
            raise MalformedFrame("identity box has key, epoch, sig")
        key, epoch = inner["key"], inner["epoch"]
        signed = self._transcript + extra + key + epoch.to_bytes(8, "big")
        try:
            VerifyKey(key).verify(context + signed, inner["sig"])
        except (BadSignatureError, ValueError) as exc:
            raise BadSignature("handshake signature does not verify") from exc
        if key == self.identity.key:
            raise HandshakeFailed("a link to ourselves")
        if not self._accept(key):
            raise NotAMember("the peer is not a current member of this meeting")
        self._peer_epoch = epoch
        return bytes(key)

    def _finish(self, peer: bytes) -> None:
        initiator_key = self.identity.key if self.initiator else peer
        responder_key = peer if self.initiator else self.identity.key
        final = hashlib.blake2b(
            self._transcript + responder_key + initiator_key, digest_size=32
        ).digest()
        i2r = _kdf(self._shared, b"stream-i2r", final)
        r2i = _kdf(self._shared, b"stream-r2i", final)
        send, receive = (i2r, r2i) if self.initiator else (r2i, i2r)
        self.result = LinkKeys(peer, self._peer_epoch, send, receive, self._transcript)
        self._stage = "done"
        self._secret_key = b""
        self._shared = b""

    def _step(self, message: dict[str, Any]) -> bytes | None:
        kind = message.get("t")
        if self._stage == "await-hi1" and kind == "hi1" and set(message) == {"t", "e"}:
            self._mix(message["e"])
            self._stage = "await-hi3"
            box = self._seal_identity(b"box-r", LINK_CONTEXT_RESPONDER, b"")
            return pack({"t": "hi2", "e": self._public_key, "box": box})
        if self._stage == "await-hi2" and kind == "hi2" and set(message) == {"t", "e", "box"}:
            self._mix(message["e"])
            peer = self._open_identity(b"box-r", LINK_CONTEXT_RESPONDER, message["box"], b"")
            box = self._seal_identity(b"box-i", LINK_CONTEXT_INITIATOR, peer)
            self._finish(peer)
            return pack({"t": "hi3", "box": box})
        if self._stage == "await-hi3" and kind == "hi3" and set(message) == {"t", "box"}:
            peer = self._open_identity(
                b"box-i", LINK_CONTEXT_INITIATOR, message["box"], self.identity.key
            )
            self._finish(peer)
            return None
        raise MalformedFrame(f"unexpected handshake message at stage {self._stage}")


class StreamSender:
    """The sending half of a secretstream; the header goes out first."""

    def __init__(self, key: bytes) -> None:
        self._state = bindings.crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = bindings.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, key
        )

    def seal(self, plaintext: bytes) -> bytes:
        sealed: bytes = bindings.crypto_secretstream_xchacha20poly1305_push(self._state, plaintext)
        return sealed


class StreamReceiver:
    """The receiving half; any tampering, loss or reordering fails ``open``."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._state: Any = None

    def start(self, header: bytes) -> None:
        if self._state is not None or len(header) != STREAM_HEADER_BYTES:
            raise MalformedFrame("bad stream header")
        self._state = bindings.crypto_secretstream_xchacha20poly1305_state()
        bindings.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, self._key)

    @property
    def started(self) -> bool:
        return self._state is not None

    def open(self, sealed: bytes) -> bytes:
        if self._state is None:
            raise LocalProtocolError("stream not started")
        try:
            plaintext, _tag = bindings.crypto_secretstream_xchacha20poly1305_pull(
                self._state, sealed
            )
        except (CryptoError, RuntimeError, ValueError) as exc:
            raise BadCiphertext("a link frame failed authentication") from exc
        return bytes(plaintext)


# --- duplicate links (SPEC §11.9) ---------------------------------------------------


class LinkView(Protocol):
    """What the duplicate-link rule reads of a link, as one end holds it."""

    @property
    def peer(self) -> bytes: ...

    @property
    def initiator(self) -> bool: ...

    @property
    def link_id(self) -> bytes: ...


_LinkT = TypeVar("_LinkT", bound=LinkView)


def link_rank(own_key: bytes, link: LinkView) -> tuple[bool, bytes]:
    """The place of ``link`` in the one order both ends share: first the links
    initiated by the laptop with the lower key, then by link id. Both ends
    compute the same rank for the same link: seen from the other end, both
    ``initiator`` and ``own_key < peer`` flip."""
    initiated_by_lower = (own_key < link.peer) == link.initiator
    return (not initiated_by_lower, link.link_id)


def keep_link(own_key: bytes, links: Iterable[_LinkT]) -> _LinkT:
    """Of several links to one peer, the one both ends keep (the first in
    ``link_rank`` order); the others are to be closed. Whatever order the links
    completed in, and whoever dialled them, both ends pick the same one, so an
    end only ever closes links the other end closes too."""
    candidates = list(links)
    if not candidates or len({link.peer for link in candidates}) != 1:
        raise LocalProtocolError("keep_link compares links to one and the same peer")
    return min(candidates, key=lambda link: link_rank(own_key, link))
