"""The meeting screen's chrome: keys you can find (a footer that follows
the moment, the next action in the status line, the README's table), the
compose box's new line, folding panels, acknowledging a pause, exporting the
record from the app, and saying truthfully whether this laptop saves."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from fakeroom import PROPOSAL, RATING, TEXT, AnonymousNode, Room, in_meeting, open_step
from textual.pilot import Pilot

from relsec_p2p import cli
from relsec_p2p.app.app import DEFAULT_THEME, RelsecApp
from relsec_p2p.app.network import NetworkOptions, node_factory
from relsec_p2p.app.screens.dialogs import ChoiceDialog, TextDialog
from relsec_p2p.app.screens.lobby import LobbyScreen
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.app.widgets.compose import ComposeBox, ComposeText
from relsec_p2p.app.widgets.panels import RoomBar, StatusLine
from relsec_p2p.core.requests import PauseRequest

SIZE = (120, 40)
README = Path(__file__).resolve().parents[2] / "README.md"
OFFLINE = NetworkOptions(interface="127.0.0.1", use_mdns=False)


def footer_keys(app: RelsecApp) -> set[str]:
    """The keys the footer shows now (what the Footer widget reads)."""
    return {
        active.binding.key.split(",")[0]
        for active in app.screen.active_bindings.values()
        if active.binding.show
    }


def status(app: RelsecApp) -> str:
    return app.screen.query_one(StatusLine).shown_text


async def wait_for(pilot: Pilot[int], predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


# -- keys you can find -------------------------------------------------------------------


async def test_the_footer_follows_the_poll_and_the_status_line_suggests_the_next_key(
    room: Room,
) -> None:
    ana = room.session(0)
    ana.open_step(PROPOSAL)
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        # Writing: only what works in the box (letters would be typed).
        assert isinstance(app.screen.focused, ComposeText)
        keys = footer_keys(app)
        assert {"enter", "ctrl+j", "escape", "f1"} <= keys
        assert not keys & {"n", "o", "x", "w", "v", "c", "h"}
        await pilot.press("escape")
        keys = footer_keys(app)
        assert {"n", "c", "h", "k"} <= keys and not keys & {"o", "x", "w", "v"}
        assert "press n for the next step" in status(app)

        proposal = room.session(1).propose(PROPOSAL, "Rotate facilitation")
        room.settle(app)
        await pilot.pause()
        assert "o" in footer_keys(app)
        assert "A proposal is in: press o to poll it." in status(app)

        await pilot.press("o")  # the only proposal: polled at once...
        # ...once the facilitator says how people vote (a "both" step): by name.
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("1")
        room.settle(app)
        await pilot.pause()
        keys = footer_keys(app)
        assert {"x", "v"} <= keys and "o" not in keys
        assert "press v to vote" in status(app)
        poll = next(iter(ana.state.polls))
        for i in range(4):
            room.session(i).vote(poll, "agree")
        room.settle(app)
        await pilot.pause()
        assert "Everyone has voted: press x to close the poll." in status(app)

        await pilot.press("x")
        room.settle(app)
        await pilot.pause()
        keys = footer_keys(app)
        assert "w" in keys and not keys & {"x", "v", "o"}  # decided: not offered again
        assert "Poll closed: press w to record what was decided." in status(app)
        assert proposal.hash in {p.proposal for p in ana.state.polls.values()}


async def test_a_member_sees_no_facilitator_keys_and_the_rating_key_on_a_rating_step() -> None:
    room = Room(seat=1)
    open_step(room, RATING)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape")
        keys = footer_keys(app)
        assert "r" in keys and not keys & {"n", "o", "x", "w", "s"}
        assert "press r to give yours" in status(app)
        assert "left" not in app.screen.query_one(ComposeBox).query_one("#compose-left").render()


async def test_the_switch_shows_while_writing_only_where_both_modes_are_allowed(room: Room) -> None:
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        assert "ctrl+t" in footer_keys(app)  # "both": the switch applies
        open_step(room, PROPOSAL)
        room.changed()
        await pilot.pause()
        assert "ctrl+t" not in footer_keys(app)  # proposals are named


def readme_rows() -> list[tuple[str, str]]:
    """(key cell, action cell) of the README's keys table."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Keys") : text.index("## Security")]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1] not in ("key", "---"):
            rows.append((cells[1], cells[2]))
    return rows


