"""An encrypted save of one member's view of a meeting, and resuming from it.

Rules of this file (pure: bytes in, bytes out; writing the file is net's job):
- The key comes from the passphrase with Argon2id (RFC 9106) at libsodium's
  MODERATE cost by default (256 MiB, 3 passes: about 0.75 s here), with a
  random 16-byte salt; the payload is sealed with XSalsa20-Poly1305
  (``crypto_secretbox``, NaCl) under a random 24-byte nonce.
- The file: ``MAGIC | version | opslimit u32 | memlimit u64 | salt | nonce |
  box | check``. ``check`` is an unkeyed BLAKE2b-256 of everything before
  it: it tells a damaged (cut or altered) file from a wrong passphrase. It
  protects nothing: the box's MAC does, and a file whose check was forged
  along with its contents still fails to open.
- The cost parameters are read from the file but bounded, so a crafted file
  cannot make this laptop spend a gigabyte or a minute before failing.
- The payload holds the member's signing key, the meeting id, the creator,
  every log envelope and fork proof, and optionally the template text.
  Resuming re-ingests every envelope through the normal authenticated path
  (``Session.receive``), so a save carries no trust the log does not.
- It never holds the ring secret (SPEC §4.2). With it, anyone could compute
  the member's link tag ``x·Hp(event)`` for every poll and rating in the log
  and pick out each of their anonymous votes and ratings (§13.1), so a
  seized laptop plus a coerced passphrase would undo the anonymity of the
  whole meeting. Keeping it only while something anonymous is open would not
  help: one save written at such a moment reveals every past vote, and the
  file system may keep the blocks of replaced saves. So a laptop that resumes
  from a save cannot vote or rate anonymously in that meeting any more
  (core/anon.py says so in one sentence); answers and pause requests still
  go out anonymously, as they are not signed.
- Format 1 saves held the ring secret: this version does not open them.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.secret
from nacl import pwhash
from nacl.signing import SigningKey

from .codec import Limits, pack, unpack
from .errors import LocalError, MalformedFrame
from .feed import MEETING_ID_BYTES
from .i18n import _, ngettext
from .identity import KEY_BYTES, Identity
from .session import Clock, Session

MAGIC = b"RELSEC-SAVE\x00"
VERSION = 2  # 1 held the ring secret
SALT_BYTES = pwhash.argon2id.SALTBYTES
NONCE_BYTES = nacl.secret.SecretBox.NONCE_SIZE
CHECK_BYTES = 32
_HEAD = struct.Struct(">BIQ")  # version, opslimit, memlimit
HEADER_BYTES = len(MAGIC) + _HEAD.size + SALT_BYTES + NONCE_BYTES
OPSLIMIT = pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT = pwhash.argon2id.MEMLIMIT_MODERATE
# What a file may ask for: up to libsodium's SENSITIVE cost (1 GiB, 4 passes).
MAX_OPSLIMIT = pwhash.argon2id.OPSLIMIT_SENSITIVE
MAX_MEMLIMIT = pwhash.argon2id.MEMLIMIT_SENSITIVE
MIN_PASSPHRASE = 8
PAYLOAD_VERSION = 2
# A save is this laptop's own data, but it is read back with limits anyway.
SAVE_LIMITS = Limits(
    max_bytes=1 << 30, max_depth=4, max_str=1 << 20, max_bin=64 * 1024, max_array=1 << 22
)


class SaveError(LocalError):
    """A save cannot be written or opened (the disk, a wrong passphrase, a
    damaged file, another meeting's file); ``str()`` is one plain sentence."""

    code = "save"


class WrongPassphrase(SaveError):
    code = "wrong_passphrase"


class DamagedSave(SaveError):
    code = "damaged_save"


class OtherMeeting(SaveError):
    code = "other_meeting"


@dataclass(frozen=True, slots=True)
class SaveKey:
    """A passphrase stretched once, reusable for later saves of the same file
    (each with a fresh nonce), so saving often does not cost a KDF each time."""

    key: bytes = field(repr=False)
    salt: bytes
    opslimit: int
    memlimit: int


@dataclass(frozen=True, slots=True)
class SavePayload:
    identity: Identity
    mid: bytes
    creator: bytes
    envelopes: tuple[bytes, ...]
    forks: tuple[tuple[bytes, bytes], ...] = ()
    template: str | None = None  # the template's TOML, if this laptop started from a file


def derive_key(
    passphrase: str,
    *,
    salt: bytes | None = None,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
) -> SaveKey:
    """Stretch ``passphrase`` with Argon2id (RFC 9106) into a secretbox key."""
    if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE:
        raise SaveError(
            _(
                "Choose a passphrase of at least {n} characters "
                "(a few words together are easy to remember)."
            ).format(n=MIN_PASSPHRASE)
        )
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key: bytes = pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    return SaveKey(key, salt, opslimit, memlimit)


def _encode_payload(payload: SavePayload) -> bytes:
    return pack(
        {
            "v": PAYLOAD_VERSION,
            "mid": payload.mid,
            "creator": payload.creator,
            "seed": bytes(payload.identity.signing_key),
            "log": list(payload.envelopes),
            "forks": [list(pair) for pair in payload.forks],
            "template": payload.template,
        }
    )


def seal_save(payload: SavePayload, passphrase: str | SaveKey) -> bytes:
    """The bytes of a save file for ``payload``."""
    key = derive_key(passphrase) if isinstance(passphrase, str) else passphrase
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + _HEAD.pack(VERSION, key.opslimit, key.memlimit) + key.salt + nonce
    box = nacl.secret.SecretBox(key.key).encrypt(_encode_payload(payload), nonce).ciphertext
    body = header + box
    return body + hashlib.blake2b(body, digest_size=CHECK_BYTES).digest()


@dataclass(frozen=True, slots=True)
class _Header:
    opslimit: int
    memlimit: int
    salt: bytes
    nonce: bytes
    box: bytes


def _read_header(blob: bytes) -> _Header:
    if not blob.startswith(MAGIC):
        if MAGIC.startswith(blob):
            raise DamagedSave(_("This save file is cut short; it cannot be opened."))
        raise DamagedSave(_("This is not a relsec save file."))
    if len(blob) < HEADER_BYTES + nacl.secret.SecretBox.MACBYTES + CHECK_BYTES:
        raise DamagedSave(_("This save file is cut short; it cannot be opened."))
    body, check = blob[:-CHECK_BYTES], blob[-CHECK_BYTES:]
    if hashlib.blake2b(body, digest_size=CHECK_BYTES).digest() != check:
        raise DamagedSave(
            _("This save file is damaged (cut short or altered); it cannot be opened.")
        )
    version, opslimit, memlimit = _HEAD.unpack_from(blob, len(MAGIC))
    if version == 1:
        raise DamagedSave(
            _(
                "This save file was written by an older relsec and holds the key that shows "
                "which anonymous votes were yours; this version does not open it: delete it."
            )
        )
    if version != VERSION:
        raise DamagedSave(
            _(
                "This save file has format {version}, which this version of relsec cannot read."
            ).format(version=version)
        )
    if not (
        pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= MAX_OPSLIMIT
        and pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT
    ):
        raise DamagedSave(
            _("This save file asks for an unreasonable key cost; it cannot be opened.")
        )
    at = len(MAGIC) + _HEAD.size
    salt = body[at : at + SALT_BYTES]
    nonce = body[at + SALT_BYTES : HEADER_BYTES]
    return _Header(opslimit, memlimit, salt, nonce, body[HEADER_BYTES:])


def _decode_payload(plain: bytes) -> SavePayload:
    try:
        data = unpack(plain, SAVE_LIMITS)
    except MalformedFrame:
        raise DamagedSave(_("This save file's contents are unreadable.")) from None
    try:
        if not isinstance(data, dict) or data.get("v") != PAYLOAD_VERSION:
            raise ValueError
        mid, creator, seed = data["mid"], data["creator"], data["seed"]
        if not (
            isinstance(mid, bytes)
            and len(mid) == MEETING_ID_BYTES
            and isinstance(creator, bytes)
            and len(creator) == KEY_BYTES
            and isinstance(seed, bytes)
            and len(seed) == KEY_BYTES
        ):
            raise ValueError
        log, forks, template = data["log"], data["forks"], data["template"]
        if not (isinstance(log, list) and all(isinstance(e, bytes) for e in log)):
            raise ValueError
        if not (
            isinstance(forks, list)
            and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(e, bytes) for e in p)
                for p in forks
            )
        ):
            raise ValueError
        if template is not None and not isinstance(template, str):
            raise ValueError
    except (ValueError, KeyError):
        raise DamagedSave(_("This save file's contents are not a relsec meeting.")) from None
    return SavePayload(
        identity=Identity(SigningKey(seed), None),  # no ring secret: see the rules above
        mid=mid,
        creator=creator,
        envelopes=tuple(log),
        forks=tuple((p[0], p[1]) for p in forks),
        template=template,
    )


