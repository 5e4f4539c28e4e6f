"""The compose box: one line of text, sent named or anonymously.

Rules of this file: the box offers only the modes the current prompt allows
(a named-only prompt never shows the anonymous switch as on, and the other
way round); both modes look alike (same colours, and how many characters
are left shows only near the limit, ``SHOW_LEFT_BELOW``), so a glance at a
screen across the room does not tell an anonymous answer from a named one
(issue 12.5). It sends nothing itself: it posts ``ComposeBox.Send`` and the screen
acts on the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Static

from ...core.state import MAX_TEXT
from ..view import StepView

SHOW_LEFT_BELOW = 200  # characters left before the count shows, in either mode


class ComposeBox(Horizontal):
    DEFAULT_CSS = """
    ComposeBox { height: 1; border-top: none; }
    ComposeBox > #compose-mode { width: 11; height: 1; content-align: center middle;
        text-style: bold; background: $primary 40%; }
    ComposeBox > Input { width: 1fr; }
    ComposeBox > #compose-left { width: 9; height: 1; content-align: center middle; }
    ComposeBox > #compose-left.-over { color: $error; text-style: bold; }
    """

    @dataclass
    class Send(Message):
        text: str
        anonymous: bool
        kind: str  # text | proposal

    anonymous: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.step: StepView | None = None
        self.capacity = 0  # characters one anonymous slot carries
        self.can_write = False
        self._labels: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="compose-mode")
        # Not select_on_focus: coming back with c after Escape (to raise a hand,
        # say) must keep the draft, not select it for the next key to replace.
        yield Input(
            placeholder="",
            id="compose-input",
            max_length=MAX_TEXT,
            compact=True,
            select_on_focus=False,
        )
        yield Static("", id="compose-left")

    def on_mount(self) -> None:
        self._refresh_labels()

    @property
    def input(self) -> Input:
        return self.query_one("#compose-input", Input)

    # -- what the prompt allows ----------------------------------------------------

    def allowed_modes(self) -> tuple[bool, ...]:
        """The values ``anonymous`` may take for the current step."""
        step = self.step
        if step is None or step.kind == "rating":
            return ()
        if step.kind == "proposal":
            return (False,)  # proposals are named: the poll on them may be anonymous
        modes: list[bool] = []
        if step.allows_named:
            modes.append(False)
        if step.allows_anonymous:
            modes.append(True)
        return tuple(modes)

    def set_step(self, step: StepView | None, *, member: bool, capacity: int) -> None:
        changed = step != self.step
        self.step, self.capacity = step, capacity
        modes = self.allowed_modes() if member else ()
        self.can_write = bool(modes)
        if modes and self.anonymous not in modes:
            self.anonymous = modes[0]
        elif changed and modes:
            # A new prompt starts in its first mode: named if allowed. Nobody
            # should post anonymously by accident of the previous step.
            self.anonymous = modes[0]
        self._refresh_labels()

    def toggle_mode(self) -> str | None:
        """Switch named/anonymous; returns a sentence when the prompt does not allow it."""
        modes = self.allowed_modes()
        if len(modes) < 2:
            step = self.step
            if step is None:
                return "No step is open, so there is nothing to answer yet."
            if step.kind == "proposal":
                return "Proposals are made by name; the poll on them can still be anonymous."
            only = "named" if step.allows_named else "anonymous"
            return f"This prompt takes {only} answers only."
        self.anonymous = not self.anonymous
        return None

    def watch_anonymous(self) -> None:
        self._refresh_labels()

    # -- labels ------------------------------------------------------------------

    def remaining(self) -> int | None:
        if not self.can_write:
            return None
        limit = self.capacity if self.anonymous else MAX_TEXT
        return limit - len(self.input.value)

    def _refresh_labels(self) -> None:
        # Runs on every key typed: change (and so re-lay out) only what differs.
        modes = self.query("#compose-mode").results(Static)
        mode = next(modes, None)
        if mode is None:  # not composed yet: on_mount draws the labels
            return
        left = self.query_one("#compose-left", Static)
        field = self.input
        step = self.step
        if not self.can_write:
            label = "-"
            if step is None:
                placeholder = "Waiting for a step to open"
            elif step.kind == "rating":
                placeholder = "Press r to give your rating"
            else:
                placeholder = "Not a member of this meeting (any more)"
        else:
            label = "anonymous" if self.anonymous else "named"
            if step is not None and step.kind == "proposal":
                placeholder = "Write a proposal; Enter sends, Esc for keys"
            elif self.anonymous:
                placeholder = "Write anonymously; Enter sends, Esc for keys"
            else:
                placeholder = "Write by name; Enter sends, Esc for keys"
        field.disabled = not self.can_write
        if field.placeholder != placeholder:
            field.placeholder = placeholder
        remaining = self.remaining()
        self._put(mode, label)
        shown = remaining is not None and remaining < SHOW_LEFT_BELOW
        self._put(left, f"{remaining} left" if shown else "")
        left.set_class(remaining is not None and remaining < 0, "-over")

    def _put(self, widget: Static, text: str) -> None:
        if self._labels.get(widget.id or "") != text:
            self._labels[widget.id or ""] = text
            widget.update(Text(text), layout=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refresh_labels()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text or not self.can_write or self.step is None:
            return
        self.post_message(self.Send(text, self.anonymous, self.step.kind))

    def clear(self) -> None:
        self.input.value = ""
