"""The protocol's character classes (core/charset.py) are the SPEC's written
lists, and no rule reads a Unicode table (SPEC §6.0, §6.1, §12.3, §12.7;
Appendix B item 4).

The lists are read from SPEC.md itself, so the document and the code cannot
drift apart; the rule modules are scanned for the calls that would make the
outcome follow the running Python's Unicode version."""

from __future__ import annotations

import pathlib
import re

import pytest

from relsec_p2p.core import admission, charset, fields, joincode, rules
from relsec_p2p.core.errors import LocalProtocolError

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = (ROOT / "protocol" / "SPEC.md").read_text(encoding="utf-8")
CORE = ROOT / "relsec_p2p" / "core"

_POINT = r"U\+([0-9A-F]{4,6})"


def _points(text: str) -> set[int]:
    """Every code point named in ``text`` by U+XXXX or a range U+XXXX to U+YYYY
    (written with an en dash, as the SPEC does)."""
    found: set[int] = set()
    for match in re.finditer(_POINT + r"(?:\u2013" + _POINT + r")?", text):
        low = int(match.group(1), 16)
        high = int(match.group(2), 16) if match.group(2) else low
        found.update(range(low, high + 1))
    return found


def _expand(ranges: tuple[tuple[int, int], ...]) -> set[int]:
    return {c for low, high in ranges for c in range(low, high + 1)}


def test_the_whitespace_of_section_6_0_is_the_codes() -> None:
    start = SPEC.index("**Whitespace** is exactly these 29 code")
    written = _points(SPEC[start : SPEC.index("(Unicode's", start)])
    assert written == _expand(charset.WHITESPACE_RANGES)
    assert len(written) == 29
    assert {ord(c) for c in charset.WHITESPACE} == written


def test_the_forbidden_list_of_section_6_1_is_the_codes() -> None:
    start = SPEC.index("| code points | what they are |")
    table = SPEC[start : SPEC.index("Each could make one name look like another", start)]
    written = _points(table)
    # The noncharacters row names a pattern: U+nFFFE-U+nFFFF of every plane.
    written |= {(plane << 16) | low for plane in range(17) for low in (0xFFFE, 0xFFFF)}
    forbidden = {c for c in range(0x110000) if charset.is_name_forbidden(chr(c))}
    assert forbidden == written
    assert forbidden >= _expand(charset.NAME_FORBIDDEN_RANGES)


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", True),
        ("\u3000\u2028\x1c\t \xa0", True),
        ("\u180e", False),  # whitespace until Unicode 6.3, not in the §6.0 list
        ("\u200b", False),
        ("\ufeff", False),
        (" a ", False),
    ],
)
def test_blank_is_the_list_and_nothing_else(text: str, blank: bool) -> None:
    assert charset.is_blank(text) is blank
    assert fields.is_text(text, 10) is not blank


def test_one_display_name_rule() -> None:
    # The fold, the handshake and the screens share one function.
    assert admission.name_problem is fields.name_problem
    assert rules.name_problem is fields.name_problem


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("x" * 64, True),
        ("x" * 65, False),
        ("\U0001f469\u200d\U0001f4bb", True),  # emoji ZWJ sequence: ZWJ is allowed
        ("a\u200cb", True),
        ("a\u00adb", False),  # soft hyphen, invisible
        ("a\u2065b", False),  # unassigned, inside the frozen U+2060-U+206F range
        ("a\U000e0067b", False),  # tag
        ("a\U0010fffdb", False),  # private use, plane 16
        ("a\U0001fffeb", False),  # noncharacter, plane 1
        ("a\U0003134bb", True),  # a CJK ideograph: letters of every script are allowed
    ],
)
def test_a_joiner_is_refused_exactly_where_the_fold_would_ignore(name: str, ok: bool) -> None:
    code = joincode.parse_join_code("42-harbor-velvet-orbit")
    key = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    if ok:
        admission.JoinerHandshake(code, key, key, name)
    else:
        with pytest.raises(LocalProtocolError):
            admission.JoinerHandshake(code, key, key, name)
    assert (fields.name_problem(name) is None) is ok


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("42-HARBOR-velvet-ORBIT", "42-harbor-velvet-orbit"),
        ("\u300042\u3000harbor\x1cvelvet\u2003orbit\u2028", "42-harbor-velvet-orbit"),
        ("42-\u212aayak-velvet-orbit", None),  # KELVIN SIGN is not k
        ("42-harbor-velvet-orbit\u200b", None),  # ZWSP is no separator
        ("42\u180eharbor-velvet-orbit", None),
    ],
)
def test_join_codes_read_only_the_written_lists(text: str, canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(joincode.BadJoinCode):
            joincode.parse_join_code(text)
    else:
        assert str(joincode.parse_join_code(text)) == canonical


RULE_MODULES = [
    "admission",
    "anon_rules",
    "charset",
    "fields",
    "joincode",
    "poll_rules",
    "requests",
    "rules",
]
# Calls whose outcome follows the running Python's Unicode tables.
TABLE_CALLS = re.compile(
    r"unicodedata|\.isspace\(|\.isalpha\(|\.isalnum\(|\.isdigit\(|\.isprintable\("
    r"|\.strip\(\)|\.lstrip\(\)|\.rstrip\(\)|\.lower\(\)|\.upper\(\)|\.casefold\(|\.split\(\)"
    r"|\\s|\\w"
)


@pytest.mark.parametrize("module", RULE_MODULES)
def test_no_rule_reads_a_unicode_table(module: str) -> None:
    source = (CORE / f"{module}.py").read_text(encoding="utf-8")
    code = "\n".join(
        line
        for line in source.splitlines()
        if not line.lstrip().startswith("#") and "noqa: unicode-table" not in line
    )
    # Docstrings and comments may name the calls; the code may not.
    code = re.sub(r'"""(?:.|\n)*?"""', "", code)
    assert TABLE_CALLS.findall(code) == []
