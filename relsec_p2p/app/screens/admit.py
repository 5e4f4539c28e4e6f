"""The facilitator's answer to a pending join (SPEC §12.8, issue 13.2).

Rules of this file: the node asks (``Node.set_admission``) once a joiner has
proved the code and before anything is granted; the question is a modal
dialog on the facilitator's laptop, y admits and n refuses; a joiner who
hangs up withdraws the question, and the dialog goes away by itself. The
name shown is the joiner's own claim, shown as text, never as markup.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ...core.admission import JoinRequest
from ...core.text import safe_text
from ...net.node import AdmissionPolicy


def admit_question(request: JoinRequest) -> str:
    name = safe_text(request.name, newlines=False)
    if request.display:
        return (
            f"A room display is joining as '{name}': it will show everything members see "
            "and count for nothing. Admit it? y/n"
        )
    return f"Someone is joining as '{name}' — admit? y/n"


class AdmitDialog(ModalScreen[bool]):
    """Admit one joiner: y or n (Escape is n)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Admit"),
        Binding("n,escape", "answer(False)", "Refuse"),
    ]

    def __init__(self, request: JoinRequest) -> None:
        super().__init__(classes="admit")
        self.request = request

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(admit_question(self.request), style="bold"), classes="dialog-title")
            yield Static(
                Text(
                    "They proved the join code. Admit only someone you can see in the room; "
                    "then count heads and compare the safety number.",
                    style="dim",
                )
            )

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


def ask_the_facilitator(app: App[Any]) -> AdmissionPolicy:
    """The node's admission policy for the app: a dialog per pending join."""

    async def ask(request: JoinRequest) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        dialog = AdmitDialog(request)

        def answered(result: bool | None) -> None:
            if not answer.done():
                answer.set_result(result is True)

        app.push_screen(dialog, answered)
        try:
            return await answer
        finally:
            if not answer.done():  # withdrawn: the joiner hung up or time ran out
                answer.cancel()
                with contextlib.suppress(Exception):
                    dialog.dismiss(False)
                app.notify("The person who was joining went away.", timeout=5)

    return ask
