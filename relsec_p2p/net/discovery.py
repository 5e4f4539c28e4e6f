"""Find meeting peers on the LAN: DNS-SD over mDNS with python-zeroconf's asyncio API.

Rules of this file (docs/ARCHITECTURE.md §4 "Discovery", SPEC §12.1):
starting sends nothing; browsing (queries) runs only while this laptop is
looking for a meeting to join, advertising only while the node says so (the
facilitator's laptop, while joining is open), with ``ADVERT_TTL_S`` on every
record and goodbye packets when it stops. The record is
``_relsec._tcp.local.`` under a random instance name with TXT ``v`` and
``np`` only (no title, no names, no keys); always bind explicit interfaces,
IPv4 only; what the LAN says is untrusted, checked and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import struct
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from ..core.errors import LocalError
from ..core.i18n import _

log = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_relsec._tcp.local."
PROTOCOL_VERSION: Final = "2"  # SPEC §1.2: the entries' version, as text
NAMEPLATE_MIN: Final = 10
NAMEPLATE_MAX: Final = 99
# A hostile or crowded LAN must not grow our memory without bound.
MAX_PEERS: Final = 256
MAX_ADDRESSES: Final = 8
RESOLVE_TIMEOUT_MS: Final = 3000
# Every record of the advertisement lives this long in others' caches
# (python-zeroconf's defaults are 120 s for SRV/A and 4 500 s for PTR/TXT): a
# laptop that vanishes without its goodbye is forgotten within half a minute.
ADVERT_TTL_S: Final = 30
LOOPBACK: Final = "127.0.0.1"


class DiscoveryError(LocalError):
    """Discovery cannot run as asked; the message says what to do."""

    code = "discovery"


@dataclass(frozen=True, slots=True)
class DiscoveredPeer:
    """One advertised relsec peer, as the LAN described it (unauthenticated:
    the link handshake, not this record, decides who someone is)."""

    instance: str
    nameplate: int | None
    addresses: list[str]
    port: int


# --- choosing interfaces --------------------------------------------------

# ioctl numbers and flags differ between Linux and the BSDs (macOS included);
# the struct ifreq layout that matters here (name[16], then flags or a
# sockaddr_in with the address at offset 4) is the same on both.
_IFF_UP: Final = 0x1
_IFF_LOOPBACK: Final = 0x8
_IFF_POINTOPOINT: Final = 0x10
if sys.platform.startswith("linux"):
    _IOCTLS: tuple[int, int, int] | None = (0x8913, 0x8915, 0x1000)
elif sys.platform == "darwin" or "bsd" in sys.platform:
    _IOCTLS = (0xC0206911, 0xC0206921, 0x8000)
else:
    _IOCTLS = None


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes | None:
    import fcntl  # POSIX only; reached only where _IOCTLS is set

    encoded = name.encode()
    if len(encoded) > 15:
        return None
    try:
        result: bytes = fcntl.ioctl(sock.fileno(), request, struct.pack("16s16s", encoded, b""))
    except OSError:  # no such interface, or no IPv4 address on it
        return None
    return result


def _interface_table() -> list[tuple[str, int, str | None]]:
    """(name, flags, IPv4 address or None) for every interface, via ioctl."""
    if _IOCTLS is None:
        return []
    get_flags, get_addr, _ = _IOCTLS
    table: list[tuple[str, int, str | None]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            raw_flags = _ifreq(sock, get_flags, name)
            flags = struct.unpack("H", raw_flags[16:18])[0] if raw_flags else 0
            raw_addr = _ifreq(sock, get_addr, name)
            address = socket.inet_ntoa(raw_addr[20:24]) if raw_addr else None
            table.append((name, flags, address))
    return table


def _default_route_address() -> str | None:
    """The address the OS would send mDNS from (connecting a UDP socket sends
    nothing): the fallback where interfaces cannot be listed."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("224.0.0.251", 5353))
            address: str = sock.getsockname()[0]
    except OSError:
        return None
    return None if address == "0.0.0.0" else address  # noqa: S104 - compared, not bound


def _is_local_address(address: str) -> bool:
    # Binding succeeds exactly for addresses this host owns (secondary ones too).
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


