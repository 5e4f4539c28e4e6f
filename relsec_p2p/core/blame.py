"""The blame judgement of a failed shuffle round: a replay of the signed transcript.

When a round fails with a NO-GO (or GOs over different transcripts), every
participant sends its evidence: its outer secret, the signed batch it received
as a hop, the final batch if it judged that batch NO-GO, and every signed
statement it saw. ``judge`` replays that evidence and names who broke the
round. This is the accountability of the verifiable shuffle of Brickell and
Shmatikov ("Efficient anonymity-preserving data collection", KDD 2006, §4) as
Dissent v1 runs its blame phase (Corrigan-Gibbs and Ford, "Dissent:
accountable anonymous group messaging", CCS 2010, §3). Normative text:
protocol/SPEC.md §13.2.7; the round that gathers the evidence is core/shuffle_round.py.

Rules of this file:
- ``judge`` is a pure function: no I/O, no clock, no randomness, no round
  state. Its inputs are what every participant holds alike before blame
  (``RoundFacts``), the blame messages (the judge's own included) and a
  signature check; its output is the verdict, member -> reason.
- So every honest laptop that holds the same blame messages names the same
  members, and an honest member is never named for cheating (only, for not
  answering, by the deadline rule).
- An unsigned claim proves nothing: a statement counts as evidence against a
  member only once that member's signature on it verifies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .codec import pack
from .feed import HASH_BYTES
from .onion import (
    SIG_BYTES,
    batch_hash,
    is_bin,
    is_uint,
    label_hash,
    onion_hash,
    open_layer,
    owner_of,
    public_of,
    transcript_hash,
)

BLAME_LABEL = b"relsec/v2/anon-blame\x00"


@dataclass(frozen=True, slots=True)
class Blame:
    """One participant's blame message (its signature already checked)."""

    outer_secret: bytes | None  # None: the sender released its inner key instead
    received: tuple[int, list[bytes], bytes] | None  # (hop, batch, hop's signature)
    final: list[bytes] | None  # the final batch, from a member who judged it NO-GO
    seen: list[list[Any]]  # every signed statement it saw: [kind, who, a, b, signature]


def seen_statements(
    parts: Sequence[bytes],
    keys: Mapping[bytes, tuple[bytes, bytes, bytes]],
    submissions: Mapping[bytes, tuple[bytes, bytes]],
    gos: Mapping[bytes, tuple[bool, bytes, bytes]],
    hops: Mapping[int, tuple[bytes, bytes]],
) -> list[list[Any]]:
    """Every signed statement a member received, as the ``seen`` of its blame
    message, for the others to compare with theirs (a member who signed two
    versions is caught): keys, submissions and GOs by participant, then hops."""
    seen: list[list[Any]] = []
    for who in parts:
        if who in keys:
            inner, outer, signature = keys[who]
            seen.append(["keys", who, inner, outer, signature])
        if who in submissions:
            onion, signature = submissions[who]
            seen.append(["submit", who, onion_hash(onion), b"", signature])
        if who in gos:
            ok, digest, signature = gos[who]
            seen.append(["go", who, ok, digest, signature])
    for hop, (digest, signature) in sorted(hops.items()):
        seen.append(["hop", parts[hop - 1], hop, digest, signature])
    return seen


def blame_digest(secret: bytes | None, received: Any, final: Any, seen: Any) -> bytes:
    """What the signature of a blame message covers (its fields as sent)."""
    return label_hash(BLAME_LABEL, pack([secret, received, final, seen]))


@dataclass(frozen=True, slots=True)
class RoundFacts:
    """What every participant holds before anyone blames: the round id, the
    participants in roster order, their announced per-round public keys
    ``(inner, outer)`` and the onion each submitted."""

    rid: bytes
    parts: tuple[bytes, ...]
    keys: Mapping[bytes, tuple[bytes, bytes]]
    onions: Mapping[bytes, bytes]

    @property
    def n(self) -> int:
        return len(self.parts)


class SignatureCheck(Protocol):
    """True if ``signature`` is ``who``'s signature on the statement ``kind``
    over ``fields`` in this round (``who`` is a participant)."""

    def __call__(self, who: bytes, signature: bytes, kind: str, /, *fields: Any) -> bool: ...


