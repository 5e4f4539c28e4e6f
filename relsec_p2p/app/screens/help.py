"""The help screen: every key, read from the binding tables themselves.

Rules of this file: nothing here lists a key by hand; the sections come from
the ``BINDINGS`` of the app and each screen, so the help cannot drift from
what the keys do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

Section = tuple[str, str, Sequence[BindingType]]  # title, note, bindings

NOTES = (
    "The footer shows the keys that apply at the moment; the status line under the meeting "
    "suggests the next one. Tab moves between panes. For a projector, make the terminal's "
    "font larger (usually ctrl and +) before opening the room display. ctrl+p then "
    '"theme" changes the colours.'
)


def key_label(binding: Binding) -> str:
    return " or ".join(
        {"ctrl+backslash": "ctrl+\\", "escape": "Esc", "enter": "Enter"}.get(k, k)
        for k in binding.key.split(",")
    )


def bindings_of(table: Sequence[BindingType]) -> list[Binding]:
    found: list[Binding] = []
    for item in table:
        if isinstance(item, Binding):
            found.append(item)
        else:
            key, action, *rest = item
            found.append(Binding(key, action, rest[0] if rest else ""))
    return found


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "close", "Close help")]

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__(id="help")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-box"):
            yield Static(Text("Keys (this screen's first; arrows scroll)", style="bold"),
                         classes="dialog-title")  # fmt: skip
            with VerticalScroll(id="help-body"):
                yield Static(self.text(), id="help-text")
            yield Static(Text("Esc, F1 or q closes. ctrl+p lists every action.", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()  # arrows and Page Up/Down scroll

    def text(self) -> Text:
        text = Text()
        for title, note, table in self.sections:
            text.append(f"{title}\n", style="bold underline")
            if note:
                text.append(f"{note}\n", style="italic")
            for binding in bindings_of(table):
                if not binding.description:
                    continue
                label = key_label(binding)
                text.append(f"  {label:<14}" + ("" if len(label) < 14 else "  "), style="bold")
                text.append(f"{binding.description}\n")
            text.append("\n")
        text.append(NOTES, style="dim")
        return text

    def action_close(self) -> None:
        self.dismiss(None)
