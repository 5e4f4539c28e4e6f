"""Why the fold ignores an entry: a stable code and the phrase that explains it.

Rules of this file (SPEC §5.2, §6):
- Every ``check`` of the rules (core/rules.py, core/anon_rules.py) returns a
  ``Refused`` or ``None``. Its ``code`` is stable: a front end words a refusal
  by its code, never by its text, so rewording a rule breaks no screen.
- The ``text`` is the phrase the fold has always given. It is informative
  (SPEC §5.2), yet part of the state vectors, so it changes only on purpose.
- Several phrases share one code when a person would act on them the same
  way (every malformed field is ``BAD_FIELDS``); a code that needs its own
  sentence on a screen gets its own member.
- The values are snake_case words, like the error codes of core/errors.py,
  and never one of those: an ``EntryRefused`` carries its refusal as its
  error code (SPEC §8), so a code names one thing only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Refusal(StrEnum):
    """The stable codes of the fold's refusals."""

    # -- who wrote it (SPEC §5.2, §6.1, §6.2) --
    NO_MEETING = "no_meeting"  # anything before meeting.create
    UNKNOWN_TYPE = "unknown_type"  # an entry type no rule knows
    AUTHOR_GONE = "author_gone"  # past the author's ``upto`` or removal cap
    NOT_A_CURRENT_MEMBER = "not_a_current_member"  # the author is not (any more)
    NOT_FACILITATOR = "not_facilitator"  # a facilitator's action by someone else
    NOT_CREATOR = "not_creator"  # meeting.create not as the creator's first entry
    ALREADY_CREATED = "already_created"

    # -- the shape of the fields --
    BAD_FIELDS = "bad_fields"  # missing, extra, ill-typed or out-of-range fields
    BAD_TEXT = "bad_text"  # text, title, name or tag empty or too long
    BAD_RING_KEY = "bad_ring_key"  # not a canonical prime-order point
    BAD_AGENDA = "bad_agenda"  # the agenda of meeting.create
    BAD_SETTINGS = "bad_settings"  # the settings of meeting.create

    # -- the roster and facilitation (SPEC §6.1, §6.2) --
    ALREADY_A_MEMBER = "already_a_member"  # a key is admitted once
    RING_KEY_TAKEN = "ring_key_taken"
    ROSTER_FULL = "roster_full"
    REMOVE_SELF = "remove_self"  # the facilitator leaves with roster.leave
    BAD_TARGET = "bad_target"  # a removal or handover naming no other current member
    CUTS_CREATION = "cuts_creation"  # a removal whose ``upto`` drops meeting.create
    STALE_TERM = "stale_term"
    SELF_ABSENT = "self_absent"  # the facilitator declaring themselves absent
    OVERRULED = "overruled"  # a hand-over by a facilitator a majority declared absent
    NOT_AWAY = "not_away"  # roster.back by a member nobody declared away
    STALE_RETURN = "stale_return"  # roster.away about an absence the member came back from

    # -- the agenda and what a step takes (SPEC §6.3, §6.4, §13.4) --
    NO_SUCH_STEP = "no_such_step"
    STEP_ALREADY_OPEN = "step_already_open"
    STEP_NOT_OPEN = "step_not_open"  # closing a step that is not open
    STEP_NOT_OPENED = "step_not_opened"  # input for a step not opened yet
    ANONYMOUS_ONLY = "anonymous_only"  # named input where only anonymous counts
    NAMED_ONLY = "named_only"  # anonymous input where only named counts
    WRONG_KIND = "wrong_kind"  # a rating or proposal where the step takes none
    OFF_SCALE = "off_scale"  # a rating value outside the step's scale
    BAD_REF = "bad_ref"  # a reply to no contribution, or across unlinked steps

    # -- proposals, polls and tallies (SPEC §6.5) --
    NO_SUCH_PROPOSAL = "no_such_proposal"
    POLL_ALREADY_OPEN = "poll_already_open"
    NO_SUCH_POLL = "no_such_poll"
    POLL_CLOSED = "poll_closed"
    POLL_NOT_CLOSED = "poll_not_closed"  # co-signing or recording an open poll
    BAD_CHOICE = "bad_choice"
    TALLY_MISMATCH = "tally_mismatch"
    ALREADY_COSIGNED = "already_cosigned"  # a member answers a poll's close once
    CUT_AHEAD = "cut_ahead"  # a close covering entries that come after it
    NOT_COUNTED = "not_counted"  # co-signing or objecting to a close that did not count you
    BAD_OBJECTION = "bad_objection"  # an objection naming a vote the close did not miss

    # -- the speaking queue (SPEC §6.6) --
    HAND_ALREADY_RAISED = "hand_already_raised"
    HAND_NOT_RAISED = "hand_not_raised"
    NOBODY_WAITING = "nobody_waiting"

    # -- anonymous rounds (SPEC §13.4) --
    UNKNOWN_ITEM = "unknown_item"  # an anonymous item of no known kind
    STRANGER_IN_ROUND = "stranger_in_round"  # a participant who is not a current member
    ITEM_NOT_RELEASED = "item_not_released"
    ROUND_ALREADY_IN = "round_already_in"
    ROUND_NOT_CERTIFIED = "round_not_certified"
    RELEASE_BEFORE_START = "release_before_start"  # sorts before its round started
    ROUND_RELEASED = "round_released"  # a withholding named in a round that released
    ALREADY_NAMED = "already_named"  # that withholding is in the log already

    # admission (SPEC §12.11)
    CODE_RETIRED = "code_retired"  # a join code that was current at a removal


@dataclass(frozen=True, slots=True)
class Refused:
    """One refusal: the stable ``code`` and the fold's phrase for it."""

    code: Refusal
    text: str

    def __str__(self) -> str:
        return self.text
