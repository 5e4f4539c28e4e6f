"""Small read-only panels of the meeting screen, each drawn from a ``MeetingView``.

Rules of this file: every panel builds a ``rich.text.Text`` (never markup
from a string), so names and prompts that came from the network show as the
characters they are.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.geometry import Region
from textual.widgets import Static

from ...core.wording import CHOICE_LABELS, MODE_LABELS, OUTCOME_LABELS, SHORT_CHOICE_LABELS
from ..hints import plural
from ..view import MeetingView, PollView, tally_line


class Panel(Static):
    """A Static that redraws (and re-lays out) only when its text changed:
    the meeting redraws often, and most panels stay the same."""

    _shown: Text | None = None

    def put(self, text: Text) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text)

    @property
    def shown_text(self) -> str:
        """What the panel shows now, as plain characters ("" before the first draw)."""
        return "" if self._shown is None else self._shown.plain


class RoomBar(Panel):
    """Top line: the meeting, the member count and the safety number, with a
    reminder to compare the number aloud whenever it changes."""

    DEFAULT_CSS = """
    RoomBar { height: auto; background: $panel; padding: 0 1; text-wrap: nowrap;
        text-overflow: ellipsis; }
    RoomBar.-changed { background: $warning 30%; }
    """

    def show(
        self, view: MeetingView, *, acknowledged: bool, note: str = "", pauses: int = 0
    ) -> None:
        # The count and the number first: a long title is what gets cut.
        # Pieces are joined by a visible " · ", never by bare spaces at a
        # change of style.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(plural(view.member_count, "member"), style="bold")
        away = view.member_count - view.present_count
        if away:
            # Heads in the room are the members present (SPEC §6.1 "Presence").
            text.append(f" ({away} away)", style="bold")
        text.append(" · safety number ")
        style = "bold reverse" if not acknowledged else "bold"
        text.append(view.safety_number or "...", style=style)
        text.append(" · ")
        text.append(view.title or "Meeting", style="bold")
        if pauses:
            text.append(" · ")
            text.append(f"pause asked ({pauses}): a when noted", style="bold reverse")
        if view.anon_waiting:
            # Quiet and the same on every kind of item: nothing says it is an
            # answer, a vote or a pause, nor flashes when it goes (issue 12.5).
            text.append(f" · {view.anon_waiting} waiting", style="dim")
        if not acknowledged:
            text.append(
                # One line at 80 columns; while writing, the footer shows Esc.
                "\nThe roster changed: read the safety number aloud, count heads, then press k.",
                style="bold",
            )
        if note:
            text.append("\n" + note, style="italic")
        self.set_class(not acknowledged, "-changed")
        self.put(text)


class StatusLine(Horizontal):
    """Bottom line: the next sensible action (cut if it must be), and whether
    this laptop is saving the meeting (always in full)."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $boost; }
    StatusLine > #hint { width: 1fr; height: 1; padding: 0 1; text-style: bold; }
    StatusLine > #saving { width: auto; height: 1; padding: 0 1; color: $text-muted; }
    StatusLine > #saving.-problem { color: $error; text-style: bold; }
    """

    def compose(self) -> ComposeResult:
        yield Panel(id="hint")
        yield Panel(id="saving")

    def show(self, hint: str, saving: str, *, problem: bool = False) -> None:
        self.query_one("#hint", Panel).put(Text(hint, no_wrap=True, overflow="ellipsis"))
        self.query_one("#saving", Panel).put(Text(saving, no_wrap=True))
        self.query_one("#saving").set_class(problem, "-problem")

    @property
    def shown_text(self) -> str:
        return " · ".join(
            part for part in (self.query_one(f"#{name}", Panel).shown_text
                              for name in ("hint", "saving")) if part
        )  # fmt: skip


class AgendaList(Panel):
    """The steps, with the current one marked."""

    def show(self, view: MeetingView) -> None:
        text = Text()
        for step in view.steps:
            if step.index == view.current:
                marker, style = "> ", "bold reverse"
            elif step.status == "closed":
                marker, style = "+ ", "dim"
            else:
                marker, style = "  ", ""
            text.append(f"{marker}{step.index + 1}. {step.title}\n", style=style)
        text.rstrip()
        self.put(text)
        # Keep the open step in sight when the agenda is longer than its panel.
        if view.current is not None:
            self.call_after_refresh(self._reveal, view.current)

    def _reveal(self, line: int) -> None:
        self.scroll_to_region(Region(0, line, 1, 1), animate=False, immediate=True)


class RosterPanel(Panel):
    """Members (facilitator marked), the speaking queue, and the join code."""

    def show(self, view: MeetingView, *, show_code: bool) -> None:
        text = Text()
        if not self.has_class("-folded"):
            self.border_title = f"Members ({view.member_count})"
        for member in view.members:
            marks = []
            if member.away:
                marks.append("away")  # greyed: not counted (SPEC §6.1 "Presence")
            if member.rejoined:
                marks.append("rejoined")
            if member.facilitator:
                marks.append("facilitates")
            if member.speaking:
                marks.append("speaking")
            elif member.hand_up:
                marks.append("hand up")
            line = member.name + (" (you)" if member.me else "")
            style = "dim" if member.away else "bold" if member.me else ""
            text.append(line, style=style)
            if marks:
                text.append(" · ")
                text.append(", ".join(marks), style="dim italic" if member.away else "italic")
            text.append("\n")
        text.append(view.quorum_line() + "\n", style="dim")
        if view.am_facilitator:
            for newcomer, earlier in view.possible_returns:
                text.append(f"{newcomer} may be {earlier} (away): u to match\n", style="italic")
        for display in view.displays:
            text.append(f"{display} (room display, not a member)\n", style="dim")
        text.append("Speaking: ", style="bold")
        text.append((view.speaker or "nobody") + "\n")
        if view.waiting:
            text.append("Waiting: ", style="bold")
            text.append(", ".join(view.waiting) + "\n")
        if show_code and view.join_code:
            text.append("Join code: ", style="bold")
            text.append(view.join_code + "\n")
            for form in view.join_addresses:  # for networks that block multicast
                text.append(f"or {form}\n")
        if not view.joining_open:
            text.append("Joining is closed", style="bold")
            text.append(" (press l to open it)\n" if view.am_facilitator else "\n")
        text.rstrip()
        self.put(text)


class PromptPanel(Panel):
    """The current step's prompt, in full; the step's number, title and kind
    are its border title and subtitle, which the box around it shows (the
    box scrolls a long prompt rather than cutting it)."""

    DEFAULT_CSS = """
    PromptPanel { height: auto; padding: 0 1; }
    """

    def show(self, view: MeetingView) -> None:
        step = view.current_step
        text = Text()
        if step is None:
            self.border_title = "No step is open yet"
            text.append(
                "The facilitator opens the first step with n."
                if view.am_facilitator
                else f"Waiting for {view.facilitator or 'the facilitator'} to open a step."
            )
        else:
            self.border_title = f"Step {step.index + 1} of {len(view.steps)}: {step.title}"
            kind = {"rating": "a rating: press r", "proposal": "proposals"}.get(step.kind)
            self.border_subtitle = MODE_LABELS[step.mode] + (f"; {kind}" if kind else "")
            text.append(step.prompt)
            if step.help:
                text.append("\n" + step.help, style="dim")
        self.put(text)


def poll_text(poll: PollView, *, large: bool = False) -> Text:
    """A poll as text: proposal, live tallies, then the result and its rule.
    Anonymous tallies appear only once enough members have voted (a count of
    one "block" among four people could point at someone)."""
    text = Text()
    status = "Poll open" if poll.status == "open" else "Poll closed"
    text.append(f"{status}: ", style="bold")
    text.append(poll.proposal)
    if poll.proposer:
        text.append(" · ")
        text.append(f"proposed by {poll.proposer}", style="italic")
    text.append("\n")
    # Each step counts through one channel (SPEC §13.4), as the core's
    # ``Step.counts_anonymously`` says.
    # Few lines, so an open poll leaves room for the answers at 80x24: the
    # tally and this laptop's vote share a line, as do the result and
    # whether it is final.
    if not poll.counts_anonymously:
        text.append("Named: ", style="bold")
        text.append(f"{tally_line(poll.named)} ({poll.voters} of {poll.members} voted)")
    else:
        text.append("Anonymous: ", style="bold")
        if poll.anonymous is None:
            text.append(f"shown once at least {plural(poll.threshold, 'member')} have voted")
        else:
            text.append(tally_line(poll.anonymous))
    if poll.my_vote and not large:
        text.append(" · ")
        text.append(f"your vote: {CHOICE_LABELS[poll.my_vote]}", style="italic")
        if poll.status == "open":
            text.append(" (v changes it)", style="italic")
    elif poll.status == "open" and not large:
        text.append(" · ")
        text.append("v to vote", style="bold")
    text.append("\n")
    reasons_text(poll, text, names=not large)  # the room display names nobody
    if poll.outcome is not None:
        text.append("Result: ", style="bold")
        text.append(OUTCOME_LABELS[poll.outcome].upper(), style="bold reverse")
        if poll.counts is not None and poll.counts != poll.named:
            text.append(f" ({tally_line(poll.counts)})")  # what counted at the close
        if poll.final:
            text.append(f" · final: co-signed by {poll.cosigners} of {poll.counted} laptops\n")
        else:
            text.append(" · ")
            text.append(
                f"not final yet: co-signed by {poll.cosigners} of {poll.counted} laptops "
                f"(a majority makes it final)\n",
                style="italic",
            )
        # The outcome in words is the decision: right under the result, where
        # a small screen (80x24) still shows it, before the rule.
        if poll.record:
            text.append("Recorded outcome: ", style="bold")
            text.append(poll.record + "\n")
        if poll.rule:
            text.append(f"Rule: {poll.rule}\n", style="dim")
        for line in poll.objections:
            text.append("Objection: ", style="bold")
            text.append(line + "\n")
    text.rstrip()
    return text


def reasons_text(poll: PollView, text: Text, *, names: bool = True) -> None:
    """The concerns and blocks in words, one line each, after the tally."""
    for choice, reason, voter in poll.reasons:
        text.append(f"{SHORT_CHOICE_LABELS[choice].capitalize()}: ", style="bold")
        text.append(reason)
        if names:
            text.append(f" ({voter or 'anonymous'})", style="italic")
        text.append("\n")


class PollPanel(Panel):
    """The newest poll of the current step (hidden when there is none)."""

    DEFAULT_CSS = """
    PollPanel { height: auto; max-height: 40%; padding: 0 1; overflow-y: auto;
        border-top: solid $accent; }
    PollPanel.-empty { display: none; }
    """

    def show(self, view: MeetingView) -> None:
        poll = view.open_poll or view.latest_poll
        self.set_class(poll is None, "-empty")
        if poll is not None:
            self.put(poll_text(poll))
