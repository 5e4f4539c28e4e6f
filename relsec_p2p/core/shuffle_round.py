"""One member's side of one anonymous shuffle round (``Round``), sans-IO.

The round of the verifiable shuffle of Brickell and Shmatikov ("Efficient
anonymity-preserving data collection", KDD 2006, §4) as Dissent v1 runs it
(Corrigan-Gibbs and Ford, CCS 2010, §3); core/shuffle.py has the construction
in brief and the round's vocabulary, core/onion.py the layers of a slot,
core/blame.py the judgement that names a cheater. Normative text:
protocol/SPEC.md §13.2.

Rules of this file:
- No I/O and no clock: messages (dicts) in, messages out, and the caller passes
  the time in milliseconds for deadlines. Every statement a member makes in a
  round is Ed25519-signed, so the transcript can be replayed to name a cheater.
- A member releases at most ONE of its two per-round secret keys, ever: the
  inner key after a unanimous GO, or the outer key in the blame phase, never
  both (both together would link every slot to its sender).
- A round that misses a deadline before the inner keys are out aborts and
  releases nothing; per-round keys die with the round.
- The honest steps are public hooks (``build_onion``, ``permute``, ``go_verdict``;
  ``sign`` and ``message`` make statements): tests play cheating members by
  overriding them (tests/roundnet.py); nothing in the product does.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .blame import Blame, RoundFacts, blame_digest, judge, seen_statements
from .errors import LocalProtocolError, MalformedFrame, RemoteProtocolError
from .feed import HASH_BYTES
from .identity import KEY_BYTES, Identity
from .onion import (
    SIG_BYTES,
    batch_hash,
    bind_owner,
    inner_share,
    inner_size,
    is_bin,
    is_uint,
    keypair,
    onion_hash,
    onion_size,
    open_layer,
    open_with_shares,
    owner_of,
    public_of,
    seal_layer,
    seal_to_all,
    transcript_hash,
    usable_public,
)
from .shuffle import (
    ANON_CONTEXT,
    DEFAULT_TIMEOUT_MS,
    Aborted,
    BadRoundMessage,
    Blamed,
    Outcome,
    Outgoing,
    Phase,
    Released,
    RoundStart,
    Shuffler,
    item_id,
    release_digest,
    require_fields,
    statement,
    unpad,
)

# --- the round ---------------------------------------------------------------------------


class Round:
    """One member's side of one shuffle round.

    ``begin()`` returns the first messages; ``receive()`` and ``tick()`` take a
    message or the time and return what to send. ``outcome`` is set once the
    round is over. Sends are ``(peer key, message map)``; the caller packs them.
    """

    def __init__(
        self,
        identity: Identity,
        start: RoundStart,
        payload: bytes | Callable[[], bytes],
        *,
        slot: int | None = None,
        now_ms: int,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        rng: Shuffler | None = None,
    ) -> None:
        if identity.key not in start.parts:
            raise LocalProtocolError("this laptop is not a participant of the round")
        self.identity = identity
        self.me = identity.key
        self.start = start
        self.mid = start.mid
        self.rid = start.rid
        self.parts = start.parts
        self.n = len(start.parts)
        self.index = self.parts.index(self.me)
        # The slot may be built later (``prepare``): making it costs a ring
        # signature, better spent while the others' keys are on their way.
        if isinstance(payload, bytes):
            self.slot, self._payload, self._make = len(payload), payload, None
        elif slot is None:
            raise LocalProtocolError("a slot built later needs its size now")
        else:
            self.slot, self._payload, self._make = slot, b"", payload
        self._timeout = timeout_ms
        self.deadline = now_ms + timeout_ms
        self._rng: Shuffler = rng or secrets.SystemRandom()
        self.phase = Phase.KEYS
        self._now = now_ms
        self.timeline: list[tuple[str, int]] = [(Phase.KEYS.value, now_ms)]
        self.outcome: Outcome | None = None
        self._verify_keys = {key: VerifyKey(key) for key in self.parts}
        self._inner_public, self._inner_secret = keypair()
        self._outer_public, self._outer_secret = keypair()
        self._released_key: str | None = None  # "inner" or "outer": never both
        self._my_inner = b""
        self._began = False
        self._hopped = False
        self._my_go: tuple[bool, bytes] | None = None
        self.keys: dict[bytes, tuple[bytes, bytes, bytes]] = {}
        self.submissions: dict[bytes, tuple[bytes, bytes]] = {}
        self.hops: dict[int, tuple[bytes, bytes]] = {}  # hop -> (batch hash, signature)
        self.batches: dict[int, list[bytes]] = {}  # hop -> full batch (my input, the final)
        self.gos: dict[bytes, tuple[bool, bytes, bytes]] = {}
        self.reveals: dict[bytes, tuple[bytes, list[bytes]]] = {}  # inner secret, shares
        self.acks: dict[bytes, tuple[bytes, bytes]] = {}
        self.blames: dict[bytes, Blame] = {}
        self.opened: tuple[bytes, ...] | None = None
        self._ids: tuple[bytes, ...] = ()
        self._undecodable = 0
        self._early_reveal: dict[bytes, tuple[bytes, list[bytes]]] = {}
        self._answered_blame = False

    # -- public face ---------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.outcome is None

    @property
    def released_inner(self) -> bool:
        """True once this laptop has sent its inner key: from then on the
        round may release, so its slot must not be reused."""
        return self._released_key == "inner"

    @property
    def holds_keys(self) -> bool:
        """True while this laptop holds a per-round secret key (they die with the round)."""
        return self._inner_secret != b"" or self._outer_secret != b""

    @property
    def prepared(self) -> bool:
        return self._make is None

    def prepare(self) -> None:
        """Build this laptop's slot now (it is built when first needed otherwise)."""
        if self._make is not None:
            payload = self._make()
            if len(payload) != self.slot:
                raise LocalProtocolError("the slot built for the round has the wrong size")
            self._payload, self._make = payload, None

    def begin(self) -> list[Outgoing]:
        if self._began:
            raise LocalProtocolError("a round begins once")
        self._began = True
        signature = self.sign("keys", self._inner_public, self._outer_public)
        self.keys[self.me] = (self._inner_public, self._outer_public, signature)
        message = self.message("anon.keys", i=self._inner_public, o=self._outer_public, g=signature)
        return [*self._to_others(message), *self._advance()]

    def receive(self, sender: bytes, message: dict[str, Any], now_ms: int) -> list[Outgoing]:
        """Take one message of this round from the linked participant ``sender``."""
        if self.outcome is not None:
            return []
        if sender not in self._verify_keys or sender == self.me:
            raise BadRoundMessage("a message from someone who is not in this round")
        kind = message.get("t")
        handler = _HANDLERS.get(str(kind))
        if handler is None:
            raise MalformedFrame(f"unknown round message {kind!r}")
        self._now = now_ms
        sends = handler(self, sender, message)
        self.deadline = now_ms + self._timeout
        return [*sends, *self._advance()]

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Check the deadline; past it, abort (or, in blame, judge with what came)."""
        if self.outcome is not None or now_ms < self.deadline:
            return []
        self._now = now_ms
        missing = self.waiting_for()
        if self.phase is Phase.BLAME:
            self._judge()
            return []
        if self.phase in (Phase.REVEAL, Phase.ACK):
            # Inner keys are out but not all of them (or not every release
            # signature): the log gets nothing. Telling the others changes
            # nothing for them, so no message.
            self._finish(Aborted(self.start, missing))
            return []
        signature = self.sign("abort", list(missing))
        self._finish(Aborted(self.start, missing))
        return self._to_others(self.message("anon.abort", m=list(missing), g=signature))

    def waiting_for(self) -> tuple[bytes, ...]:
        """The participants this laptop is waiting for in the current phase."""
        if self.phase is Phase.KEYS:
            return tuple(p for p in self.parts if p not in self.keys)
        if self.phase is Phase.SUBMIT:
            return tuple(p for p in self.parts if p not in self.submissions)
        if self.phase is Phase.SHUFFLE:
            # Only the leader follows the cascade hop by hop; the others know
            # that the batch has not reached them, not who holds it.
            if self.index != 0:
                return ()
            for hop in range(1, self.n + 1):
                if hop not in self.hops:
                    return (self.parts[hop - 1],)
            return (self.parts[-1],)  # the final batch never came
        table: dict[Phase, set[bytes]] = {
            Phase.GO: set(self.gos),
            Phase.REVEAL: set(self.reveals),
            Phase.ACK: set(self.acks),
            Phase.BLAME: set(self.blames),
        }
        arrived = table.get(self.phase)
        if arrived is None:
            return ()
        return tuple(p for p in self.parts if p not in arrived)

    # -- building blocks ---------------------------------------------------------------

    def sign(self, kind: str, *fields: Any) -> bytes:
        """This member's signature on one statement of this round (SPEC §13.2)."""
        return self.identity.sign(ANON_CONTEXT, statement(kind, self.mid, self.rid, *fields))

    def _check(self, who: bytes, signature: Any, kind: str, *fields: Any) -> bytes:
        if not is_bin(signature, SIG_BYTES):
            raise MalformedFrame("a round signature is 64 bytes")
        body = ANON_CONTEXT + statement(kind, self.mid, self.rid, *fields)
        try:
            self._verify_keys[who].verify(body, signature)
        except (BadSignatureError, ValueError) as exc:
            raise BadRoundMessage(f"bad signature on a round {kind}") from exc
        return bytes(signature)

    def _valid(self, who: bytes, signature: bytes, kind: str, *fields: Any) -> bool:
        try:
            self._check(who, signature, kind, *fields)
        except RemoteProtocolError:
            return False
        return True

    def message(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A message of this round: its type, the meeting, the round, ``fields``."""
        return {"t": kind, "mid": self.mid, "r": self.rid, **fields}

    def _to_others(self, message: dict[str, Any]) -> list[Outgoing]:
        return [(peer, message) for peer in self.parts if peer != self.me]

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.timeline.append((phase.value, self._now))  # when, never what

    def _finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self._enter(Phase.DONE)
        # Per-round keys die with the round (the outer one is already out if
        # we blamed; the inner one if we released).
        self._inner_secret = b""
        self._outer_secret = b""

    # -- the honest steps (the hooks a modified client overrides) ------------------------

    def build_onion(self) -> tuple[bytes, bytes]:
        """(inner ciphertext, outer onion) of this laptop's slot; the first
        outer layer also seals this laptop's key (SPEC §13.2.4)."""
        self.prepare()
        inner = seal_to_all(self._payload, [self.keys[peer][0] for peer in self.parts])
        outer = inner
        for peer in reversed(self.parts[1:]):
            outer = seal_layer(outer, self.keys[peer][1])
        return inner, seal_layer(bind_owner(self.me, outer), self.keys[self.parts[0]][1])

    def permute(self, items: list[bytes]) -> list[bytes]:
        """This hop's secret permutation of the items it peeled."""
        self._rng.shuffle(items)
        return items

    def go_verdict(self, final: list[bytes]) -> bool:
        """GO (True) if the final batch is whole and holds this laptop's item once."""
        return (
            len(final) == self.n
            and len(set(final)) == self.n
            and all(len(x) == inner_size(self.slot) for x in final)
            and final.count(self._my_inner) == 1
        )

    # -- handlers (one per message type) -------------------------------------------------

    def _on_keys(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "i", "o", "g")
        inner, outer = message["i"], message["o"]
        if not (is_bin(inner, 32) and is_bin(outer, 32)):
            raise MalformedFrame("anon.keys has i, o: bin32")
        signature = self._check(who, message["g"], "keys", inner, outer)
        if not (usable_public(inner) and usable_public(outer)):
            raise BadRoundMessage("a per-round key of low order")
        if who in self.keys:
            if self.keys[who][:2] != (inner, outer):
                raise BadRoundMessage("a second, different key announcement")
            return []
        self.keys[who] = (inner, outer, signature)
        return []

    def _on_submit(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "o", "g")
        onion = message["o"]
        if not is_bin(onion):
            raise MalformedFrame("anon.submit has o: bin")
        if len(onion) != onion_size(self.slot, self.n):
            raise BadRoundMessage("a submission of the wrong size")
        signature = self._check(who, message["g"], "submit", onion_hash(onion))
        if who in self.submissions:
            if self.submissions[who][0] != onion:
                raise BadRoundMessage("a second, different submission")
            return []
        self.submissions[who] = (onion, signature)
        return []

    def _on_hop(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "k", "b", "h", "g", "c")
        hop, batch, digest, chain = message["k"], message["b"], message["h"], message["c"]
        if not (
            is_uint(hop)
            and 1 <= hop <= self.n
            and is_bin(digest, HASH_BYTES)
            and (batch is None or _batch_shape(batch, self.n))
            and isinstance(chain, list)
            and len(chain) < hop
            and all(
                isinstance(x, list)
                and len(x) == 2
                and is_bin(x[0], HASH_BYTES)
                and is_bin(x[1], SIG_BYTES)
                for x in chain
            )
        ):
            raise MalformedFrame("anon.hop has k, b: [bin] or nil, h: bin32, c: [[h, g]]")
        if self.parts[hop - 1] != who:
            raise BadRoundMessage("a hop sent by someone other than that hop's shuffler")
        if batch is not None:
            if batch_hash(batch) != digest:
                raise BadRoundMessage("a hop batch that does not match its hash")
            if hop not in (self.index, self.n):
                raise BadRoundMessage("a full batch sent to someone who does not need it")
            if len(chain) != hop - 1:
                raise BadRoundMessage("a batch comes with every earlier hop's signed hash")
        # The earlier hops' signed hashes ride along with the batch, so every
        # participant ends with all of them without N^2 progress messages.
        headers = [(k, h, g) for k, (h, g) in enumerate(chain, start=1)]
        headers.append((hop, digest, message["g"]))
        for k, h, g in headers:
            self._check(self.parts[k - 1], g, "hop", k, h)
            if k in self.hops and self.hops[k][0] != h:
                raise BadRoundMessage("a second, different hop output")
        for k, h, g in headers:
            self.hops[k] = (h, bytes(g))
        if batch is not None:
            self.batches[hop] = list(batch)
        return []

    def _on_go(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "ok", "h", "g")
        ok, digest = message["ok"], message["h"]
        if not (isinstance(ok, bool) and is_bin(digest, HASH_BYTES)):
            raise MalformedFrame("anon.go has ok: bool, h: bin32")
        signature = self._check(who, message["g"], "go", ok, digest)
        if who in self.gos:
            if self.gos[who][:2] != (ok, digest):
                raise BadRoundMessage("a second, different GO")
            return []
        self.gos[who] = (ok, digest, signature)
        return []

    def _on_reveal(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "s", "x", "g")
        secret, shares = message["s"], message["x"]
        if not (
            is_bin(secret, 32)
            and isinstance(shares, list)
            and len(shares) == self.n
            and all(is_bin(x, 32) for x in shares)
        ):
            raise MalformedFrame("anon.reveal has s: bin32, x: [bin32] (one per slot)")
        self._check(who, message["g"], "reveal", secret, shares)
        if who in self.keys and public_of(secret) != self.keys[who][0]:
            raise BadRoundMessage("a revealed inner key that does not match its announcement")
        self._early_reveal[who] = (secret, list(shares))
        return []

    def _on_ack(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "d", "g")
        digest = message["d"]
        if not is_bin(digest, HASH_BYTES):
            raise MalformedFrame("anon.ack has d: bin32")
        signature = self._check(who, message["g"], "release", digest)
        self.acks.setdefault(who, (digest, signature))
        return []

    def _on_blame(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "s", "in", "fin", "seen", "g")
        secret, received, final, seen = message["s"], message["in"], message["fin"], message["seen"]
        if not (
            (secret is None or is_bin(secret, 32))
            and isinstance(seen, list)
            and len(seen) <= 8 * self.n
            and all(isinstance(x, list) and len(x) == 5 and isinstance(x[0], str) for x in seen)
            and (final is None or _batch_shape(final, self.n))
        ):
            raise MalformedFrame("anon.blame has s, in, fin, seen: [[kind, who, a, b, sig]]")
        taken: tuple[int, list[bytes], bytes] | None = None
        if received is not None:
            if not (
                isinstance(received, list)
                and len(received) == 3
                and is_uint(received[0])
                and _batch_shape(received[1], self.n)
                and is_bin(received[2], SIG_BYTES)
            ):
                raise MalformedFrame("anon.blame in is [hop, [bin], sig]")
            taken = (received[0], list(received[1]), received[2])
        body = blame_digest(secret, received, final, seen)
        self._check(who, message["g"], "blame", body)
        self.blames.setdefault(who, Blame(secret, taken, final, seen))
        if self._released_key == "inner" and not self._answered_blame:
            # Someone is blaming while this laptop saw a unanimous GO: show
            # the GOs it saw, which convict whoever said both GO and NO-GO.
            return self._blame_message(with_keys=False)
        return []

    def _on_abort(self, who: bytes, message: dict[str, Any]) -> list[Outgoing]:
        require_fields(message, "r", "m", "g")
        missing = message["m"]
        if not (isinstance(missing, list) and all(is_bin(k, KEY_BYTES) for k in missing)):
            raise MalformedFrame("anon.abort has m: [bin32]")
        self._check(who, message["g"], "abort", missing)
        if self._released_key is None and self.phase is not Phase.BLAME:
            self._finish(Aborted(self.start, self.waiting_for(), by=who))
        return []

    # -- progress ------------------------------------------------------------------------

    def _advance(self) -> list[Outgoing]:
        sends: list[Outgoing] = []
        while self.outcome is None:
            step = self._step()
            if step is None:
                break
            sends.extend(step)
        return sends

    def _step(self) -> list[Outgoing] | None:
        """One transition, or None if the round must wait for a message."""
        if self.phase is Phase.KEYS and len(self.keys) == self.n:
            self._my_inner, onion = self.build_onion()
            signature = self.sign("submit", onion_hash(onion))
            self.submissions[self.me] = (onion, signature)
            self._enter(Phase.SUBMIT)
            return self._to_others(self.message("anon.submit", o=onion, g=signature))
        if self.phase is Phase.SUBMIT and len(self.submissions) == self.n:
            self.batches[0] = [self.submissions[p][0] for p in self.parts]
            self._enter(Phase.SHUFFLE)
            return []
        if self.phase is Phase.SHUFFLE:
            if self._released_key is None and any(not ok for ok, _, _ in self.gos.values()):
                return self._enter_blame()
            if not self._hopped and self.index in self.batches:
                return self._hop()
            if self.n in self.batches and all(k in self.hops for k in range(1, self.n + 1)):
                return self._send_go(self.go_verdict(self.batches[self.n]))
            return None
        if self.phase is Phase.GO:
            if any(not ok for ok, _, _ in self.gos.values()):
                return self._enter_blame()
            if len(self.gos) < self.n:
                return None
            if {digest for _, digest, _ in self.gos.values()} != {self._transcript()}:
                return self._enter_blame()
            return self._reveal()
        if self.phase is Phase.REVEAL:
            for who, (secret, shares) in self._early_reveal.items():
                if who not in self.reveals and public_of(secret) == self.keys[who][0]:
                    self.reveals[who] = (secret, shares)
            if len(self.reveals) < self.n:
                return None
            return self._open_and_ack()
        if self.phase is Phase.ACK and len(self.acks) == self.n:
            self._settle_release()
            return []
        if self.phase is Phase.BLAME and len(self.blames) == self.n:
            self._judge()
            return []
        return None

    def _hop(self) -> list[Outgoing]:
        """Peel my outer layer from every item of my input, shuffle, sign, pass on."""
        self._hopped = True
        self.timeline.append(("hop", self._now))
        hop = self.index + 1
        batch = self.batches[self.index]
        size = onion_size(self.slot, self.n, self.index)
        peeled: list[bytes] = []
        fine = len(batch) == self.n and len(set(batch)) == self.n
        for position, item in enumerate(batch if fine else ()):
            if len(item) != size:
                fine = False
                break
            opened = open_layer(item, self._outer_public, self._outer_secret)
            if opened is not None and self.index == 0:
                # The first layer names its submitter: a copied onion names
                # someone else (the blame replay convicts the copier).
                owned = owner_of(opened)
                opened = owned[1] if owned and owned[0] == self.parts[position] else None
            if opened is None:
                fine = False
                break
            peeled.append(opened)
        if not fine:
            # A broken input: say NO-GO now; the blame replay finds out who.
            return self._send_go(False)
        output = self.permute(peeled)
        digest = batch_hash(output)
        signature = self.sign("hop", hop, digest)
        self.hops[hop] = (digest, signature)
        self.batches[hop] = list(output)
        chain = [[*self.hops[k]] for k in range(1, hop)]
        full = self.message("anon.hop", k=hop, b=list(output), h=digest, g=signature, c=chain)
        if hop == self.n:
            return self._to_others(full)
        sends: list[Outgoing] = [(self.parts[hop], full)]
        if hop > 1 and self.parts[hop] != self.parts[0]:
            # The leader follows the cascade, to name a hop that stalls.
            progress = self.message("anon.hop", k=hop, b=None, h=digest, g=signature, c=[])
            sends.append((self.parts[0], progress))
        return sends

    def _transcript(self) -> bytes:
        """Everything every participant must have seen alike before any inner
        key goes out: keys, submissions and every hop's output hash."""
        return transcript_hash(
            self.rid,
            [self.keys[p][:2] for p in self.parts],
            [self.submissions[p][0] for p in self.parts],
            [self.hops[k][0] for k in range(1, self.n + 1)],
        )

    def _send_go(self, ok: bool) -> list[Outgoing]:
        digest = self._transcript() if ok else bytes(HASH_BYTES)
        signature = self.sign("go", ok, digest)
        self._my_go = (ok, digest)
        self.gos[self.me] = (ok, digest, signature)
        sends = self._to_others(self.message("anon.go", ok=ok, h=digest, g=signature))
        if not ok:
            return [*sends, *self._enter_blame()]
        self._enter(Phase.GO)
        return sends

    def _reveal(self) -> list[Outgoing]:
        """Release the inner key, with this laptop's share for every item of
        the final batch (so no one has to compute N^2 shares)."""
        if self._released_key is not None:
            raise LocalProtocolError("a round releases at most one of its two keys")
        self._released_key = "inner"
        secret = self._inner_secret
        shares = [inner_share(secret, item) for item in self.batches[self.n]]
        self.reveals[self.me] = (secret, shares)
        self._enter(Phase.REVEAL)
        signature = self.sign("reveal", secret, shares)
        sends = self._to_others(self.message("anon.reveal", s=secret, x=shares, g=signature))
        if any(who != self.me for who in self.blames):
            sends.extend(self._blame_message(with_keys=False))
        return sends

    def _open_and_ack(self) -> list[Outgoing]:
        """Open every item of the final batch; a share that does not work is
        recomputed from its sender's inner secret (so a wrong share costs time,
        never an item)."""
        publics = [self.keys[p][0] for p in self.parts]
        items: list[bytes] = []
        undecodable = 0
        for position, sealed in enumerate(self.batches[self.n]):
            shares = [self.reveals[p][1][position] for p in self.parts]
            opened = open_with_shares(sealed, publics, shares)
            if opened is None:
                exact = [inner_share(self.reveals[p][0], sealed) for p in self.parts]
                if exact != shares:
                    opened = open_with_shares(sealed, publics, exact)
            content = None if opened is None else unpad(opened)
            if content is None:
                undecodable += 1
            elif content:
                items.append(content)
        by_id = {item_id(item): item for item in items}
        ids = sorted(by_id)
        self.opened = tuple(by_id[i] for i in ids)
        self._ids = tuple(ids)
        self._undecodable = undecodable
        digest = release_digest(ids)
        signature = self.sign("release", digest)
        self.acks[self.me] = (digest, signature)
        self._enter(Phase.ACK)
        return self._to_others(self.message("anon.ack", d=digest, g=signature))

    def _settle_release(self) -> None:
        mine = self.acks[self.me][0]
        wrong = {who: "signed a release of items other than those the round opened"
                 for who, (digest, _) in self.acks.items() if digest != mine}  # fmt: skip
        if wrong:
            self._finish(Blamed(self.start, wrong))
            return
        assert self.opened is not None  # noqa: S101 (ACK follows opening)
        certificate = tuple(self.acks[p][1] for p in self.parts)
        timeline = (*self.timeline, ("released", self._now))
        self._finish(
            Released(self.start, self.opened, self._ids, certificate, self._undecodable, timeline)
        )

    # -- blame ---------------------------------------------------------------------------

    def _enter_blame(self) -> list[Outgoing]:
        if self._released_key is not None or self.phase in (Phase.BLAME, Phase.DONE):
            return []
        self._released_key = "outer"
        self._enter(Phase.BLAME)
        return self._blame_message(with_keys=True)

    def _blame_message(self, *, with_keys: bool) -> list[Outgoing]:
        """The evidence this laptop holds: its outer key (if it is blaming),
        the signed batch it received as a hop, the final batch if it judged
        that batch NO-GO, and every signed statement it saw."""
        self._answered_blame = True
        secret = self._outer_secret if with_keys else None
        received: list[Any] | None = None
        if with_keys and self.index >= 1 and self.index in self.batches and self.index in self.hops:
            received = [self.index, list(self.batches[self.index]), self.hops[self.index][1]]
        final: list[bytes] | None = None
        if with_keys and self._my_go == (False, bytes(HASH_BYTES)) and self.n in self.batches:
            final = list(self.batches[self.n])
        seen = seen_statements(self.parts, self.keys, self.submissions, self.gos, self.hops)
        body = blame_digest(secret, received, final, seen)
        signature = self.sign("blame", body)
        taken = None if received is None else (received[0], received[1], received[2])
        self.blames[self.me] = Blame(secret, taken, final, seen)
        return self._to_others(
            self.message(
                "anon.blame", s=secret, fin=final, seen=seen, g=signature, **{"in": received}
            )
        )

    def facts(self) -> RoundFacts:
        """What every participant holds alike once the cascade runs (the
        announced keys and the submissions): with the blame messages, the
        input of the blame judgement."""
        return RoundFacts(
            self.rid,
            self.parts,
            {who: (inner, outer) for who, (inner, outer, _) in self.keys.items()},
            {who: onion for who, (onion, _) in self.submissions.items()},
        )

    def _judge(self) -> None:
        """Replay the signed transcript and name who broke the round (SPEC
        §13.2.7): ``blame.judge`` on the blame messages, this laptop's own included."""
        self._finish(Blamed(self.start, judge(self.facts(), self.blames, self._valid)))


def _batch_shape(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) <= 2 * n and all(is_bin(x) for x in value)


_HANDLERS = {
    "anon.keys": Round._on_keys,
    "anon.submit": Round._on_submit,
    "anon.hop": Round._on_hop,
    "anon.go": Round._on_go,
    "anon.reveal": Round._on_reveal,
    "anon.ack": Round._on_ack,
    "anon.blame": Round._on_blame,
    "anon.abort": Round._on_abort,
}


__all__ = ["Round"]
