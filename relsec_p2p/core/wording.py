"""The words people read for the meeting's vocabulary: choices, outcomes, modes.

Rules of this file:
- One table per vocabulary, keyed by the value the log carries
  (``state.CHOICES``, ``state.RESULTS``, ``state.MODES``), and every reader
  (the record, the screens, the benchmarks) takes its labels from here, so
  a label changes in one place and a translation has one table to cover.
- Labels only: what a value means is the rules' business (core/rules.py).
"""

from __future__ import annotations

from typing import Final

CHOICE_LABELS: Final[dict[str, str]] = {
    "agree": "agree",
    "concerns": "agree with concerns",
    "stand_aside": "stand aside",
    "block": "block",
}
# Where a whole tally shares one line ("agree 2 · concerns 1 · …").
SHORT_CHOICE_LABELS: Final[dict[str, str]] = {
    "agree": "agree",
    "concerns": "concerns",
    "stand_aside": "stand aside",
    "block": "block",
}
OUTCOME_LABELS: Final[dict[str, str]] = {
    "consensus": "consensus",
    "blocked": "blocked",
    "no_consensus": "no consensus",
    "no_quorum": "no quorum",
}
MODE_LABELS: Final[dict[str, str]] = {
    "named": "named answers",
    "anonymous": "anonymous answers",
    "both": "named or anonymous answers",
}

__all__ = ["CHOICE_LABELS", "MODE_LABELS", "OUTCOME_LABELS", "SHORT_CHOICE_LABELS"]
