"""``relsec demo``: a whole meeting on one machine, with simulated members.

Rules of this file: the simulated members are real ``relsec peer`` processes
on 127.0.0.1 that find each other by mDNS, driven through
``relsec_p2p.peerproc``: they join by code, sign, encrypt and sync exactly as
other laptops would, so the demo shows the real thing. The script is
blocking (it waits on those processes) and runs in a thread; it never
touches the UI, only posts lines of narration. Nothing is written to disk
but the record ``--export`` asks for. The texts are our own, written for the
scenario in the relational security material (a member who dominates
meetings and holds the funder relationship). They are marked for the catalog
and sent in the language shown (``relsec demo --lang es``): the simulated
members write in it, as people would; tags stay the template's own labels,
which every laptop shows in its language.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.i18n import N_, _, current_language
from .core.template import Template
from .peerproc import PeerProcess
from .templates import load_template

if TYPE_CHECKING:
    from .net.node import Node

DEMO_TEMPLATE = "relational-security"
CAST = ("Ana", "Bo", "Cyd")  # Ana starts the meeting and facilitates
YOU = "You"
JOIN_TIMEOUT_S = 30.0
# How long the demo waits for the person at the keyboard to rate or vote
# before going on by itself; the narration counts down meanwhile.
YOUR_TURN_WAIT_S = 300.0
PACE_S = 4.0  # between scripted actions: time to read what just happened
FAST_PACE_S = 0.3  # --fast (tests): no waiting for anyone
ROUND_WAIT_S = 30.0  # anonymous rounds run on a schedule of a few seconds

# What the simulated members say, by step id: (speaker index, text, tag or None,
# anonymous?). Steps not listed get a generic line for their kind.
LINES: dict[str, list[tuple[int, str, str | None, bool]]] = {
    "threats": [
        (
            1,
            N_("One member talks for most of every meeting; others stop trying."),
            "internal",
            False,
        ),
        (2, N_("Women and non-binary members come less and less often."), "internal", False),
        (0, N_("Our only funder relationship sits with one person."), "external", False),
        (
            1,
            N_("I have been asked for emotional support in work meetings and feel stuck."),
            None,
            True,
        ),
    ],
    "impacts": [
        (2, N_("We lose the people the group exists to support."), None, False),
        (0, N_("A project could swallow our money without the group agreeing to it."), None, False),
        (1, N_("I am close to leaving and have not said so."), None, True),
    ],
    "options": [
        (
            0,
            N_("Ask the member to step back from organising for a while, with support."),
            None,
            False,
        ),
        (1, N_("Share the funder relationship between three people."), None, False),
        (2, N_("Agree time limits and a rotating facilitator for meetings."), None, False),
        (1, N_("Bring in an outside mediator we all trust."), None, True),
    ],
    "tradeoffs": [
        (0, N_("Sharing the funder contact risks the relationship for a while."), "risk", False),
        (2, N_("It also builds broader ties with the funder."), "benefit", False),
        (1, N_("Time limits feel stiff at first but give quieter people room."), "benefit", False),
    ],
    "capacity": [
        (2, N_("We already check in at the start of meetings: a strength."), "strength", False),
        (0, N_("Decisions get made in side conversations: a weakness."), "weakness", False),
        (1, N_("A local collective offered mediation last year."), "outside resource", False),
    ],
    "oppression": [
        (
            1,
            N_("Asking women to absorb the strain repeats patriarchy inside our group."),
            None,
            False,
        ),
        (
            2,
            N_("If the member who holds the funder contact is arrested, we lose it overnight."),
            "the unexpected",
            False,
        ),
    ],
    "learnings": [
        (
            0,
            N_("Name who holds which outside relationship, and share each one."),
            "prevention",
            False,
        ),
        (2, N_("Rotate facilitation from the start."), "learning", False),
        (1, N_("Say earlier when something feels wrong: it is easier anonymously."), None, True),
    ],
}
PROPOSAL = N_(
    "Share the funder relationship among three members, rotate facilitation with time "
    "limits, and ask the member to step back for two months with support."
)
OUTCOME = N_("Consensus: start next week; Bo and Cyd join the funder call.")
GENERIC_TEXT = N_("Here is what I think about this, in a sentence or two.")
MEETING_TITLE = N_("Demo: the funder relationship")
# What the demo says while it waits for the person at the keyboard, by what
# it waits for (``you_did``): whole sentences, so that each language can
# word "your rating" and "your vote" its own way.
YOUR_TURN_MISSED = {
    "rating": N_("No rating from you; the demo goes on without it."),
    "vote": N_("No vote from you; the demo goes on without it."),
}
YOUR_TURN_DONE = {
    "rating": N_("Thank you: your rating is in."),
    "vote": N_("Thank you: your vote is in."),
}


@dataclass
class Demo:
    """The simulated members and the script they follow."""

    template_name: str = DEMO_TEMPLATE
    pace: float = PACE_S  # seconds between actions, so a newcomer can follow
    # Wait for the person at the keyboard to rate and vote (``you_did``);
    # off with --fast, for the tests.
    wait_for_you: bool = True
    interface: str = "127.0.0.1"
    peers: list[PeerProcess] = field(default_factory=list)
    code: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # What the person at the keyboard did, told by the app on this laptop
    # (never learnt from the network: an anonymous rating names nobody).
    _you: dict[str, threading.Event] = field(default_factory=dict)

    def you_did(self, what: str) -> None:
        """The app says the local person rated or voted (``what``)."""
        with self._lock:
            self._you.setdefault(what, threading.Event()).set()

    def _your_turn(self, what: str, key: str, narrate: Callable[[str], None]) -> None:
        """Wait, with a visible countdown, until the local person has done
        ``what`` (a rating, a vote), or ``YOUR_TURN_WAIT_S`` has passed."""
        with self._lock:
            done = self._you.setdefault(what, threading.Event())
            done.clear()
        deadline = time.monotonic() + YOUR_TURN_WAIT_S
        while not done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                narrate(_(YOUR_TURN_MISSED[what]))
                return
            minutes, seconds = divmod(int(left), 60)
            narrate(
                _(
                    "Waiting for you: press {key} (the demo goes on in {minutes}:{seconds:02d})."
                ).format(key=key, minutes=minutes, seconds=seconds)
            )
            if self._stop.wait(1.0):
                raise DemoStopped
        narrate(_(YOUR_TURN_DONE[what]))
        self._wait()  # time to see it counted before the step moves on

    # -- the processes -------------------------------------------------------------

    def start(self) -> str:
        """Start the simulated members; Ana starts the meeting. Returns the code."""
        template = load_template(self.template_name)
        with ThreadPoolExecutor(max_workers=len(CAST)) as pool:
            started = list(pool.map(lambda _: PeerProcess(interface=self.interface), CAST))
        with self._lock:
            self.peers = started
        if self._stop.is_set():
            self.kill()
            raise DemoStopped
        answer = self.peers[0].ok(
            cmd="start",
            title=_(MEETING_TITLE),
            name=CAST[0],
            agenda=template.agenda,
            settings=template.settings,
        )
        self.code = str(answer["code"])
        return self.code

    def join_others(self) -> None:
        with ThreadPoolExecutor(max_workers=len(CAST) - 1) as pool:
            list(
                pool.map(
                    lambda i: self.peers[i].ok(
                        cmd="join", code=self.code, name=CAST[i], timeout=JOIN_TIMEOUT_S
                    ),
                    range(1, len(CAST)),
                )
            )

    def stop(self) -> None:
        """Ask the simulated members to quit (they hold the meeting in memory only)."""
        self._stop.set()
        with self._lock:
            peers = list(self.peers)
        with ThreadPoolExecutor(max_workers=max(1, len(peers))) as pool:
            list(pool.map(lambda p: p.close(), peers))

    def kill(self) -> None:
        """Panic: end the simulated members at once."""
        self._stop.set()
        with self._lock:
            peers = list(self.peers)
        for peer in peers:
            with contextlib.suppress(Exception):
                peer.proc.kill()

    # -- the script ---------------------------------------------------------------

    def _wait(self, seconds: float | None = None) -> None:
        if self._stop.wait(self.pace if seconds is None else seconds):
            raise DemoStopped

    def _say(self, peer: int, **command: Any) -> dict[str, Any] | None:
        if self._stop.is_set():
            raise DemoStopped
        answer = self.peers[peer].cmd(**command)
        return None if answer.get("event") == "error" else answer

    def _anonymous(self, peer: int, item: dict[str, Any]) -> bool:
        """Send one anonymous item from a simulated member (False: refused)."""
        wire = {k: v.hex() if isinstance(v, bytes) else v for k, v in item.items() if v is not None}
        return self._say(peer, cmd="anon", **wire) is not None

    def _everyone_sees(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        """Wait until every simulated member's meeting satisfies ``predicate``:
        a member acts on what its own laptop has received, as people do."""
        for peer in self.peers:
            if self._stop.is_set():
                raise DemoStopped
            peer.wait_state(predicate, timeout=JOIN_TIMEOUT_S)

    def _rounds_done(self, timeout: float = ROUND_WAIT_S) -> None:
        """Wait until no simulated member has an anonymous item still queued:
        an item still waiting when the step closes would be refused."""
        deadline = time.monotonic() + timeout
        for peer in self.peers:
            while peer.state().get("anon_pending", 0) and time.monotonic() < deadline:
                self._wait(0.2)

    def members(self) -> list[dict[str, Any]]:
        state = self.peers[0].state()
        return [m for m in state.get("members", []) if m.get("active")]

    def wait_for_members(self, count: int, timeout: float = JOIN_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while len(self.members()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(_("the demo members never all joined"))
            self._wait(0.2)

    def run_script(
        self,
        narrate: Callable[[str], None],
        *,
        you_vote: Callable[[str], None] | None = None,
        you_present: bool = True,
    ) -> None:
        """Walk the agenda. ``you_vote(poll_hex)`` votes for the local seat
        (headless); without it the script waits a while for a person's vote."""
        template = load_template(self.template_name)
        rng = random.Random(7)
        for index, step in enumerate(template.steps):
            self._say(0, cmd="open_step", step=index)
            self._everyone_sees(lambda s, i=index: s["current"] == i)  # type: ignore[misc]
            shown = step.in_language(current_language())
            title = shown.title if shown.title[-1:] in ".?!" else f"{shown.title}."
            narrate(_("Ana opened step {number}: {title}").format(number=index + 1, title=title))
            self._wait()
            if step.kind == "text":
                self._text_step(index, step.id, step.mode, narrate)
            elif step.kind == "rating":
                self._rating_step(index, template, step.mode, rng, narrate)
                if you_present and you_vote is None and self.wait_for_you:
                    self._your_turn("rating", "r", narrate)
            else:
                self._proposal_step(index, step.mode, narrate, you_vote, you_present)
            self._wait()
            self._rounds_done()
        if you_present and you_vote is None:
            you = [m for m in self.members() if m.get("name") == YOU]
            if you:
                self._say(0, cmd="hand_over", to=you[0]["key"])
                narrate(_("Ana handed facilitation to you: n moves on, t shows talk time."))
        if you_vote is None:  # in the app; headless, there is nothing to leave
            narrate(_("The demo meeting is over. Press ctrl+q to leave, or keep exploring."))
        else:
            narrate(_("The demo meeting is over."))

    def _text_step(
        self, index: int, step_id: str, mode: str, narrate: Callable[[str], None]
    ) -> None:
        lines = LINES.get(step_id) or [(1, GENERIC_TEXT, None, False)]
        if len(lines) > 1:
            self._say(1, cmd="raise_hand")
            bo = self.peers[1].key
            self.peers[0].wait_state(lambda s: bo in s["queue"], timeout=JOIN_TIMEOUT_S)
            self._say(0, cmd="next_speaker")
            narrate(_("Bo raised a hand; Ana gave Bo the floor."))
        for who, text, tag, anonymous in lines:
            self._wait()
            if anonymous or mode == "anonymous":
                if mode != "named" and self._anonymous(
                    who, {"kind": "contrib", "step": index, "text": _(text)}
                ):
                    narrate(_("Someone answered anonymously: it shows in the next round."))
                continue
            command: dict[str, Any] = {"cmd": "contribute", "step": index, "text": _(text)}
            if tag:
                command["tag"] = tag
            self._say(who, **command)
        self._say(1, cmd="lower_hand")

    def _rating_step(
        self,
        index: int,
        template: Template,
        mode: str,
        rng: random.Random,
        narrate: Callable[[str], None],
    ) -> None:
        """Each member rates each named answer the step is about (the threats,
        say), or the step as a whole when it is about nothing."""
        step = template.steps[index]
        about = {i for i, s in enumerate(template.steps) if s.id in (step.about, *step.links)}
        answers = self.peers[0].state()["contributions"]
        refs = [c["id"] for c in answers if c["step"] in about] or [None]
        for who in range(len(CAST)):
            for ref in refs:
                value = rng.randrange(len(step.scale))
                if mode == "anonymous":
                    item = {"kind": "rating", "step": index, "value": value, "ref": ref}
                    if not self._anonymous(who, item):
                        narrate(_("An anonymous rating was refused; going on."))
                        return
                else:
                    extra = {} if ref is None else {"ref": ref}
                    self._say(who, cmd="rate", step=index, value=value, **extra)
            self._wait(self.pace / 2)
        narrate(_("The simulated members rated; the spread shows once enough have answered."))

    def _proposal_step(
        self,
        index: int,
        mode: str,
        narrate: Callable[[str], None],
        you_vote: Callable[[str], None] | None,
        you_present: bool,
    ) -> None:
        answer = self._say(1, cmd="propose", step=index, text=_(PROPOSAL))
        if answer is None:
            return
        narrate(_("Bo proposed a way forward. Ana reads it aloud and opens a poll."))
        self._wait()
        self.peers[0].wait_state(lambda s: any(p["step"] == index for p in s["proposals"]))
        proposal = self._proposal_id(index)
        poll_answer = self._say(0, cmd="open_poll", proposal=proposal)
        if poll_answer is None:
            return
        poll = self._poll_id(proposal)
        self._everyone_sees(lambda s: any(p["id"] == poll for p in s["polls"]))
        choices = ("agree", "concerns", "agree")
        for who, choice in enumerate(choices):
            self._wait(self.pace / 2)
            if mode == "anonymous":
                if self._anonymous(
                    who, {"kind": "vote", "poll": bytes.fromhex(poll), "choice": choice}
                ):
                    continue
            if mode != "anonymous":
                self._say(who, cmd="vote", poll=poll, choice=choice)
        if you_vote is not None:
            you_vote(poll)
        elif you_present and self.wait_for_you:
            self._your_turn("vote", "v", narrate)
        self._wait()
        # Everyone's vote in before the close (a person may not vote: then the three).
        needed = len(CAST) + (1 if you_vote is not None else 0)
        self.peers[0].wait_state(
            lambda s: any(p["id"] == poll and sum(p["tally"].values()) >= needed
                          for p in s["polls"]), timeout=JOIN_TIMEOUT_S)  # fmt: skip
        self._say(0, cmd="close_poll", poll=poll)
        narrate(_("Ana closed the poll; every laptop computed the same result."))
        self._wait()
        self._say(0, cmd="record_outcome", poll=poll, text=_(OUTCOME))

    def _proposal_id(self, index: int) -> str:
        for proposal in self.peers[0].state()["proposals"]:
            if proposal["step"] == index:
                return str(proposal["id"])
        raise RuntimeError(_("the proposal did not arrive"))

    def _poll_id(self, proposal: str) -> str:
        for poll in self.peers[0].state()["polls"]:
            if poll["proposal"] == proposal:
                return str(poll["id"])
        raise RuntimeError(_("the poll did not open"))


