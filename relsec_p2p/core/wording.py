"""The words people read for the meeting's vocabulary: choices, outcomes, modes.

Rules of this file:
- One table per vocabulary, keyed by the value the log carries
  (``state.CHOICES``, ``state.RESULTS``, ``state.MODES``, ``state.KINDS``,
  a step's status, a refusal's code), and every reader (the record, the
  screens, the benchmarks) takes its labels from here, so a label changes in
  one place and a translation has one table to cover.
- Each table is an ``i18n.Labels``: the English labels are marked for the
  catalog and a lookup gives the label in the language shown at that moment.
- Labels only: what a value means is the rules' business (core/rules.py).
"""

from __future__ import annotations

from typing import Final

from .i18n import N_, Labels
from .refusals import Refusal

CHOICE_LABELS: Final = Labels(
    {
        "agree": N_("agree"),
        "concerns": N_("agree with concerns"),
        "stand_aside": N_("stand aside"),
        "block": N_("block"),
    }
)
# Where a whole tally shares one line ("agree 2 · concerns 1 · …").
SHORT_CHOICE_LABELS: Final = Labels(
    {
        "agree": N_("agree"),
        "concerns": N_("concerns"),
        "stand_aside": N_("stand aside"),
        "block": N_("block"),
    }
)
OUTCOME_LABELS: Final = Labels(
    {
        "consensus": N_("consensus"),
        "blocked": N_("blocked"),
        "no_consensus": N_("no consensus"),
        "no_quorum": N_("no quorum"),
    }
)
MODE_LABELS: Final = Labels(
    {
        "named": N_("named answers"),
        "anonymous": N_("anonymous answers"),
        "both": N_("named or anonymous answers"),
    }
)
KIND_LABELS: Final = Labels(
    {
        "text": N_("text"),
        "rating": N_("rating"),
        "proposal": N_("proposal"),
    }
)
STATUS_LABELS: Final = Labels(
    {
        "pending": N_("not reached"),
        "open": N_("open"),
        "closed": N_("done"),
    }
)

# What a refusal of the fold means to the person who pressed the key, one
# plain sentence per stable code (core/refusals.py), never by the fold's
# phrase (which is English on every laptop: it is in the state vectors).
REFUSAL_SENTENCES: Final = Labels(
    {
        Refusal.NO_MEETING: N_("There is no meeting yet: start or join one first."),
        Refusal.UNKNOWN_TYPE: N_("This program does not know that kind of entry."),
        Refusal.AUTHOR_GONE: N_("You have left this meeting or been removed from it."),
        Refusal.NOT_A_CURRENT_MEMBER: N_("You are not a member of this meeting (any more)."),
        Refusal.NOT_FACILITATOR: N_("Only the facilitator can do that."),
        Refusal.NOT_CREATOR: N_("Only the person who started the meeting can create it."),
        Refusal.ALREADY_CREATED: N_("This meeting has already been started."),
        Refusal.BAD_FIELDS: N_("Something in that action was missing or malformed; try again."),
        Refusal.BAD_TEXT: N_("The text is empty or too long; write something shorter."),
        Refusal.BAD_RING_KEY: N_("That member's anonymity key is not valid."),
        Refusal.BAD_AGENDA: N_("The agenda is not valid; check the template."),
        Refusal.BAD_SETTINGS: N_("The meeting's settings are not valid; check the template."),
        Refusal.ALREADY_A_MEMBER: N_("That person is already a member."),
        Refusal.RING_KEY_TAKEN: N_("That anonymity key already belongs to another member."),
        Refusal.ROSTER_FULL: N_("The meeting is full: no more members can join."),
        Refusal.REMOVE_SELF: N_("You cannot remove yourself; leave the meeting instead."),
        Refusal.BAD_TARGET: N_("Choose another current member."),
        Refusal.CUTS_CREATION: N_("That removal would undo the meeting's start."),
        Refusal.STALE_TERM: N_("Facilitation has changed hands since; look again and retry."),
        Refusal.SELF_ABSENT: N_("You cannot declare yourself absent."),
        Refusal.OVERRULED: N_(
            "Most members declared that facilitator absent, so the hand-over did not count."
        ),
        Refusal.NOT_AWAY: N_(
            "Nobody declared your laptop away, so there is nothing to come back from."
        ),
        Refusal.STALE_RETURN: N_(
            "That member has come back since; look again before declaring them away."
        ),
        Refusal.NO_SUCH_STEP: N_("There is no step there: this is the end of the agenda."),
        Refusal.STEP_ALREADY_OPEN: N_("That step is already open."),
        Refusal.STEP_NOT_OPEN: N_("That step is not open."),
        Refusal.STEP_NOT_OPENED: N_("That step has not been opened yet; answer the current one."),
        Refusal.ANONYMOUS_ONLY: N_("This step takes anonymous answers only."),
        Refusal.NAMED_ONLY: N_("This step takes named answers only."),
        Refusal.WRONG_KIND: N_("This step does not take that kind of answer."),
        Refusal.OFF_SCALE: N_("Choose one of the labels of the step's scale."),
        Refusal.BAD_REF: N_("That answer refers to an item this step cannot refer to."),
        Refusal.NO_SUCH_PROPOSAL: N_("There is no such proposal."),
        Refusal.POLL_ALREADY_OPEN: N_("A poll on that proposal is already open."),
        Refusal.NO_SUCH_POLL: N_("There is no such poll."),
        Refusal.POLL_CLOSED: N_("The poll had already closed."),
        Refusal.POLL_NOT_CLOSED: N_("The poll is still open."),
        Refusal.BAD_CHOICE: N_("Vote agree, agree with concerns, stand aside or block."),
        Refusal.TALLY_MISMATCH: N_("That tally does not match the close; it was not co-signed."),
        Refusal.ALREADY_COSIGNED: N_("Your laptop has already answered that close."),
        Refusal.CUT_AHEAD: N_(
            "The close named entries this laptop had not put before it; try again."
        ),
        Refusal.NOT_COUNTED: N_("That close did not count you, so you cannot answer it."),
        Refusal.BAD_OBJECTION: N_("That objection names no vote the close left out."),
        Refusal.HAND_ALREADY_RAISED: N_("Your hand is already up."),
        Refusal.HAND_NOT_RAISED: N_("That hand is not raised."),
        Refusal.NOBODY_WAITING: N_("Nobody is waiting to speak."),
        Refusal.UNKNOWN_ITEM: N_("This program does not know that kind of anonymous answer."),
        Refusal.STRANGER_IN_ROUND: N_("Someone in that anonymous round is not a member."),
        Refusal.ITEM_NOT_RELEASED: N_("That anonymous answer was not released."),
        Refusal.ROUND_ALREADY_IN: N_("That anonymous round is already in the meeting."),
        Refusal.ROUND_NOT_CERTIFIED: N_("That anonymous round was not certified by its members."),
        Refusal.CODE_RETIRED: N_(
            "That join code was retired when a member was removed; share the new code instead."
        ),
        Refusal.RELEASE_BEFORE_START: N_(
            "That anonymous round was written as if before it began; another member sends it."
        ),
        Refusal.ROUND_RELEASED: N_("That anonymous round was released, so nobody withheld in it."),
        Refusal.ALREADY_NAMED: N_("That withholding is already in the meeting."),
    }
)

__all__ = [
    "CHOICE_LABELS",
    "KIND_LABELS",
    "MODE_LABELS",
    "OUTCOME_LABELS",
    "REFUSAL_SENTENCES",
    "SHORT_CHOICE_LABELS",
    "STATUS_LABELS",
]
