"""Encrypted saves: round trip, wrong passphrase, damaged and foreign files,
and the file handling that must never lose or overwrite a good save."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import struct
from dataclasses import replace
from typing import Any

import nacl.exceptions
import nacl.secret
import pytest
from fakenet import IDENTITIES, MID, FakeNetwork, entries_frame, forge_next
from nacl import bindings, pwhash

from relsec_p2p.app.controller import refusal_sentence
from relsec_p2p.core import anon, ring
from relsec_p2p.core import save as save_module
from relsec_p2p.core.anon_rules import rating_event
from relsec_p2p.core.codec import unpack
from relsec_p2p.core.errors import EntryRefused, LocalProtocolError
from relsec_p2p.core.feed import encode_entry
from relsec_p2p.core.identity import Identity, scalar_from_seed
from relsec_p2p.core.requests import AnonymousAnswer, AnonymousRating, AnonymousVote
from relsec_p2p.core.save import (
    CHECK_BYTES,
    HEADER_BYTES,
    MAGIC,
    DamagedSave,
    OtherMeeting,
    SaveError,
    SavePayload,
    WrongPassphrase,
    derive_key,
    open_save,
    open_save_keyed,
    payload_of,
    restore_session,
    seal_save,
)
from relsec_p2p.net.files import SaveFile, delete_save, write_atomically, write_export
from relsec_p2p.net.node import Node

PASS = "correct horse battery"  # noqa: S105 -- a test passphrase
# Tests stretch the passphrase cheaply; the default (MODERATE) has its own test.
CHEAP = {
    "opslimit": pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": pwhash.argon2id.MEMLIMIT_MIN,
}


def cheap_key(passphrase: str = PASS) -> save_module.SaveKey:
    return derive_key(passphrase, **CHEAP)


def busy_meeting(n: int = 3) -> FakeNetwork:
    """A meeting with some of everything in its log."""
    net = FakeNetwork.meeting(n)
    a, b = net[0], net[1]
    a.open_step(0)
    net.settle()
    threat = b.contribute(0, "A threat", tag="internal")
    net.settle()
    a.open_step(1)
    net.settle()
    a.contribute(1, "An impact", ref=threat.hash)
    net.settle()
    a.open_step(3)
    net.settle()
    proposal = b.propose(3, "A way forward")
    net.settle()
    poll = a.open_poll(proposal.hash)
    net.settle()
    for session in net:
        session.vote(poll.hash, "agree")
    net.settle()
    a.close_poll(poll.hash)
    net.settle()
    for session in net:
        session.sign_tally(poll.hash)
    net.settle()
    return net


def test_round_trip_restores_the_same_meeting_and_identity() -> None:
    net = busy_meeting()
    member = net[1]
    payload = payload_of(member, template="title = 'x'")
    blob = seal_save(payload, cheap_key())
    opened = open_save(blob, PASS)
    assert opened.mid == member.mid and opened.creator == member.creator
    assert opened.envelopes == payload.envelopes and opened.template == "title = 'x'"
    assert opened.identity.key == member.identity.key
    assert opened.identity.ring_secret is None  # never saved: see the tests at the end
    restored = restore_session(opened, net.clock)
    assert restored.digest() == member.digest()
    assert len(restored.log) == len(member.log)
    assert restored.take_sends() == []  # nothing goes out from a restore
    # The restored member can carry on: it signs with the same key and chain.
    restored.raise_hand()
    assert restored.state.queue.waiting == [member.me]


def test_the_save_holds_no_plaintext() -> None:
    net = busy_meeting()
    blob = seal_save(payload_of(net[1]), cheap_key())
    for secret in (b"A threat", b"A way forward", net[1].me, net[1].mid, b"Ana"):
        assert secret not in blob


def test_restore_does_not_depend_on_entry_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries of a member before the roster.add that introduces them (in
    another batch) still come back: passes repeat while they make progress."""
    net = busy_meeting(4)
    payload = payload_of(net[2])
    shuffled = replace(payload, envelopes=tuple(reversed(payload.envelopes)))
    restored = restore_session(shuffled, net.clock)
    assert restored.digest() == net[2].digest()
    monkeypatch.setattr(save_module, "RESTORE_BATCH_ENTRIES", 2)  # many batches, many passes
    assert restore_session(shuffled, net.clock).digest() == net[2].digest()


