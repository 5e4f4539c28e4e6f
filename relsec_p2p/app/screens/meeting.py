"""The meeting screen: agenda, prompt, contributions, poll, compose box, roster.

Rules of this file: the screen redraws from a ``MeetingView`` the app hands
it (``show``); a key press calls one ``Meeting`` action and shows the
sentence it returns, if any. Letter keys act when the compose box is not
focused (Escape leaves it); ctrl and function keys act everywhere.
Facilitator keys are hidden from the footer of everyone else, and the
footer shows the keys that apply now (``in_context``): a poll open, a
proposal in, writing. The status line suggests the next sensible action
(``hints.py``) and says whether this laptop is saving the meeting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from ...core.state import CHOICES, REASON_CHOICES
from ...core.wording import CHOICE_LABELS
from ..controller import Meeting
from ..hints import next_action
from ..view import MeetingView, MemberView, choice_label
from ..widgets.compose import ComposeBox, ComposeText
from ..widgets.contributions import ContributionLog
from ..widgets.decisions import DecisionsPanel
from ..widgets.grid import GridPanel
from ..widgets.panels import (
    AgendaList,
    PollPanel,
    PromptPanel,
    RoomBar,
    RosterPanel,
    StatusLine,
)
from .dialogs import ChoiceDialog, ConfirmDialog, ModeChoiceDialog, TalkTimeDialog, TextDialog
from .rating import RatingScreen
from .reason import ReasonDialog

if TYPE_CHECKING:
    from ..app import RelsecApp

FACILITATOR_ACTIONS = frozenset(
    {
        "next_step",
        "previous_step",
        "open_poll",
        "close_poll",
        "next_speaker",
        "hand_over",
        "talk_time",
        "record_outcome",
        "remove_member",
        "match_rejoined",
        "toggle_joining",
    }
)
# What works while the compose box has the focus (every other key is a
# letter typed into the box): the footer shows only these then.
WHILE_WRITING = frozenset({"app.help", "leave_box", "switch_mode"})
# The side panels that fold away (to one title line) with a key, by id.
FOLDING_PANELS = {"agenda": "Agenda", "roster": "Members", "decisions": "Decisions"}
# The vote dialog's options: (label, choice), in the order of the rules' CHOICES.
VOTE_OPTIONS = [(CHOICE_LABELS[choice], choice) for choice in CHOICES]
NOT_ABOUT_ONE = b""  # the "not about one of these" choice (ids are 32 bytes)
# How a poll on a "both" step can be opened (SPEC §6.5 poll.open).
ANONYMOUS_POLL = "anonymously: votes go through anonymous rounds; screens show counts, not names"
NAMED_POLL = "by name: every screen shows who voted what"
# Outcomes that settle a proposal: it is not offered for a new poll (a blocked
# one can be changed and proposed again as a new proposal).
DECIDED = frozenset({"consensus", "blocked"})


class MeetingScreen(Screen[None]):
    # Keys that only make sense now and then (a poll open, a proposal in)
    # come first and show in the footer only then (``in_context``); the
    # README's keys table is checked against this table (tests/tui).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "app.help", "Help"),  # here, so the footer shows it first
        Binding("escape", "leave_box", "Leave the box"),
        Binding("ctrl+t", "switch_mode", "Named/anonymous"),
        Binding("k", "compared", "Safety number compared"),
        Binding("a", "pause_noted", "Pause noted"),
        Binding("v", "vote", "Vote"),
        Binding("r", "rate", "Rate"),
        Binding("o", "open_poll", "Open poll"),
        Binding("x", "close_poll", "Close poll"),
        Binding("w", "record_outcome", "Record outcome"),
        Binding("s", "next_speaker", "Next speaker"),
        Binding("c", "write", "Write"),
        Binding("h", "hand", "Hand"),
        Binding("n", "next_step", "Next step"),
        Binding("d,f2", "display", "Display"),
        Binding("p", "pause", "Ask for a pause", show=False),
        Binding("e", "export", "Export the record…", show=False),
        Binding("g", "fold('agenda')", "Fold/unfold the agenda", show=False),
        Binding("m", "fold('roster')", "Fold/unfold the members", show=False),
        Binding("j", "toggle_code", "Show/hide join code", show=False),
        Binding("b", "previous_step", "Previous step", show=False),
        Binding("f", "hand_over", "Hand over facilitation", show=False),
        Binding("t", "talk_time", "Talk time", show=False),
        Binding("z", "remove_member", "Remove a member", show=False),
        Binding("u", "match_rejoined", "Match a rejoined member", show=False),
        Binding("l", "toggle_joining", "Open/close joining", show=False),
    ]

    def __init__(self, meeting: Meeting) -> None:
        super().__init__(id="meeting")
        self.meeting = meeting
        self.view: MeetingView | None = None
        self.acknowledged = ""  # the safety number last compared aloud
        self.show_code: bool | None = None
        self.note = ""
        self._keys_context: tuple[object, ...] | None = None
        self._pauses_seen: int | None = None
        self.pauses_noted = 0  # pause requests this laptop has acknowledged (a)

    @property
    def relsec(self) -> RelsecApp:
        return cast("RelsecApp", self.app)

    def compose(self) -> ComposeResult:
        yield RoomBar(id="room-bar")
        with Horizontal(id="meeting-body"):
            with Vertical(id="side"):
                yield AgendaList(id="agenda", classes="side-panel")
                yield RosterPanel(id="roster", classes="side-panel")
                # Every decision so far; hidden until there is one.
                yield DecisionsPanel(id="decisions", classes="side-panel -empty")
            with Vertical(id="main"):
                # Scrolls a prompt too long for its share of the screen (Tab
                # reaches it, arrows scroll), never cuts it off.
                with VerticalScroll(id="prompt-box"):
                    yield PromptPanel(id="prompt")
                yield GridPanel(id="grid")
                yield ContributionLog(id="log")
                yield PollPanel(id="poll")
                yield ComposeBox(id="compose")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for panel_id, title in FOLDING_PANELS.items():
            self.query_one(f"#{panel_id}").border_title = title
        self.view = self.view or self.relsec.current_view()
        if self.view is not None:
            self._draw(self.view)
        self._focus_default()
        # A save lands (or fails) between changes to the meeting: the status
        # line catches up within a second, not at the next entry.
        self.set_interval(1.0, self._draw_status)

    def _focus_default(self) -> None:
        compose = self.query_one(ComposeBox)
        if compose.can_write:
            compose.input.focus()
        else:
            self.query_one(ContributionLog).focus()

    # -- drawing ------------------------------------------------------------------

    def show(self, view: MeetingView) -> None:
        """Redraw from ``view`` (kept for on_mount if the screen is not up yet)."""
        self.view = view
        if self.is_mounted:
            self._draw(view)

    @property
    def pauses_unacknowledged(self) -> int:
        return 0 if self.view is None else max(0, self.view.pause_requests - self.pauses_noted)

    def _draw(self, view: MeetingView) -> None:
        if self.show_code is None:
            self.show_code = view.am_facilitator
        if self._pauses_seen is not None and view.pause_requests > self._pauses_seen:
            self.notify("Someone asked for a pause.", title="Pause", timeout=8)
        self._pauses_seen = view.pause_requests
        self.query_one(RoomBar).show(
            view,
            acknowledged=view.safety_number == self.acknowledged,
            note=self.note,
            pauses=self.pauses_unacknowledged,
        )
        agenda = self.query_one(AgendaList)
        agenda.show(view)
        self.query_one(RosterPanel).show(view, show_code=bool(self.show_code))
        prompt = self.query_one(PromptPanel)
        prompt.show(view)
        box = self.query_one("#prompt-box")
        box.border_title, box.border_subtitle = prompt.border_title, prompt.border_subtitle
        self.query_one(ContributionLog).show(view.groups, view.current, view.anon_threshold)
        self.query_one(PollPanel).show(view)
        self.query_one(GridPanel).show(view.current_grid)
        self.query_one(DecisionsPanel).show(view.earlier_decisions)
        compose = self.query_one(ComposeBox)
        was_writable = compose.can_write
        compose.set_step(
            view.current_step, member=view.am_member, capacity=self.meeting.anonymous_capacity()
        )
        if compose.can_write and not was_writable and self.focused is None:
            compose.input.focus()
        self._draw_status(view)
        self._refresh_keys()

    def _draw_status(self, view: MeetingView | None = None) -> None:
        view = view or self.view
        hint = (
            ""
            if view is None
            else next_action(view, pauses_unacknowledged=self.pauses_unacknowledged)
        )
        self.query_one(StatusLine).show(
            hint, self.relsec.saving_sentence(), problem=bool(self.relsec.save_problem)
        )

    def _refresh_keys(self) -> None:
        """Redraw the footer when what applies changed (not on every redraw)."""
        view = self.view
        context = (
            self._writing(),
            None if view is None else view.am_facilitator,
            None if view is None else view.safety_number == self.acknowledged,
            self.pauses_unacknowledged > 0,
            None
            if view is None
            else tuple((poll.id, poll.status, poll.record is None) for poll in view.polls),
            None if view is None else tuple(item.id for item in view.proposals),
            None if view is None else (view.current, bool(view.waiting), view.speaker),
            self.query_one(ComposeBox).can_write,
        )
        if context != self._keys_context:
            self._keys_context = context
            self.refresh_bindings()

    def set_note(self, note: str) -> None:
        self.note = note
        if self.view is not None:
            self.show(self.view)

    def on_descendant_focus(self) -> None:
        self._refresh_keys()

    def on_descendant_blur(self) -> None:
        self._refresh_keys()

    def _writing(self) -> bool:
        return isinstance(self.focused, ComposeText)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in FACILITATOR_ACTIONS:
            return self.view is not None and self.view.am_facilitator
        return True

    def in_context(self, action: str) -> bool:
        """Whether the footer shows ``action`` now: the keys that do something
        useful at this moment, and while writing only those that work there."""
        view = self.view
        if self._writing():
            return action in WHILE_WRITING and (
                action != "switch_mode" or self.query_one(ComposeBox).can_switch
            )
        if view is None:
            return action not in WHILE_WRITING
        step = view.current_step
        poll = view.open_poll
        latest = view.latest_poll
        polled = {p.proposal_id for p in view.polls}
        shown: dict[str, bool] = {
            "leave_box": False,
            "switch_mode": False,
            "compared": view.safety_number != self.acknowledged,
            "pause_noted": self.pauses_unacknowledged > 0,
            "vote": poll is not None and view.am_member,
            "rate": step is not None and step.kind == "rating" and view.am_member,
            "open_poll": poll is None and any(i.id not in polled for i in view.proposals),
            "close_poll": poll is not None,
            "record_outcome": poll is None
            and latest is not None
            and latest.status == "closed"
            and latest.record is None,
            "next_speaker": bool(view.waiting),
            "write": self.query_one(ComposeBox).can_write,
        }
        return shown.get(action, True)

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        # The footer reads this; the keys themselves are dispatched without
        # it, so a key out of context still answers (with a sentence).
        found = super().active_bindings
        for key, active in found.items():
            if active.node is self and active.binding.show:
                if not self.in_context(active.binding.action.split("(")[0]):
                    found[key] = active._replace(binding=replace(active.binding, show=False))
        return found

    def _result(self, problem: str | None) -> None:
        if problem:
            self.notify(problem, severity="warning", timeout=6)
        else:
            self.relsec.redraw()  # e.g. "1 waiting" at once, before the log changes

    # -- writing ----------------------------------------------------------------------

    def on_compose_box_send(self, message: ComposeBox.Send) -> None:
        view = self.view
        step = None if view is None else view.current_step
        anonymous = message.anonymous
        if message.kind == "proposal" or view is None or step is None:
            self._send(message.text, anonymous, message.kind)
            return
        # An answer, named or anonymous, can say which earlier item it is
        # about (an impact of a threat, a risk of an option) and carry the
        # process's label for it.
        targets = [
            (choice_label(item.label, item.text), item.id)
            for group in view.groups
            if group.step.index in step.links
            for item in (*group.named, *(i for r in group.rounds for i in r.items))
            if not item.proposal
        ]
        tags = self.meeting.tags_for(step.index)

        def with_tag(ref: bytes | None) -> None:
            if not tags:
                self._send(message.text, anonymous, message.kind, ref=ref)
                return

            def tagged(tag: str | None) -> None:
                if tag is not None:
                    self._send(message.text, anonymous, message.kind, ref=ref, tag=tag)

            choices = [(label, label) for label in tags]
            self.app.push_screen(ChoiceDialog("Which kind is it?", choices), tagged)

        if not targets:
            with_tag(None)
            return

        def about(ref: bytes | None) -> None:
            if ref is not None:
                with_tag(None if ref == NOT_ABOUT_ONE else ref)

        options = [*targets, ("not about one of these", NOT_ABOUT_ONE)]
        self.app.push_screen(ChoiceDialog("What is it about?", options), about)

    def _send(
        self,
        text: str,
        anonymous: bool,
        kind: str,
        *,
        ref: bytes | None = None,
        tag: str | None = None,
    ) -> None:
        problem = self.meeting.write(text, anonymous=anonymous, kind=kind, ref=ref, tag=tag)
        if problem is None:
            # No toast for an anonymous item: it would be a sign on the
            # author's screen alone (issue 12.5); the status line counts it.
            self.query_one(ComposeBox).clear()
        self._result(problem)

    def action_write(self) -> None:
        compose = self.query_one(ComposeBox)
        if compose.can_write:
            compose.input.focus()
        elif self.view is not None and self.view.current_step is not None:
            if self.view.current_step.kind == "rating":
                self.action_rate()
            else:
                self.notify("This prompt cannot be answered from this laptop.", timeout=4)
        else:
            self.notify("No step is open yet; wait for the facilitator.", timeout=4)

    def action_leave_box(self) -> None:
        if self._writing():
            self.query_one(ContributionLog).focus()

    def action_switch_mode(self) -> None:
        problem = self.query_one(ComposeBox).toggle_mode()
        if problem:
            self.notify(problem, timeout=4)

    # -- taking part ------------------------------------------------------------------

    def action_hand(self) -> None:
        self._result(self.meeting.toggle_hand())

    def action_pause_noted(self) -> None:
        """The facilitator (or anyone) has seen the pause requests: the
        reminder clears on this laptop until someone asks again."""
        if self.view is None or not self.pauses_unacknowledged:
            self.notify("Nobody has asked for a pause.", timeout=4)
            return
        self.pauses_noted = self.view.pause_requests
        self.show(self.view)

    def action_fold(self, panel_id: str) -> None:
        panel = self.query_one(f"#{panel_id}")
        panel.toggle_class("-folded")
        folded = panel.has_class("-folded")
        key = {"agenda": "g", "roster": "m"}.get(panel_id)
        title = FOLDING_PANELS[panel_id]
        panel.border_title = f"{title} ({key} unfolds)" if folded and key else title

    def action_export(self) -> None:
        self.relsec.ask_export()

    def action_pause(self) -> None:
        # No toast: everyone's screen shows "Someone asked for a pause" when it
        # is released, and the asker's no sooner (issue 12.5).
        self._result(self.meeting.ask_pause())

    def action_vote(self) -> None:
        view = self.view
        poll = None if view is None else view.open_poll
        if poll is None:
            self.notify("There is no open poll to vote on.", timeout=4)
            return

        def voted(answer: tuple[str, bool] | None) -> None:
            if answer is None:
                return
            choice, anonymous = answer

            def cast(reason: str = "") -> None:
                problem = self.meeting.vote(poll.id, choice, anonymous=anonymous, reason=reason)
                self._result(problem)
                if problem is None:
                    self.relsec.tell_demo("vote")

            if choice not in REASON_CHOICES:
                cast()
                return

            def with_reason(reason: str | None) -> None:
                if reason is not None:  # "" votes without one; None (Escape) does not vote
                    cast(reason)

            self.app.push_screen(ReasonDialog(choice, anonymous=anonymous), with_reason)

        mine = f" Your vote now: {CHOICE_LABELS[poll.my_vote]}." if poll.my_vote else ""
        self.app.push_screen(
            ModeChoiceDialog(
                f"Vote on: {poll.proposal}",
                VOTE_OPTIONS,
                anonymous=poll.counts_anonymously,
                extra=mine,
            ),
            voted,
        )

    def action_rate(self) -> None:
        view = self.view
        if view is None or view.rating is None:
            self.notify("The current step is not a rating.", timeout=4)
            return
        # Every item of the step on one screen, one key per rating.
        self.app.push_screen(RatingScreen(self.meeting))

    def action_display(self) -> None:
        self.relsec.show_display()

    def action_compared(self) -> None:
        if self.view is not None:
            self.acknowledged = self.view.safety_number
            self.show(self.view)

    def action_toggle_code(self) -> None:
        self.show_code = not self.show_code
        if self.view is not None:
            self.show(self.view)

    # -- facilitation ---------------------------------------------------------------

    def action_toggle_joining(self) -> None:
        """Open or close joining (SPEC §12.11): a ``join.open`` entry."""
        self._result(self.meeting.toggle_joining())

    def action_next_step(self) -> None:
        self._result(self.meeting.next_step())

    def action_previous_step(self) -> None:
        self._result(self.meeting.previous_step())

    def _choose(
        self, title: str, options: list[tuple[str, bytes]], act: Callable[[bytes], str | None]
    ) -> None:
        """Act on the only option at once, or ask which one."""
        if len(options) == 1:
            self._result(act(options[0][1]))
            return

        def chosen(value: bytes | None) -> None:
            if value is not None:
                self._result(act(value))

        self.app.push_screen(ChoiceDialog(title, options), chosen)

    def action_open_poll(self) -> None:
        view = self.view
        if view is None:
            return
        # A proposal with a poll open, or one already decided, is not offered.
        polled = {poll.proposal_id for poll in view.polls if poll.status == "open"}
        decided = {d.poll.proposal_id for d in view.decisions if d.poll.outcome in DECIDED}
        options = [
            (choice_label(item.label, f"{item.author}: {item.text}"), item.id)
            for item in view.proposals
            if item.id not in polled | decided
        ]
        if not options:
            self.notify("There is no proposal in this step to poll on yet.", timeout=4)
            return
        step = view.current_step
        if step is None or step.mode != "both":
            # An anonymous step's polls are anonymous, a named step's named.
            self._choose("Open a poll on which proposal?", options, self.meeting.open_poll)
            return

        def how(proposal: bytes) -> str | None:
            ways = [(ANONYMOUS_POLL, True), (NAMED_POLL, False)]
            if self.meeting.poll_default(step.index) != "anonymous":
                ways.reverse()

            def opened(anonymous: bool | None) -> None:
                if anonymous is not None:
                    self._result(self.meeting.open_poll(proposal, anonymous=anonymous))

            self.app.push_screen(ChoiceDialog("How do people vote on it?", ways), opened)
            return None

        self._choose("Open a poll on which proposal?", options, how)

    def action_close_poll(self) -> None:
        view = self.view
        options = (
            [] if view is None else [(p.proposal, p.id) for p in view.polls if p.status == "open"]
        )
        if not options:
            self.notify("No poll is open in this step.", timeout=4)
            return
        self._choose("Close which poll?", options, self.meeting.close_poll)

    def action_next_speaker(self) -> None:
        self._result(self.meeting.next_speaker())

    def action_hand_over(self) -> None:
        view = self.view
        options = [] if view is None else [(m.name, m.key) for m in view.members if not m.me]
        if not options:
            self.notify("There is nobody else to hand facilitation to.", timeout=4)
            return

        def chosen(value: bytes | None) -> None:
            if value is None:
                return
            name = next(label for label, key in options if key == value)

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._result(self.meeting.hand_over(value))

            # Asked again: letters typed outside the box (f, then Enter at the
            # end of a sentence) must not give the meeting away; only the new
            # facilitator can hand it back.
            question = f"Hand facilitation to {name}? Only {name} can hand it back."
            self.app.push_screen(ConfirmDialog(question, "hand over", "keep it"), confirmed)

        self.app.push_screen(ChoiceDialog("Hand facilitation to whom?", options), chosen)

    def action_talk_time(self) -> None:
        self.app.push_screen(TalkTimeDialog(self.meeting.view))

    def action_record_outcome(self) -> None:
        view = self.view
        poll = None if view is None else view.latest_poll
        if poll is None or poll.status != "closed":
            self.notify("Close a poll first, then record what was decided.", timeout=4)
            return

        def written(text: str | None) -> None:
            if text:
                self._result(self.meeting.record_outcome(poll.id, text))

        self.app.push_screen(TextDialog("What did the group decide?", "the outcome"), written)

    def action_remove_member(self) -> None:
        """Pick a member (those shown away first) and confirm their removal."""
        view = self.view
        others = [] if view is None else [m for m in view.members if not m.me]
        if not others:
            self.notify("There is nobody else in the meeting.", timeout=4)
            return
        others.sort(key=lambda m: not m.away)
        options = [(m.name + (" (away)" if m.away else ""), m) for m in others]

        def chosen(member: MemberView | None) -> None:
            if member is None:
                return

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._result(self.meeting.remove(member.key))

            question = (
                f"Remove {member.name} from the meeting? Their laptop is cut off; what they "
                "said stays. To come back they join again with the code."
            )
            self.app.push_screen(ConfirmDialog(question, "remove", "keep"), confirmed)

        self.app.push_screen(ChoiceDialog("Remove whom?", options), chosen)

    def action_match_rejoined(self) -> None:
        """Someone rejoined after a crash under a new key: pick them, then the
        earlier member they were, and confirm (``roster.replace``)."""
        view = self.view
        members = [] if view is None else list(view.members)  # in join order
        newcomers = [m for i, m in enumerate(members) if i > 0 and not m.me and not m.rejoined]
        if not newcomers:
            self.notify("Nobody has joined who could be someone returning.", timeout=4)
            return

        def newcomer_chosen(newcomer: MemberView | None) -> None:
            if newcomer is None:
                return
            earlier = members[: members.index(newcomer)]
            earlier = sorted((m for m in earlier if not m.me), key=lambda m: not m.away)
            if not earlier:
                self.notify("Nobody joined before them but you.", timeout=4)
                return
            options = [(m.name + (" (away)" if m.away else ""), m) for m in earlier]

            def old_chosen(old: MemberView | None) -> None:
                if old is None:
                    return

                def confirmed(yes: bool | None) -> None:
                    if yes:
                        self._result(self.meeting.replace_member(old.key, newcomer.key))

                question = (
                    f"Is {newcomer.name} the {old.name} who was here before? {old.name}'s "
                    f"place goes to {newcomer.name} and the old laptop is cut off."
                )
                self.app.push_screen(ConfirmDialog(question, "same person", "no"), confirmed)

            title = f"Which earlier member is {newcomer.name}?"
            self.app.push_screen(ChoiceDialog(title, options), old_chosen)

        options = [(m.name, m) for m in newcomers]
        self.app.push_screen(ChoiceDialog("Who has rejoined?", options), newcomer_chosen)

    def log_text(self) -> str:
        """Everything the contributions pane holds (tests read it)."""
        return "\n".join(self.query_one(ContributionLog).plain_lines())
