"""The UI's side of the node: how it is made from the command line's options.

Rules of this file: the UI never touches sockets or crypto; it calls a
``Node`` (synchronous actions that only sign, fold and queue frames) and
learns about changes through the node's event callback. Anything that waits
on the network (starting, joining) runs in a worker, never in a handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..net.discovery import LOOPBACK, choose_interfaces
from ..net.node import Node, NodeEvent, following

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
            follow=following(options.interface),
        )
        for host, port in options.peers:
            node.add_endpoint(host, port)
        return node

    return make


def loopback_only(node: Node) -> bool:
    """True when no LAN interface was found and the node listens on loopback
    only: then only meetings on this very laptop can be found."""
    return node.interfaces == [LOOPBACK]
