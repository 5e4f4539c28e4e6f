"""The short soak CI runs: ``relsec bench soak --json --seconds 40`` as a real
command, ten peers in network namespaces under churn, a partition and 10 %
loss; nothing any peer accepted may be missing anywhere at the end. Also: the
command refuses plainly where it cannot build its LAN. (The soak's pure checks,
``lost`` among them, are tested in ``tests/unit/test_soak_checks.py``.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lan import netns_available

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
    # A joiner holds entries of members it does not know yet (SPEC §3.4):
    # none is refused and fetched again.
    assert result["unknown_author_refusals"] == 0, result["events"]
    refused = [e for e in result["events"] if "rejected" in e]
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
