#!/usr/bin/env python3
"""Regenerate the protocol test vectors (protocol/vectors/*.json) from the code.

Everything that could vary is fixed: identity seeds, meeting ids, timestamps
and Lamport clocks. Ed25519 (RFC 8032) and BLAKE2b are deterministic, so
``python protocol/generate_vectors.py`` rewrites byte-identical files unless
the implementation's output changed. tests/unit/test_vectors.py checks the
implementation against the stored bytes, and this script against the files.

Run it after an intended change to the wire format or the fold, review the
diff of protocol/vectors/, and say in protocol/SPEC.md what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import random
import sys
from collections.abc import Callable
from typing import Any

import msgpack
from nacl import bindings

from relsec_p2p.core import anon, onion, ring, shuffle, shuffle_round
from relsec_p2p.core import rules as fold_rules
from relsec_p2p.core.codec import ENTRY_LIMITS, FRAME_LIMITS, FrameDecoder, Limits, frame, pack
from relsec_p2p.core.codec import unpack as canonical_unpack
from relsec_p2p.core.errors import RelsecError
from relsec_p2p.core.events import EntryAccepted, ForkDetected, InputRejected, MeetingChanged
from relsec_p2p.core.feed import ENTRY_CONTEXT, Entry, Log, decode_entry, encode_entry
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.session import Session
from relsec_p2p.core.state import (
    MAX_AGENDA_BYTES,
    MAX_HELP,
    MAX_MEMBERS_EVER,
    MAX_PROMPT,
    MAX_REASON,
    MAX_STEPS,
    MAX_TITLE,
    MeetingState,
)

VECTORS_DIR = pathlib.Path(__file__).resolve().parent / "vectors"

# --- fixed inputs ------------------------------------------------------------

# Seeds are 32 bytes of one repeated value: easy to type into another
# implementation, and as good as any other seed for test vectors.
SEEDS: dict[str, bytes] = {
    "alice": bytes([0x01]) * 32,
    "bob": bytes([0x02]) * 32,
    "carol": bytes([0x03]) * 32,
    "dan": bytes([0x04]) * 32,
    "eve": bytes([0x05]) * 32,  # never in any roster: an outsider
    "observer": bytes([0x0F]) * 32,  # the laptop that replays logs in state/sync vectors
    "erin": bytes([0x06]) * 32,  # members of the presence case
    "frank": bytes([0x07]) * 32,
}
IDS = {name: Identity.from_seed(seed) for name, seed in SEEDS.items()}
NAME_OF = {identity.key: name for name, identity in IDS.items()}

MID = bytes(range(16))  # 000102…0f
OTHER_MID = bytes([0xFF]) * 16
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in milliseconds

CONVENTIONS = {
    "hex": "byte strings in fields named *hex or *_hex are lowercase hex",
    "typed_json": (
        "msgpack values are written as JSON: nil/bool/str/array as themselves, a map as "
        'an object, bin as {"$bin": "<hex>"}, an integer outside +-(2**53-1) as '
        '{"$int": "<decimal>"}; no value in these files is a map with a key starting with $'
    ),
    "names": "authors are named (alice, bob, ...); their keys are in entries.json identities",
}


# --- typed JSON --------------------------------------------------------------

_JSON_SAFE = (1 << 53) - 1


def to_json(value: Any) -> Any:
    """A msgpack value as typed JSON (see CONVENTIONS)."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if -_JSON_SAFE <= value <= _JSON_SAFE else {"$int": str(value)}
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    raise TypeError(type(value).__name__)


def h(data: bytes) -> str:
    return data.hex()


def require(condition: bool, what: str) -> None:
    """Stop generating when the implementation contradicts the script's intent."""
    if not condition:
        raise RuntimeError(f"vector generation: {what}")


def error_code(call: Callable[[], Any]) -> str:
    """The ``code`` of the RelsecError ``call`` raises (it must raise one)."""
    try:
        call()
    except RelsecError as error:
        return error.code
    raise RuntimeError("vector generation: expected an error, got none")


# --- building feeds ------------------------------------------------------------


class Room:
    """The entries of one meeting as their authors wrote them: what an honest
    writer has seen (everything written so far, unless a case says less),
    each entry's causal past, and so the ``deps`` and the computed clock of
    the next entry (SPEC §3.3 step 5.4, §3.7)."""

    def __init__(self) -> None:
        self.written: list[Entry] = []
        self.by_hash: dict[bytes, Entry] = {}
        self.at: dict[tuple[bytes, int], Entry] = {}  # the first written at a place
        self.past: dict[bytes, dict[bytes, int]] = {}

    def deps(
        self, author: bytes, prev: bytes | None, seen: list[Entry] | None
    ) -> list[tuple[bytes, int]]:
        covered = self.past.get(prev, {}) if prev is not None else {}
        heads: dict[bytes, int] = {}
        for entry in self.written if seen is None else seen:
            if entry.author != author:
                heads[entry.author] = max(heads.get(entry.author, 0), entry.seq)
        return [(key, seq) for key, seq in sorted(heads.items()) if seq > covered.get(key, 0)]

    def clock(self, prev: bytes | None, deps: list[tuple[bytes, int]]) -> int:
        before = self.by_hash.get(prev) if prev is not None else None
        return 1 + max([before.lam if before else 0] + [self.at[d].lam for d in deps])

    def record(self, entry: Entry) -> None:
        past: dict[bytes, int] = dict(self.past.get(entry.prev, {})) if entry.prev else {}
        for place in entry.deps:
            for key, seq in self.past[self.at[place].hash].items():
                past[key] = max(past.get(key, 0), seq)
        past[entry.author] = entry.seq
        self.past[entry.hash] = past
        self.written.append(entry)
        self.by_hash[entry.hash] = entry
        self.at.setdefault((entry.author, entry.seq), entry)


ROOM = Room()


def new_room() -> Room:
    """Start the entries of another meeting (authors made after this share it)."""
    global ROOM
    ROOM = Room()
    return ROOM


class Author:
    """One member's feed under construction: keeps seq and prev; each entry
    names what its author has seen and carries the clock that makes."""

    def __init__(self, name: str, mid: bytes = MID, room: Room | None = None) -> None:
        self.name = name
        self.identity = IDS[name]
        self.mid = mid
        self.room = room or ROOM
        self.seq = 0
        self.prev: bytes | None = None
        self.mark = ""  # "'" for the second branch of a fork

    def write(
        self,
        kind: str,
        data: dict[str, Any],
        ts: int | None = None,
        *,
        seen: list[Entry] | None = None,
        lam: int | None = None,
    ) -> Entry:
        """The next entry; ``seen``: what its author claims to have seen
        (default: everything written in the room so far); ``lam``: a clock
        other than the computed one (for refusal cases)."""
        self.seq += 1
        deps = self.room.deps(self.identity.key, self.prev, seen)
        clock = self.room.clock(self.prev, deps) if lam is None else lam
        entry = encode_entry(
            self.identity,
            mid=self.mid,
            seq=self.seq,
            prev=self.prev,
            lam=clock,
            ts=T0 + 15_000 * clock if ts is None else ts,
            kind=kind,
            data=data,
            deps=deps,
        )
        self.prev = entry.hash
        LABELS[entry.hash] = f"{self.name}#{self.seq}{self.mark}"
        if lam is None:
            self.room.record(entry)
        return entry

    def upto(self, entry: Entry) -> list[Entry]:
        """Everything written in the room up to ``entry`` (a claim of ignorance
        of what came after it)."""
        written = self.room.written
        return written[: written.index(entry) + 1]

    def fork(self) -> Author:
        """A second author object at the same place: writing with both forks the feed."""
        return self.branch(self.seq, self.prev, "'")

    def branch(self, seq: int, prev: bytes | None, mark: str) -> Author:
        """An author object whose next entry is at ``seq + 1`` after ``prev``,
        labelled with ``mark`` (alice#2' is another alice#2)."""
        twin = Author(self.name, self.mid, self.room)
        twin.seq, twin.prev, twin.mark = seq, prev, mark
        return twin


LABELS: dict[bytes, str] = {}


def label(entry: Entry) -> str:
    """alice#3 is alice's entry at seq 3; alice#3' the other branch of a fork."""
    return LABELS.get(entry.hash, f"{NAME_OF[entry.author]}#{entry.seq}")


def signed_envelope(identity: Identity, body: bytes) -> bytes:
    """An envelope around arbitrary body bytes, validly signed (for decode-error vectors)."""
    return pack([body, identity.sign(ENTRY_CONTEXT, body)])


def raw_body(fields: dict[str, Any]) -> bytes:
    """Body bytes in the key order given (not canonical unless the order is)."""
    out: bytes = msgpack.packb(fields, use_bin_type=True)
    return out


def body_fields(author: Identity, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "au": author.key,
        "data": {},
        "deps": [],
        "lam": 1,
        "mid": MID,
        "prev": None,
        "seq": 1,
        "ts": T0,
        "type": "hand.raise",
        "v": 2,
    }
    fields.update(changes)
    return fields


# --- codec.json ------------------------------------------------------------------


def codec_vectors() -> dict[str, Any]:
    valid_values: list[tuple[str, Any]] = [
        ("nil", None),
        ("false", False),
        ("true", True),
        ("zero: positive fixint", 0),
        ("largest positive fixint", 127),
        ("smallest uint8", 128),
        ("largest uint8", 255),
        ("smallest uint16", 256),
        ("largest uint16", 65535),
        ("smallest uint32", 65536),
        ("largest uint32", (1 << 32) - 1),
        ("smallest uint64", 1 << 32),
        ("largest allowed integer", (1 << 64) - 1),
        ("-1: negative fixint", -1),
        ("smallest negative fixint", -32),
        ("largest int8", -33),
        ("smallest int8", -128),
        ("largest int16", -129),
        ("smallest int16", -32768),
        ("largest int32", -32769),
        ("smallest int32", -(1 << 31)),
        ("largest int64", -(1 << 31) - 1),
        ("smallest allowed integer", -(1 << 63)),
        ("empty str", ""),
        ("short str", "relsec"),
        ("non-ASCII str: UTF-8 bytes counted", "é✓"),
        ("longest fixstr (31 bytes)", "a" * 31),
        ("shortest str8 (32 bytes)", "a" * 32),
        ("shortest str16 (256 bytes)", "a" * 256),
        ("empty bin", b""),
        ("bin8", bytes(range(4))),
        ("shortest bin16 (256 bytes)", bytes(256)),
        ("empty array", []),
        ("longest fixarray (15)", list(range(15))),
        ("shortest array16 (16)", list(range(16))),
        ("empty map", {}),
        ("map keys sorted by UTF-8 bytes: shorter prefix first", {"b": 1, "aa": 2, "a": 3}),
        ("map keys sorted by UTF-8 bytes: non-ASCII after ASCII", {"é": 1, "z": 2}),
        ("longest fixmap (15)", {f"k{i:02d}": i for i in range(15)}),
        ("shortest map16 (16)", {f"k{i:02d}": i for i in range(16)}),
        ("nested: 8 levels of containers (the frame and entry limit)", [[[[[[[[0]]]]]]]]),
        (
            "an entry-like body",
            {
                "v": 1,
                "type": "vote.cast",
                "data": {"poll": bytes(32), "choice": "agree"},
                "prev": None,
            },
        ),
    ]
    valid = [{"note": note, "value": to_json(v), "hex": h(pack(v))} for note, v in valid_values]
    for note, value in valid_values:  # the implementation decodes its own output
        require(canonical_unpack(pack(value)) == value, note)

    invalid_inputs: list[tuple[str, str, str]] = [
        # (note, hex, limits)
        ("empty input", "", "frame"),
        ("0xc1 is never used", "c1", "frame"),
        ("truncated array", "9201", "frame"),
        ("truncated str", "a3616263"[:6], "frame"),
        ("trailing byte after the value", "0000", "frame"),
        ("str that is not UTF-8", "a2c328", "frame"),
        ("5 as uint8", "cc05", "frame"),
        ("5 as uint16", "cd0005", "frame"),
        ("200 as uint16", "cd00c8", "frame"),
        ("5 as uint64", "cf0000000000000005", "frame"),
        ("5 as int8: non-negative integers use the unsigned forms", "d005", "frame"),
        ("-1 as int8", "d0ff", "frame"),
        ("-1 as int64", "d3ffffffffffffffff", "frame"),
        ("1-byte str as str8", "d90161", "frame"),
        ("1-byte str as str16", "da000161", "frame"),
        ("1-byte bin as bin16", "c5000161", "frame"),
        ("1-item array as array16", "dc000101", "frame"),
        ("1-item map as map16", "de0001a16101", "frame"),
        ("float32", "ca3f800000", "frame"),
        ("float64", "cb3ff0000000000000", "frame"),
        ("float inside an array", "9201cb3ff0000000000000", "frame"),
        ("map keys out of order", "82a16201a16102", "frame"),
        ("map keys out of UTF-8 byte order", "82a2c3a901a17a02", "frame"),
        ("duplicate map key", "82a16101a16102", "frame"),
        ("map with a bin key", "81c4016101", "frame"),
        ("map with a str key and a bin key", "82a16101c4016202", "frame"),
        ("map with an integer key", "810101", "frame"),
        ("fixext1", "d40100", "frame"),
        ("empty ext8", "c70005", "frame"),
        ("timestamp ext (-1)", "d6ff00000000", "frame"),
        ("9 levels of containers", "91" * 8 + "90", "frame"),
        ("9 levels of containers (entry limits)", "91" * 8 + "90", "entry"),
        ("str of 16385 bytes", "da4001" + "61" * 16385, "frame"),
        (
            "map of 65 keys",
            "de0041" + "".join(pack(f"k{i:02d}").hex() + "00" for i in range(65)),
            "frame",
        ),
        ("array of 1025 items (entry limits)", "dc0401" + "00" * 1025, "entry"),
        ("bin of 65409 bytes (entry limits)", "c5ff81" + "00" * 65409, "entry"),
        (
            "65479 bytes, one over max_bytes (entry limits): refused by size",
            "c5ffc4" + "00" * 65476,
            "entry",
        ),
    ]
    limits = {"frame": FRAME_LIMITS, "entry": ENTRY_LIMITS}
    invalid = [
        {
            "note": note,
            "hex": data,
            "limits": which,
            "code": error_code(
                lambda d=data, w=which: canonical_unpack(bytes.fromhex(d), limits[w])
            ),
        }
        for note, data, which in invalid_inputs
    ]
    # Under frame limits the 1025-item array is fine: the limits table matters.
    accepted_under_frame = canonical_unpack(bytes.fromhex("dc0401" + "00" * 1025), FRAME_LIMITS)
    require(len(accepted_under_frame) == 1025, "entry limits differ from frame limits")

    unencodable = [
        {"note": "float", "value": 1.5},
        {"note": "integer above 2**64-1", "value": to_json(1 << 64)},
        {"note": "integer below -2**63", "value": to_json(-(1 << 63) - 1)},
    ]
    for case in unencodable:
        code = error_code(lambda c=case: pack(from_json(c["value"])))
        case["code"] = code

    def limit_row(item: Limits) -> dict[str, int]:
        return {
            "max_bytes": item.max_bytes,
            "max_depth": item.max_depth,
            "max_str": item.max_str,
            "max_bin": item.max_bin,
            "max_array": item.max_array,
            "max_map": item.max_map,
        }

    return {
        "description": (
            "Canonical msgpack (SPEC §2). 'valid': encoding the value MUST give exactly hex, "
            "and decoding hex MUST give the value back. 'invalid': decoding hex under the "
            "named limits (SPEC §2.3) MUST fail with code. 'unencodable': the encoder MUST "
            "refuse the value (a local error)."
        ),
        "conventions": CONVENTIONS,
        "limits": {"frame": limit_row(FRAME_LIMITS), "entry": limit_row(ENTRY_LIMITS)},
        "valid": valid,
        "invalid": invalid,
        "unencodable": unencodable,
    }


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        if set(value) == {"$int"}:
            return int(value["$int"])
        return {key: from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json(item) for item in value]
    return value


# --- the scripted meeting (entries.json and state.json) -------------------------------

AGENDA = [
    {
        "id": "threats",
        "title": "Threats",
        "prompt": "What threatens us?",
        "mode": "both",
        "kind": "text",
    },
    {
        "id": "impact",
        "title": "Impact",
        "prompt": "How serious is it?",
        "mode": "named",
        "kind": "rating",
        "scale": ["low", "medium", "high"],
    },
    {
        "id": "way-forward",
        "title": "Way forward",
        "prompt": "What do we do?",
        "help": "One proposal per card.",
        "mode": "both",
        "kind": "proposal",
        "links": ["threats"],
    },
]


def create_data(name: str, title: str, agenda: list[dict[str, Any]], settings: dict[str, Any]):
    return {
        "title": title,
        "name": name.capitalize(),
        "ring": IDS[name].ring_key,
        "agenda": agenda,
        "settings": settings,
    }