def test_fork_proofs_survive_a_save() -> None:
    net = FakeNetwork.meeting(3)
    cheat = net[2]
    # The cheat signs two different entries at the same place.
    first = forge_next(cheat, "hand.raise", {})
    second = forge_next(cheat, "roster.leave", {})
    net.send_now(cheat.me, net[0].me, entries_frame(net[0].mid, first.envelope))
    net.send_now(cheat.me, net[0].me, entries_frame(net[0].mid, second.envelope))
    net.settle()
    assert cheat.me in net[0].log.forks
    restored = restore_session(
        open_save(seal_save(payload_of(net[0]), cheap_key()), PASS), net.clock
    )
    assert cheat.me in restored.log.forks
    assert restored.digest() == net[0].digest()


def test_a_tampered_entry_inside_a_save_is_refused() -> None:
    """A save carries no trust of its own: entries are checked again."""
    net = busy_meeting()
    payload = payload_of(net[1])
    outsider = IDENTITIES[7]
    forged = encode_entry(
        outsider,
        mid=payload.mid,
        seq=1,
        prev=None,
        lam=1,
        ts=0,
        kind="hand.raise",
        data={},
    )
    bad = replace(payload, envelopes=(*payload.envelopes, forged.envelope))
    with pytest.raises(DamagedSave, match=r"1 of \d+ entries in this save do not check out"):
        restore_session(bad, net.clock)


def test_wrong_passphrase_is_a_plain_error() -> None:
    blob = seal_save(payload_of(busy_meeting()[0]), cheap_key())
    with pytest.raises(WrongPassphrase) as caught:
        open_save(blob, "not the passphrase")
    assert str(caught.value) == "That passphrase does not open this save file."
    with pytest.raises(WrongPassphrase):
        open_save(blob, "")


@pytest.mark.parametrize("keep", [0, 5, len(MAGIC), HEADER_BYTES - 1, HEADER_BYTES + 20, -1])
def test_a_truncated_file_is_damaged_not_a_wrong_passphrase(keep: int) -> None:
    blob = seal_save(payload_of(busy_meeting()[0]), cheap_key())
    cut = blob[:keep] if keep >= 0 else blob[:-1]
    with pytest.raises(DamagedSave) as caught:
        open_save(cut, PASS)
    message = str(caught.value)
    assert "cut short" in message or "damaged" in message or "not a relsec save" in message


def test_a_flipped_bit_is_damage_and_a_forged_check_does_not_help() -> None:
    blob = bytearray(seal_save(payload_of(busy_meeting()[0]), cheap_key()))
    blob[HEADER_BYTES + 40] ^= 1
    with pytest.raises(DamagedSave, match="damaged"):
        open_save(bytes(blob), PASS)
    # Someone who alters the file and recomputes the unkeyed check still
    # cannot get it opened: the box's MAC refuses it.
    body = bytes(blob[:-CHECK_BYTES])
    forged = body + hashlib.blake2b(body, digest_size=CHECK_BYTES).digest()
    with pytest.raises(WrongPassphrase):
        open_save(forged, PASS)