def test_the_readme_keys_table_matches_the_footer_and_help() -> None:
    rows = readme_rows()
    bindings = [*MeetingScreen.BINDINGS, *ComposeText.BINDINGS]
    for binding in bindings:
        assert not isinstance(binding, tuple)
        key = binding.key.split(",")[0].replace("escape", "esc")
        description = binding.description
        found = [
            action
            for keys, action in rows
            if key.lower() in re.split(r"[ /()]+", keys.lower().replace("or ", ""))
            and description.lower() in action.lower()
        ]
        assert found, f"README keys table has no row for {key}: {description}"
    # And every single key the table names for the meeting is a real key.
    bound = {b.key.split(",")[0] for b in bindings if not isinstance(b, tuple)}
    for keys, _action in rows:
        for key in re.split(r" / | or ", keys):
            if len(key) == 1:
                assert key in bound, f"README names key {key}, which the meeting lacks"


def test_every_key_the_status_line_names_is_bound() -> None:
    source = (Path(__file__).resolve().parents[2] / "relsec_p2p/app/hints.py").read_text()
    named = set(re.findall(r"press ([a-z])\b", source)) | set(re.findall(r": ([a-z]) ", source))
    bound = {b.key.split(",")[0] for b in MeetingScreen.BINDINGS if not isinstance(b, tuple)}
    assert named and named <= bound, named - bound


