"""Admission: the SPAKE2 join handshake, and the guard on the join code's guesses.

Rules of this file (normative text: protocol/SPEC.md §12.4-§12.8): sans-IO, so
bytes come in and bytes to send and results go out; the code, the PAKE secret
and the channel keys never appear in a message, a repr or an exception; every
remote input is shape-checked before use; a handshake that raised is dead;
``JoinerHandshake.hello`` is a hook that tests override to play a modified joiner.
Join codes themselves are core/joincode.py; the roster safety number that
members compare after a join is core/safety.py.

Why an eavesdropper cannot brute-force the code offline. The code is never
used as a key. It enters only SPAKE2 (Abdalla and Pointcheval, CT-RSA 2005;
the symmetric variant of the ``spake2`` package, as magic-wormhole uses it),
where each side sends ``x*G + pw*S`` for a fresh secret ``x``. For every
candidate code ``pw'`` that element minus ``pw'*S`` is a uniformly random
group element, so the recorded pake messages fit every code equally well, and
everything sent later (confirmation MACs, sealed payloads) is keyed by the
shared secret ``x*y*G``, which an observer cannot compute without solving
Diffie-Hellman, even if it learns the code later. An active attacker commits
to one code in its own pake message and learns only whether that one code was
right: a side sends its confirmation MAC only after it holds the peer's pake
message. So each guess costs one online run, the sponsor counts every run that
got a pake message but no valid confirmation (a wrong MAC, a timeout, a
hang-up) as a spent guess, and ``CodeGuard`` changes the words after three.
The nameplate is public (it is in mDNS), so the secret is the three distinct
words: with the 333-word list, 333*332*331 or about 36.6 million codes, and
three guesses per code win with a chance of about 1 in 12 million.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from nacl import bindings
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from spake2 import SPAKE2_Symmetric

from .codec import Limits, pack, unpack
from .errors import LocalProtocolError, MalformedFrame, RemoteProtocolError
from .feed import MEETING_ID_BYTES
from .fields import name_problem
from .identity import KEY_BYTES
from .joincode import JoinCode, new_join_code
from .state import MAX_NAME

# --- errors ---------------------------------------------------------------


class WrongCode(RemoteProtocolError):
    """The peer's confirmation MAC does not match: the two laptops used
    different codes (or someone is guessing)."""

    code = "wrong_code"

    def __init__(
        self,
        message: str = (
            "The join code did not match on the other laptop; "
            "check the code with the person who shared it and try again."
        ),
    ) -> None:
        super().__init__(message)


class UnexpectedMessage(RemoteProtocolError):
    """A well-formed handshake message arrived in a state that does not take it."""

    code = "unexpected_message"


class BadPakeMessage(MalformedFrame):
    """The peer's SPAKE2 element is not a valid group element (or is our own
    message reflected back)."""

    code = "bad_pake"


class BadSeal(RemoteProtocolError):
    """A sealed payload failed authentication: tampered, or from another run."""

    code = "bad_seal"


# --- the join handshake ---------------------------------------------------

JOIN_CONTEXT: Final = b"relsec/v2/join"  # SPAKE2 idSymmetric
MAC_BYTES: Final = 32
_PAKE_MESSAGE_BYTES: Final = 33  # the spake2 side byte b"S" and a 32-byte element
_SIDE_SYMMETRIC: Final = b"S"
_KDF_PERSON: Final = b"relsec/v2/kdf"
_MAC_PERSON: Final = b"relsec/v2/mac"
_SEALED_MIN: Final = SecretBox.NONCE_SIZE + SecretBox.MACBYTES + 1

# Outer frames are tiny; inner (sealed) payloads carry at most a 64-character
# name (256 UTF-8 bytes) and three 32-byte keys.
_OUTER_LIMITS: Final = Limits(
    max_bytes=2048, max_depth=2, max_str=16, max_bin=1024, max_array=4, max_map=4
)
_INNER_LIMITS: Final = Limits(
    max_bytes=1024, max_depth=2, max_str=4 * MAX_NAME, max_bin=64, max_array=4, max_map=4
)
# Each message type, and the one value field it carries (besides "t").
_FIELDS: Final = {"pake": "m", "confirm": "c", "hello": "s", "grant": "s"}


def _kdf(secret: bytes, label: bytes) -> bytes:
    """One subkey per label: keyed BLAKE2b as a PRF (RFC 7693 §2.5, the
    construction of libsodium's crypto_kdf), key = the SPAKE2 output."""
    return hashlib.blake2b(label, key=secret, digest_size=32, person=_KDF_PERSON).digest()


def _mac(key: bytes, transcript: bytes) -> bytes:
    return hashlib.blake2b(transcript, key=key, digest_size=MAC_BYTES, person=_MAC_PERSON).digest()


@dataclass(frozen=True, slots=True, repr=False)
class _Keys:
    """Everything derived from one SPAKE2 run. Key confirmation follows RFC 9382
    §4: separate confirmation keys per role, each MAC over the transcript, so a
    MAC reflected back to its sender never verifies."""

    joiner_tag: bytes
    sponsor_tag: bytes
    joiner_box: SecretBox  # seals joiner -> sponsor
    sponsor_box: SecretBox  # seals sponsor -> joiner

    @classmethod
    def derive(cls, secret: bytes, transcript: bytes) -> _Keys:
        return cls(
            joiner_tag=_mac(_kdf(secret, b"confirm/joiner"), transcript),
            sponsor_tag=_mac(_kdf(secret, b"confirm/sponsor"), transcript),
            joiner_box=SecretBox(_kdf(secret, b"box/joiner-to-sponsor")),
            sponsor_box=SecretBox(_kdf(secret, b"box/sponsor-to-joiner")),
        )


class _Role(enum.Enum):
    JOINER = "joiner"
    SPONSOR = "sponsor"


class _State(enum.Enum):
    NEW = "new"  # nothing sent or received yet
    STARTED = "started"  # our pake message is out; the peer's has not come
    KEYED = "keyed"  # SPAKE2 done and our MAC sent; waiting for the peer's MAC
    AWAIT_HELLO = "await_hello"  # sponsor: the joiner's sealed keys and name
    DECIDING = "deciding"  # sponsor: JoinRequest handed out; waiting for grant()
    AWAIT_GRANT = "await_grant"  # joiner: the sponsor's sealed grant
    DONE = "done"
    FAILED = "failed"


# The whole transition table: which message each role takes in each state.
_EXPECTS: Final[dict[_Role, dict[_State, str]]] = {
    _Role.JOINER: {
        _State.NEW: "pake",
        _State.STARTED: "pake",
        _State.KEYED: "confirm",
        _State.AWAIT_GRANT: "grant",
    },
    _Role.SPONSOR: {
        _State.NEW: "pake",
        _State.STARTED: "pake",
        _State.KEYED: "confirm",
        _State.AWAIT_HELLO: "hello",
    },
}


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """What a sponsor learns from a joiner who knew the code."""

    key: bytes  # Ed25519 public signing key
    ring_key: bytes  # ed25519 point for ring signatures
    name: str
    display: bool = False  # a room display asking to view, never to be a member (§12.12)


@dataclass(frozen=True, slots=True)
class JoinGranted:
    """What a joiner learns once the sponsor has admitted it."""

    mid: bytes
    creator: bytes
    sponsor: bytes


@dataclass(frozen=True, slots=True)
class HandshakeStep:
    """The outcome of one received message: payloads to send, in order (the
    driver frames each with ``codec.frame``), and at most one result."""

    send: tuple[bytes, ...] = ()
    result: JoinRequest | JoinGranted | None = None


def _is_point(key: object) -> bool:
    # Canonical, on the curve, in the prime-order subgroup, not small order:
    # honest Ed25519 and ring keys always are.
    return (
        isinstance(key, bytes)
        and len(key) == KEY_BYTES
        and bool(bindings.crypto_core_ed25519_is_valid_point(key))
    )


def _decode(payload: bytes, limits: Limits, *fields: frozenset[str]) -> dict[str, Any]:
    """Unpack a canonical map with exactly one of the ``fields`` sets, or
    raise MalformedFrame."""
    value = unpack(payload, limits)
    if not isinstance(value, dict) or set(value) not in fields:
        raise MalformedFrame("handshake message has the wrong fields")
    return value


def _decode_outer(payload: bytes) -> tuple[str, bytes]:
    value = unpack(payload, _OUTER_LIMITS)
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise MalformedFrame("handshake message without a type")
    kind = value["t"]
    if kind not in _FIELDS:
        raise MalformedFrame("unknown handshake message type")
    data = value.get(_FIELDS[kind])
    if set(value) != {"t", _FIELDS[kind]} or not isinstance(data, bytes):
        raise MalformedFrame(f"{kind} message has the wrong fields")
    return kind, data


class _Handshake(ABC):
    """What joiner and sponsor share: SPAKE2 and key confirmation. Either side
    may send its pake message first, or both at once (SPAKE2 is symmetric)."""

    _role: _Role

    def __init__(self, code: JoinCode) -> None:
        if not isinstance(code, JoinCode):
            raise LocalProtocolError("a handshake needs a JoinCode")
        self._spake: Any = SPAKE2_Symmetric(code.password, idSymmetric=JOIN_CONTEXT)
        self._state = _State.NEW
        self._my_pake: bytes | None = None
        self._keys: _Keys | None = None
        self._confirmed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(state={self._state.value})"

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def guess_spent(self) -> bool:
        """The peer's pake message has been used: the peer could now test one
        guess of the code against our MAC."""
        return self._keys is not None

    @property
    def confirmed(self) -> bool:
        """The peer proved it knows the code (its MAC verified)."""
        return self._confirmed

    @property
    def failed(self) -> bool:
        return self._state is _State.FAILED

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def start(self) -> bytes:
        """Our pake message. Optional: ``receive`` sends it when needed."""
        if self._state is not _State.NEW:
            raise LocalProtocolError("start() is only allowed before anything else")
        self._state = _State.STARTED
        return pack({"t": "pake", "m": self._start_pake()})

    def receive(self, payload: bytes) -> HandshakeStep:
        """Take one message from the peer. Raises a RemoteProtocolError (and the
        handshake is dead) when the message is malformed, out of order or
        forged, or the peer used another code (``WrongCode``)."""
        if self._state in (_State.DONE, _State.FAILED):
            raise LocalProtocolError(f"the handshake is {self._state.value}")
        try:
            kind, data = _decode_outer(payload)
            if _EXPECTS[self._role].get(self._state) != kind:
                raise UnexpectedMessage(f"a {kind} message is not expected now")
            if kind == "pake":
                return self._on_pake(data)
            if kind == "confirm":
                return self._on_confirm(data)
            return self._on_sealed(data)
        except RemoteProtocolError:
            self._fail()
            raise

    # -- shared steps --

    def _start_pake(self) -> bytes:
        message: bytes = self._spake.start()
        self._my_pake = message
        return message

    def _on_pake(self, peer: bytes) -> HandshakeStep:
        if len(peer) != _PAKE_MESSAGE_BYTES or peer[:1] != _SIDE_SYMMETRIC:
            raise BadPakeMessage("pake message of the wrong size or side")
        send: list[bytes] = []
        mine = self._my_pake
        if mine is None:
            mine = self._start_pake()
            send.append(pack({"t": "pake", "m": mine}))
        try:
            # Rejects points off the curve, outside the prime-order subgroup,
            # the identity, and our own message reflected back.
            secret: bytes = self._spake.finish(peer)
        except Exception:
            raise BadPakeMessage("pake message is not a valid group element") from None
        self._spake = None  # the exponent and the password are needed no more
        transcript = mine + peer if self._role is _Role.JOINER else peer + mine
        self._keys = _Keys.derive(secret, transcript)
        self._state = _State.KEYED
        # Our MAC goes out now, before we check the peer's: both sides then learn
        # of a wrong code at once. The peer has already committed to its guess.
        send.append(pack({"t": "confirm", "c": self._my_tag(self._keys)}))
        return HandshakeStep(send=tuple(send))

    def _on_confirm(self, mac: bytes) -> HandshakeStep:
        keys = self._require_keys()
        if not hmac.compare_digest(mac, self._peer_tag(keys)):
            raise WrongCode()
        self._confirmed = True
        return self._after_confirm(keys)

    def _require_keys(self) -> _Keys:
        if self._keys is None:
            raise LocalProtocolError("no key yet")  # unreachable by the table
        return self._keys

    def _fail(self) -> None:
        self._state = _State.FAILED
        self._spake = None  # drop the secret exponent and password early

    # -- per role --

    @abstractmethod
    def _my_tag(self, keys: _Keys) -> bytes: ...

    @abstractmethod
    def _peer_tag(self, keys: _Keys) -> bytes: ...

    @abstractmethod
    def _after_confirm(self, keys: _Keys) -> HandshakeStep: ...

    @abstractmethod
    def _on_sealed(self, sealed: bytes) -> HandshakeStep: ...


def _open(box: SecretBox, sealed: bytes, *fields: frozenset[str]) -> dict[str, Any]:
    """The sealed map, which has exactly one of the ``fields`` sets."""
    if len(sealed) < _SEALED_MIN:
        raise BadSeal("sealed payload too short")
    try:
        plaintext = box.decrypt(sealed)
    except CryptoError:
        raise BadSeal("sealed payload failed authentication") from None
    return _decode(plaintext, _INNER_LIMITS, *fields)


_HELLO_FIELDS: Final = frozenset({"key", "ring", "name"})
# A room display adds ``as: "display"`` (SPEC §12.7, §12.12).
_DISPLAY_HELLO_FIELDS: Final = _HELLO_FIELDS | {"as"}
DISPLAY_ROLE: Final = "display"
_GRANT_FIELDS: Final = frozenset({"mid", "creator", "sponsor"})


class JoinerHandshake(_Handshake):
    """The laptop that wants in. Flow (each line one message):

    ``start()`` -> pake; ``receive(pake)`` -> confirm; ``receive(confirm)`` ->
    sealed hello (our keys and name); ``receive(grant)`` -> ``JoinGranted``."""

    _role = _Role.JOINER

    def __init__(
        self, code: JoinCode, key: bytes, ring_key: bytes, name: str, *, display: bool = False
    ) -> None:
        if not (_is_point(key) and _is_point(ring_key)):
            raise LocalProtocolError("key and ring_key must be 32-byte ed25519 public keys")
        problem = name_problem(name)
        if problem is not None:
            raise LocalProtocolError(problem)
        super().__init__(code)
        self._key, self._ring_key, self._name = key, ring_key, name
        self._display = display

    def hello(self) -> dict[str, object]:
        """What the sealed hello carries (checked when the handshake is made).
        A hook: tests play a modified joiner by overriding it."""
        hello: dict[str, object] = {"key": self._key, "ring": self._ring_key, "name": self._name}
        if self._display:
            hello["as"] = DISPLAY_ROLE
        return hello

    def _my_tag(self, keys: _Keys) -> bytes:
        return keys.joiner_tag

    def _peer_tag(self, keys: _Keys) -> bytes:
        return keys.sponsor_tag

    def _after_confirm(self, keys: _Keys) -> HandshakeStep:
        # Only now, talking to someone who proved the code, do our keys go out.
        sealed = bytes(keys.joiner_box.encrypt(pack(self.hello())))
        self._state = _State.AWAIT_GRANT
        return HandshakeStep(send=(pack({"t": "hello", "s": sealed}),))

    def _on_sealed(self, sealed: bytes) -> HandshakeStep:
        grant = _open(self._require_keys().sponsor_box, sealed, _GRANT_FIELDS)
        mid, creator, sponsor = grant["mid"], grant["creator"], grant["sponsor"]
        if not (isinstance(mid, bytes) and len(mid) == MEETING_ID_BYTES):
            raise MalformedFrame("grant: the meeting id must be 16 bytes")
        if not (_is_point(creator) and _is_point(sponsor)):
            raise MalformedFrame("grant: creator and sponsor must be ed25519 public keys")
        self._state = _State.DONE
        return HandshakeStep(result=JoinGranted(mid=mid, creator=creator, sponsor=sponsor))


class SponsorHandshake(_Handshake):
    """A member admitting a joiner. Flow: ``receive(pake)`` -> pake (unless
    ``start()`` sent it already) and confirm; ``receive(confirm)`` -> nothing;
    ``receive(hello)`` -> ``JoinRequest``; the node appends ``roster.add`` and
    calls ``grant()`` -> sealed grant.

    When a run ends, however it ends, pass it to ``CodeGuard.settle``: a run
    that used a pake message but saw no valid MAC is a spent guess."""

    _role = _Role.SPONSOR

    def __init__(self, code: JoinCode) -> None:
        super().__init__(code)
        self._settled = False

    def _my_tag(self, keys: _Keys) -> bytes:
        return keys.sponsor_tag

    def _peer_tag(self, keys: _Keys) -> bytes:
        return keys.joiner_tag

    def _after_confirm(self, keys: _Keys) -> HandshakeStep:
        self._state = _State.AWAIT_HELLO
        return HandshakeStep()

    def _on_sealed(self, sealed: bytes) -> HandshakeStep:
        hello = _open(self._require_keys().joiner_box, sealed, _HELLO_FIELDS, _DISPLAY_HELLO_FIELDS)
        key, ring, name = hello["key"], hello["ring"], hello["name"]
        if not (_is_point(key) and _is_point(ring)):
            raise MalformedFrame("hello: key and ring must be ed25519 public keys")
        problem = name_problem(name)
        if problem is not None:
            raise MalformedFrame(f"hello: {problem}")
        if "as" in hello and hello["as"] != DISPLAY_ROLE:
            raise MalformedFrame("hello: as must be display")
        self._state = _State.DECIDING
        display = "as" in hello
        return HandshakeStep(result=JoinRequest(key=key, ring_key=ring, name=name, display=display))

    def grant(self, mid: bytes, creator: bytes, sponsor: bytes) -> bytes:
        """The sealed grant, once ``roster.add`` for the joiner is appended."""
        if self._state is not _State.DECIDING:
            raise LocalProtocolError("grant() needs a JoinRequest first")
        if not (isinstance(mid, bytes) and len(mid) == MEETING_ID_BYTES):
            raise LocalProtocolError("mid must be 16 bytes")
        if not (_is_point(creator) and _is_point(sponsor)):
            raise LocalProtocolError("creator and sponsor must be ed25519 public keys")
        box = self._require_keys().sponsor_box
        sealed = bytes(box.encrypt(pack({"mid": mid, "creator": creator, "sponsor": sponsor})))
        self._state = _State.DONE
        return pack({"t": "grant", "s": sealed})

    def _take_charge(self) -> bool:
        """True exactly once if this run spent a guess without a valid MAC."""
        if self._settled or not self.guess_spent or self.confirmed:
            return False
        self._settled = True
        return True


@dataclass(repr=False)
class CodeGuard:
    """Counts spent guesses on this laptop and replaces the code's words.

    ``rotate`` keeps the nameplate: it is public and carries no secret, so the
    mDNS advertisement stays as it is (re-announcing takes about 1.6 s) and
    joiners already browsing still find the meeting; only the words change."""

    code: JoinCode = field(default_factory=new_join_code)
    max_failures: int = 3
    failures: int = 0

    @property
    def should_rotate(self) -> bool:
        return self.failures >= self.max_failures

    def record_failure(self) -> bool:
        """Count one failed attempt; True when it is time to ``rotate``."""
        self.failures += 1
        return self.should_rotate

    def settle(self, handshake: SponsorHandshake) -> bool:
        """Call once a sponsor run ends (success, error, timeout or hang-up).
        Counts it if it spent a guess; True when it is time to ``rotate``."""
        if handshake._take_charge():
            return self.record_failure()
        return self.should_rotate

    def follow(self, code: JoinCode) -> None:
        """The code was changed elsewhere (another laptop rotated it): guard
        that one, and keep the count, so every ``max_failures`` guesses spent
        on this laptop write one code change, whichever code they were
        against, and the meeting-wide limit on code changes sees them all
        (SPEC §12.8)."""
        self.code = code

    def rotate(self) -> JoinCode:
        """A new code with the same nameplate; the count starts again."""
        fresh = new_join_code(self.code.nameplate)
        while fresh.words == self.code.words:
            fresh = new_join_code(self.code.nameplate)
        self.code = fresh
        self.failures = 0
        return fresh

    def __repr__(self) -> str:
        return f"CodeGuard(code={self.code!r}, failures={self.failures}/{self.max_failures})"


# --- paying for join runs up front (SPEC §12.8, §12.10) ---------------------

# A laptop starts at most one sponsor run at a time. Starting one charges the
# pause that follows a spent guess at once, before the joiner's pake message
# is used, and a run that ends confirmed (or without using the pake) gets it
# back: a room filling up is not slowed, and a guesser cannot run many
# attempts in parallel before any of them is charged (issue 13.1).
JOIN_PAUSE_MS: Final = 5_000  # after the first spent guess of a streak
JOIN_PAUSE_STEP_MS: Final = 1_000  # each further spent guess adds this much
JOIN_PAUSE_MAX_MS: Final = 8_000  # so an honest joiner waits < 10 s after an attack
JOIN_STREAK_FORGET_MS: Final = 60_000  # a minute with no spent guess: the pause shrinks back
# At least JOIN_PAUSE_MS between the starts of two runs that spend a guess:
# at most this many guesses tested in any minute, per laptop.
JOIN_GUESSES_PER_MINUTE: Final = 60_000 // JOIN_PAUSE_MS
# Meeting-wide: every spent guess counts against the code, every 3 change it,
# and every change is a `join.code` entry that all laptops hold. With this
# many `join.code` entries dated within the window, no laptop starts a run or
# rotates: the code is retired until the window slides on.
CODE_CHANGES_PER_WINDOW: Final = 10
CODE_CHANGE_WINDOW_MS: Final = 600_000


class JoinRefusal(enum.Enum):
    """Why a sponsor closes a join connection without using its pake."""

    BUSY = "busy"  # another run is in progress on this laptop
    PAUSING = "pausing"  # a guess was spent a moment ago
    RETIRED = "retired"  # the meeting-wide limit: too many code changes lately


def recent_code_changes(dated: list[int], now_ms: int) -> int:
    """How many of the `join.code` entries, given by their `ts`, count
    against the meeting-wide limit now (dated within the window, or later)."""
    return sum(1 for ts in dated if ts >= now_ms - CODE_CHANGE_WINDOW_MS)


def joining_retired(code_changes: int) -> bool:
    """The meeting-wide limit: no runs and no rotations while this holds."""
    return code_changes >= CODE_CHANGES_PER_WINDOW


def join_pause_ms(streak: int) -> int:
    """The pause after the ``streak``-th spent guess in a row (1, 2, ...)."""
    return min(JOIN_PAUSE_MS + JOIN_PAUSE_STEP_MS * (streak - 1), JOIN_PAUSE_MAX_MS)


@dataclass
class JoinGate:
    """One laptop's lock and pause on sponsor runs; times in monotonic ms.

    ``start`` before the joiner's pake message is used; ``finish`` exactly
    once after every run that started, however it ended."""

    running: bool = False
    streak: int = 0  # spent guesses in a row, the one being charged included
    pause_until: int = 0
    last_spent: int | None = None
    _refund: tuple[int, int] | None = None  # (streak, pause_until) before the charge

    def start(self, now_ms: int, code_changes: Callable[[], int]) -> JoinRefusal | None:
        """Take the lock and charge one spent guess, or say why not.
        ``code_changes`` counts the `join.code` entries in the window; it
        reads the log, so it is asked only when nothing cheaper refuses."""
        if self.running:
            return JoinRefusal.BUSY
        if now_ms < self.pause_until:
            return JoinRefusal.PAUSING
        if joining_retired(code_changes()):
            return JoinRefusal.RETIRED
        if self.last_spent is not None and now_ms - self.last_spent >= JOIN_STREAK_FORGET_MS:
            self.streak = 0
        self._refund = (self.streak, self.pause_until)
        self.running = True
        self.streak += 1
        self.pause_until = now_ms + join_pause_ms(self.streak)
        return None

    def finish(self, now_ms: int, *, spent: bool) -> None:
        """Release the lock. ``spent``: the run used the pake and saw no
        valid MAC; the pause then runs from now. Otherwise the charge taken
        at ``start`` is given back."""
        if not self.running or self._refund is None:
            raise LocalProtocolError("finish() without a run in progress")
        self.running = False
        if spent:
            self.last_spent = now_ms
            self.pause_until = now_ms + join_pause_ms(self.streak)
        else:
            self.streak, self.pause_until = self._refund
        self._refund = None
