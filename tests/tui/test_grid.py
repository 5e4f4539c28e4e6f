"""The grid, the rating screen, numbered items and the decisions panel,
driven with Pilot over a real Node in the in-memory room (tests/tui/gridroom.py)."""

from __future__ import annotations

from collections.abc import Callable

from fakeroom import AnonymousNode, in_meeting
from gridroom import (
    HURT,
    IMPACTS,
    LIKELY,
    WAY,
    GridRoom,
    polled_with_reasons,
    rate_all,
    rated_room,
    threats_named,
)
from textual.widgets import Static

from relsec_p2p.app.app import RelsecApp
from relsec_p2p.app.screens.dialogs import ChoiceDialog
from relsec_p2p.app.screens.display import DisplayScreen
from relsec_p2p.app.screens.meeting import MeetingScreen
from relsec_p2p.app.screens.rating import RatingScreen
from relsec_p2p.app.screens.reason import ReasonDialog
from relsec_p2p.app.widgets.contributions import ContributionLog
from relsec_p2p.app.widgets.decisions import DecisionsPanel
from relsec_p2p.app.widgets.grid import GridPanel
from relsec_p2p.app.widgets.panels import PollPanel
from relsec_p2p.app.widgets.rating import RatingList
from relsec_p2p.core.requests import AnonymousAnswer, AnonymousVote

SIZE = (100, 34)


def grid_lines(app: RelsecApp) -> list[str]:
    return app.screen.query_one(GridPanel).shown_text.splitlines()


async def test_the_grid_places_each_threat_by_its_middle_answers_on_screen() -> None:
    room = rated_room()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        lines = grid_lines(app)
        state = room.session(0).state
        labels = {c.text: f"1.{n}" for n, c in enumerate(state.contributions[:3], start=1)}
        funder = labels["Our only funder relationship sits with one person."]
        talks = labels["One member talks for most of every meeting; others stop trying."]
        # Middle answers: "talks" is likely x severe, "funder" unlikely x devastating.
        likely = next(line for line in lines if line.startswith("likely "))
        assert likely.split("│")[4].strip(" ▒▓░") == talks
        unlikely = next(line for line in lines if line.startswith("unlikely"))
        assert unlikely.split("│")[5].strip(" ▒▓░") == funder
        assert "3 placed" in lines[0]
        # Readable without colour: the heat is in shading characters too.
        assert "▓" in "".join(lines) and "░" in "".join(lines)


async def test_the_grid_waits_for_the_threshold_and_fills_in_as_answers_come() -> None:
    room = GridRoom(seat=0)
    room.node_class = AnonymousNode
    ids = threats_named(room)
    rate_all(room, LIKELY, ids, {1: [3, 1, 2], 2: [3, 2, 2], 3: [4, 1, 2]})
    rate_all(room, HURT, ids, {1: [3, 4, 1], 2: [2, 4, 1]})  # two of three so far
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        text = app.screen.query_one(GridPanel).shown_text
        assert "0 placed" in text
        assert "The grid fills in once 3 have rated a threat on both scales." in text
        # Ana rates every threat on the one rating screen, one key each.
        await pilot.press("escape", "r")
        await pilot.pause()
        assert isinstance(app.screen, RatingScreen)
        rows = app.screen.query_one(RatingList).plain_rows()
        assert all("2 of 4 have rated" in row for row in rows)
        assert all("spread shown once 3 have rated" in row for row in rows)
        assert not any(row.startswith("✓") for row in rows)
        board = app.screen.query_one(RatingList).board
        assert board is not None
        refs = [item.ref for item in board.items]
        assert sorted(refs) == sorted(ids)
        # Each key rates the highlighted item and moves on to the next.
        await pilot.press("4", "5", "2")
        node = room.node
        assert isinstance(node, AnonymousNode)
        assert [(r.step, r.ref, r.value) for r in node.submitted] == [
            (HURT, refs[0], 3),
            (HURT, refs[1], 4),
            (HURT, refs[2], 1),
        ]
        room.run_rounds(
            app,
            lambda: all(
                len(s.state.anonymous_ratings.get((HURT, ref), {})) == 3
                for s in room.net
                for ref in ids
            ),
        )
        await pilot.pause(0.3)
        rows = app.screen.query_one(RatingList).plain_rows()
        assert all(row.startswith("✓") for row in rows), rows
        assert all("3 of 4 have rated" in row for row in rows)
        assert any("middle answer: severe" in row for row in rows)
        assert "3 placed" in app.screen.query_one(GridPanel).shown_text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MeetingScreen)
        assert "3 placed" in app.screen.query_one(GridPanel).shown_text


