"""End to end in a real terminal: two real ``relsec`` processes in tmux on
loopback. One starts a meeting; the other joins with the code typed at the
keyboard; a poll is opened, both vote, both screens show consensus."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from relsec_p2p.core.joincode import BadJoinCode, parse_join_code
from relsec_p2p.net.node import Node

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
CODE = re.compile(r"\b(\d\d-[a-z]+-[a-z]+-[a-z]+)\b")
WAY_STEP = 9  # "The way forward" is step 9 of the relational security template


class Terminal:
    """One tmux session on a private server, running one ``relsec``."""

    def __init__(self, server: str, name: str, width: int = 120, height: int = 40) -> None:
        self.server, self.name = server, name
        command = f"{sys.executable} -m relsec_p2p --interface 127.0.0.1"
        size = ("-x", str(width), "-y", str(height))
        self.tmux("new-session", "-d", "-s", name, *size, command)
        # Escape then a letter must stay two keys, not become alt+letter.
        self.tmux("set-option", "-s", "escape-time", "0")

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, check=True
        )
        return result.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-t", self.name, "-p")

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", self.name, key)
            if key == "Escape":
                # An Escape read together with the next letter is alt+letter
                # (Textual waits only ESCDELAY for more), which a loaded machine
                # makes likely. F9, bound nowhere, ends the Escape either way:
                # read together they are Escape then F9 (the parser reissues a
                # second ESC as a new sequence), never alt+anything.
                time.sleep(0.3)
                self.tmux("send-keys", "-t", self.name, "F9")
            time.sleep(0.05)

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        """The screen once it shows every one of ``texts`` at the same time."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(text in screen for text in texts):
                return screen
            if time.monotonic() > deadline:
                missing = [text for text in texts if text not in screen]
                raise AssertionError(f"{self.name} never showed {missing!r}; screen:\n{screen}")
            time.sleep(0.2)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    server = f"relsec-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield [Terminal(server, name) for name in ("ana", "bo", "cy")]
    finally:
        subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True, check=False)


def is_code(text: str) -> bool:
    """A whole code: a wrapped one cut after "mamm" is not (its words are checked)."""
    if not CODE.fullmatch(text):
        return False
    try:
        parse_join_code(text)
    except BadJoinCode:
        return False
    return True


def side_cell(line: str) -> str:
    """What a screen line holds in the side column, inside its panel's border."""
    cells = line.split("│")
    return cells[1] if line.startswith("│") and len(cells) > 2 else cells[0]


def read_code(terminal: Terminal, timeout: float = 30.0) -> str:
    """The join code from the side panel, where a long one may wrap."""
    deadline = time.monotonic() + timeout
    while True:
        lines = terminal.wait_for("Join code:").splitlines()
        start = next(i for i, line in enumerate(lines) if "Join code:" in line)
        parts = [side_cell(lines[start]).split("Join code:")[1].strip()]
        for line in lines[start + 1 :]:
            left = side_cell(line).strip()
            if not left or is_code("".join(parts)):
                break
            parts.append(left)
        if is_code("".join(parts)):
            return "".join(parts)
        assert time.monotonic() < deadline, f"no join code in {parts}"
        time.sleep(0.2)


def start_and_join(ana: Terminal, *others: Terminal) -> None:
    ana.wait_for("Your name here")
    ana.type("Ana")
    ana.keys("Tab", "Tab", "Tab", "Tab")  # name, code, join, process: title
    ana.type("Our funder question")
    ana.keys("Enter")
    code = read_code(ana)
    for other in others:
        other.wait_for("Your name here")
        other.type(other.name.title())
        other.keys("Tab")
        other.type(code)
        other.keys("Enter")
        # The facilitator is asked first, by name (SPEC §12.8), and says yes.
        ana.wait_for(f"Someone is joining as '{other.name.title()}'")
        ana.keys("y")
        other.wait_for("safety number")
    everyone = f"{len(others) + 1} member" + ("s" if others else "")
    for terminal in (ana, *others):
        terminal.wait_for(everyone)


