"""The per-entry rules of the fold, and the fold itself.

Rules of this file (normative text: protocol/SPEC.md §5 and §6):
- Entries are applied in ``(lam, author, seq)`` order. Each entry type has one
  rule in ``RULES``: a ``check`` that returns why the entry has no effect (a
  ``Refused``: stable code and phrase, core/refusals.py) or ``None``, and an
  ``apply`` that changes the state. ``check`` never mutates, so an ignored
  entry leaves the state exactly as it was.
- Every authority rule (who may open a step, close a poll, remove a member)
  lives here, not in the UI: a modified client can write any entry it likes,
  and every honest laptop ignores it the same way.
- Presence (``roster.away``, ``roster.back``) is decided only by entries:
  a strict majority of the present members makes a member away; nothing
  here reads links (SPEC §6.1 "Presence").
- ``anon.round`` has its rule in core/anon_rules.py; single fields are checked
  with core/fields.py; the state they change is core/state.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .anon_rules import apply_anon_blame, apply_anon_round, check_anon_blame, check_anon_round
from .feed import Entry
from .fields import (
    check_member,
    check_ref,
    has_only,
    is_key,
    is_ring_point,
    is_text,
    is_uint,
    name_problem,
    opened_step,
    parse_agenda,
    parse_settings,
    step_index,
)
from .poll_rules import (
    MEMBERSHIP_TYPES,
    apply_outcome,
    apply_poll_close,
    apply_poll_open,
    apply_tally_object,
    apply_tally_sign,
    apply_vote,
    check_outcome,
    check_poll_close,
    check_poll_open,
    check_tally_object,
    check_tally_sign,
    check_vote,
    record_ballot,
)
from .refusals import Refusal, Refused
from .state import (
    MAX_MEMBERS,
    MAX_MEMBERS_EVER,
    MAX_TAG,
    MAX_TEXT,
    MAX_TITLE,
    MAX_VIEWERS,
    Contribution,
    MeetingState,
    Member,
    Proposal,
)
from .wordlist import WORDS

Check = Callable[[MeetingState, Entry], Refused | None]
Apply = Callable[[MeetingState, Entry], None]

# The entries that end a member with an ``upto`` chosen by the facilitator,
# to which the restart rule of SPEC §5.3 applies.
REMOVING_TYPES = frozenset({"roster.remove", "roster.replace"})


def _facilitator_check(state: MeetingState, entry: Entry) -> Refused | None:
    if state.facilitator != entry.author:
        return Refused(Refusal.NOT_FACILITATOR, "only the facilitator may do this")
    return None


def _new_epoch(state: MeetingState) -> None:
    state.epoch += 1


def _set_facilitator(state: MeetingState, key: bytes | None) -> None:
    state.facilitator = key
    state.term += 1
    state.absent_votes.clear()


def _member_gone(state: MeetingState, key: bytes, how: str, upto: int, now_ms: int) -> None:
    member = state.members[key]
    member.active, member.gone, member.upto = False, how, upto
    member.away = False
    state.away_declared.pop(key, None)
    queue = state.queue
    if key in queue.waiting:
        queue.waiting.remove(key)
    if queue.speaker == key:
        queue.end_turn(now_ms)
    state.absent_votes.discard(key)
    _new_epoch(state)
    if state.facilitator == key:
        _set_facilitator(state, state.successor(key))
    _recount(state)


def _recount(state: MeetingState) -> None:
    """After the present members changed: pending away declarations may now
    be a majority (SPEC §6.1 "Presence"), and so may the absent declarations
    about the facilitator (§6.2)."""
    _settle_presence(state)
    facilitator = state.facilitator
    if facilitator is not None and _absent_count(state) >= absent_quorum(state):
        # Fewer members now: the declarations already made may be a majority.
        _set_facilitator(state, state.successor(facilitator))


def presence_quorum(state: MeetingState) -> int:
    """Declarations needed to mark a member away: a strict majority of the
    present members, the target included (SPEC §6.1 "Presence"), so two
    sides of a split room can never both declare the other away."""
    return len(state.present_members()) // 2 + 1


def _settle_presence(state: MeetingState) -> None:
    """Mark away every member whose present declarers reach the quorum, in
    join order, again until nothing changes: each one marked away lowers
    the quorum of the others."""
    changed = True
    while changed:
        changed = False
        for member in state.present_members():
            declarers = state.away_declared.get(member.key, set())
            counted = sum(1 for key in declarers if state.is_present(key))
            if counted >= presence_quorum(state):
                member.away = True
                del state.away_declared[member.key]
                if state.facilitator == member.key:
                    _set_facilitator(state, state.successor(member.key))
                changed = True
                break


# meeting.create -------------------------------------------------------------


def check_create(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if state.created:
        return Refused(Refusal.ALREADY_CREATED, "the meeting already exists")
    if entry.author != state.creator or entry.seq != 1:
        return Refused(Refusal.NOT_CREATOR, "only the creator's first entry may create the meeting")
    if not has_only(data, ("agenda", "name", "ring", "settings", "title")):
        return Refused(Refusal.BAD_FIELDS, "meeting.create has agenda, name, ring, settings, title")
    if not is_text(data["title"], MAX_TITLE) or name_problem(data["name"]) is not None:
        return Refused(Refusal.BAD_TEXT, "title and name must be short non-empty text")
    if not is_ring_point(data["ring"]):
        return Refused(Refusal.BAD_RING_KEY, "ring key is not a valid prime-order point")
    agenda = parse_agenda(data["agenda"])
    if isinstance(agenda, str):
        return Refused(Refusal.BAD_AGENDA, agenda)
    settings = parse_settings(data["settings"])
    if isinstance(settings, str):
        return Refused(Refusal.BAD_SETTINGS, settings)
    return None


def apply_create(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    agenda = parse_agenda(data["agenda"])
    settings = parse_settings(data["settings"])
    assert not isinstance(agenda, str) and not isinstance(settings, str)  # noqa: S101 (checked)
    state.created = True
    state.title = data["title"]
    state.steps = agenda
    state.settings = settings
    state.members[entry.author] = Member(entry.author, data["ring"], data["name"], 0)
    state.facilitator = entry.author
    state.epoch = 1
    state.term = 1


# roster ---------------------------------------------------------------------


def check_add(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("key", "name", "ring")):
        return Refused(Refusal.BAD_FIELDS, "roster.add has key, name, ring")
    if (
        not is_key(data["key"])
        or not is_ring_point(data["ring"])
        or name_problem(data["name"]) is not None
    ):
        return Refused(
            Refusal.BAD_FIELDS,
            "roster.add needs a 32-byte key, a valid ring point and a short name",
        )
    if data["key"] in state.members:
        return Refused(
            Refusal.ALREADY_A_MEMBER,
            "that key was already a member (a returning person joins with new keys)",
        )
    if any(m.ring == data["ring"] for m in state.members.values()):
        return Refused(Refusal.RING_KEY_TAKEN, "ring keys must be distinct")
    if len(state.active_members()) >= MAX_MEMBERS:
        return Refused(Refusal.ROSTER_FULL, "the roster is full")
    if len(state.members) >= MAX_MEMBERS_EVER:
        # The fold's members are the known authors (SPEC §3.3): bounding them
        # here bounds every laptop's feeds alike, whatever the arrival order.
        return Refused(Refusal.ROSTER_FULL, "1 024 members have been added to this meeting")
    return None


def apply_add(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    order = len(state.members)
    state.members[data["key"]] = Member(data["key"], data["ring"], data["name"], order)
    _new_epoch(state)


def check_leave(state: MeetingState, entry: Entry) -> Refused | None:
    if reason := check_member(state, entry):
        return reason
    if entry.data:
        return Refused(Refusal.BAD_FIELDS, "roster.leave has no fields")
    return None


def apply_leave(state: MeetingState, entry: Entry) -> None:
    _member_gone(state, entry.author, "left", entry.seq, entry.ts)


def check_remove(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(data, ("upto", "who")) or not is_key(data["who"]) or not is_uint(data["upto"]):
        return Refused(Refusal.BAD_FIELDS, "roster.remove has who (key) and upto (seq)")
    if data["who"] == entry.author:
        return Refused(Refusal.REMOVE_SELF, "the facilitator leaves with roster.leave")
    if not state.is_member(data["who"]):
        return Refused(Refusal.BAD_TARGET, "who is not a current member")
    if data["who"] == state.creator and data["upto"] < 1:
        return Refused(Refusal.CUTS_CREATION, "a removal cannot cut the meeting's creation")
    return None


def apply_remove(state: MeetingState, entry: Entry) -> None:
    _member_gone(state, entry.data["who"], "removed", entry.data["upto"], entry.ts)


def check_replace(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if (
        not has_only(data, ("by", "upto", "who"))
        or not is_key(data["who"])
        or not is_key(data["by"])
        or not is_uint(data["upto"])
    ):
        return Refused(Refusal.BAD_FIELDS, "roster.replace has by (key), upto (seq), who (key)")
    who, by = data["who"], data["by"]
    if who == entry.author:
        return Refused(Refusal.REMOVE_SELF, "the facilitator leaves with roster.leave")
    if who == by or not state.is_member(who) or not state.is_member(by):
        return Refused(Refusal.BAD_TARGET, "who and by are two current members")
    if state.members[by].order < state.members[who].order or state.members[by].replaces:
        return Refused(
            Refusal.BAD_TARGET, "by is a member who joined after who and replaced nobody yet"
        )
    if who == state.creator and data["upto"] < 1:
        return Refused(Refusal.CUTS_CREATION, "a removal cannot cut the meeting's creation")
    return None


def apply_replace(state: MeetingState, entry: Entry) -> None:
    """The same person under a new key: the earlier key goes as "replaced"
    (a removal, §5.3), and the newcomer is marked as taking its place."""
    data = entry.data
    state.members[data["by"]].replaces = data["who"]
    _member_gone(state, data["who"], "replaced", data["upto"], entry.ts)


# presence ---------------------------------------------------------------------


def check_away(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("returns", "who")) or not is_key(data["who"]):
        return Refused(Refusal.BAD_FIELDS, "roster.away has returns (uint) and who (key)")
    if not is_uint(data["returns"]):
        return Refused(Refusal.BAD_FIELDS, "roster.away has returns (uint) and who (key)")
    if not state.is_present(entry.author):
        return Refused(Refusal.NOT_A_CURRENT_MEMBER, "a member declared away declares nobody")
    who = data["who"]
    if who == entry.author or not state.is_present(who):
        return Refused(Refusal.BAD_TARGET, "who is another member who is present")
    if data["returns"] != state.members[who].returns:
        return Refused(Refusal.STALE_RETURN, "stale: that member has come back since")
    return None


def apply_away(state: MeetingState, entry: Entry) -> None:
    state.away_declared.setdefault(entry.data["who"], set()).add(entry.author)
    _recount(state)


def check_back(state: MeetingState, entry: Entry) -> Refused | None:
    if reason := check_member(state, entry):
        return reason
    if entry.data:
        return Refused(Refusal.BAD_FIELDS, "roster.back has no fields")
    if not state.members[entry.author].away:
        return Refused(Refusal.NOT_AWAY, "only a member declared away comes back")
    return None


def apply_back(state: MeetingState, entry: Entry) -> None:
    member = state.members[entry.author]
    member.away = False
    member.returns += 1
    state.away_declared.pop(entry.author, None)


# facilitation -----------------------------------------------------------------


def check_handover(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(data, ("to",)) or not is_key(data["to"]):
        return Refused(Refusal.BAD_FIELDS, "facil.handover has to (key)")
    if data["to"] == entry.author or not state.is_member(data["to"]):
        return Refused(Refusal.BAD_TARGET, "hand over to another current member")
    # A majority declared this facilitator absent in this term: whatever clock
    # the hand-over carries, the room had already moved on (SPEC §6.2).
    declared = state.absent_declared.get(state.term, frozenset())
    if len({key for key in declared if state.is_present(key)}) >= absent_quorum(state):
        return Refused(Refusal.OVERRULED, "a majority had declared this facilitator absent")
    return None


def apply_handover(state: MeetingState, entry: Entry) -> None:
    _set_facilitator(state, entry.data["to"])


def check_absent(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("term",)) or not is_uint(data["term"]):
        return Refused(Refusal.BAD_FIELDS, "facil.absent has term")
    if data["term"] != state.term:
        return Refused(Refusal.STALE_TERM, "stale term: the facilitator has changed since")
    if entry.author == state.facilitator:
        return Refused(Refusal.SELF_ABSENT, "the facilitator cannot declare themselves absent")
    return None


def absent_quorum(state: MeetingState) -> int:
    """Declarations needed to pass facilitation on: a majority of the present
    members other than the facilitator (SPEC §6.2), so no single member can
    seize it. The present set shrinks only by majority (§6.1 "Presence")."""
    others = sum(1 for m in state.present_members() if m.key != state.facilitator)
    return others // 2 + 1


def _absent_count(state: MeetingState) -> int:
    """The absent declarations that count: those of present members."""
    return sum(1 for key in state.absent_votes if state.is_present(key))


def apply_absent(state: MeetingState, entry: Entry) -> None:
    state.absent_votes.add(entry.author)
    if _absent_count(state) >= absent_quorum(state) and state.facilitator is not None:
        _set_facilitator(state, state.successor(state.facilitator))


# agenda -----------------------------------------------------------------------


def check_step_open(state: MeetingState, entry: Entry) -> Refused | None:
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(entry.data, ("step",)) or step_index(state, entry.data["step"]) is None:
        return Refused(Refusal.NO_SUCH_STEP, "step.open names an existing step")
    if state.current == entry.data["step"]:
        return Refused(Refusal.STEP_ALREADY_OPEN, "that step is already open")
    return None


def apply_step_open(state: MeetingState, entry: Entry) -> None:
    if state.current is not None:
        state.steps[state.current].status = "closed"
    state.current = entry.data["step"]
    state.steps[entry.data["step"]].status = "open"


def check_step_close(state: MeetingState, entry: Entry) -> Refused | None:
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(entry.data, ("step",)) or step_index(state, entry.data["step"]) is None:
        return Refused(Refusal.NO_SUCH_STEP, "step.close names an existing step")
    if state.steps[entry.data["step"]].status != "open":
        return Refused(Refusal.STEP_NOT_OPEN, "that step is not open")
    return None


def apply_step_close(state: MeetingState, entry: Entry) -> None:
    state.steps[entry.data["step"]].status = "closed"
    if state.current == entry.data["step"]:
        state.current = None


# contributions, ratings, proposals -------------------------------------------


def check_contribution(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("step", "text"), ("ref", "tag")):
        return Refused(Refusal.BAD_FIELDS, "contrib.add has step, text and optionally ref, tag")
    step = opened_step(state, data["step"])
    if isinstance(step, Refused):
        return step
    if not step.allows_named():
        return Refused(Refusal.ANONYMOUS_ONLY, "this step takes anonymous answers only")
    if not is_text(data["text"], MAX_TEXT):
        return Refused(Refusal.BAD_TEXT, f"text must be 1 to {MAX_TEXT} characters")
    if "tag" in data and not is_text(data["tag"], MAX_TAG):
        return Refused(Refusal.BAD_TEXT, "tag must be short text")
    if "ref" in data:
        return check_ref(state, step, data["ref"])
    return None


def apply_contribution(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    contribution = Contribution(
        entry.hash, data["step"], entry.author, data["text"], data.get("tag"), data.get("ref")
    )
    state.contributions.append(contribution)
    state.contribution_index[entry.hash] = contribution
    state.item_order[entry.hash] = len(state.item_order)
    state.named_counts[entry.author] = state.named_counts.get(entry.author, 0) + 1


def check_rating(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("step", "value"), ("ref",)):
        return Refused(Refusal.BAD_FIELDS, "rating.set has step, value and optionally ref")
    step = opened_step(state, data["step"])
    if isinstance(step, Refused):
        return step
    if step.kind != "rating" or not step.allows_named():
        return Refused(Refusal.WRONG_KIND, "this step takes no named ratings")
    if not is_uint(data["value"]) or data["value"] >= len(step.scale):
        return Refused(Refusal.OFF_SCALE, "value must be a position on the step's scale")
    if "ref" in data:
        return check_ref(state, step, data["ref"])
    return None


def apply_rating(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    state.ratings[(data["step"], data.get("ref"), entry.author)] = data["value"]


def check_proposal(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("step", "text")):
        return Refused(Refusal.BAD_FIELDS, "proposal.add has step, text")
    step = opened_step(state, data["step"])
    if isinstance(step, Refused):
        return step
    if step.kind != "proposal":
        return Refused(Refusal.WRONG_KIND, "proposals belong to a proposal step")
    if not is_text(data["text"], MAX_TEXT):
        return Refused(Refusal.BAD_TEXT, f"text must be 1 to {MAX_TEXT} characters")
    return None


def apply_proposal(state: MeetingState, entry: Entry) -> None:
    data = entry.data
    state.proposals[entry.hash] = Proposal(entry.hash, data["step"], entry.author, data["text"])


# speaking queue -------------------------------------------------------------


def check_hand_raise(state: MeetingState, entry: Entry) -> Refused | None:
    if reason := check_member(state, entry):
        return reason
    if entry.data:
        return Refused(Refusal.BAD_FIELDS, "hand.raise has no fields")
    if entry.author in state.queue.waiting:
        return Refused(Refusal.HAND_ALREADY_RAISED, "hand already raised")
    return None


def apply_hand_raise(state: MeetingState, entry: Entry) -> None:
    state.queue.waiting.append(entry.author)


def check_hand_lower(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, (), ("who",)):
        return Refused(Refusal.BAD_FIELDS, "hand.lower has optionally who")
    who = data.get("who", entry.author)
    if who != entry.author and entry.author != state.facilitator:
        return Refused(
            Refusal.NOT_FACILITATOR, "only the facilitator may lower someone else's hand"
        )
    if who not in state.queue.waiting and who != state.queue.speaker:
        return Refused(Refusal.HAND_NOT_RAISED, "that hand is not raised")
    return None


def apply_hand_lower(state: MeetingState, entry: Entry) -> None:
    who = entry.data.get("who", entry.author)
    queue = state.queue
    if who in queue.waiting:
        queue.waiting.remove(who)
    else:  # the speaker finishing their turn
        queue.end_turn(entry.ts)


def check_hand_next(state: MeetingState, entry: Entry) -> Refused | None:
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if entry.data:
        return Refused(Refusal.BAD_FIELDS, "hand.next has no fields")
    if not state.queue.waiting and state.queue.speaker is None:
        return Refused(Refusal.NOBODY_WAITING, "nobody is waiting or speaking")
    return None


def apply_hand_next(state: MeetingState, entry: Entry) -> None:
    queue = state.queue
    queue.end_turn(entry.ts)
    while queue.waiting:
        nxt = queue.waiting.pop(0)
        if state.is_member(nxt):
            queue.speaker, queue.since_ms = nxt, entry.ts
            queue.turns[nxt] = queue.turns.get(nxt, 0) + 1
            break


# joining ------------------------------------------------------------------------

JOIN_CODE_WORDS = 3
JOIN_CODE_WORD_SET = frozenset(WORDS)


def check_join_code(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("np", "words")) or not is_uint(data["np"], 99) or data["np"] < 10:
        return Refused(Refusal.BAD_FIELDS, "join.code has np (10 to 99) and words")
    words = data["words"]
    if not (
        isinstance(words, list)
        and len(words) == JOIN_CODE_WORDS
        and all(isinstance(w, str) and w in JOIN_CODE_WORD_SET for w in words)
        and len(set(words)) == JOIN_CODE_WORDS
    ):
        return Refused(
            Refusal.BAD_FIELDS,
            "join.code words are three different words from the code word list",
        )
    return None


def apply_join_code(state: MeetingState, entry: Entry) -> None:
    state.join_code = (entry.data["np"], tuple(entry.data["words"]))


def check_join_code_fresh(state: MeetingState, entry: Entry) -> Refused | None:
    """``join.code`` (SPEC §6.7, §12.11): a code that was current when a
    member was removed never comes back, so the removed person's knowledge
    of it is worth nothing, whatever order concurrent entries sort in."""
    if reason := check_join_code(state, entry):
        return reason
    if tuple(entry.data["words"]) in state.retired_codes:
        return Refused(Refusal.CODE_RETIRED, "that code was retired when a member was removed")
    return None


def apply_remove_and_retire_code(state: MeetingState, entry: Entry) -> None:
    """``roster.remove`` also retires the current join code (SPEC §12.11):
    joining needs a fresh ``join.code`` after it."""
    apply_remove(state, entry)
    if state.join_code is not None:
        state.retired_codes.add(state.join_code[1])
        state.join_code = None


def check_join_open(state: MeetingState, entry: Entry) -> Refused | None:
    """``join.open`` (SPEC §12.11): the facilitator opens or closes joining."""
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(entry.data, ("open",)) or not isinstance(entry.data["open"], bool):
        return Refused(Refusal.BAD_FIELDS, "join.open has open (bool)")
    return None


def apply_join_open(state: MeetingState, entry: Entry) -> None:
    state.joining_open = entry.data["open"]


def check_viewer_add(state: MeetingState, entry: Entry) -> Refused | None:
    """``viewer.add`` (SPEC §12.12): the facilitator admits a room display,
    which reads the meeting and is never a member."""
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(data, ("key", "name")) or not is_key(data["key"]):
        return Refused(Refusal.BAD_FIELDS, "viewer.add has key (32 bytes) and name")
    if name_problem(data["name"]) is not None:
        return Refused(Refusal.BAD_TEXT, "a display's name must be a short display name")
    if data["key"] in state.members or data["key"] in state.viewers:
        return Refused(Refusal.ALREADY_A_MEMBER, "that key is already a member or a display")
    if len(state.viewers) >= MAX_VIEWERS:
        return Refused(Refusal.ROSTER_FULL, "a meeting has at most 8 displays")
    return None


def apply_viewer_add(state: MeetingState, entry: Entry) -> None:
    state.viewers[entry.data["key"]] = entry.data["name"]


def check_viewer_remove(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry) or _facilitator_check(state, entry):
        return reason
    if not has_only(data, ("key",)) or not is_key(data["key"]):
        return Refused(Refusal.BAD_FIELDS, "viewer.remove has key (32 bytes)")
    if data["key"] not in state.viewers:
        return Refused(Refusal.BAD_TARGET, "that key is not a display of this meeting")
    return None


def apply_viewer_remove(state: MeetingState, entry: Entry) -> None:
    del state.viewers[entry.data["key"]]


# acknowledgement ------------------------------------------------------------------


def check_ack(state: MeetingState, entry: Entry) -> Refused | None:
    """An ``ack`` says only what its ``deps`` say: what its author has seen
    (SPEC §6.10). It changes nothing in the state but the count of applied
    entries; settlement reads it from the vector clocks (core/settlement.py)."""
    if reason := check_member(state, entry):
        return reason
    if entry.data:
        return Refused(Refusal.BAD_FIELDS, "ack has no fields")
    return None


def apply_ack(state: MeetingState, entry: Entry) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    check: Check
    apply: Apply


RULES: dict[str, Rule] = {
    "meeting.create": Rule(check_create, apply_create),
    "roster.add": Rule(check_add, apply_add),
    "roster.leave": Rule(check_leave, apply_leave),
    "roster.remove": Rule(check_remove, apply_remove_and_retire_code),
    "roster.replace": Rule(check_replace, apply_replace),
    "roster.away": Rule(check_away, apply_away),
    "roster.back": Rule(check_back, apply_back),
    "facil.handover": Rule(check_handover, apply_handover),
    "facil.absent": Rule(check_absent, apply_absent),
    "step.open": Rule(check_step_open, apply_step_open),
    "step.close": Rule(check_step_close, apply_step_close),
    "contrib.add": Rule(check_contribution, apply_contribution),
    "rating.set": Rule(check_rating, apply_rating),
    "proposal.add": Rule(check_proposal, apply_proposal),
    "poll.open": Rule(check_poll_open, apply_poll_open),
    "vote.cast": Rule(check_vote, apply_vote),
    "poll.close": Rule(
        lambda state, entry: check_poll_close(state, entry, _fold_membership),
        lambda state, entry: apply_poll_close(state, entry, _fold_membership),
    ),
    "hand.raise": Rule(check_hand_raise, apply_hand_raise),
    "hand.lower": Rule(check_hand_lower, apply_hand_lower),
    "hand.next": Rule(check_hand_next, apply_hand_next),
    "join.code": Rule(check_join_code_fresh, apply_join_code),
    "join.open": Rule(check_join_open, apply_join_open),
    "viewer.add": Rule(check_viewer_add, apply_viewer_add),
    "viewer.remove": Rule(check_viewer_remove, apply_viewer_remove),
    "tally.sign": Rule(check_tally_sign, apply_tally_sign),
    "tally.object": Rule(check_tally_object, apply_tally_object),
    "outcome.record": Rule(check_outcome, apply_outcome),
    "anon.round": Rule(check_anon_round, apply_anon_round),
    "ack": Rule(check_ack, apply_ack),
    "anon.blame": Rule(check_anon_blame, apply_anon_blame),
}


def why_ignored(state: MeetingState, entry: Entry) -> Refused | None:
    """The reason ``entry`` would have no effect on ``state``, or ``None``."""
    # An answer to a close is judged against the members that close counted,
    # not the roster now: a removal later (or back-dated) cannot drop it.
    answer = entry.type in ("tally.sign", "tally.object")
    cap = state.caps.get(entry.author)
    if cap is not None and entry.seq > cap and not answer:
        return Refused(Refusal.AUTHOR_GONE, "after the author was removed")
    member = state.members.get(entry.author)
    if member is not None and member.upto is not None and entry.seq > member.upto and not answer:
        return Refused(Refusal.AUTHOR_GONE, "after the author left or was removed")
    rule = RULES.get(entry.type)
    if rule is None:
        return Refused(Refusal.UNKNOWN_TYPE, f"unknown entry type {entry.type!r}")
    if entry.type != "meeting.create" and not state.created:
        return Refused(Refusal.NO_MEETING, "the meeting does not exist yet")
    return rule.check(state, entry)


def apply_entry(state: MeetingState, entry: Entry) -> Refused | None:
    """Fold one entry; returns the reason it was ignored, or ``None``."""
    state.folded_seq[entry.author] = max(state.folded_seq.get(entry.author, 0), entry.seq)
    if entry.type in MEMBERSHIP_TYPES:
        state.membership_log.append(entry)
    elif entry.type == "vote.cast":
        record_ballot(state, entry)
    reason = why_ignored(state, entry)
    if reason is not None:
        state.ignored.append((entry.hash, reason))
        return reason
    RULES[entry.type].apply(state, entry)
    state.applied += 1
    return None


def fold(
    mid: bytes,
    creator: bytes,
    entries: Iterable[Entry],
    frozen: dict[bytes, int],
) -> MeetingState:
    """Fold ``entries`` (already in fold order) from an empty meeting.

    A removal names the last seq of the removed member that counts (``upto``).
    A removed member could back-date later entries with a low Lamport clock, so
    if the fold has applied such an entry when it meets the removal, it starts
    again with that cap known (``state.caps``). A restart only ever adds a cap
    or lowers one to another removal's ``upto``, so there are at most as many
    restarts as removals (SPEC §5.3)."""
    ordered = list(entries)
    removals = sum(1 for entry in ordered if entry.type in REMOVING_TYPES)
    declared: dict[int, set[bytes]] = {}
    for entry in ordered:
        term = entry.data.get("term") if entry.type == "facil.absent" else None
        if isinstance(term, int) and is_uint(term):
            declared.setdefault(int(term), set()).add(entry.author)
    absent_declared = {term: frozenset(keys) for term, keys in declared.items()}
    caps: dict[bytes, int] = {}
    state = MeetingState(mid=mid, creator=creator, frozen=dict(frozen))
    for _ in range(removals + 1):
        state = MeetingState(
            mid=mid,
            creator=creator,
            frozen=dict(frozen),
            caps=dict(caps),
            absent_declared=absent_declared,
        )
        applied_seq: dict[bytes, int] = {}
        restart = False
        for entry in ordered:
            if apply_entry(state, entry) is not None:
                continue
            applied_seq[entry.author] = max(applied_seq.get(entry.author, 0), entry.seq)
            if entry.type in REMOVING_TYPES:
                who, upto = entry.data["who"], entry.data["upto"]
                if applied_seq.get(who, 0) > upto:
                    caps[who] = min(upto, caps.get(who, upto))
                    restart = True
                    break
        if not restart:
            break
    return state


def _fold_membership(state: MeetingState, entries: list[Entry]) -> MeetingState:
    """A close's membership: the membership entries inside its cut, folded on
    their own with the same rules (core/poll_rules.py, SPEC §6.5)."""
    return fold(state.mid, state.creator, entries, state.frozen)