async def test_the_room_display_shows_the_grid() -> None:
    room = rated_room()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "d")
        await pilot.pause()
        assert isinstance(app.screen, DisplayScreen)
        assert "3 placed" in app.screen.query_one(GridPanel).shown_text


async def test_items_are_numbered_with_attachments_and_tags() -> None:
    room = GridRoom()
    threats_named(room)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        screen = app.screen
        assert isinstance(screen, MeetingScreen)
        log = screen.log_text()
        numbered = [line for line in log.splitlines() if line[:4] in ("1.1 ", "1.2 ", "1.3 ")]
        assert len(numbered) == 3
        assert "2.1 Cy ↳ about 1." in log
        # The choice list for an attachment offers the numbers and whole texts.
        await pilot.press(*"It costs us members", "enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        labels = [label for label, _ in dialog.options]
        assert any(
            label.startswith("1.") and label.endswith("others stop trying.") for label in labels
        )


async def test_a_decision_stays_in_view_after_the_next_step_opens() -> None:
    room = GridRoom()
    threats_named(room)
    ana = room.session(0)
    ana.open_step(WAY)
    proposal = ana.propose(WAY, "Rotate facilitation [1.1] and share the funder contact.")
    poll = ana.open_poll(proposal.hash)
    room.net.settle()
    for seat, choice in enumerate(["agree", "agree", "concerns", "agree"]):
        room.session(seat).vote(poll.hash, choice)
    room.net.settle()
    ana.close_poll(poll.hash)
    room.net.settle()
    ana.record_outcome(poll.hash, "We rotate from the next meeting.")
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        # Shown in the poll panel while its step is open; the facilitator is
        # not offered the decided proposal again.
        assert app.screen.query_one(DecisionsPanel).shown_text == ""
        await pilot.press("escape", "o")
        await pilot.pause()
        assert isinstance(app.screen, MeetingScreen)  # no dialog: nothing to poll
        messages = [n.message for n in app._notifications]
        assert "There is no proposal in this step to poll on yet." in messages
        ana.open_step(IMPACTS)
        room.settle(app)
        await pilot.pause()
        text = app.screen.query_one(DecisionsPanel).shown_text
        assert "P1 (step 5) Rotate facilitation [1.1]" in text
        assert "CONSENSUS agree 3 · concerns 1 · stand aside 0 · block 0" in text
        assert "Rule: blocked if any block" in text
        assert "Recorded: We rotate from the next meeting." in text
        await pilot.press("d")
        await pilot.pause()
        assert "Recorded: We rotate" in app.screen.query_one(DecisionsPanel).shown_text


async def test_a_vote_with_a_reason_shows_with_the_tally() -> None:
    room = polled_with_reasons()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        panel = app.screen.query_one(PollPanel)
        assert "Concerns: Rotation needs training first. (Bo)" in panel.shown_text
        assert "Block: The funder asked for one contact. (Cy)" in panel.shown_text
        # Ana blocks too, and says why.
        await pilot.press("escape", "v", "4")
        await pilot.pause()
        assert isinstance(app.screen, ReasonDialog)
        await pilot.press(*"Not before we ask the funder", "enter")
        await pilot.pause()
        poll = next(iter(room.session(0).state.polls.values()))
        assert (poll.votes[-1].choice, poll.votes[-1].reason) == (
            "block",
            "Not before we ask the funder",
        )
        assert "Block: Not before we ask the funder (Ana)" in panel.shown_text
        # Escape does not vote; Enter with nothing votes without a reason.
        await pilot.press("v", "2", "escape")
        await pilot.pause()
        assert len(poll.votes) == 4
        await pilot.press("v", "2", "enter")
        await pilot.pause()
        assert (poll.votes[-1].choice, poll.votes[-1].reason) == ("concerns", None)
        assert "(Ana)" not in panel.shown_text
        # The display shows the reasons without names.
        await pilot.press("d")
        await pilot.pause()
        lines = str(app.screen.query_one("#display-poll", Static).render()).splitlines()
        assert "Block: The funder asked for one contact." in lines
        assert "Concerns: Rotation needs training first." in lines


async def test_the_facilitator_opens_an_anonymous_poll_on_a_both_step() -> None:
    room = GridRoom()
    threats_named(room)
    ana = room.session(0)
    ana.open_step(WAY)
    proposal = ana.propose(WAY, "Rotate facilitation [1.1].")
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "o")  # one proposal: straight to how people vote
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)
        assert [value for _, value in dialog.options] == [False, True]  # named first here
        await pilot.press("2")
        await pilot.pause()
        poll = next(iter(room.session(0).state.polls.values()))
        assert poll.proposal == proposal.hash and poll.secret
        await pilot.press("v")
        await pilot.pause()
        assert "You answer anonymously." in str(
            app.screen.query_one("#dialog-note", Static).render()
        )


