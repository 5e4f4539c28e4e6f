"""Small modal dialogs: pick one option, write one line, confirm, talk time.

Rules of this file: dialogs only ask; they return the answer through
``dismiss`` and the screen that opened them acts on the node. Options are
numbered and the number keys pick them, so everything works from the keyboard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..hints import plural
from ..view import MeetingView, format_duration

SHARE_JUDGED_AFTER_MS = 120_000  # talk time before anyone is called "well over" a share

T = TypeVar("T")


class ChoiceDialog(ModalScreen[T | None], Generic[T]):
    """Pick one of a few options: arrows and Enter, or its number."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("1", "pick(0)", "Choose option 1 (2 to 9 choose the others)", show=False),
        *(Binding(str(n), f"pick({n - 1})", "", show=False) for n in range(2, 10)),
    ]

    def __init__(
        self, title: str, options: Sequence[tuple[str, T]], *, note: str = "", id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.note = note
        self.options = list(options)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield OptionList(
                *(
                    Option(Text(f"{i + 1}  {label}"), id=str(i))
                    for i, (label, _) in enumerate(self.options)
                ),
                id="choices",
            )
            yield Static(Text(self.note), id="dialog-note", classes="dialog-note")
            yield Static(
                Text("Enter or a number chooses; Escape cancels.", style="dim"),
                classes="dialog-help",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_pick(event.option_index)

    def action_pick(self, index: int) -> None:
        if 0 <= index < len(self.options):
            self.dismiss(self.options[index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ModeChoiceDialog(ChoiceDialog[tuple[T, bool]]):
    """A choice sent named or anonymously (a vote, a rating). A step counts
    votes and ratings through one channel only (SPEC §13.4), so the dialog
    says which it is rather than offering a switch."""

    def __init__(
        self, title: str, options: Sequence[tuple[str, T]], *, anonymous: bool, extra: str = ""
    ) -> None:
        how = "anonymously" if anonymous else "by name"
        super().__init__(
            title,
            [(label, (value, anonymous)) for label, value in options],
            note=f"You answer {how}.{extra}",
        )


class TextDialog(ModalScreen[str | None]):
    """Write one line (Enter sends, Escape cancels); ``value`` is typed in already."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, placeholder: str = "", *, value: str = "", note: str = ""
    ) -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.value = value
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="dialog-input")
            if self.note:
                yield Static(Text(self.note), classes="dialog-note")
            yield Static(Text("Enter sends; Escape cancels.", style="dim"), classes="dialog-help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str, no: str) -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question, style="bold"), classes="dialog-title")
            yield Static(Text(f"y or Enter: {self.yes}    n or Escape: {self.no}"))

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TalkTimeDialog(ModalScreen[None]):
    """Talk-time balance for the facilitator: who has spoken how long, with a
    bar against an equal share. Updates live while open."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,t", "close", "Close")]

    def __init__(self, current_view: Callable[[], MeetingView | None]) -> None:
        super().__init__()
        self.current_view = current_view

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Talk time", style="bold"), classes="dialog-title")
            yield Static(id="talk-body")
            yield Static(Text("Escape or t closes.", style="dim"), classes="dialog-help")

    def on_mount(self) -> None:
        self.refresh_view()
        self.set_interval(1.0, self.refresh_view)

    def refresh_view(self) -> None:
        view = self.current_view()
        body = Text()
        if view is None or not view.talk:
            body.append("Nobody has spoken from the queue yet.")
        else:
            total = sum(row.ms for row in view.talk)
            share = total / len(view.talk) if total else 0
            # "Well over an equal share" only once there is enough to go on:
            # a few seconds of one person is not a pattern.
            judged = total >= SHARE_JUDGED_AFTER_MS and sum(r.turns for r in view.talk) >= 3
            width = 20
            longest = max(row.ms for row in view.talk) or 1
            for row in view.talk:
                bar = "#" * round(width * row.ms / longest)
                over = judged and row.ms > 1.5 * share
                body.append(f"{row.name[:16]:<16} {format_duration(row.ms):>6} ")
                body.append(f"{bar:<{width}}", style="bold" if over else "")
                body.append(" " + plural(row.turns, "turn"))
                if over:
                    body.append(" · well over an equal share", style="bold")
                body.append("\n")
            body.append(f"Equal share so far: {format_duration(int(share))}", style="dim")
            if not judged:
                body.append(
                    " (shares are compared after 2 minutes and 3 turns in all)", style="dim"
                )
        self.query_one("#talk-body", Static).update(body)

    def action_close(self) -> None:
        self.dismiss(None)