def add_data(name: str) -> dict[str, Any]:
    identity = IDS[name]
    return {"key": identity.key, "ring": identity.ring_key, "name": name.capitalize()}


def cut_of(entries: list[Entry]) -> list[list[Any]]:
    """What Session.close_poll puts in ``cut``: each feed's length, sorted by key."""
    lengths: dict[bytes, int] = {}
    for entry in entries:
        lengths[entry.author] = max(lengths.get(entry.author, 0), entry.seq)
    return [[key, lengths[key]] for key in sorted(lengths)]


def main_meeting() -> list[Entry]:
    """A whole meeting, its entries in delivery order."""
    new_room()
    a, b, c, d = (Author(n) for n in ("alice", "bob", "carol", "dan"))
    log: list[Entry] = []

    def w(
        author: Author,
        kind: str,
        data: dict[str, Any],
        ts: int | None = None,
        *,
        seen: list[Entry] | None = None,
    ) -> Entry:
        entry = author.write(kind, data, ts, seen=seen)
        log.append(entry)
        return entry

    w(
        a,
        "meeting.create",
        create_data("alice", "Relational security", AGENDA, {"quorum_pct": 75}),
    )
    w(a, "roster.add", add_data("bob"))
    w(a, "roster.add", add_data("carol"))
    w(a, "roster.add", add_data("dan"))
    w(a, "step.open", {"step": 0})
    opened = w(b, "step.open", {"step": 1})  # ignored: bob is not the facilitator
    landlord = w(
        b,
        "contrib.add",
        {"step": 0, "text": "The landlord knows our meeting place.", "tag": "threat"},
    )
    # carol writes at the same time as bob: neither names the other's entry.
    w(
        c,
        "contrib.add",
        {"step": 0, "text": "Someone photographs people arriving."},
        seen=a.upto(opened),
    )
    w(
        d,
        "contrib.add",
        {"step": 0, "text": "He was seen with the landlord.", "ref": landlord.hash},
    )
    w(d, "hand.raise", {})
    w(c, "hand.raise", {})
    w(a, "hand.next", {})  # dan speaks
    w(d, "hand.lower", {})  # dan spoke 15 s
    w(a, "hand.next", {})  # carol speaks
    w(a, "step.open", {"step": 1})
    rated = w(b, "rating.set", {"step": 1, "value": 2})
    # ignored: the scale has 3 positions (concurrent with bob's rating)
    w(c, "rating.set", {"step": 1, "value": 3}, seen=log[: log.index(rated)])
    w(a, "step.open", {"step": 2})
    proposal = w(c, "proposal.add", {"step": 2, "text": "Meet in the community hall."})
    poll = w(a, "poll.open", {"proposal": proposal.hash})
    w(a, "vote.cast", {"poll": poll.hash, "choice": "agree"})
    w(b, "vote.cast", {"poll": poll.hash, "choice": "agree"})
    w(c, "vote.cast", {"poll": poll.hash, "choice": "concerns"})
    w(d, "vote.cast", {"poll": poll.hash, "choice": "block"})
    w(d, "vote.cast", {"poll": poll.hash, "choice": "stand_aside"})  # a changed vote
    cut = cut_of(log)
    # bob's vote, concurrent with the close (neither names the other): by its
    # clock before the close, beyond the cut; once the close has settled it
    # is re-dated after it (§5.1) and ignored there (the poll is closed).
    late = b.write("vote.cast", {"poll": poll.hash, "choice": "block"}, seen=a.upto(poll))
    close_seen = list(log)
    w(a, "poll.close", {"poll": poll.hash, "cut": cut}, seen=close_seen)
    log.append(late)
    w(c, "vote.cast", {"poll": poll.hash, "choice": "block"})  # ignored: the poll is closed
    w(a, "facil.handover", {"to": IDS["bob"].key})
    w(a, "step.close", {"step": 2})  # ignored: alice handed over
    # bob, about to be declared absent, hands over to dan with a clock from
    # before the declarations: ignored, a majority overruled him (§6.2).
    w(b, "facil.handover", {"to": IDS["dan"].key}, seen=log[:-1])
    # bob's laptop goes dark; the others pass facilitation on.
    w(c, "facil.absent", {"term": 2})
    w(a, "facil.absent", {"term": 1})  # ignored: stale term
    w(d, "facil.absent", {"term": 2})  # the majority of the others: carol succeeds bob
    w(c, "step.close", {"step": 2})
    w(c, "join.code", {"np": 42, "words": ["harbor", "velvet", "orbit"]})
    w(d, "join.code", {"np": 7, "words": ["acorn", "basil", "anchor"]})  # ignored: np < 10
    # Co-signing the closed tally (§6.5): a laptop signs the digest it computed itself.
    ordered = sorted(log, key=lambda e: e.order_key)
    tally = fold_rules.fold(MID, IDS["alice"].key, ordered, {}).polls[poll.hash].tally_digest
    w(b, "tally.sign", {"poll": poll.hash, "digest": tally})
    w(d, "tally.sign", {"poll": poll.hash, "digest": bytes(32)})  # ignored: another tally
    w(b, "tally.sign", {"poll": poll.hash, "digest": tally})  # ignored: signed already
    w(c, "outcome.record", {"poll": poll.hash, "text": "We meet in the community hall."})
    w(d, "outcome.record", {"poll": poll.hash, "text": "Decided."})  # ignored: not facilitator
    # carol objects that the close left out bob's vote written before it (§6.5).
    left_out = {"poll": poll.hash, "digest": tally, "left_out": [[IDS["bob"].key, late.seq]]}
    w(c, "tally.object", left_out)
    w(b, "tally.object", left_out)  # ignored: bob co-signed already
    # An answer to step 0, closed since: kept, shown under its step (§6.4).
    w(d, "contrib.add", {"step": 0, "text": "One more thing about the landlord."})
    # Delivery differs from fold order: carol's and bob's concurrent contributions
    # swap; dan#1, which names bob's landlord entry, arrives before it (it
    # waits for its dependency, §3.4); dan#2 arrives after dan#3 (a gap).
    delivery = list(log)
    i = delivery.index(landlord)
    delivery[i], delivery[i + 1] = delivery[i + 1], delivery[i]
    d1 = next(e for e in delivery if label(e) == "dan#1")
    require((IDS["bob"].key, landlord.seq) in d1.deps, "dan#1 names bob's landlord entry")
    delivery.remove(d1)
    delivery.insert(delivery.index(landlord), d1)
    d2 = next(e for e in delivery if label(e) == "dan#2")
    d3 = next(e for e in delivery if label(e) == "dan#3")
    k2, k3 = delivery.index(d2), delivery.index(d3)
    delivery[k2], delivery[k3] = delivery[k3], delivery[k2]
    return delivery


def vote_reasons_meeting() -> list[Entry]:
    """Votes with reasons (SPEC §6.5): a concern and a block carry one line;
    a reason with an agree, a reason of two lines and one over MAX_REASON
    characters are ignored; a newer vote without a reason replaces one with."""
    new_room()
    a, b, c, d = (Author(n) for n in ("alice", "bob", "carol", "dan"))
    log = [
        a.write("meeting.create", create_data("alice", "Reasons", AGENDA, {})),
        a.write("roster.add", add_data("bob")),
        a.write("roster.add", add_data("carol")),
        a.write("roster.add", add_data("dan")),
        a.write("step.open", {"step": 2}),
    ]
    proposal = c.write("proposal.add", {"step": 2, "text": "Meet in the community hall."})
    poll = a.write("poll.open", {"proposal": proposal.hash})
    log += [proposal, poll]
    vote = {"poll": poll.hash}
    log += [
        b.write("vote.cast", {**vote, "choice": "concerns", "reason": "The hall has steps."}),
        c.write("vote.cast", {**vote, "choice": "agree", "reason": "Close to me."}),
        d.write("vote.cast", {**vote, "choice": "block", "reason": "The owner reports us."}),
        a.write("vote.cast", {**vote, "choice": "concerns", "reason": "Two\nlines"}),
        a.write("vote.cast", {**vote, "choice": "block", "reason": "x" * (MAX_REASON + 1)}),
        a.write("vote.cast", {**vote, "choice": "concerns", "reason": "x" * MAX_REASON}),
        c.write("vote.cast", {**vote, "choice": "concerns", "reason": "Rent is high."}),
        c.write("vote.cast", {**vote, "choice": "agree"}),  # takes carol's reason away
    ]
    return log


def anonymous_poll_meeting() -> list[Entry]:
    """An anonymous poll on a step of mode "both" (SPEC §6.5 poll.open): named
    votes on it are ignored; ``anonymous`` must be a bool."""
    new_room()
    a, b = (Author(n) for n in ("alice", "bob"))
    log = [
        a.write("meeting.create", create_data("alice", "Secret", AGENDA, {})),
        a.write("roster.add", add_data("bob")),
        a.write("roster.add", add_data("carol")),
        a.write("step.open", {"step": 2}),
    ]
    proposal = b.write("proposal.add", {"step": 2, "text": "Move the meeting."})
    log.append(proposal)
    log.append(a.write("poll.open", {"proposal": proposal.hash, "anonymous": "yes"}))
    poll = a.write("poll.open", {"proposal": proposal.hash, "anonymous": True})
    log += [
        poll,
        b.write("vote.cast", {"poll": poll.hash, "choice": "block"}),  # named: ignored
    ]
    log.append(a.write("poll.close", {"poll": poll.hash, "cut": cut_of(log)}))
    return log


def removal_meeting() -> list[Entry]:
    """A removal whose ``upto`` excludes an entry the removed member back-dated (§5.3)."""
    new_room()
    a, b, c = (Author(n) for n in ("alice", "bob", "carol"))
    agenda = [
        {"id": "s", "title": "Check-in", "prompt": "How are you?", "mode": "named", "kind": "text"}
    ]
    return [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        a.write("roster.add", add_data("bob")),
        a.write("roster.add", add_data("carol")),
        a.write("step.open", {"step": 0}),
        c.write("contrib.add", {"step": 0, "text": "Tired but here."}),
        b.write("contrib.add", {"step": 0, "text": "Glad to see you all."}),
        a.write("roster.remove", {"who": IDS["carol"].key, "upto": 1}),
        # carol saw the removal and claims she had not (names nothing new), so
        # her entry's clock is below the removal's
        c.write("contrib.add", {"step": 0, "text": "Written after my removal."}, seen=[]),
        c.write("hand.raise", {}),
        b.write("roster.leave", {}),
        b.write("hand.raise", {}),  # ignored: bob left
    ]


def presence_meeting() -> list[Entry]:
    """Members declared away by a strict majority of the present ones, a
    close whose quorum counts the present, a return, a replacement, and a
    succession that skips a member declared away (SPEC §6.1 "Presence")."""
    new_room()
    a, b, c, d, f = (Author(n) for n in ("alice", "bob", "carol", "dan", "frank"))
    log: list[Entry] = [
        a.write("meeting.create", create_data("alice", "Presence", AGENDA, {})),
        a.write("roster.add", add_data("bob")),
        a.write("roster.add", add_data("carol")),
        a.write("roster.add", add_data("dan")),
        a.write("roster.add", add_data("erin")),
        a.write("step.open", {"step": 2}),
    ]
    proposal = c.write("proposal.add", {"step": 2, "text": "Meet in the hall."})
    poll = a.write("poll.open", {"proposal": proposal.hash})
    log += [proposal, poll]

    def away(author: Author, lam: int, who: str, returns: int = 0) -> Entry:
        entry = author.write("roster.away", {"who": IDS[who].key, "returns": returns})
        log.append(entry)
        return entry

    away(b, 9, "dan")
    away(c, 10, "dan")  # 2 of 5 present: dan is still present
    away(a, 11, "dan")  # 3 of 5: dan is away
    away(d, 12, "erin")  # ignored: dan is away and declares nobody
    for lam, author in ((13, a), (14, b), (15, c)):
        away(author, lam, "erin")  # 3 of 4: erin is away
    for author in (a, b, c):
        log.append(author.write("vote.cast", {"poll": poll.hash, "choice": "agree"}))
    log.append(a.write("poll.close", {"poll": poll.hash, "cut": cut_of(log)}))
    log.append(d.write("roster.back", {}))  # dan is present again, returns 1
    away(b, 19, "dan")  # ignored: stale, about the absence dan came back from
    log.append(b.write("roster.add", {**add_data("frank"), "name": "Erin"}))
    log.append(
        a.write("roster.replace", {"who": IDS["erin"].key, "by": IDS["frank"].key, "upto": 0})
    )
    for lam, author in ((22, c), (23, d), (24, f)):
        away(author, lam, "bob")  # 3 of 5: bob is away
    for lam, author in ((25, c), (26, d), (27, f)):
        away(author, lam, "alice")  # 3 of 4: the facilitator is away; carol, not bob, follows
    return log


def admission_meeting() -> list[Entry]:
    """The facilitator closes joining, admits a room display, removes a member
    (which retires the code) and publishes a fresh code (SPEC §12.11, §12.12)."""
    new_room()
    a, b, d = (Author(n) for n in ("alice", "bob", "dan"))
    agenda = [
        {"id": "s", "title": "Check-in", "prompt": "How are you?", "mode": "named", "kind": "text"}
    ]
    old = {"np": 42, "words": ["harbor", "velvet", "orbit"]}
    return [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        a.write("join.code", old),
        a.write("roster.add", add_data("bob")),
        a.write("roster.add", add_data("carol")),
        b.write("join.open", {"open": False}),  # ignored: only the facilitator
        a.write("join.open", {"open": False}),
        a.write("viewer.add", {"key": IDS["dan"].key, "name": "Room display"}),
        a.write("roster.remove", {"who": IDS["carol"].key, "upto": 0}),
        b.write("join.code", old),  # ignored: retired by the removal
        a.write("join.code", {"np": 42, "words": ["harbor", "velvet", "acorn"]}),
        # Last, so that no member's entry names it: not even stored, a display
        # being no known author (§3.3).
        d.write("hand.raise", {}),
    ]


def agenda_of_size(size: int) -> list[dict[str, Any]]:
    """A valid agenda whose canonical encoding is exactly ``size`` bytes: full
    ASCII steps, then one step whose help takes up the bytes left."""

    def step(index: int, help_text: str) -> dict[str, Any]:
        return {"id": f"s{index:02d}", "title": "t" * MAX_TITLE, "prompt": "p" * MAX_PROMPT,
                "help": help_text, "mode": "both", "kind": "text"}  # fmt: skip

    agenda = [step(i, "h" * MAX_HELP) for i in range(MAX_STEPS)]
    while len(pack(agenda)) > size:
        agenda.pop()
    last = step(len(agenda), "")
    last["title"], last["prompt"] = "t", "p"
    agenda.append(last)
    while len(pack(agenda)) > size:
        del agenda[-2]
    for key, limit in (("help", MAX_HELP), ("prompt", MAX_PROMPT), ("title", MAX_TITLE)):
        last[key] += "x" * max(0, min(size - len(pack(agenda)), limit - len(last[key])))
        while len(pack(agenda)) > size:  # the str header grew by a byte or two
            last[key] = last[key][:-1]
    require(len(pack(agenda)) == size, f"an agenda of {size} bytes")
    return agenda


def agenda_limit_meeting(size: int) -> list[Entry]:
    """alice creates a meeting whose agenda takes ``size`` bytes, then opens step 0."""
    new_room()
    a = Author("alice")
    return [
        a.write("meeting.create", create_data("alice", "Big agenda", agenda_of_size(size), {})),
        a.write("step.open", {"step": 0}),
    ]


def translations_meeting(translations: dict[str, Any]) -> list[Entry]:
    """alice creates a meeting whose rating step carries ``translations``
    (SPEC §6.3 "Translations"), opens it and rates: the rule reads the
    step's own scale, whatever language a laptop shows."""
    new_room()
    a = Author("alice")
    agenda = [
        {
            "id": "likely",
            "title": "How likely?",
            "prompt": "How likely is it?",
            "mode": "named",
            "kind": "rating",
            "scale": ["unlikely", "likely"],
            "translations": translations,
        }
    ]
    return [
        a.write("meeting.create", create_data("alice", "Languages", agenda, {})),
        a.write("step.open", {"step": 0}),
        a.write("rating.set", {"step": 0, "value": 1}),
    ]


