"""relsec: peer-to-peer meetings for one room on a shared LAN."""

__version__ = "0.1.0"
