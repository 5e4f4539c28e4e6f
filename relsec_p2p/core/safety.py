"""The roster safety number: twenty digits that every member's screen shows alike.

Rules of this file (normative text: protocol/SPEC.md §12.9): sans-IO and
deterministic, since every laptop must compute the same number from the same
roster: the meeting id, the roster epoch and the members' public signing keys
(in sorted order), hashed with BLAKE2b in fixed-width fields and then
stretched with Argon2id (RFC 9106). Members compare the number aloud; a
different number means a different roster. ``spoken_safety_number`` gives
the words to read it aloud in the language shown, grouped as it is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

from nacl import pwhash

from .errors import LocalProtocolError
from .i18n import NC_, pgettext
from .identity import KEY_BYTES

SAFETY_DIGITS: Final = 20
# Argon2id (RFC 9106) with t=3 passes over 2 MiB: about 2 ms here. The number
# is ~66 bits; a member who wanted two different rosters to show the same
# number would grind keys for a birthday collision, about 2**33 evaluations,
# which stretching makes years of work in the hours a meeting lasts (and the
# meeting id, unknown in advance, rules out precomputation).
_SN_OPSLIMIT: Final = 3
_SN_MEMLIMIT: Final = 2 * 1024 * 1024


def safety_number(mid: bytes, epoch: int, keys: Iterable[bytes]) -> str:
    """The roster's safety number, as four groups of five digits.

    Inputs: the meeting id, the roster epoch, and the members' public signing
    keys in sorted order (so any order gives the same number; the count is
    bound too). They are hashed with BLAKE2b, then stretched with Argon2id using
    a salt derived from that hash (deterministic: every laptop must agree)."""
    if not isinstance(mid, bytes) or not 0 < len(mid) <= 64:
        raise LocalProtocolError("mid must be 1 to 64 bytes")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 1 << 64:
        raise LocalProtocolError("epoch must be an integer from 0 to 2**64 - 1")
    members = sorted(bytes(key) for key in keys)
    if any(len(key) != KEY_BYTES for key in members):
        raise LocalProtocolError("every roster key must be 32 bytes")
    digest = hashlib.blake2b(digest_size=64, person=b"relsec/v2/sn")
    # Fixed-width fields (and the length of mid first): no two inputs share
    # an encoding.
    digest.update(len(mid).to_bytes(1, "big") + mid)
    digest.update(epoch.to_bytes(8, "big") + len(members).to_bytes(4, "big"))
    for key in members:
        digest.update(key)
    material = digest.digest()
    salt = hashlib.blake2b(material, digest_size=16, person=b"relsec/v2/snsalt").digest()
    stretched: bytes = pwhash.argon2id.kdf(
        16, material, salt, opslimit=_SN_OPSLIMIT, memlimit=_SN_MEMLIMIT
    )
    number = int.from_bytes(stretched, "big") % 10**SAFETY_DIGITS  # bias < 2**-60
    text = f"{number:0{SAFETY_DIGITS}d}"
    return " ".join(text[i : i + 5] for i in range(0, SAFETY_DIGITS, 5))


# The digit names, translated with the context "digit" so that "one" read
# aloud never shares a catalog entry with "one" in another sense.
_DIGIT_WORDS: Final = tuple(
    word
    for _context, word in (
        NC_("digit", "zero"),
        NC_("digit", "one"),
        NC_("digit", "two"),
        NC_("digit", "three"),
        NC_("digit", "four"),
        NC_("digit", "five"),
        NC_("digit", "six"),
        NC_("digit", "seven"),
        NC_("digit", "eight"),
        NC_("digit", "nine"),
    )
)


def spoken_safety_number(number: str) -> str:
    """The safety number as words to read aloud, in the language shown, with
    the groups of the written number ("12345 67890" -> "one two three four
    five / six seven eight nine zero"): people compare group by group."""
    groups = number.split()
    if not groups or not all(group.isascii() and group.isdigit() for group in groups):
        raise LocalProtocolError("a safety number is groups of digits separated by spaces")
    return " / ".join(
        " ".join(pgettext("digit", _DIGIT_WORDS[int(digit)]) for digit in group) for group in groups
    )
