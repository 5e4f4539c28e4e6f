"""Where a node's links come from: the places to dial, and when to dial them.

Rules of this file:
- Every relsec instance discovered by mDNS (or given with ``--peer``) is
  dialled; the link handshake (``net/link.py``), not this file, decides who
  is a member.
- A failed dial backs off exponentially with jitter (``DIAL_BACKOFF_MIN_S``
  to ``DIAL_BACKOFF_MAX_S``), so a laptop that left costs little; a roster
  change dials everyone again at once.
- Never dials this laptop's own listener, never one place twice at once,
  never a peer already linked; nothing once the node is closing.
- Logs name places and error codes, never keys.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import RemoteProtocolError
from .discovery import DiscoveredPeer
from .link import Link, LinkClosed

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("relsec.node")

DIAL_BACKOFF_MIN_S = 0.25
DIAL_BACKOFF_MAX_S = 8.0

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


@dataclass(slots=True)
class Endpoint:
    """A discovered listening address and what we know of it."""

    host: str
    port: int
    key: bytes | None = None
    next_try: float = 0.0
    backoff: float = DIAL_BACKOFF_MIN_S
    dialing: bool = False


class Dialer:
    """The places a node dials, each with its own backoff."""

    def __init__(
        self,
        node: Node,
        *,
        spawn: Spawn,
        may_link: Callable[[bytes], bool],
        on_link: Callable[[Link], None],
    ) -> None:
        self._node = node
        self._spawn = spawn
        self._may_link = may_link
        self._on_link = on_link
        self._endpoints: dict[tuple[str, int], Endpoint] = {}
        self._stopped = False

    def add(self, host: str, port: int) -> None:
        """A place to dial (once: a place already known keeps its backoff)."""
        self._endpoints.setdefault((host, port), Endpoint(host, port))

    def add_discovered(self, peers: Iterable[DiscoveredPeer]) -> None:
        """Every address discovery knows, then dial what is due."""
        for peer in peers:
            for host in peer.addresses:
                self.add(host, peer.port)
        self.dial_all()

    def redial(self) -> None:
        """The roster changed: new members may now be admitted, so forget
        every backoff and dial everyone at the next chance."""
        for endpoint in self._endpoints.values():
            endpoint.next_try, endpoint.backoff = 0.0, DIAL_BACKOFF_MIN_S

    def stop(self) -> None:
        """The node is closing: dial nothing more."""
        self._stopped = True

    def dial_all(self) -> None:
        node = self._node
        if node.session is None or self._stopped:
            return
        now = time.monotonic()
        for endpoint in self._endpoints.values():
            if endpoint.dialing or endpoint.next_try > now:
                continue
            if endpoint.key is not None and endpoint.key in node.links:
                continue
            if endpoint.port == node.port and endpoint.host in node.interfaces:
                continue
            self._spawn(self._dial(endpoint))

    async def _dial(self, endpoint: Endpoint) -> None:
        node = self._node
        endpoint.dialing = True
        try:
            session, state = node.session, node.state
            if session is None:
                return
            link = await Link.connect(
                endpoint.host,
                endpoint.port,
                node.identity,
                session.mid,
                0 if state is None else state.epoch,
                self._may_link,
            )
            endpoint.key = link.peer
            endpoint.backoff = DIAL_BACKOFF_MIN_S
            self._on_link(link)
        except (RemoteProtocolError, LinkClosed, OSError, TimeoutError) as exc:
            code = getattr(exc, "code", type(exc).__name__)
            log.debug("dial %s:%d failed: %s", endpoint.host, endpoint.port, code)
            endpoint.next_try = time.monotonic() + endpoint.backoff * (0.5 + random.random())
            endpoint.backoff = min(DIAL_BACKOFF_MAX_S, endpoint.backoff * 2)
        finally:
            endpoint.dialing = False


__all__ = ["DIAL_BACKOFF_MAX_S", "DIAL_BACKOFF_MIN_S", "Dialer", "Endpoint"]
