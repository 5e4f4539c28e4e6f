"""Real ``relsec peer`` processes on loopback: real mDNS, real TCP, real crypto."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time

from relsec_p2p.core.codec import frame
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.link import Handshake
from relsec_p2p.net.link import FrameReader
from relsec_p2p.net.node import Node
from relsec_p2p.peerproc import SAMPLE_AGENDA as AGENDA
from relsec_p2p.peerproc import PeerProcess, wait_all_equal


def start_meeting(peers: list[PeerProcess], n: int, *args: str) -> str:
    for _ in range(n):
        peers.append(PeerProcess(*args))
    answer = peers[0].ok(cmd="start", title="Harm in the group", name="Ana", agenda=AGENDA)
    code: str = answer["code"]
    for i, peer in enumerate(peers[1:], start=1):
        peer.ok(cmd="join", code=code, name=f"member{i}")
    return code


def test_five_peers_join_by_code_and_agree(peers: list[PeerProcess]) -> None:
    start_meeting(peers, 5)
    peers[0].ok(cmd="open_step", step=0)
    peers[4].wait_state(lambda s: s["current"] == 0)
    for i, peer in enumerate(peers):
        peer.wait_state(lambda s: s["current"] == 0)
        peer.ok(cmd="contribute", step=0, text=f"threat seen by member {i}")
    states = wait_all_equal(peers)
    for state in states:
        assert len(state["members"]) == 5
        assert sorted(c["text"] for c in state["contributions"]) == sorted(
            f"threat seen by member {i}" for i in range(5)
        )
        assert state["safety_number"] == states[0]["safety_number"]
        assert len(state["safety_number"].replace(" ", "")) == 20
    # Full mesh: every peer is linked to the four others.
    for peer in peers:
        peer.wait_state(lambda s: len(s["links"]) == 4)


def test_wrong_code_gets_a_plain_error_quickly(peers: list[PeerProcess]) -> None:
    code = start_meeting(peers, 2)
    outsider = PeerProcess()
    peers.append(outsider)
    nameplate, *words = code.split("-")
    wrong = "-".join([nameplate, *reversed(words)])
    started = time.monotonic()
    answer = outsider.cmd(cmd="join", code=wrong, name="Eve")
    assert answer["event"] == "error"
    assert "not accepted" in answer["message"]
    assert time.monotonic() - started < 10
    state = peers[0].state()
    assert len(state["members"]) == 2  # nobody was added
    assert outsider.state()["in_meeting"] is False


def test_code_rotates_after_three_wrong_tries(peers: list[PeerProcess]) -> None:
    code = start_meeting(peers, 1)
    outsider = PeerProcess()
    peers.append(outsider)
    nameplate, *words = code.split("-")
    wrong = "-".join([nameplate, *reversed(words)])
    for _ in range(3):
        assert outsider.cmd(cmd="join", code=wrong, name="Eve")["event"] == "error"
    new_code = peers[0].wait_state(lambda s: s["code"] != code)["code"]
    assert new_code.split("-")[0] == nameplate
    # The old, right code no longer works; the new one does.
    assert outsider.cmd(cmd="join", code=code, name="Eve")["event"] == "error"
    assert outsider.cmd(cmd="join", code=new_code, name="Eve")["event"] == "joined"


def test_facilitator_killed_meeting_goes_on(peers: list[PeerProcess]) -> None:
    start_meeting(peers, 3, "--absent-after", "1.5")
    peers[0].ok(cmd="open_step", step=0)
    for peer in peers:
        peer.wait_state(lambda s: s["current"] == 0)
    peers[1].ok(cmd="contribute", step=0, text="said before the crash")
    wait_all_equal(peers)
    facilitator = peers[0].key
    peers[0].kill()
    survivors = peers[1:]
    states = [
        p.wait_state(lambda s: s["facilitator"] not in (facilitator, None), 30) for p in survivors
    ]
    successor = states[0]["facilitator"]
    assert successor == peers[1].key  # next in join order
    by_key = {p.key: p for p in survivors}
    by_key[successor].ok(cmd="advance")
    survivors[1].wait_state(lambda s: s["current"] == 1)
    final = wait_all_equal(survivors)
    assert [c["text"] for c in final[0]["contributions"]] == ["said before the crash"]


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, TimeoutError):
        return True
    return True


def test_bad_input_on_a_live_port(peers: list[PeerProcess]) -> None:
    start_meeting(peers, 2)
    target = peers[0]
    # 1. random bytes, 2. an oversized frame header, 3. a non-member's handshake.
    sock = _connect(target.port)
    sock.sendall(os.urandom(64))
    assert _closed_by_peer(sock)
    sock = _connect(target.port)
    sock.sendall(struct.pack(">I", 50 * 1024 * 1024) + b"x" * 100)
    assert _closed_by_peer(sock)

    mid = bytes.fromhex(target.state()["mid"])
    outsider = Identity.generate()
    handshake = Handshake(outsider, mid, initiator=True, epoch=1, accept=lambda k: True)
    sock = _connect(target.port)
    sock.sendall(frame(handshake.start()))
    sock.settimeout(5)
    header = sock.recv(4)
    hi2 = sock.recv(struct.unpack(">I", header)[0])
    sock.sendall(frame(handshake.receive(hi2) or b""))
    assert _closed_by_peer(sock)

    # The node logged typed errors for each and goes on serving members.
    def logged(code: str) -> bool:
        return any(code in line for line in target.stderr_lines)

    deadline = time.monotonic() + 5
    while not (logged("frame_too_large") and logged("not_a_member")):
        assert time.monotonic() < deadline, "".join(target.stderr_lines)
        time.sleep(0.1)
    target.ok(cmd="open_step", step=0)
    peers[1].wait_state(lambda s: s["current"] == 0)
    peers[1].ok(cmd="contribute", step=0, text="still here")
    wait_all_equal(peers)


async def test_replayed_handshake_is_refused() -> None:
    """A member's recorded handshake, replayed byte for byte, opens nothing."""
    host = Node(interfaces=["127.0.0.1"])
    member = Node(interfaces=["127.0.0.1"])
    await host.start()
    await member.start()
    try:
        code = host.start_meeting(title="t", name="Ana", agenda=AGENDA)
        await member.join(code, "Bo")
        assert host.session is not None
        # Record a genuine handshake from the member to the host.
        reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
        frames = FrameReader(reader, 4096)
        handshake = Handshake(
            member.identity,
            host.session.mid,
            initiator=True,
            epoch=host.session.state.epoch,
            accept=lambda k: True,
        )
        hi1 = handshake.start()
        writer.write(frame(hi1))
        hi2 = await frames.read()
        hi3 = handshake.receive(hi2)
        assert hi3 is not None and handshake.done
        writer.close()
        # Replay hi1 and hi3 on a new connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", host.port)
        frames = FrameReader(reader, 4096)
        writer.write(frame(hi1))
        await frames.read()  # a fresh hi2 with a fresh ephemeral key
        writer.write(frame(hi3))
        await writer.drain()
        closed = await asyncio.wait_for(reader.read(), 5)
        assert closed == b""  # the host hung up without a link
        assert set(host.links) == {member.identity.key}
    finally:
        await member.close()
        await host.close()