def names_and_whitespace_meeting() -> list[Entry]:
    """Display names and text(n) at the edge of their written lists (§6.0,
    §6.1): no rule reads a Unicode table, so every laptop folds these alike."""
    new_room()
    a, b = Author("alice"), Author("bob")
    agenda = [
        {"id": "s", "title": "Check-in", "prompt": "How are you?", "mode": "named", "kind": "text"}
    ]

    def add(who: str, name: str) -> Entry:
        return a.write("roster.add", {**add_data(who), "name": name})

    return [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        add("bob", "\U0001f469\u200d\U0001f4bb Bob"),  # applied: ZWJ is allowed
        add("carol", "Ca\u00adrol"),  # ignored: soft hyphen
        add("carol", "Carol\U000e0067"),  # ignored: a tag character
        add("carol", "\u3000\u2003"),  # ignored: only whitespace
        add("carol", "\U0001d49e" * 64),  # applied: 64 characters of 4 UTF-8 bytes
        add("dan", "\u200b"),  # ignored: not blank, but forbidden
        add("dan", "Dan\u2065"),  # ignored: unassigned, inside a listed range
        add("dan", "Dan\U0010fffe"),  # ignored: a noncharacter
        add("dan", "Dan\u0378"),  # applied: unassigned today, not listed
        a.write("step.open", {"step": 0}),
        b.write("contrib.add", {"step": 0, "text": "\x1c\u3000 \u2028\x85"}),  # blank
        b.write("contrib.add", {"step": 0, "text": "\u180e"}),  # text: not whitespace
        b.write("contrib.add", {"step": 0, "text": "\u200b"}),  # text: not whitespace
    ]


def settlement_meeting() -> list[Entry]:
    """alice opens a poll, then her laptop goes silent; bob and carol declare
    her absent and dan acknowledges, so the declarations settle (3 of 4).
    alice then opens a step and closes the poll, claiming she saw nothing
    since the votes: by their clocks both sort before the declarations, but
    they are re-dated after the settled ones (SPEC §5.1), where bob
    facilitates: ignored (the close too, though its cut makes alice the
    facilitator, SPEC §6.5 condition 7). bob opens that step."""
    new_room()
    a, b, c, d = (Author(n) for n in ("alice", "bob", "carol", "dan"))
    agenda = [
        {"id": "s", "title": "Plan", "prompt": "What do we do?", "mode": "named",
         "kind": "proposal"},
        {"id": "t", "title": "Next", "prompt": "What next?", "mode": "named", "kind": "text"},
    ]  # fmt: skip
    log = [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        a.write("roster.add", add_data("bob")),
        a.write("roster.add", add_data("carol")),
        a.write("roster.add", add_data("dan")),
        a.write("step.open", {"step": 0}),
    ]
    proposal = b.write("proposal.add", {"step": 0, "text": "Meet on Tuesday."})
    poll = a.write("poll.open", {"proposal": proposal.hash})
    log += [proposal, poll]
    votes = [s.write("vote.cast", {"poll": poll.hash, "choice": "agree"}) for s in (b, c)]
    log += votes
    seen = a.upto(votes[-1])
    log += [b.write("hand.raise", {}), c.write("hand.raise", {})]  # the meeting goes on
    declarations = [b.write("facil.absent", {"term": 1}), c.write("facil.absent", {"term": 1})]
    log += [*declarations, b.write("ack", {}), d.write("ack", {})]
    late = a.write("step.open", {"step": 1}, seen=seen)
    close = a.write("poll.close", {"poll": poll.hash, "cut": cut_of(seen)}, seen=seen)
    require(close.lam < declarations[0].lam, "alice's entries sort before the declarations")
    log += [late, close, b.write("step.open", {"step": 1})]
    return log


def roster_full_meeting() -> list[Entry]:
    """alice adds and removes members until 1 024 keys have been members,
    the creator's included (SPEC §6.1 condition 7, MAX_MEMBERS_EVER): one
    more roster.add is ignored, though only one member is active."""
    new_room()
    a = Author("alice")
    agenda = [
        {"id": "s", "title": "Check-in", "prompt": "How are you?", "mode": "named", "kind": "text"}
    ]
    log = [a.write("meeting.create", create_data("alice", "Many", agenda, {}))]
    for i in range(MAX_MEMBERS_EVER):
        seed = hashlib.blake2b(b"member %d" % i, digest_size=32).digest()
        member = Identity.from_seed(seed)
        name = f"m{i:04d}"
        NAME_OF.setdefault(member.key, name)
        log.append(
            a.write("roster.add", {"key": member.key, "ring": member.ring_key, "name": name})
        )
        if i < MAX_MEMBERS_EVER - 1:
            log.append(a.write("roster.remove", {"who": member.key, "upto": 0}))
    return log


def fork_meeting() -> list[Entry]:
    """bob signs two different entries at seq 2: his feed freezes before the fork."""
    new_room()
    a, b = Author("alice"), Author("bob")
    agenda = [
        {"id": "s", "title": "Check-in", "prompt": "How are you?", "mode": "both", "kind": "text"}
    ]
    first = [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        a.write("roster.add", add_data("bob")),
        a.write("step.open", {"step": 0}),
        b.write("contrib.add", {"step": 0, "text": "One."}),
    ]
    twin = b.fork()
    return [
        *first,
        b.write("contrib.add", {"step": 0, "text": "Two, as alice saw it."}),
        b.write("contrib.add", {"step": 0, "text": "Three."}),
        twin.write("contrib.add", {"step": 0, "text": "Two, as carol saw it."}),
        a.write("hand.raise", {}),
    ]


# --- entries.json ----------------------------------------------------------------


def entry_case(entry: Entry) -> dict[str, Any]:
    fields = canonical_unpack(entry.body)
    return {
        "label": label(entry),
        "body": to_json(fields),
        "body_hex": h(entry.body),
        "signature_hex": h(entry.signature),
        "envelope_hex": h(entry.envelope),
        "hash_hex": h(entry.hash),
    }


def identity_rows() -> list[dict[str, str]]:
    rows = []
    for name, identity in IDS.items():
        wide = hashlib.blake2b(b"relsec/v2/ring-key" + SEEDS[name], digest_size=64).digest()
        rows.append(
            {
                "name": name,
                "seed_hex": h(SEEDS[name]),
                "key_hex": h(identity.key),
                "ring_wide_hex": h(wide),
                "ring_secret_hex": h(identity.ring_secret),
                "ring_key_hex": h(identity.ring_key),
            }
        )
    return rows


def invalid_entry_cases() -> list[dict[str, Any]]:
    alice = IDS["alice"]
    good = body_fields(alice)
    hash32 = bytes(32)
    bodies: list[tuple[str, bytes]] = [
        ("version 1 (the previous protocol)", raw_body(body_fields(alice, v=1))),
        ("version 3", raw_body(body_fields(alice, v=3))),
        ("a key missing (no ts)", raw_body({k: v for k, v in good.items() if k != "ts"})),
        ("an extra key", raw_body(dict(sorted({**good, "x": 1}.items())))),
        ("keys not in canonical order", raw_body(dict(reversed(list(good.items()))))),
        ("mid of 15 bytes", raw_body(body_fields(alice, mid=MID[:15]))),
        ("au of 31 bytes", raw_body(body_fields(alice, au=alice.key[:31]))),
        ("seq 0", raw_body(body_fields(alice, seq=0))),
        ("seq above 2**32-1", raw_body(body_fields(alice, seq=1 << 32, prev=hash32))),
        ("prev set at seq 1", raw_body(body_fields(alice, prev=hash32))),
        ("prev nil at seq 2", raw_body(body_fields(alice, seq=2))),
        ("prev of 31 bytes", raw_body(body_fields(alice, seq=2, prev=hash32[:31]))),
        ("lam 0", raw_body(body_fields(alice, lam=0))),
        ("lam above 2**53-1", raw_body(body_fields(alice, lam=1 << 53))),
        ("ts negative", raw_body(body_fields(alice, ts=-1))),
        ("type empty", raw_body(body_fields(alice, type=""))),
        ("type of 33 characters", raw_body(body_fields(alice, type="x" * 33))),
        ("type not a str", raw_body(body_fields(alice, type=b"hand.raise"))),
        ("data not a map", raw_body(body_fields(alice, data=[]))),
        ("deps not an array", raw_body(body_fields(alice, deps={}))),
        ("deps naming the author itself", raw_body(body_fields(alice, deps=[[alice.key, 1]]))),
        (
            "deps not ascending by key",
            raw_body(body_fields(alice, deps=[[b"\x02" * 32, 1], [b"\x01" * 32, 1]])),
        ),
        (
            "deps naming one author twice",
            raw_body(body_fields(alice, deps=[[b"\x02" * 32, 1], [b"\x02" * 32, 2]])),
        ),
        ("deps seq 0", raw_body(body_fields(alice, deps=[[b"\x02" * 32, 0]]))),
        ("deps pair of three items", raw_body(body_fields(alice, deps=[[b"\x02" * 32, 1, 1]]))),
        (
            "deps of 257 pairs",
            raw_body(body_fields(alice, deps=[[i.to_bytes(2, "big") * 16, 1] for i in range(257)])),
        ),
        ("a float in data", raw_body(body_fields(alice, data={"x": 0.5}))),
        ("body not a map", raw_body([1])),
    ]
    cases = [
        {"note": note, "envelope_hex": h(signed_envelope(alice, body)), "body_hex": h(body)}
        for note, body in bodies
    ]
    good_body = pack(good)
    signature = alice.sign(ENTRY_CONTEXT, good_body)
    envelopes: list[tuple[str, bytes]] = [
        ("envelope is a map", pack({"body": good_body, "sig": signature})),
        ("envelope of three items", pack([good_body, signature, b""])),
        ("signature of 63 bytes", pack([good_body, signature[:63]])),
        ("body as str", msgpack.packb(["x", signature], use_bin_type=True)),
        ("trailing byte after the envelope", pack([good_body, signature]) + b"\x00"),
        ("envelope array as array16", b"\xdc\x00\x02" + pack([good_body, signature])[1:]),
    ]
    cases += [{"note": note, "envelope_hex": h(env)} for note, env in envelopes]
    for case in cases:
        case["code"] = error_code(lambda c=case: decode_entry(bytes.fromhex(c["envelope_hex"])))
    return cases


def entries_vectors() -> dict[str, Any]:
    new_room()
    a, b = Author("alice"), Author("bob")
    agenda = [AGENDA[0]]
    entries = [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        a.write("roster.add", add_data("bob")),
        a.write("step.open", {"step": 0}),
        b.write("contrib.add", {"step": 0, "text": "Hello, everyone."}),
        a.write("hand.raise", {}),
        b.write("contrib.add", {"step": 0, "text": "Ça va ✓", "tag": "mood"}),
    ]
    return {
        "description": (
            "Identities from seeds (SPEC §4) and signed entries (SPEC §3). For each identity, "
            "key_hex MUST be the Ed25519 public key of seed_hex, ring_secret_hex the "
            "scalar derived from it and ring_key_hex that scalar times the base point. For "
            "each entry, encoding 'body' canonically MUST give body_hex; signature_hex MUST be "
            "the Ed25519 signature by the author over context_hex || body_hex; envelope_hex "
            "the canonical [body, signature]; hash_hex BLAKE2b-256(body). 'invalid' "
            "envelopes (all validly signed) MUST be refused when decoded, with code."
        ),
        "conventions": CONVENTIONS,
        "context_hex": h(ENTRY_CONTEXT),
        "ring_label_hex": h(b"relsec/v2/ring-key"),
        "mid_hex": h(MID),
        "identities": identity_rows(),
        "entries": [entry_case(e) for e in entries],
        "invalid": invalid_entry_cases(),
    }


# --- feed.json ---------------------------------------------------------------------


def ingest_outcome(log: Log, call: Callable[[], Any]) -> dict[str, Any]:
    try:
        result = call()
    except RelsecError as error:
        return {"result": "error", "code": error.code}
    if result.fork is not None:
        return {
            "result": "fork",
            "seq": result.fork.seq,
            "removed": [e.seq for e in result.removed],
            "proof_hex": [h(x) for x in result.fork.envelopes()],
        }
    if result.duplicate:
        return {"result": "duplicate"}
    if result.buffered is not None:
        missing = log.missing_range(result.buffered.author)
        return {
            "result": "buffered",
            "seq": result.buffered.seq,
            "missing": list(missing or ()),
            "wanted": wanted(log),
        }
    return {"result": "accepted", "seqs": [e.seq for e in result.accepted]}


def wanted(log: Log) -> list[list[Any]]:
    """What the log would ask for in ``want`` (SPEC §3.4): gaps and dependencies."""
    return [[NAME_OF[author], first, last] for author, first, last in log.missing_ranges()]


def feed_case(
    name: str, note: str, steps: list[tuple[str, Entry | bytes | list[bytes]]]
) -> dict[str, Any]:
    known = ["alice", "bob"]
    log = Log(MID, {IDS[n].key for n in known}.__contains__)
    rows = []
    for step_note, item in steps:
        if isinstance(item, list):
            envelopes = item
            row: dict[str, Any] = {"note": step_note, "fork_proof_hex": [h(x) for x in envelopes]}
            row["expect"] = ingest_outcome(log, lambda e=envelopes: log.ingest_fork_proof(e))
        else:
            envelope = item.envelope if isinstance(item, Entry) else item
            row = {"note": step_note, "envelope_hex": h(envelope)}
            try:
                row["label"] = label(decode_entry(envelope))
            except RelsecError:
                pass
            row["expect"] = ingest_outcome(log, lambda e=envelope: log.ingest(e))
        rows.append(row)
    final = {
        "feeds": [
            {"author": NAME_OF[au], "length": seq, "head_hex": h(head)}
            for au, seq, head in log.summary()
        ],
        "frozen": [{"author": NAME_OF[au], "seq": p.seq} for au, p in sorted(log.forks.items())],
        "missing": [
            {"author": n, "range": list(log.missing_range(IDS[n].key) or ())}
            for n in known
            if log.missing_range(IDS[n].key) is not None
        ],
        "wanted": wanted(log),
    }
    return {"name": name, "note": note, "known": known, "steps": rows, "final": final}


def body_of_size(author: Identity, size: int) -> bytes:
    """A valid seq-1 body of exactly ``size`` bytes (data padded with a bin)."""
    for pad in range(size - 200, size):
        body = pack(body_fields(author, data={"x": b"y" * pad}))
        if len(body) == size:
            return body
    raise RuntimeError(f"vector generation: no body of {size} bytes")


def flip_bit(envelope: bytes) -> bytes:
    """The same envelope with the last bit of the signature flipped."""
    return envelope[:-1] + bytes([envelope[-1] ^ 1])


