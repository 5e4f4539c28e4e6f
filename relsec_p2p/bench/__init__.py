"""Benchmarks behind ``relsec bench <suite>``: each suite measures a speed
against a baseline taken in the same run (the machines here are shared and
noisy), and returns one JSON-ready dict."""
