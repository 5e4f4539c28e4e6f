"""The short soak CI runs: ``relsec bench soak --json --seconds 40`` as a real
command, ten peers in network namespaces under churn, a partition and 10 %
loss; nothing any peer accepted may be missing anywhere at the end. Also: the
check that decides ``lost`` really counts what a peer lacks, and the command
refuses plainly where it cannot build its LAN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lan import netns_available

from relsec_p2p.bench.soak import Action, find_missing, growth_per_1k, log_errors

SECONDS = 40


def relsec(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "relsec_p2p", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.netns
def test_short_soak_loses_nothing() -> None:
    reason = netns_available(("ip", "nft"))
    if reason is not None:
        pytest.fail(f"cannot build the soak's LAN: {reason}")
    done = relsec("bench", "soak", "--json", "--seconds", str(SECONDS))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["lost"] == 0, result["lost_by_kind"]
    assert result["digests_equal"] is True
    assert result["anonymous_duplicated"] == 0
    # The faults really happened and the room is whole again.
    assert result["live_peers"] == result["peers"] == 10
    assert result["churns"] == 2, result["fault_failures"]
    assert result["fault_failures"] == []
    assert result["partitions"] == 1 and result["relink_s"] is not None
    # The load was the stated one, of every kind, and honest peers stay
    # within every limit (no link cut off, no input refused).
    assert result["actions"] >= 0.8 * 5 * SECONDS
    assert set(result["actions_by_kind"]) == {"anon", "contrib", "hand", "poll", "proposal", "vote"}
    # unknown_author is honest: a joiner refuses entries of members it does
    # not know yet and fetches them again (known waste, nothing lost).
    refused = [e for e in result["events"] if "rejected" in e and "unknown_author" not in e]
    assert not [e for e in result["events"] if "slow" in e or "flood" in e] + refused
    assert result["peer_log_errors"] == 0, result["peer_log_error_lines"]
    assert sorted(result["max_rss_mb"], key=int) == [str(i) for i in range(10)]
    assert all(10 < mb < 1000 for mb in result["max_rss_mb"].values())
    assert result["rss_growth_mb_per_1k"] is not None


def test_soak_refuses_plainly_without_its_tools(tmp_path: Path) -> None:
    done = relsec("bench", "soak", "--json", "--seconds", "40", env={"PATH": str(tmp_path)})
    assert done.returncode == 2
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith("relsec: The soak runs its peers on a LAN of network namespaces")
    assert "\n" not in message and "Traceback" not in message


def test_seconds_belongs_to_the_soak_alone() -> None:
    done = relsec("bench", "core", "--seconds", "40")
    assert done.returncode == 2
    assert done.stderr.strip() == "relsec: only the soak suite takes --seconds."


# -- the check behind ``lost``: synthetic states, no network -------------------------

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
