"""The ``anon.round`` rule: a released anonymous round as the fold reads it.

Rules of this file (normative text: protocol/SPEC.md §13.3 reading an item,
§13.4 the rule; the round itself is core/shuffle_round.py, the channel core/anon.py):
- A round counts once every participant signed its release (the
  certificate); each item in it is then checked alone, and one the rules
  refuse (a closed step, a bad ring signature, a dummy's garbage) is dropped
  without spoiling the others.
- ``check_anonymous_item`` is the one rule for an item: the laptop that
  queues it (core/anon.py) and every fold refuse the same items.
- Anonymous votes and ratings carry ring signatures (core/ring.py): one link
  tag per member per poll or rated thing, so a member counts once and stays
  unnamed. Verifying costs milliseconds, so results are memoised, bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from nacl import bindings

from . import ring, shuffle
from .codec import Limits, pack, unpack
from .errors import RemoteProtocolError
from .feed import HASH_BYTES, Entry
from .fields import (
    check_member,
    check_reason,
    check_ref,
    has_only,
    is_text,
    is_uint,
    open_poll,
    opened_step,
)
from .identity import KEY_BYTES
from .refusals import Refusal, Refused
from .state import CHOICES, MAX_TAG, MAX_TEXT, AnonContribution, AnonRound, AnonVote, MeetingState

_T = TypeVar("_T")

# What a slot holds (SPEC §13.3): one canonical map, keys in canonical order.
ITEM_SHAPES: dict[str, tuple[str, ...]] = {
    "contrib": ("k", "n", "step", "text"),
    "rating": ("k", "ref", "sig", "step", "value"),
    "vote": ("choice", "k", "poll", "sig"),
    "pause": ("k", "n"),
}
# Fields an item of a kind may carry besides its shape (SPEC §13.3).
ITEM_OPTIONAL: dict[str, frozenset[str]] = {
    "contrib": frozenset({"ref", "tag"}),
    "vote": frozenset({"reason"}),
}
ITEM_LIMITS = Limits(max_bytes=64 * 1024, max_depth=2, max_str=4096, max_bin=16 * 1024)
VOTE_LABEL = "relsec/v2/anon-vote"
RATING_LABEL = "relsec/v2/anon-rating"
RATING_EVENT_LABEL = b"relsec/v2/anon-rating-event\x00"


def decode_item(raw: bytes) -> dict[str, Any] | None:
    """An item's fields if ``raw`` is a well-formed item, else None (its
    values are checked by ``check_anonymous_item``)."""
    try:
        item = unpack(raw, ITEM_LIMITS)
    except RemoteProtocolError:
        return None
    if not isinstance(item, dict):
        return None
    kind = str(item.get("k"))
    shape = ITEM_SHAPES.get(kind)
    if shape is None or not set(shape) <= set(item) <= set(shape) | ITEM_OPTIONAL.get(kind, set()):
        return None
    return item


def vote_message(
    mid: bytes, rid: bytes, poll: bytes, choice: str, reason: str | None = None
) -> bytes:
    """What an anonymous vote's ring signature covers; its event is the poll
    id, so a member has one tag per poll, and the round id binds it to one
    round. A reason is covered too (appended only when there is one, so a
    vote without one signs what it always did): nobody can swap it."""
    fields: list[Any] = [VOTE_LABEL, mid, rid, poll, choice]
    return pack(fields if reason is None else [*fields, reason])


def rating_message(mid: bytes, rid: bytes, step: int, ref: bytes | None, value: int) -> bytes:
    return pack([RATING_LABEL, mid, rid, step, ref, value])


def rating_event(mid: bytes, step: int, ref: bytes | None) -> bytes:
    """One event per rated thing (a step, or a contribution within it), so a
    member's anonymous ratings of different things cannot be linked."""
    return hashlib.blake2b(
        RATING_EVENT_LABEL + pack([mid, step, ref]), digest_size=HASH_BYTES
    ).digest()


def ring_of(state: MeetingState, members: Iterable[bytes]) -> list[bytes]:
    """The ring of a round: its participants' ring keys, sorted by bytes."""
    return sorted(state.members[key].ring for key in members)


