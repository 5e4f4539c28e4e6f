"""The contributions, grouped by prompt: a line-virtualised scroll view.

Rules of this file: a meeting may hold thousands of lines, so the widget
wraps text once per change (or width) and renders only the visible lines
(Textual's line API, as its ``Log`` widget does). Named items carry their
author; anonymous ones never do: they stand under one heading per step, in
batch order and sorted within a batch, and the heading says how many members
and slots the rounds had, so a suppressed slot shows.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Console
from rich.style import Style
from rich.text import Span, Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..view import StepGroup, anonymous_heading, held_line

INDENT = "  "
RATE_HINT = "Press r to rate every item on one screen; the spread shows once enough have rated."
ABOUT = "↳ about "  # before the label of the item an answer is attached to


class ContributionLog(ScrollView, can_focus=True):
    """Read-only; arrow keys, Page Up/Down, Home and End scroll it."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log--heading",
        "log--prompt",
        "log--author",
        "log--proposal",
        "log--round",
        "log--empty",
        "log--number",
        "log--about",
    }
    DEFAULT_CSS = """
    ContributionLog { height: 1fr; }
    ContributionLog > .log--heading { text-style: bold; }
    ContributionLog > .log--prompt { color: $text-muted; }
    ContributionLog > .log--author { text-style: bold; color: $accent; }
    ContributionLog > .log--proposal { text-style: bold; color: $warning; }
    ContributionLog > .log--round { text-style: italic; color: $secondary; }
    ContributionLog > .log--empty { color: $text-muted; }
    ContributionLog > .log--number { text-style: bold; }
    ContributionLog > .log--about { text-style: italic; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._groups: tuple[StepGroup, ...] = ()
        self._current: int | None = None
        self._threshold = 0
        self._lines: list[Text] = []
        self._group_starts: dict[int, int] = {}
        self._wrapped_at = -1
        self._wrap_cache: dict[tuple[str, str, int], list[Text]] = {}
        self.line_count = 0

    # -- data -----------------------------------------------------------------

    def show(self, groups: tuple[StepGroup, ...], current: int | None, threshold: int) -> None:
        if groups == self._groups and current == self._current and threshold == self._threshold:
            return
        self._threshold = threshold
        step_changed = current != self._current
        at_end = self.scroll_y >= self.max_scroll_y
        self._groups, self._current = groups, current
        self._rewrap()
        # After the refresh: the new virtual size must be known to scroll into it.
        if step_changed and current in self._group_starts:
            y = self._group_starts[current]
            self.call_after_refresh(self.scroll_to, y=y, animate=False)
        elif at_end:
            self.call_after_refresh(self.scroll_end, animate=False)

    def plain_lines(self) -> list[str]:
        """The wrapped lines as plain text (tests and the benchmark read them)."""
        return [line.plain for line in self._lines]

    def _texts(self) -> list[tuple[int | None, str, Text]]:
        """(step index at a group's first line, style key, text) in display order.
        Texts are built with their spans directly: ``Text.append`` costs far
        more, and a meeting may hold thousands of lines."""
        names = ("heading", "prompt", "author", "proposal", "round", "empty", "number", "about")
        styles = {
            name: self.get_component_rich_style(f"log--{name}", partial=True) for name in names
        }
        out: list[tuple[int | None, str, Text]] = []

        def plain(text: str, style: str = "") -> None:
            out.append((None, style, Text(text, style=styles[style] if style else "")))

        for group in self._groups:
            step = group.step
            if group.empty and step.index != self._current:
                continue
            heading = f"{step.index + 1}. {step.title}"
            out.append((step.index, "heading", Text(heading, style=styles["heading"])))
            if step.index != self._current:  # the current prompt is shown in full above
                plain(step.prompt, "prompt")
            for item in group.named:
                # Numbered as in the record ("1.2", "P1"), with what it is
                # attached to, so "[5.2]" in a proposal can be found.
                number = f"{item.label} " if item.label else ""
                tag = f" [{item.tag}]" if item.tag else ""
                about = f" {ABOUT}{item.about}" if item.about else ""
                start = len(number)
                if item.proposal:
                    head = f"{number}Proposal by {item.author}{tag}"
                    by = start + len("Proposal by ")
                    spans = [
                        Span(0, start, styles["number"]),
                        Span(start, start + len("Proposal"), styles["proposal"]),
                        Span(by, by + len(item.author), styles["author"]),
                    ]
                else:
                    head = f"{number}{item.author}{tag}{about}"
                    spans = [
                        Span(0, start, styles["number"]),
                        Span(start, start + len(item.author), styles["author"]),
                    ]
                    if about:
                        spans.append(Span(len(head) - len(about) + 1, len(head), styles["about"]))
                out.append((None, "item", Text(f"{head}: {item.text}", spans=spans)))
            if group.held:
                plain(held_line(group.held, self._threshold), "round")
            if group.rounds:
                plain(anonymous_heading(group.rounds), "round")
            for anon in group.rounds:
                for text in anon.texts:
                    plain(f"{INDENT}- {text}")
            if any(count for _, count in group.ratings):
                summary = ", ".join(f"{label} {count}" for label, count in group.ratings)
                plain(f"Named ratings: {summary}", "round")
            if group.empty and step.kind == "rating":
                plain(RATE_HINT, "empty")
            elif group.empty:
                plain("Nothing here yet: press c to write.", "empty")
            plain("")
        return out

    def _rewrap(self) -> None:
        width = max(10, self.scrollable_content_region.width)
        if width != self._wrapped_at:
            self._wrap_cache.clear()
        console: Console = self.app.console
        lines: list[Text] = []
        starts: dict[int, int] = {}
        cache: dict[tuple[str, str, int], list[Text]] = {}
        for step_index, style, text in self._texts():
            if step_index is not None:
                starts[step_index] = len(lines)
            key = (style, text.plain, step_index or 0)
            wrapped = self._wrap_cache.get(key)
            if wrapped is None:
                if text.cell_len <= width:
                    wrapped = [text]
                else:
                    wrapped = list(text.wrap(console, width, overflow="fold"))
            cache[key] = wrapped
            lines.extend(wrapped)
        self._wrap_cache = cache  # only what is shown now: the cache cannot grow
        self._lines, self._group_starts, self._wrapped_at = lines, starts, width
        self.line_count = len(lines)
        self.virtual_size = Size(width, len(lines))
        self.refresh()

    # -- rendering ------------------------------------------------------------

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._wrapped_at:
            self._rewrap()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        style: Style = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, style)
        text = self._lines[index]
        strip = Strip(text.render(self.app.console), text.cell_len)
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_style(style)