async def test_help_shows_the_current_screens_keys_first(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await in_meeting(app, pilot)
        sections = app.help_sections(app.screen)
        assert sections[0][0] == "Meeting"
        await pilot.press("escape", "f1")
        text = app.screen.query_one("#help-text").render()
        assert str(text).index("Meeting") < str(text).index("Everywhere")
        lobby = app.help_sections(LobbyScreen())
        assert lobby[0][0] == "Lobby"


# -- writing -------------------------------------------------------------------------------


async def test_compose_adds_a_line_with_ctrl_j_and_sends_with_enter(room: Room) -> None:
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press(*"first line", "ctrl+j", *"second line")
        field = app.screen.query_one(ComposeBox).input
        assert field.text == "first line\nsecond line"
        assert room.session(0).state.contributions == []  # not sent yet
        await pilot.press("enter")
        await pilot.pause()
        assert [c.text for c in room.session(0).state.contributions] == ["first line\nsecond line"]
        assert field.text == ""


# -- small things --------------------------------------------------------------------------


async def test_a_pause_request_can_be_noted_and_the_reminder_clears() -> None:
    room = Room(node_class=AnonymousNode)
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        room.session(2).submit_anonymous(PauseRequest())
        room.run_rounds(app, lambda: all(s.state.pause_requests == 1 for s in room.net))
        await pilot.pause()
        bar = app.screen.query_one(RoomBar).shown_text
        assert "pause asked (1)" in bar
        assert "a" in footer_keys(app) or "escape" in footer_keys(app)
        assert "Someone asked for a pause" in status(app)
        await pilot.press("escape", "a")
        await pilot.pause()
        assert "pause asked" not in app.screen.query_one(RoomBar).shown_text
        assert "a" not in footer_keys(app)
        assert "pause" not in status(app)


async def test_side_panels_fold_to_their_title_and_unfold(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await in_meeting(app, pilot)
        agenda = app.screen.query_one("#agenda")
        assert agenda.border_title == "Agenda" and agenda.size.height > 3
        await pilot.press("escape", "g")
        await pilot.pause()
        assert agenda.outer_size.height == 1 and "g unfolds" in str(agenda.border_title)
        await pilot.press("g")
        await pilot.pause()
        assert agenda.size.height > 3
        assert app.screen.query_one("#roster").border_title == "Members (4)"
        assert not app.screen.query_one("#decisions").display  # empty: no room taken


def test_the_default_theme_and_the_palette_offers_the_others(room: Room) -> None:
    app = RelsecApp(room.factory)
    assert app.theme == DEFAULT_THEME


async def test_the_palette_lists_export_and_theme(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Export the record as Markdown…" in titles
        assert "Export the record as JSON…" in titles
        assert any("theme" in title.lower() for title in titles)


# -- saving and exporting ----------------------------------------------------------------


async def test_export_the_record_from_the_app(room: Room, tmp_path: Path) -> None:
    open_step(room, TEXT)
    room.session(1).contribute(TEXT, "Meetings run long")
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "e")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("1")  # Markdown
        await pilot.pause()
        assert isinstance(app.screen, TextDialog)
        target = tmp_path / "record.md"
        field = app.screen.query_one("#dialog-input")
        field.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert "Meetings run long" in target.read_text(encoding="utf-8")
        # JSON through the palette's command; an existing file is asked about.
        app.ask_export(".json")
        await pilot.pause()
        field = app.screen.query_one("#dialog-input")
        field.value = str(target.with_suffix(".json"))  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        data = json.loads(target.with_suffix(".json").read_text(encoding="utf-8"))
        assert any(
            item["text"] == "Meetings run long" for step in data["steps"] for item in step["items"]
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json", "record.md"]


async def test_a_save_that_cannot_be_made_stops_the_meeting_from_starting(tmp_path: Path) -> None:
    save = tmp_path / "meeting.relsec"
    app = RelsecApp(node_factory(OFFLINE), save_to=(save, "short"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.save_problem))
        lobby = app.screen
        assert isinstance(lobby, LobbyScreen)
        assert "at least 8 characters" in lobby.status
        intro = str(lobby.query_one("#lobby-intro").render())
        assert "Nothing is saved on this laptop" in intro and "keeps" not in intro
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab", "tab", *"Tuesday", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, LobbyScreen)  # not started unsaved
        assert app.node is not None and app.node.state is None
    assert not save.exists()


async def test_the_status_line_says_the_meeting_is_saved_only_when_it_is(tmp_path: Path) -> None:
    save = tmp_path / "meeting.relsec"
    app = RelsecApp(node_factory(OFFLINE), save_to=(save, "correct horse"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        intro = str(app.screen.query_one("#lobby-intro").render())
        assert "Nothing is saved" not in intro and str(save) in intro
        await pilot.press(*"Ana", "tab", "tab", "tab", "tab", "tab", *"Tuesday", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MeetingScreen))
        await wait_for(pilot, lambda: "saved to meeting.relsec" in status(app))
        assert save.exists()  # "saved" only once it is
    plain = RelsecApp(node_factory(OFFLINE))
    async with plain.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "Nothing is saved on this laptop." in str(
            plain.screen.query_one("#lobby-intro").render()
        )


def test_a_short_passphrase_from_the_environment_is_refused_and_nothing_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    save = tmp_path / "meeting.relsec"
    monkeypatch.setenv(cli.PASSPHRASE_ENV, "short")
    assert cli.main(["--interface", "127.0.0.1", "--no-mdns", "--save", str(save)]) == 2
    err = capsys.readouterr().err
    assert "at least 8 characters" in err and "nothing is saved" in err.lower()
    assert err.count("\n") == 2 and not save.exists()
    assert cli.PASSPHRASE_ENV not in os.environ  # taken out for no child to inherit


def test_a_short_passphrase_typed_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = iter(["short", "correct horse", "correct horse"])
    monkeypatch.delenv(cli.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert cli.read_new_passphrase(tmp_path / "new.relsec") == "correct horse"
    assert "at least 8 characters" in capsys.readouterr().err


def test_a_wrong_resume_passphrase_typed_is_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakenet import FakeNetwork

    from relsec_p2p.core.save import payload_of
    from relsec_p2p.net.files import SaveFile

    save = tmp_path / "meeting.relsec"
    SaveFile.prepare(save, "correct horse").write(payload_of(FakeNetwork.meeting(1)[0]))
    typed = iter(["wrong horse", "correct horse"])
    monkeypatch.delenv(cli.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert cli.read_resume_passphrase(save) == "correct horse"
    assert "that passphrase does not open" in capsys.readouterr().err
