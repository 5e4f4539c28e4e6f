"""The UI's side of the node: how it is made, and what the lobby may ask of it.

Rules of this file: the UI never touches sockets or crypto; it calls a
``Node`` (synchronous actions that only sign, fold and queue frames) and
learns about changes through the node's event callback. Anything that waits
on the network (starting, joining) runs in a worker, never in a handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..net.discovery import LOOPBACK, choose_interfaces
from ..net.node import Node, NodeEvent

OnEvent = Callable[[NodeEvent], None]
NodeFactory = Callable[[OnEvent], Node]


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    """What ``relsec`` was told about the network on its command line."""

    interface: str | None = None
    port: int = 0
    use_mdns: bool = True
    peers: tuple[tuple[str, int], ...] = ()
    absent_after: float = 15.0


def node_factory(options: NetworkOptions) -> NodeFactory:
    """A factory the app calls once it can show errors: choosing the
    interface may fail with a ``DiscoveryError`` whose message is one plain
    sentence for the lobby."""

    def make(on_event: OnEvent) -> Node:
        node = Node(
            interfaces=choose_interfaces(options.interface),
            port=options.port,
            on_event=on_event,
            absent_after_s=options.absent_after,
            use_mdns=options.use_mdns,
        )
        for host, port in options.peers:
            node.add_endpoint(host, port)
        return node

    return make


def loopback_only(node: Node) -> bool:
    """True when no LAN interface was found and the node listens on loopback
    only: then only meetings on this very laptop can be found."""
    return node.interfaces == [LOOPBACK]


class _Discovering(Protocol):
    def peers(self) -> list[Any]: ...


def nearby_meetings(node: Node) -> list[tuple[int, int]]:
    """(nameplate, laptops advertising it) for the meetings discovery sees,
    by nameplate only: nothing else about a meeting is on the LAN."""
    # Node keeps its Discovery private; reading it here (and nowhere else in
    # the UI) keeps the lobby to what mDNS already told every laptop.
    discovery: _Discovering | None = getattr(node, "_discovery", None)
    if discovery is None:
        return []
    counts: dict[int, int] = {}
    for peer in discovery.peers():
        if peer.nameplate is not None:
            counts[peer.nameplate] = counts.get(peer.nameplate, 0) + 1
    return sorted(counts.items())


def discovery_running(node: Node) -> bool:
    return getattr(node, "_discovery", None) is not None
