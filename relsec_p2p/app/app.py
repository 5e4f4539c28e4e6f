"""The relsec Textual app: screens on top of one node, in Textual's event loop.

Rules of this file: the node runs in the app's asyncio loop; its callback
only posts replaceable messages, and everything that waits on the network
(starting, joining, leaving) runs in workers. The panic key blanks the
screen at once, cuts every link, drops the meeting and exits, writing nothing;
if this laptop wrote or opened a save of the meeting, it first asks on the
blank screen whether to delete it too (``Node.delete_saves``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen

from ..core.errors import JoinError
from ..core.events import MeetingChanged, OwnEntryIgnored
from ..core.save import SaveError
from ..core.template import Template
from ..net.discovery import DiscoveryError
from ..net.node import Node, NodeEvent, PeerDown, PeerUp
from .controller import WRITTEN_ON_ITS_OWN, Meeting, ignored_sentence
from .messages import (
    DemoCode,
    DemoNote,
    Joined,
    JoinFailed,
    LinksChanged,
    NetworkProblem,
    NodeReady,
    NotCounted,
    RedrawMeeting,
)
from .network import NodeFactory, loopback_only
from .screens.admit import ask_the_facilitator
from .screens.dialogs import ChoiceDialog, ConfirmDialog, TalkTimeDialog
from .screens.display import DisplayScreen
from .screens.help import HelpScreen, Section, bindings_of
from .screens.lobby import LobbyScreen
from .screens.meeting import FACILITATOR_ACTIONS, MeetingScreen
from .view import MeetingView

log = logging.getLogger("relsec.app")

EXIT_OK = 0
EXIT_PANIC = 3  # the command line clears the terminal's scrollback too
JOIN_TIMEOUT_S = 10.0  # to find the meeting by mDNS, and then to receive it
CLOSE_TIMEOUT_S = 1.0  # mDNS goodbyes and link closes; never longer on panic
# Asked on the blank screen after the panic key: no file name, no meeting title.
PANIC_DELETE_QUESTION = (
    "Delete this laptop's save of the meeting too? It is written over and removed; "
    "this cannot be undone."
)


class DemoPlugin(Protocol):
    """What ``relsec demo`` plugs into the app (see ``relsec_p2p.demo``)."""

    def run(self, post: Callable[[Message], object]) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...


class BlankScreen(Screen[None]):
    """What the panic key leaves on screen while the app exits."""

    def compose(self) -> Iterable[Any]:
        return ()


class RelsecApp(App[int]):
    CSS_PATH = "relsec.tcss"
    TITLE = "relsec"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help"),
        Binding("f12,ctrl+backslash", "panic", "Panic", priority=True),
        Binding("ctrl+q", "quit_meeting", "Quit", priority=True, show=False),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
    ]

    def __init__(
        self,
        node_factory: NodeFactory,
        *,
        display_only: bool = False,
        demo: DemoPlugin | None = None,
        template: tuple[str, Template] | None = None,
        save_to: tuple[Path, str] | None = None,
        resume_from: tuple[Path, str] | None = None,
    ) -> None:
        super().__init__()
        self.node_factory = node_factory
        self.display_only = display_only
        self.demo = demo
        # A group's own template (``relsec --template FILE``): (path, parsed),
        # offered first in the lobby.
        self.own_template = template
        # ``--save FILE`` / ``--resume FILE`` with the passphrase already asked for.
        self.save_to = save_to
        self.resume_from = resume_from
        self.node: Node | None = None
        self.meeting: Meeting | None = None
        self.view: MeetingView | None = None
        self.panicked = False
        self.network_problem = ""
        self.join_timeout = JOIN_TIMEOUT_S

    # -- start ----------------------------------------------------------------------

    def on_mount(self) -> None:
        lobby = LobbyScreen(display_only=self.display_only)
        self.push_screen(lobby)
        try:
            self.node = self.node_factory(self._on_node_event)
        except DiscoveryError as exc:
            self.network_problem = str(exc)
            lobby.say(self.network_problem)
            return
        if not self.display_only:
            # Joins wait for this laptop's yes while it facilitates (SPEC §12.8).
            self.node.set_admission(ask_the_facilitator(self))
        self.meeting = Meeting(self.node)
        self.run_worker(self._start_node(), name="node-start", exit_on_error=False)

    async def _start_node(self) -> None:
        node = self.node
        if node is None:
            return
        try:
            await node.start()
        except DiscoveryError as exc:
            self.post_message(NetworkProblem(str(exc)))
            return
        except OSError as exc:
            self.post_message(
                NetworkProblem(
                    f"relsec cannot listen on the network ({exc.strerror or exc}); "
                    "choose another --port or --interface."
                )
            )
            return
        if self.resume_from is not None:
            path, passphrase = self.resume_from
            try:
                await node.resume_from(path, passphrase, keep_saving=self.save_to is None)
            except SaveError as exc:  # wrong passphrase, damaged file: one sentence
                self.post_message(NetworkProblem(str(exc)))
                return
            self.post_message(Joined())
        if self.save_to is not None:
            path, passphrase = self.save_to
            try:
                await node.keep_saved(path, passphrase)
            except SaveError as exc:  # the disk, another file in the way: one sentence
                self.post_message(NetworkProblem(str(exc)))
                return
        self.post_message(NodeReady())

    def on_node_ready(self, _message: NodeReady) -> None:
        if self.node is not None and loopback_only(self.node) and self.demo is None:
            self._lobby_say(
                "No network interface is connected, so only meetings on this laptop can be "
                "found: connect to the room's Wi-Fi and start relsec again to meet others."
            )
        if self.demo is not None:
            self._lobby_say("Starting the demo meeting with simulated members...")
            self.run_worker(self._run_demo, thread=True, name="demo", exit_on_error=False)

    def _run_demo(self) -> None:
        if self.demo is not None:
            self.demo.run(self.post_message)

    def on_network_problem(self, message: NetworkProblem) -> None:
        self.network_problem = message.sentence
        self._lobby_say(message.sentence)

    def _lobby_say(self, sentence: str) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, LobbyScreen):
                screen.say(sentence)

    # -- the node's events ---------------------------------------------------------------

    def _on_node_event(self, event: NodeEvent) -> None:
        # Called inside the node's code: post and return at once.
        if isinstance(event, MeetingChanged):
            self.post_message(RedrawMeeting())
        elif isinstance(event, PeerUp | PeerDown):
            self.post_message(LinksChanged())
        elif isinstance(event, OwnEntryIgnored) and event.type not in WRITTEN_ON_ITS_OWN:
            self.post_message(NotCounted(ignored_sentence(event)))

    def on_not_counted(self, message: NotCounted) -> None:
        self.notify(message.sentence, title="Not counted", severity="warning", timeout=12)

    def on_redraw_meeting(self, _message: RedrawMeeting) -> None:
        self.redraw()

    def on_links_changed(self, _message: LinksChanged) -> None:
        self.redraw()

    def redraw(self) -> None:
        if self.meeting is None:
            return
        view = self.meeting.view()
        if view is None:
            return
        self.view = view
        for screen in self.screen_stack:
            if isinstance(screen, MeetingScreen | DisplayScreen):
                screen.show(view)

    def current_view(self) -> MeetingView | None:
        if self.view is None and self.meeting is not None:
            self.view = self.meeting.view()
        return self.view

    # -- entering a meeting ------------------------------------------------------------

    def start_meeting(self, template: Template, *, title: str, name: str) -> str | None:
        if self.meeting is None:
            return self.network_problem or "The network is not ready yet; try again in a moment."
        problem = self.meeting.start(template, title=title, name=name)
        if problem is None:
            self.enter_meeting()
        return problem

    def join(self, code: str, name: str) -> None:
        self.run_worker(self._join(code, name), name="join", exclusive=True, exit_on_error=False)

    async def _join(self, code: str, name: str) -> None:
        node = self.node
        if node is None:
            self.post_message(
                JoinFailed(self.network_problem or "The network is not ready; restart relsec.")
            )
            return

        def waiting() -> None:
            for screen in self.screen_stack:
                if isinstance(screen, LobbyScreen):
                    screen.say("The code is right: waiting for the facilitator to let you in...")

        try:
            await node.join(
                code,
                name,
                timeout=self.join_timeout,
                display=self.display_only,
                on_waiting=waiting,
            )
        except JoinError as exc:
            self.post_message(JoinFailed(str(exc)))
            return
        except Exception:  # the lobby must say something, whatever went wrong
            log.exception("join failed")
            self.post_message(JoinFailed("Joining failed unexpectedly; try again."))
            return
        self.post_message(Joined())

    def on_joined(self, _message: Joined) -> None:
        self.enter_meeting()

    def on_join_failed(self, message: JoinFailed) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, LobbyScreen):
                screen.join_failed(message.sentence)

    def enter_meeting(self) -> None:
        """Show the meeting this laptop is now in (after start or join)."""
        if self.meeting is None:
            return
        self.view = self.meeting.view()
        if self.display_only:
            self.switch_screen(DisplayScreen(only=True))
        else:
            self.switch_screen(MeetingScreen(self.meeting))
        # The widget tree lives as long as the meeting: moved out of the cyclic
        # collector's sight, a burst of a thousand entries no longer triggers
        # full collections over it that stall the screen.
        self.call_after_refresh(gc.freeze)

    # -- the demo ----------------------------------------------------------------------

    def on_demo_code(self, message: DemoCode) -> None:
        self.join(message.code, "You")

    def on_demo_note(self, message: DemoNote) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, MeetingScreen):
                screen.set_note(message.text)
            elif isinstance(screen, LobbyScreen):
                screen.say(message.text)

    # -- keys ---------------------------------------------------------------------------

    def help_sections(self) -> list[Section]:
        meeting = bindings_of(MeetingScreen.BINDINGS)
        return [
            ("Everywhere", "", self.BINDINGS),
            ("Lobby", "Enter in the code box joins; Enter in the title box starts.",
             LobbyScreen.BINDINGS),
            ("Meeting", "", [b for b in meeting if b.action not in FACILITATOR_ACTIONS]),
            ("Meeting, facilitator only", "",
             [b for b in meeting if b.action in FACILITATOR_ACTIONS]),
            ("Room display", "", DisplayScreen.BINDINGS),
            ("Dialogs", "", [*ChoiceDialog.BINDINGS, *ConfirmDialog.BINDINGS,
                             *TalkTimeDialog.BINDINGS]),
        ]  # fmt: skip

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def show_display(self) -> None:
        if not isinstance(self.screen, DisplayScreen):
            self.push_screen(DisplayScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action of this screen and the app, by its description. The
        stock "Screenshot" command is left out: it writes the screen to a file."""
        seen: set[str] = set()
        for namespace, binding in self._active_bindings_of(screen):
            if not binding.description or binding.action in seen:
                continue
            seen.add(binding.action)
            keys = binding.key.split(",")[0]
            yield SystemCommand(
                binding.description,
                f"key: {keys}",
                _runner(namespace, binding.action),
            )
        for command in super().get_system_commands(screen):
            if command.title not in ("Screenshot", "Quit"):
                yield command

    def _active_bindings_of(self, screen: Screen[Any]) -> Iterable[tuple[Any, Binding]]:
        # The screen's and the app's own keys; a focused widget's editing keys
        # (cursor left, delete...) are not meeting actions.
        for active in screen.active_bindings.values():
            if active.node is screen or active.node is self:
                yield active.node, active.binding

    # -- leaving ---------------------------------------------------------------------

    def action_quit_meeting(self) -> None:
        if self.panicked:
            return  # the panic key's own exit is under way
        if self.meeting is None or self.meeting.state is None or self.display_only:
            self.run_worker(self._close_and_exit(EXIT_OK), name="quit")
            return

        def answered(leave: bool | None) -> None:
            if leave and self.meeting is not None:
                self.run_worker(self._depart_and_exit(), name="quit")

        self.push_screen(
            ConfirmDialog(
                "Leave this meeting? What you said stays with the others; "
                "to come back you join again with the code.",
                "leave",
                "stay",
            ),
            answered,
        )

    async def _depart_and_exit(self) -> None:
        """A clean quit: the departure is written and reaches the laptops
        linked now (``Node.depart`` waits for their receipts, 2 s at most)
        before the links close."""
        node = self.node
        if node is not None:
            self.notify("Leaving: telling the others...", timeout=3)
            with contextlib.suppress(Exception):
                await node.depart()
        await self._close_and_exit(EXIT_OK)

    async def _close_and_exit(self, code: int) -> None:
        if self.demo is not None:
            await asyncio.to_thread(self.demo.stop)
        node = self.node
        if node is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(node.close(), CLOSE_TIMEOUT_S * 3)
        self.exit(code)

    def action_panic(self) -> None:
        """Blank the screen now, cut every link and drop the meeting; offer to
        delete this meeting's save if there is one; then exit."""
        if self.panicked:
            return
        self.panicked = True
        self.push_screen(BlankScreen())
        if self.demo is not None:
            self.demo.kill()
        node = self.node
        self.view, self.meeting = None, None
        delete: asyncio.Future[bool] | None = None
        if node is not None:
            node.panic()
            if node.save_files():
                answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

                def answered(yes: bool | None) -> None:
                    if not answer.done():
                        answer.set_result(bool(yes))

                delete = answer
                self.push_screen(
                    ConfirmDialog(PANIC_DELETE_QUESTION, "delete the save", "keep it"), answered
                )
        self.run_worker(self._panic_exit(node, delete), name="panic")

    async def _panic_exit(self, node: Node | None, delete: asyncio.Future[bool] | None) -> None:
        # Withdraw the mDNS record (one short wait at most) while the question
        # is on screen; delete the save if asked; then go.
        if node is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(node.close(), CLOSE_TIMEOUT_S)
            if delete is not None and await delete:
                try:
                    await node.delete_saves()
                except SaveError as error:  # the exit goes on; the log says so without the path
                    log.warning("panic: a save could not be deleted (%s)", error.code)
        self.node = None
        self.exit(EXIT_PANIC)


def _runner(namespace: Any, action: str) -> Callable[[], Any]:
    async def run() -> None:
        await namespace.run_action(action)

    return run