def check_anonymous_item(state: MeetingState, item: dict[str, Any]) -> Refused | None:
    """Whether an anonymous item (decoded, signature not yet checked) may take
    effect now; the reason, in words a person can act on, if not. The same
    rule refuses an item on the laptop that queues it (Session) and drops it
    in every fold (SPEC §13.4)."""
    kind = item.get("k")
    if kind == "pause":
        return None
    if kind == "contrib":
        step = opened_step(state, item.get("step"))
        if isinstance(step, Refused):
            return step
        if not step.allows_anonymous():
            return Refused(Refusal.NAMED_ONLY, "this step takes named answers only")
        if not is_text(item.get("text"), MAX_TEXT):
            return Refused(Refusal.BAD_TEXT, "an anonymous answer needs some text")
        if "tag" in item and not is_text(item["tag"], MAX_TAG):
            return Refused(Refusal.BAD_TEXT, "tag must be short text")
        return check_ref(state, step, item["ref"]) if "ref" in item else None
    if kind == "rating":
        step = opened_step(state, item.get("step"))
        if isinstance(step, Refused):
            return step
        if step.kind != "rating":
            return Refused(Refusal.WRONG_KIND, "this step takes no ratings")
        if not step.counts_anonymously():
            return Refused(Refusal.NAMED_ONLY, "this step counts named ratings only")
        value: Any = item.get("value")
        if not is_uint(value) or value >= len(step.scale):
            return Refused(Refusal.OFF_SCALE, "the rating must be a position on the step's scale")
        ref = item.get("ref")
        return None if ref is None else check_ref(state, step, ref)
    if kind == "vote":
        poll = open_poll(state, item.get("poll"))
        if isinstance(poll, Refused):
            return poll
        if not state.poll_counts_anonymously(poll):
            return Refused(Refusal.NAMED_ONLY, "this poll takes named votes only")
        if item.get("choice") not in CHOICES:
            return Refused(Refusal.BAD_CHOICE, f"the choice is one of {', '.join(CHOICES)}")
        return check_reason(item)
    return Refused(Refusal.UNKNOWN_ITEM, "unknown kind of anonymous item")


class BoundedMemo(Generic[_T]):
    """Results of a pure, costly check, by a digest of its inputs. Pure: the
    same bytes always give the same answer, so a remembered result is the
    result. Bounded: when full it forgets everything at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._results: dict[bytes, _T] = {}

    def __len__(self) -> int:
        return len(self._results)

    def recall(self, key: bytes, compute: Callable[[], _T]) -> _T:
        """The result remembered under ``key``, else ``compute()``'s, remembered."""
        if key in self._results:
            return self._results[key]
        result = compute()
        if len(self._results) >= self.limit:
            self._results.clear()
        self._results[key] = result
        return result


# Verifying a ring signature costs milliseconds and a refold repeats it, as
# does checking a round's certificate (one signature per participant).
MEMO_LIMIT = 4096
_RING_TAGS: BoundedMemo[bytes | None] = BoundedMemo(MEMO_LIMIT)
_CERTIFIED: BoundedMemo[bool] = BoundedMemo(MEMO_LIMIT)


def _ring_tag(message: bytes, keys: list[bytes], signature: Any, event: bytes) -> bytes | None:
    """The link tag of a valid signature, or None."""
    if not isinstance(signature, bytes):
        return None
    memo = hashlib.blake2b(pack([message, keys, signature, event]), digest_size=HASH_BYTES).digest()
    return _RING_TAGS.recall(memo, lambda: _verified_tag(message, keys, signature, event))


def _verified_tag(
    message: bytes, keys: list[bytes], signature: bytes, event: bytes
) -> bytes | None:
    try:
        tag: bytes | None = ring.verify(message, keys, signature, event)
    except RemoteProtocolError:
        tag = None
    # The tag is compared across rounds: it must be a canonical point of the
    # prime-order subgroup (a torsion component would give one member 8 tags).
    if tag is not None and not bindings.crypto_core_ed25519_is_valid_point(tag):
        tag = None
    return tag


def _sorted_keys(value: Any, low: int, high: int, size: int) -> bool:
    return (
        isinstance(value, list)
        and low <= len(value) <= high
        and all(isinstance(x, bytes) and len(x) == size for x in value)
        and value == sorted(set(value))
    )


def round_id_of(mid: bytes, entry: Entry) -> bytes | None:
    """The id of the round an ``anon.round`` or ``anon.blame`` entry names
    (SPEC §13.2.1), or None if its fields do not name one."""
    data = entry.data
    epoch: Any = data.get("epoch")
    nonce: Any = data.get("nonce")
    members: Any = data.get("members")
    after: Any = data.get("after")
    if not (
        is_uint(epoch)
        and isinstance(nonce, bytes)
        and len(nonce) == shuffle.NONCE_BYTES
        and _sorted_keys(members, shuffle.MIN_PARTICIPANTS, shuffle.MAX_PARTICIPANTS, KEY_BYTES)
        and is_uint(after)
    ):
        return None
    return shuffle.rid_of(mid, epoch, nonce, members, after)


