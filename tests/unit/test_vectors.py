"""The implementation against the protocol test vectors (protocol/vectors/*.json).

Every check compares bytes the implementation produces now with hex stored in
the files, never with output of the same run: a change to encoding, signing,
hashing, error codes or the fold fails here until the vectors are regenerated
on purpose (``python protocol/generate_vectors.py``) and SPEC.md says why.
The last test checks that the generator reproduces the committed files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pathlib
from typing import Any

import pytest
from nacl.signing import SigningKey, VerifyKey

from relsec_p2p.core import codec
from relsec_p2p.core.codec import ENTRY_LIMITS, FRAME_LIMITS, FrameDecoder, frame, pack, unpack
from relsec_p2p.core.errors import LocalProtocolError, RelsecError
from relsec_p2p.core.events import EntryAccepted, ForkDetected, InputRejected, MeetingChanged
from relsec_p2p.core.feed import ENTRY_CONTEXT, Log, decode_entry, encode_entry
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.rules import fold
from relsec_p2p.core.session import Session

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"
GENERATOR = ROOT / "protocol" / "generate_vectors.py"
FILES = (
    "codec.json",
    "frames.json",
    "entries.json",
    "feed.json",
    "state.json",
    "sync.json",
    "link.json",  # checked by test_vectors_link.py
    "admission.json",  # checked by test_vectors_link.py
    "duplicate_links.json",  # checked by test_vectors_link.py
    "ring.json",  # checked by test_ring.py
    "anon.json",  # checked by test_vectors_anon.py
)


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert document["description"]
    return document


def value(typed: Any) -> Any:
    """Typed JSON (see the files' "conventions") to a msgpack value."""
    if isinstance(typed, dict):
        if set(typed) == {"$bin"}:
            return bytes.fromhex(typed["$bin"])
        if set(typed) == {"$int"}:
            return int(typed["$int"])
        return {key: value(item) for key, item in typed.items()}
    if isinstance(typed, list):
        return [value(item) for item in typed]
    return typed


def code_of(call: Any) -> str:
    with pytest.raises(RelsecError) as info:
        call()
    return info.value.code


ENTRIES = load("entries.json")
IDENTITIES = {row["name"]: row for row in ENTRIES["identities"]}
KEYS = {name: bytes.fromhex(row["key_hex"]) for name, row in IDENTITIES.items()}
NAMES = {key: name for name, key in KEYS.items()}


def identity(name: str) -> Identity:
    return Identity.from_seed(bytes.fromhex(IDENTITIES[name]["seed_hex"]))


# --- codec.json ----------------------------------------------------------------------

CODEC = load("codec.json")


@pytest.mark.parametrize("case", CODEC["valid"], ids=lambda c: c["note"])
def test_codec_encodes_canonically(case: dict[str, Any]) -> None:
    assert pack(value(case["value"])).hex() == case["hex"]
    assert unpack(bytes.fromhex(case["hex"])) == value(case["value"])


@pytest.mark.parametrize("case", CODEC["invalid"], ids=lambda c: c["note"])
def test_codec_refuses(case: dict[str, Any]) -> None:
    limits = {"frame": FRAME_LIMITS, "entry": ENTRY_LIMITS}[case["limits"]]
    assert code_of(lambda: unpack(bytes.fromhex(case["hex"]), limits)) == case["code"]


@pytest.mark.parametrize("case", CODEC["unencodable"], ids=lambda c: c["note"])
def test_codec_cannot_encode(case: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        pack(value(case["value"]))
    assert case["code"] == LocalProtocolError.code


def test_codec_limits_table() -> None:
    for which, limits in (("frame", FRAME_LIMITS), ("entry", ENTRY_LIMITS)):
        stored = CODEC["limits"][which]
        assert stored == {name: getattr(limits, name) for name in stored}, which
        assert set(stored) == set(codec.Limits.__dataclass_fields__)


# --- frames.json ------------------------------------------------------------------

FRAMES = load("frames.json")


def test_frame_size_limit() -> None:
    assert FRAMES["max_frame"] == codec.DEFAULT_MAX_FRAME


@pytest.mark.parametrize("case", FRAMES["encode"], ids=lambda c: c["payload_hex"][:16])
def test_frame_encode(case: dict[str, Any]) -> None:
    assert frame(bytes.fromhex(case["payload_hex"])).hex() == case["frame_hex"]


@pytest.mark.parametrize("case", FRAMES["decode"], ids=lambda c: c["note"])
def test_frame_decode(case: dict[str, Any]) -> None:
    decoder = FrameDecoder()
    frames: list[str] = []
    code = None
    try:
        for chunk in case["chunks_hex"]:
            frames += [f.hex() for f in decoder.feed(bytes.fromhex(chunk))]
    except RelsecError as error:
        code = error.code
    assert frames == case["frames_hex"]
    assert code == case.get("code")
    if code is None:
        assert decoder.buffered == case["buffered"]


@pytest.mark.parametrize("case", FRAMES["refuse"], ids=lambda c: c["note"])
def test_frame_refuse(case: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        frame(bytes(case["payload_len"]))


# --- entries.json ---------------------------------------------------------------------


def test_entry_context() -> None:
    assert ENTRY_CONTEXT.hex() == ENTRIES["context_hex"]


@pytest.mark.parametrize("row", ENTRIES["identities"], ids=lambda r: r["name"])
def test_identity_from_seed(row: dict[str, str]) -> None:
    seed = bytes.fromhex(row["seed_hex"])
    member = Identity.from_seed(seed)
    assert member.key.hex() == row["key_hex"]
    assert bytes(SigningKey(seed).verify_key).hex() == row["key_hex"]
    label = bytes.fromhex(ENTRIES["ring_label_hex"])
    assert hashlib.blake2b(label + seed, digest_size=64).hexdigest() == row["ring_wide_hex"]
    assert member.ring_secret.hex() == row["ring_secret_hex"]
    assert member.ring_key.hex() == row["ring_key_hex"]


@pytest.mark.parametrize("case", ENTRIES["entries"], ids=lambda c: c["label"])
def test_entry_bytes(case: dict[str, Any]) -> None:
    body = value(case["body"])
    body_bytes = bytes.fromhex(case["body_hex"])
    assert pack(body).hex() == case["body_hex"]
    author = identity(NAMES[body["au"]])
    entry = encode_entry(
        author,
        mid=body["mid"],
        seq=body["seq"],
        prev=body["prev"],
        lam=body["lam"],
        ts=body["ts"],
        kind=body["type"],
        data=body["data"],
        deps=[(key, seq) for key, seq in body["deps"]],
    )
    assert entry.body.hex() == case["body_hex"]
    assert entry.signature.hex() == case["signature_hex"]
    assert entry.envelope.hex() == case["envelope_hex"]
    assert entry.hash.hex() == case["hash_hex"]
    # Independently of the implementation's own helpers:
    signature = bytes.fromhex(case["signature_hex"])
    VerifyKey(body["au"]).verify(ENTRY_CONTEXT + body_bytes, signature)
    assert hashlib.blake2b(body_bytes, digest_size=32).hexdigest() == case["hash_hex"]
    assert pack([body_bytes, signature]).hex() == case["envelope_hex"]
    decoded = decode_entry(bytes.fromhex(case["envelope_hex"]))
    assert (decoded.mid, decoded.author, decoded.seq, decoded.prev) == (
        body["mid"],
        body["au"],
        body["seq"],
        body["prev"],
    )
    assert (decoded.lam, decoded.ts, decoded.type, decoded.data, decoded.deps) == (
        body["lam"],
        body["ts"],
        body["type"],
        body["data"],
        tuple((key, seq) for key, seq in body["deps"]),
    )


@pytest.mark.parametrize("case", ENTRIES["invalid"], ids=lambda c: c["note"])
def test_entry_refused(case: dict[str, Any]) -> None:
    assert code_of(lambda: decode_entry(bytes.fromhex(case["envelope_hex"]))) == case["code"]


# --- feed.json --------------------------------------------------------------------------

FEED = load("feed.json")


def ingest_outcome(log: Log, step: dict[str, Any]) -> dict[str, Any]:
    try:
        if "fork_proof_hex" in step:
            result = log.ingest_fork_proof([bytes.fromhex(x) for x in step["fork_proof_hex"]])
        else:
            result = log.ingest(bytes.fromhex(step["envelope_hex"]))
    except RelsecError as error:
        return {"result": "error", "code": error.code}
    if result.fork is not None:
        return {
            "result": "fork",
            "seq": result.fork.seq,
            "removed": [e.seq for e in result.removed],
            "proof_hex": [x.hex() for x in result.fork.envelopes()],
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
    """Every range the log would ask for: gaps and dependencies (SPEC §3.4)."""
    return [[NAMES[author], first, last] for author, first, last in log.missing_ranges()]


@pytest.mark.parametrize("case", FEED["cases"], ids=lambda c: c["name"])
def test_feed(case: dict[str, Any]) -> None:
    log = Log(bytes.fromhex(FEED["mid_hex"]), {KEYS[n] for n in case["known"]}.__contains__)
    for number, step in enumerate(case["steps"]):
        assert ingest_outcome(log, step) == step["expect"], (number, step["note"])
    final = case["final"]
    assert [[NAMES[au], seq, head.hex()] for au, seq, head in log.summary()] == [
        [f["author"], f["length"], f["head_hex"]] for f in final["feeds"]
    ]
    assert {NAMES[au]: p.seq for au, p in log.forks.items()} == {
        f["author"]: f["seq"] for f in final["frozen"]
    }
    for name in case["known"]:
        missing = log.missing_range(KEYS[name])
        expected = [m["range"] for m in final["missing"] if m["author"] == name]
        assert ([list(missing)] if missing else []) == expected
    assert wanted(log) == final["wanted"]


# --- state.json ---------------------------------------------------------------------------

STATE = load("state.json")
MID = bytes.fromhex(STATE["mid_hex"])


def replay(creator: bytes, envelopes: list[bytes], allow: tuple[str, ...] = ()) -> Session:
    """Deliver each envelope as its own ``entries`` message to a fresh laptop."""
    session = Session.join(identity("observer"), MID, creator, clock=lambda: 0)
    for envelope in envelopes:
        events = session.receive(KEYS["alice"], pack({"t": "entries", "mid": MID, "e": [envelope]}))
        assert not [e for e in events if isinstance(e, InputRejected) and e.code not in allow]
    return session


@pytest.mark.parametrize("case", STATE["cases"], ids=lambda c: c["name"])
def test_state_digest(case: dict[str, Any]) -> None:
    expect = case["expect"]
    canonical = bytes.fromhex(expect["state_canonical_hex"])
    context = bytes.fromhex(STATE["state_context_hex"])
    assert hashlib.blake2b(context + canonical, digest_size=32).hexdigest() == expect["digest_hex"]

    creator = KEYS[case["creator"]]
    envelopes = [bytes.fromhex(item["envelope_hex"]) for item in case["log"]]
    delivered = replay(creator, envelopes)
    assert pack(delivered.state.to_canonical()).hex() == expect["state_canonical_hex"]
    assert delivered.digest().hex() == expect["digest_hex"]

    # The fold itself, on the entries the log kept, in fold order.
    by_label = {
        item["label"]: decode_entry(bytes.fromhex(item["envelope_hex"])) for item in case["log"]
    }
    kept = [by_label[label] for label in case["fold_order"]]
    assert kept == delivered.fold_order()  # by clock, re-dated after what settled (§5.1)
    assert sorted(e.hash for e in delivered.log.entries()) == sorted(e.hash for e in kept)
    summary = expect["summary"]
    frozen = {KEYS[name]: seq for name, seq in summary["frozen"].items()}
    state = fold(MID, creator, kept, frozen)
    assert state.digest().hex() == expect["digest_hex"]

    # Delivered in fold order, the incremental fold reaches the same state
    # (after a fork, the frozen author's later entries are refused).
    ordered = sorted(by_label.values(), key=lambda e: e.order_key)
    in_order = replay(creator, [e.envelope for e in ordered], allow=("frozen_feed",))
    assert in_order.digest().hex() == expect["digest_hex"]

    # The readable summary agrees with the state (normative parts only).
    assert (None if state.facilitator is None else state.facilitator.hex()) == summary[
        "facilitator_hex"
    ]
    assert (state.epoch, state.term, state.applied) == (
        summary["epoch"],
        summary["term"],
        summary["applied"],
    )
    assert [entry_id.hex() for entry_id, _ in state.ignored] == [
        item["hash_hex"] for item in summary["ignored"]
    ]
    polls = sorted(state.polls.values(), key=lambda p: p.id)
    assert [
        (p.status, p.result and p.result.outcome, p.result and p.result.counts) for p in polls
    ] == [(p["status"], p["outcome"], p["counts"]) for p in summary["polls"]]


def test_tally_digest_from_the_spec() -> None:
    """The co-signed tally digest (SPEC §6.5), recomputed from the folded result:
    the applied tally.sign carries it, the ignored one does not."""
    (case,) = [c for c in STATE["cases"] if c["name"] == "meeting"]
    canonical = unpack(bytes.fromhex(case["expect"]["state_canonical_hex"]))
    (poll,) = case["expect"]["summary"]["polls"]
    (row,) = canonical["polls"]
    record = [
        MID,
        row[0],
        row[4][0][0],  # the close's id: the digest names the close it answers
        poll["outcome"],
        poll["counts"],
        poll["voters"],
        poll["members"],
        poll["quorum"],
        canonical["settings"]["stand_aside_limit"],
    ]
    digest = hashlib.blake2b(b"relsec/v2/tally\x00" + pack(record), digest_size=32).digest()
    signs = {
        item["label"]: decode_entry(bytes.fromhex(item["envelope_hex"]))
        for item in case["log"]
        if decode_entry(bytes.fromhex(item["envelope_hex"])).type == "tally.sign"
    }
    ignored = {item["entry"] for item in case["expect"]["summary"]["ignored"]}
    applied = [label for label in signs if label not in ignored]
    assert applied == ["bob#7"] and poll["cosigners"] == ["bob"]
    assert signs["bob#7"].data == {"digest": digest, "poll": row[0]}
    assert signs["dan#8"].data["digest"] != digest
    (close,) = row[4]  # [id, author, cut, members, result, digest, cosigners, objections]
    assert close[5] == digest and close[6] == [KEYS["bob"]]
    assert close[7] == [[KEYS["carol"], KEYS["bob"], close_late_seq(case)]]
    assert row[5] == poll["recorded_outcome"]
    (summary,) = poll["closes"]
    assert summary["objections"] == {"carol": [f"bob#{close_late_seq(case)}"]}
    assert summary["final"] is False  # one co-signer of four: not a majority


def close_late_seq(case: dict[str, Any]) -> int:
    """The seq of bob's vote concurrent with the close: his last one, outside
    its cut (carol's objection names it; once the close settled it is
    re-dated after it, SPEC §5.1)."""
    entries = [decode_entry(bytes.fromhex(item["envelope_hex"])) for item in case["log"]]
    return max(e.seq for e in entries if e.author == KEYS["bob"] and e.type == "vote.cast")


# --- sync.json -------------------------------------------------------------------------------

SYNC = load("sync.json")
SYNC_ENTRIES = {item["label"]: bytes.fromhex(item["envelope_hex"]) for item in SYNC["entries"]}
SYNC_LABELS = {bytes.fromhex(item["hash_hex"]): item["label"] for item in SYNC["entries"]}


def describe(event: Any) -> dict[str, Any]:
    if isinstance(event, InputRejected):
        return {"rejected": event.code, "fatal": event.fatal}
    if isinstance(event, EntryAccepted):
        return {"accepted": SYNC_LABELS[event.hash]}
    if isinstance(event, ForkDetected):
        return {"fork": f"{NAMES[event.author]}#{event.seq}"}
    assert isinstance(event, MeetingChanged)
    return {"changed": True}


@pytest.mark.parametrize("case", SYNC["cases"], ids=lambda c: c["note"])
def test_sync(case: dict[str, Any]) -> None:
    mid = bytes.fromhex(SYNC["mid_hex"])
    session = Session.join(identity("observer"), mid, KEYS["alice"], clock=lambda: 0)
    held = [SYNC_ENTRIES[label] for label in case["holds"]]
    session.receive(KEYS["carol"], pack({"t": "entries", "mid": mid, "e": held}))
    session.peer_connected(KEYS["carol"])
    session.peer_connected(KEYS["dan"])
    session.take_sends()
    events = session.receive(KEYS["carol"], bytes.fromhex(case["payload_hex"]))
    assert [describe(e) for e in events] == case["events"]
    sends = [{"to": NAMES[s.peer], "payload_hex": s.payload.hex()} for s in session.take_sends()]
    assert sends == case["sends"]


# --- the generator ---------------------------------------------------------------------------


def test_vector_files_are_exactly_the_generated_ones(tmp_path: pathlib.Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.write(tmp_path)
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == sorted(FILES)
    assert sorted(p.name for p in VECTORS.glob("*.json")) == generated
    for name in generated:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), (
            f"{name} differs from the generator's output: run python protocol/generate_vectors.py"
        )
