"""What a person asks to send anonymously, as typed values (SPEC §13.3).

Rules of this file:
- A request checks its own fields when it is made (as h11's events do): a
  wrong field is a ``LocalProtocolError`` in a sentence a person can act on,
  so a request that exists is well formed. Whether the meeting takes it now
  (the step open, the poll counted anonymously) is
  ``anon_rules.check_anonymous_item``'s question, asked when it is queued and
  again when its round comes.
- ``wire_item`` is the one place a request becomes an item's fields as a slot
  carries them (``anon_rules.ITEM_SHAPES``); core/anon.py adds the nonce or
  the ring signature when it fills the slot.
- Named actions are not requests here: they are ``Session`` methods
  (``contribute``, ``rate``, ``vote``, ``raise_hand`` …).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .charset import is_blank
from .errors import LocalProtocolError
from .feed import HASH_BYTES
from .fields import check_reason, is_text
from .state import CHOICES, MAX_TAG

# UTF-8 bytes of text that always fit in a slot: core/anon.py sizes every
# slot for it (tests/unit/test_anon_state.py checks every round size).
TEXT_CAPACITY = 1000


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class AnonymousAnswer:
    """An answer to a step, sent with no name; like a named one it may carry
    the process's label for it (``tag``) and the item it is about (``ref``)."""

    step: int
    text: str
    tag: str | None = None
    ref: bytes | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.step) or not isinstance(self.text, str):
            raise LocalProtocolError("An anonymous answer needs a step number and some text.")
        if is_blank(self.text):
            raise LocalProtocolError("Write something before sending an anonymous answer.")
        if self.tag is not None and not is_text(self.tag, MAX_TAG):
            raise LocalProtocolError(f"A label is 1 to {MAX_TAG} characters.")
        if self.ref is not None and not (
            isinstance(self.ref, bytes) and len(self.ref) == HASH_BYTES
        ):
            raise LocalProtocolError("An anonymous answer is about one item, named by its id.")
        # The text and its label share the slot's room for words (SPEC §13.3).
        label = 0 if self.tag is None else len(self.tag.encode("utf-8"))
        over = len(self.text.encode("utf-8")) + label - TEXT_CAPACITY
        if over > 0:
            raise LocalProtocolError(
                f"This answer is too long for one anonymous slot by {over} characters "
                f"(at most {TEXT_CAPACITY}; letters with accents or in other scripts "
                "count as two to four). Shorten it and send it again."
            )


@dataclass(frozen=True, slots=True)
class AnonymousRating:
    """A position on a rating step's scale, of the step or of one answer
    (``ref``) of a step it is about."""

    step: int
    value: int
    ref: bytes | None = None

    def __post_init__(self) -> None:
        if not (_is_int(self.step) and _is_int(self.value)) or not (
            self.ref is None or (isinstance(self.ref, bytes) and len(self.ref) == HASH_BYTES)
        ):
            raise LocalProtocolError("An anonymous rating needs a step, a value and maybe a ref.")


@dataclass(frozen=True, slots=True)
class AnonymousVote:
    """A vote on an open poll; a newer one on the same poll replaces it."""

    poll: bytes
    choice: str
    reason: str | None = None  # what the concern or block is (SPEC §6.5)

    def __post_init__(self) -> None:
        if not (isinstance(self.poll, bytes) and len(self.poll) == HASH_BYTES):
            raise LocalProtocolError("An anonymous vote needs the poll it is for.")
        if self.choice not in CHOICES:
            raise LocalProtocolError(f"Choose one of: {', '.join(CHOICES)}.")
        if self.reason is not None:
            refused = check_reason({"choice": self.choice, "reason": self.reason})
            if refused is not None:
                raise LocalProtocolError(f"Your vote was not sent: {refused.text}.")


@dataclass(frozen=True, slots=True)
class PauseRequest:
    """Someone asks for a pause; the room sees only that someone did."""


AnonymousRequest = AnonymousAnswer | AnonymousRating | AnonymousVote | PauseRequest


def wire_item(request: AnonymousRequest) -> dict[str, Any]:
    """The item's fields for ``request`` (SPEC §13.3), without the nonce or
    ring signature: what ``check_anonymous_item`` reads and a slot carries."""
    if isinstance(request, AnonymousAnswer):
        answer: dict[str, Any] = {"k": "contrib", "step": request.step, "text": request.text}
        if request.ref is not None:
            answer["ref"] = request.ref
        if request.tag is not None:
            answer["tag"] = request.tag
        return answer
    if isinstance(request, AnonymousRating):
        return {"k": "rating", "step": request.step, "ref": request.ref, "value": request.value}
    if isinstance(request, AnonymousVote):
        vote: dict[str, Any] = {"k": "vote", "poll": request.poll, "choice": request.choice}
        if request.reason is not None:
            vote["reason"] = request.reason
        return vote
    return {"k": "pause"}


__all__ = [
    "TEXT_CAPACITY",
    "AnonymousAnswer",
    "AnonymousRating",
    "AnonymousRequest",
    "AnonymousVote",
    "PauseRequest",
    "wire_item",
]