def feed_vectors() -> dict[str, Any]:
    new_room()
    a = Author("alice")
    a1, a2, a3, a4 = (a.write("hand.raise" if lam % 2 else "hand.lower", {}) for lam in range(1, 5))
    text = {"step": 0, "text": "the other branch"}
    a2x = a.branch(1, a1.hash, "'").write("contrib.add", text)
    a3x = a.branch(2, a2.hash, "'").write("contrib.add", text)
    a3_off = a.branch(2, a2x.hash, "~").write("hand.raise", {})  # after alice#2'
    a2_flat = a.branch(1, a1.hash, "~lam").write("hand.lower", {}, lam=1)  # clock not computed
    a2_high = a.branch(1, a1.hash, "~lam+").write("hand.lower", {}, lam=3)  # one too high
    a2_max = a.branch(1, a1.hash, "~max").write("hand.lower", {}, T0, lam=(1 << 53) - 1)
    a2_wrong = a.branch(1, bytes(32), "~prev").write("hand.lower", {}, lam=2)  # prev not a1's
    other = Author("alice", OTHER_MID, Room()).write("hand.raise", {})
    eve1 = Author("eve", room=Room()).write("hand.raise", {})
    bob1 = Author("bob", room=Room()).write("hand.raise", {})
    # bob writes after seeing alice#2: his entry names it and waits for it (§3.4)
    causal = new_room()
    ca = Author("alice", room=causal)
    c1, c2 = ca.write("hand.raise", {}), ca.write("hand.lower", {})
    cb = Author("bob", room=causal)
    b1_after = cb.write("hand.raise", {})
    require(b1_after.deps == ((IDS["alice"].key, 2),) and b1_after.lam == 3, "bob#1 names alice#2")
    b2_after = cb.write("hand.lower", {})
    b1_low = (
        Author("bob", room=causal)
        .branch(0, None, "~lam")
        .write("hand.raise", {}, seen=[c1, c2], lam=2)
    )
    b1_ignorant = (
        Author("bob", room=causal).branch(0, None, "~deps").write("hand.raise", {}, seen=[c1])
    )
    bob_body_as_alice = signed_envelope(IDS["bob"], a1.body)  # au=alice, signed by bob

    largest = signed_envelope(IDS["bob"], body_of_size(IDS["bob"], ENTRY_LIMITS.max_bin))
    too_large = signed_envelope(IDS["bob"], body_of_size(IDS["bob"], ENTRY_LIMITS.max_bin + 1))
    require(len(largest) == ENTRY_LIMITS.max_bytes, "the largest envelope is max_bytes long")
    require(len(too_large) == ENTRY_LIMITS.max_bytes + 1, "one byte more")

    cases = [
        feed_case("in_order", "a feed grows one entry at a time", [("", a1), ("", a2), ("", a3)]),
        feed_case(
            "entry_size_limit",
            "the entry limits are both reached (SPEC §2.3): a body of 65408 bytes (max_bin) "
            "makes an envelope of 65478 bytes (max_bytes); one byte more is refused by size",
            [
                ("a body of 65409 bytes: an envelope of 65479 bytes", too_large),
                ("a body of 65408 bytes: an envelope of 65478 bytes", largest),
            ],
        ),
        feed_case(
            "duplicate",
            "the same entry again changes nothing; its body with a bad signature is refused",
            [("", a1), ("", a1), ("same body, bad signature", flip_bit(a1.envelope))],
        ),
        feed_case("wrong_meeting", "", [("entry of another meeting", other)]),
        feed_case("unknown_author", "", [("eve is in no roster", eve1)]),
        feed_case(
            "bad_signature",
            "",
            [
                ("one bit of the signature flipped", flip_bit(a1.envelope)),
                ("alice's body signed by bob", bob_body_as_alice),
            ],
        ),
        feed_case(
            "broken_chain",
            "prev must be the hash of the previous body",
            [("", a1), ("prev is not a1's hash", a2_wrong), ("", a2)],
        ),
        feed_case(
            "bad_clock",
            "lam must be 1 + max(lam of prev, lam of each dependency) (SPEC §3.3 step 5.4): "
            "any other clock is refused, 2^53 - 1 included",
            [
                ("", a1),
                ("lam equal to a1's", a2_flat),
                ("lam one above the computed clock", a2_high),
                ("lam 2^53 - 1", a2_max),
                ("", a2),
            ],
        ),
        feed_case(
            "dependency_buffered",
            "an entry waits in the buffer until every entry its deps name is accepted, "
            "and the log asks for what it waits for (SPEC §3.3 step 5.4, §3.4)",
            [
                ("bob#1 names alice#2, which this log lacks", b1_after),
                ("bob#2 waits behind bob#1", b2_after),
                ("", c1),
                ("alice#2 releases bob#1 and bob#2", c2),
            ],
        ),
        feed_case(
            "dependency_clock",
            "a clock is computed from the dependencies named: one below is refused; a "
            "writer may name fewer (claim ignorance), and its clock follows that claim",
            [
                ("", c1),
                ("", c2),
                ("names alice#2 with the clock of alice#1 + 1", b1_low),
                ("names only alice#1: accepted, clock 2", b1_ignorant),
            ],
        ),
        feed_case(
            "gap",
            "out-of-order entries wait for their predecessor, then all are released in order",
            [("", a1), ("", a3), ("", a4), ("", a3), ("", a2)],
        ),
        feed_case(
            "gap_bad_link_dropped",
            "a buffered entry that does not link to the released predecessor is dropped",
            [("", a1), ("links to a seq 2 we never see", a3_off), ("", a2), ("", a3)],
        ),
        feed_case(
            "fork",
            "a second entry at an accepted seq: fork proof, feed cut before the fork, frozen",
            [
                ("", a1),
                ("", a2),
                ("", a3),
                ("different entry at seq 2", a2x),
                ("either half of the proof is a duplicate", a2),
                ("", a2x),
                ("beyond the fork", a3),
                ("before the fork", a1),
                ("another entry beyond the fork", a3x),
                ("other authors are not affected", bob1),
            ],
        ),
        feed_case(
            "fork_in_buffer",
            "a second entry at a buffered seq is a fork too",
            [("", a1), ("", a3), ("", a3x), ("", a2), ("", a3), ("", a4)],
        ),
        feed_case(
            "earlier_fork_replaces",
            "a fork at an earlier seq replaces the proof and cuts the feed further",
            [("", a1), ("", a2), ("", a3), ("", a3x), ("", a2x)],
        ),
        feed_case(
            "fork_proof_message",
            "a fork proof from a peer freezes the feed without the feed holding either entry",
            [
                ("", a1),
                ("", [a2x.envelope, a2.envelope]),
                ("the same proof again", [a2.envelope, a2x.envelope]),
                ("", a2),
                ("", a3),
            ],
        ),
        feed_case(
            "bad_fork_proofs",
            "",
            [
                ("one entry", [a2.envelope]),
                ("the same entry twice", [a2.envelope, a2.envelope]),
                ("different seqs", [a2.envelope, a3.envelope]),
                ("different authors", [a1.envelope, bob1.envelope]),
                ("a bad signature", [a2.envelope, flip_bit(a2x.envelope)]),
                ("an outsider's entry", [a1.envelope, eve1.envelope]),
                ("nothing changed", a1),
            ],
        ),
    ]
    return {
        "description": (
            "Feed ingestion (SPEC §3.3 to §3.6). Each case starts from an empty log of meeting "
            "mid_hex in which the authors in 'known' may write. Each step ingests one "
            "envelope (envelope_hex) or one fork proof (fork_proof_hex) and MUST have the "
            "outcome in 'expect': accepted (seqs newly in the feed, in order), duplicate, "
            "buffered (with the author's missing range, and 'wanted': every range the log "
            "would ask for, gaps and dependencies, SPEC §3.4), fork (seq, the seqs "
            "cut from the feed, the proof in canonical order) or error (code). 'final' is "
            "the summary vector, the frozen feeds, the missing ranges and 'wanted' after the "
            "last step."
        ),
        "conventions": CONVENTIONS,
        "mid_hex": h(MID),
        "cases": cases,
    }


# --- state.json ----------------------------------------------------------------------


def state_summary(state: MeetingState, labels: dict[bytes, str]) -> dict[str, Any]:
    def who(key: bytes | None) -> str | None:
        return None if key is None else NAME_OF[key]

    return {
        "created": state.created,
        "title": state.title,
        "settings": state.settings,
        "epoch": state.epoch,
        "facilitator": who(state.facilitator),
        "facilitator_hex": None if state.facilitator is None else h(state.facilitator),
        "term": state.term,
        "absent": sorted(who(k) for k in state.absent_votes),
        "members": [
            {
                "name": NAME_OF[m.key],
                "order": m.order,
                "active": m.active,
                "gone": m.gone,
                "upto": m.upto,
                "away": m.away,
                "returns": m.returns,
                "replaces": who(m.replaces),
            }
            for m in sorted(state.members.values(), key=lambda m: m.order)
        ],
        "steps": [{"id": s.id, "status": s.status} for s in state.steps],
        "current": state.current,
        "contributions": [labels[c.id] for c in state.contributions],
        "ratings": sorted(
            [state.steps[step].id, labels.get(ref) if ref else None, who(author), value]
            for (step, ref, author), value in state.ratings.items()
        ),
        "proposals": sorted(labels[p] for p in state.proposals),
        "polls": [
            {
                "poll": labels[p.id],
                "proposal": labels[p.proposal],
                "status": p.status,
                "votes_in_fold_order": [
                    f"{who(v.author)}#{v.seq}:{v.choice}"
                    + ("" if v.reason is None else f" ({v.reason[:24]})")
                    for v in p.votes
                ],
                "outcome": p.result.outcome if p.result else None,
                "counts": p.result.counts if p.result else None,
                "voters": p.result.voters if p.result else None,
                "members": p.result.members if p.result else None,
                "quorum": p.result.quorum if p.result else None,
                "cosigners": [who(k) for k in sorted(p.cosigners)],
                "recorded_outcome": p.outcome,
                "closes": [
                    {
                        "close": labels[c.id],
                        "counted_members": sorted(who(k) for k in c.members),
                        "final": c.final,
                        "objections": {
                            who(k): [f"{who(a)}#{seq}" for a, seq in left]
                            for k, left in sorted(c.objections.items())
                        },
                    }
                    for c in p.closes
                ],
            }
            for p in sorted(state.polls.values(), key=lambda p: p.id)
        ],
        "queue": {
            "waiting": [who(k) for k in state.queue.waiting],
            "speaker": who(state.queue.speaker),
            "since_ms": state.queue.since_ms,
            "talk_ms": {who(k): v for k, v in sorted(state.queue.talk_ms.items())},
            "turns": {who(k): v for k, v in sorted(state.queue.turns.items())},
        },
        "frozen": {who(k): v for k, v in sorted(state.frozen.items())},
        **(
            {}
            if "admission" not in state.to_canonical()
            else {
                "admission": {
                    "joining_open": state.joining_open,
                    "retired_codes": sorted(list(words) for words in state.retired_codes),
                    "viewers": {who(k): name for k, name in sorted(state.viewers.items())},
                }
            }
        ),
        "applied": state.applied,
        "ignored": [
            {"entry": labels[entry_id], "hash_hex": h(entry_id), "reason": refused.text}
            for entry_id, refused in state.ignored
        ],
    }


def replay(delivery: list[bytes], creator: bytes) -> tuple[Session, list[str]]:
    """Deliver each envelope as its own ``entries`` message to a fresh observer."""
    session = Session.join(IDS["observer"], MID, creator, clock=lambda: T0)
    events: list[str] = []
    peer = IDS["alice"].key
    for envelope in delivery:
        message = pack({"t": "entries", "mid": MID, "e": [envelope]})
        for event in session.receive(peer, message):
            if isinstance(event, InputRejected):
                raise RuntimeError(f"vector generation: rejected: {event}")
            if isinstance(event, ForkDetected):
                events.append(f"fork {NAME_OF[event.author]}#{event.seq}")
            elif not isinstance(event, EntryAccepted | MeetingChanged):
                events.append(str(event))
    return session, events


def state_case(
    name: str, note: str, delivery: list[Entry], intent: dict[str, Any]
) -> dict[str, Any]:
    creator = IDS["alice"].key
    session, events = replay([e.envelope for e in delivery], creator)
    state = session.state
    labels = {e.hash: label(e) for e in delivery}
    canonical = pack(state.to_canonical())
    summary = state_summary(state, labels)
    # The script means something: if the fold stops agreeing, fail rather than
    # quietly writing vectors for a different meeting.
    for key, wanted in intent.items():
        got = [i["entry"] for i in summary["ignored"]] if key == "ignored" else summary[key]
        if key == "polls":
            got = [(p["outcome"], p["counts"]) for p in got]
        require(got == wanted, f"{name}: {key} is {got!r}, the script means {wanted!r}")
    return {
        "name": name,
        "note": note,
        "creator": "alice",
        "log": [{"label": label(e), "envelope_hex": h(e.envelope)} for e in delivery],
        "fold_order": [label(e) for e in session.fold_order()],
        "forks": events,
        "expect": {
            "digest_hex": h(state.digest()),
            "state_canonical_hex": h(canonical),
            "summary": summary,
        },
    }


def state_vectors() -> dict[str, Any]:
    delivery = main_meeting()
    return {
        "description": (
            "Whole meetings folded into state (SPEC §5, §6). 'log' is every envelope in "
            "delivery order; a laptop that ingests them (SPEC §3) and folds its log (SPEC "
            "§5) MUST reach state_canonical_hex (SPEC §6.8) and digest_hex, whatever the "
            "delivery order. 'fold_order' lists the entries the fold sees, in order. "
            "'summary' is informative: it reads the canonical state for people; the "
            "'reason' texts are the reference implementation's and not normative."
        ),
        "conventions": CONVENTIONS,
        "mid_hex": h(MID),
        "state_context_hex": h(b"relsec/v2/state\x00"),
        "cases": [
            state_case(
                "meeting",
                "create, three members added, steps, contributions, speaking queue, rating, "
                "proposal, poll with a changed vote and a vote concurrent with the close (outside "
                "its cut, re-dated after it once it settled), "
                "close, hand-over, succession by an absent majority, a join code, the tally "
                "co-signed and the outcome recorded",
                delivery,
                {
                    "facilitator": "carol",
                    "term": 3,
                    "epoch": 4,
                    "polls": [
                        ("consensus", {"agree": 2, "concerns": 1, "stand_aside": 1, "block": 0})
                    ],
                    "ignored": [
                        "bob#1",
                        "carol#3",
                        "bob#5",  # after the close: re-dated once the close settled
                        "carol#6",
                        "bob#6",
                        "alice#14",
                        "alice#15",
                        "dan#7",
                        "dan#8",
                        "bob#8",
                        "dan#9",
                        "bob#9",
                    ],
                },
            ),
            state_case(
                "vote_reasons",
                "a concern and a block carry a reason (SPEC §6.5 vote.cast); a reason with "
                "an agree, one of two lines and one over MAX_REASON characters are ignored; "
                "a newer vote without a reason replaces one with",
                vote_reasons_meeting(),
                {"ignored": ["carol#2", "alice#7", "alice#8"]},
            ),
            state_case(
                "anonymous_poll",
                "a poll opened as anonymous on a step of mode both (SPEC §6.5 poll.open): "
                "its row ends with true; a named vote on it and an anonymous field that is "
                "not a bool are ignored; closed with no anonymous vote, no quorum",
                anonymous_poll_meeting(),
                {
                    "ignored": ["alice#5", "bob#2"],
                    "polls": [
                        ("no_quorum", {"agree": 0, "concerns": 0, "stand_aside": 0, "block": 0})
                    ],
                },
            ),
            state_case(
                "removal_restart",
                "carol back-dates an entry below her removal: the fold restarts with her cap "
                "(SPEC §5.3); bob leaves and his later entry is ignored",
                removal_meeting(),
                {"epoch": 5, "ignored": ["carol#2", "carol#3", "bob#3"]},
            ),
            state_case(
                "presence",
                "bob, carol and alice declare dan away (2 of 5 present is not enough, 3 is); "
                "dan, away, declares nobody; erin is declared away by 3 of the 4 present; a "
                "unanimous 3 reach the quorum of the 3 members present (SPEC §6.5); dan comes "
                "back and a declaration about his earlier absence is stale; frank joins as "
                "'Erin' and replaces erin's key; bob and then the facilitator alice are "
                "declared away, and facilitation passes to carol, skipping bob (SPEC §6.1 "
                "'Presence', §6.2)",
                presence_meeting(),
                {
                    "facilitator": "carol",
                    "term": 2,
                    "epoch": 7,
                    "polls": [
                        ("consensus", {"agree": 3, "concerns": 0, "stand_aside": 0, "block": 0})
                    ],
                    "ignored": ["dan#1", "bob#4"],
                },
            ),
            state_case(
                "fork",
                "bob equivocates at seq 2: his feed keeps seq 1 only and is frozen",
                fork_meeting(),
                {"frozen": {"bob": 2}, "contributions": ["bob#1"], "ignored": []},
            ),
            state_case(
                "names_and_whitespace",
                "display names and text at the edge of the written lists of SPEC §6.0 and "
                "§6.1: ZWJ, 64 four-byte characters and an unassigned code point are allowed; "
                "a soft hyphen, a tag, U+200B, the unassigned U+2065 and a noncharacter are "
                "not; U+180E and U+200B are text, U+001C and U+0085 are whitespace",
                names_and_whitespace_meeting(),
                {
                    "ignored": [
                        *("alice#3", "alice#4", "alice#5", "alice#7", "alice#8", "alice#9"),
                        "bob#1",
                    ]
                },
            ),
            state_case(
                "admission",
                "the facilitator closes joining (a member cannot), admits a room display that "
                "is never a member, removes carol, which retires the join code so that the "
                "old words are refused, and publishes a fresh code (SPEC §12.11, §12.12); the "
                "display's own entry is never stored, its key being no known author (§3.3)",
                admission_meeting(),
                {"epoch": 4, "ignored": ["bob#1", "bob#2"]},
            ),
            state_case(
                "settlement",
                "a step change and a poll close that claim not to have seen settled "
                "declarations are re-dated after them (SPEC §5.1, §9.2): alice no longer "
                "facilitates there, so both are ignored (the close by SPEC §6.5 condition 7, "
                "though its cut makes alice the facilitator); the acks (SPEC §6.10) are what "
                "settles the declarations",
                settlement_meeting(),
                {"facilitator": "bob", "current": 1, "ignored": ["alice#7", "alice#8"]},
            ),
            state_case(
                "roster_full",
                "1 024 keys have been members (1 023 added and removed, and the creator): "
                "a 1 025th roster.add is ignored (SPEC §6.1 condition 7, MAX_MEMBERS_EVER)",
                roster_full_meeting(),
                {"epoch": 2 * MAX_MEMBERS_EVER - 1, "ignored": [f"alice#{2 * MAX_MEMBERS_EVER}"]},
            ),
            state_case(
                "agenda_at_limit",
                "an agenda of exactly 64000 bytes (SPEC §6.3 MAX_AGENDA_BYTES) is valid",
                agenda_limit_meeting(MAX_AGENDA_BYTES),
                {"created": True, "ignored": []},
            ),
            state_case(
                "agenda_over_limit",
                "an agenda of 64001 bytes makes meeting.create ignored, so is every entry",
                agenda_limit_meeting(MAX_AGENDA_BYTES + 1),
                {"created": False, "ignored": ["alice#1", "alice#2"]},
            ),
            state_case(
                "agenda_translations",
                "a step carries its text in Spanish and Brazilian Portuguese (SPEC §6.3 "
                "Translations): the rating counts against the step's own scale, and the "
                "translations are the tenth element of the step's row in the state (§6.8)",
                translations_meeting(
                    {
                        "es": {
                            "title": "¿Qué tan probable?",
                            "prompt": "¿Qué tan probable es?",
                            "scale": ["improbable", "probable"],
                        },
                        "pt-BR": {"title": "Qual a probabilidade?", "help": ""},
                    }
                ),
                {"created": True, "ignored": []},
            ),
            state_case(
                "agenda_bad_translation",
                "a translated scale with fewer labels than the step's makes the agenda "
                "invalid: meeting.create is ignored, and so is every entry",
                translations_meeting({"fr": {"scale": ["peu probable"]}}),
                {"created": False, "ignored": ["alice#1", "alice#2", "alice#3"]},
            ),
        ],
    }


