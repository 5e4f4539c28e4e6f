"""``relsec demo``: real simulated members (``relsec peer`` processes on
loopback, found by mDNS), headless to the end with a record, and in the app."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from relsec_p2p.app.app import EXIT_PANIC, RelsecApp
from relsec_p2p.app.network import NetworkOptions, node_factory
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.demo import CAST, FAST_PACE_S, Demo, DemoHost


def test_headless_demo_runs_to_the_end_and_writes_the_record(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    result = subprocess.run(
        [sys.executable, "-m", "relsec_p2p", "demo", "--headless", "--export", str(record)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "The demo meeting is over" in result.stdout
    assert "ctrl+q" not in result.stdout  # nothing to leave without a UI
    assert "?." not in result.stdout  # "How likely is each threat?" ends once
    data = json.loads(record.read_text(encoding="utf-8"))
    assert data["roster"]["members"] == len(CAST) + 1
    steps = {step["id"]: step for step in data["steps"]}
    assert any("funder" in item["text"] for item in steps["threats"]["items"])
    anonymous = [item for item in steps["threats"]["items"] if item["anonymous"]]
    assert anonymous and all("by" not in item for item in anonymous)  # never an author
    assert anonymous[0]["round"]["slots"] == len(CAST) + 1
    polls = [poll for proposal in steps["way"]["proposals"] for poll in proposal["polls"]]
    assert len(polls) == 1
    assert polls[0]["result"]["outcome"] == "consensus"
    assert polls[0]["result"]["voters"] == len(CAST) + 1  # the local seat voted too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]  # nothing else


async def test_demo_in_the_app_joins_you_and_the_meeting_runs() -> None:
    demo = Demo(pace=FAST_PACE_S, wait_for_you=False)  # what ``relsec demo --fast`` runs
    app = RelsecApp(node_factory(NetworkOptions(interface="127.0.0.1")), demo=DemoHost(demo))
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 60
        while not (
            isinstance(app.screen, MeetingScreen)
            and app.view is not None
            and app.view.member_count == len(CAST) + 1
            and any(group.named for group in app.view.groups)
        ):
            assert time.monotonic() < deadline, "the demo meeting never got going"
            await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, MeetingScreen)
        assert "Ana" in screen.log_text() or "Bo" in screen.log_text()
        assert screen.note  # the narration line is shown
        processes = [peer.proc for peer in demo.peers]
        await pilot.press("f12")
        await pilot.pause(0.5)
    assert app.return_value == EXIT_PANIC
    for proc in processes:  # panic ends the simulated members too
        assert proc.wait(timeout=5) is not None


def test_the_demo_waits_for_you_with_a_countdown_and_goes_on_once_you_acted() -> None:
    demo = Demo(pace=0.0)
    lines: list[str] = []
    timer = threading.Timer(1.5, demo.you_did, args=("vote",))
    timer.start()
    started = time.monotonic()
    demo._your_turn("vote", "v", lines.append)
    assert 1.0 < time.monotonic() - started < 5.0
    waiting = [line for line in lines if line.startswith("Waiting for you: press v")]
    assert len(waiting) >= 2 and waiting[0] != waiting[1]  # it counts down
    assert lines[-1] == "Thank you: your vote is in."


def test_demo_fast_is_a_flag() -> None:
    from relsec_p2p.cli import build_parser

    args = build_parser().parse_args(["demo", "--fast"])
    assert args.fast and args.pace == 4.0
