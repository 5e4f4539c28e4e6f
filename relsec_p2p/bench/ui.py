"""``relsec bench ui``: how the Textual app keeps up with a busy meeting.

- ``empty_render_ms``: the baseline, taken in the same run: open the meeting
  screen of a meeting with no contributions and draw it.
- ``render_1000_ms``: another member's 1 000 signed contributions arrive in
  one sync batch; the time until the node has folded them and the screen
  shows them (apply, build the view, wrap, draw).
- ``keystroke_p95_ms``: with those 1 000 on screen, a key typed into the
  compose box until the screen is updated (Pilot), 95th percentile of 200.
All run headless (Textual's Pilot) at 120x40; medians of several runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from textual import events
from textual.pilot import Pilot

from ..app.app import RelsecApp
from ..app.screens.meeting import MeetingScreen
from ..app.widgets.compose import ComposeBox
from ..app.widgets.contributions import ContributionLog
from ..core.codec import pack
from ..core.events import MeetingChanged
from ..core.identity import Identity
from ..core.session import Session
from ..net.node import Node
from .common import median, percentile

AGENDA = [
    {
        "id": "threats",
        "title": "Threats",
        "prompt": "What threatens the group or the people in it right now?",
        "mode": "both",
        "kind": "text",
    }
]
SIZE = (120, 40)
RUNS = 5
KEYSTROKES = 200


def _entries_frame(mid: bytes, envelopes: list[bytes]) -> bytes:
    return pack({"t": "entries", "mid": mid, "e": envelopes})


def _meeting(count: int, on_event: Any) -> tuple[Node, bytes, bytes]:
    """A node in a two-member meeting, and a sync frame holding ``count``
    contributions from the other member (signed before any timing)."""
    node = Node(interfaces=["127.0.0.1"], use_mdns=False, on_event=on_event)
    node.start_meeting(title="Bench", name="Ana", agenda=AGENDA)
    other = Identity.generate()
    node.perform(lambda s: s.add_member(other.key, other.ring_key, "Bo"))
    node.perform(lambda s: s.open_step(0))
    assert node.session is not None  # noqa: S101 -- just created
    session = node.session
    theirs = Session.join(other, session.mid, session.creator, node.clock)
    theirs.receive(
        node.identity.key, _entries_frame(session.mid, [e.envelope for e in session.log.entries()])
    )
    for i in range(count):
        theirs.contribute(0, f"Contribution number {i}: a sentence of ordinary length here.")
    envelopes = [entry.envelope for entry in theirs.log.feed(other.key)]
    return node, other.key, _entries_frame(session.mid, envelopes)


async def _drawn(pilot: Pilot[Any]) -> None:
    """What ``Pilot.pause`` does without its idle sleep (which would add 20 ms
    to every sample): wait until the screen's widgets have handled every
    queued message, then draw the screen."""
    await pilot._wait_for_screen()
    pilot.app.screen._on_timer_update()


async def _one_run(count: int) -> dict[str, Any]:
    built: dict[str, Any] = {}

    def factory(on_event: Any) -> Node:
        built["on_event"] = on_event
        built["node"], built["other"], built["frame"] = _meeting(count, on_event)
        node: Node = built["node"]
        return node

    app = RelsecApp(factory)
    result: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        node, other, frame = built["node"], built["other"], built["frame"]
        started = time.perf_counter()
        app.enter_meeting()
        await _drawn(pilot)
        result["empty_ms"] = (time.perf_counter() - started) * 1000
        log = app.screen.query_one(ContributionLog)
        assert isinstance(app.screen, MeetingScreen)  # noqa: S101
        assert node.session is not None  # noqa: S101
        started = time.perf_counter()
        node.session.receive(other, frame)
        built["on_event"](MeetingChanged())  # what the node says once a frame is in
        await _drawn(pilot)
        result["render_ms"] = (time.perf_counter() - started) * 1000
        if log.line_count < count:
            raise RuntimeError(f"only {log.line_count} lines on screen after {count} arrived")
        samples = []
        await pilot.press("c")
        field = app.screen.query_one(ComposeBox).input
        for i in range(KEYSTROKES):
            key = "abcdefghij"[i % 10]
            before = field.value
            started = time.perf_counter()
            # As the terminal driver delivers a key (Pilot.press adds two idle
            # waits of at least 20 ms each, which are not the app's doing).
            app.post_message(events.Key(key, key))
            while field.value == before:
                await asyncio.sleep(0)
            await _drawn(pilot)
            samples.append((time.perf_counter() - started) * 1000)
        result["keys"] = samples
        app.exit()
    return result


async def _run() -> dict[str, Any]:
    runs = [await _one_run(1000) for _ in range(RUNS)]
    keys = [sample for run in runs for sample in run["keys"]]
    empty = median([run["empty_ms"] for run in runs])
    render = median([run["render_ms"] for run in runs])
    return {
        "empty_render_ms": round(empty, 2),
        "render_1000_ms": round(render, 2),
        "render_1000_over_empty": round(render / empty, 2),
        "keystroke_p50_ms": round(percentile(keys, 50), 2),
        "keystroke_p95_ms": round(percentile(keys, 95), 2),
        "runs": RUNS,
        "size": f"{SIZE[0]}x{SIZE[1]}",
    }


def run() -> dict[str, Any]:
    return asyncio.run(_run())
