"""The facilitator controls admission (issue 13.2, SPEC §12.8, §12.11) and
the room display is a viewer, not a member (issue 12.4, SPEC §12.12).

Real nodes on loopback, joined by the address form of the code (no mDNS,
so other tests' meetings cannot interfere): only the facilitator's laptop
sponsors, only while joining is open, and only after the facilitator says
yes; a removal changes the code; when facilitation passes, the successor's
laptop admits. A display joins as a viewer: not in the roster, the quorum,
the rounds or the head count, and it folds the same meeting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from relsec_p2p.core.admission import JoinRequest
from relsec_p2p.core.errors import JoinError
from relsec_p2p.net.node import Node
from relsec_p2p.peerproc import SAMPLE_AGENDA as AGENDA
from relsec_p2p.peerproc import PeerProcess, wait_all_equal

LOOPBACK = ["127.0.0.1"]
Make = Callable[[], Awaitable[Node]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    nodes: list[Node] = []

    async def start() -> Node:
        node = Node(interfaces=LOOPBACK, use_mdns=False)
        await node.start()
        nodes.append(node)
        return node

    try:
        yield start
    finally:
        for node in nodes:
            await node.close()


def address(node: Node) -> str:
    (form,) = node.join_addresses()
    return form


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_the_facilitator_sees_and_refuses_a_pending_join(make: Make) -> None:
    ana = await make()
    ana.start_meeting(title="Plans", name="Ana", agenda=AGENDA)
    asked: list[tuple[str, int]] = []

    async def facilitator(request: JoinRequest) -> bool:
        # Asked before anything is granted: the roster has not changed yet.
        assert ana.state is not None
        asked.append((request.name, len(ana.state.active_members())))
        await asyncio.sleep(0.3)  # a person reading the question
        return request.name != "Tomás"

    ana.set_admission(facilitator)
    form = address(ana)
    tomas, bea = await make(), await make()
    waiting: list[str] = []
    with pytest.raises(JoinError, match="did not let this laptop in"):
        await tomas.join(form, "Tomás", on_waiting=lambda: waiting.append("Tomás"))
    assert tomas.session is None
    await bea.join(form, "Bea", on_waiting=lambda: waiting.append("Bea"))
    assert asked == [("Tomás", 1), ("Bea", 1)]
    assert waiting == ["Tomás", "Bea"]
    assert ana.state is not None
    assert sorted(m.name for m in ana.state.active_members()) == ["Ana", "Bea"]
    await until(lambda: bea.state is not None and bea.state.digest() == ana.state.digest())


async def test_a_joiner_who_hangs_up_withdraws_the_question(make: Make) -> None:
    ana = await make()
    ana.start_meeting(title="Plans", name="Ana", agenda=AGENDA)
    answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    asked = asyncio.Event()

    async def facilitator(request: JoinRequest) -> bool:
        asked.set()
        return await answer

    ana.set_admission(facilitator)
    joiner = await make()
    attempt = asyncio.ensure_future(joiner.join(address(ana), "Dan"))
    await asyncio.wait_for(asked.wait(), 10)
    attempt.cancel()  # the joiner closes its laptop while the question is up
    await asyncio.gather(attempt, return_exceptions=True)
    # The question is withdrawn (the app's dialog goes away) and nobody is in.
    await until(answer.cancelled, 5)
    assert ana.state is not None and len(ana.state.active_members()) == 1


async def test_only_the_facilitator_sponsors_and_only_while_joining_is_open(make: Make) -> None:
    ana = await make()
    ana.start_meeting(title="Plans", name="Ana", agenda=AGENDA)
    code = ana.join_code()
    bea = await make()
    await bea.join(address(ana), "Bea")
    await until(lambda: bea.join_code() == code)
    # Bea's laptop knows the code but is not the facilitator's: it does not sponsor.
    assert bea.join_addresses() == [] and not bea.admits_joiners()
    outsider = await make()
    with pytest.raises(JoinError, match="joining may be closed"):
        await outsider.join(f"{code} @ 127.0.0.1:{bea.port}", "Eve", timeout=2)
    # The facilitator closes joining: every laptop holds it, nobody sponsors.
    ana.set_joining(False)
    await until(lambda: bea.state is not None and not bea.state.joining_open)
    assert ana.join_addresses() == [] and not ana.admits_joiners()
    with pytest.raises(JoinError, match="joining may be closed"):
        await outsider.join(f"{code} @ 127.0.0.1:{ana.port}", "Eve", timeout=2)
    ana.set_joining(True)
    await outsider.join(address(ana), "Eve")
    assert ana.state is not None and len(ana.state.active_members()) == 3


async def test_a_removal_changes_the_code(make: Make) -> None:
    ana = await make()
    ana.start_meeting(title="Plans", name="Ana", agenda=AGENDA)
    bea = await make()
    await bea.join(address(ana), "Bea")
    old = ana.join_code()
    ana.perform(lambda s: s.remove(bea.identity.key))
    new = ana.join_code()
    assert new and new != old
    assert new.split("-")[1:] != old.split("-")[1:]
    # Bea (or anyone she told) tries the code she knew, from a fresh laptop.
    again = await make()
    with pytest.raises(JoinError, match="code was not accepted"):
        await again.join(f"{old} @ 127.0.0.1:{ana.port}", "Bea")
    await again.join(address(ana), "Cy")


async def test_facilitation_passes_and_the_successor_admits(make: Make) -> None:
    ana = await make()
    ana.start_meeting(title="Plans", name="Ana", agenda=AGENDA)
    bea = await make()
    await bea.join(address(ana), "Bea")
    ana.set_joining(False)
    ana.perform(lambda s: s.hand_over(bea.identity.key))
    await until(lambda: bea.state is not None and bea.state.facilitator == bea.identity.key)
    # The successor inherits the closed state, then opens joining and admits.
    assert not bea.admits_joiners() and not ana.admits_joiners()
    bea.set_joining(True)
    assert bea.admits_joiners() and not ana.admits_joiners()
    cy = await make()
    await cy.join(address(bea), "Cy")
    await until(lambda: ana.state is not None and len(ana.state.active_members()) == 3)


def test_the_room_display_is_a_viewer_not_a_member(peers: list[PeerProcess]) -> None:
    ana, bea, display = PeerProcess(), PeerProcess(), PeerProcess()
    peers.extend([ana, bea, display])
    ana.ok(cmd="start", title="Plans", name="Ana", agenda=AGENDA)
    (form,) = ana.state()["join_addresses"]
    bea.ok(cmd="join", code=form, name="Bea")
    display.ok(cmd="join", code=form, name="Room display", display=True)
    ana.ok(cmd="open_step", step=0)
    bea.wait_state(lambda s: s["current"] == 0)
    bea.ok(cmd="contribute", step=0, text="seen on the projector")
    states = wait_all_equal(peers)  # the display folds the same digest
    for state in states:
        assert sorted(m["name"] for m in state["members"]) == ["Ana", "Bea"]
        assert [v["name"] for v in state["viewers"]] == ["Room display"]
        assert state["contributions"][0]["text"] == "seen on the projector"
    assert states[2]["member"] is False and states[2]["viewer"] is True
    assert ana.cmd(cmd="status")["members"] == 2 == display.cmd(cmd="status")["members"]
    # Two people and a projector do not make the three members an anonymous
    # round needs: the answer is refused, not sent.
    refused = ana.cmd(cmd="anon", kind="contrib", step=0, text="who wrote this?")
    assert refused["event"] == "error" and "at least 3 members" in refused["message"]
    # The display writes nothing: its input is refused on its own laptop.
    refused = display.cmd(cmd="contribute", step=0, text="from the projector")
    assert refused["event"] == "error"
    refused = display.cmd(cmd="raise_hand")
    assert refused["event"] == "error"
    assert len(wait_all_equal(peers)[0]["contributions"]) == 1
