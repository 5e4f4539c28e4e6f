"""The meeting screen, driven from the keyboard with Pilot, against a real
Node whose Session sits in an in-memory room of four."""

from __future__ import annotations

from fakenet import IDENTITIES
from fakeroom import (
    ANON_ONLY,
    NAMED_ONLY,
    PROPOSAL,
    RATING,
    SECRET_BALLOT,
    TEXT,
    AnonymousNode,
    Room,
    in_meeting,
    open_step,
)
from textual.widgets import Digits

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.app.screens.dialogs import (
    ChoiceDialog,
    ConfirmDialog,
    ModeChoiceDialog,
    TalkTimeDialog,
)
from relsec_p2p.app.screens.display import DisplayScreen
from relsec_p2p.app.screens.help import HelpScreen, bindings_of, key_label
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.app.screens.rating import RatingScreen
from relsec_p2p.app.widgets.compose import ComposeBox
from relsec_p2p.app.widgets.panels import AgendaList, PollPanel, PromptPanel, RoomBar, RosterPanel
from relsec_p2p.app.widgets.rating import RatingList
from relsec_p2p.core.requests import AnonymousAnswer, AnonymousVote, PauseRequest

SIZE = (100, 30)


def bar_text(app: RelsecApp) -> str:
    return app.screen.query_one(RoomBar).shown_text


def toasts(app: RelsecApp) -> list[str]:
    return [notification.message for notification in app._notifications]


async def test_meeting_shows_agenda_prompt_members_and_safety_number(room: Room) -> None:
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        screen = app.screen
        assert isinstance(screen, MeetingScreen)
        assert room.node is not None
        bar = bar_text(app)
        assert "4 members" in bar
        assert room.node.safety_number() in bar
        # Nobody has compared the number yet: the reminder is up, word for word.
        assert bar.splitlines()[1:] == [
            "The roster changed: read the safety number aloud, count heads, then press k."
        ]
        prompt = screen.query_one(PromptPanel).shown_text
        assert "Describe each threat on its own." in prompt  # the prompt in full
        agenda = screen.query_one(AgendaList).shown_text
        assert "> 1. Threats" in agenda and "5. Unsaid" in agenda
        roster = screen.query_one(RosterPanel).shown_text
        assert "Ana (you) · facilitates" in roster and "Bo" in roster


async def test_named_contribution_typed_goes_to_the_room_with_its_author(room: Room) -> None:
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press(*"We depend on one funder", "enter")  # the box has the focus
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MeetingScreen)
        assert "Ana: We depend on one funder" in screen.log_text()
        assert screen.query_one(ComposeBox).input.value == ""
        room.settle(app)
        theirs = room.session(2).state.contributions
        assert [(c.text, c.author) for c in theirs] == [
            ("We depend on one funder", IDENTITIES[0].key)
        ]
        # Another member answers: it appears here, under its author.
        room.session(1).contribute(TEXT, "Meetings run long")
        room.settle(app)
        await pilot.pause()
        assert "Bo: Meetings run long" in screen.log_text()


async def test_a_draft_survives_leaving_the_box_and_coming_back(room: Room) -> None:
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press(*"We depend", "escape", "h")  # out of the box to raise a hand
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*" on one funder")  # the draft goes on, not replaced
        box = app.screen.query_one(ComposeBox)
        assert box.input.has_focus
        assert box.input.value == "We depend on one funder"


async def test_text_from_the_network_is_shown_as_text_never_markup() -> None:
    room = Room(members=1)
    hostile = "[@click=app.quit]Eve[/] \u202eevil\x1b[2J"
    room.session(0).add_member(IDENTITIES[5].key, IDENTITIES[5].ring_key, "[b]Eve[/b]")
    room.session(0).open_step(TEXT)
    room.session(0).contribute(TEXT, hostile)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        screen = app.screen
        assert isinstance(screen, MeetingScreen)
        log = screen.log_text()
        assert "[@click=app.quit]Eve[/] \ufffdevil\ufffd[2J" in log  # literal, overrides gone
        assert "[b]Eve[/b]" in screen.query_one(RosterPanel).shown_text
        assert app.is_running


