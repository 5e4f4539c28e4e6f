"""The sans-IO policy that makes join runs paid for up front (SPEC §12.8, §12.10)."""

from __future__ import annotations

import pytest

from relsec_p2p.core.admission import (
    CODE_CHANGE_WINDOW_MS,
    CODE_CHANGES_PER_WINDOW,
    JOIN_GUESSES_PER_MINUTE,
    JOIN_PAUSE_MAX_MS,
    JOIN_PAUSE_MS,
    JOIN_STREAK_FORGET_MS,
    CodeGuard,
    JoinGate,
    JoinRefusal,
    join_pause_ms,
    joining_retired,
    recent_code_changes,
)
from relsec_p2p.core.errors import LocalProtocolError
from relsec_p2p.core.joincode import new_join_code

B = JoinRefusal.BUSY
P = JoinRefusal.PAUSING
R = JoinRefusal.RETIRED


@pytest.mark.parametrize(
    ("streak", "pause"), [(1, 5_000), (2, 6_000), (3, 7_000), (4, 8_000), (5, 8_000), (99, 8_000)]
)
def test_the_pause_grows_with_each_spent_guess_up_to_a_cap(streak: int, pause: int) -> None:
    assert join_pause_ms(streak) == pause


# Each row: (op, time ms, expected). op "s" = start (expected refusal or None),
# "f+" = finish with a spent guess, "f-" = finish without one.
SCRIPTS = {
    "one run at a time; the others are refused before any pake is used": [
        ("s", 0, None),
        ("s", 1, B),
        ("s", 2, B),
        ("f+", 10, None),
        ("s", 11, P),
    ],
    "the pause runs from the end of a spent run and grows": [
        ("s", 0, None),
        ("f+", 100, None),
        ("s", 5_099, P),
        ("s", 5_100, None),
        ("f+", 5_100, None),
        ("s", 11_099, P),
        ("s", 11_100, None),
        ("f+", 11_100, None),
        ("s", 18_099, P),
        ("s", 18_100, None),
    ],
    "a confirmed run gets its charge back: a room filling up is not slowed": [
        ("s", 0, None),
        ("f-", 50, None),
        ("s", 51, None),
        ("f-", 60, None),
        ("s", 61, None),
    ],
    "the charge is taken at start: a run still going holds the pause": [
        ("s", 0, None),
        ("s", 4_000, B),
        ("f+", 4_000, None),
        ("s", 8_999, P),
    ],
    "a minute without spent guesses forgets the streak": [
        ("s", 0, None),
        ("f+", 0, None),
        ("s", 5_000, None),
        ("f+", 5_000, None),
        ("s", 5_000 + JOIN_STREAK_FORGET_MS, None),
        ("f+", 5_000 + JOIN_STREAK_FORGET_MS, None),
        ("s", 5_000 + JOIN_STREAK_FORGET_MS + JOIN_PAUSE_MS, None),
    ],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_gate_scripts(name: str) -> None:
    gate = JoinGate()
    for op, now, expected in SCRIPTS[name]:
        if op == "s":
            assert gate.start(now, lambda: 0) == expected, (name, op, now)
        else:
            gate.finish(now, spent=op == "f+")


def test_no_minute_holds_more_spent_guesses_than_the_documented_figure() -> None:
    # A guesser hammering every millisecond: spent guesses start at least
    # JOIN_PAUSE_MS apart, so any minute [t, t + 60 s) holds at most 12.
    gate = JoinGate()
    starts = []
    for now in range(0, 300_000, 7):
        if gate.start(now, lambda: 0) is None:
            starts.append(now)
            gate.finish(now + 3, spent=True)
    assert JOIN_GUESSES_PER_MINUTE == 12
    for first in starts:
        assert sum(1 for t in starts if first <= t < first + 60_000) <= JOIN_GUESSES_PER_MINUTE
    # After the attack, an honest joiner waits at most the cap.
    assert gate.start(starts[-1] + 3 + JOIN_PAUSE_MAX_MS, lambda: 0) is None


def test_meeting_wide_limit_retires_the_code_for_a_window() -> None:
    now = 10 * CODE_CHANGE_WINDOW_MS
    old = [now - CODE_CHANGE_WINDOW_MS - 1] * 50  # outside the window: forgotten
    recent = [now - CODE_CHANGE_WINDOW_MS, now - 1, now + 5_000]  # in it (or later)
    assert recent_code_changes(old + recent, now) == 3
    assert not joining_retired(CODE_CHANGES_PER_WINDOW - 1)
    assert joining_retired(CODE_CHANGES_PER_WINDOW)
    gate = JoinGate()
    assert gate.start(0, lambda: CODE_CHANGES_PER_WINDOW) is R
    assert gate == JoinGate()  # a refusal takes nothing
    assert gate.start(0, lambda: CODE_CHANGES_PER_WINDOW - 1) is None
    # While a run goes on or a pause lasts, the log is not even read.
    assert gate.start(1, lambda: 1 // 0) is B


def test_finish_without_a_run_is_a_local_error_and_changes_nothing() -> None:
    gate = JoinGate()
    with pytest.raises(LocalProtocolError):
        gate.finish(0, spent=True)
    assert gate == JoinGate()


def test_a_code_changed_elsewhere_keeps_this_laptops_count() -> None:
    # Two guesses here, then another laptop rotates: the third guess here
    # still writes a code change, so the log counts every three spent guesses.
    guard = CodeGuard(new_join_code(42))
    assert guard.record_failure() is False and guard.record_failure() is False
    elsewhere = new_join_code(42)
    guard.follow(elsewhere)
    assert guard.code == elsewhere and guard.failures == 2
    assert guard.record_failure() is True
    assert guard.rotate() != elsewhere and guard.failures == 0
