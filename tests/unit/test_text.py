"""The one text-safety rule (core/text.py) that the record and the screens share."""

from __future__ import annotations

import pytest

from relsec_p2p.core.text import REPLACEMENT, safe_text


def test_control_tab_and_carriage_return() -> None:
    assert safe_text("a\tb\r\nc\u2028d\x00") == "a b \nc\nd\ufffd"
    assert safe_text("a\nb", newlines=False) == "a b"
    assert safe_text("\x1b[31mred") == REPLACEMENT + "[31mred"


@pytest.mark.parametrize("brk", ["\n", "\u2028", "\u2029"])
def test_every_line_break_is_a_newline_or_a_space(brk: str) -> None:
    # U+2028/2029 are line breaks: kept as "\n" in the record, a space on one
    # line, never raw (terminals and Markdown renderers disagree on them) and
    # never U+FFFD (an honest line break is not a forgery).
    assert safe_text(f"one{brk}two") == "one\ntwo"
    assert safe_text(f"one{brk}two", newlines=False) == "one two"


@pytest.mark.parametrize(
    "char",
    [
        "\u202e",  # RIGHT-TO-LEFT OVERRIDE: could make one item read as another
        "\u2066",  # LEFT-TO-RIGHT ISOLATE
        "\u200b",  # ZERO WIDTH SPACE
        "\u00ad",  # SOFT HYPHEN
        "\x7f",  # DELETE
        "\ue000",  # private use
        "\U000e0041",  # TAG LATIN CAPITAL LETTER A
    ],
)
def test_invisible_and_format_characters_are_replaced(char: str) -> None:
    for newlines in (True, False):
        assert safe_text(f"a{char}b", newlines=newlines) == f"a{REPLACEMENT}b"


def test_what_people_write_is_kept() -> None:
    for text in [
        "plain words",
        "Grüße, ça va? Привет 你好 مرحبا",
        "non\u00a0breaking",  # a space a terminal shows as one
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",  # ZWJ joins an emoji
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # ZWNJ in Persian
    ]:
        assert safe_text(text) == text
        assert safe_text(text, newlines=False) == text
