"""A multi-homed laptop (SPEC §12.2, issue 13.5): it listens on every address
that mDNS advertises for it, and only on those, and laptops that reach it
through either of its networks join and sync.

Layout: host 0 is on both LANs (``lan0`` on 10.77.0.0/24, ``lan1`` on
10.78.0.0/24) and picks its interfaces by itself, so ``lan0`` comes first;
hosts 1 and 2 are on the second LAN only (their ``lan0`` is down, so host 0's
first address is unreachable from them); host 3 is on the first LAN only.
Hosts 1 and 3 share no network: everything between them goes through host 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from lan import SECOND_INTERFACE, Lan

from relsec_p2p.peerproc import SAMPLE_AGENDA as AGENDA
from relsec_p2p.peerproc import PeerProcess, wait_all_equal

pytestmark = pytest.mark.netns

HOSTS = 4

# A real DNS-SD browser (python-zeroconf, through relsec's own Discovery) in
# another namespace: prints what the laptop listening on PORT advertises.
_BROWSE = """
import asyncio, json, sys
from relsec_p2p.net.discovery import Discovery

async def main(interface, port):
    discovery = Discovery([interface])
    await discovery.async_start()
    await discovery.async_browse()
    try:
        for _ in range(300):
            for peer in discovery.peers():
                if peer.port == port:
                    print(json.dumps(sorted(peer.addresses)))
                    return
            await asyncio.sleep(0.05)
    finally:
        await discovery.async_close()
    sys.exit("not found")

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def browse(lan: Lan, i: int, interface: str, port: int) -> list[str]:
    result = subprocess.run(
        [*lan.prefix(i), sys.executable, "-c", _BROWSE, interface, str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr
    addresses: list[str] = json.loads(result.stdout)
    return addresses


def test_multi_homed_laptop_listens_where_it_advertises_and_bridges(
    lan: Lan, peers: list[PeerProcess]
) -> None:
    lan.add_network([0, 1, 2])
    for i in (1, 2):
        lan.interface_down(i)
    both = PeerProcess(prefix=lan.prefix(0), interface=None)
    peers.append(both)
    expected = sorted([lan.address(0), lan.second_address(0)])
    # It listens on exactly its two addresses, on one port, never the wildcard.
    assert sorted(host for host, _ in both.listening) == expected
    assert {port for _, port in both.listening} == {both.port}

    # What mDNS tells each network while joining is open (nothing before,
    # SPEC §12.1): exactly the addresses it listens on.
    code = both.ok(cmd="start", title="Two networks", name="bridge", agenda=AGENDA)["code"]
    assert browse(lan, 1, lan.second_address(1), both.port) == expected
    assert browse(lan, 3, lan.address(3), both.port) == expected

    second = [PeerProcess(prefix=lan.prefix(i), interface=SECOND_INTERFACE) for i in (1, 2)]
    peers.extend(second)
    first_only = PeerProcess(prefix=lan.prefix(3), interface="lan0")
    peers.append(first_only)
    for n, peer in enumerate([*second, first_only]):
        peer.ok(cmd="join", code=code, name=f"member{n}", timeout=20)
    both.ok(cmd="open_step", step=0)
    for peer in peers:
        peer.wait_state(lambda s: s["current"] == 0 and len(s["members"]) == HOSTS)
    for i, peer in enumerate(peers):
        peer.ok(cmd="contribute", step=0, text=f"from host {i}")
    states = wait_all_equal(peers, timeout=40)
    assert len(states[0]["members"]) == HOSTS
    assert sorted(c["text"] for c in states[0]["contributions"]) == [
        f"from host {i}" for i in range(HOSTS)
    ]