def test_cli_rejects_a_bad_interface() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "relsec_p2p", "peer", "--interface", "nosuch0"],
        capture_output=True,
        text=True,
        timeout=30,
        input="",
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "relsec:" in result.stderr


def test_consensus_poll_is_cosigned_by_every_laptop(peers: list[PeerProcess]) -> None:
    start_meeting(peers, 3)
    peers[0].ok(cmd="open_step", step=2)
    peers[1].wait_state(lambda s: s["current"] == 2)
    proposal = peers[1].ok(cmd="propose", step=2, text="we pause the project for a month")
    peers[0].wait_state(lambda s: len(s["proposals"]) == 1)
    poll = peers[0].ok(cmd="open_poll", proposal=proposal["entry"])["entry"]
    for peer, choice in zip(peers, ["agree", "concerns", "block"], strict=True):
        peer.wait_state(lambda s: any(p["id"] == poll for p in s["polls"]))
        peer.ok(cmd="vote", poll=poll, choice=choice)
    peers[2].ok(cmd="vote", poll=poll, choice="agree")  # changed: latest wins
    peers[0].wait_state(lambda s: s["polls"][0]["tally"]["agree"] == 2)
    peers[0].ok(cmd="close_poll", poll=poll)
    peers[0].ok(cmd="record_outcome", poll=poll, text="Paused; revisit on the 1st.")
    states = wait_all_equal(peers)
    for state in states:
        (closed,) = state["polls"]
        assert closed["result"]["outcome"] == "consensus"
        assert closed["result"]["counts"] == {
            "agree": 2,
            "concerns": 1,
            "stand_aside": 0,
            "block": 0,
        }
        assert "stand aside" in closed["result"]["rule"]
        assert closed["outcome"] == "Paused; revisit on the 1st."
        assert sorted(closed["cosigners"]) == sorted(p.key for p in peers)