def open_save(blob: bytes, passphrase: str, *, expected_mid: bytes | None = None) -> SavePayload:
    """Open a save; raises ``DamagedSave``, ``WrongPassphrase`` or (when
    ``expected_mid`` is given and differs) ``OtherMeeting``."""
    return open_save_keyed(blob, passphrase, expected_mid=expected_mid)[0]


def open_save_keyed(
    blob: bytes, passphrase: str, *, expected_mid: bytes | None = None
) -> tuple[SavePayload, SaveKey]:
    """``open_save``, also returning the file's key, so the same file can be
    saved again later without stretching the passphrase a second time."""
    header = _read_header(blob)
    if not isinstance(passphrase, str) or not passphrase:
        raise WrongPassphrase(_("That passphrase does not open this save file."))
    key = _key_for(passphrase, header)
    try:
        plain = nacl.secret.SecretBox(key.key).decrypt(header.box, header.nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(_("That passphrase does not open this save file.")) from None
    payload = _decode_payload(plain)
    if expected_mid is not None and payload.mid != expected_mid:
        raise OtherMeeting(_("This save file belongs to another meeting."))
    return payload, key


def _key_for(passphrase: str, header: _Header) -> SaveKey:
    key: bytes = pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        header.salt,
        opslimit=header.opslimit,
        memlimit=header.memlimit,
    )
    return SaveKey(key, header.salt, header.opslimit, header.memlimit)


