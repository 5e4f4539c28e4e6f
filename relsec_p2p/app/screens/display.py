"""The room display: read-only, large type, for a projector.

Rules of this file: it shows what the whole room may see — the current
prompt, the anonymous answers to it, the likelihood x impact grid while its
steps are open, the poll and its result, the decisions taken, the member
count and the safety number — and never a name beside an answer, the join
code or anything typed but not sent. It has no way to act on the meeting.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Digits, Static

from ..view import MeetingView, anonymous_heading, held_line
from ..widgets.decisions import DecisionsPanel
from ..widgets.grid import GridPanel
from ..widgets.panels import poll_text
from ..widgets.rating import board_text


class DisplayScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,d,f2", "leave", "Back to the meeting")]

    def __init__(self, *, only: bool = False) -> None:
        super().__init__(id="display")
        self.only = only  # ``relsec display``: there is no meeting screen beneath
        self.view: MeetingView | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="display-title")
        yield Static(id="display-prompt")
        yield GridPanel(id="display-grid")
        with VerticalScroll(id="display-answers"):
            yield Static(id="display-anonymous")
        yield Static(id="display-poll")
        yield DecisionsPanel(id="display-decisions")
        with Vertical(id="display-safety"):
            yield Static(id="display-count")
            yield Digits("", id="display-number")

    def on_mount(self) -> None:
        self.view = self.view or getattr(self.app, "current_view", lambda: None)()
        if self.view is not None:
            self._draw(self.view)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "leave" and self.only)

    def action_leave(self) -> None:
        self.app.pop_screen()

    def show(self, view: MeetingView) -> None:
        """Redraw from ``view`` (kept for on_mount if the screen is not up yet)."""
        self.view = view
        if self.is_mounted:
            self._draw(view)

    def _draw(self, view: MeetingView) -> None:
        self.query_one("#display-title", Static).update(Text(view.title, style="bold"))
        count = Text(f"{view.member_count} members", style="bold")
        count.append(": count heads and compare the safety number aloud")
        self.query_one("#display-count", Static).update(count)
        step = view.current_step
        prompt = Text()
        if step is None:
            prompt.append("Waiting for the first step", style="bold")
        else:
            prompt.append(
                f"Step {step.index + 1} of {len(view.steps)}: {step.title}\n", style="dim"
            )
            prompt.append(step.prompt, style="bold")
        self.query_one("#display-prompt", Static).update(prompt)
        answers = Text()
        group = None if step is None else view.groups[step.index]
        if group is not None and group.rounds:
            answers.append(anonymous_heading(group.rounds) + "\n", style="italic dim")
            for anon in group.rounds:
                for line in anon.texts:
                    answers.append(f"- {line}\n\n", style="bold")
        elif view.rating is not None:
            answers.append_text(board_text(view.rating))
        elif group is not None and group.held:
            answers.append(held_line(group.held, view.anon_threshold), style="dim")
        elif step is not None and step.allows_anonymous:
            answers.append("No anonymous answers yet.", style="dim")
        answers.rstrip()
        self.query_one("#display-anonymous", Static).update(answers)
        self.query_one("#display-answers", VerticalScroll).scroll_end(animate=False)
        poll = view.open_poll or view.latest_poll
        panel = self.query_one("#display-poll", Static)
        panel.display = poll is not None
        if poll is not None:
            panel.update(poll_text(poll, large=True))
        # The grid and the decisions, as every member's screen has them.
        self.query_one(GridPanel).show(view.current_grid)
        self.query_one(DecisionsPanel).show(view.earlier_decisions, rule=False, names=False)
        self.query_one("#display-number", Digits).update(view.safety_number)