# --- frames.json ----------------------------------------------------------------------


def frames_vectors() -> dict[str, Any]:
    payloads = [b"\xc0", pack({"t": "have", "mid": MID, "heads": []}), bytes(300)]
    encode = [{"payload_hex": h(p), "frame_hex": h(frame(p))} for p in payloads]
    f1, f2 = frame(payloads[0]), frame(payloads[1])
    streams: list[tuple[str, list[bytes]]] = [
        ("one frame", [f1]),
        ("two frames in one read", [f1 + f2]),
        ("a frame split inside its header", [f2[:2], f2[2:]]),
        ("a frame split inside its payload", [f2[:7], f2[7:]]),
        ("a frame and the start of the next", [f1 + f2[:3]]),
        ("header of the largest frame: waits for 1 MiB of payload", [(1 << 20).to_bytes(4, "big")]),
        ("zero-length frame", [bytes(4)]),
        ("header one byte over 1 MiB", [((1 << 20) + 1).to_bytes(4, "big")]),
        ("largest header", [b"\xff\xff\xff\xff"]),
        ("an oversized header after a good frame", [f1, b"\x7f\x00\x00\x00"]),
    ]
    decode = []
    for note, chunks in streams:
        decoder = FrameDecoder()
        frames: list[str] = []
        row: dict[str, Any] = {"note": note, "chunks_hex": [h(c) for c in chunks]}
        try:
            for chunk in chunks:
                frames += [h(f) for f in decoder.feed(chunk)]
        except RelsecError as error:
            row["frames_hex"] = frames
            row["code"] = error.code
        else:
            row["frames_hex"] = frames
            row["buffered"] = decoder.buffered
        decode.append(row)
    refuse = [
        {"note": "empty payload", "payload_len": 0, "code": error_code(lambda: frame(b""))},
        {
            "note": "payload over 1 MiB",
            "payload_len": (1 << 20) + 1,
            "code": error_code(lambda: frame(bytes((1 << 20) + 1))),
        },
    ]
    return {
        "description": (
            "Frames (SPEC §2.5): a 4-byte big-endian length, then that many bytes; 1 to "
            "1 MiB. 'encode': framing payload_hex MUST give frame_hex. 'decode': feeding "
            "chunks_hex in order to a frame decoder MUST yield frames_hex, then either leave "
            "'buffered' bytes waiting or fail with code (and the stream is dropped). "
            "'refuse': a sender MUST NOT frame such a payload (local error)."
        ),
        "conventions": CONVENTIONS,
        "max_frame": 1 << 20,
        "encode": encode,
        "decode": decode,
        "refuse": refuse,
    }


# --- sync.json ------------------------------------------------------------------------


def sync_vectors() -> dict[str, Any]:
    new_room()
    a, b = Author("alice"), Author("bob")
    agenda = [AGENDA[0]]
    log = [
        a.write("meeting.create", create_data("alice", "Check-in", agenda, {})),
        a.write("roster.add", add_data("bob")),
        a.write("step.open", {"step": 0}),
        b.write("contrib.add", {"step": 0, "text": "Hello."}),
        b.write("hand.raise", {}),
    ]
    a_fork = a.fork()
    a4 = a.write("hand.raise", {})
    a4x = a_fork.write("hand.lower", {})
    peer = IDS["carol"].key  # whoever is on the other end of the link
    creator = IDS["alice"].key
    labels = {e.hash: label(e) for e in [*log, a4, a4x]}

    def responder(entries: list[Entry]) -> Session:
        session = Session.join(IDS["observer"], MID, creator, clock=lambda: T0)
        session.receive(
            peer, pack({"t": "entries", "mid": MID, "e": [e.envelope for e in entries]})
        )
        session.peer_connected(peer)
        session.take_sends()
        return session

    def message(kind: str, **fields: Any) -> bytes:
        return pack({"t": kind, "mid": MID, **fields})

    def heads(*entries: Entry) -> list[list[Any]]:
        return [[e.author, e.seq, e.hash] for e in entries]

    cases_in: list[tuple[str, list[Entry], bytes]] = [
        (
            "have from an empty peer: everything in fold order (not bob first, by key)",
            log,
            message("have", forks=[], heads=[]),
        ),
        (
            "have with alice at seq 2: the rest of alice's feed and all of bob's",
            log,
            message("have", forks=[], heads=heads(log[1])),
        ),
        (
            "have equal to ours: nothing to send",
            log,
            message("have", forks=[], heads=heads(log[2], log[4])),
        ),
        (
            "have that diverges at alice#2: our alice#2 first, so they can prove the fork",
            log,
            message("have", forks=[], heads=[[creator, 2, bytes(32)]]),
        ),
        (
            "want a range",
            log,
            message("want", r=[[creator, 2, 3]]),
        ),
        (
            "want beyond what we hold",
            log,
            message("want", r=[[creator, 3, 9], [IDS["bob"].key, 5, 9]]),
        ),
        (
            "entries with a gap: the gap is asked for",
            [],
            message("entries", e=[log[0].envelope, log[2].envelope]),
        ),
        (
            "entries in a batch before the roster.add that admits their author",
            [],
            message("entries", e=[log[3].envelope, log[0].envelope, log[1].envelope]),
        ),
        (
            "entries that fork a feed: the proof goes to every peer",
            [*log, a4],
            message("entries", e=[a4x.envelope]),
        ),
        (
            "a fork proof: a new one is passed on to the other peers",
            log,
            message("fork", p=[a4.envelope, a4x.envelope]),
        ),
        ("unknown message type", log, message("hello")),
        ("message of another meeting", log, pack({"t": "have", "mid": OTHER_MID, "heads": []})),
        ("have with an extra field", log, message("have", forks=[], heads=[], x=1)),
        ("a head with seq 0", log, message("have", forks=[], heads=[[creator, 0, bytes(32)]])),
        ("want with 257 ranges", log, message("want", r=[[creator, 1, 1]] * 257)),
        ("not a map", log, pack(["have"])),
        ("not canonical", log, msgpack.packb({"t": "have", "mid": MID, "heads": []})),
    ]
    cases = []
    for note, held, payload in cases_in:
        session = responder(held)
        third = IDS["dan"].key  # another connected peer, to show who a broadcast reaches
        session.peer_connected(third)
        session.take_sends()
        events = session.receive(peer, payload)
        sends = session.take_sends()
        cases.append(
            {
                "note": note,
                "holds": [label(e) for e in held],
                "payload_hex": h(payload),
                "events": [
                    {"rejected": event.code, "fatal": event.fatal}
                    if isinstance(event, InputRejected)
                    else {"accepted": labels[event.hash]}
                    if isinstance(event, EntryAccepted)
                    else {"fork": f"{NAME_OF[event.author]}#{event.seq}"}
                    if isinstance(event, ForkDetected)
                    else {"changed": True}
                    for event in events
                ],
                "sends": [
                    {"to": NAME_OF[send.peer], "payload_hex": h(send.payload)} for send in sends
                ],
            }
        )
    return {
        "description": (
            "Sync messages (SPEC §7). A laptop holding the entries in 'holds' (meeting "
            "mid_hex, creator alice), linked to carol (who sends payload_hex) and to dan, "
            "receives payload_hex from carol. It MUST report 'events' (entries newly "
            "accepted, forks, a meeting change, or a rejection with its code and whether the "
            "link should be dropped) and send exactly 'sends', in order."
        ),
        "conventions": CONVENTIONS,
        "mid_hex": h(MID),
        "entries": [
            {"label": label(e), "envelope_hex": h(e.envelope), "hash_hex": h(e.hash)}
            for e in [*log, a4, a4x]
        ],
        "cases": cases,
    }


# --- ring.json ------------------------------------------------------------------------

# More ring members than the four named ones, for the eight-key ring; public test seeds.
RING_EXTRA_SEEDS: dict[str, bytes] = {f"ring{i}": bytes([0x20 + i]) * 32 for i in range(1, 5)}
# The order-8 point of edwards25519 (x positive): a torsion component for bad tags.
TORSION8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
POLL_1, POLL_2 = bytes([0xA1]) * 32, bytes([0xA2]) * 32


def ring_vectors() -> dict[str, Any]:
    members = {name: IDS[name] for name in ("alice", "bob", "carol", "dan")}
    members.update({name: Identity.from_seed(seed) for name, seed in RING_EXTRA_SEEDS.items()})
    name_of_ring = {m.ring_key: name for name, m in members.items()}

    def ring_of(*names: str) -> list[bytes]:
        return sorted(members[n].ring_key for n in names)  # the callers' canonical order

    def outcome(message: bytes, keys: list[bytes], signature: bytes, event: bytes) -> list[str]:
        try:
            ring.verify(message, keys, signature, event)
        except ring.BadRingSignature as error:
            return [error.code, error.reason]
        raise RuntimeError("vector generation: expected a ring signature to be refused")

    four = ring_of("alice", "bob", "carol", "dan")
    others = ring_of(*RING_EXTRA_SEEDS)
    eight = ring_of(*members)
    five = ring_of("alice", "carol", "ring1", "ring2", "ring3")
    scripted: list[tuple[str, str, list[bytes], bytes, bytes]] = [
        # (note, signer, ring, event, message)
        ("a ring of one", "alice", ring_of("alice"), POLL_1, b"round 1: agree"),
        ("four members", "bob", four, POLL_1, b"round 1: agree"),
        ("bob again, same poll, later round: same tag", "bob", four, POLL_1, b"round 2: block"),
        ("bob in another poll: another tag", "bob", four, POLL_2, b"round 1: agree"),
        ("carol in the first poll: her own tag", "carol", four, POLL_1, b"round 1: agree"),
        ("eight members, empty message", "dan", eight, POLL_1, b""),
        ("empty event, long message", "ring3", five, b"", bytes(range(256)) * 2),
    ]
    valid = []
    for number, (note, signer, keys, event, message) in enumerate(scripted, start=1):
        seed = bytes([0xB0 + number]) * 32
        draws = 0
        rng = ring.seeded_rng(seed)

        def counted(n: int, rng: ring.Rng = rng) -> bytes:
            nonlocal draws
            draws += 1
            return rng(n)

        secret = members[signer].ring_secret
        signature = ring.sign(message, keys, secret, event, rng=counted)
        tag = ring.verify(message, keys, signature, event)
        require(tag == ring.link_tag(secret, event), note)
        valid.append(
            {
                "note": note,
                "signer": signer,
                "signer_index": keys.index(members[signer].ring_key),
                "ring": [name_of_ring[k] for k in keys],
                "ring_hex": [h(k) for k in keys],
                "event_hex": h(event),
                "message_hex": h(message),
                "rng_seed_hex": h(seed),
                "draws": draws,
                "transcript_hex": h(ring.transcript(message, keys, tag, event)),
                "tag_hex": h(tag),
                "signature_hex": h(signature),
            }
        )
    tags = {row["note"]: row["tag_hex"] for row in valid}
    require(tags[scripted[1][0]] == tags[scripted[2][0]], "same member, same poll: same tag")
    require(tags[scripted[1][0]] != tags[scripted[3][0]], "another poll: another tag")
    require(tags[scripted[1][0]] != tags[scripted[4][0]], "another member: another tag")

    # Tampered copies of the four-member signature (bob, poll 1, round 1).
    base = valid[1]
    message, event = bytes.fromhex(base["message_hex"]), POLL_1
    signature = bytes.fromhex(base["signature_hex"])
    tag, c0 = signature[:32], signature[32:64]
    responses = [signature[64 + 32 * i : 96 + 32 * i] for i in range(4)]

    def with_scalar(index: int, value: int) -> bytes:
        scalars = [c0, *responses]
        scalars[index] = value.to_bytes(32, "little")
        return tag + b"".join(scalars)

    def flip(offset: int) -> bytes:
        out = bytearray(signature)
        out[offset] ^= 0x01
        return bytes(out)

    def as_int(scalar: bytes) -> int:
        return int.from_bytes(scalar, "little")

    bob_poll2_tag = bytes.fromhex(valid[3]["tag_hex"])
    carol_tag = bytes.fromhex(valid[4]["tag_hex"])
    torsioned_tag = bindings.crypto_core_ed25519_add(tag, TORSION8)
    torsioned_key = bindings.crypto_core_ed25519_add(four[3], TORSION8)
    identity_point = bytes([1]) + bytes(31)
    y_equals_p = bytes.fromhex("ed" + "ff" * 30 + "7f")  # y = 2^255 - 19: not canonical
    tampered: list[tuple[str, list[bytes], bytes, bytes, bytes]] = [
        # (note, ring, event, message, signature)
        ("empty ring", [], event, message, signature),
        ("ring of 257 keys", [four[0]] * 257, event, message, signature),
        ("a ring key of order 8", [*four[:3], TORSION8], event, message, signature),
        ("a ring key plus torsion", [*four[:3], torsioned_key], event, message, signature),
        ("a ring key that is the identity", [*four[:3], identity_point], event, message, signature),
        ("a ring key of 31 bytes", [*four[:3], four[3][:31]], event, message, signature),
        ("a ring key listed twice", [four[0], *four[:3]], event, message, signature),
        ("one byte short", four, event, message, signature[:-1]),
        ("one byte long", four, event, message, signature + b"\x00"),
        ("a key more in the ring", [*four, others[0]], event, message, signature),
        ("tag plus the order-8 point", four, event, message, torsioned_tag + signature[32:]),
        ("tag is the identity", four, event, message, identity_point + signature[32:]),
        ("tag not canonical (y = p)", four, event, message, y_equals_p + signature[32:]),
        ("c_0 + L", four, event, message, with_scalar(0, as_int(c0) + ring.L)),
        ("c_0 = 0", four, event, message, with_scalar(0, 0)),
        ("r_2 + L", four, event, message, with_scalar(3, as_int(responses[2]) + ring.L)),
        ("r_0 = 0", four, event, message, with_scalar(1, 0)),
        ("r_3 = L", four, event, message, with_scalar(4, ring.L)),
        ("bob's tag from poll 2", four, event, message, bob_poll2_tag + signature[32:]),
        ("carol's tag", four, event, message, carol_tag + signature[32:]),
        ("lowest bit of c_0 flipped", four, event, message, flip(32)),
        ("lowest bit of r_1 flipped", four, event, message, flip(96)),
        ("ring in reverse order", four[::-1], event, message, signature),
        ("another ring of four", others, event, message, signature),
        ("another event", four, POLL_2, message, signature),
        ("another message (a replay in round 2)", four, event, b"round 2: agree", signature),
    ]
    invalid = []
    for note, keys, ev, msg, sig in tampered:
        code, reason = outcome(msg, keys, sig, ev)
        invalid.append(
            {
                "note": note,
                "ring_hex": [h(k) for k in keys],
                "event_hex": h(ev),
                "message_hex": h(msg),
                "signature_hex": h(sig),
                "code": code,
                "reason": reason,
            }
        )

    events = [POLL_1, POLL_2, b""]
    bases = []
    for event in events:
        wide = hashlib.blake2b(ring.EVENT_LABEL + event, digest_size=64).digest()
        bases.append(
            {
                "event_hex": h(event),
                "wide_hex": h(wide),
                "first_hex": h(bindings.crypto_core_ed25519_from_uniform(wide[:32])),
                "second_hex": h(bindings.crypto_core_ed25519_from_uniform(wide[32:])),
                "base_hex": h(ring.event_base(event)),
            }
        )
    uniform_inputs = [
        bytes(32),
        bytes([1]) + bytes(31),
        bytes(31) + b"\x80",
        bytes(range(32)),
        bytes(range(32))[:31] + bytes([0x1F | 0x80]),
        b"\xff" * 32,
    ]
    from_uniform = [
        {"input_hex": h(r), "point_hex": h(bindings.crypto_core_ed25519_from_uniform(r))}
        for r in uniform_inputs
    ]
    link_tags = [
        {"member": name, "event_hex": h(event), "tag_hex": h(ring.link_tag(m.ring_secret, event))}
        for name, m in members.items()
        for event in (POLL_1, POLL_2)
    ]
    return {
        "description": (
            "Linkable ring signatures (SPEC §13.1). 'from_uniform': libsodium's "
            "crypto_core_ed25519_from_uniform of input_hex MUST give point_hex. 'event_bases': "
            "wide_hex is BLAKE2b-512(event_label || event), first/second the maps of its "
            "halves, base_hex their sum. 'link_tags': ring_secret times the event's base. "
            "'valid': signing message_hex over ring_hex (in that order) with the signer's "
            "ring secret in event_hex, the random source being the test generator seeded with "
            "rng_seed_hex (called 'draws' times, 64 bytes each), MUST give signature_hex; its "
            "challenge hashes start with transcript_hex; verifying it MUST return tag_hex. "
            "'invalid': verifying MUST fail with code, for the stated reason (the first "
            "failing check of SPEC §13.1.6)."
        ),
        "conventions": CONVENTIONS,
        "labels": {
            "event_hex": h(ring.EVENT_LABEL),
            "challenge_hex": h(ring.CHALLENGE_LABEL),
            "nonce_hex": h(ring.NONCE_LABEL),
            "test_rng_hex": h(ring.TEST_RNG_LABEL),
        },
        "test_rng": (
            "call k (k = 0, 1, ...) asking for n <= 64 bytes returns the first n bytes of "
            "BLAKE2b-512(test_rng label || rng_seed || k as 4 bytes little-endian)"
        ),
        "max_ring": ring.MAX_RING,
        "members": [
            {
                "name": name,
                "seed_hex": h(SEEDS.get(name) or RING_EXTRA_SEEDS[name]),
                "ring_secret_hex": h(m.ring_secret),
                "ring_key_hex": h(m.ring_key),
            }
            for name, m in members.items()
        ],
        "from_uniform": from_uniform,
        "event_bases": bases,
        "link_tags": link_tags,
        "valid": valid,
        "invalid": invalid,
    }


