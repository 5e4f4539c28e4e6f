"""One table per vocabulary (core/wording.py), and no copy of it elsewhere."""

from __future__ import annotations

import pathlib

from relsec_p2p.core.state import CHOICES, MODES, RESULTS
from relsec_p2p.core.wording import (
    CHOICE_LABELS,
    MODE_LABELS,
    OUTCOME_LABELS,
    SHORT_CHOICE_LABELS,
)

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "relsec_p2p"


def test_every_value_the_log_carries_has_a_label() -> None:
    assert tuple(CHOICE_LABELS) == tuple(SHORT_CHOICE_LABELS) == CHOICES
    assert tuple(OUTCOME_LABELS) == RESULTS
    assert tuple(MODE_LABELS) == MODES


def test_no_module_keeps_its_own_copy_of_a_label() -> None:
    # Labels no rule or docstring needs to spell out: only the table may.
    labels = {
        '"agree with concerns"',
        '"named or anonymous answers"',
        '"anonymous answers"',
        '"no consensus"',
    }
    holders = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(label in path.read_text(encoding="utf-8") for label in labels)
    }
    assert holders == {"core/wording.py"}
