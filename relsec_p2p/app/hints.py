"""What to do next, in one line: the status line's suggestion for this laptop.

Rules of this file: a pure function of the ``MeetingView`` (no Textual): the
facilitator is offered the next sensible action with its key, a member what
is waiting for them (a poll to vote on, a rating to give). Each suggestion
names a key the meeting screen really has (``MeetingScreen.BINDINGS``); a
test checks that the keys named here are bound.
"""

from __future__ import annotations

from .view import MeetingView


def plural(count: int, one: str, many: str | None = None) -> str:
    """ "1 member", "3 members": the count and the word that goes with it."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def next_action(view: MeetingView, *, pauses_unacknowledged: int = 0) -> str:
    """The one thing most worth doing now on this laptop, with its key ("" if nothing)."""
    step = view.current_step
    poll = view.open_poll
    if view.am_facilitator:
        if pauses_unacknowledged:
            return "Someone asked for a pause: pause the meeting, then press a."
        if step is None:
            return "All here? Read the safety number aloud; n opens step 1."
        if poll is not None:
            if poll.my_vote is None:
                return "A poll is open: press v to vote; x closes it."
            if poll.voters >= poll.members:
                return "Everyone has voted: press x to close the poll."
            return f"{poll.voters} of {poll.members} have voted: x closes the poll."
        latest = view.latest_poll
        if latest is not None and latest.status == "closed" and latest.record is None:
            return "Poll closed: press w to record what was decided."
        polled = {p.proposal_id for p in view.polls}
        if any(item.id not in polled for item in view.proposals):
            return "A proposal is in: press o to poll it."
        if view.speaker is None and view.waiting:
            return f"{view.waiting[0]} has a hand up: press s to give them the floor."
        if step.kind == "rating":
            return "A rating: press r to give yours; n moves on once all have."
        if view.current is not None and view.current + 1 < len(view.steps):
            return "When the room is ready, press n for the next step."
        return "This is the last step: close the meeting when the room is ready."
    if poll is not None and poll.my_vote is None and view.am_member:
        return "A poll is open: press v to vote."
    if step is not None and step.kind == "rating" and view.am_member:
        return "This step is a rating: press r to give yours."
    return ""