# --- link.json ---------------------------------------------------------------------------

# Fixed X25519 secrets for the link vectors. Real links draw fresh ones (SPEC §11.4).
LINK_SECRETS: dict[str, bytes] = {
    "initiator": bytes(range(0x20, 0x40)),
    "responder": bytes(range(0x40, 0x60)),
    "responder-again": bytes(range(0x60, 0x80)),  # the same responder, a later handshake
}
LINK_EPOCHS = {"alice": 4, "bob": 3, "eve": 1}


def link_kdf(shared: bytes, label: bytes, data: bytes) -> bytes:
    """SPEC §11.3: BLAKE2b-256 keyed with the X25519 output."""
    return hashlib.blake2b(label + data, key=shared, digest_size=32).digest()


def link_material(mid: bytes, initiator_secret: bytes, responder_secret: bytes) -> dict[str, bytes]:
    """Everything both sides derive from the two ephemeral keys, written from SPEC §11.3
    (not with the implementation's helpers, which the generator checks against it)."""
    from nacl import bindings

    e_i = bindings.crypto_scalarmult_base(initiator_secret)
    e_r = bindings.crypto_scalarmult_base(responder_secret)
    shared = bindings.crypto_scalarmult(initiator_secret, e_r)
    require(shared == bindings.crypto_scalarmult(responder_secret, e_i), "X25519 agrees")
    transcript = hashlib.blake2b(b"relsec/v2/link\x00" + mid + e_i + e_r, digest_size=32).digest()
    return {"e_i": e_i, "e_r": e_r, "shared": shared, "transcript": transcript}


def link_identity_box(
    material: dict[str, bytes],
    *,
    label: bytes,
    context: bytes,
    signer: Identity,
    key: bytes,
    epoch: int,
    extra: bytes,
    inner_fields: dict[str, Any] | None = None,
) -> dict[str, bytes]:
    """SPEC §11.4: the sealed, signed identity of one side."""
    from nacl.secret import SecretBox

    signed = material["transcript"] + extra + key + epoch.to_bytes(8, "big")
    signature = signer.sign(context, signed)
    fields = (
        {"key": key, "epoch": epoch, "sig": signature} if inner_fields is None else inner_fields
    )
    inner = pack(fields)
    box_key = link_kdf(material["shared"], label, material["transcript"])
    box = SecretBox(box_key).encrypt(inner, nonce=bytes(24)).ciphertext
    return {
        "box_key": box_key,
        "signed": signed,
        "signature": signature,
        "inner": inner,
        "box": bytes(box),
    }


def link_run(mid: bytes = MID) -> dict[str, Any]:
    """The happy handshake between alice (initiator) and bob (responder)."""
    from relsec_p2p.core.link import LINK_CONTEXT_INITIATOR, LINK_CONTEXT_RESPONDER

    alice, bob = IDS["alice"], IDS["bob"]
    m = link_material(mid, LINK_SECRETS["initiator"], LINK_SECRETS["responder"])
    responder_box = link_identity_box(
        m,
        label=b"box-r",
        context=LINK_CONTEXT_RESPONDER,
        signer=bob,
        key=bob.key,
        epoch=LINK_EPOCHS["bob"],
        extra=b"",
    )
    initiator_box = link_identity_box(
        m,
        label=b"box-i",
        context=LINK_CONTEXT_INITIATOR,
        signer=alice,
        key=alice.key,
        epoch=LINK_EPOCHS["alice"],
        extra=bob.key,
    )
    final = hashlib.blake2b(m["transcript"] + bob.key + alice.key, digest_size=32).digest()
    return {
        **m,
        "responder_box": responder_box,
        "initiator_box": initiator_box,
        "hi1": pack({"t": "hi1", "e": m["e_i"]}),
        "hi2": pack({"t": "hi2", "e": m["e_r"], "box": responder_box["box"]}),
        "hi3": pack({"t": "hi3", "box": initiator_box["box"]}),
        "final": final,
        "i2r": link_kdf(m["shared"], b"stream-i2r", final),
        "r2i": link_kdf(m["shared"], b"stream-r2i", final),
    }


def link_handshake(role: str, me: str, secret: str, accept: list[str], mid: bytes = MID) -> Any:
    from relsec_p2p.core.link import Handshake

    return Handshake(
        IDS[me],
        mid,
        initiator=role == "initiator",
        epoch=LINK_EPOCHS[me],
        accept={IDS[name].key for name in accept}.__contains__,
        ephemeral_secret=LINK_SECRETS[secret],
    )


def link_refused_case(
    note: str,
    role: str,
    me: str,
    secret: str,
    accept: list[str],
    receive: list[bytes],
    intent: str,
    mid: bytes = MID,
) -> dict[str, Any]:
    """Feed ``receive`` to one side; every message but the last must be answered
    as the implementation answers, the last refused with ``intent``."""
    handshake = link_handshake(role, me, secret, accept, mid)
    row: dict[str, Any] = {
        "note": note,
        "role": role,
        "me": me,
        "epoch": LINK_EPOCHS[me],
        "mid_hex": h(mid),
        "ephemeral_secret_hex": h(LINK_SECRETS[secret]),
        "accept": accept,
    }
    if role == "initiator":
        row["start_hex"] = h(handshake.start())
    replies: list[str | None] = []
    for payload in receive[:-1]:
        reply = handshake.receive(payload)
        replies.append(None if reply is None else h(reply))
    code = error_code(lambda: handshake.receive(receive[-1]))
    require(code == intent, f"link case {note!r}: {code}, meant {intent}")
    row.update({"receive_hex": [h(p) for p in receive], "replies_hex": replies, "code": code})
    return row


def link_vectors() -> dict[str, Any]:
    from relsec_p2p.core.link import (
        HANDSHAKE_LIMITS,
        IDLE_TIMEOUT_S,
        KEEPALIVE_S,
        KIND_DATA,
        KIND_PING,
        LINK_CONTEXT_INITIATOR,
        LINK_CONTEXT_RESPONDER,
        MAX_LINK_FRAME,
        MAX_QUEUE_BYTES,
        STREAM_HEADER_BYTES,
        STREAM_OVERHEAD,
        LinkKeys,
    )

    alice, bob = IDS["alice"], IDS["bob"]
    run = link_run()
    # The implementation, with the same ephemeral secrets, MUST say exactly this.
    initiator = link_handshake("initiator", "alice", "initiator", ["bob"])
    responder = link_handshake("responder", "bob", "responder", ["alice"])
    require(initiator.start() == run["hi1"], "hi1")
    require(responder.receive(run["hi1"]) == run["hi2"], "hi2")
    require(initiator.receive(run["hi2"]) == run["hi3"], "hi3")
    require(responder.receive(run["hi3"]) is None, "the responder answers hi3 with nothing")
    require(
        initiator.result
        == LinkKeys(bob.key, LINK_EPOCHS["bob"], run["i2r"], run["r2i"], run["transcript"]),
        "initiator keys",
    )
    require(
        responder.result
        == LinkKeys(alice.key, LINK_EPOCHS["alice"], run["r2i"], run["i2r"], run["transcript"]),
        "responder keys",
    )

    def box_row(box: dict[str, bytes]) -> dict[str, str]:
        return {
            "box_key_hex": h(box["box_key"]),
            "signed_hex": h(box["signed"]),
            "signature_hex": h(box["signature"]),
            "inner_hex": h(box["inner"]),
            "box_hex": h(box["box"]),
        }

    # Messages for the refusals.
    hi1, hi2, hi3 = run["hi1"], run["hi2"], run["hi3"]
    m = link_material(MID, LINK_SECRETS["initiator"], LINK_SECRETS["responder"])
    flipped_hi3 = pack({"t": "hi3", "box": run["initiator_box"]["box"][:-1] + b"\x00"})
    wrong_context_hi3 = pack(
        {
            "t": "hi3",
            "box": link_identity_box(
                m,
                label=b"box-i",
                context=LINK_CONTEXT_RESPONDER,  # the other role's context
                signer=alice,
                key=alice.key,
                epoch=LINK_EPOCHS["alice"],
                extra=bob.key,
            )["box"],
        }
    )

    def responder_hi2(**changes: Any) -> bytes:
        """An hi2 for alice's hi1, built by hand with ``changes`` to the box."""
        material = changes.pop("material", m)
        signer = changes.pop("signer", bob)
        fields = dict(
            label=b"box-r",
            context=LINK_CONTEXT_RESPONDER,
            signer=signer,
            key=signer.key,
            epoch=LINK_EPOCHS.get(NAME_OF[signer.key], 1),
            extra=b"",
        )
        fields.update(changes)
        box = link_identity_box(material, **fields)["box"]
        return pack({"t": "hi2", "e": material["e_r"], "box": box})

    other_meeting = link_material(OTHER_MID, LINK_SECRETS["initiator"], LINK_SECRETS["responder"])
    require(responder_hi2(signer=bob) == hi2, "the hand-built hi2 is the real one")
    no_epoch = responder_hi2(inner_fields={"key": bob.key, "sig": bytes(64)})
    lying_epoch = link_identity_box(
        m,
        label=b"box-r",
        context=LINK_CONTEXT_RESPONDER,
        signer=bob,
        key=bob.key,
        epoch=LINK_EPOCHS["bob"],
        extra=b"",
    )
    lying_epoch_inner = canonical_unpack(lying_epoch["inner"])
    lying_epoch_inner["epoch"] = LINK_EPOCHS["bob"] + 1  # signed for 3, says 4
    lying_hi2 = responder_hi2(inner_fields=lying_epoch_inner)
    self_material = link_material(MID, LINK_SECRETS["initiator"], LINK_SECRETS["responder"])

    refused = [
        link_refused_case(
            "hi1 whose ephemeral key has 31 bytes",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [pack({"t": "hi1", "e": run["e_i"][:31]})],
            "malformed",
        ),
        link_refused_case(
            "hi1 whose ephemeral key is the all-zero point (X25519 output all zero)",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [pack({"t": "hi1", "e": bytes(32)})],
            "handshake_failed",
        ),
        link_refused_case(
            "hi1 with an extra field",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [pack({"t": "hi1", "e": run["e_i"], "x": 1})],
            "malformed",
        ),
        link_refused_case(
            "hi1 with a bin over the handshake limit of 1024 bytes",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [pack({"t": "hi1", "e": bytes(1025)})],
            "limit_exceeded",
        ),
        link_refused_case(
            "hi1 not in canonical form (keys out of order)",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [msgpack.packb({"t": "hi1", "e": run["e_i"]}, use_bin_type=True)],
            "non_canonical",
        ),
        link_refused_case(
            "hi3 before hi1", "responder", "bob", "responder", ["alice"], [hi3], "malformed"
        ),
        link_refused_case(
            "hi3 whose box was altered",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [hi1, flipped_hi3],
            "handshake_failed",
        ),
        link_refused_case(
            "hi3 signed with the responder's context",
            "responder",
            "bob",
            "responder",
            ["alice"],
            [hi1, wrong_context_hi3],
            "bad_signature",
        ),
        link_refused_case(
            "a valid hi3 from a key the responder does not accept",
            "responder",
            "bob",
            "responder",
            ["carol"],
            [hi1, hi3],
            "not_a_member",
        ),
        link_refused_case(
            "alice's hi1 and hi3 replayed to a later handshake of bob's",
            "responder",
            "bob",
            "responder-again",
            ["alice"],
            [hi1, hi3],
            "handshake_failed",
        ),
        link_refused_case(
            "hi2 from a responder of another meeting",
            "initiator",
            "alice",
            "initiator",
            ["bob"],
            [responder_hi2(material=other_meeting)],
            "handshake_failed",
        ),
        link_refused_case(
            "hi2 from a key the initiator does not accept",
            "initiator",
            "alice",
            "initiator",
            ["bob"],
            [responder_hi2(signer=IDS["eve"])],
            "not_a_member",
        ),
        link_refused_case(
            "hi2 from a laptop with the initiator's own key",
            "initiator",
            "alice",
            "initiator",
            ["alice", "bob"],
            [responder_hi2(material=self_material, signer=alice)],
            "handshake_failed",
        ),
        link_refused_case(
            "hi2 whose identity box lacks the epoch",
            "initiator",
            "alice",
            "initiator",
            ["bob"],
            [no_epoch],
            "malformed",
        ),
        link_refused_case(
            "hi2 whose epoch differs from the one signed",
            "initiator",
            "alice",
            "initiator",
            ["bob"],
            [lying_hi2],
            "bad_signature",
        ),
        link_refused_case(
            "the initiator's own hi1 reflected back",
            "initiator",
            "alice",
            "initiator",
            ["bob"],
            [hi1],
            "malformed",
        ),
    ]
    return {
        "description": (
            "The link handshake and keys (SPEC §11). 'handshake': alice (initiator) and bob "
            "(responder), with the fixed ephemeral X25519 secrets given, MUST exchange exactly "
            "hi1_hex, hi2_hex, hi3_hex and derive the keys shown; every intermediate value of "
            "SPEC §11.3-§11.6 is listed. 'refused': a handshake configured as given (role, own "
            "identity, epoch, meeting, ephemeral secret, the keys it accepts) that receives "
            "receive_hex in order MUST answer each message but the last with replies_hex "
            "(null: no answer) and refuse the last with code. The secretstream header is "
            "random, so the stream itself is tested by round trip, not by vector."
        ),
        "conventions": CONVENTIONS,
        "mid_hex": h(MID),
        "labels": {
            "transcript_hex": h(b"relsec/v2/link\x00"),
            "initiator_context_hex": h(LINK_CONTEXT_INITIATOR),
            "responder_context_hex": h(LINK_CONTEXT_RESPONDER),
            "box_r": "box-r",
            "box_i": "box-i",
            "stream_i2r": "stream-i2r",
            "stream_r2i": "stream-r2i",
        },
        "handshake": {
            "initiator": {
                "name": "alice",
                "key_hex": h(alice.key),
                "epoch": LINK_EPOCHS["alice"],
                "ephemeral_secret_hex": h(LINK_SECRETS["initiator"]),
                "ephemeral_public_hex": h(run["e_i"]),
            },
            "responder": {
                "name": "bob",
                "key_hex": h(bob.key),
                "epoch": LINK_EPOCHS["bob"],
                "ephemeral_secret_hex": h(LINK_SECRETS["responder"]),
                "ephemeral_public_hex": h(run["e_r"]),
            },
            "shared_secret_hex": h(run["shared"]),
            "transcript_hash_hex": h(run["transcript"]),
            "responder_box": box_row(run["responder_box"]),
            "initiator_box": box_row(run["initiator_box"]),
            "hi1_hex": h(hi1),
            "hi2_hex": h(hi2),
            "hi3_hex": h(hi3),
            "final_hash_hex": h(run["final"]),
            "i2r_key_hex": h(run["i2r"]),
            "r2i_key_hex": h(run["r2i"]),
        },
        "refused": refused,
        "limits": {
            "handshake": {
                "max_bytes": HANDSHAKE_LIMITS.max_bytes,
                "max_depth": HANDSHAKE_LIMITS.max_depth,
                "max_str": HANDSHAKE_LIMITS.max_str,
                "max_bin": HANDSHAKE_LIMITS.max_bin,
                "max_array": HANDSHAKE_LIMITS.max_array,
                "max_map": HANDSHAKE_LIMITS.max_map,
            },
        },
        "stream": {
            "header_bytes": STREAM_HEADER_BYTES,
            "overhead_bytes": STREAM_OVERHEAD,
            "kind_data": KIND_DATA[0],
            "kind_ping": KIND_PING[0],
            "max_link_frame": MAX_LINK_FRAME,
            "keepalive_s": KEEPALIVE_S,
            "idle_timeout_s": IDLE_TIMEOUT_S,
            "max_queue_bytes": MAX_QUEUE_BYTES,
        },
    }


