"""The protocol's character classes, each written out as code point ranges.

Rules of this file (normative text: protocol/SPEC.md §6.0 whitespace, §6.1
display names, §12.3 join codes): every class is an explicit list that the
SPEC repeats, never a property read from a Unicode table (no ``unicodedata``,
no ``str.isspace``, ``strip``, ``lower`` or ``isalpha`` on a peer's text).
Python's tables change with its Unicode version (U+180E stopped being
whitespace in Unicode 6.3), and another language has other tables; a rule of
the fold that read them could make two laptops fold the same log into
different states. Pure, total on any ``str``.
"""

from __future__ import annotations

from typing import Final

# SPEC §6.0: the characters text(n) treats as blank. The list is Python's
# ``str.isspace()`` set of Unicode 14.0, frozen here so that it no longer
# follows any table.
WHITESPACE_RANGES: Final = (
    (0x0009, 0x000D),
    (0x001C, 0x0020),
    (0x0085, 0x0085),
    (0x00A0, 0x00A0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)

# SPEC §6.1: characters no display name may hold. Controls, bidirectional
# and other invisible format characters, line and paragraph separators,
# private use, surrogates and noncharacters: each could make one name look
# like another on some screen, or rearrange what a screen shows around it.
# ZWNJ and ZWJ (U+200C, U+200D) stay allowed: scripts and emoji sequences
# need them. Code points unassigned today are not listed (a list that grew
# with Unicode would make old and new laptops disagree).
NAME_FORBIDDEN_RANGES: Final = (
    (0x0000, 0x001F),  # C0 controls
    (0x007F, 0x009F),  # DEL, C1 controls
    (0x00AD, 0x00AD),  # soft hyphen
    (0x0600, 0x0605),  # Arabic number signs (prepended format characters)
    (0x061C, 0x061C),  # Arabic letter mark
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),  # Mongolian vowel separator
    (0x200B, 0x200B),  # zero-width space
    (0x200E, 0x200F),  # LRM, RLM
    (0x2028, 0x202E),  # line and paragraph separators, bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0xD800, 0xDFFF),  # surrogates (never in valid UTF-8; a Python str can hold them)
    (0xE000, 0xF8FF),  # private use
    (0xFDD0, 0xFDEF),  # noncharacters
    (0xFEFF, 0xFEFF),  # zero-width no-break space, byte order mark
    (0xFFF9, 0xFFFB),  # interlinear annotation
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),  # Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE007F),  # tag characters
    (0xF0000, 0x10FFFF),  # private use planes 15 and 16
)


def _expand(ranges: tuple[tuple[int, int], ...]) -> frozenset[str]:
    return frozenset(chr(c) for low, high in ranges for c in range(low, high + 1))


WHITESPACE: Final = _expand(WHITESPACE_RANGES)
_NAME_FORBIDDEN_BMP: Final = _expand(tuple(r for r in NAME_FORBIDDEN_RANGES if r[1] <= 0xFFFF))
_NAME_FORBIDDEN_ASTRAL: Final = tuple(r for r in NAME_FORBIDDEN_RANGES if r[1] > 0xFFFF)
_ASCII_LOWER: Final = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def is_blank(text: str) -> bool:
    """True if ``text`` has no character outside WHITESPACE (the empty text too)."""
    return all(char in WHITESPACE for char in text)


def strip_whitespace(text: str) -> str:
    """``text`` without leading and trailing WHITESPACE (SPEC §12.3 step 1)."""
    start, end = 0, len(text)
    while start < end and text[start] in WHITESPACE:
        start += 1
    while end > start and text[end - 1] in WHITESPACE:
        end -= 1
    return text[start:end]


def ascii_lower(text: str) -> str:
    """``text`` with A-Z turned into a-z and every other character unchanged
    (SPEC §12.3: ``str.lower`` would also map the Kelvin sign to ``k``)."""
    return text.translate(_ASCII_LOWER)


def is_name_forbidden(char: str) -> bool:
    """True if ``char`` (one character) may not appear in a display name
    (NAME_FORBIDDEN_RANGES, or any code point ending in FFFE or FFFF: the
    noncharacters of every plane)."""
    if char in _NAME_FORBIDDEN_BMP:
        return True
    point = ord(char)
    if point & 0xFFFE == 0xFFFE:
        return True
    return point > 0xFFFF and any(low <= point <= high for low, high in _NAME_FORBIDDEN_ASTRAL)


__all__ = [
    "NAME_FORBIDDEN_RANGES",
    "WHITESPACE",
    "WHITESPACE_RANGES",
    "ascii_lower",
    "is_blank",
    "is_name_forbidden",
    "strip_whitespace",
]