def test_start_join_poll_and_consensus_in_two_real_terminals(terminals) -> None:  # type: ignore[no-untyped-def]
    ana, bo, _ = terminals
    start_and_join(ana, bo)
    ana.keys("Escape", *["n"] * WAY_STEP)
    ana.wait_for(f"Step {WAY_STEP} of 10: The way forward")
    bo.wait_for(f"Step {WAY_STEP} of 10: The way forward")
    # Each key after the footer shows it applies, as a person would: under
    # load a key typed at once can reach the screen before the focus moves.
    ana.keys("c")
    ana.wait_for("New line")  # the footer while writing
    ana.type("Share the funder contact among three of us")
    ana.keys("Enter")
    ana.wait_for("A proposal is in: press o")
    # Apart: an Escape and a letter sent in one burst read as alt+letter.
    ana.keys("Escape")
    ana.wait_for("o Open poll")
    ana.keys("o")
    # The process offers an anonymous poll first; two people cannot run an
    # anonymous round (three at least), so Ana opens it by name.
    ana.wait_for("How do people vote on it?")
    ana.keys("2")
    ana.wait_for("Poll open")
    bo.wait_for("Poll open")
    ana.keys("v", "1")
    bo.keys("Escape")
    bo.wait_for("v Vote")
    bo.keys("v", "1")
    ana.wait_for("2 of 2 voted")
    ana.keys("x")
    assert "Result: CONSENSUS" in ana.wait_for("CONSENSUS")
    assert "Result: CONSENSUS" in bo.wait_for("CONSENSUS")


def test_anonymous_contribution_crosses_unattributed(terminals) -> None:  # type: ignore[no-untyped-def]
    if not callable(getattr(Node, "submit_anonymous", None)):
        pytest.skip("anonymous rounds are not in Node yet (Node.submit_anonymous)")
    ana, bo, cy = terminals  # anonymous rounds need at least three members
    start_and_join(ana, bo, cy)
    ana.keys("Escape", "n")  # step 1, threats: named or anonymous
    bo.wait_for("Step 1 of 10")
    bo.keys("Escape", "c")
    bo.wait_for("New line")  # writing: the footer says so
    bo.keys("C-t")
    bo.wait_for("anonymous")
    bo.type("I am afraid to say this aloud")
    bo.keys("Enter")
    bo.wait_for("Which kind is it?")  # the step's tags: internal or external
    bo.keys("1")
    # Below the threshold (3) every screen holds it, the author's included.
    for terminal in (ana, bo, cy):
        screen = terminal.wait_for("1 anonymous answer is in", timeout=60)
        assert "I am afraid to say this aloud" not in screen
    for text in ("Nobody asked us", "The budget is a secret"):
        bo.type(text)
        bo.keys("Enter")
        bo.wait_for("Which kind is it?")
        bo.keys("1")
    for terminal in (ana, bo, cy):
        screen = terminal.wait_for("The budget is a secret", timeout=90)
        assert "I am afraid to say this aloud" in screen
        assert "Bo: I am afraid" not in screen
        assert "3 members, 3 slots)" in screen  # the rounds' count


def test_compose_new_line_key_reaches_the_app_through_tmux(terminals) -> None:  # type: ignore[no-untyped-def]
    """ctrl+j (the key the compose box names) adds a line in a real terminal
    under tmux, in the order typed; Enter sends the whole answer once."""
    ana, _, _ = terminals
    start_and_join(ana)
    ana.keys("Escape", "n")
    ana.wait_for("Step 1 of 10")
    ana.keys("c")
    ana.wait_for("New line")
    ana.type("first line")
    ana.keys("C-j")
    ana.type("second line")
    screen = ana.wait_for("second line")
    lines = screen.splitlines()
    at = next(i for i, line in enumerate(lines) if line.rstrip().endswith("named    first line"))
    assert lines[at + 1].split("│")[-1].strip().endswith("second line")  # two lines, not sent
    ana.keys("Enter")
    ana.wait_for("Which kind is it?")  # the threats step tags each answer
    ana.keys("1")
    screen = ana.wait_for("Ana [internal]: first line second line")
    assert screen.count("Ana [internal]: ") == 1  # one answer, sent once
