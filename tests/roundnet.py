"""Shuffle rounds (core/shuffle_round.py) played by N in-memory members.

Rules of this file: nothing here judges a round; ``RoundNet`` only moves the
messages of one round between its members (FIFO, every one recorded, with a
silenced member's sends dropped and a fake clock), and the modified clients
below each override one honest step of ``Round`` (its public hooks
``build_onion``, ``permute``, ``go_verdict``), or filter what it sends, as an
attacker's laptop would. tests/unit/test_shuffle.py and tests/unit/test_blame.py
build on it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest
from fakenet import IDENTITIES, MID
from nacl import bindings

from relsec_p2p.core.errors import MalformedFrame
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.onion import bind_owner, seal_layer, seal_to_all
from relsec_p2p.core.shuffle import BadRoundMessage, RoundStart, pad
from relsec_p2p.core.shuffle_round import Round

SLOT = 256
TIMEOUT = 1000


class RoundNet:
    """N members running one round; messages delivered FIFO, every one recorded."""

    def __init__(
        self,
        n: int = 4,
        *,
        payloads: list[bytes] | None = None,
        adversaries: dict[int, type[Round]] | None = None,
        identities: list[Identity] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        chosen = identities or IDENTITIES[:n]
        self.ids = sorted(chosen, key=lambda i: i.key)
        self.keys = [i.key for i in self.ids]
        self.start = RoundStart.new(MID, 1, self.keys)
        payloads = payloads or [f"item {k}".encode() for k in range(n)]
        self.payloads = payloads
        adversaries = adversaries or {}
        self.now = 0
        self.rounds: dict[bytes, Round] = {}
        for k, identity in enumerate(self.ids):
            cls = adversaries.get(k, Round)
            self.rounds[identity.key] = cls(
                identity, self.start, pad(payloads[k], SLOT), now_ms=0, timeout_ms=TIMEOUT, rng=rng
            )
        self.queue: list[tuple[bytes, bytes, dict[str, Any]]] = []
        self.sent: list[tuple[bytes, bytes, dict[str, Any]]] = []
        self.silenced: set[bytes] = set()
        self.errors: list[Exception] = []

    def __getitem__(self, k: int) -> Round:
        return self.rounds[self.keys[k]]

    def post(self, src: bytes, sends: list[tuple[bytes, dict[str, Any]]]) -> None:
        for dst, message in sends:
            self.sent.append((src, dst, message))
            if src not in self.silenced:
                self.queue.append((src, dst, message))

    def begin(self) -> None:
        for key, round_ in self.rounds.items():
            self.post(key, round_.begin())

    def pump(self, until: Callable[[], bool] | None = None) -> None:
        while self.queue:
            if until is not None and until():
                return
            src, dst, message = self.queue.pop(0)
            if dst in self.silenced:
                continue
            try:
                sends = self.rounds[dst].receive(src, message, self.now)
            except (BadRoundMessage, MalformedFrame) as error:
                self.errors.append(error)
                continue
            self.post(dst, sends)

    def run(self) -> None:
        self.begin()
        self.pump()

    def expire(self) -> None:
        """Let every deadline pass (repeatedly: blame has a deadline too)."""
        for _ in range(4):
            self.now += TIMEOUT + 1
            for key, round_ in self.rounds.items():
                if key not in self.silenced:
                    self.post(key, round_.tick(self.now))
            self.pump()

    def honest(self, *bad: int) -> list[Round]:
        return [self[k] for k in range(len(self.keys)) if k not in bad]

    def kinds_sent(self, kind: str) -> list[tuple[bytes, dict[str, Any]]]:
        return [(src, m) for src, _, m in self.sent if m["t"] == kind]


# --- modified clients -----------------------------------------------------------------------


class Liar(Round):
    """Says NO-GO whatever the final batch holds."""

    def go_verdict(self, final: list[bytes]) -> bool:
        return False


def cheating_shuffler(action: str, victim: int = 0) -> type[Round]:
    """A hop that drops, duplicates or replaces one item of its output."""

    class Cheat(Round):
        def permute(self, items: list[bytes]) -> list[bytes]:
            items = super().permute(items)
            if action == "drop":
                return items[1:]
            if action == "duplicate":
                items[victim] = items[(victim + 1) % len(items)]
            elif action == "replace":
                # A well-formed item of the cheater's own, sealed for the hops
                # still to come: it passes every hop and only its owner's GO
                # check can notice the missing item.
                inner_keys = [self.keys[p][0] for p in self.parts]
                extra = seal_to_all(pad(b"planted", self.slot), inner_keys)
                for peer in reversed(self.parts[self.index + 1 :]):
                    extra = seal_layer(extra, self.keys[peer][1])
                items[victim] = extra
            return items

    return Cheat


def garbage_layer(layer: int) -> type[Round]:
    """Submits an onion whose layer for hop ``layer`` (0-based) is random bytes."""

    class Garbage(Round):
        def build_onion(self) -> tuple[bytes, bytes]:
            inner, _ = super().build_onion()
            onion = inner
            for peer in reversed(self.parts[layer + 1 :]):
                onion = seal_layer(onion, self.keys[peer][1])
            owner = 32 if layer == 0 else 0  # the first layer also seals the owner's key
            onion = os.urandom(len(onion) + 48 + owner)  # what hop ``layer`` cannot open
            for peer in reversed(self.parts[1:layer]):
                onion = seal_layer(onion, self.keys[peer][1])
            if layer > 0:
                onion = seal_layer(bind_owner(self.me, onion), self.keys[self.parts[0]][1])
            return inner, onion

    return Garbage


def withholding(kind: str) -> type[Round]:
    """Sends every message of the round but those of type ``kind``."""

    class Withholder(Round):
        def begin(self) -> list[tuple[bytes, dict[str, Any]]]:
            return [(p, m) for p, m in super().begin() if m["t"] != kind]

        def receive(
            self, sender: bytes, message: dict[str, Any], now_ms: int
        ) -> list[tuple[bytes, dict[str, Any]]]:
            return [(p, m) for p, m in super().receive(sender, message, now_ms) if m["t"] != kind]

        def tick(self, now_ms: int) -> list[tuple[bytes, dict[str, Any]]]:
            return [(p, m) for p, m in super().tick(now_ms) if m["t"] != kind]

    return Withholder


def record_round_keys(monkeypatch: pytest.MonkeyPatch) -> dict[bytes, bytes]:
    """Every per-round key pair made from now on, secret by public key: what
    a test needs to show a secret never reached the wire (the round keeps its
    secrets to itself; its public keys are in ``Round.keys``)."""
    made: dict[bytes, bytes] = {}
    original = bindings.crypto_box_seed_keypair

    def recording(seed: bytes) -> tuple[bytes, bytes]:
        public, secret = original(seed)
        made[public] = secret
        return public, secret

    monkeypatch.setattr(bindings, "crypto_box_seed_keypair", recording)
    return made
