"""The UI's handle on the meeting: every action a person can take, as one call.

Rules of this file: each action calls the node synchronously (signing and
folding only; frames are queued to the links, nothing is awaited) and returns
``None`` on success or one plain sentence saying what to do instead. The
authority rules live in the fold; this file only words their refusals.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .. import templates
from ..core.errors import EntryRefused, LocalProtocolError
from ..core.events import OwnEntryIgnored
from ..core.fields import is_text, name_problem
from ..core.refusals import Refusal
from ..core.requests import (
    AnonymousAnswer,
    AnonymousRating,
    AnonymousRequest,
    AnonymousVote,
    PauseRequest,
)
from ..core.session import Session
from ..core.state import MAX_TITLE, MeetingState
from ..core.template import Template
from ..net.node import Node
from ..templates import builtin_templates
from .view import MeetingView, build_view


def sentence(reason: str) -> str:
    """A refusal from the core ("that step is not open") as a sentence."""
    reason = reason.strip().rstrip(".")
    return (reason[:1].upper() + reason[1:] + ".") if reason else "That did not work."


# What the fold's refusals mean to the person who pressed the key, by the
# rule's stable code (core/refusals.py), never by its wording.
FRIENDLY: dict[Refusal, str] = {
    Refusal.NOT_FACILITATOR: "Only the facilitator can do that.",
    Refusal.NO_SUCH_STEP: "There is no step there: this is the end of the agenda.",
    Refusal.STEP_NOT_OPEN: "That step is not open.",
    Refusal.STEP_NOT_OPENED: "That step has not been opened yet; answer the current one.",
    Refusal.POLL_CLOSED: "The poll had already closed.",
    Refusal.CUT_AHEAD: "The close named entries this laptop had not put before it; try again.",
    Refusal.NOT_A_CURRENT_MEMBER: "You are not a member of this meeting (any more).",
    Refusal.HAND_ALREADY_RAISED: "Your hand is already up.",
    Refusal.NOBODY_WAITING: "Nobody is waiting to speak.",
}

# The refusals whose own phrase, as a sentence, is what a person reads: each
# names the field or the fact to put right. Every code is in exactly one of
# FRIENDLY and this set (tests/unit/test_refusals.py).
AS_THE_RULE_SAYS: frozenset[Refusal] = frozenset(
    {
        Refusal.NO_MEETING,
        Refusal.UNKNOWN_TYPE,
        Refusal.AUTHOR_GONE,
        Refusal.NOT_CREATOR,
        Refusal.ALREADY_CREATED,
        Refusal.BAD_FIELDS,
        Refusal.BAD_TEXT,
        Refusal.BAD_RING_KEY,
        Refusal.BAD_AGENDA,
        Refusal.BAD_SETTINGS,
        Refusal.ALREADY_A_MEMBER,
        Refusal.RING_KEY_TAKEN,
        Refusal.ROSTER_FULL,
        Refusal.REMOVE_SELF,
        Refusal.BAD_TARGET,
        Refusal.CUTS_CREATION,
        Refusal.STALE_TERM,
        Refusal.SELF_ABSENT,
        Refusal.OVERRULED,
        Refusal.NOT_AWAY,
        Refusal.STALE_RETURN,
        Refusal.STEP_ALREADY_OPEN,
        Refusal.ANONYMOUS_ONLY,
        Refusal.NAMED_ONLY,
        Refusal.WRONG_KIND,
        Refusal.OFF_SCALE,
        Refusal.BAD_REF,
        Refusal.NO_SUCH_PROPOSAL,
        Refusal.POLL_ALREADY_OPEN,
        Refusal.NO_SUCH_POLL,
        Refusal.POLL_NOT_CLOSED,
        Refusal.BAD_CHOICE,
        Refusal.TALLY_MISMATCH,
        Refusal.ALREADY_COSIGNED,
        Refusal.NOT_COUNTED,
        Refusal.BAD_OBJECTION,
        Refusal.HAND_NOT_RAISED,
        Refusal.UNKNOWN_ITEM,
        Refusal.STRANGER_IN_ROUND,
        Refusal.ITEM_NOT_RELEASED,
        Refusal.ROUND_ALREADY_IN,
        Refusal.ROUND_NOT_CERTIFIED,
        Refusal.CODE_RETIRED,  # laptops publish fresh codes only; the rule's phrase is exact
        Refusal.RELEASE_BEFORE_START,
        Refusal.ROUND_RELEASED,
        Refusal.ALREADY_NAMED,
    }
)


# What a person sent, named for a sentence about it (``ignored_sentence``).
WHAT_YOU_SENT: dict[str, str] = {
    "vote.cast": "Your vote",
    "contrib.add": "Your answer",
    "rating.set": "Your rating",
    "proposal.add": "Your proposal",
    "facil.handover": "Your hand-over",
    "step.open": "Your step change",
    "step.close": "Your step change",
    "poll.open": "Your poll",
    "poll.close": "Your close of the poll",
    "outcome.record": "The outcome you recorded",
}


# What the laptop writes on its own when it cannot reach someone (SPEC §6.1
# "Presence", §6.2): one that another laptop's declaration overtook says
# nothing to the person, so no "did not count" is shown for it.
WRITTEN_ON_ITS_OWN = frozenset({"facil.absent", "roster.away", "roster.back"})


def ignored_sentence(event: OwnEntryIgnored) -> str:
    """One plain sentence for the person whose entry stopped counting."""
    what = WHAT_YOU_SENT.get(event.type, "Something you sent")
    reason = FRIENDLY.get(event.refused.code) or sentence(event.refused.text)
    return f"{what} did not count: {reason[0].lower()}{reason[1:]}"


def refusal_sentence(exc: LocalProtocolError) -> str:
    """What to tell the person: a refusal of the rules by its code, anything
    else (and a code worded as the rule says) from the error's own words."""
    if isinstance(exc, EntryRefused) and exc.code in FRIENDLY:
        return FRIENDLY[exc.code]
    return sentence(str(exc))


