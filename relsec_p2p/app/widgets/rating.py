"""The rating flow as one list: every item of a rating step with the scale,
✓ for what this laptop has rated, and how many have rated each.

Rules of this file: a row says how many have rated an item (a count from
the log, never who) and shows the spread and middle answer only once the
``RatingBoard`` has them, which the core gives only at the meeting's
threshold. ✓ marks a rating already in the log, so it appears on the
rater's screen when the count moves on everyone's, not at the key press.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..view import RatedItem, RatingBoard

# User-facing words of this widget, in one place.
HAVE_RATED = "{rated} of {members} have rated"
SPREAD = "spread {counts} · middle answer: {middle}"
SPREAD_LATER = "spread shown once {threshold} have rated"
SCALE_KEYS = "Press a number to rate the highlighted item:"
MINE = "You rated {mine} of {total}."
ANONYMOUSLY = "Your ratings are anonymous."
BY_NAME = "Your ratings carry your name."
DONE = "✓"


def scale_line(board: RatingBoard) -> Text:
    """The scale with its keys: "1 very unlikely  2 unlikely …"."""
    text = Text()
    text.append(SCALE_KEYS + " ", style="dim")
    for position, label in enumerate(board.scale):
        if position:
            text.append("  ")
        text.append(f"{position + 1}", style="bold reverse")
        text.append(f" {label}")
    return text


def progress_line(board: RatingBoard) -> Text:
    text = Text(MINE.format(mine=board.mine, total=len(board.items)), style="bold")
    text.append(" ")
    text.append(ANONYMOUSLY if board.anonymous else BY_NAME, style="dim")
    return text


def item_text(item: RatedItem, board: RatingBoard) -> Text:
    """One row: mark, label, tag, text; then the count and the spread."""
    text = Text()
    text.append(f"{DONE if item.mine else ' '} ", style="bold green")
    if item.label:
        text.append(item.label, style="bold")
        text.append(" ")
    if item.tag:
        text.append(f"[{item.tag}]", style="italic")
        text.append(" ")
    text.append(item.text)
    text.append("\n    ")
    text.append(HAVE_RATED.format(rated=item.rated, members=board.members), style="dim")
    text.append(" · ", style="dim")
    if item.spread is None or item.middle is None:
        text.append(SPREAD_LATER.format(threshold=board.threshold), style="dim")
    else:
        counts = " ".join(str(n) for n in item.spread)
        text.append(SPREAD.format(counts=counts, middle=item.middle), style="bold")
    return text


class RatingList(OptionList):
    """The items of a rating step; arrows move, the screen's number keys rate."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.board: RatingBoard | None = None

    def show(self, board: RatingBoard) -> None:
        if board == self.board:
            return
        highlighted = self.highlighted
        self.board = board
        self.clear_options()
        self.add_options(
            Option(item_text(item, board), id=str(i)) for i, item in enumerate(board.items)
        )
        if board.items:
            self.highlighted = min(highlighted or 0, len(board.items) - 1)

    @property
    def current(self) -> RatedItem | None:
        if self.board is None or self.highlighted is None:
            return None
        if not 0 <= self.highlighted < len(self.board.items):
            return None
        return self.board.items[self.highlighted]

    def move_on(self, rated: set[bytes | None]) -> None:
        """Highlight the next item this laptop has not rated, if any."""
        if self.board is None or self.highlighted is None:
            return
        count = len(self.board.items)
        for step in range(1, count + 1):
            index = (self.highlighted + step) % count
            item = self.board.items[index]
            if not item.mine and item.ref not in rated:
                self.highlighted = index
                return

    def plain_rows(self) -> list[str]:
        """The rows as plain text (tests read them)."""
        if self.board is None:
            return []
        return [item_text(item, self.board).plain for item in self.board.items]


def board_text(board: RatingBoard) -> Text:
    """The step's items for the whole room (the display): counts and, once
    enough answered, the spread; never this laptop's own marks."""
    text = Text()
    for i, item in enumerate(board.items):
        if i:
            text.append("\n")
        if item.label:
            text.append(item.label + " ", style="bold")
        text.append(item.text, style="bold")
        text.append("\n  ")
        text.append(HAVE_RATED.format(rated=item.rated, members=board.members), style="dim")
        text.append(" · ", style="dim")
        if item.spread is None or item.middle is None:
            text.append(SPREAD_LATER.format(threshold=board.threshold), style="dim")
        else:
            counts = " ".join(str(n) for n in item.spread)
            text.append(SPREAD.format(counts=counts, middle=item.middle))
    return text