class DemoStopped(Exception):
    """The demo was stopped (quit or panic) while its script ran."""


class DemoHost:
    """Plugs a ``Demo`` into the app: start, join the local seat, narrate."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def run(self, post: Callable[[Any], object]) -> None:
        from .app.messages import DemoCode, DemoNote

        def narrate(text: str) -> None:
            post(DemoNote(text))

        try:
            code = self.demo.start()
            narrate(_("Three simulated members are here; joining you to their meeting..."))
            post(DemoCode(code))
            self.demo.join_others()
            self.demo.wait_for_members(len(CAST) + 1)
            narrate(_("Everyone is in. Compare the safety number aloud (here: press k)."))
            self.demo._wait(self.demo.pace * 2)
            self.demo.run_script(narrate)
        except DemoStopped:
            return
        except (TimeoutError, RuntimeError) as exc:
            narrate(_("The demo stopped: {reason}.").format(reason=exc))

    def stop(self) -> None:
        self.demo.stop()

    def kill(self) -> None:
        self.demo.kill()

    def you_did(self, what: str) -> None:
        self.demo.you_did(what)


async def run_headless(export: Path | None, *, template_name: str = DEMO_TEMPLATE) -> int:
    """The same scripted meeting with no UI: a local node takes the seat a
    person would, votes when asked, and the record is written at the end."""
    from .core.session import Session
    from .net.node import Node

    node = Node(interfaces=["127.0.0.1"])
    demo = Demo(template_name=template_name, pace=0.0, wait_for_you=False)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancelled)
    await node.start()
    try:
        code = await asyncio.to_thread(demo.start)
        await asyncio.gather(node.join(code, YOU, timeout=JOIN_TIMEOUT_S),
                             asyncio.to_thread(demo.join_others))  # fmt: skip
        await asyncio.to_thread(demo.wait_for_members, len(CAST) + 1)

        def you_vote(poll: str) -> None:
            done = threading.Event()

            def vote() -> None:
                try:
                    node.perform(lambda s: Session.vote(s, bytes.fromhex(poll), "agree"))
                finally:
                    done.set()

            loop.call_soon_threadsafe(vote)
            done.wait(10)

        def narrate(text: str) -> None:
            print(text, flush=True)

        await asyncio.to_thread(demo.run_script, narrate, you_vote=you_vote)
        if not await _settle(node, demo):
            print(
                _(
                    "The meeting did not reach this laptop in full; the record may miss "
                    "the last entries."
                ),
                flush=True,
            )
        if export is not None:
            if export.suffix.lower() == ".json":
                node.export(json=export)
            else:
                node.export(markdown=export)
            print(_("Wrote the meeting record to {file}.").format(file=export), flush=True)
        return 0
    finally:
        await asyncio.to_thread(demo.stop)
        await node.close()


def _quiet_cancelled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Closing the node cancels handshakes still in progress; asyncio reports
    each as an error in a callback. Those are expected at the end of the demo
    and say nothing to its reader; anything else is reported as usual."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


async def _settle(node: Node, demo: Demo, timeout: float = 15.0) -> bool:
    """Wait until the local node holds what Ana holds (the record must be whole)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        theirs = await asyncio.to_thread(lambda: demo.peers[0].cmd(cmd="status"))
        mine = node.session.digest().hex() if node.session is not None else ""
        if theirs.get("digest") == mine:
            return True
        await asyncio.sleep(0.1)
    return False