@dataclass(slots=True)
class _Evidence:
    """Signed statements, keyed by (kind, member, index), to spot a member
    who signed two different versions of one statement."""

    facts: RoundFacts
    signed: SignatureCheck
    values: dict[tuple[str, bytes, int], set[bytes]] = field(default_factory=dict)
    members: frozenset[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.members = frozenset(self.facts.parts)

    def record(self, kind: Any, who: Any, a: Any, b: Any, signature: Any) -> None:
        # ``who`` comes from a peer's message: anything but a key (a list, a
        # map) is no claim about anyone, and must not reach a set lookup.
        if not is_bin(who, 32) or who not in self.members or not is_bin(signature, SIG_BYTES):
            return
        fields: tuple[Any, ...]
        if kind == "keys" and is_bin(a, 32) and is_bin(b, 32):
            fields, index, value = (a, b), 0, a + b
        elif kind == "submit" and is_bin(a, HASH_BYTES):
            fields, index, value = (a,), 0, a
        elif kind == "hop" and is_uint(a) and is_bin(b, HASH_BYTES):
            if not 1 <= a <= self.facts.n or self.facts.parts[a - 1] != who:
                return
            fields, index, value = (a, b), a, b
        elif kind == "go" and isinstance(a, bool) and is_bin(b, HASH_BYTES):
            fields, index, value = (a, b), 0, bytes([a]) + b
        else:
            return
        if not self.signed(who, signature, kind, *fields):
            return  # an unsigned claim proves nothing about ``who``
        self.add(kind, who, index, value)

    def add(self, kind: str, who: bytes, index: int, value: bytes) -> None:
        self.values.setdefault((kind, who, index), set()).add(value)

    def equivocators(self) -> set[bytes]:
        return {who for (_, who, _), seen in self.values.items() if len(seen) > 1}


def judge(
    facts: RoundFacts, blames: Mapping[bytes, Blame], signed: SignatureCheck
) -> dict[bytes, str]:
    """Replay the signed transcript and name who broke the round (SPEC §13.2.7),
    as member -> reason; empty when the evidence convicts nobody. It reads only
    the blame messages and ``facts``."""
    culprits: dict[bytes, str] = {}
    for who in facts.parts:
        if who not in blames:
            culprits[who] = "did not answer in the blame phase before the deadline"
    evidence = _Evidence(facts, signed)
    for blame in blames.values():
        for statement in blame.seen:
            if isinstance(statement, list) and len(statement) == 5:
                evidence.record(*statement)
        if blame.received is not None:
            hop, batch, signature = blame.received
            if 1 <= hop <= facts.n:
                shuffler = facts.parts[hop - 1]
                evidence.record("hop", shuffler, hop, batch_hash(batch), signature)
    for who in sorted(evidence.equivocators()):
        culprits[who] = "signed two different versions of one round message"
    for who, blame in blames.items():
        secret = blame.outer_secret
        if secret is not None and public_of(secret) != facts.keys[who][1]:
            culprits[who] = "revealed an outer key that does not match its announcement"
    if not culprits and all(b.outer_secret is not None for b in blames.values()):
        culprits = _replay(facts, blames, evidence)
    return culprits


def _replay(
    facts: RoundFacts, blames: Mapping[bytes, Blame], evidence: _Evidence
) -> dict[bytes, str]:
    """With every outer key known: which submission does not decrypt, which
    hop's output is not a permutation of its peeled input, and otherwise
    who said NO-GO (or GO over another transcript) with no cause."""
    culprits: dict[bytes, str] = {}
    outer: dict[bytes, bytes] = {}
    for who, blame in blames.items():
        assert blame.outer_secret is not None  # noqa: S101 (the caller checked)
        outer[who] = blame.outer_secret
    publics = {who: facts.keys[who][1] for who in facts.parts}
    first = facts.parts[0]
    batch: list[bytes] = []  # the submissions with their first layer peeled
    for who in facts.parts:
        owned = owner_of(open_layer(facts.onions[who], publics[first], outer[first]) or b"")
        if owned is not None and owned[0] != who:
            # A copy of another member's onion (or one made to name another
            # member): evidence against its submitter, never against the hop
            # that refused it (SPEC §13.2.7 rule 4).
            culprits[who] = "submitted a copy of another member's slot"
            continue
        onion: bytes | None = None if owned is None else owned[1]
        if onion is not None:
            batch.append(onion)
        for peer in facts.parts[1:]:
            onion = open_layer(onion, publics[peer], outer[peer]) if onion is not None else None
        if onion is None:
            culprits[who] = "submitted a slot that does not decrypt"
    if culprits:
        return culprits
    hop_hashes = {
        hop: next(iter(values))
        for (kind, _, hop), values in evidence.values.items()
        if kind == "hop"
    }
    for hop in range(1, facts.n + 1):
        shuffler = facts.parts[hop - 1]
        output = _output_of(facts, blames, hop, hop_hashes)
        if output is None:
            if hop < facts.n and hop + 1 in hop_hashes:
                # The next hop signed an output, so it had this input.
                culprits[facts.parts[hop]] = "withheld the batch it received"
            break  # the cascade got no further
        if hop == 1:
            expected = sorted(batch)  # peeled above
        else:
            expected = sorted(
                open_layer(x, publics[shuffler], outer[shuffler]) or b"" for x in batch
            )
        if sorted(output) != expected:
            culprits[shuffler] = "dropped, replaced or duplicated an item"
            break
        batch = output
    if culprits:
        return culprits
    transcript = _evidence_transcript(facts, hop_hashes)
    for (kind, who, _), values in sorted(evidence.values.items()):
        if kind != "go":
            continue
        for value in values:
            ok, over = bool(value[0]), value[1:]
            if not ok:
                culprits[who] = "said NO-GO with no cause"
            elif transcript is not None and over != transcript:
                culprits[who] = "said GO over a transcript the others did not see"
    return culprits


def _output_of(
    facts: RoundFacts, blames: Mapping[bytes, Blame], hop: int, hop_hashes: dict[int, bytes]
) -> list[bytes] | None:
    """Hop ``hop``'s output as the blame messages show it, checked against
    the hash that hop signed."""
    candidates: list[list[bytes]] = []
    if hop < facts.n:
        received = blames[facts.parts[hop]].received
        if received is not None and received[0] == hop:
            candidates.append(received[1])
    else:
        candidates.extend(b.final for b in blames.values() if b.final is not None)
    for batch in candidates:
        if hop_hashes.get(hop) == batch_hash(batch):
            return batch
    return None


def _evidence_transcript(facts: RoundFacts, hop_hashes: dict[int, bytes]) -> bytes | None:
    """The transcript hash a GO should have signed, rebuilt from the evidence."""
    if any(hop not in hop_hashes for hop in range(1, facts.n + 1)):
        return None
    return transcript_hash(
        facts.rid,
        [facts.keys[p] for p in facts.parts],
        [facts.onions[p] for p in facts.parts],
        [hop_hashes[k] for k in range(1, facts.n + 1)],
    )


__all__ = ["Blame", "RoundFacts", "SignatureCheck", "blame_digest", "judge", "seen_statements"]
