"""The sans-IO core: bytes and events in, bytes and events out.

Nothing here imports asyncio, socket, zeroconf or textual (checked by
tests/unit/test_layering.py); the network layer drives a ``Session``.
"""
