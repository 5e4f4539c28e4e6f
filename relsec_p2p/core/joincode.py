"""Join codes: a public nameplate and three secret words, made and read back.

Rules of this file (normative text: protocol/SPEC.md §12.3): sans-IO; words
come from the protocol's word list (core/wordlist.py), drawn with ``secrets``
(the OS CSPRNG); a typed code is read forgivingly (any case, any dashes or
spaces, the list's aliases) and refused with ``BadJoinCode``, whose message is
one sentence a person can act on and never repeats what was typed; a code's
words never appear in a repr.

The nameplate is public (it is in mDNS), so the secret is the three distinct
words: with the 333-word list, 333*332*331 or about 36.6 million codes. The
code is only ever a SPAKE2 password (core/admission.py explains why that
leaves an eavesdropper nothing to brute-force). ``CodeGuard``, which replaces
the words after three spent guesses, stays in core/admission.py: what it
counts are handshake runs (it reads ``SponsorHandshake``), and it needs only
``new_join_code`` from here.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Final

from .charset import WHITESPACE_RANGES, ascii_lower, strip_whitespace
from .errors import LocalError
from .i18n import _
from .wordlist import ALIASES, WORDS


class BadJoinCode(LocalError):
    """Typed or supplied join code is not a valid code; the message is one
    sentence a person can act on, and never repeats what was typed."""

    code = "bad_join_code"


NAMEPLATE_MIN: Final = 10
NAMEPLATE_MAX: Final = 99
JOIN_CODE_WORD_COUNT: Final = 3
EXAMPLE_CODE: Final = "42-harbor-velvet-orbit"

_WORD_SET: Final = frozenset(WORDS)
# Dashes, the Unicode dashes phones substitute for them, underscores and the
# whitespace of SPEC §6.0 (written out, not the regex's \s, which follows
# Python's Unicode tables) all separate the parts of a typed code.
_SEPARATORS: Final = re.compile(
    "["
    + "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in WHITESPACE_RANGES)
    + "\\-_\\u2010-\\u2015\\u2212]+"
)
_DIGITS: Final = frozenset("0123456789")
_MAX_CODE_TEXT: Final = 100


def _shape_help() -> str:
    return _(
        "That code is not right: it looks like {example}, a number and three words; "
        "check it with the person who shared it."
    ).format(example=EXAMPLE_CODE)


@dataclass(frozen=True, slots=True, repr=False)
class JoinCode:
    """A nameplate (public: it is advertised by mDNS) and three secret words.

    ``str(code)`` is the canonical form, which is also the SPAKE2 password;
    ``repr`` hides the words so a code never lands in a log by accident."""

    nameplate: int
    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.nameplate, bool) or not isinstance(self.nameplate, int):
            raise BadJoinCode(_("A join code's number must be an integer between 10 and 99."))
        if not NAMEPLATE_MIN <= self.nameplate <= NAMEPLATE_MAX:
            raise BadJoinCode(
                _(
                    "That code's number must be between {low} and {high}, like the 42 in "
                    "{example}; check it with the person who shared it."
                ).format(low=NAMEPLATE_MIN, high=NAMEPLATE_MAX, example=EXAMPLE_CODE)
            )
        if not isinstance(self.words, tuple) or len(self.words) != JOIN_CODE_WORD_COUNT:
            raise BadJoinCode(_shape_help())
        for index, word in enumerate(self.words):
            if word not in _WORD_SET:
                raise BadJoinCode(_unknown_word_help(index))

    def __str__(self) -> str:
        return "-".join((str(self.nameplate), *self.words))

    def __repr__(self) -> str:
        return f"JoinCode(nameplate={self.nameplate}, words=<hidden>)"

    @property
    def password(self) -> bytes:
        """The SPAKE2 password: the full canonical code (ASCII by construction)."""
        return str(self).encode("ascii")


def _unknown_word_help(index: int) -> str:
    # Name the position, not the word: what was typed is close to a secret.
    # One whole sentence per position: ordinals agree with "word" differently
    # in each language.
    sentences = (
        _(
            "The first word of that code is not one of relsec's code words; "
            "check its spelling with the person who shared the code."
        ),
        _(
            "The second word of that code is not one of relsec's code words; "
            "check its spelling with the person who shared the code."
        ),
        _(
            "The third word of that code is not one of relsec's code words; "
            "check its spelling with the person who shared the code."
        ),
    )
    return sentences[index]


def new_join_code(nameplate: int | None = None) -> JoinCode:
    """A fresh code: a random nameplate (unless given) and three distinct random
    words, all from ``secrets`` (the OS CSPRNG)."""
    if nameplate is None:
        nameplate = NAMEPLATE_MIN + secrets.randbelow(NAMEPLATE_MAX - NAMEPLATE_MIN + 1)
    # Distinct words: a repeated word looks like a typo when read aloud.
    words = tuple(secrets.SystemRandom().sample(WORDS, JOIN_CODE_WORD_COUNT))
    return JoinCode(nameplate, words)


def parse_join_code(text: str) -> JoinCode:
    """Read a code as a person typed it: any case, surrounding whitespace,
    spaces or other dashes instead of ``-``. Raises ``BadJoinCode``."""
    # Only ASCII letters change case: the words are ASCII, and str.lower()
    # would turn the Kelvin sign into k and follow Python's Unicode version.
    cleaned = ascii_lower(strip_whitespace(text))
    if not cleaned:
        raise BadJoinCode(
            _(
                "The join code is empty: type the code shown on the facilitator's screen, "
                "like {example}."
            ).format(example=EXAMPLE_CODE)
        )
    parts = [part for part in _SEPARATORS.split(cleaned) if part]
    if len(cleaned) > _MAX_CODE_TEXT or len(parts) != 1 + JOIN_CODE_WORD_COUNT:
        raise BadJoinCode(_shape_help())
    number, words = parts[0], parts[1:]
    if not _DIGITS.issuperset(number):
        raise BadJoinCode(_shape_help())
    words = [ALIASES.get(word, word) for word in words]
    for index, word in enumerate(words):
        if word not in _WORD_SET:
            raise BadJoinCode(_unknown_word_help(index))
    return JoinCode(int(number), tuple(words))


# --- the address form (SPEC §12.3): when multicast is blocked ---------------

EXAMPLE_ADDRESS: Final = "192.168.1.23:4711"
_BROADCAST: Final = 0xFFFFFFFF


def _address_help() -> str:
    return _(
        "The address after @ is not right: it looks like {example}, the laptop's "
        "IPv4 address and port; copy it from the facilitator's screen."
    ).format(example=EXAMPLE_ADDRESS)


@dataclass(frozen=True, slots=True, repr=False)
class JoinTarget:
    """A typed join: the code, and where to ask when the person gave the
    address form (``42-harbor-velvet-orbit @ 192.168.1.23:4711``); without
    it the meeting is looked up by its nameplate on mDNS."""

    code: JoinCode
    host: str | None = None
    port: int | None = None

    def __repr__(self) -> str:
        return f"JoinTarget(code={self.code!r}, host={self.host!r}, port={self.port!r})"


def format_join_address(code: JoinCode, host: str, port: int) -> str:
    """The address form the facilitator's screen shows beside the code."""
    return f"{code} @ {host}:{port}"


def _parse_address(text: str) -> tuple[str, int]:
    host, colon, port_text = strip_whitespace(text).rpartition(":")
    host = strip_whitespace(host)
    port_text = strip_whitespace(port_text)
    if not colon or not host or not port_text or not _DIGITS.issuperset(port_text):
        raise BadJoinCode(_address_help())
    if len(port_text) > 5 or not 0 < int(port_text) < 65536:
        raise BadJoinCode(_address_help())
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise BadJoinCode(_address_help()) from None
    if address.is_multicast or address.is_unspecified or int(address) == _BROADCAST:
        raise BadJoinCode(_address_help())
    return str(address), int(port_text)


def parse_join_target(text: str) -> JoinTarget:
    """Read a typed join: a code (``parse_join_code``), optionally followed by
    ``@ HOST:PORT``, the address form for networks where multicast is
    blocked. Raises ``BadJoinCode`` with one sentence."""
    if len(text) > 2 * _MAX_CODE_TEXT:
        raise BadJoinCode(_shape_help())
    code_text, at, address_text = text.partition("@")
    code = parse_join_code(code_text)
    if not at:
        return JoinTarget(code)
    host, port = _parse_address(address_text)
    return JoinTarget(code, host, port)