def test_a_file_that_asks_for_a_huge_key_cost_is_refused_before_any_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = seal_save(payload_of(busy_meeting()[0]), cheap_key())
    at = len(MAGIC)
    greedy = (
        blob[:at]
        + struct.pack(">BIQ", save_module.VERSION, 3, 64 << 30)
        + blob[at + 13 : -CHECK_BYTES]
    )
    greedy += hashlib.blake2b(greedy, digest_size=CHECK_BYTES).digest()

    def no_kdf(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the key was stretched for a file that should be refused")

    monkeypatch.setattr(save_module.pwhash.argon2id, "kdf", no_kdf)
    with pytest.raises(DamagedSave, match="unreasonable key cost"):
        open_save(greedy, PASS)


def with_version(blob: bytes, version: int) -> bytes:
    at = len(MAGIC)
    changed = blob[:at] + bytes([version]) + blob[at + 1 : -CHECK_BYTES]
    return changed + hashlib.blake2b(changed, digest_size=CHECK_BYTES).digest()


def test_another_file_format_version_is_named() -> None:
    blob = seal_save(payload_of(busy_meeting()[0]), cheap_key())
    with pytest.raises(DamagedSave, match="format 3"):
        open_save(with_version(blob, 3), PASS)


def test_a_format_1_save_which_held_the_ring_secret_is_not_opened() -> None:
    blob = seal_save(payload_of(busy_meeting()[0]), cheap_key())
    with pytest.raises(DamagedSave) as refused:
        open_save(with_version(blob, 1), PASS)
    assert str(refused.value) == (
        "This save file was written by an older relsec and holds the key that shows which "
        "anonymous votes were yours; this version does not open it: delete it."
    )


def test_a_save_of_another_meeting_is_detected() -> None:
    first = busy_meeting()
    other = FakeNetwork.meeting(2, mid=b"\x77" * 16)
    blob = seal_save(payload_of(other[0]), cheap_key())
    assert open_save(blob, PASS, expected_mid=other[0].mid).mid == other[0].mid
    with pytest.raises(OtherMeeting):
        open_save(blob, PASS, expected_mid=first[0].mid)


def test_the_default_cost_is_argon2id_moderate() -> None:
    key = derive_key(PASS)
    assert key.opslimit == pwhash.argon2id.OPSLIMIT_MODERATE
    assert key.memlimit == pwhash.argon2id.MEMLIMIT_MODERATE
    blob = seal_save(payload_of(FakeNetwork.meeting(1)[0]), key)
    ops, mem = struct.unpack_from(">IQ", blob, len(MAGIC) + 1)
    assert (ops, mem) == (key.opslimit, key.memlimit)
    _, reopened = open_save_keyed(blob, PASS)
    assert reopened.key == key.key and reopened.salt == key.salt


def test_a_short_passphrase_is_refused_with_advice() -> None:
    with pytest.raises(SaveError, match="at least 8 characters"):
        derive_key("short")


def test_each_save_uses_a_fresh_nonce() -> None:
    payload = payload_of(FakeNetwork.meeting(1)[0])
    key = cheap_key()
    one, two = seal_save(payload, key), seal_save(payload, key)
    assert one != two
    assert open_save(one, PASS).envelopes == open_save(two, PASS).envelopes


# --- the file handling (net/files.py) -------------------------------------------------


@pytest.fixture
def cheap_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """SaveFile.prepare stretches with the default cost; make it cheap here."""
    real = save_module.derive_key

    def cheap(passphrase: str, **kwargs: object) -> save_module.SaveKey:
        return real(passphrase, **CHEAP)

    monkeypatch.setattr("relsec_p2p.net.files.derive_key", cheap)


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_file_writes_privately_and_reopens(tmp_path: pathlib.Path, cheap_files: None) -> None:
    session = busy_meeting()[0]
    path = tmp_path / "meeting.save"
    target = SaveFile.prepare(path, PASS)
    target.write(payload_of(session))
    assert leftovers(tmp_path) == ["meeting.save"]
    assert path.stat().st_mode & 0o777 == 0o600
    again, payload = SaveFile.opened(path, PASS)
    assert payload.mid == session.mid and again.mid == session.mid
    # A later save of the same meeting with the same passphrase may replace it.
    SaveFile.prepare(path, PASS).write(payload_of(session))
    assert open_save(path.read_bytes(), PASS).envelopes == payload_of(session).envelopes


def test_save_file_never_replaces_what_it_cannot_open(
    tmp_path: pathlib.Path, cheap_files: None
) -> None:
    theirs = tmp_path / "theirs.save"
    other = FakeNetwork.meeting(2, mid=b"\x55" * 16)[0]
    SaveFile.prepare(theirs, "their passphrase").write(payload_of(other))
    before = theirs.read_bytes()
    ours = busy_meeting()[0]
    with pytest.raises(SaveError, match="does not open"):
        SaveFile.prepare(theirs, PASS)
    # Same passphrase, another meeting: prepared, but the write is refused.
    target = SaveFile.prepare(theirs, "their passphrase")
    with pytest.raises(OtherMeeting, match="another meeting"):
        target.write(payload_of(ours))
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes")
    with pytest.raises(SaveError, match="not a relsec save"):
        SaveFile.prepare(notes, PASS)
    damaged = tmp_path / "damaged.save"
    damaged.write_bytes(before[:-10])
    with pytest.raises(SaveError, match="damaged save"):
        SaveFile.prepare(damaged, PASS)
    assert theirs.read_bytes() == before and notes.read_text() == "my own notes"
    assert damaged.read_bytes() == before[:-10]
    assert leftovers(tmp_path) == ["damaged.save", "notes.txt", "theirs.save"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "meeting.save"
    path.write_bytes(b"the old, good save")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(SaveError, match="No space left on device"):
        write_atomically(path, b"new contents")
    assert path.read_bytes() == b"the old, good save"
    assert leftovers(tmp_path) == ["meeting.save"]


def test_a_missing_folder_is_a_plain_error(tmp_path: pathlib.Path, cheap_files: None) -> None:
    with pytest.raises(SaveError, match="does not exist"):
        SaveFile.prepare(tmp_path / "nowhere" / "x.save", PASS)
    with pytest.raises(SaveError, match="Cannot write in the folder"):
        write_atomically(tmp_path / "nowhere" / "x.md", b"x")


def test_an_export_never_replaces_a_save(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "meeting.save"
    path.write_bytes(MAGIC + b"rest of a save")
    with pytest.raises(SaveError, match="is a save file"):
        write_export(path, "# record")
    assert path.read_bytes() == MAGIC + b"rest of a save"
    record = tmp_path / "record.md"
    write_export(record, "# first")
    write_export(record, "# second")  # an export may replace an export
    assert record.read_text() == "# second"


def test_payload_fields_are_checked_after_decryption() -> None:
    """A save sealed with the right key but holding the wrong shape (a future
    or broken writer) is damaged, not a crash."""
    key = cheap_key()
    blob = seal_save(
        SavePayload(
            identity=IDENTITIES[0],
            mid=b"short",
            creator=IDENTITIES[0].key,
            envelopes=(),
        ),
        key,
    )
    with pytest.raises(DamagedSave, match="not a relsec meeting"):
        open_save(blob, PASS)


# --- what a seized save reveals (issue 12, found 6) -------------------------------------

ANON_AGENDA: list[dict[str, Any]] = [
    {"id": "feel", "title": "Feel", "prompt": "How safe do you feel?", "mode": "anonymous",
     "kind": "rating", "scale": ["low", "some", "high"]},
    {"id": "decide", "title": "Decide", "prompt": "What do we do?", "mode": "anonymous",
     "kind": "proposal"},
    {"id": "open", "title": "Open", "prompt": "Anything else?", "mode": "both", "kind": "text"},
    {"id": "named", "title": "Named", "prompt": "Who does what?", "mode": "named",
     "kind": "text"},
]  # fmt: skip
FEEL, DECIDE, OPEN, NAMED = range(4)


def anonymous_meeting() -> tuple[FakeNetwork, bytes]:
    """Four members with fresh keys (a real member's ring secret owes nothing
    to its signing seed) who rated a step and voted on a poll anonymously;
    the poll is still open. Bo (net[1]) rated 1 and voted block."""
    net = FakeNetwork.meeting(
        4, identities=[Identity.generate() for _ in range(4)], agenda=ANON_AGENDA
    )
    net[0].open_step(FEEL)
    net.settle()
    for session, value in zip(net, [0, 1, 2, 2], strict=True):
        session.submit_anonymous(AnonymousRating(FEEL, value))
    net.run_rounds(lambda: len(net[0].state.anonymous_ratings.get((FEEL, None), {})) == 4)
    net[0].open_step(DECIDE)
    net.settle()
    proposal = net[1].propose(DECIDE, "We ask them to step back")
    net.settle()
    poll = net[0].open_poll(proposal.hash).hash
    net.settle()
    for session, choice in zip(net, ["agree", "block", "agree", "agree"], strict=True):
        session.submit_anonymous(AnonymousVote(poll, choice))
    net.run_rounds(lambda: len(net[0].state.polls[poll].latest_anonymous()) == 4)
    net.settle()
    return net, poll


def decrypted(blob: bytes, key: save_module.SaveKey) -> bytes:
    """What the passphrase opens: all a coerced passphrase gives."""
    nonce = blob[HEADER_BYTES - save_module.NONCE_BYTES : HEADER_BYTES]
    return nacl.secret.SecretBox(key.key).decrypt(blob[HEADER_BYTES:-CHECK_BYTES], nonce)


def test_no_save_holds_the_ring_secret_so_a_coerced_passphrase_names_no_vote() -> None:
    net, poll = anonymous_meeting()
    bo = net[1]
    secret = bo.identity.ring_secret
    assert secret is not None
    # With the secret, Bo's vote and rating are picked out of the shared log
    # at once: exactly what a save must not make possible.
    vote_tag = ring.link_tag(secret, poll)
    rating_tag = ring.link_tag(secret, rating_event(bo.mid, FEEL, None))
    assert net[0].state.polls[poll].latest_anonymous()[vote_tag] == "block"
    assert net[0].state.anonymous_ratings[(FEEL, None)][rating_tag] == 1
    key = cheap_key()
    assert bo.state.anonymous_open()
    saves = {"while the poll is open": (seal_save(payload_of(bo), key), bo.digest())}
    net[0].close_poll(poll)
    net.settle()
    net[0].open_step(NAMED)
    net.settle()
    assert not bo.state.anonymous_open()
    saves["with nothing anonymous open"] = (seal_save(payload_of(bo), key), bo.digest())
    base = ring.event_base(poll)
    # The attacker's generic try below would find the secret if it were there.
    assert bindings.crypto_scalarmult_ed25519_noclamp(secret, base) == vote_tag
    windows: set[bytes] = set()
    for when, (blob, digest) in saves.items():
        plain = decrypted(blob, key)
        assert secret not in plain, when
        data = unpack(plain, save_module.SAVE_LIMITS)
        assert sorted(data) == ["creator", "forks", "log", "mid", "seed", "template", "v"], when
        # Nor can it be had from the seed: a real member's ring secret is
        # drawn apart from it.
        assert scalar_from_seed(data["seed"], b"relsec/v2/ring-key") != secret
        windows.update(plain[at : at + 32] for at in range(len(plain) - 31))
        resumed = open_save(blob, PASS)
        assert resumed.identity.ring_secret is None
        restored = restore_session(resumed, net.clock)
        assert restored.digest() == digest
        assert restored.identity.ring_secret is None
    # No 32 bytes anywhere in either decrypted save, read as a scalar, give
    # Bo's tag in the poll.
    for window in windows:
        with contextlib.suppress(nacl.exceptions.RuntimeError):  # a product at the identity
            assert bindings.crypto_scalarmult_ed25519_noclamp(window, base) != vote_tag


def test_a_resumed_laptop_refuses_anonymous_votes_in_one_sentence_and_still_answers() -> None:
    net, poll = anonymous_meeting()
    bo = net[1]
    blob = seal_save(payload_of(bo), cheap_key())
    # Bo's laptop restarts from the save and takes its place in the room.
    restored = net.add_session(restore_session(open_save(blob, PASS), net.clock))
    assert net[1] is restored
    for request in (AnonymousVote(poll, "agree"), AnonymousRating(FEEL, 0)):
        with pytest.raises(LocalProtocolError) as refused:
            restored.submit_anonymous(request)
        assert not isinstance(refused.value, EntryRefused)
        assert str(refused.value) == anon.RESUMED_CANNOT_SIGN
        assert refusal_sentence(refused.value) == anon.RESUMED_CANNOT_SIGN
    assert anon.RESUMED_CANNOT_SIGN.count(".") == 1  # one plain sentence
    assert restored.anonymous.pending() == 0
    # Its laptop still takes part in rounds (a dummy slot, the same work) and
    # an anonymous answer still goes out: answers are not signed.
    net[0].close_poll(poll)
    net.settle()
    net[0].open_step(OPEN)
    net.settle()
    restored.submit_anonymous(AnonymousAnswer(OPEN, "said after a restart"))

    def arrived() -> bool:
        return all(
            [c.text for c in s.state.anonymous_contributions] == ["said after a restart"]
            for s in net
        )

    net.run_rounds(arrived)
    net.settle()
    (shown,) = net[0].state.anonymous_contributions
    assert (shown.members, shown.slots) == (4, 4)
    assert len(set(net.digests())) == 1
    # Bo's vote from before the restart still counts, on every laptop.
    for state in net.states():
        assert state.polls[poll].result is not None
        assert state.polls[poll].result.counts["block"] == 1


def test_a_slot_without_a_ring_secret_costs_the_same_one_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = sorted(Identity.generate().ring_key for _ in range(5))
    rings: list[int] = []
    real = ring.sign

    def counted(message: bytes, ring_keys: list[bytes], secret: bytes, event: bytes) -> bytes:
        rings.append(len(ring_keys))
        return real(message, ring_keys, secret, event)

    monkeypatch.setattr(anon.ring, "sign", counted)
    assert anon.encode_item(None, mid=MID, rid=bytes(32), keys=keys, secret=None) == b""
    answer = AnonymousAnswer(0, "hello")
    assert anon.encode_item(answer, mid=MID, rid=bytes(32), keys=keys, secret=None)
    assert rings == [5, 5]  # one signature over a ring of the round's size, each time
    with pytest.raises(LocalProtocolError, match="carried on from a save"):
        anon.encode_item(
            AnonymousVote(bytes(32), "agree"), mid=MID, rid=bytes(32), keys=keys, secret=None
        )


# --- deleting saves (the panic key) -----------------------------------------------------


def test_deleting_a_save_writes_over_its_bytes_then_removes_it(
    tmp_path: pathlib.Path, cheap_files: None
) -> None:
    path = tmp_path / "meeting.save"
    SaveFile.prepare(path, PASS).write(payload_of(busy_meeting()[0]))
    before = path.read_bytes()
    # A second name for the same inode sees what was done to the file's own blocks.
    witness = tmp_path / "witness"
    os.link(path, witness)
    crashed = tmp_path / ".meeting.save.ab_12cde.part"  # a save cut short by a crash
    crashed.write_bytes(before[:100])
    someone_elses = tmp_path / ".meeting.save.x.abcdefgh.part"  # the save "meeting.save.x"'s
    someone_elses.write_bytes(before[:100])
    assert delete_save(path) is True
    after = witness.read_bytes()
    assert len(after) == len(before) and after != before and not after.startswith(MAGIC)
    assert leftovers(tmp_path) == [".meeting.save.x.abcdefgh.part", "witness"]
    assert delete_save(path) is False  # nothing left to delete
    # A file that is no longer a save is left as it is; a symlink is not followed.
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes")
    with pytest.raises(SaveError, match="no longer a relsec save"):
        delete_save(notes)
    link = tmp_path / "link.save"
    link.symlink_to(witness)
    witness.write_bytes(MAGIC + b"not to be touched")
    with pytest.raises(SaveError, match="Could not delete"):
        delete_save(link)
    assert notes.read_text() == "my own notes"
    assert witness.read_bytes() == MAGIC + b"not to be touched"


async def test_a_node_deletes_every_save_it_wrote_or_opened_and_saves_nothing_after(
    tmp_path: pathlib.Path, cheap_files: None
) -> None:
    node = Node(interfaces=["127.0.0.1"], use_mdns=False)
    node.start_meeting(title="Tuesday", name="Ana", agenda=ANON_AGENDA)
    kept, manual = tmp_path / "kept.save", tmp_path / "manual.save"
    await node.keep_saved(kept, PASS)
    await node.save(manual, PASS)
    theirs = tmp_path / "theirs.save"  # another meeting's: never ours to delete
    SaveFile.prepare(theirs, PASS).write(payload_of(busy_meeting()[0]))
    with pytest.raises(OtherMeeting):
        await node.save(theirs, PASS)
    assert node.save_files() == [kept, manual]
    # A change, and an automatic save under way when the deletion is asked for.
    node.perform(lambda s: s.open_step(0))
    node._autosave._last_save = 0.0  # due now
    node._autosave.tick()
    assert await node.delete_saves() == [kept, manual]
    assert leftovers(tmp_path) == ["theirs.save"]
    assert node.save_files() == []
    node.perform(lambda s: s.open_step(1))
    node._autosave.tick()
    with pytest.raises(SaveError, match="were deleted"):
        await node.save(manual, PASS)
    await node.close()  # the last save at close writes nothing either
    assert leftovers(tmp_path) == ["theirs.save"]
