"""The facilitator's laptop asks before anyone is let in (issue 13.2, SPEC
§12.8): a real ``relsec peer`` joins by the address form the facilitator's
screen shows; the app puts "Someone is joining as '…' — admit? y/n" on the
facilitator's screen; n refuses (the joiner is told in one sentence and the
roster is unchanged), y admits. The key a closes joining for everyone."""

from __future__ import annotations

import threading
from typing import Any

from test_lobby import OFFLINE, SIZE, wait_for

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.app.network import node_factory
from relsec_p2p.app.screens.admit import AdmitDialog
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.app.widgets.panels import RosterPanel
from relsec_p2p.peerproc import PeerProcess
from relsec_p2p.templates import load_template


def in_background(peer: PeerProcess, **command: Any) -> dict[str, Any]:
    """Run one command of ``peer`` on a thread; the dict fills in with its answer."""
    answer: dict[str, Any] = {}
    threading.Thread(target=lambda: answer.update(peer.cmd(timeout=60, **command))).start()
    return answer


async def test_the_facilitator_refuses_then_admits(peers: list[PeerProcess]) -> None:
    app = RelsecApp(node_factory(OFFLINE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        problem = app.start_meeting(load_template("relational-security"), title="t", name="Ana")
        assert problem is None
        await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
        node = app.node
        assert node is not None and node.state is not None
        (form,) = node.join_addresses()
        # The facilitator's screen shows the address form with the code.
        await pilot.pause()
        roster = str(app.screen.query_one(RosterPanel).render())
        assert form in roster.replace("\n", "")

        tomas = PeerProcess("--no-mdns")
        peers.append(tomas)
        answer = in_background(tomas, cmd="join", code=form, name="Tomás")
        await wait_for(pilot, lambda: isinstance(app.screen, AdmitDialog))
        question = str(app.screen.query_one(".dialog-title").render())
        assert "Someone is joining as 'Tomás' — admit? y/n" in question
        assert len(node.state.active_members()) == 1  # nothing granted yet
        await pilot.press("n")
        await wait_for(pilot, lambda: "event" in answer)
        assert answer["event"] == "error"
        assert answer["message"] == (
            "The facilitator did not let this laptop in; ask them, then try again."
        )
        assert len(node.state.active_members()) == 1

        answer = in_background(tomas, cmd="join", code=form, name="Tomás")
        await wait_for(pilot, lambda: isinstance(app.screen, AdmitDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: "event" in answer)
        assert answer["event"] == "joined"
        assert sorted(m.name for m in node.state.active_members()) == ["Ana", "Tomás"]

        # a closes joining: every laptop holds it, and nobody is announced.
        await pilot.press("a")
        await wait_for(pilot, lambda: node.state is not None and not node.state.joining_open)
        assert node.join_addresses() == [] and not node.advertising
        tomas.wait_state(lambda s: s["joining_open"] is False)
        roster = str(app.screen.query_one(RosterPanel).render())
        assert "Joining is closed (press a to open it)" in roster