# --- admission.json ----------------------------------------------------------------------

# Fixed SPAKE2 secrets (64 bytes each, read big-endian mod L: SPEC §12.5).
JOIN_ENTROPY: dict[str, bytes] = {
    "joiner": bytes(range(0x80, 0xC0)),
    "sponsor": bytes(range(0xC0, 0x100)),
}
JOIN_CODE_TEXT = "42-harbor-velvet-orbit"
WRONG_CODE_TEXT = "42-harbor-velvet-otter"
JOIN_NONCES = {"hello": bytes([0x4A]) * 24, "grant": bytes([0x47]) * 24}


class _FixedSpake:
    """admission's SPAKE2 with a fixed secret per handshake created, in order
    (vectors only: a real run draws its secret from the OS)."""

    def __init__(self, *entropies: bytes) -> None:
        self._queue = list(entropies)

    def __enter__(self) -> None:
        from relsec_p2p.core import admission

        self._original = admission.SPAKE2_Symmetric
        queue, original = self._queue, self._original

        def make(password: bytes, idSymmetric: bytes) -> Any:  # spake2's keyword name
            entropy = queue.pop(0)

            def entropy_f(count: int) -> bytes:
                require(count == len(entropy), "spake2 draws 64 bytes once")
                return entropy

            return original(password, idSymmetric=idSymmetric, entropy_f=entropy_f)

        admission.SPAKE2_Symmetric = make

    def __exit__(self, *exc: object) -> None:
        from relsec_p2p.core import admission

        admission.SPAKE2_Symmetric = self._original


def join_kdf(secret: bytes, label: bytes) -> bytes:
    """SPEC §12.6, written from the text."""
    return hashlib.blake2b(label, key=secret, digest_size=32, person=b"relsec/v2/kdf").digest()


def join_mac(key: bytes, transcript: bytes) -> bytes:
    return hashlib.blake2b(transcript, key=key, digest_size=32, person=b"relsec/v2/mac").digest()


def seal(key: bytes, plaintext: bytes, nonce: bytes) -> bytes:
    from nacl.secret import SecretBox

    return bytes(SecretBox(key).encrypt(plaintext, nonce))


def join_code_cases() -> list[dict[str, Any]]:
    from relsec_p2p.core import joincode

    # (text, canonical code or None, reason when refused: informative)
    table: list[tuple[str, str | None, str | None]] = [
        ("42-harbor-velvet-orbit", "42-harbor-velvet-orbit", None),
        ("  42 harbor velvet orbit\n", "42-harbor-velvet-orbit", None),
        ("42-HARBOR-Velvet-orbit", "42-harbor-velvet-orbit", None),
        ("42\u2014harbor\u2013velvet\u2212orbit", "42-harbor-velvet-orbit", None),
        ("42_harbor__velvet - orbit", "42-harbor-velvet-orbit", None),
        ("-42-harbor-velvet-orbit-", "42-harbor-velvet-orbit", None),
        ("42-harbour-velvet-orbit", "42-harbor-velvet-orbit", None),
        ("042-harbor-velvet-orbit", "42-harbor-velvet-orbit", None),
        ("10-acorn-zebra-fig", "10-acorn-zebra-fig", None),
        ("99-apple-apple-apple", "99-apple-apple-apple", None),
        ("", None, "empty"),
        (" \t ", None, "empty"),
        ("42-harbor-velvet", None, "shape"),
        ("42-harbor-velvet-orbit-fig", None, "shape"),
        ("42.harbor.velvet.orbit", None, "shape"),
        ("harbor-42-velvet-orbit", None, "shape"),
        ("+42-harbor-velvet-orbit", None, "shape"),
        ("\uff14\uff12-harbor-velvet-orbit", None, "shape"),
        ("42" + " " * 99 + "harbor velvet orbit", None, "shape"),
        ("42-harbr-velvet-orbit", None, "unknown_word_1"),
        ("42-harbor-velvet-orbits", None, "unknown_word_3"),
        ("42-harbor-v\u00e9lvet-orbit", None, "unknown_word_2"),
        ("9-harbor-velvet-orbit", None, "nameplate"),
        ("100-harbor-velvet-orbit", None, "nameplate"),
        ("5-harbr-velvet-orbit", None, "unknown_word_1"),
        # The written lists of §6.0 and §12.3, never a Unicode table:
        ("\u300042\u3000harbor\x1cvelvet\u2003orbit\u2028", "42-harbor-velvet-orbit", None),
        ("42-HARBOR-VELVET-ORBIT\x85", "42-harbor-velvet-orbit", None),
        ("42-\u212aayak-velvet-orbit", None, "unknown_word_1"),  # KELVIN SIGN is not k
        ("42-harbor-\u0130ris-orbit", None, "unknown_word_2"),  # dotted capital I is not i
        ("42-harbor-velvet-orbit\u200b", None, "unknown_word_3"),  # U+200B separates nothing
        ("42\u180eharbor-velvet-orbit", None, "shape"),  # U+180E is not whitespace
        ("\ufeff42-harbor-velvet-orbit", None, "shape"),  # nor is U+FEFF
    ]
    ordinals = {"1": "first", "2": "second", "3": "third"}
    cases = []
    for text, canonical, reason in table:
        row: dict[str, Any] = {"text": text}
        try:
            code = joincode.parse_join_code(text)
        except joincode.BadJoinCode as error:
            if reason is None:
                raise RuntimeError(f"vector generation: {text!r} refused: {error}") from error
            message = str(error)
            if reason.startswith("unknown_word_"):
                require(ordinals[reason[-1]] in message, f"{text!r}: {message}")
            elif reason == "nameplate":
                require("between 10 and 99" in message, f"{text!r}: {message}")
            elif reason == "empty":
                require("empty" in message, f"{text!r}: {message}")
            row.update({"code": error.code, "reason": reason})
        else:
            require(str(code) == canonical, f"{text!r} parsed as {code!s}")
            row.update(
                {
                    "canonical": str(code),
                    "nameplate": code.nameplate,
                    "words": list(code.words),
                    "password_hex": h(code.password),
                }
            )
        cases.append(row)
    return cases


def safety_number_cases() -> list[dict[str, Any]]:
    from nacl import pwhash

    from relsec_p2p.core import safety

    four = ["alice", "bob", "carol", "dan"]
    table: list[tuple[str, bytes, int, list[str]]] = [
        ("four members", MID, 4, four),
        ("the same roster listed in another order", MID, 4, ["dan", "bob", "alice", "carol"]),
        ("the next epoch", MID, 5, four),
        ("one member fewer", MID, 5, ["alice", "bob", "carol"]),
        ("another meeting", OTHER_MID, 4, four),
        ("the creator alone, epoch 1", MID, 1, ["alice"]),
    ]
    cases = []
    for note, mid, epoch, names in table:
        keys = sorted(IDS[n].key for n in names)
        person = hashlib.blake2b(digest_size=64, person=b"relsec/v2/sn")
        person.update(len(mid).to_bytes(1, "big") + mid)
        person.update(epoch.to_bytes(8, "big") + len(keys).to_bytes(4, "big"))
        for key in keys:
            person.update(key)
        material = person.digest()
        salt = hashlib.blake2b(material, digest_size=16, person=b"relsec/v2/snsalt").digest()
        stretched = pwhash.argon2id.kdf(16, material, salt, opslimit=3, memlimit=2 * 1024 * 1024)
        digits = f"{int.from_bytes(stretched, 'big') % 10**20:020d}"
        number = " ".join(digits[i : i + 5] for i in range(0, 20, 5))
        given = [IDS[n].key for n in names]
        require(safety.safety_number(mid, epoch, given) == number, f"safety number: {note}")
        cases.append(
            {
                "note": note,
                "mid_hex": h(mid),
                "epoch": epoch,
                "keys": names,
                "keys_hex": [h(k) for k in given],
                "material_hex": h(material),
                "salt_hex": h(salt),
                "stretched_hex": h(stretched),
                "number": number,
            }
        )
    return cases


def admission_vectors() -> dict[str, Any]:
    from spake2 import SPAKE2_Symmetric
    from spake2.ed25519_basic import scalar_to_bytes
    from spake2.parameters.ed25519 import ParamsEd25519

    from relsec_p2p.core import admission, joincode
    from relsec_p2p.core.wordlist import ALIASES, WORDS

    alice, dan = IDS["alice"], IDS["dan"]
    code = joincode.parse_join_code(JOIN_CODE_TEXT)
    password = code.password
    context = admission.JOIN_CONTEXT

    # SPAKE2 from the spake2 package with fixed secrets (SPEC §12.5).
    def spake_side(entropy: bytes, pw: bytes = password) -> Any:
        side = SPAKE2_Symmetric(pw, idSymmetric=context, entropy_f=lambda n: entropy[:n])
        return side

    joiner_spake, sponsor_spake = (spake_side(JOIN_ENTROPY[n]) for n in ("joiner", "sponsor"))
    joiner_pake, sponsor_pake = joiner_spake.start(), sponsor_spake.start()
    shared = joiner_spake.finish(sponsor_pake)
    require(shared == sponsor_spake.finish(joiner_pake), "SPAKE2 agrees")
    group = ParamsEd25519.group
    k_point = (
        group.bytes_to_element(sponsor_pake[1:])
        .add(ParamsEd25519.S.scalarmult(-joiner_spake.pw_scalar))
        .scalarmult(joiner_spake.xy_scalar)
        .to_bytes()
    )
    first, second = sorted([joiner_pake[1:], sponsor_pake[1:]])
    require(
        hashlib.sha256(
            hashlib.sha256(password).digest()
            + hashlib.sha256(context).digest()
            + first
            + second
            + k_point
        ).digest()
        == shared,
        "the SPAKE2 key is the hash SPEC §12.5 describes",
    )

    # Keys and messages (SPEC §12.6, §12.7).
    transcript = joiner_pake + sponsor_pake
    confirm_joiner = join_kdf(shared, b"confirm/joiner")
    confirm_sponsor = join_kdf(shared, b"confirm/sponsor")
    j2s = join_kdf(shared, b"box/joiner-to-sponsor")
    s2j = join_kdf(shared, b"box/sponsor-to-joiner")
    joiner_tag, sponsor_tag = (
        join_mac(confirm_joiner, transcript),
        join_mac(confirm_sponsor, transcript),
    )
    hello_plain = pack({"key": dan.key, "ring": dan.ring_key, "name": "Dan"})
    grant_plain = pack({"mid": MID, "creator": alice.key, "sponsor": alice.key})
    msgs = {
        "joiner_pake": pack({"t": "pake", "m": joiner_pake}),
        "sponsor_pake": pack({"t": "pake", "m": sponsor_pake}),
        "sponsor_confirm": pack({"t": "confirm", "c": sponsor_tag}),
        "joiner_confirm": pack({"t": "confirm", "c": joiner_tag}),
        "hello": pack({"t": "hello", "s": seal(j2s, hello_plain, JOIN_NONCES["hello"])}),
        "grant": pack({"t": "grant", "s": seal(s2j, grant_plain, JOIN_NONCES["grant"])}),
    }

    # The implementation, with the same SPAKE2 secrets, MUST agree.
    with _FixedSpake(JOIN_ENTROPY["joiner"], JOIN_ENTROPY["sponsor"]):
        joiner = admission.JoinerHandshake(code, dan.key, dan.ring_key, "Dan")
        sponsor = admission.SponsorHandshake(code)
    require(joiner.start() == msgs["joiner_pake"], "joiner pake")
    step = sponsor.receive(msgs["joiner_pake"])
    require(step.send == (msgs["sponsor_pake"], msgs["sponsor_confirm"]), "sponsor pake, confirm")
    require(joiner.receive(msgs["sponsor_pake"]).send == (msgs["joiner_confirm"],), "confirm")
    (hello,) = joiner.receive(msgs["sponsor_confirm"]).send
    from nacl.secret import SecretBox

    require(SecretBox(j2s).decrypt(canonical_unpack(hello)["s"]) == hello_plain, "hello plaintext")
    require(sponsor.receive(msgs["joiner_confirm"]).send == (), "sponsor takes the MAC")
    request = sponsor.receive(msgs["hello"]).result
    require(request == admission.JoinRequest(dan.key, dan.ring_key, "Dan"), "join request")
    grant = sponsor.grant(MID, alice.key, alice.key)
    require(SecretBox(s2j).decrypt(canonical_unpack(grant)["s"]) == grant_plain, "grant")
    granted = joiner.receive(msgs["grant"]).result
    require(granted == admission.JoinGranted(MID, alice.key, alice.key), "granted")

    # A guesser with another code, as the sponsor sees it (SPAKE2 with the same secret).
    guesser = spake_side(JOIN_ENTROPY["joiner"], joincode.parse_join_code(WRONG_CODE_TEXT).password)
    guess_pake = guesser.start()
    guess_key = guesser.finish(sponsor_pake)
    guess_tag = join_mac(join_kdf(guess_key, b"confirm/joiner"), guess_pake + sponsor_pake)
    identity_point = bytes([1]) + bytes(31)  # the neutral element: never a valid pake
    sealed_hello = canonical_unpack(msgs["hello"])["s"]
    bidi_hello = pack(
        {
            "t": "hello",
            "s": seal(
                j2s, pack({"key": dan.key, "ring": dan.ring_key, "name": "Dan\u202e"}), bytes(24)
            ),
        }
    )
    short_mid_grant = pack(
        {
            "t": "grant",
            "s": seal(
                s2j,
                pack({"mid": MID[:15], "creator": alice.key, "sponsor": alice.key}),
                bytes(24),
            ),
        }
    )

    def refused(
        note: str, role: str, receive: list[bytes], intent: str, text: str = JOIN_CODE_TEXT
    ) -> dict[str, Any]:
        entropy = JOIN_ENTROPY[role]
        with _FixedSpake(entropy):
            side: Any = (
                admission.JoinerHandshake(
                    joincode.parse_join_code(text), dan.key, dan.ring_key, "Dan"
                )
                if role == "joiner"
                else admission.SponsorHandshake(joincode.parse_join_code(text))
            )
        row: dict[str, Any] = {"note": note, "role": role, "code_text": text}
        row["entropy_hex"] = h(entropy)
        if role == "joiner":
            row["start_hex"] = h(side.start())
        replies = []
        for payload in receive[:-1]:
            sent = side.receive(payload).send
            # A sealed hello carries a fresh random nonce: null stands for it.
            replies.append([None if canonical_unpack(s)["t"] == "hello" else h(s) for s in sent])
        error = error_code(lambda: side.receive(receive[-1]))
        require(error == intent, f"admission case {note!r}: {error}, meant {intent}")
        row.update({"receive_hex": [h(p) for p in receive], "replies_hex": replies, "code": error})
        return row

    cases = [
        refused(
            "a confirm before any pake", "sponsor", [msgs["joiner_confirm"]], "unexpected_message"
        ),
        refused(
            "a pake from side A of asymmetric SPAKE2",
            "sponsor",
            [pack({"t": "pake", "m": b"A" + joiner_pake[1:]})],
            "bad_pake",
        ),
        refused(
            "a pake of 32 bytes",
            "sponsor",
            [pack({"t": "pake", "m": joiner_pake[1:]})],
            "bad_pake",
        ),
        refused(
            "a pake carrying the neutral element",
            "sponsor",
            [pack({"t": "pake", "m": b"S" + identity_point})],
            "bad_pake",
        ),
        refused("the joiner's own pake reflected", "joiner", [msgs["joiner_pake"]], "bad_pake"),
        refused(
            "a joiner with another code: its MAC does not verify",
            "sponsor",
            [pack({"t": "pake", "m": guess_pake}), pack({"t": "confirm", "c": guess_tag})],
            "wrong_code",
        ),
        refused(
            "a sponsor with another code: the joiner refuses its MAC",
            "joiner",
            [msgs["sponsor_pake"], msgs["sponsor_confirm"]],
            "wrong_code",
            WRONG_CODE_TEXT,
        ),
        refused(
            "a hello whose seal was altered",
            "sponsor",
            [
                msgs["joiner_pake"],
                msgs["joiner_confirm"],
                pack({"t": "hello", "s": sealed_hello[:-1] + bytes([sealed_hello[-1] ^ 1])}),
            ],
            "bad_seal",
        ),
        refused(
            "a hello sealed with the sponsor-to-joiner key",
            "sponsor",
            [
                msgs["joiner_pake"],
                msgs["joiner_confirm"],
                pack({"t": "hello", "s": seal(s2j, hello_plain, JOIN_NONCES["hello"])}),
            ],
            "bad_seal",
        ),
        refused(
            "a hello whose name holds a right-to-left override",
            "sponsor",
            [msgs["joiner_pake"], msgs["joiner_confirm"], bidi_hello],
            "malformed",
        ),
        refused(
            "a grant whose meeting id has 15 bytes",
            "joiner",
            [msgs["sponsor_pake"], msgs["sponsor_confirm"], short_mid_grant],
            "malformed",
        ),
        refused(
            "an unknown message type", "sponsor", [pack({"t": "hi1", "e": bytes(32)})], "malformed"
        ),
        refused(
            "a pake with an extra field",
            "sponsor",
            [pack({"t": "pake", "m": joiner_pake, "x": 1})],
            "malformed",
        ),
    ]

    return {
        "description": (
            "Joining (SPEC §12). 'wordlist': the join-code words, in order. 'parse': typed "
            "text MUST parse to 'canonical' (whose ASCII bytes are the SPAKE2 password), or be "
            "refused with code ('reason' is informative). 'safety_number': the roster safety "
            "number of SPEC §12.9 with its intermediates; keys are given in the order a laptop "
            "might list them. 'spake2': SPAKE2 with the fixed 64-byte secrets given MUST yield "
            "these messages and key. 'keys' and 'run': the keys SPEC §12.6 derives from that "
            "key and a whole join, message by message (the two sealed messages use the fixed "
            "nonces given; a real sender draws them at random). 'refused': a joiner or sponsor "
            "with that code and SPAKE2 secret that receives receive_hex in order MUST send "
            "replies_hex for each message but the last (null: a sealed hello, whose nonce is "
            "random) and refuse the last with code."
        ),
        "conventions": CONVENTIONS,
        "wordlist": {"count": len(WORDS), "words": list(WORDS), "aliases": dict(ALIASES)},
        "parse": join_code_cases(),
        "safety_number": safety_number_cases(),
        "spake2": {
            "group": "edwards25519 (RFC 8032 encoding), prime-order subgroup",
            "password": JOIN_CODE_TEXT,
            "password_hex": h(password),
            "id_hex": h(context),
            "S_seed": "symmetric",
            "S_hex": h(ParamsEd25519.S.to_bytes()),
            "password_scalar_hex": h(scalar_to_bytes(joiner_spake.pw_scalar)),
            "joiner": {
                "entropy_hex": h(JOIN_ENTROPY["joiner"]),
                "scalar_hex": h(scalar_to_bytes(joiner_spake.xy_scalar)),
                "message_hex": h(joiner_pake),
            },
            "sponsor": {
                "entropy_hex": h(JOIN_ENTROPY["sponsor"]),
                "scalar_hex": h(scalar_to_bytes(sponsor_spake.xy_scalar)),
                "message_hex": h(sponsor_pake),
            },
            "K_hex": h(k_point),
            "key_hex": h(shared),
        },
        "keys": {
            "transcript_hex": h(transcript),
            "confirm_joiner_key_hex": h(confirm_joiner),
            "confirm_sponsor_key_hex": h(confirm_sponsor),
            "joiner_tag_hex": h(joiner_tag),
            "sponsor_tag_hex": h(sponsor_tag),
            "joiner_to_sponsor_key_hex": h(j2s),
            "sponsor_to_joiner_key_hex": h(s2j),
        },
        "run": {
            "mid_hex": h(MID),
            "joiner": {"name": "Dan", "key_hex": h(dan.key), "ring_hex": h(dan.ring_key)},
            "creator_hex": h(alice.key),
            "sponsor_hex": h(alice.key),
            "hello_plain_hex": h(hello_plain),
            "hello_nonce_hex": h(JOIN_NONCES["hello"]),
            "grant_plain_hex": h(grant_plain),
            "grant_nonce_hex": h(JOIN_NONCES["grant"]),
            "messages": [
                {"from": "joiner", "name": "pake", "hex": h(msgs["joiner_pake"])},
                {"from": "sponsor", "name": "pake", "hex": h(msgs["sponsor_pake"])},
                {"from": "sponsor", "name": "confirm", "hex": h(msgs["sponsor_confirm"])},
                {"from": "joiner", "name": "confirm", "hex": h(msgs["joiner_confirm"])},
                {"from": "joiner", "name": "hello", "hex": h(msgs["hello"])},
                {"from": "sponsor", "name": "grant", "hex": h(msgs["grant"])},
            ],
        },
        "refused": cases,
    }


