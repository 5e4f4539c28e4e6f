"""The lobby: start from a template, join by a code typed at the keyboard
(against a real ``relsec peer`` process found by mDNS on loopback), and one
plain sentence for every problem."""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.app.network import NetworkOptions, node_factory
from relsec_p2p.app.screens.lobby import LobbyScreen
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.peerproc import PeerProcess
from relsec_p2p.templates import load_template

SIZE = (100, 30)
LOOPBACK = NetworkOptions(interface="127.0.0.1")
OFFLINE = NetworkOptions(interface="127.0.0.1", use_mdns=False)


def lobby(app: RelsecApp) -> LobbyScreen:
    screen = app.screen
    assert isinstance(screen, LobbyScreen)
    return screen


async def wait_for(pilot, predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


async def test_start_a_meeting_from_a_template_with_the_keyboard() -> None:
    app = RelsecApp(node_factory(OFFLINE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab")
        assert app.focused is not None and app.focused.id == "title"
        await pilot.press(*"Our funder question", "enter")
        await pilot.pause()
        assert isinstance(app.screen, MeetingScreen)
        assert app.node is not None and app.node.state is not None
        state = app.node.state
        template = load_template("relational-security")
        assert state.title == "Our funder question"
        assert [s.id for s in state.steps] == [s.id for s in template.steps]
        assert state.members[app.node.identity.key].name == "Ana"


async def test_every_lobby_problem_is_one_plain_sentence() -> None:
    app = RelsecApp(node_factory(OFFLINE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = lobby(app)
        await pilot.press("tab", "enter")  # join with no name
        assert screen.status.startswith("Type the name people call you")
        screen.query_one("#name", Input).value = "Bo"
        screen.query_one("#code", Input).value = "42 harbour"
        screen.action_join()
        await wait_for(pilot, lambda: not screen.busy)
        assert "looks like 42-harbor-velvet-orbit" in screen.status
        screen.query_one("#code", Input).value = "42-harbor-velvet-orbit"
        screen.action_join()
        await wait_for(pilot, lambda: not screen.busy)
        assert "start without --no-mdns" in screen.status  # discovery is off here
        assert screen.status.count(".") == 1  # one sentence
        # The address form with its port forgotten: one sentence saying what to copy.
        screen.query_one("#code", Input).value = "42-harbor-velvet-orbit @ 192.168.1.23"
        screen.action_join()
        await wait_for(pilot, lambda: not screen.busy)
        assert screen.status.startswith("The address after @ is not right")
        assert screen.status.count("; ") == 1 and screen.status.endswith("screen.")


async def test_a_missing_network_interface_is_said_in_the_lobby() -> None:
    app = RelsecApp(node_factory(NetworkOptions(interface="nosuchif0")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "There is no network interface named 'nosuchif0'" in lobby(app).status
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab", *"t", "enter")
        assert isinstance(app.screen, LobbyScreen)  # nothing started without a network


async def test_loopback_only_is_explained() -> None:
    app = RelsecApp(node_factory(OFFLINE))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "only meetings on this laptop" in lobby(app).status)


@pytest.fixture
def facilitator():  # type: ignore[no-untyped-def]
    peer = PeerProcess()
    try:
        template = load_template("relational-security")
        answer = peer.ok(
            cmd="start", title="t", name="Ana", agenda=template.agenda, settings=template.settings
        )
        yield peer, answer["code"]
    finally:
        peer.close()


async def test_join_by_code_typed_at_the_keyboard(facilitator) -> None:  # type: ignore[no-untyped-def]
    peer, code = facilitator
    nameplate = code.split("-")[0]
    app = RelsecApp(node_factory(LOOPBACK))
    async with app.run_test(size=SIZE) as pilot:
        screen = lobby(app)
        await pilot.press(*"Bo", "tab")
        code_box = screen.query_one("#code", Input)
        assert app.focused is code_box
        # The lobby asks nothing of the network until a join is typed.
        assert app.node is not None and not app.node.browsing and not app.node.advertising
        await pilot.press(*f"{nameplate}-")
        # A wrong code first: one sentence, then the right one.
        await pilot.press(*"harbor-velvet-orbit", "enter")
        await wait_for(pilot, lambda: not screen.busy)
        assert "not accepted" in screen.status or "not one of relsec's code words" in screen.status
        code_box.value = ""
        await pilot.press(*code, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
        assert app.node is not None and app.node.state is not None
        names = sorted(m.name for m in app.node.state.active_members())
        assert names == ["Ana", "Bo"]
        state = peer.wait_state(lambda s: len(s["members"]) == 2)
        assert app.node.safety_number() == state["safety_number"]


async def test_no_meeting_with_that_number() -> None:
    app = RelsecApp(node_factory(LOOPBACK))
    app.join_timeout = 1.5
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = lobby(app)
        screen.query_one("#name", Input).value = "Bo"
        screen.query_one("#code", Input).value = "11-harbor-velvet-orbit"
        screen.action_join()
        await wait_for(pilot, lambda: not screen.busy)
        assert screen.status.startswith("No meeting with the number 11 answered")


async def test_relsec_display_joins_and_shows_only_the_room_display(facilitator) -> None:  # type: ignore[no-untyped-def]
    from relsec_p2p.app.screens.display import DisplayScreen

    peer, code = facilitator
    app = RelsecApp(node_factory(LOOPBACK), display_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = lobby(app)
        assert not screen.query("#start-pane")  # a display joins; it never starts a meeting
        assert screen.query_one("#name", Input).value == "Room display"
        screen.query_one("#code", Input).value = code
        screen.action_join()
        await wait_for(pilot, lambda: isinstance(app.screen, DisplayScreen))
        await pilot.press("escape", "c", "h")  # nothing to go back to, nothing to act with
        assert isinstance(app.screen, DisplayScreen)
        peer.ok(cmd="open_step", step=0)
        await wait_for(pilot, lambda: app.view is not None and app.view.current == 0)
        prompt = str(app.screen.query_one("#display-prompt").render())
        assert "What threatens the group" in prompt
