"""The test LAN lives in the package (``relsec_p2p.bench.lan``) so that
``relsec bench soak`` builds the same one; this module keeps the netns
tests' ``from lan import ...`` working."""

from relsec_p2p.bench.lan import INTERFACE, SUBNET, Lan, netns_available

__all__ = ["INTERFACE", "SUBNET", "Lan", "netns_available"]
