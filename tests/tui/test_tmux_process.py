"""The whole relational security process, played in tmux by three real
``relsec`` apps on loopback (issue 14.11), at 80x24 and at 120x40.

Ana starts the meeting and admits Bo and Cy; they name threats (one
anonymously), attach an impact to a threat, rate every threat on both
scales on the one-screen rating flow, list an option, propose a way forward,
vote on it in an anonymous poll (a concern with its reason), and Ana closes
the poll, records the outcome and opens the last step. Every laptop's screen
must show: the items' numbers ("1.1", "↳ about 1.1"), the likelihood x
impact grid with each threat in the cell its middle answers put it in, the
tally and the reason, the decision and its recorded outcome after the next
step opens, and one safety number.

Rules of this file: assert on content (numbers, grid cells, decision text),
never on layout, footer or status-line wording, which change under other
hands; the keys pressed live in the small helpers below, as the bindings
are in app/screens now. Every wait polls the screen with a generous timeout
(the machine is shared and loaded); what is asserted is never loosened.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from test_tmux import Terminal, start_and_join

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

TIMEOUT = 120.0  # seconds for one thing to show on one screen, under load
STEPS = 10
SAFETY = re.compile(r"safety number:?\s+((?:\d{5}\s?){4})")
# The scales of the template, in order; the grid's rows run from the
# likeliest at the top, its columns from the mildest at the left.
LIKELIHOOD = ("very unlikely", "unlikely", "possible", "likely", "almost certain")
SEVERITY = ("minor", "moderate", "serious", "severe", "devastating")
SHADES = " ░▒▓"

# What is said, and where each item must end up.
THREAT_ANA = "The funder wants our member list"
THREAT_BO = "Two people decide everything in side chats"
THREAT_CY = "I am afraid to say this aloud"
IMPACT = "Members stop coming to meetings"
OPTION = "Share the funder contact among three of us"
PROPOSAL = "Take up [5.1]: three of us hold the funder contact"
CONCERN = "Who holds it when one of us leaves?"
OUTCOME = "Three of us hold it from Monday"
# Ratings per person, for threats 1.1, 1.2 and 1.3 (the keys are 1-based).
LIKELY_KEYS = {"ana": "432", "bo": "532", "cy": "422"}  # middles: likely, possible, unlikely
SEVERE_KEYS = {"ana": "432", "bo": "442", "cy": "432"}  # middles: severe, serious, moderate
# (row, column) of each threat in the grid, from the middle answers above.
PLACES = {
    "1.1": ("likely", "severe"),
    "1.2": ("possible", "serious"),
    "1.3": ("unlikely", "moderate"),
}


@pytest.fixture(params=[(80, 24), (120, 40)], ids=["80x24", "120x40"])
def room(request: pytest.FixtureRequest) -> Iterator[list[Terminal]]:
    width, height = request.param
    server = f"relsec-process-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield [Terminal(server, name, width, height) for name in ("ana", "bo", "cy")]
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True, check=False)


# -- the keys, as the bindings are now (app/screens/meeting.py, rating.py, dialogs) --


def option_number(terminal: Terminal, title: str, label: str) -> str:
    """The number key of the option reading ``label`` in the open dialog titled ``title``."""
    pattern = re.compile(rf"(\d)  {re.escape(label)}")
    found = pattern.search(terminal.wait_for(title, timeout=TIMEOUT))
    assert found, f"{terminal.name}: no option {label!r} under {title!r}"
    return found.group(1)


def pick(terminal: Terminal, title: str, label: str) -> None:
    terminal.keys(option_number(terminal, title, label))


def into_the_box(terminal: Terminal) -> None:
    """c, and wait until the compose box has the focus. Textual moves the
    focus a moment after the key, so letters typed at once would reach the
    meeting's keys; a probe "_" (bound to nothing, in no text here) shows in
    the box once it is there, and is then taken out again."""
    terminal.keys("Escape", "c")
    baseline = terminal.screen().count("_")
    deadline = time.monotonic() + TIMEOUT
    while True:
        terminal.type("_")
        if wait_until(lambda: terminal.screen().count("_") > baseline, 5.0):
            break
        assert time.monotonic() < deadline, f"{terminal.name}: the box never took the focus"
    time.sleep(0.5)  # a probe still on its way shows by now
    terminal.keys(*["BSpace"] * (terminal.screen().count("_") - baseline))
    assert wait_until(lambda: terminal.screen().count("_") == baseline, TIMEOUT)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def typed(terminal: Terminal, text: str) -> None:
    """Type ``text`` into the focused box and send it once the box shows it
    (its end: a long text scrolls in a narrow box)."""
    terminal.type(text)
    terminal.wait_for(text[-12:], timeout=TIMEOUT)
    terminal.keys("Enter")


def write(terminal: Terminal, text: str, *, about: str = "", tag: str = "") -> None:
    """Write an answer by name; ``about`` is the label it is attached to."""
    into_the_box(terminal)
    typed(terminal, text)
    if about:
        pick(terminal, "What is it about?", f"{about}  ")
    if tag:
        pick(terminal, "Which kind is it?", tag)


def write_anonymously(terminal: Terminal, text: str, *, tag: str = "") -> None:
    into_the_box(terminal)
    terminal.keys("C-t")
    terminal.wait_for("Write anonymously", timeout=TIMEOUT)
    typed(terminal, text)
    if tag:
        pick(terminal, "Which kind is it?", tag)


def open_step(ana: Terminal, room: list[Terminal], number: int) -> list[str]:
    """Ana opens the next step; every screen shows it."""
    ana.keys("Escape", "n")
    heading = f"Step {number} of {STEPS}"
    return [terminal.wait_for(heading, timeout=TIMEOUT) for terminal in room]


def rate(terminal: Terminal, prompt: str, keys: str) -> str:
    """Open the rating screen, rate every item in order, go back to the meeting."""
    count = len(keys)
    terminal.keys("Escape", "r")
    terminal.wait_for(prompt, f"You rated 0 of {count}", timeout=TIMEOUT)
    terminal.keys(*keys)
    # ✓ and the count follow the log: the ratings have gone out.
    screen = terminal.wait_for(f"You rated {count} of {count}", timeout=TIMEOUT)
    terminal.keys("Escape")
    return screen


def open_poll_anonymously(ana: Terminal) -> None:
    ana.keys("Escape", "o")
    pick(ana, "How do people vote on it?", "anonymously")


def vote(terminal: Terminal, choice: str, reason: str = "") -> None:
    """``choice`` as the vote dialog words it ("agree", "agree with concerns")."""
    terminal.keys("Escape", "v")
    screen = terminal.wait_for("Vote on:", timeout=TIMEOUT)
    found = re.search(rf"(\d)  {re.escape(choice)}(?! with)", screen)
    assert found, f"{terminal.name}: no vote {choice!r} offered:\n{screen}"
    terminal.keys(found.group(1))
    if choice == "agree with concerns":
        terminal.wait_for("What is your concern?", timeout=TIMEOUT)
        typed(terminal, reason)


def close_poll(ana: Terminal) -> None:
    ana.keys("Escape", "x")


def record_outcome(ana: Terminal, text: str) -> None:
    ana.keys("Escape", "w")
    ana.wait_for("What did the group decide?", timeout=TIMEOUT)
    typed(ana, text)


# -- reading the screen ---------------------------------------------------------------


def everyone_sees(room: list[Terminal], *texts: str) -> list[str]:
    return [terminal.wait_for(*texts, timeout=TIMEOUT) for terminal in room]


def one_safety_number(screens: list[str]) -> str:
    numbers = {" ".join(m.group(1).split()) for s in screens for m in SAFETY.finditer(s)}
    assert len(numbers) == 1, f"the screens show safety numbers {numbers}"
    (number,) = numbers
    return number


def grid_cells(screen: str) -> dict[tuple[str, str], str]:
    """The grid on ``screen`` as {(likelihood, severity): labels in the cell}.

    Found by its column header (the line naming the first severities); the
    five lines below it are the rows, likeliest first. A cell's text is what
    stands between its borders without the shading."""
    lines = screen.splitlines()
    header_at = next((i for i, line in enumerate(lines) if "minor" in line and "│" in line), None)
    assert header_at is not None, f"no grid on the screen:\n{screen}"
    header = lines[header_at]
    start = header.rindex("│", 0, header.index("minor"))  # the labels' right border
    heads = [cell.strip() for cell in header[start:].split("│")[1:6]]
    for head, severity in zip(heads, SEVERITY, strict=True):
        assert severity.startswith(head.rstrip("…")), f"column {head!r} is not {severity!r}"
    cells: dict[tuple[str, str], str] = {}
    rows = lines[header_at + 1 : header_at + 1 + len(LIKELIHOOD)]
    for line, likelihood in zip(rows, reversed(LIKELIHOOD), strict=True):
        label = line[:start].rsplit("│", 1)[-1].strip(" █▊▎")
        assert likelihood.startswith(label.rstrip("…")) and label, (
            f"row {label!r} is not {likelihood!r}:\n{screen}"
        )
        parts = line[start:].split("│")[1:6]
        for severity, part in zip(SEVERITY, parts, strict=True):
            cells[likelihood, severity] = part.strip(SHADES)
    return cells


def assert_grid(screen: str, places: dict[str, tuple[str, str]]) -> None:
    """Each label of ``places`` alone in its cell, every other cell empty."""
    expected = {(row, column): label for label, (row, column) in places.items()}
    cells = grid_cells(screen)
    for place, shown in cells.items():
        assert shown == expected.get(place, ""), f"cell {place} shows {shown!r}:\n{screen}"


# -- the process ------------------------------------------------------------------------


@pytest.mark.xfail(
    reason="known failure after the chrome merge: bo's first answer stays in the "
    "multi-line compose box after Enter in tmux (closing note, session 3); fix first",
    strict=False,
)
def test_the_relational_security_process_on_three_screens(room: list[Terminal]) -> None:
    ana, bo, cy = room
    start_and_join(ana, bo, cy)
    one_safety_number(everyone_sees(room, "3 members"))

    # 1. Threats: two by name with their tags, one anonymous, held below the threshold.
    open_step(ana, room, 1)
    write(ana, THREAT_ANA, tag="external")
    write(bo, THREAT_BO, tag="internal")
    everyone_sees(room, "1.1 Ana [external]:", "1.2 Bo [internal]:")
    write_anonymously(cy, THREAT_CY, tag="internal")
    for screen in everyone_sees(room, "1 anonymous answer is in"):
        assert THREAT_CY[:12] not in screen

    # 2. Impacts: closing step 1 releases the anonymous threat, numbered and
    # without a name; an impact attached to 1.1 says so.
    open_step(ana, room, 2)
    for screen in everyone_sees(room, f"1.3 [internal]: {THREAT_CY[:12]}"):
        line = next(line for line in screen.splitlines() if THREAT_CY[:12] in line)
        item = line[line.index("1.3") :]  # the side panel may list Cy on the same row
        assert item.startswith(f"1.3 [internal]: {THREAT_CY[:12]}"), item
    write(bo, IMPACT, about="1.1")
    everyone_sees(room, "2.1 Bo ↳ about 1.1:")

    # 3 and 4. Everyone rates every threat on the one rating screen; the
    # spread shows once three have rated, and the grid places each threat.
    open_step(ana, room, 3)
    for terminal in room:
        rate(terminal, "how likely is it", LIKELY_KEYS[terminal.name])
    for screen in everyone_sees(room, "Likelihood and impact of each threat", "0 placed"):
        assert_grid(screen, {})  # one scale only: nothing placed yet
    open_step(ana, room, 4)
    for terminal in room:
        rate(terminal, "how much would it hurt", SEVERE_KEYS[terminal.name])
    grid_screens = everyone_sees(room, "Likelihood and impact of each threat", "3 placed")
    for screen in grid_screens:
        assert_grid(screen, PLACES)
    one_safety_number(grid_screens)
    print("\n80x24 grid step (Ana):\n" + grid_screens[0])

    # 5. Options, attached to the threat they answer; 6 to 8 pass by.
    open_step(ana, room, 5)
    write(cy, OPTION, about="1.1")
    everyone_sees(room, "5.1 Cy ↳ about 1.1:")
    for number in range(6, 10):
        open_step(ana, room, number)

    # 9. The way forward: a proposal, an anonymous poll, a concern with its reason.
    write(ana, PROPOSAL)
    everyone_sees(room, "Proposal by Ana")
    open_poll_anonymously(ana)
    everyone_sees(room, "Poll open")
    vote(ana, "agree")
    vote(bo, "agree with concerns", CONCERN)
    vote(cy, "agree")
    everyone_sees(room, "agree 2 · concerns 1 · stand aside 0", f"Concerns: {CONCERN}")
    close_poll(ana)
    everyone_sees(room, "Result: CONSENSUS")
    record_outcome(ana, OUTCOME)
    way_screens = everyone_sees(room, "Result: CONSENSUS", f"Recorded outcome: {OUTCOME}")
    print("\nthe way forward with a decision (Ana):\n" + way_screens[0])

    # 10. The decision stays in view after the next step opens, on every screen.
    open_step(ana, room, 10)
    last = everyone_sees(
        room,
        "Step 10 of 10",
        "(step 9) Take up [5.1]",
        "CONSENSUS agree 2 · concerns 1 · stand aside 0",
        f"Concerns: {CONCERN}",
        f"Recorded: {OUTCOME}",
    )
    one_safety_number(last)
    print("\nthe next step with the decision kept (Ana):\n" + last[0])
