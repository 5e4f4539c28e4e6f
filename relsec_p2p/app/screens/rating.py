"""The rating screen: every item of the current rating step on one screen,
rated with one key each, with the grid it feeds below.

Rules of this file: it asks the ``Meeting`` to rate and shows the sentence
it returns if that fails; it redraws from the app's current view, which it
polls (the meeting screen beneath is redrawn by the app as usual), and
closes itself when the step is no longer a rating.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..controller import Meeting
from ..view import MeetingView
from ..widgets.grid import GridPanel
from ..widgets.rating import RatingList, progress_line, scale_line

if TYPE_CHECKING:
    from ..app import RelsecApp

HELP = "Arrows move; a number rates; Escape or r goes back to the meeting."
POLL_SECONDS = 0.2


class RatingScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RatingScreen { align: center middle; }
    RatingScreen #rating-box {
        width: 110; max-width: 100%; height: 100%;
        border: thick $primary; background: $panel; padding: 0 1;
    }
    RatingScreen #rating-items { height: 1fr; min-height: 6; }
    RatingScreen #rating-grid-scroll { height: auto; max-height: 45%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,r", "close", "Back to the meeting"),
        *(
            Binding(str(n), f"rate({n - 1})", "Rate it" if n == 1 else "", show=False)
            for n in range(1, 10)
        ),
    ]

    def __init__(self, meeting: Meeting) -> None:
        super().__init__(id="rating")
        self.meeting = meeting
        self.view: MeetingView | None = None
        self.rated: set[bytes | None] = set()  # sent from here this time (not shown as ✓)

    @property
    def relsec(self) -> RelsecApp:
        return cast("RelsecApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="rating-box"):
            yield Static(id="rating-title")
            yield Static(id="rating-scale")
            yield RatingList(id="rating-items")
            with VerticalScroll(id="rating-grid-scroll"):
                yield GridPanel(id="rating-grid")
            yield Static(Text(HELP, style="dim"))

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one(RatingList).focus()
        self.set_interval(POLL_SECONDS, self.refresh_view)

    def refresh_view(self) -> None:
        view = self.relsec.current_view()
        if view is self.view:
            return
        self.view = view
        board = None if view is None else view.rating
        if view is None or board is None:
            self.dismiss(None)  # the step moved on
            return
        title = Text(board.prompt, style="bold")
        title.append("\n")
        title.append_text(progress_line(board))
        self.query_one("#rating-title", Static).update(title)
        self.query_one("#rating-scale", Static).update(scale_line(board))
        self.query_one(RatingList).show(board)
        grid = view.current_grid
        self.query_one("#rating-grid-scroll").display = grid is not None
        self.query_one(GridPanel).show(grid)

    def action_rate(self, position: int) -> None:
        view = self.view
        board = None if view is None else view.rating
        items = self.query_one(RatingList)
        item = items.current
        if board is None or item is None or position >= len(board.scale):
            return
        problem = self.meeting.rate(position, anonymous=board.anonymous, ref=item.ref)
        if problem:
            self.notify(problem, severity="warning", timeout=6)
            return
        self.rated.add(item.ref)
        items.move_on(self.rated)
        self.relsec.redraw()
        self.refresh_view()

    def action_close(self) -> None:
        self.dismiss(None)
