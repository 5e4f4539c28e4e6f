"""The record says why names are missing without claiming anyone chose it:
the setting comes with the meeting's process or its settings (issue 14.10)."""

from __future__ import annotations

from fakenet import FakeNetwork

from relsec_p2p.core.record import render_markdown
from relsec_p2p.templates import load_template

AGENDA = [{"id": "a", "title": "A", "prompt": "Say it", "mode": "named", "kind": "text"}]


def test_unattributed_names_are_put_down_to_the_settings_not_to_a_choice() -> None:
    net = FakeNetwork.meeting(2, agenda=AGENDA, settings={"attribute_named": False})
    state = net[0].state
    text = render_markdown(state, safety_number="1", template=None)
    line = next(line for line in text.splitlines() if line.startswith("- Names:"))
    assert "chose" not in line
    assert line == (
        "- Names: not recorded (its settings keep who said what out of the record; "
        "the setting is attribute_named)."
    )
    process = load_template("relational-security")
    text = render_markdown(state, safety_number="1", template=process)
    assert "the meeting's process keeps who said what out of the record" in text
