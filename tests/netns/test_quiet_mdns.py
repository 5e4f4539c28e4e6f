"""What a stranger on the LAN learns from relsec's mDNS, and joining where
multicast is blocked (issue 13.3, 13.6; SPEC §12.1, §12.3, §12.13).

Host 0 facilitates, hosts 1 and 2 join, host 3 is an observer with a real
DNS-SD browser (python-zeroconf's ``ServiceBrowser``) and a listener for
every mDNS packet. It must see: nothing from the lobby (not even queries),
exactly one service from the facilitator's laptop while joining is open,
its records living ``ADVERT_TTL_S``, a TXT of ``v`` and ``np`` only, and a
goodbye when joining closes, then nothing."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lan import INTERFACE, Lan

from relsec_p2p.net.discovery import ADVERT_TTL_S
from relsec_p2p.peerproc import SAMPLE_AGENDA as AGENDA
from relsec_p2p.peerproc import PeerProcess, wait_all_equal

pytestmark = pytest.mark.netns

HOSTS = 4
OBSERVER = 3
HERE = Path(__file__).parent


class Observer:
    def __init__(self, lan: Lan) -> None:
        self.process = subprocess.Popen(
            [*lan.prefix(OBSERVER), sys.executable, str(HERE / "mdns_observer.py"),
             lan.address(OBSERVER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda line: line.get("ready") is True, 15)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def drain(self) -> list[dict[str, Any]]:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def since(self, t: float) -> list[dict[str, Any]]:
        return [line for line in self.drain() if line["t"] >= t and "ready" not in line]

    def wait(self, match: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for line in self.drain():
            if match(line):
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if match(line):
                return line
        raise AssertionError(f"the observer did not see it; it saw {self.seen[-10:]}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def spawn(lan: Lan, peers: list[PeerProcess], i: int) -> PeerProcess:
    peer = PeerProcess(prefix=lan.prefix(i), interface=INTERFACE)
    peers.append(peer)
    return peer


def test_one_laptop_announces_only_while_joining_is_open(
    lan: Lan, peers: list[PeerProcess]
) -> None:
    observer = Observer(lan)
    try:
        hosts = [spawn(lan, peers, i) for i in range(3)]
        # The lobby: three laptops running relsec, for a while. Nothing.
        lobby = time.monotonic()
        time.sleep(4)
        assert observer.since(lobby - 5) == []

        opened = time.monotonic()
        code = hosts[0].ok(cmd="start", title="Secret plans", name="Ana", agenda=AGENDA)["code"]
        added = observer.wait(lambda line: line.get("browser") == "Added", 10)
        print(f"announced {added['t'] - opened:.2f} s after the meeting started")
        assert added["txt"] == {"v": "2", "np": code.split("-")[0]}  # no title, no name
        assert added["addresses"] == [lan.address(0)]
        for host, name in zip(hosts[1:], ("Bea", "Cy"), strict=True):
            host.ok(cmd="join", code=code, name=name, timeout=20)
        wait_all_equal(hosts)
        time.sleep(2)
        open_lines = observer.since(opened)
        packets = [line for line in open_lines if line.get("packet")]
        # Only the facilitator's laptop said anything that names relsec, and
        # only about one service, with records that live ADVERT_TTL_S at most.
        # (The joiners asked while joining; their queries carry no records.)
        answers = [line for line in packets if not line["query"]]
        assert answers and {line["src"] for line in answers} == {lan.address(0)}
        instances = {name for line in answers for name, rtype, _ in line["records"] if rtype == 12}
        assert len(instances) == 1
        ttls = {ttl for line in answers for _, _, ttl in line["records"]}
        assert ttls and max(ttls) <= ADVERT_TTL_S and min(ttls) > 0
        queries = [line for line in packets if line["query"]]
        assert {line["src"] for line in queries} <= {lan.address(1), lan.address(2)}
        browsed = [line for line in open_lines if "browser" in line]
        assert [line["browser"] for line in browsed].count("Added") == 1
        assert "Secret plans" not in json.dumps(open_lines)
        assert "Ana" not in json.dumps(open_lines) and "Bea" not in json.dumps(open_lines)

        # The facilitator closes joining: a goodbye (TTL 0), then silence.
        closing = time.monotonic()
        hosts[0].ok(cmd="joining", open=False)
        removed = observer.wait(lambda line: line.get("browser") == "Removed", 5)
        print(f"goodbye seen {removed['t'] - closing:.2f} s after joining closed")
        goodbye = [line for line in observer.since(closing) if line.get("packet")]
        assert goodbye and all(
            ttl == 0 for line in goodbye if not line["query"] for _, _, ttl in line["records"]
        )
        for host in hosts:
            host.wait_state(lambda s: s["joining_open"] is False)
            assert host.state()["advertising"] is False
        quiet = time.monotonic() + 1
        time.sleep(6)
        assert [line for line in observer.since(quiet) if not line.get("query", True)] == []
        assert [line for line in observer.since(quiet) if "browser" in line] == []
        # A laptop with the right code cannot get in while joining is closed,
        # by the code alone or by the address form.
        late = spawn(lan, peers, 2)
        refused = late.cmd(cmd="join", code=code, name="Dan", timeout=40)
        assert refused["event"] == "error" and "joining is open" in refused["message"]
        port = hosts[0].port
        refused = late.cmd(cmd="join", code=f"{code} @ {lan.address(0)}:{port}", name="Dan",
                           timeout=40)  # fmt: skip
        assert refused["event"] == "error" and "joining may be closed" in refused["message"]
        assert len(hosts[0].state()["members"]) == 3
    finally:
        observer.close()


def drop_mdns(lan: Lan, i: int) -> None:
    """Client isolation on venue Wi-Fi: UDP 5353 dropped both ways on host i."""
    run = ["ip", "netns", "exec", lan.hosts[i], "nft"]
    subprocess.run([*run, "add", "table", "inet", "f"], check=True)
    for hook in ("input", "output"):
        subprocess.run(
            [*run, "add", "chain", "inet", "f", hook,
             f"{{ type filter hook {hook} priority 0; policy accept; }}"], check=True,
        )  # fmt: skip
        subprocess.run([*run, "add", "rule", "inet", "f", hook, "udp", "dport", "5353", "drop"],
                       check=True)  # fmt: skip


def test_joining_by_address_when_multicast_is_blocked(lan: Lan, peers: list[PeerProcess]) -> None:
    for i in range(3):
        drop_mdns(lan, i)
    hosts = [spawn(lan, peers, i) for i in range(3)]
    code = hosts[0].ok(cmd="start", title="Plans", name="Ana", agenda=AGENDA)["code"]
    (shown,) = hosts[0].state()["join_addresses"]
    assert shown.startswith(f"{code} @ {lan.address(0)}:")
    # The code alone finds nothing: mDNS cannot cross this network.
    failed = hosts[1].cmd(cmd="join", code=code, name="Bea", timeout=40)
    assert failed["event"] == "error" and "address shown" in failed["message"]
    # A typo in the address form: one plain sentence.
    typo = hosts[1].cmd(cmd="join", code=f"{code} @ {lan.address(0)}", name="Bea", timeout=40)
    assert typo["event"] == "error" and typo["message"].startswith("The address after @")
    # The address form gets both in, and they find each other without mDNS.
    for host, name in zip(hosts[1:], ("Bea", "Cy"), strict=True):
        assert host.cmd(cmd="join", code=shown, name=name, timeout=20)["event"] == "joined"
    for host in hosts:
        host.wait_state(lambda s: len(s["members"]) == 3 and len(s["links"]) == 2, timeout=20)
    states = wait_all_equal(hosts)
    assert len(states[0]["members"]) == 3
