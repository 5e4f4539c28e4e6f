"""The soak's own checks, on synthetic input (no namespaces, no network): the
check that decides ``lost`` really counts what a peer lacks, the memory
growth is a slope, and the log scan counts errors and crashes only. The soak
itself is ``tests/netns/test_soak.py``."""

from __future__ import annotations

from typing import Any

from relsec_p2p.bench.soak import Action, find_missing, growth_per_1k, log_errors

# -- the check behind ``lost`` ---------------------------------------------------------

ALICE, BOB = "aa" * 32, "bb" * 32
ACCEPTED = [
    Action("contrib", 1, ALICE, "c1"),
    Action("contrib", 2, BOB, "c2"),
    Action("proposal", 0, ALICE, "p1"),
    Action("poll", 0, ALICE, "v1"),
    Action("vote", 1, ALICE, "v1:agree"),
    Action("vote", 2, BOB, "v1:block"),
    Action("anon", 1, ALICE, "unsigned words"),
    Action("hand", 1, ALICE, "h1"),
    Action("leave", 2, BOB, BOB),
]


def full_state() -> dict[str, Any]:
    return {
        "contributions": [{"id": "c1"}, {"id": "c2"}],
        "proposals": [{"id": "p1"}],
        "polls": [{"id": "v1", "tally": {"agree": 1, "block": 1, "concerns": 0}}],
        "anonymous": [{"text": "unsigned words"}],
        "members": [{"key": ALICE, "gone": None}, {"key": BOB, "gone": "left"}],
        "queue": [ALICE],
    }


def test_nothing_missing_when_every_peer_holds_everything() -> None:
    assert find_missing(ACCEPTED, [full_state(), full_state()], {ALICE}) == ({}, 0)


def test_each_kind_of_gap_on_one_peer_counts() -> None:
    short = full_state()
    short["contributions"].pop()
    short["polls"][0]["tally"]["block"] = 0
    short["anonymous"] = [{"text": "unsigned words"}, {"text": "unsigned words"}]
    short["members"][1]["gone"] = None
    short["queue"] = []
    missing, duplicated = find_missing(ACCEPTED, [full_state(), short], {ALICE})
    assert missing == {"contrib": 1, "vote": 1, "leave": 1, "hand": 1}
    assert duplicated == 1
    short["anonymous"] = []
    short["polls"] = []
    missing, _ = find_missing(ACCEPTED, [full_state(), short], {ALICE})
    assert missing == {"contrib": 1, "vote": 2, "leave": 1, "hand": 1, "anon": 1, "poll": 1}


def test_growth_is_the_slope_per_thousand_actions() -> None:
    samples = [(n, 40 + 3.5 * n / 1000 + (0.2 if n % 400 else -0.2)) for n in range(0, 3000, 100)]
    assert abs((growth_per_1k(samples) or 0) - 3.5) < 0.1
    assert growth_per_1k([(100, 40.0), (100, 41.0), (100, 42.0)]) is None  # no spread


def test_log_errors_count_errors_and_crashes_not_warnings() -> None:
    lines = [
        "2026-11-22 02:01:11,315 zeroconf WARNING Error with socket 8: Operation not permitted\n",
        "Traceback (most recent call last):\n",
        '  File "selector_events.py", line 1196, in sendto\n',
        "PermissionError: [Errno 1] Operation not permitted\n",
        "2026-11-22 02:01:12,000 relsec.node ERROR round tick failed\n",
        "Traceback (most recent call last):\n",
        '  File "anon.py", line 1, in tick\n',
        "ValueError: boom\n",
        "Traceback (most recent call last):\n",
        '  File "headless.py", line 2, in run\n',
        "KeyError: 'x'\n",
    ]
    assert log_errors(lines) == ["round tick failed", "KeyError: 'x'"]
