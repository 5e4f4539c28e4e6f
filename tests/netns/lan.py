"""The test LAN lives in the package (``relsec_p2p.bench.lan``) so that
``relsec bench soak`` builds the same one; this module keeps the netns
tests' ``from lan import ...`` working."""

from relsec_p2p.bench.lan import (
    INTERFACE,
    SECOND_INTERFACE,
    SECOND_SUBNET,
    SUBNET,
    Lan,
    netns_available,
)

__all__ = [
    "INTERFACE",
    "SECOND_INTERFACE",
    "SECOND_SUBNET",
    "SUBNET",
    "Lan",
    "netns_available",
]
