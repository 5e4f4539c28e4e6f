"""The likelihood x impact grid as a picture: a heat-map of the items placed by
their middle answers, drawn to the width it is given.

Rules of this file: the picture reads without colour too. Each cell is
filled with a shading character for its heat (blank ░ ▒ ▓, rising with both
scales), and the items in it are written as their record labels ("1.2") with
their count; colour only repeats what the shading says. Everything comes
from a ``GridView`` (app/view.py), whose aggregates are the record's
(core/record.py), shown only once at least the threshold answered.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from ..view import GridView

# User-facing words of this widget, in one place.
EMPTY_GRID = "The grid fills in once {threshold} have rated a threat on both scales."
PLACED = "{placed} placed"
LEFT_OUT = "Not placed yet (fewer than {threshold} answers on a scale): {labels}"
AXES = "↑ {rows}   → {columns}"
KEY = "Shading: ░ ▒ ▓ as likelihood and impact rise"

SHADES = (" ", "░", "▒", "▓")
# Background colours per heat level, readable with light text; the shading
# characters carry the same levels without colour.
HEAT_COLOURS = ("#1f4d2b", "#6b5d12", "#8a3d0c", "#8c1c1c")
LABEL_MIN = 6
CELL_MIN = 5


def heat(row: int, column: int, rows: int, columns: int) -> int:
    """Heat level 0..3 of a cell: higher for a likelier row and a worse
    column, the same way on every screen."""
    span = max(1, (rows - 1) + (columns - 1))
    return min(len(SHADES) - 1, (row + column) * len(SHADES) // (span + 1))


def cell_words(labels: tuple[str, ...], width: int) -> str:
    """The labels of a cell as fit in ``width``: all of them, else the first
    ones and "+n", else the count alone."""
    if not labels:
        return ""
    full = " ".join(labels)
    if len(full) <= width:
        return full
    for keep in range(len(labels) - 1, 0, -1):
        text = " ".join(labels[:keep]) + f" +{len(labels) - keep}"
        if len(text) <= width:
            return text
    count = f"{len(labels)}"
    return count if len(count) <= width else "+"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def grid_text(grid: GridView, width: int, *, colour: bool = True) -> Text:
    """The grid drawn in ``width`` columns (at least about 40 for five columns)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(_fit(grid.title, width), style="bold")
    out.append("  ")
    out.append(PLACED.format(placed=grid.placed), style="dim")
    out.append("\n")
    out.append(_fit(AXES.format(rows=grid.rows_title, columns=grid.columns_title), width), "dim")
    out.append("\n")
    rows, columns = len(grid.rows_scale), len(grid.columns_scale)
    label_width = max(LABEL_MIN, min(max(len(s) for s in grid.rows_scale), width // 5))
    cell_width = max(CELL_MIN, (width - label_width - 1) // max(1, columns) - 1)
    out.append(" " * label_width + "│")
    for label in grid.columns_scale:
        out.append(_fit(label, cell_width).center(cell_width), style="bold")
        out.append("│")
    out.append("\n")
    # The likeliest row on top, as a risk grid is read.
    for row in reversed(range(rows)):
        out.append(_fit(grid.rows_scale[row], label_width).ljust(label_width), style="bold")
        out.append("│")
        for column in range(columns):
            level = heat(row, column, rows, columns)
            labels = grid.cells[row][column]
            words = cell_words(labels, cell_width - 2)
            shade = SHADES[level]
            if words:
                inner = f" {words} ".center(cell_width, shade)
            else:
                inner = shade * cell_width
            style = Style(bold=bool(words))
            if colour:
                style += Style(bgcolor=HEAT_COLOURS[level], color="#f0f0f0")
            out.append(inner, style=style)
            out.append("│")
        out.append("\n")
    out.append(KEY, style="dim")
    if not grid.placed:
        out.append("\n" + EMPTY_GRID.format(threshold=grid.threshold), style="italic")
    if grid.left_out:
        out.append("\n")
        out.append(
            LEFT_OUT.format(threshold=grid.threshold, labels=", ".join(grid.left_out)),
            style="dim",
        )
    return out


class GridPanel(Widget):
    """The current grid, redrawn to the panel's width (hidden without one)."""

    DEFAULT_CSS = """
    GridPanel { height: auto; padding: 0 1; }
    GridPanel.-empty { display: none; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.grid: GridView | None = None

    def show(self, grid: GridView | None) -> None:
        self.set_class(grid is None, "-empty")
        if grid != self.grid:
            self.grid = grid
            self.refresh(layout=True)

    def _width(self, width: int | None = None) -> int:
        return max(20, self.content_size.width if width is None else width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self.grid is None:
            return 0
        return len(grid_text(self.grid, self._width(width)).split())

    def render(self) -> Text:
        if self.grid is None:
            return Text()
        return grid_text(self.grid, self._width())

    @property
    def shown_text(self) -> str:
        """What the panel shows, as plain characters (tests read it)."""
        if self.grid is None:
            return ""
        return grid_text(self.grid, self._width(), colour=False).plain
