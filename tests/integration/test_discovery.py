"""Discovery over real multicast on loopback (net/discovery).

Other processes advertise, this one browses: TESTING.md measured that several
processes with ``interfaces=["127.0.0.1"]`` find each other in about 1.2 s.
Other relsec tests may advertise on loopback at the same time, so every check
looks for the instance names its own peers reported, never for "any peer"."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from relsec_p2p.net.discovery import (
    SERVICE_TYPE,
    DiscoveredPeer,
    Discovery,
    DiscoveryError,
    choose_interfaces,
)

LOOPBACK = ["127.0.0.1"]

ADVERTISER = """
import asyncio, sys
from relsec_p2p.net.discovery import Discovery

async def main():
    discovery = Discovery(["127.0.0.1"])
    await discovery.async_start()
    await discovery.async_advertise(int(sys.argv[1]), int(sys.argv[2]))
    print(discovery.instance, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await discovery.async_close()
    print("closed", flush=True)

asyncio.run(main())
"""


@dataclass
class Advertiser:
    """A relsec peer in its own process that advertises until its stdin closes."""

    process: asyncio.subprocess.Process
    instance: str
    port: int
    nameplate: int

    async def async_stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        line = await asyncio.wait_for(self.process.stdout.readline(), 5)
        assert line.strip() == b"closed"
        await asyncio.wait_for(self.process.wait(), 5)


Spawn = Callable[[int], Awaitable[Advertiser]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    started: list[asyncio.subprocess.Process] = []

    async def start(nameplate: int) -> Advertiser:
        port = 20000 + secrets.randbelow(20000)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            ADVERTISER,
            str(port),
            str(nameplate),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        started.append(process)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        instance = line.decode().strip()
        assert re.fullmatch(r"[0-9a-f]{16}", instance), line
        return Advertiser(process, instance, port, nameplate)

    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()  # only the processes this fixture started
                await process.wait()


@pytest.fixture
async def browser() -> AsyncIterator[Discovery]:
    discovery = Discovery(LOOPBACK)
    await discovery.async_start()
    await discovery.async_browse()
    try:
        yield discovery
    finally:
        await discovery.async_close()


def nameplates(count: int) -> list[int]:
    return secrets.SystemRandom().sample(range(10, 100), count)


async def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def by_instance(peers: list[DiscoveredPeer], instance: str) -> DiscoveredPeer | None:
    return next((peer for peer in peers if peer.instance == instance), None)


async def test_processes_find_each_other_by_nameplate(browser: Discovery, spawn: Spawn) -> None:
    first, second = nameplates(2)
    started = time.monotonic()
    one, two = await asyncio.gather(spawn(first), spawn(second))
    for peer_process in (one, two):
        found = await browser.async_wait_for(peer_process.nameplate, 8)
        assert found, f"nothing advertised nameplate {peer_process.nameplate}"
        assert await wait_until(
            lambda p=peer_process: by_instance(browser.find(p.nameplate), p.instance) is not None,
            8,
        )
        peer = by_instance(browser.find(peer_process.nameplate), peer_process.instance)
        assert peer == DiscoveredPeer(
            instance=peer_process.instance,
            nameplate=peer_process.nameplate,
            addresses=["127.0.0.1"],
            port=peer_process.port,
        )
    assert time.monotonic() - started < 8
    # Each nameplate finds only its own peer among ours.
    assert by_instance(browser.find(first), two.instance) is None


async def test_txt_holds_only_version_and_nameplate(spawn: Spawn) -> None:
    (nameplate,) = nameplates(1)
    peer = await spawn(nameplate)
    aiozc = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        info = AsyncServiceInfo(SERVICE_TYPE, f"{peer.instance}.{SERVICE_TYPE}")
        assert await info.async_request(aiozc.zeroconf, 8000)
        assert info.properties == {b"v": b"2", b"np": str(nameplate).encode()}
        # No host name either: the records name only the random instance.
        assert info.server == f"{peer.instance}.local."
        assert socket.gethostname().lower() not in (info.server or "").lower()
    finally:
        await aiozc.async_close()


async def test_no_nameplate_means_version_only_and_updates_reach_peers(
    browser: Discovery,
) -> None:
    advertiser = Discovery(LOOPBACK)
    await advertiser.async_start()
    await advertiser.async_browse()
    try:
        await advertiser.async_advertise(40001, None)
        assert await wait_until(
            lambda: by_instance(browser.peers(), advertiser.instance) is not None, 8
        )
        peer = by_instance(browser.peers(), advertiser.instance)
        assert peer is not None and peer.nameplate is None
        aiozc = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, f"{advertiser.instance}.{SERVICE_TYPE}")
            assert await info.async_request(aiozc.zeroconf, 5000)
            assert info.properties == {b"v": b"2"}
        finally:
            await aiozc.async_close()

        (nameplate,) = nameplates(1)
        await advertiser.async_advertise(40001, nameplate)  # a nameplate appears
        assert await wait_until(
            lambda: by_instance(browser.find(nameplate), advertiser.instance) is not None, 5
        )
        await advertiser.async_advertise(40002, nameplate)  # the port moves
        assert await wait_until(
            lambda: getattr(by_instance(browser.peers(), advertiser.instance), "port", 0) == 40002,
            8,
        )
        # A peer hears its own advertisement but never lists itself.
        assert by_instance(advertiser.peers(), advertiser.instance) is None
    finally:
        await advertiser.async_close()


async def test_closing_withdraws_the_service(spawn: Spawn) -> None:
    changes: list[float] = []
    watcher = Discovery(LOOPBACK, on_change=lambda: changes.append(time.monotonic()))
    await watcher.async_start()
    await watcher.async_browse()
    try:
        (nameplate,) = nameplates(1)
        peer = await spawn(nameplate)
        assert await wait_until(lambda: by_instance(watcher.peers(), peer.instance) is not None, 8)
        seen = len(changes)
        assert seen >= 1
        await peer.async_stop()
        assert await wait_until(lambda: by_instance(watcher.peers(), peer.instance) is None, 5)
        assert len(changes) > seen
    finally:
        await watcher.async_close()


async def test_wait_for_times_out_with_an_empty_list(browser: Discovery) -> None:
    started = time.monotonic()
    # Nameplates are 10..99, so nobody can be advertising 100.
    assert await browser.async_wait_for(100, 0.3) == []
    assert 0.25 < time.monotonic() - started < 2


async def test_misuse_is_refused() -> None:
    discovery = Discovery(LOOPBACK)
    with pytest.raises(RuntimeError):
        await discovery.async_advertise(40001, 42)
    await discovery.async_start()
    try:
        with pytest.raises(ValueError):
            await discovery.async_advertise(0, 42)
        with pytest.raises(ValueError):
            await discovery.async_advertise(40001, 7)
    finally:
        await discovery.async_close()
    await discovery.async_close()  # closing twice is harmless
    with pytest.raises(DiscoveryError):
        Discovery([])


def assert_one_plain_sentence(message: str) -> None:
    assert message[0].isupper() and message.endswith(".")
    assert not re.search(r"[.!?]\s", message[:-1]), message


@pytest.mark.parametrize("requested", ["lo", "127.0.0.1", " lo "])
def test_choose_interfaces_accepts_loopback(requested: str) -> None:
    assert choose_interfaces(requested) == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("requested", "hint"),
    [
        ("bogus0", "no network interface named 'bogus0'"),
        ("10.77.255.254", "No network interface on this laptop has the address"),
        ("::1", "IPv4 only"),
    ],
)
def test_choose_interfaces_errors_clearly(requested: str, hint: str) -> None:
    with pytest.raises(DiscoveryError) as caught:
        choose_interfaces(requested)
    assert hint in str(caught.value)
    assert_one_plain_sentence(str(caught.value))


def test_choose_interfaces_default_is_ipv4_and_never_empty() -> None:
    chosen = choose_interfaces(None)
    assert chosen
    for address in chosen:
        socket.inet_aton(address)
    if chosen != ["127.0.0.1"]:
        assert "127.0.0.1" not in chosen  # loopback only as the fallback
