"""Text from a member made safe to show: the one rule the record and the
screens share.

Rules of this file:
- Control characters, bidi overrides and other invisible format characters
  (Unicode category C) become U+FFFD: they could make one item look like
  another, or move a terminal's cursor. ZWJ and ZWNJ stay (emoji and some
  scripts need them).
- A line break is a line break, whichever character writes it: "\\n", U+2028
  LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR all become "\\n" where lines
  are kept (the record's text) and a space where they are not (a screen's
  one line, a table cell, a name). Left raw, U+2028/2029 break a line in some
  terminals and Markdown renderers and not in others, so what one reader sees
  as two lines another sees as one; turned into U+FFFD they would mark an
  honest line break as suspicious.
- Tabs and carriage returns become spaces.
- Pure and cached: screens redraw the same texts many times a second.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

REPLACEMENT = "\ufffd"
LINE_BREAKS = "\n\u2028\u2029"
KEPT_FORMAT = "\u200c\u200d"  # ZWNJ, ZWJ


@lru_cache(maxsize=16384)
def safe_text(text: str, *, newlines: bool = True) -> str:
    """``text`` with every character that could forge or hide something
    replaced; line breaks kept as "\\n" if ``newlines``, else spaces."""
    if text.isprintable():  # the common case, checked in C: nothing to replace
        return text
    out: list[str] = []
    for char in text:
        if char in LINE_BREAKS:
            out.append("\n" if newlines else " ")
        elif char in "\t\r":
            out.append(" ")
        elif char in KEPT_FORMAT or unicodedata.category(char)[0] != "C":
            out.append(char)
        else:
            out.append(REPLACEMENT)
    return "".join(out)


__all__ = ["REPLACEMENT", "safe_text"]