async def test_an_anonymous_answer_can_be_about_a_threat() -> None:
    room = GridRoom()
    room.node_class = AnonymousNode
    ids = threats_named(room)
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("ctrl+t", *"Nobody will say it aloud", "enter")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ChoiceDialog)  # what is it about? as for a named answer
        await pilot.press("1")
        await pilot.pause()
        node = room.node
        assert isinstance(node, AnonymousNode)
        request = node.submitted[-1]
        assert isinstance(request, AnonymousAnswer)
        first = dialog.options[0][1]
        assert request.ref == first and first in ids and request.step == IMPACTS


async def test_anonymous_threats_are_numbered_and_rated_like_named_ones() -> None:
    room = GridRoom()
    threats_named(room)
    texts = ["The landlord reads our emails.", "A member may be an informer.", "Burnout."]
    for seat, text in enumerate(texts, start=1):
        room.session(seat).submit_anonymous(AnonymousAnswer(0, text, tag="internal"))
    room.net.run_rounds(lambda: all(len(s.state.anonymous_contributions) == 3 for s in room.net))
    room.session(0).open_step(LIKELY)
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        log = app.screen.query_one(ContributionLog).plain_lines()
        anonymous = [line.strip() for line in log if line.strip().startswith("- 1.")]
        assert sorted(line[2:5] for line in anonymous) == ["1.4", "1.5", "1.6"]
        assert all("[internal]" in line for line in anonymous)
        await pilot.press("escape", "r")
        await pilot.pause()
        rows = app.screen.query_one(RatingList).plain_rows()
        firsts = [row.splitlines()[0] for row in rows]
        assert len(rows) == 6
        assert {line.split()[0] for line in firsts} == {"1.1", "1.2", "1.3", "1.4", "1.5", "1.6"}
        theirs = [line for line in firsts if any(text in line for text in texts)]
        assert len(theirs) == 3 and all("[internal]" in line for line in theirs)


async def test_an_anonymous_block_with_a_reason_goes_to_the_round() -> None:
    room = GridRoom()
    room.node_class = AnonymousNode
    threats_named(room)
    ana = room.session(0)
    ana.open_step(WAY)
    proposal = ana.propose(WAY, "Rotate facilitation [1.1].")
    poll = ana.open_poll(proposal.hash, anonymous=True)
    room.net.settle()
    app = RelsecApp(room.factory)
    async with app.run_test(size=SIZE) as pilot:
        await in_meeting(app, pilot)
        await pilot.press("escape", "v", "4")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ReasonDialog) and dialog.anonymous
        await pilot.press(*"Not without the funder", "enter")
        await pilot.pause()
        node = room.node
        assert isinstance(node, AnonymousNode)
        assert node.submitted == [AnonymousVote(poll.hash, "block", "Not without the funder")]
        assert room.session(0).state.polls[poll.hash].votes == []  # nothing named
        room.session(1).submit_anonymous(AnonymousVote(poll.hash, "agree"))

        def votes_in(count: int) -> Callable[[], bool]:
            return lambda: all(len(s.state.polls[poll.hash].anon_votes) == count for s in room.net)

        room.run_rounds(app, votes_in(2))
        await pilot.pause()
        # Below the threshold (3) nobody's reason shows, the voter's own included.
        panel = app.screen.query_one(PollPanel)
        assert "Not without" not in panel.shown_text
        room.session(2).submit_anonymous(AnonymousVote(poll.hash, "agree"))
        room.run_rounds(app, votes_in(3))
        await pilot.pause()
        assert "Block: Not without the funder (anonymous)" in panel.shown_text
