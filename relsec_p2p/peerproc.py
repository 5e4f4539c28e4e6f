"""Drive real ``relsec peer`` processes: for tests, benchmarks and the demo.

Each ``PeerProcess`` is a separate OS process speaking JSON lines; a reader
thread collects its events. ``prefix`` runs it inside something else (for
example ``ip netns exec H1``), so the same driver serves loopback and
network-namespace runs.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

SAMPLE_AGENDA: list[dict[str, Any]] = [
    {
        "id": "threats",
        "title": "Threats",
        "prompt": "What threatens us?",
        "mode": "both",
        "kind": "text",
    },
    {
        "id": "options",
        "title": "Options",
        "prompt": "What could we do?",
        "mode": "named",
        "kind": "text",
        "links": ["threats"],
    },
    {
        "id": "way",
        "title": "Way forward",
        "prompt": "What do we propose?",
        "mode": "named",
        "kind": "proposal",
    },
]


class PeerProcess:
    def __init__(
        self,
        *args: str,
        prefix: Sequence[str] = (),
        interface: str | None = "127.0.0.1",
        env: dict[str, str] | None = None,
        ready_timeout: float = 60,  # ten interpreters at once on a busy machine: 23 s seen
    ) -> None:
        chosen = [] if interface is None else ["--interface", interface]
        command = [*prefix, sys.executable, "-m", "relsec_p2p", "peer", *chosen, *args]
        self.proc = subprocess.Popen(  # noqa: S603 -- our own program, fixed arguments
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env={**os.environ, **(env or {})},
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.answers: dict[int, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.stderr_lines: list[str] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        try:
            ready = self.wait_event(lambda e: e.get("event") == "ready", timeout=ready_timeout)
        except TimeoutError:
            self.proc.kill()  # never left running behind a failed start
            self.proc.wait()
            raise
        self.port: int = ready["port"]
        self.listening: list[tuple[str, int]] = [(h, p) for h, p in ready["listening"]]
        self.key: str = ready["key"]

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cond:
                self.history.append(message)
                if "id" in message:
                    self.answers[message["id"]] = message
                self._cond.notify_all()

    def _read_err(self) -> None:
        for line in self.proc.stderr or ():
            self.stderr_lines.append(line)

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for message in self.history[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.history)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(
                        f"no matching event; stderr tail: {''.join(self.stderr_lines[-20:])}"
                    )
                self._cond.wait(remaining)

    def forget_history(self) -> None:
        """Drop the events seen so far (long runs, exact waits)."""
        with self._cond:
            self.history.clear()

    def cmd(self, timeout: float = 20, **command: Any) -> dict[str, Any]:
        ident = next(self._ids)
        command["id"] = ident
        self._write(command)
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self.answers:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(
                        f"no answer to {command['cmd']}; stderr: {''.join(self.stderr_lines[-20:])}"
                    )
                self._cond.wait(remaining)
            return self.answers.pop(ident)

    def _write(self, command: dict[str, Any]) -> None:
        if self.proc.stdin is None:
            raise RuntimeError("peer process has no stdin")
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def ok(self, **command: Any) -> dict[str, Any]:
        """Run a command that must succeed."""
        answer = self.cmd(**command)
        if answer["event"] == "error":
            raise RuntimeError(f"{command.get('cmd')} failed: {answer}")
        return answer

    def state(self) -> dict[str, Any]:
        return self.cmd(cmd="state")

    def wait_state(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"state never matched; last: {json.dumps(state)[:2000]}")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._write({"cmd": "quit"})
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.proc.kill()
                self.proc.wait(timeout=5)


def wait_all_equal(peers: Sequence[PeerProcess], timeout: float = 20) -> list[dict[str, Any]]:
    """Wait until every peer reports the same state digest; return the states."""
    deadline = time.monotonic() + timeout
    while True:
        states = [p.state() for p in peers]
        digests = {s.get("digest") for s in states}
        if len(digests) == 1 and None not in digests:
            return states
        if time.monotonic() > deadline:
            summary = [
                (s.get("log_entries"), s.get("epoch"), (s.get("digest") or "")[:8]) for s in states
            ]
            raise TimeoutError(f"digests never converged: {summary}")
        time.sleep(0.2)
