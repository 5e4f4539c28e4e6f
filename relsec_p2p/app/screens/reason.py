"""The optional reason of a concern or a block (SPEC §6.5): one line, asked
right after the choice.

Rules of this file: it only asks. Enter with text gives the reason, Enter
with nothing gives "" (vote without one), Escape gives None (do not vote).
The box takes at most ``MAX_REASON`` characters, the rule's limit, so what
is typed is what is sent.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ...core.state import MAX_REASON

# User-facing words of this dialog, in one place.
TITLES = {
    "concerns": "What is your concern? (optional)",
    "block": "Why do you block? (optional)",
}
PLACEHOLDER = "one line, shown with the tally and in the record"
HELP = "Enter votes (with nothing typed: without a reason); Escape does not vote."
ANONYMOUS_NOTE = "Your vote and its reason go in an anonymous round, without your name."
NAMED_NOTE = "Your vote and its reason carry your name."


class ReasonDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Do not vote")]

    def __init__(self, choice: str, *, anonymous: bool) -> None:
        super().__init__(id="reason")
        self.choice = choice
        self.anonymous = anonymous

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(TITLES[self.choice], style="bold"), classes="dialog-title")
            yield Input(placeholder=PLACEHOLDER, max_length=MAX_REASON, id="reason-input")
            note = ANONYMOUS_NOTE if self.anonymous else NAMED_NOTE
            yield Static(Text(note), classes="dialog-note")
            yield Static(Text(HELP, style="dim"), classes="dialog-help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        # One line: the rule refuses a line break, and an Input has none.
        self.dismiss(" ".join(event.value.split()))

    def action_cancel(self) -> None:
        self.dismiss(None)