class Meeting:
    """One node, seen from the UI."""

    def __init__(self, node: Node, clock: Callable[[], int] | None = None) -> None:
        self.node = node
        self.clock = clock or node.clock
        self._safety: tuple[bytes, int, str] | None = None
        self._template: tuple[bytes, Template | None] | None = None

    # -- reading ------------------------------------------------------------------

    @property
    def state(self) -> MeetingState | None:
        state = self.node.state
        return state if state is not None and state.created else None

    def safety_number(self) -> str:
        """Cached per roster epoch: it is stretched with Argon2id on purpose."""
        state = self.state
        if state is None:
            return ""
        if self._safety is None or self._safety[:2] != (state.mid, state.epoch):
            self._safety = (state.mid, state.epoch, self.node.safety_number())
        return self._safety[2]

    def view(self) -> MeetingView | None:
        state = self.state
        if state is None:
            return None
        return build_view(
            state,
            me=self.node.identity.key,
            safety_number=self.safety_number(),
            join_code=self.node.join_code(),
            join_addresses=tuple(self.node.join_addresses()),
            now_ms=self.clock(),
            anon_waiting=self.anon_waiting(),
            template=self.template(),
            ring_secret=self.node.identity.ring_secret,
        )

    def template(self) -> Template | None:
        """The meeting's process, if known (it pairs rating steps into grids);
        looked up once per meeting, since an agenda never changes."""
        state = self.state
        if state is None:
            return None
        if self._template is None or self._template[0] != state.mid:
            self._template = (state.mid, self.node.record_template())
        return self._template[1]

    def anon_waiting(self) -> int:
        session = self.node.session
        return 0 if session is None else session.anonymous.pending()

    def anonymous_capacity(self) -> int:
        return self.node.anonymous_capacity()

    # -- acting ---------------------------------------------------------------------

    def _act(self, action: Callable[[Session], Any]) -> str | None:
        try:
            self.node.perform(action)
        except LocalProtocolError as exc:
            return refusal_sentence(exc)
        return None

    def _anonymous(self, request: Callable[[], AnonymousRequest]) -> str | None:
        """Make the request (its fields checked) and queue it on the node."""
        try:
            self.node.submit_anonymous(request())
        except LocalProtocolError as exc:
            return refusal_sentence(exc)
        return None

    def start(self, template: Template, *, title: str, name: str) -> str | None:
        problem = name_problem(name)
        if problem:
            return f"Choose the name you go by here: {problem}."
        if not is_text(title, MAX_TITLE):
            return f"Give the meeting a short title (1 to {MAX_TITLE} characters)."
        try:
            self.node.start_template(template, name=name, title=title)
        except LocalProtocolError as exc:
            return sentence(str(exc))
        return None

    def write(
        self,
        text: str,
        *,
        anonymous: bool,
        kind: str,
        ref: bytes | None = None,
        tag: str | None = None,
    ) -> str | None:
        state = self.state
        if state is None or state.current is None:
            return "No step is open yet; wait for the facilitator."
        step = state.current
        if anonymous:  # the request itself refuses text too long for a slot
            return self._anonymous(partial(AnonymousAnswer, step=step, text=text, tag=tag, ref=ref))
        if kind == "proposal":
            return self._act(partial(Session.propose, step=step, text=text))
        return self._act(partial(Session.contribute, step=step, text=text, ref=ref, tag=tag))

    def tags_for(self, step: int) -> tuple[str, ...]:
        """The labels the meeting's process offers for answers to ``step``
        (e.g. internal / external for threats); none for a plain agenda."""
        template = self.template()
        state = self.state
        if template is None or state is None or step >= len(state.steps):
            return ()
        wanted = state.steps[step].id
        for template_step in template.steps:
            if template_step.id == wanted:
                return tuple(template_step.tags)
        return ()

    def vote(self, poll: bytes, choice: str, *, anonymous: bool, reason: str = "") -> str | None:
        """Vote; a concern or a block may say why in one line ("" for none)."""
        why = reason.strip() or None
        if anonymous:
            return self._anonymous(partial(AnonymousVote, poll=poll, choice=choice, reason=why))
        return self._act(partial(Session.vote, poll=poll, choice=choice, reason=why))

    def rate(self, value: int, *, anonymous: bool, ref: bytes | None = None) -> str | None:
        """Rate the current step, or one answer (``ref``) of a step it is about."""
        state = self.state
        if state is None or state.current is None:
            return "No step is open yet; wait for the facilitator."
        step = state.current
        if anonymous:
            return self._anonymous(partial(AnonymousRating, step=step, value=value, ref=ref))
        return self._act(partial(Session.rate, step=step, value=value, ref=ref))

    def toggle_hand(self) -> str | None:
        state = self.state
        if state is None:
            return "You are not in a meeting."
        me = self.node.identity.key
        if me in state.queue.waiting or state.queue.speaker == me:
            return self._act(Session.lower_hand)
        return self._act(Session.raise_hand)

    def ask_pause(self) -> str | None:
        return self._anonymous(PauseRequest)

    # -- facilitation -------------------------------------------------------------

    def next_step(self) -> str | None:
        return self._act(Session.advance)

    def previous_step(self) -> str | None:
        state = self.state
        if state is None or not state.current:
            return "This is the first step: there is none before it."
        return self._act(partial(Session.open_step, step=state.current - 1))

    def open_poll(self, proposal: bytes, *, anonymous: bool = False) -> str | None:
        """Open a poll; ``anonymous`` on a "both" step makes its votes anonymous."""
        return self._act(partial(Session.open_poll, proposal=proposal, anonymous=anonymous))

    def poll_default(self, step: int) -> str:
        """How the process offers polls on ``step`` first ("named" or
        "anonymous"); "named" without a process that says otherwise."""
        template = self.template()
        state = self.state
        if template is None or state is None or step >= len(state.steps):
            return "named"
        template_step = template.step(state.steps[step].id)
        return "named" if template_step is None else template_step.poll

    def close_poll(self, poll: bytes) -> str | None:
        return self._act(partial(Session.close_poll, poll=poll))

    def next_speaker(self) -> str | None:
        return self._act(Session.next_speaker)

    def toggle_joining(self) -> str | None:
        """The facilitator opens or closes joining (SPEC §12.11)."""
        state = self.state
        if state is None:
            return None
        try:
            self.node.set_joining(not state.joining_open)
        except LocalProtocolError as exc:
            return refusal_sentence(exc)
        return None

    def hand_over(self, to: bytes) -> str | None:
        return self._act(partial(Session.hand_over, to=to))

    def record_outcome(self, poll: bytes, text: str) -> str | None:
        return self._act(partial(Session.record_outcome, poll=poll, text=text))

    def leave(self) -> str | None:
        return self._act(Session.leave)

    def remove(self, who: bytes) -> str | None:
        """Take a member out of the meeting (facilitator; ``roster.remove``)."""
        return self._act(partial(Session.remove, who=who))

    def replace_member(self, who: bytes, by: bytes) -> str | None:
        """Say the newcomer ``by`` is the person who was ``who``
        (facilitator; ``roster.replace``, SPEC §6.1)."""
        return self._act(partial(Session.replace_member, who=who, by=by))


def template_choices() -> list[tuple[str, str]]:
    """(title, name) of the built-in meeting processes the lobby offers."""
    found = [(info.title, info.name) for info in builtin_templates()]
    # The relational security process first: it is what most groups come for.
    found.sort(key=lambda choice: choice[1] != "relational-security")
    return found


def load_template(name: str) -> Template:
    """A built-in template by name, or a group's own file by path; raises
    ``TemplateError`` (one sentence naming file, line and problem)."""
    return templates.load_template(name)