async def test_compose_offers_only_the_modes_the_prompt_allows(room: Room) -> None:
    open_step(room, NAMED_ONLY)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        compose = app.screen.query_one(ComposeBox)
        assert compose.can_write and not compose.anonymous
        await pilot.press("ctrl+t")
        assert not compose.anonymous  # named only: the switch refuses
        room.session(0).open_step(ANON_ONLY)
        room.settle(app)
        await pilot.pause()
        assert compose.can_write and compose.anonymous  # anonymous only
        await pilot.press("ctrl+t")
        assert compose.anonymous
        room.session(0).open_step(RATING)
        room.settle(app)
        await pilot.pause()
        assert not compose.can_write and compose.input.disabled  # ratings: press r


async def test_anonymous_answers_go_through_real_rounds_and_show_unattributed() -> None:
    room = Room(node_class=AnonymousNode)
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        node = room.node
        assert isinstance(node, AnonymousNode)
        compose = app.screen.query_one(ComposeBox)
        assert not compose.anonymous  # a "both" prompt starts named
        await pilot.press("ctrl+t")
        assert compose.anonymous
        await pilot.press(*"too much")
        capacity = node.anonymous_capacity()
        assert compose.remaining() == capacity - len("too much")
        compose.input.value = "x" * (capacity + 1)
        await pilot.press("enter")
        assert node.submitted == []  # over the slot: refused, text kept
        assert len(compose.input.value) == capacity + 1
        compose.input.value = ""
        app.clear_notifications()
        await pilot.press(*"I feel unheard", "enter")
        assert node.submitted == [AnonymousAnswer(TEXT, "I feel unheard")]
        await pilot.pause()
        # The author's screen gives no sign beyond a quiet count (issue 12.5).
        assert toasts(app) == []
        assert "1 waiting" in bar_text(app)
        room.session(2).submit_anonymous(AnonymousAnswer(TEXT, "Me too"))
        room.run_rounds(
            app, lambda: all(len(s.state.anonymous_contributions) == 2 for s in room.net)
        )
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MeetingScreen)
        log = screen.log_text()
        # Fewer than the threshold (3): held on every screen, none set apart.
        assert "2 anonymous answers are in: shown once 3 are" in log
        assert "I feel unheard" not in log and "Me too" not in log
        room.session(1).submit_anonymous(AnonymousAnswer(TEXT, "Same here"))
        room.run_rounds(
            app, lambda: all(len(s.state.anonymous_contributions) == 3 for s in room.net)
        )
        await pilot.pause()
        log = screen.log_text()
        assert "Anonymous: 3 in " in log and "4 members, 4 slots)" in log
        assert "round" not in log.lower()  # one heading, no round of a lone item
        lines = log.splitlines()
        # Numbered as the record numbers them (in the round's shuffled order).
        numbered = sorted(line[4:].split(" ", 1)[0] for line in lines if line.startswith("  - "))
        assert numbered == ["1.1", "1.2", "1.3"]
        assert sum(line.endswith((" I feel unheard", " Me too")) for line in lines) == 2
        assert "Ana: I feel unheard" not in log and "Cy: Me too" not in log
        assert room.session(0).state.contributions == []  # nothing named was written
        await pilot.press("escape", "p")
        assert node.submitted[-1] == PauseRequest()
        await pilot.pause()
        assert toasts(app) == []  # no "your pause request goes out..."
        assert "1 waiting" in bar_text(app)
        room.run_rounds(app, lambda: all(s.state.pause_requests == 1 for s in room.net))
        await pilot.pause()
        assert "pause asked (1)" in bar_text(app)
        # A new prompt starts in its first mode again: never anonymous by accident.
        room.session(0).open_step(NAMED_ONLY)
        room.settle(app)
        await pilot.pause()
        assert not compose.anonymous


