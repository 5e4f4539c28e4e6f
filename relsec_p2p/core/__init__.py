"""The sans-IO core: bytes and events in, bytes and events out.

Nothing here imports asyncio, socket, zeroconf or textual, nor any other
layer (docs/ARCHITECTURE.md §1; the import-linter contracts in
pyproject.toml and tests/unit/test_layering.py check it); the network layer
drives a ``Session``.
"""
