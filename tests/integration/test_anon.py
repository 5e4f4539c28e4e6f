"""Anonymous rounds between real ``relsec peer`` processes on loopback:
real mDNS, real TCP links, real shuffle rounds on the node's own timer."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from relsec_p2p.core.errors import LocalProtocolError
from relsec_p2p.core.requests import AnonymousAnswer, AnonymousRating, AnonymousVote, PauseRequest
from relsec_p2p.headless import anonymous_request
from relsec_p2p.peerproc import PeerProcess, wait_all_equal

ANON_AGENDA: list[dict[str, Any]] = [
    {"id": "unsaid", "title": "Unsaid", "prompt": "What is hard to say?", "mode": "anonymous",
     "kind": "text"},
    {"id": "decide", "title": "Decide", "prompt": "What do we do?", "mode": "anonymous",
     "kind": "proposal"},
]  # fmt: skip
UNSAID, DECIDE = 0, 1
WORDS = "The treasurer frightens me"


def meeting(peers: list[PeerProcess], n: int) -> None:
    with ThreadPoolExecutor(max_workers=n) as pool:
        peers.extend(pool.map(lambda _: PeerProcess(), range(n)))
    code = peers[0].ok(cmd="start", title="Harm", name="Ana", agenda=ANON_AGENDA)["code"]
    for i, peer in enumerate(peers[1:], start=1):
        peer.ok(cmd="join", code=code, name=f"member{i}")
    for peer in peers:
        peer.wait_state(lambda s: len(s["links"]) == n - 1, timeout=20)


def test_the_anon_command_becomes_a_typed_request() -> None:
    poll, ref = "ab" * 32, "cd" * 32
    assert anonymous_request({"kind": "contrib", "step": "1", "text": WORDS}) == (
        AnonymousAnswer(1, WORDS)
    )
    assert anonymous_request({"kind": "rating", "step": 2, "value": 0, "ref": ref}) == (
        AnonymousRating(2, 0, bytes.fromhex(ref))
    )
    assert anonymous_request({"kind": "rating", "step": 2, "value": 1}) == AnonymousRating(2, 1)
    assert anonymous_request({"kind": "vote", "poll": poll, "choice": "block"}) == (
        AnonymousVote(bytes.fromhex(poll), "block")
    )
    assert anonymous_request({"kind": "pause"}) == PauseRequest()
    with pytest.raises(LocalProtocolError, match="contrib, rating, vote or pause"):
        anonymous_request({"kind": "shout"})
    with pytest.raises(LocalProtocolError, match="a step number and some text"):
        anonymous_request({"kind": "contrib", "text": WORDS})
    with pytest.raises(LocalProtocolError, match="the poll it is for"):
        anonymous_request({"kind": "vote", "choice": "agree"})


def test_anonymous_contribution_appears_everywhere_unattributed(
    peers: list[PeerProcess],
) -> None:
    meeting(peers, 4)
    peers[0].ok(cmd="open_step", step=UNSAID)
    for peer in peers:
        peer.wait_state(lambda s: s["current"] == UNSAID)
    queued = peers[2].ok(cmd="anon", kind="contrib", step=UNSAID, text=WORDS)
    assert queued["event"] == "queued" and queued["pending"] == 1
    states = [p.wait_state(lambda s: len(s["anonymous"]) == 1, timeout=20) for p in peers]
    states = wait_all_equal(peers)
    for state in states:
        (shown,) = state["anonymous"]
        assert shown == {"step": UNSAID, "text": WORDS, "round": 1, "members": 4, "slots": 4}
        assert state["contributions"] == []  # nothing named, no author anywhere
        assert state["anon_pending"] == 0
    # The words left each process only in answers to "state": no event line,
    # and no stderr log line, carries them.
    for peer in peers:
        events = [m for m in peer.history if m.get("event") != "state"]
        assert WORDS not in json.dumps(events)
        assert WORDS not in "".join(peer.stderr_lines)
    rounds = [m for m in peers[1].history if m.get("event") == "anon_round"]
    assert any(m["outcome"] == "released" and m["items"] == 1 for m in rounds)


def test_anonymous_votes_are_tallied_at_close(peers: list[PeerProcess]) -> None:
    meeting(peers, 4)
    peers[0].ok(cmd="open_step", step=DECIDE)
    peers[1].wait_state(lambda s: s["current"] == DECIDE)
    peers[1].ok(cmd="propose", step=DECIDE, text="Ask them to step back for a month")
    proposal = peers[0].wait_state(lambda s: len(s["proposals"]) == 1)["proposals"][0]["id"]
    peers[0].ok(cmd="open_poll", proposal=proposal)
    poll = peers[3].wait_state(lambda s: len(s["polls"]) == 1)["polls"][0]["id"]
    for peer in peers:
        peer.wait_state(lambda s: len(s["polls"]) == 1)
    for peer, choice in zip(peers[:2], ["agree", "block"], strict=True):
        peer.ok(cmd="anon", kind="vote", poll=poll, choice=choice)
    # Two anonymous votes: below the threshold of 3, no tally is shown.
    peers[3].wait_state(lambda s: s["log_entries"] > 0 and s["polls"][0]["tally"] is None)
    peers[2].ok(cmd="anon", kind="vote", poll=poll, choice="agree")
    state = peers[3].wait_state(lambda s: s["polls"][0]["tally"] is not None, timeout=20)
    assert state["polls"][0]["tally"] == {"agree": 2, "concerns": 0, "stand_aside": 0, "block": 1}
    peers[1].ok(cmd="anon", kind="vote", poll=poll, choice="concerns")  # a change of mind
    peers[3].wait_state(lambda s: s["polls"][0]["tally"]["block"] == 0, timeout=20)
    wait_all_equal(peers)
    peers[0].ok(cmd="close_poll", poll=poll)
    for peer in peers:
        result = peer.wait_state(lambda s: s["polls"][0]["result"] is not None)["polls"][0]
        assert result["result"]["counts"] == {
            "agree": 2,
            "concerns": 1,
            "stand_aside": 0,
            "block": 0,
        }
        assert result["result"]["outcome"] == "consensus"
    wait_all_equal(peers)


def test_a_vanished_laptop_does_not_stop_anonymous_rounds(peers: list[PeerProcess]) -> None:
    meeting(peers, 5)
    peers[0].ok(cmd="open_step", step=UNSAID)
    for peer in peers:
        peer.wait_state(lambda s: s["current"] == UNSAID)
    peers[4].kill()
    survivors = peers[:4]
    survivors[1].ok(cmd="anon", kind="pause")
    survivors[3].ok(cmd="anon", kind="contrib", step=UNSAID, text="said after the crash")
    for peer in survivors:
        state = peer.wait_state(
            lambda s: len(s["anonymous"]) == 1 and s["pause_requests"] == 1, timeout=30
        )
        (shown,) = state["anonymous"]
        assert (shown["members"], shown["slots"]) == (5, 4)  # the missing slot shows
    wait_all_equal(survivors)