async def test_anonymous_tally_shows_only_once_enough_have_voted() -> None:
    room = Room(node_class=AnonymousNode)
    ana = room.session(0)
    ana.open_step(SECRET_BALLOT)
    proposal = ana.propose(SECRET_BALLOT, "Rotate facilitation")
    poll = ana.open_poll(proposal.hash)
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "v", "1")  # an anonymous step: agree, anonymously
        assert room.node is not None
        assert room.node.submitted[-1] == AnonymousVote(poll.hash, "agree")  # type: ignore[attr-defined]
        room.session(1).submit_anonymous(AnonymousVote(poll.hash, "block"))
        room.run_rounds(app, lambda: all(len(s.state.polls[poll.hash].anon_votes) == 2
                                         for s in room.net))  # fmt: skip
        await pilot.pause()
        panel = app.screen.query_one(PollPanel).shown_text
        assert "Anonymous: shown once at least 3 members have voted" in panel
        assert "block 1" not in panel  # two votes: who blocked would be guessable
        room.session(2).submit_anonymous(AnonymousVote(poll.hash, "agree"))
        room.run_rounds(app, lambda: all(len(s.state.polls[poll.hash].anon_votes) == 3
                                         for s in room.net))  # fmt: skip
        await pilot.pause()
        panel = app.screen.query_one(PollPanel).shown_text
        assert "Anonymous: agree 2 · concerns 0 · stand aside 0 · block 1" in panel


async def test_hand_goes_up_and_down(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "h")
        await pilot.pause()
        me = IDENTITIES[0].key
        assert room.session(0).state.queue.waiting == [me]
        assert "hand up" in app.screen.query_one(RosterPanel).shown_text
        await pilot.press("s")  # the facilitator gives the floor
        await pilot.pause()
        assert room.session(0).state.queue.speaker == me
        await pilot.press("h")  # done speaking
        await pilot.pause()
        assert room.session(0).state.queue.speaker is None


async def test_facilitator_moves_the_agenda_and_others_cannot(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "n", "n", "n")
        assert room.session(0).state.current == 2
        await pilot.press("b")
        assert room.session(0).state.current == 1
    room.settle(app)
    other = Room(seat=1)
    other.session(0).open_step(TEXT)
    other.net.settle()
    app = RelsecApp(other.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "n", "o", "x", "f")
        assert other.session(1).state.current == TEXT
        assert not isinstance(app.screen, ChoiceDialog)
        footer_keys = {b.binding.key for b in app.screen.active_bindings.values()}
        assert "n" not in footer_keys and "h" in footer_keys


