"""``relsec bench ui``: how the Textual app keeps up with a busy meeting.

- ``empty_render_ms``: the baseline, taken in the same run: open the meeting
  screen of a meeting with no contributions and draw it.
- ``render_1000_ms``: another member's 1 000 signed contributions arrive in
  one sync batch; the time until the node has folded them and the screen
  shows them (apply, build the view, wrap, draw).
- ``keystroke_p95_ms``: with those 1 000 on screen, a key typed into the
  compose box until the screen is updated (Pilot), 95th percentile of 200.
- ``render_grid_ms``: three members' ratings of 20 threats on two scales
  (120 named ``rating.set`` entries) arrive in one sync batch; the time
  until the screen shows the likelihood x impact grid with all 20 placed
  (fold, the record's aggregation, the view, the picture, the draw). Named
  ratings, so no shuffle round is timed: the grid's work is the same.
All run headless (Textual's Pilot) at 120x40; medians of several runs.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from textual import events
from textual.pilot import Pilot

from ..app.app import RelsecApp
from ..app.screens.meeting import MeetingScreen
from ..app.widgets.compose import ComposeBox
from ..app.widgets.contributions import ContributionLog
from ..app.widgets.grid import GridPanel
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


GRID_THREATS = 20
GRID_RATERS = 3
GRID_AGENDA: list[dict[str, Any]] = [
    AGENDA[0],
    {"id": "likelihood", "title": "How likely", "prompt": "How likely is each threat?",
     "mode": "named", "kind": "rating", "links": ["threats"],
     "scale": ["very unlikely", "unlikely", "possible", "likely", "almost certain"]},
    {"id": "severity", "title": "How much would it hurt", "prompt": "How much would it hurt?",
     "mode": "named", "kind": "rating", "links": ["threats"],
     "scale": ["minor", "moderate", "serious", "severe", "devastating"]},
]  # fmt: skip


def _grid_meeting(on_event: Any) -> tuple[Node, list[tuple[bytes, bytes]]]:
    """A node whose meeting has 20 threats and both rating steps opened, and
    one sync frame per other member holding that member's 40 ratings."""
    node = Node(interfaces=["127.0.0.1"], use_mdns=False, on_event=on_event)
    node.start_meeting(title="Bench", name="Ana", agenda=GRID_AGENDA)
    others = [Identity.generate() for _ in range(GRID_RATERS)]
    for n, other in enumerate(others):
        node.perform(partial(Session.add_member, key=other.key, ring=other.ring_key, name=f"M{n}"))
    node.perform(lambda s: s.open_step(0))
    for i in range(GRID_THREATS):
        node.perform(partial(Session.contribute, step=0, text=f"Threat number {i}, in brief."))
    node.perform(lambda s: s.open_step(1))
    node.perform(lambda s: s.open_step(2))
    assert node.session is not None  # noqa: S101 -- just created
    session = node.session
    everything = _entries_frame(session.mid, [e.envelope for e in session.log.entries()])
    threats = [c.id for c in session.state.contributions]
    frames = []
    for n, other in enumerate(others):
        theirs = Session.join(other, session.mid, session.creator, node.clock)
        theirs.receive(node.identity.key, everything)
        for t, ref in enumerate(threats):
            theirs.rate(1, (t + n) % 5, ref=ref)
            theirs.rate(2, (t * 3 + n) % 5, ref=ref)
        envelopes = [entry.envelope for entry in theirs.log.feed(other.key)]
        frames.append((other.key, _entries_frame(session.mid, envelopes)))
    return node, frames


async def _grid_run() -> float:
    built: dict[str, Any] = {}

    def factory(on_event: Any) -> Node:
        built["on_event"] = on_event
        built["node"], built["frames"] = _grid_meeting(on_event)
        node: Node = built["node"]
        return node

    app = RelsecApp(factory)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        node, frames = built["node"], built["frames"]
        app.enter_meeting()
        await pilot.pause()
        assert node.session is not None  # noqa: S101
        started = time.perf_counter()
        for author, frame in frames:
            node.session.receive(author, frame)
        built["on_event"](MeetingChanged())
        await _drawn(pilot)
        elapsed = (time.perf_counter() - started) * 1000
        shown = app.screen.query_one(GridPanel).shown_text
        if f"{GRID_THREATS} placed" not in shown:
            raise RuntimeError(f"the grid does not show {GRID_THREATS} threats placed")
        app.exit()
    return elapsed


async def _run() -> dict[str, Any]:
    grid = median([await _grid_run() for _ in range(RUNS)])
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
        "render_grid_ms": round(grid, 2),
        "grid_threats": GRID_THREATS,
        "runs": RUNS,
        "size": f"{SIZE[0]}x{SIZE[1]}",
    }


def run() -> dict[str, Any]:
    return asyncio.run(_run())
