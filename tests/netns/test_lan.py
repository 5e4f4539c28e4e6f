"""Five hosts on a bridge in network namespaces: real multicast discovery,
join by code across hosts, partition and heal, packet loss, a crashed
facilitator, and a packet capture that must hold nothing readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from lan import Lan

from relsec_p2p.peerproc import SAMPLE_AGENDA as AGENDA
from relsec_p2p.peerproc import PeerProcess, wait_all_equal

pytestmark = pytest.mark.netns

HOSTS = 5


def spawn(lan: Lan, peers: list[PeerProcess], i: int, *args: str) -> PeerProcess:
    # Host 0 picks its interface by itself; the others name it.
    peer = PeerProcess(*args, prefix=lan.prefix(i), interface=None if i == 0 else "lan0")
    peers.append(peer)
    return peer


def meeting(
    lan: Lan,
    peers: list[PeerProcess],
    *args: str,
    names: list[str] | None = None,
    count: int = HOSTS,
) -> str:
    hosts = [spawn(lan, peers, i, *args) for i in range(count)]
    names = names or [f"member{i}" for i in range(count)]
    code: str = hosts[0].ok(cmd="start", title="Threat assessment", name=names[0], agenda=AGENDA)[
        "code"
    ]
    for host, name in zip(hosts[1:], names[1:], strict=True):
        host.ok(cmd="join", code=code, name=name, timeout=20)
    hosts[0].ok(cmd="open_step", step=0)
    for host in hosts:
        host.wait_state(lambda s: s["current"] == 0 and len(s["members"]) == count)
    return code


def test_join_partition_heal_and_loss(lan: Lan, peers: list[PeerProcess]) -> None:
    meeting(lan, peers)
    wait_all_equal(peers)
    # Partition host 3: both sides keep working.
    lan.unplug(3)
    peers[1].ok(cmd="contribute", step=0, text="written by the majority")
    peers[3].ok(cmd="contribute", step=0, text="written alone")
    peers[0].wait_state(lambda s: len(s["contributions"]) == 1)
    assert [c["text"] for c in peers[3].state()["contributions"]] == ["written alone"]
    lan.plug(3)
    states = wait_all_equal(peers, timeout=40)
    assert sorted(c["text"] for c in states[0]["contributions"]) == [
        "written alone",
        "written by the majority",
    ]
    # 20 % packet loss on host 2: everything still arrives.
    lan.lossy(2, 20)
    for i, peer in enumerate(peers):
        peer.ok(cmd="contribute", step=0, text=f"under loss {i}")
    states = wait_all_equal(peers, timeout=60)
    assert len(states[0]["contributions"]) == 2 + HOSTS
    lan.lossless(2)


def test_facilitator_crash_loses_nothing(lan: Lan, peers: list[PeerProcess]) -> None:
    meeting(lan, peers, "--absent-after", "2")
    for i, peer in enumerate(peers):
        peer.ok(cmd="contribute", step=0, text=f"before the crash {i}")
    wait_all_equal(peers)
    facilitator = peers[0].key
    peers[0].kill()
    survivors = peers[1:]
    for peer in survivors:
        peer.wait_state(lambda s: s["facilitator"] not in (facilitator, None), timeout=40)
    successor = survivors[0].state()["facilitator"]
    assert successor == peers[1].key
    peers[1].ok(cmd="advance")
    peers[2].wait_state(lambda s: s["current"] == 1)
    peers[2].ok(cmd="contribute", step=1, text="after the crash")
    states = wait_all_equal(survivors, timeout=30)
    texts = sorted(c["text"] for c in states[0]["contributions"])
    assert texts == sorted([*(f"before the crash {i}" for i in range(HOSTS)), "after the crash"])


def test_outsider_can_neither_join_nor_read(
    lan: Lan, peers: list[PeerProcess], tmp_path: Path
) -> None:
    pcap = tmp_path / "bridge.pcap"
    lan.capture(pcap)
    names = ["Amaranth", "Birchwood", "Calloway", "Delphine"]
    secrets_said = ["the landlord knows our address", "someone shared the minutes"]
    code = meeting(lan, peers, names=names, count=4)
    stranger = spawn(lan, peers, 4)  # on the same LAN, with a guessed code
    nameplate, *words = code.split("-")
    answer = stranger.cmd(cmd="join", code="-".join([nameplate, *reversed(words)]), name="Intruder")
    assert answer["event"] == "error"
    for text, peer in zip(secrets_said, peers[:2], strict=True):
        peer.ok(cmd="contribute", step=0, text=text)
    wait_all_equal(peers[:4])
    assert stranger.state()["in_meeting"] is False
    lan.stop_captures()
    captured = pcap.read_bytes()
    assert len(captured) > 10_000  # the capture really saw the meeting's traffic
    assert b"_relsec" in captured  # and the mDNS announcements
    assert b"hi1" in captured  # and TCP payloads (the cleartext handshake type tag)
    for secret in [*secrets_said, *names, "Threat assessment", code, *words]:
        assert secret.encode() not in captured, f"{secret!r} crossed the LAN readable"