ROUND_FIELDS = ("after", "epoch", "members", "nonce")


def _check_round_fields(state: MeetingState, entry: Entry) -> Refused | None:
    """Rules shared by ``anon.round`` and ``anon.blame``: the round's
    participants are current members and the entry sorts after the round's
    start (SPEC §13.4 rules 4 and 8)."""
    members = entry.data["members"]
    # Only current members have a voice: a removed member (or one who left)
    # must not count in a round two others run with them (issue 12).
    if not all(state.is_member(key) for key in members):
        return Refused(
            Refusal.STRANGER_IN_ROUND, "a participant of the round is not a current member"
        )
    # A release cannot sort before its round began: the appender cannot give
    # it a clock from before the poll its votes answer (issue 12.2).
    if entry.lam <= entry.data["after"]:
        return Refused(Refusal.RELEASE_BEFORE_START, "the entry sorts before its round started")
    return None


def check_anon_round(state: MeetingState, entry: Entry) -> Refused | None:
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, ("after", "epoch", "go", "ids", "items", "members", "nonce")):
        return Refused(
            Refusal.BAD_FIELDS, "anon.round has after, epoch, go, ids, items, members, nonce"
        )
    members, ids, items, go = data["members"], data["ids"], data["items"], data["go"]
    if not (
        is_uint(data["epoch"])
        and is_uint(data["after"])
        and isinstance(data["nonce"], bytes)
        and len(data["nonce"]) == shuffle.NONCE_BYTES
        and _sorted_keys(members, shuffle.MIN_PARTICIPANTS, shuffle.MAX_PARTICIPANTS, KEY_BYTES)
        and _sorted_keys(ids, 1, len(members), HASH_BYTES)
        and isinstance(items, list)
        and 1 <= len(items) <= len(ids)
        and all(isinstance(x, bytes) for x in items)
        and isinstance(go, list)
        and len(go) == len(members)
        and all(isinstance(x, bytes) and len(x) == 64 for x in go)
    ):
        return Refused(Refusal.BAD_FIELDS, "anon.round fields have the wrong shape")
    if reason := _check_round_fields(state, entry):
        return reason
    item_ids = [shuffle.item_id(item) for item in items]
    if len(set(item_ids)) != len(item_ids) or not set(item_ids) <= set(ids):
        return Refused(Refusal.ITEM_NOT_RELEASED, "an item the round did not release")
    rid = round_id_of(state.mid, entry)
    assert rid is not None  # noqa: S101 (the shape is checked above)
    known = state.anon_rounds.get(rid)
    if known is not None and set(item_ids) <= known.applied:
        return Refused(Refusal.ROUND_ALREADY_IN, "those items of the round are already in")
    body = shuffle.statement("release", state.mid, rid, shuffle.release_digest(ids))
    memo = hashlib.blake2b(body + pack([members, go]), digest_size=HASH_BYTES).digest()
    certified = _CERTIFIED.recall(
        memo,
        lambda: all(
            shuffle.verify_statement(key, body, signature)
            for key, signature in zip(members, go, strict=True)
        ),
    )
    if not certified:
        return Refused(Refusal.ROUND_NOT_CERTIFIED, "the round is not signed by every participant")
    return None


def apply_anon_round(state: MeetingState, entry: Entry) -> None:
    """Apply each new item of a released round; an item the rules refuse (a
    closed step, a bad ring signature, a dummy's garbage) is dropped alone."""
    data = entry.data
    members = data["members"]
    rid = shuffle.rid_of(state.mid, data["epoch"], data["nonce"], members, data["after"])
    record = state.anon_rounds.get(rid)
    if record is None:
        # "N members": the members present here, the round's own participants
        # counted present (they signed its go), SPEC §6.1 "Presence".
        present = {m.key for m in state.present_members()} | set(members)
        record = AnonRound(rid, len(state.anon_rounds) + 1, len(present), len(members))
        state.anon_rounds[rid] = record
    keys = ring_of(state, members)
    for raw in data["items"]:
        ident = shuffle.item_id(raw)
        if ident in record.applied:
            continue
        record.seen.add(ident)
        item = decode_item(raw)
        if item is None or check_anonymous_item(state, item) is not None:
            # Not applied, so not marked: a later entry of the same round
            # (written with an honest clock) can still bring it in, and its
            # sender, who waits to see it take effect, sends it again. A
            # release back-dated before its poll opened cannot swallow a vote.
            continue
        record.applied.add(ident)
        _apply_anonymous_item(state, entry, record, ident, item, rid, keys)


