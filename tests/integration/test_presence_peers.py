"""Leaving and coming back, between real ``relsec peer`` processes on
loopback (real mDNS, TCP links and crypto): a clean quit reaches every
screen, a vanished laptop is shown away and stops counting, succession skips
it, and a person who rejoins after a crash takes their old place (SPEC §6.1
"Presence", §6.2, §6.5; issue 13 deliver 4, issue 12 deliver 3)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relsec_p2p.peerproc import SAMPLE_AGENDA as AGENDA
from relsec_p2p.peerproc import PeerProcess, wait_all_equal

ABSENT_AFTER_S = 1.5
PROPOSAL_STEP = 2
PASS = "correct horse battery staple"  # noqa: S105 -- a test passphrase


def meeting(peers: list[PeerProcess], n: int, *args: str) -> str:
    """n peers in one meeting, every one linked to all the others."""
    peers.extend(PeerProcess(*args) for _ in range(n))
    code: str = peers[0].ok(cmd="start", title="Harm", name="Ana", agenda=AGENDA)["code"]
    for i, peer in enumerate(peers[1:], start=1):
        peer.ok(cmd="join", code=code, name=f"member{i}")
    for peer in peers:
        peer.wait_state(lambda s: len(s["links"]) == n - 1, timeout=30)
    return code


def member(state: dict[str, Any], key: str) -> dict[str, Any]:
    return next(m for m in state["members"] if m["key"] == key)


def is_away(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: member(s, key)["away"]


def test_clean_quit_shows_the_departure_on_every_screen_within_2_s(
    peers: list[PeerProcess],
) -> None:
    meeting(peers, 3)
    quitter, others = peers[2], peers[:2]
    sent = time.monotonic()
    answer = quitter.ok(cmd="depart")
    assert answer == {"event": "departed", "unconfirmed": 0, "id": answer["id"]}
    assert quitter.proc.wait(timeout=10) == 0
    for peer in others:
        event = peer.wait_event(
            lambda e: e.get("type") == "roster.leave" and e.get("author") == quitter.key, 5
        )
        assert event["t"] - sent < 2.0  # the same monotonic clock: one machine
        state = peer.state()
        assert member(state, quitter.key)["gone"] == "left"
        assert len([m for m in state["members"] if m["present"]]) == 2
    wait_all_equal(others)


def test_a_killed_laptop_is_away_and_the_present_members_reach_quorum_then_it_comes_back(
    peers: list[PeerProcess], tmp_path: Path
) -> None:
    meeting(peers, 4, "--absent-after", str(ABSENT_AFTER_S))
    facilitator, vanishing = peers[0], peers[3]
    remaining = peers[:3]
    save = tmp_path / "member3.save"
    vanishing.ok(cmd="save", path=str(save), passphrase=PASS)
    facilitator.ok(cmd="open_step", step=PROPOSAL_STEP)
    proposal = facilitator.ok(cmd="propose", step=PROPOSAL_STEP, text="We meet elsewhere")
    poll = facilitator.ok(cmd="open_poll", proposal=proposal["entry"])["entry"]
    wait_all_equal(peers)

    killed = time.monotonic()
    vanishing.kill()
    for peer in remaining:
        peer.wait_state(is_away(vanishing.key), timeout=20)
    shown_after = time.monotonic() - killed
    assert shown_after >= ABSENT_AFTER_S  # not before the absence timeout
    for peer in remaining:
        status = peer.cmd(cmd="status")
        assert (status["members"], status["present"]) == (4, 3)
        peer.ok(cmd="vote", poll=poll, choice="agree")
    wait_all_equal(remaining)
    facilitator.ok(cmd="close_poll", poll=poll)
    for state in wait_all_equal(remaining):
        result = next(p for p in state["polls"] if p["id"] == poll)["result"]
        assert (result["outcome"], result["voters"], result["members"], result["quorum"]) == (
            "consensus",
            3,
            3,
            3,
        )
        assert "of the 3 members present" in result["rule"]

    # The laptop comes back (resumed from its save, same keys): present again.
    back = PeerProcess("--absent-after", str(ABSENT_AFTER_S))
    peers.append(back)
    back.ok(cmd="resume", path=str(save), passphrase=PASS)
    for peer in [*remaining, back]:
        peer.wait_state(lambda s: not member(s, vanishing.key)["away"], timeout=30)
    assert back.state()["me"] == vanishing.key
    states = wait_all_equal([*remaining, back], timeout=30)
    assert all(m["present"] for m in states[0]["members"])


def test_succession_never_picks_a_member_declared_away(peers: list[PeerProcess]) -> None:
    meeting(peers, 4, "--absent-after", str(ABSENT_AFTER_S))
    ana, ghost, heir, last = peers
    # The next in join order after the facilitator vanishes first...
    ghost.kill()
    for peer in (ana, heir, last):
        peer.wait_state(is_away(ghost.key), timeout=20)
    # ...then the facilitator's laptop.
    ana.kill()
    for peer in (heir, last):
        state = peer.wait_state(lambda s: s["facilitator"] != ana.key, timeout=30)
        assert state["facilitator"] == heir.key
        assert state["term"] == 2  # one change: it never passed through the ghost
    final = wait_all_equal([heir, last])
    assert member(final[0], ana.key)["away"] and member(final[0], ghost.key)["away"]


def test_a_member_who_rejoins_after_a_crash_takes_their_old_place(
    peers: list[PeerProcess],
) -> None:
    code = meeting(peers, 3, "--absent-after", str(ABSENT_AFTER_S))
    ana, bo, crashed = peers
    crashed.kill()
    for peer in (ana, bo):
        peer.wait_state(is_away(crashed.key), timeout=20)
    again = PeerProcess("--absent-after", str(ABSENT_AFTER_S))
    peers.append(again)
    code = ana.state()["code"]
    again.ok(cmd="join", code=code, name="member2")
    ana.wait_state(lambda s: any(m["key"] == again.key for m in s["members"]))
    ana.ok(cmd="replace", who=crashed.key, by=again.key)
    for state in wait_all_equal([ana, bo, again]):
        in_roster = [m for m in state["members"] if m["active"]]
        assert [m["name"] for m in in_roster] == ["Ana", "member1", "member2"]
        assert member(state, crashed.key)["gone"] == "replaced"
        assert member(state, again.key)["replaces"] == crashed.key
        assert all(m["present"] for m in in_roster)
