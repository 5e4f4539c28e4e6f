"""Shared pytest setup. Having this file in ``tests/`` puts ``tests/`` on
``sys.path``, so test modules can ``import fakenet`` (the in-memory network)."""