def _apply_anonymous_item(
    state: MeetingState,
    entry: Entry,
    record: AnonRound,
    ident: bytes,
    item: dict[str, Any],
    rid: bytes,
    keys: list[bytes],
) -> None:
    kind = item["k"]
    if kind == "contrib":
        contribution = AnonContribution(
            ident,
            item["step"],
            item["text"],
            record.ordinal,
            record.members,
            record.slots,
            item.get("tag"),
            item.get("ref"),
        )
        state.anonymous_contributions.append(contribution)
        state.anonymous_index[ident] = contribution
        state.item_order[ident] = len(state.item_order)
    elif kind == "pause":
        state.pause_requests += 1
    elif kind == "vote":
        poll, choice, reason = item["poll"], item["choice"], item.get("reason")
        message = vote_message(state.mid, rid, poll, choice, reason)
        tag = _ring_tag(message, keys, item["sig"], poll)
        if tag is not None:
            state.polls[poll].anon_votes.append(
                AnonVote(tag, choice, record.ordinal, entry.author, entry.seq, reason)
            )
    elif kind == "rating":
        step, ref, value = item["step"], item["ref"], item["value"]
        message = rating_message(state.mid, rid, step, ref, value)
        tag = _ring_tag(message, keys, item["sig"], rating_event(state.mid, step, ref))
        if tag is not None:
            state.anonymous_ratings.setdefault((step, ref), {})[tag] = value


# --- anon.blame: a member named for withholding its inner key ------------------------


def go_statement(mid: bytes, rid: bytes, transcript: bytes) -> bytes:
    """A participant's GO over ``transcript`` (SPEC §13.2.2): what every
    participant signed before any inner key went out."""
    return shuffle.statement("go", mid, rid, True, transcript)


def check_anon_blame(state: MeetingState, entry: Entry) -> Refused | None:
    """A participant names members whose inner key it never received after
    every participant had said GO over one transcript (SPEC §13.4). Not
    receiving cannot be proved, so the fold only records the claim; a member
    is barred once most of the round's other participants name it."""
    data = entry.data
    if reason := check_member(state, entry):
        return reason
    if not has_only(data, (*ROUND_FIELDS, "go", "h", "withheld")):
        return Refused(
            Refusal.BAD_FIELDS, "anon.blame has after, epoch, go, h, members, nonce, withheld"
        )
    members, go, withheld = data["members"], data["go"], data["withheld"]
    rid = round_id_of(state.mid, entry)
    if not (
        rid is not None
        and isinstance(data["h"], bytes)
        and len(data["h"]) == HASH_BYTES
        and isinstance(go, list)
        and len(go) == len(members)
        and all(isinstance(x, bytes) and len(x) == 64 for x in go)
        and _sorted_keys(withheld, 1, len(members) - 1, KEY_BYTES)
        and set(withheld) <= set(members)
        and entry.author in members
        and entry.author not in withheld
    ):
        return Refused(Refusal.BAD_FIELDS, "anon.blame fields have the wrong shape")
    if reason := _check_round_fields(state, entry):
        return reason
    if rid in state.anon_rounds:
        return Refused(Refusal.ROUND_RELEASED, "the round was released, so every key came out")
    named = state.anon_namings.get(rid, (0, {}))[1]
    if any(entry.author in by for by in named.values()):
        return Refused(Refusal.ALREADY_NAMED, "its author named that round's withholding already")
    body = go_statement(state.mid, rid, data["h"])
    memo = hashlib.blake2b(body + pack([members, go]), digest_size=HASH_BYTES).digest()
    certified = _CERTIFIED.recall(
        memo,
        lambda: all(
            shuffle.verify_statement(key, body, signature)
            for key, signature in zip(members, go, strict=True)
        ),
    )
    if not certified:
        return Refused(
            Refusal.ROUND_NOT_CERTIFIED, "the round's GO is not signed by every participant"
        )
    return None


def apply_anon_blame(state: MeetingState, entry: Entry) -> None:
    """Record who named whom; ``MeetingState.anon_barred`` counts them."""
    rid = round_id_of(state.mid, entry)
    assert rid is not None  # noqa: S101 (checked)
    named = state.anon_namings.setdefault(rid, (len(entry.data["members"]), {}))[1]
    for key in entry.data["withheld"]:
        named.setdefault(key, set()).add(entry.author)