def payload_of(session: Session, *, template: str | None = None) -> SavePayload:
    """What a save holds for ``session``: the signing key but not the ring
    secret, every envelope in fold order (so a member's ``roster.add``
    usually comes before their own entries), and every fork proof."""
    log = session.log
    envelopes = tuple(entry.envelope for entry in sorted(log.entries(), key=lambda e: e.order_key))
    forks = tuple(
        (pair[0], pair[1]) for pair in (proof.envelopes() for proof in log.forks.values())
    )
    return SavePayload(
        identity=Identity(session.identity.signing_key, None),  # never the ring secret
        mid=session.mid,
        creator=session.creator,
        envelopes=envelopes,
        forks=forks,
        template=template,
    )


# How a restore batches the saved entries: room for the sync message's own
# fields around a batch (FRAME_LIMITS: 1 MiB).
RESTORE_BATCH_BYTES = 900 * 1024
RESTORE_BATCH_ENTRIES = 8 * 1024


def _batches(envelopes: list[bytes]) -> list[list[bytes]]:
    batches: list[list[bytes]] = [[]]
    size = 0
    for envelope in envelopes:
        if batches[-1] and (
            size + len(envelope) + 8 > RESTORE_BATCH_BYTES
            or len(batches[-1]) >= RESTORE_BATCH_ENTRIES
        ):
            batches.append([])
            size = 0
        batches[-1].append(envelope)
        size += len(envelope) + 8
    return batches


def restore_session(payload: SavePayload, clock: Clock) -> Session:
    """A Session holding everything the save held, re-checked entry by entry.

    Entries go through ``Session.receive`` as if a peer had sent them (the
    member's own key stands in as that peer; nothing is sent). A batch may
    hold an author's entries before the ``roster.add`` that introduces them
    in a later batch, so passes repeat while they make progress."""
    session = Session.join(payload.identity, payload.mid, payload.creator, clock)
    me = payload.identity.key
    remaining = list(payload.envelopes)
    while remaining:
        before = len(session.log)
        for batch in _batches(remaining):
            session.receive(me, pack({"t": "entries", "mid": payload.mid, "e": batch}))
        held = {entry.envelope for entry in session.log.entries()}
        remaining = [envelope for envelope in remaining if envelope not in held]
        if len(session.log) == before:
            break
    for pair in payload.forks:
        session.receive(me, pack({"t": "fork", "mid": payload.mid, "p": list(pair)}))
    session.take_sends()  # "want" replies addressed to ourselves: nobody to send them to
    if remaining:
        raise DamagedSave(
            ngettext(
                "{bad} of {n} entry in this save does not check out; it cannot be resumed.",
                "{bad} of {n} entries in this save do not check out; it cannot be resumed.",
                len(payload.envelopes),
            ).format(bad=len(remaining), n=len(payload.envelopes))
        )
    return session


__all__ = [
    "RESTORE_BATCH_BYTES",
    "RESTORE_BATCH_ENTRIES",
    "DamagedSave",
    "OtherMeeting",
    "SaveError",
    "SaveKey",
    "SavePayload",
    "WrongPassphrase",
    "derive_key",
    "open_save",
    "open_save_keyed",
    "payload_of",
    "restore_session",
    "seal_save",
]