# --- duplicate_links.json ---------------------------------------------------------------

# Links between alice and bob, each named by who dialled it, with fixed ephemeral
# secrets (initiator's, responder's) chosen so that the order of SPEC §11.9 is not
# the order of the link ids alone: b1, dialled by bob (the lower key), has a greater
# link id than a1 and a2, and still comes first.
DUPLICATE_LINKS: dict[str, tuple[str, bytes, bytes]] = {
    "a1": ("alice", bytes([0xA1]) * 32, bytes([0xB1]) * 32),
    "a2": ("alice", bytes([0xA3]) * 32, bytes([0xB3]) * 32),
    "b1": ("bob", bytes([0x02]) * 32, bytes([0xB0]) * 32),
    "b2": ("bob", bytes([0xA4]) * 32, bytes([0xB4]) * 32),
}


def duplicate_links_vectors() -> dict[str, Any]:
    import itertools
    from typing import NamedTuple

    from relsec_p2p.core.link import keep_link

    class View(NamedTuple):
        """A link as one end holds it."""

        name: str
        peer: bytes
        initiator: bool
        link_id: bytes

    links: dict[str, dict[str, Any]] = {}
    for name, (dialler, initiator_secret, responder_secret) in DUPLICATE_LINKS.items():
        m = link_material(MID, initiator_secret, responder_secret)
        links[name] = {
            "initiator": dialler,
            "initiator_ephemeral_secret_hex": h(initiator_secret),
            "initiator_ephemeral_public_hex": h(m["e_i"]),
            "responder_ephemeral_secret_hex": h(responder_secret),
            "responder_ephemeral_public_hex": h(m["e_r"]),
            "link_id_hex": h(m["transcript"]),
        }

    def rank(name: str) -> tuple[int, bytes]:
        """SPEC §11.9, written from the text: (0 if dialled by the lower key, link id)."""
        lower = min(IDS["alice"].key, IDS["bob"].key)
        dialler = IDS[links[name]["initiator"]].key
        return (0 if dialler == lower else 1, bytes.fromhex(links[name]["link_id_hex"]))

    def view(me: str, name: str) -> View:
        other = "bob" if me == "alice" else "alice"
        return View(
            name,
            IDS[other].key,
            links[name]["initiator"] == me,
            bytes.fromhex(links[name]["link_id_hex"]),
        )

    require(rank("b1") < rank("a1") and rank("b1")[1] > rank("a1")[1], "the rank is not the id")
    cases_in = [
        ("one link each way: the one dialled by the lower key (bob) is kept", ["a1", "b1"]),
        ("two links dialled by alice (a joiner that dialled twice)", ["a1", "a2"]),
        ("two links dialled by bob", ["b1", "b2"]),
        ("three links: two dialled by alice, one by bob", ["a1", "a2", "b1"]),
        ("four links: two dialled by each", ["a1", "a2", "b1", "b2"]),
    ]
    cases = []
    for note, names in cases_in:
        kept = min(names, key=rank)
        views = []
        for me in ("alice", "bob"):
            for arrival in itertools.permutations(names):
                held: View | None = None
                closed: list[str] = []
                for name in arrival:
                    new = view(me, name)
                    if held is None:
                        held = new
                        continue
                    winner = keep_link(IDS[me].key, [held, new])
                    closed.append(new.name if winner is held else held.name)
                    held = winner
                require(held is not None and held.name == kept, f"{note}: {me} keeps {kept}")
                views.append({"me": me, "arrival": list(arrival), "closed": closed})
        cases.append({"note": note, "links": names, "kept": kept, "views": views})
    return {
        "description": (
            "Duplicate links (SPEC §11.9). Each link between alice and bob is named by who "
            "dialled it ('initiator'); its link id is its transcript hash th (SPEC §11.3), "
            "computed from mid_hex and the two ephemeral public keys (the secrets that give "
            "them are listed too). 'cases': of the links listed, both ends MUST keep 'kept'. "
            "Each view is one end ('me'), which sees the links complete in the order "
            "'arrival': it holds the first; at each later one it keeps the one that comes "
            "first in the order of SPEC §11.9 and closes the other, so it MUST close exactly "
            "'closed', in that order, and end up holding 'kept'. The handshake of link.json "
            "likewise has the link id transcript_hash_hex."
        ),
        "conventions": CONVENTIONS,
        "mid_hex": h(MID),
        "keys": {name: h(IDS[name].key) for name in ("alice", "bob")},
        "lower_key": NAME_OF[min(IDS["alice"].key, IDS["bob"].key)],
        "links": links,
        "cases": cases,
    }


# --- anonymous rounds (anon.json, SPEC §13.2-§13.4) ----------------------------------------

ANON_SEED = b"relsec anon.json"
ANON_AFTER = 5  # the leader's log clock when it started the round (after step.open)
ANON_NONCE = bytes(range(0x40, 0x50))
ANON_AGENDA: list[dict[str, Any]] = [
    {"id": "unsaid", "title": "Unsaid", "prompt": "What is hard to say?", "mode": "anonymous",
     "kind": "text"},
]  # fmt: skip


class SeededBytes:
    """Every secret a round draws (``onion.random_bytes``), from BLAKE2b of a
    fixed seed and a counter: a test vector's stand-in for the CSPRNG."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.count = 0

    def __call__(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            self.count += 1
            out += hashlib.blake2b(self.count.to_bytes(8, "big"), key=self.seed).digest()
        return out[:size]


def anon_item(fields: dict[str, Any]) -> bytes:
    return pack(fields)


def run_anon_round(
    names: list[str],
    contents: dict[str, bytes],
    start: shuffle.RoundStart,
    secrets: dict[str, tuple[bytes, bytes]],
) -> tuple[dict[str, shuffle_round.Round], list[dict[str, Any]]]:
    """The round with seeded secrets and shuffles, messages delivered FIFO;
    every message once, with the participants it went to."""
    slot = anon.slot_size(len(names))
    drawn = SeededBytes(ANON_SEED)
    saved = onion.random_bytes
    onion.random_bytes = drawn
    try:
        rounds = {
            IDS[n].key: shuffle_round.Round(
                IDS[n],
                start,
                shuffle.pad(contents.get(n, b""), slot),
                now_ms=0,
                rng=random.Random(k),
            )
            for k, n in enumerate(names)
        }
        # The per-round secrets, for the checker (a round forgets them).
        secrets.update(
            {NAME_OF[key]: (r._inner_secret, r._outer_secret) for key, r in rounds.items()}
        )
        sent: list[dict[str, Any]] = []
        queue: list[tuple[bytes, bytes, dict[str, Any]]] = []

        def post(src: bytes, sends: list[tuple[bytes, dict[str, Any]]]) -> None:
            grouped: dict[bytes, tuple[dict[str, Any], list[str]]] = {}
            for dst, message in sends:
                body = pack(message)
                grouped.setdefault(body, (message, []))[1].append(NAME_OF[dst])
                queue.append((src, dst, message))
            for body, (message, to) in grouped.items():
                sent.append(
                    {"from": NAME_OF[src], "to": to, "message": to_json(message), "hex": h(body)}
                )

        for key in sorted(rounds):
            post(key, rounds[key].begin())
        while queue:
            src, dst, message = queue.pop(0)
            post(dst, rounds[dst].receive(src, message, 0))
    finally:
        onion.random_bytes = saved
    return {NAME_OF[k]: r for k, r in rounds.items()}, sent


def anon_vectors() -> dict[str, Any]:
    names = sorted(("alice", "bob", "carol", "dan"), key=lambda n: IDS[n].key)
    start = shuffle.RoundStart(MID, 4, ANON_NONCE, tuple(IDS[n].key for n in names), ANON_AFTER)
    said = anon_item({"k": "contrib", "n": bytes(8), "step": 0, "text": "I am afraid to say it."})
    pause = anon_item({"k": "pause", "n": bytes([1]) * 8})
    contents = {"bob": said, "dan": pause}  # alice and carol send dummies
    secrets: dict[str, tuple[bytes, bytes]] = {}
    rounds, sent = run_anon_round(names, contents, start, secrets)
    outcomes = {n: r.outcome for n, r in rounds.items()}
    released = outcomes[names[0]]
    require(
        all(isinstance(o, shuffle.Released) for o in outcomes.values())
        and isinstance(released, shuffle.Released)
        and sorted(released.items) == sorted([said, pause]),
        "the anon.json round releases both items",
    )
    if not isinstance(released, shuffle.Released):
        raise RuntimeError("vector generation: the round did not release")
    secrets_of = {
        n: {
            "inner_public_hex": h(r.keys[IDS[n].key][0]),
            "outer_public_hex": h(r.keys[IDS[n].key][1]),
            "inner_secret_hex": h(secrets[n][0]),
            "outer_secret_hex": h(secrets[n][1]),
        }
        for n, r in rounds.items()
    }
    round_case = {
        "participants": names,
        "leader": names[0],
        "start": {
            "epoch": start.epoch,
            "nonce_hex": h(start.nonce),
            "after": start.after,
            "rid_hex": h(start.rid),
            "message": to_json(start.message(IDS[names[0]])),
            "hex": h(pack(start.message(IDS[names[0]]))),
        },
        "slot_bytes": anon.slot_size(len(names)),
        "onion_bytes": onion.onion_size(anon.slot_size(len(names)), len(names)),
        "slots": {
            n: h(shuffle.pad(contents.get(n, b""), anon.slot_size(len(names)))) for n in names
        },
        "keys": secrets_of,
        "messages": sent,
        "expect": {
            "transcript_hex": h(rounds[names[0]].gos[IDS[names[0]].key][1]),
            "ids_hex": [h(i) for i in released.ids],
            "items_hex": [h(i) for i in released.items],
            "release_digest_hex": h(shuffle.release_digest(list(released.ids))),
            "certificate_hex": [h(g) for g in released.certificate],
        },
    }

    # The release in a meeting's log, and two entries the fold ignores.
    new_room()
    a, b, c, d = (Author(n) for n in ("alice", "bob", "carol", "dan"))
    log: list[Entry] = []

    def w(
        author: Author, kind: str, data: dict[str, Any], seen: list[Entry] | None = None
    ) -> Entry:
        entry = author.write(kind, data, seen=seen)
        log.append(entry)
        return entry

    w(a, "meeting.create", create_data("alice", "Unsaid", ANON_AGENDA, {}))
    w(a, "roster.add", add_data("bob"))
    w(a, "roster.add", add_data("carol"))
    w(a, "roster.add", add_data("dan"))
    w(a, "step.open", {"step": 0})  # clock 5: ANON_AFTER, the leader's log clock
    (data,) = anon.release_entries(released)
    by_name = {"alice": a, "bob": b, "carol": c, "dan": d}
    # The leader names only the roster (not the step.open), so its release's
    # computed clock is 5, not above its round's 'after': ignored.
    release = w(by_name[names[0]], "anon.round", data, seen=log[:4])
    require(release.lam == ANON_AFTER, "the leader's release has the round's own clock")
    w(by_name[names[1]], "anon.round", data)  # the next participant's: applied
    w(c, "anon.round", data)  # ignored: its items are in already
    state = state_case(
        "anonymous_round",
        "the round of this file released into a meeting: the leader's entry sorts at the "
        "round's own clock 'after' and is ignored; the next participant's applies both items "
        "(one unattributed answer, one pause request); carol's copy is ignored",
        log,
        {"ignored": [label(log[5]), label(log[7])]},
    )
    return {
        "description": (
            "SPEC §13.2-§13.4: one whole shuffle round of four members with every message in "
            "the order a FIFO network delivers them (each message once, with the members it "
            "went to), the per-round keys (every secret was drawn from a seeded BLAKE2b "
            "stream, so the file is reproducible; a real laptop uses its CSPRNG), and what it "
            "releases; then that release as anon.round entries in a meeting, with the state "
            "they fold to. An implementation checks: the rid from the start; every signature "
            "of every statement; each onion's size and that hop k's batch is hop k-1's, peeled "
            "with hop k's outer key (the first layer also holding the submitter's key), as a "
            "permutation; the transcript hash; the items opened with the revealed inner "
            "secrets; the release digest and certificate; and the state digest."
        ),
        "conventions": CONVENTIONS,
        "mid_hex": h(MID),
        "round": round_case,
        "state": state,
    }


# --- writing ------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "codec.json": codec_vectors,
    "frames.json": frames_vectors,
    "entries.json": entries_vectors,
    "feed.json": feed_vectors,
    "state.json": state_vectors,
    "sync.json": sync_vectors,
    "ring.json": ring_vectors,
    "link.json": link_vectors,
    "admission.json": admission_vectors,
    "duplicate_links.json": duplicate_links_vectors,
    "anon.json": anon_vectors,
}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write(directory: pathlib.Path) -> list[pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in BUILDERS.items():
        path = directory / name
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=VECTORS_DIR, help="output directory")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