def choose_interfaces(requested: str | None) -> list[str]:
    """The IPv4 addresses to pass as zeroconf's ``interfaces=``.

    ``requested`` is an interface name ("eth0") or one of this laptop's IPv4
    addresses. With None: every interface that is up, not loopback, not a
    point-to-point tunnel (a VPN must not carry our mDNS), supports multicast
    and has an IPv4 address; loopback only if there is none."""
    if requested is None:
        if _IOCTLS is None:
            address = _default_route_address()
            return [address] if address else [LOOPBACK]
        _get_address, _get_flags, multicast = _IOCTLS
        chosen = [
            address
            for _name, flags, address in _interface_table()
            if address is not None
            and flags & _IFF_UP
            and flags & multicast
            and not flags & (_IFF_LOOPBACK | _IFF_POINTOPOINT)
        ]
        return list(dict.fromkeys(chosen)) or [LOOPBACK]

    wanted = requested.strip()
    try:
        parsed = ipaddress.ip_address(wanted)
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.version != 4:
            raise DiscoveryError(
                _("Peers are found over IPv4 only, so give an IPv4 address or an interface name.")
            )
        if not _is_local_address(wanted):
            raise DiscoveryError(
                _(
                    "No network interface on this laptop has the address {address}; "
                    "give one of its own addresses or an interface name such as eth0."
                ).format(address=wanted)
            )
        return [wanted]

    names = [name for _index, name in socket.if_nameindex()]
    if wanted not in names:
        raise DiscoveryError(
            _(
                "There is no network interface named {name!r}; "
                "choose one of {names}, or give an IPv4 address."
            ).format(name=wanted, names=", ".join(names) or _("none"))
        )
    if _IOCTLS is None:
        raise DiscoveryError(
            _("On this system give the IPv4 address of {name!r} instead of its name.").format(
                name=wanted
            )
        )
    for name, _index, address in _interface_table():
        if name == wanted and address is not None:
            return [address]
    raise DiscoveryError(
        _(
            "The network interface {name!r} has no IPv4 address; "
            "connect it to the network or choose another interface."
        ).format(name=wanted)
    )


# --- discovery --------------------------------------------------------------


# Instance names are 64 random bits, so the RFC 6762 §8.1 conflict probe
# (about a second of waiting before the first announcement) cannot find
# anything; python-zeroconf skips it for "cooperating responders".
_NO_PROBE: dict[str, Any] = {"cooperating_responders": True}


def _check_nameplate(nameplate: int | None) -> None:
    if nameplate is not None and (
        isinstance(nameplate, bool)
        or not isinstance(nameplate, int)
        or not NAMEPLATE_MIN <= nameplate <= NAMEPLATE_MAX
    ):
        raise ValueError(f"nameplate must be None or {NAMEPLATE_MIN}..{NAMEPLATE_MAX}")


def _parse_nameplate(raw: bytes | None) -> int | None:
    if raw is None or len(raw) != 2 or not raw.isdigit():
        return None
    value = int(raw)
    return value if NAMEPLATE_MIN <= value <= NAMEPLATE_MAX else None


def _peer_from_info(info: AsyncServiceInfo) -> DiscoveredPeer | None:
    """A peer from resolved records, or None if they are not a relsec v1 peer."""
    properties = info.properties
    if properties.get(b"v") != PROTOCOL_VERSION.encode() or not info.port:
        return None
    addresses = info.parsed_addresses(IPVersion.V4Only)[:MAX_ADDRESSES]
    if not addresses:
        return None
    return DiscoveredPeer(
        instance=info.name[: -len(SERVICE_TYPE) - 1],
        nameplate=_parse_nameplate(properties.get(b"np")),
        addresses=addresses,
        port=info.port,
    )


