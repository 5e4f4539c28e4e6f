"""Snapshots of the grid, the rating screen, numbered items with attachments
and the decisions panel, at 80x24 and 120x40 (tests/tui/gridroom.py builds
the rooms; seeded keys and a fixed clock draw the same pixels every run)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fakeroom import Room, in_meeting
from gridroom import GridRoom, decided_room, polled_with_reasons, rated_room, threats_named
from textual.pilot import Pilot

from relsec_p2p.app.app import RelsecApp

Case = tuple[RelsecApp, Callable[[Pilot[int]], Awaitable[None]]]
SIZES = [(80, 24), (120, 40)]


def numbered_room() -> GridRoom:
    room = GridRoom()
    threats_named(room)
    return room


def meeting_then(build: Callable[[], Room], *keys: str) -> Callable[[], Case]:
    def case() -> Case:
        app = RelsecApp(build().factory)

        async def ready(pilot: Pilot[int]) -> None:
            await in_meeting(app, pilot)
            await pilot.press("escape", *keys)
            await pilot.pause(0.3)

        return app, ready

    return case


SCREENS: dict[str, Callable[[], Case]] = {
    "grid": meeting_then(rated_room),
    "rating": meeting_then(rated_room, "r"),
    "grid-display": meeting_then(rated_room, "d"),
    "numbered": meeting_then(numbered_room),
    "attach-choice": meeting_then(numbered_room, "c", *"It costs us members", "enter"),
    "decisions": meeting_then(decided_room),
    "decisions-display": meeting_then(decided_room, "d"),
    "vote-reasons": meeting_then(polled_with_reasons),
    "reason-dialog": meeting_then(polled_with_reasons, "v", "4", *"Not before we ask"),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", SCREENS)
def test_screen(snap_compare, screen: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, ready = SCREENS[screen]()
    assert snap_compare(app, terminal_size=size, run_before=ready)