async def test_poll_named_votes_live_result_and_rule(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        room.session(0).open_step(PROPOSAL)
        room.settle(app)
        await pilot.pause()
        await pilot.press("c", *"Share the funder contact", "enter", "escape", "o")
        await pilot.pause()
        dialog = app.screen  # a "both" step: named or anonymous, the facilitator says
        assert isinstance(dialog, ChoiceDialog) and dialog.options[0][1] is False
        await pilot.press("1")
        await pilot.pause()
        state = room.session(0).state
        assert len(state.polls) == 1
        poll = next(iter(state.polls.values()))
        room.net.settle()
        await pilot.press("v")
        assert isinstance(app.screen, ModeChoiceDialog)
        await pilot.press("1")  # agree
        await pilot.pause()
        panel = app.screen.query_one(PollPanel)
        assert "agree 1" in panel.shown_text and "1 of 4 voted" in panel.shown_text
        room.session(1).vote(poll.id, "concerns")
        room.session(2).vote(poll.id, "agree")
        room.settle(app)
        await pilot.pause()
        assert "concerns 1" in panel.shown_text
        await pilot.press("x")
        room.settle(app)
        await pilot.pause()
        shown = panel.shown_text
        assert "Result: CONSENSUS" in shown
        assert "Rule: blocked if any block" in shown
        await pilot.press("w", *"Start next week", "enter")
        room.settle(app)
        await pilot.pause()
        assert "Recorded outcome: Start next week" in panel.shown_text
        assert all(s.state.polls[poll.id].outcome == "Start next week" for s in room.net)


async def test_a_block_shows_blocked(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        room.session(0).open_step(PROPOSAL)
        proposal = room.session(0).propose(PROPOSAL, "Remove the member at once")
        poll = room.session(0).open_poll(proposal.hash)
        room.net.settle()
        for i, choice in enumerate(["agree", "agree", "block", "agree"]):
            room.session(i).vote(poll.hash, choice)
        room.net.settle()
        room.session(0).close_poll(poll.hash)
        room.settle(app)
        await pilot.pause()
        assert "Result: BLOCKED" in app.screen.query_one(PollPanel).shown_text


async def test_rating_screen_sets_a_named_rating_of_the_step(room: Room) -> None:
    open_step(room, RATING)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("r")  # nothing to rate one by one yet: the step as a whole
        assert isinstance(app.screen, RatingScreen)
        rows = app.screen.query_one(RatingList).plain_rows()
        assert rows == [
            "  How safe do you feel here?\n    0 of 4 have rated · spread shown once 3 have rated"
        ]
        await pilot.press("3")
        await pilot.pause()
        assert room.session(0).state.ratings == {(RATING, None, IDENTITIES[0].key): 2}
        await pilot.pause(0.3)
        rows = app.screen.query_one(RatingList).plain_rows()
        assert rows[0].startswith("✓ How safe") and "1 of 4 have rated" in rows[0]


async def test_a_rating_about_another_steps_answers_lists_every_answer(room: Room) -> None:
    open_step(room, TEXT)
    funder = room.session(1).contribute(TEXT, "One funder")
    meetings = room.session(2).contribute(TEXT, "Long meetings")
    open_step(room, RATING)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("r")
        assert isinstance(app.screen, RatingScreen)  # every answer on one screen
        rows = app.screen.query_one(RatingList).plain_rows()
        assert [row.splitlines()[0] for row in rows] == ["  1.1 One funder", "  1.2 Long meetings"]
        await pilot.press("1", "3")  # the first, then (moved on) the second
        await pilot.pause()
        assert room.session(0).state.ratings == {
            (RATING, funder.hash, IDENTITIES[0].key): 0,
            (RATING, meetings.hash, IDENTITIES[0].key): 2,
        }


async def test_hand_over_facilitation_and_talk_time(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "t")
        assert isinstance(app.screen, TalkTimeDialog)
        await pilot.press("escape", "f")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("2")  # the second other member: Cy
        await pilot.pause()
        # Asked again before the meeting changes hands; n keeps it.
        assert isinstance(app.screen, ConfirmDialog)
        assert "Hand facilitation to Cy? Only Cy can hand it back." in str(
            app.screen.query_one(".dialog-title").render()
        )
        await pilot.press("n")
        await pilot.pause()
        assert room.session(0).state.facilitator == IDENTITIES[0].key
        await pilot.press("f", "2", "y")
        await pilot.pause()
        assert room.session(0).state.facilitator == IDENTITIES[2].key
        assert "Cy · facilitates" in app.screen.query_one(RosterPanel).shown_text


async def test_safety_number_reminder_until_compared_and_again_on_change(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        bar = app.screen.query_one(RoomBar)
        assert bar.has_class("-changed") and "count heads" in bar_text(app)
        await pilot.press("escape", "k")
        assert not bar.has_class("-changed")
        before = room.node.safety_number() if room.node else ""
        room.net.join(IDENTITIES[6], "Gu", sponsor=room.session(0))
        room.settle(app)
        await pilot.pause()
        assert room.node is not None and room.node.safety_number() != before
        assert bar.has_class("-changed") and "5 members" in bar_text(app)


async def test_room_display_is_read_only_and_shows_the_room(room: Room) -> None:
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "d")
        assert isinstance(app.screen, DisplayScreen)
        await pilot.press("c", "h", "n")  # nothing here acts on the meeting
        assert room.session(0).state.current == TEXT
        assert room.session(0).state.queue.waiting == []
        assert room.node is not None
        digits = app.screen.query_one("#display-number", Digits)
        assert digits.value == room.node.safety_number()
        await pilot.press("escape")
        assert isinstance(app.screen, MeetingScreen)


async def test_help_lists_every_key_and_the_palette_every_action(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        screen = app.screen
        titles = {command.title for command in app.get_system_commands(screen)}
        for binding in bindings_of(MeetingScreen.BINDINGS):
            assert binding.description in titles, binding.description
        assert "Screenshot" not in titles  # it would write the screen to a file
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text().plain
        for table in (RelsecApp.BINDINGS, MeetingScreen.BINDINGS, DisplayScreen.BINDINGS):
            for binding in bindings_of(table):
                if binding.description:
                    assert binding.description in text
                    assert key_label(binding) in text


async def test_panic_blanks_drops_the_meeting_and_exits(room: Room, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    open_step(room, TEXT)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press(*"half a sentence")
        node = room.node
        assert node is not None and node.session is not None
        await pilot.press("f12")
        assert app.meeting is None and app.view is None
        assert node.session is None and node.links == {}
        await pilot.pause(0.5)
    assert app.return_value == 3
    assert list(tmp_path.iterdir()) == []  # nothing written


async def test_members_away_are_greyed_removed_and_a_rejoined_member_matched(
    room: Room,
) -> None:
    """SPEC §6.1 "Presence": Di's laptop vanished and the room declared it
    away; the facilitator removes Di (m, confirmed), then matches a newcomer
    to Cy's earlier place (u), and the roster shows each person once."""
    di = IDENTITIES[3].key
    for i in range(3):
        room.session(i).declare_away(di)
        room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        roster = app.screen.query_one(RosterPanel)
        assert "Di · away" in roster.shown_text
        assert "quorum: 3 of 3 present" in roster.shown_text
        assert "4 members (1 away)" in bar_text(app)
        await pilot.press("escape", "z")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("1")  # those away come first: Di
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        room.settle(app)
        await pilot.pause()
        assert all(s.state.members[di].gone == "removed" for s in room.net if s.me != di)
        assert "Di" not in roster.shown_text
        # Cy's laptop crashed; Cy joined again with new keys, under the same name.
        cy, again = IDENTITIES[2], IDENTITIES[6]
        room.net.join(again, "Cy", sponsor=room.session(1))
        room.settle(app)
        await pilot.pause()
        assert "Cy #3" in roster.shown_text and "Cy #5" in roster.shown_text
        assert "may be" not in roster.shown_text  # Cy #3 is present: no hint
        for i in (0, 1, 4):  # Ana, Bo and the newcomer: 3 of the 4 present
            room.session(i).declare_away(cy.key)
            room.net.settle()
        room.settle(app)
        await pilot.pause()
        assert "Cy #5 may be Cy #3 (away): u to match" in roster.shown_text
        await pilot.press("u")
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("3")  # who rejoined: Bo, Cy #3, Cy #5
        assert isinstance(app.screen, ChoiceDialog)
        await pilot.press("1")  # which earlier member: Cy #3 (away first), Bo
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        room.settle(app)
        await pilot.pause()
        state = room.session(0).state
        assert state.members[cy.key].gone == "replaced"
        assert state.members[again.key].replaces == cy.key
        lines = roster.shown_text.splitlines()
        assert [line for line in lines if line.startswith("Cy")] == ["Cy · rejoined"]
        assert "quorum: 3 of 3 present" in roster.shown_text


async def test_ctrl_q_writes_the_departure_before_the_app_exits(room: Room) -> None:
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        for _ in range(50):
            await pilot.pause(0.05)
            if app.return_code is not None:
                break
        assert app.return_code == 0
    room.net.settle()
    me = IDENTITIES[0].key
    assert all(s.state.members[me].gone == "left" for s in room.net)
