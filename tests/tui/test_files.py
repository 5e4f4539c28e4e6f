"""``relsec --template FILE``, ``--save FILE`` and ``--resume FILE`` in the app:
a group's own process in the lobby, an encrypted save kept while the meeting
runs, the meeting reopened from it (or one plain sentence if it cannot be),
and the panic key offering to delete it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Static

from relsec_p2p.app.app import EXIT_PANIC, PANIC_DELETE_QUESTION, RelsecApp
from relsec_p2p.app.network import NetworkOptions, node_factory
from relsec_p2p.app.screens.dialogs import ConfirmDialog
from relsec_p2p.app.screens.lobby import LobbyScreen
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.core.save import open_save
from relsec_p2p.templates import load_template

SIZE = (100, 30)
OFFLINE = NetworkOptions(interface="127.0.0.1", use_mdns=False)
OWN = """\
format = 1
title = "Our own check-in"
credit = "Written by our group"

[[steps]]
id = "round"
title = "Check-in"
prompt = "How are you arriving today?"
mode = "both"
kind = "text"
"""


async def wait_for(pilot, predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


async def test_own_template_save_and_resume(tmp_path: Path) -> None:
    own = tmp_path / "ours.toml"
    own.write_text(OWN, encoding="utf-8")
    template = load_template(str(own))
    save = tmp_path / "meeting.relsec"
    app = RelsecApp(
        node_factory(OFFLINE), template=(str(own), template), save_to=(save, "correct horse")
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab")  # name, code, join, process
        await pilot.press(*"Tuesday", "enter")  # the first choice is our own file
        await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
        assert app.node is not None and app.node.state is not None
        assert [s.id for s in app.node.state.steps] == ["round"]
        app.node.perform(lambda s: s.open_step(0))
        app.node.perform(lambda s: s.contribute(0, "tired but here"))
        mid = app.node.state.mid
        await wait_for(pilot, lambda: save.exists() and save.stat().st_size > 0)
        await app.node.close()  # writes the save a last time
    payload = open_save(save.read_bytes(), "correct horse", expected_mid=mid)
    assert payload is not None

    again = RelsecApp(node_factory(OFFLINE), resume_from=(save, "correct horse"))
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, MeetingScreen))
        assert again.node is not None and again.node.state is not None
        state = again.node.state
        assert state.title == "Tuesday"
        assert [c.text for c in state.contributions] == ["tired but here"]

    wrong = RelsecApp(node_factory(OFFLINE), resume_from=(save, "wrong horse"))
    before = save.read_bytes()
    async with wrong.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(wrong.network_problem))
        screen = wrong.screen
        assert isinstance(screen, LobbyScreen)
        assert screen.status.count(".") <= 2 and "passphrase" in screen.status.lower()
    assert save.read_bytes() == before  # nothing lost or overwritten


async def test_named_answers_carry_their_label_and_what_they_are_about() -> None:
    """The relational process: a threat is tagged internal or external; an
    impact says which threat it belongs to — chosen in dialogs after Enter."""
    app = RelsecApp(node_factory(OFFLINE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab", *"Funder", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
        node = app.node
        assert node is not None and node.state is not None
        node.perform(lambda s: s.open_step(0))
        await pilot.pause(0.3)
        await pilot.press("c", *"Funder pulls out", "enter")
        await pilot.pause(0.2)
        await pilot.press("2")  # "external"
        await wait_for(pilot, lambda: len(node.state.contributions) == 1)  # type: ignore[union-attr]
        threat = node.state.contributions[0]
        assert (threat.text, threat.tag, threat.ref) == ("Funder pulls out", "external", None)
        node.perform(lambda s: s.advance())  # impacts: about a threat
        await pilot.pause(0.3)
        await pilot.press("escape", "c", *"Rent unpaid", "enter")
        await pilot.pause(0.2)
        await pilot.press("1")  # about the threat above
        await wait_for(pilot, lambda: len(node.state.contributions) == 2)  # type: ignore[union-attr]
        impact = node.state.contributions[1]
        assert (impact.text, impact.ref, impact.tag) == ("Rent unpaid", threat.id, None)


async def start_saved_meeting(app: RelsecApp, pilot, save: Path) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press(*"Ana", "tab", "tab", "tab", "tab", *"Tuesday", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
    assert app.node is not None
    app.node.perform(lambda s: s.open_step(0))
    await wait_for(pilot, lambda: save.exists() and save.stat().st_size > 0)


@pytest.mark.parametrize("delete", [True, False])
async def test_the_panic_key_offers_to_delete_the_save(tmp_path: Path, delete: bool) -> None:
    save = tmp_path / "meeting.relsec"
    app = RelsecApp(node_factory(OFFLINE), save_to=(save, "correct horse"))
    async with app.run_test(size=SIZE) as pilot:
        await start_saved_meeting(app, pilot, save)
        node = app.node
        assert node is not None
        await pilot.press("f12")
        # The meeting is gone from the screen and from memory at once; the
        # question comes on the blank screen, naming neither file nor meeting.
        assert app.meeting is None and node.session is None
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        shown = "\n".join(str(s.render()) for s in app.screen.query(Static))
        assert PANIC_DELETE_QUESTION in shown
        assert "meeting.relsec" not in shown and "Tuesday" not in shown
        kept = save.read_bytes()
        await pilot.press("y" if delete else "n")
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == EXIT_PANIC
    if delete:
        assert list(tmp_path.iterdir()) == []  # overwritten and removed, no temporary left
    else:
        assert save.read_bytes() == kept  # kept as it was: nothing written after the panic
        assert list(tmp_path.iterdir()) == [save]


async def test_the_panic_key_asks_nothing_when_there_is_no_save(tmp_path: Path) -> None:
    app = RelsecApp(node_factory(OFFLINE))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab", *"Tuesday", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
        await pilot.press("f12")
        await wait_for(pilot, lambda: app.return_value is not None, timeout=5)
        assert not isinstance(app.screen, ConfirmDialog)
    assert app.return_value == EXIT_PANIC
