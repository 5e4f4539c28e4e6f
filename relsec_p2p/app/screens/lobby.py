"""The lobby: start a meeting, or join one by its code.

Rules of this file: joining waits on the network, so it runs in the app's
worker and the lobby only shows its progress; every problem (a wrong code,
a mistyped address, no network interface, nobody found) is one plain
sentence in the status line. The lobby sends nothing on the network until
the person asks to join (SPEC §12.1: no browsing, no announcing from here),
so it lists no meetings nearby; the code, or the code with the address the
facilitator's screen shows (``42-harbor-velvet-orbit @ 192.168.1.23:4711``,
for networks that block multicast), is typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from ...core.state import MAX_TITLE
from ...core.template import TemplateError
from ..controller import load_template, template_choices

if TYPE_CHECKING:
    from ..app import RelsecApp


class LobbyScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+j", "join", "Join", show=False),
        Binding("ctrl+s", "start", "Start", show=False),
    ]
    AUTO_FOCUS = "#name"

    def __init__(self, *, display_only: bool = False) -> None:
        super().__init__(id="lobby")
        self.display_only = display_only
        self.busy = False
        self.status = ""

    @property
    def relsec(self) -> RelsecApp:
        return cast("RelsecApp", self.app)

    def compose(self) -> ComposeResult:
        intro = (
            "This laptop shows the meeting on a projector: join with the code."
            if self.display_only
            else "Everyone in the room runs relsec; together you see one meeting. "
            "Nothing is saved on this laptop."
        )
        yield Static(Text("relsec: a meeting for this room", style="bold"), id="lobby-title")
        yield Static(Text(intro), id="lobby-intro")
        with Horizontal(id="lobby-name-row"):
            yield Label("Your name here", id="name-label")
            yield Input(
                value="Room display" if self.display_only else "",
                placeholder="the name people call you in this room",
                id="name",
                max_length=64,
            )
        with Horizontal(id="lobby-panes"):
            with Vertical(id="join-pane", classes="pane"):
                yield Static(Text("Join a meeting", style="bold"))
                yield Input(
                    placeholder="code, e.g. 42-harbor-velvet-orbit",
                    id="code",
                    select_on_focus=False,
                )
                yield Button("Join", id="join", variant="primary")
                yield Static(
                    Text(
                        "If the Wi-Fi keeps laptops apart, type the whole line from the "
                        "facilitator's screen: the code @ the address.",
                        style="dim",
                    ),
                    id="join-hint",
                )
            if not self.display_only:
                with Vertical(id="start-pane", classes="pane"):
                    yield Static(Text("Start a meeting", style="bold"))
                    choices = self._choices()
                    yield Select(
                        [(Text(title), name) for title, name in choices],
                        allow_blank=False,
                        value=choices[0][1],
                        id="template",
                    )
                    yield Input(
                        placeholder="title, seen by members only",
                        id="title",
                        max_length=MAX_TITLE,
                    )
                    yield Button("Start", id="start", variant="success")
        yield Static("", id="lobby-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#lobby-status", Static).update(Text(self.status))

    # -- status ---------------------------------------------------------------------

    def say(self, sentence: str) -> None:
        self.status = sentence
        if self.is_mounted:
            self.query_one("#lobby-status", Static).update(Text(sentence))

    def _choices(self) -> list[tuple[str, str]]:
        """The built-in processes, after a group's own file if one was given
        (``relsec --template FILE``): its path is what ``load_template`` takes."""
        own = self.relsec.own_template
        built_in = template_choices()
        if own is None:
            return built_in
        return [(f"{own[1].title} (your file)", own[0]), *built_in]

    def on_select_changed(self, event: Select.Changed) -> None:
        title = self.query_one("#title", Input)
        if not title.value and isinstance(event.value, str):
            for label, name in self._choices():
                if name == event.value:
                    title.placeholder = f"title, seen by members only (e.g. {label})"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "code":
            self.action_join()
        elif event.input.id == "title":
            self.action_start()
        elif event.input.id == "name":
            self.query_one("#code", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "join":
            self.action_join()
        elif event.button.id == "start":
            self.action_start()

    # -- actions -------------------------------------------------------------------

    def _typed_name(self) -> str | None:
        name = self.query_one("#name", Input).value.strip()
        if not name:
            self.say("Type the name people call you in this room first (any name will do).")
            self.query_one("#name", Input).focus()
            return None
        return name

    def action_join(self) -> None:
        if self.busy:
            return
        name = self._typed_name()
        if name is None:
            return
        code = self.query_one("#code", Input).value
        if not code.strip():
            self.say("Type the code the facilitator reads out, like 42-harbor-velvet-orbit.")
            self.query_one("#code", Input).focus()
            return
        self.set_busy(True)
        self.say("Looking for the meeting and checking the code...")
        self.relsec.join(code, name)

    def action_start(self) -> None:
        if self.busy or self.display_only:
            return
        name = self._typed_name()
        if name is None:
            return
        chosen = self.query_one("#template", Select).value
        try:
            template = load_template(str(chosen))
        except TemplateError as exc:
            self.say(str(exc))
            return
        title = self.query_one("#title", Input).value.strip() or template.title
        problem = self.relsec.start_meeting(template, title=title, name=name)
        if problem:
            self.say(problem)

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        for widget_id in ("#join", "#start"):
            for button in self.query(widget_id).results(Button):
                button.disabled = busy

    def join_failed(self, sentence: str) -> None:
        self.set_busy(False)
        self.say(sentence)
        self.query_one("#code", Input).focus()
