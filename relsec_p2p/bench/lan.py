"""A real LAN in network namespaces: N hosts on a bridge, real multicast.

Used by the netns tests and by ``relsec bench soak``. Layout (TESTING.md): a
"switch" namespace holds the bridge, so the root namespace is never touched;
host i has interface ``lan0`` with address 10.77.0.(10+i)/24 and a multicast
route. Every name carries a per-run tag and ``close()`` deletes exactly what
this object created, even after a failure. Needs root, ``ip`` and ``nft``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

SUBNET = "10.77.0"
INTERFACE = "lan0"
SECOND_SUBNET = "10.78.0"
SECOND_INTERFACE = "lan1"
TOOLS = ("ip", "nft", "tcpdump")


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # Fixed system tools (ip, nft) with arguments this module builds itself.
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=30)  # noqa: S603


def netns_available(tools: Sequence[str] = TOOLS) -> str | None:
    """None if this machine can build the LAN, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"the {tool} command is missing (.ci/run installs it)"
    return None


class Lan:
    def __init__(self, hosts: int) -> None:
        self.tag = secrets.token_hex(3)
        self.switch = f"rsw{self.tag}"
        self.hosts = [f"rh{self.tag}{i}" for i in range(hosts)]
        self._captures: list[subprocess.Popen[bytes]] = []
        self._created: list[str] = []
        try:
            _run("ip", "netns", "add", self.switch)
            self._created.append(self.switch)
            _run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
            _run("ip", "-n", self.switch, "link", "set", "br0", "up")
            for i, host in enumerate(self.hosts):
                _run("ip", "netns", "add", host)
                self._created.append(host)
                port = self.switch_port(i)
                _run("ip", "link", "add", INTERFACE, "netns", host, "type", "veth",
                     "peer", "name", port, "netns", self.switch)  # fmt: skip
                _run("ip", "-n", self.switch, "link", "set", port, "master", "br0")
                _run("ip", "-n", self.switch, "link", "set", port, "up")
                _run("ip", "-n", host, "link", "set", "lo", "up")
                _run("ip", "-n", host, "addr", "add", f"{self.address(i)}/24", "dev", INTERFACE)
                _run("ip", "-n", host, "link", "set", INTERFACE, "up")
                _run("ip", "-n", host, "route", "add", "224.0.0.0/4", "dev", INTERFACE)
        except BaseException:
            self.close()
            raise

    def address(self, i: int) -> str:
        return f"{SUBNET}.{10 + i}"

    def add_network(self, hosts: Sequence[int]) -> None:
        """A second LAN (bridge ``br1``, subnet ``SECOND_SUBNET``) reaching
        only ``hosts``, each through a second interface ``SECOND_INTERFACE``
        with address ``second_address(i)``: a laptop on both is multi-homed,
        and the two networks are not routed to each other."""
        _run("ip", "-n", self.switch, "link", "add", "br1", "type", "bridge")
        _run("ip", "-n", self.switch, "link", "set", "br1", "up")
        for i in hosts:
            host, port = self.hosts[i], f"sx{i}"
            _run("ip", "link", "add", SECOND_INTERFACE, "netns", host, "type", "veth",
                 "peer", "name", port, "netns", self.switch)  # fmt: skip
            _run("ip", "-n", self.switch, "link", "set", port, "master", "br1")
            _run("ip", "-n", self.switch, "link", "set", port, "up")
            _run("ip", "-n", host, "addr", "add", f"{self.second_address(i)}/24",
                 "dev", SECOND_INTERFACE)  # fmt: skip
            _run("ip", "-n", host, "link", "set", SECOND_INTERFACE, "up")

    def second_address(self, i: int) -> str:
        return f"{SECOND_SUBNET}.{10 + i}"

    def interface_down(self, i: int, interface: str = INTERFACE) -> None:
        """Take one of host i's own interfaces down (its address stays, unusable)."""
        _run("ip", "-n", self.hosts[i], "link", "set", interface, "down")

    def switch_port(self, i: int) -> str:
        return f"sw{i}"

    def prefix(self, i: int) -> list[str]:
        """Run a command on host i (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.hosts[i]]

    # -- faults -------------------------------------------------------------------

    def unplug(self, i: int) -> None:
        _run("ip", "-n", self.switch, "link", "set", self.switch_port(i), "down")

    def plug(self, i: int) -> None:
        _run("ip", "-n", self.switch, "link", "set", self.switch_port(i), "up")

    def lossy(self, i: int, percent: int) -> None:
        """Drop ``percent`` % of host i's outgoing and incoming packets (nftables)."""
        host = self.hosts[i]
        _run("ip", "netns", "exec", host, "nft", "add", "table", "inet", "chaos")
        for hook in ("output", "input"):
            _run("ip", "netns", "exec", host, "nft", "add", "chain", "inet", "chaos", hook,
                 f"{{ type filter hook {hook} priority 0; policy accept; }}")  # fmt: skip
            direction = "oifname" if hook == "output" else "iifname"
            _run("ip", "netns", "exec", host, "nft", "add", "rule", "inet", "chaos", hook,
                 direction, INTERFACE, "numgen", "random", "mod", "100", "<", str(percent),
                 "drop")  # fmt: skip

    def lossless(self, i: int) -> None:
        _run("ip", "netns", "exec", self.hosts[i], "nft", "delete", "table", "inet", "chaos",
             check=False)  # fmt: skip

    def capture(self, path: Path) -> subprocess.Popen[bytes]:
        """Record every packet crossing the switch into a pcap file. The bridge
        device itself sees only flooded frames, so capture on all its ports."""
        process = subprocess.Popen(  # noqa: S603 -- tcpdump with fixed arguments
            ["ip", "netns", "exec", self.switch, "tcpdump", "-i", "any", "-U", "-s", "0",  # noqa: S607
             "-w", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._captures.append(process)
        deadline = time.monotonic() + 10
        while not path.exists() or path.stat().st_size == 0:
            if time.monotonic() > deadline or process.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        return process

    def stop_captures(self) -> None:
        for process in self._captures:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
        self._captures.clear()

    def close(self) -> None:
        self.stop_captures()
        for name in reversed(self._created):
            # Whatever still runs in a namespace this object made goes with it.
            for pid in _run("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _run("ip", "netns", "del", name, check=False)
        self._created.clear()
