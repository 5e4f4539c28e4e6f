"""Refusals carry stable codes (core/refusals.py) from the rules to the screen.

The fold's phrases are informative and may be reworded; what a front end
keys on is the ``Refusal`` code. These tests hold the three ends together:
every code is given by some rule, the session raises it on the exception,
and the controller words it by code (app/controller.py), never by text.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
from collections.abc import Callable
from typing import Any, cast

import pytest
from fakenet import TEXT, FakeNetwork

import relsec_p2p.core
from relsec_p2p.app import controller
from relsec_p2p.app.controller import AS_THE_RULE_SAYS, FRIENDLY, Meeting, refusal_sentence
from relsec_p2p.core.errors import EntryRefused, LocalProtocolError, RelsecError
from relsec_p2p.core.refusals import Refusal, Refused
from relsec_p2p.core.requests import AnonymousRequest
from relsec_p2p.net.node import Node

CORE = pathlib.Path(__file__).resolve().parents[2] / "relsec_p2p" / "core"
# Where refusals are made: the rules, the field lookups they share, and the
# session's own check before co-signing.
GIVERS = ["rules.py", "poll_rules.py", "anon_rules.py", "fields.py", "session.py"]


def _codes_named_in(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Refusal"
    }


def test_every_code_is_given_by_some_rule() -> None:
    named = set().union(*(_codes_named_in(CORE / name) for name in GIVERS))
    assert named == {code.name for code in Refusal}


def test_codes_are_stable_snake_case_words() -> None:
    for code in Refusal:
        assert code.value == code.name.lower(), code


def _error_codes(cls: type[RelsecError]) -> set[str]:
    found = {cls.code}
    for sub in cls.__subclasses__():
        found |= _error_codes(sub)
    return found


def test_no_refusal_code_is_also_an_error_code() -> None:
    """``EntryRefused.code`` is the refusal: it must not read as another error
    (a remote ``malformed``, a link's ``not_a_member``) to a script or a log."""
    for module in pkgutil.iter_modules(relsec_p2p.core.__path__, "relsec_p2p.core."):
        importlib.import_module(module.name)
    importlib.import_module("relsec_p2p.net.link")
    errors = _error_codes(RelsecError)
    assert {"malformed", "not_a_member", "bad_join_code", "local"} <= errors
    assert errors.isdisjoint(code.value for code in Refusal)


def test_every_code_is_worded_by_the_controller_or_deliberately_as_the_rule_says() -> None:
    assert all(isinstance(code, Refusal) for code in FRIENDLY)
    assert set(FRIENDLY).isdisjoint(AS_THE_RULE_SAYS)
    assert set(FRIENDLY) | AS_THE_RULE_SAYS == set(Refusal)
    for text in FRIENDLY.values():
        assert text[:1].isupper() and text.endswith("."), text


def test_the_exception_carries_the_code_and_keeps_the_text() -> None:
    error = EntryRefused(Refused(Refusal.NOT_FACILITATOR, "only the facilitator may do this"))
    assert isinstance(error, LocalProtocolError)
    assert error.code is Refusal.NOT_FACILITATOR
    assert str(error) == error.text == "only the facilitator may do this"


def test_the_session_raises_the_rules_code() -> None:
    net = FakeNetwork.meeting(3)
    bob = net[1]
    with pytest.raises(EntryRefused) as refused:
        bob.open_step(TEXT)
    assert refused.value.code is Refusal.NOT_FACILITATOR
    assert str(refused.value) == "only the facilitator may do this"
    with pytest.raises(EntryRefused) as refused:
        bob.lower_hand()
    assert refused.value.code is Refusal.HAND_NOT_RAISED
    with pytest.raises(EntryRefused) as refused:
        bob.sign_tally(bytes(32))
    assert refused.value.code is Refusal.POLL_NOT_CLOSED


class RefusingNode:
    """Just enough of a ``Node`` for the controller's refusal path."""

    def __init__(self, error: LocalProtocolError) -> None:
        self.error = error

    @staticmethod
    def clock() -> int:
        return 0

    def perform(self, action: Callable[..., Any]) -> None:
        raise self.error

    def submit_anonymous(self, request: AnonymousRequest) -> None:
        raise self.error


def _meeting(error: LocalProtocolError) -> Meeting:
    return Meeting(cast(Node, RefusingNode(error)))


def test_the_controller_words_refusals_by_code_not_by_text() -> None:
    reworded = EntryRefused(Refused(Refusal.NOT_FACILITATOR, "facilitators only, please"))
    assert _meeting(reworded).next_step() == "Only the facilitator can do that."
    # The old phrase without the code is just an error: worded as it says.
    plain = LocalProtocolError("only the facilitator may do this")
    assert _meeting(plain).next_step() == "Only the facilitator may do this."
    waiting = EntryRefused(Refused(Refusal.NOBODY_WAITING, "no queue"))
    assert _meeting(waiting).next_speaker() == FRIENDLY[Refusal.NOBODY_WAITING]


def test_a_code_worded_as_the_rule_says_becomes_a_sentence_of_its_text() -> None:
    missing = EntryRefused(Refused(Refusal.NO_SUCH_POLL, "no such poll"))
    assert Refusal.NO_SUCH_POLL in AS_THE_RULE_SAYS
    assert refusal_sentence(missing) == "No such poll."
    anonymous = EntryRefused(
        Refused(Refusal.NO_SUCH_POLL, "This cannot be sent anonymously: no such poll.")
    )
    assert _meeting(anonymous).ask_pause() == "This cannot be sent anonymously: no such poll."
    assert controller.sentence("") == "That did not work."