class Discovery:
    """Browses for relsec peers and (optionally) advertises this one.

    All methods run on the event loop. ``on_change`` is called (on the loop)
    whenever ``peers()`` may have changed; it must not block."""

    def __init__(self, interfaces: list[str], on_change: Callable[[], None] | None = None) -> None:
        if not interfaces:
            raise DiscoveryError(_("Discovery needs at least one interface address to listen on."))
        self.interfaces = list(interfaces)
        self.instance = secrets.token_hex(8)  # random: links nothing across meetings
        self._own_name = f"{self.instance}.{SERVICE_TYPE}"
        self._on_change = on_change
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._peers: dict[str, DiscoveredPeer] = {}  # by lower-case service name
        self._resolving: dict[str, asyncio.Task[None]] = {}
        # Strong references: the loop keeps only weak ones to running tasks.
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: set[asyncio.Future[None]] = set()
        self._wanted: AsyncServiceInfo | None = None
        self._registered: AsyncServiceInfo | None = None
        self._advert_task: asyncio.Task[None] | None = None
        self._advertising = asyncio.Lock()
        self._closed = False

    # -- lifecycle --

    async def async_start(self) -> None:
        """Open the mDNS sockets (returns at once). Nothing is sent: neither
        queries (``async_browse``) nor records (``async_advertise``) yet."""
        if self._aiozc is not None or self._closed:
            raise RuntimeError("Discovery can be started once")
        try:
            self._aiozc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        except OSError as exc:
            raise DiscoveryError(
                _(
                    "Cannot listen for peers on {interfaces} ({reason}); "
                    "choose another network interface."
                ).format(interfaces=", ".join(self.interfaces), reason=exc.strerror)
            ) from exc

    @property
    def browsing(self) -> bool:
        return self._browser is not None

    async def async_browse(self) -> None:
        """Start asking the LAN for relsec meetings (while joining only)."""
        zc = self._require_started()
        if self._browser is None:
            self._browser = AsyncServiceBrowser(
                zc.zeroconf, SERVICE_TYPE, handlers=[self._on_service_state_change]
            )

    async def async_stop_browsing(self) -> None:
        """Stop the queries, and forget what they found."""
        browser, self._browser = self._browser, None
        if browser is not None:
            await browser.async_cancel()
        for task in self._resolving.values():
            task.cancel()
        self._resolving.clear()
        self._peers.clear()

    async def async_advertise(self, port: int, nameplate: int | None) -> None:
        """Advertise this peer (or change what it advertises). Returns at once;
        registration runs in the background, ``async_wait_advertised`` waits."""
        zc = self._require_started()
        if not 0 < port < 65536:
            raise ValueError("port must be 1..65535")
        _check_nameplate(nameplate)
        properties = {"v": PROTOCOL_VERSION}
        if nameplate is not None:
            properties["np"] = str(nameplate)
        self._wanted = AsyncServiceInfo(
            SERVICE_TYPE,
            self._own_name,
            port=port,
            properties=properties,
            server=f"{self.instance}.local.",  # not the laptop's host name
            parsed_addresses=self.interfaces,
            host_ttl=ADVERT_TTL_S,
            other_ttl=ADVERT_TTL_S,
        )
        self._advert_task = self._spawn(self._async_sync_advertisement(zc))

    async def async_withdraw(self) -> None:
        """Stop advertising: goodbye packets (TTL 0) for every record.
        Returns at once; ``async_wait_advertised`` waits."""
        zc = self._require_started()
        self._wanted = None
        self._advert_task = self._spawn(self._async_sync_advertisement(zc))

    @property
    def advertising(self) -> bool:
        """Whether an advertisement is wanted (it may still be on its way)."""
        return self._wanted is not None

    async def async_wait_advertised(self) -> None:
        """Wait until the latest ``async_advertise`` is on the air (or failed)."""
        while (task := self._advert_task) is not None and not task.done():
            await asyncio.wait({task})

    async def async_close(self) -> None:
        """Withdraw our service (goodbye packets) and close the sockets."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._wake_waiters()
        if self._aiozc is None:
            return
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._registered is not None:
            with contextlib.suppress(Exception):
                await (await self._aiozc.async_unregister_service(self._registered))
            self._registered = None
        # Also sends goodbyes for a registration cancelled mid-way.
        await self._aiozc.async_close()

    # -- what we found --

    def peers(self) -> list[DiscoveredPeer]:
        return [peer for peer in self._peers.values() if peer.instance != self.instance]

    def find(self, nameplate: int) -> list[DiscoveredPeer]:
        return [peer for peer in self.peers() if peer.nameplate == nameplate]

    async def async_wait_for(self, nameplate: int, timeout: float) -> list[DiscoveredPeer]:
        """Peers advertising ``nameplate``, waiting up to ``timeout`` seconds for
        the first; an empty list if none appeared."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while not (found := self.find(nameplate)) and not self._closed:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)
                return found
        except TimeoutError:
            return []

    # -- internals --

    def _require_started(self) -> AsyncZeroconf:
        if self._aiozc is None or self._closed:
            raise RuntimeError("call async_start() first, and not after async_close()")
        return self._aiozc

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("discovery task failed: %r", task.exception())

    async def _async_sync_advertisement(self, zc: AsyncZeroconf) -> None:
        # One change at a time; a later call supersedes an earlier one that
        # has not started yet.
        async with self._advertising:
            wanted, current = self._wanted, self._registered
            if wanted is current:
                return
            if wanted is None:
                if current is not None:
                    self._registered = None
                    await (await zc.async_unregister_service(current))
                return
            if current is None:
                await (await zc.async_register_service(wanted, **_NO_PROBE))
            elif current.port == wanted.port:
                await (await zc.async_update_service(wanted))
            else:
                await (await zc.async_unregister_service(current))
                self._registered = None
                await (await zc.async_register_service(wanted, **_NO_PROBE))
            self._registered = wanted

    def _on_service_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        # zeroconf calls handlers by keyword: these parameter names are API.
        key = name.lower()
        if self._closed or service_type != SERVICE_TYPE or key == self._own_name.lower():
            return
        if not key.endswith("." + SERVICE_TYPE):
            return
        previous = self._resolving.pop(key, None)
        if previous is not None:
            previous.cancel()
        if state_change is ServiceStateChange.Removed:
            if self._peers.pop(key, None) is not None:
                self._changed()
            return
        if key not in self._peers and len(self._peers) + len(self._resolving) >= MAX_PEERS:
            return
        self._resolving[key] = self._spawn(self._async_resolve(zeroconf, name, key))

    async def _async_resolve(self, zeroconf: Zeroconf, name: str, key: str) -> None:
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
                return
            peer = _peer_from_info(info)
            old = self._peers.get(key)
            if peer is None:
                if old is not None:  # it stopped looking like a relsec v1 peer
                    del self._peers[key]
                    self._changed()
            elif peer != old:
                self._peers[key] = peer
                self._changed()
        finally:
            if self._resolving.get(key) is asyncio.current_task():
                del self._resolving[key]

    def _changed(self) -> None:
        self._wake_waiters()
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("discovery on_change callback failed")

    def _wake_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
