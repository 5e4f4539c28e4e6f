"""Where members listen: the ``where`` sync message (SPEC §12.13).

Rules of this file: sans-IO; a place is an IPv4 address in dotted form and a
TCP port, checked and bounded like every remote input (at most
``MAX_PLACED_KEYS`` keys, ``MAX_PLACES`` places each); a malformed message
is ``MalformedFrame``. Places are hints, never trusted: the link handshake
decides who answers at one. They replace mDNS for finding the other
members, so that only one laptop is ever announced on the LAN (§12.1).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Final

from .codec import pack
from .errors import MalformedFrame
from .identity import KEY_BYTES
from .state import MAX_MEMBERS

MAX_PLACES: Final = 8  # addresses of one laptop (as an mDNS record's, SPEC §12.1)
MAX_PLACED_KEYS: Final = MAX_MEMBERS
WHERE: Final = "where"

Place = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PlacesHeard:
    """A peer said where members listen (``key`` -> places): hints to dial."""

    peer: bytes
    places: dict[bytes, tuple[Place, ...]]

    def __str__(self) -> str:
        return f"places of {len(self.places)} member(s) from {self.peer[:4].hex()}"


def _is_place(value: Any) -> bool:
    if not (isinstance(value, list) and len(value) == 2):
        return False
    host, port = value
    if not (isinstance(host, str) and type(port) is int and 0 < port < 65536):
        return False
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return str(address) == host and not (address.is_multicast or address.is_unspecified)


def where_message(mid: bytes, places: dict[bytes, list[Place]]) -> bytes:
    """``{"t": "where", "mid", "p": [[key, [[host, port], ...]], ...]}``,
    keys sorted, each with at most ``MAX_PLACES`` places."""
    rows = [
        [key, [[host, port] for host, port in spots[:MAX_PLACES]]]
        for key, spots in sorted(places.items())[:MAX_PLACED_KEYS]
        if spots
    ]
    return pack({"t": WHERE, "mid": mid, "p": rows})


def read_where(peer: bytes, message: dict[str, Any]) -> PlacesHeard:
    """Check a decoded ``where`` message (its ``mid`` already checked)."""
    rows = message.get("p")
    if set(message) != {"t", "mid", "p"} or not isinstance(rows, list):
        raise MalformedFrame("where has p: [[key, places], ...]")
    if len(rows) > MAX_PLACED_KEYS:
        raise MalformedFrame("where names too many members")
    places: dict[bytes, tuple[Place, ...]] = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 2):
            raise MalformedFrame("a where row is [key, places]")
        key, spots = row
        if not (isinstance(key, bytes) and len(key) == KEY_BYTES) or key in places:
            raise MalformedFrame("a where row names a 32-byte key once")
        if not (isinstance(spots, list) and 0 < len(spots) <= MAX_PLACES):
            raise MalformedFrame("a where row has 1 to 8 places")
        if not all(_is_place(spot) for spot in spots):
            raise MalformedFrame("a place is [IPv4 address, port]")
        places[key] = tuple((str(host), int(port)) for host, port in spots)
    return PlacesHeard(peer, places)
