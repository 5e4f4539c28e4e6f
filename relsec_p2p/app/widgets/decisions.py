"""The decisions panel: every closed poll's result, its rule and the outcome
the facilitator recorded, kept in view for the rest of the meeting.

Rules of this file: drawn from the view's ``Decision``s only (app/view.py),
as a ``rich.text.Text`` built piece by piece (never markup), so proposal and
outcome texts show as the characters they are. Counts of an anonymous poll
appear only where the core lets them (``PollView.counts``).
"""

from __future__ import annotations

from rich.text import Text

from ...core.wording import OUTCOME_LABELS, SHORT_CHOICE_LABELS
from ..view import Decision, tally_line
from .panels import Panel

# User-facing words of this widget, in one place.
TITLE = "Decisions"
STEP = "step {number}"
RULE = "Rule: {rule}"
RECORDED = "Recorded: "
NOT_RECORDED = "No outcome recorded yet (the facilitator presses w)."
COUNTS_HIDDEN = "counts not shown: too few anonymous voters"
FINAL = "final"
NOT_FINAL = "not final yet"
ANONYMOUS = "anonymous"


def decision_text(decision: Decision, *, rule: bool = True, names: bool = True) -> Text:
    poll = decision.poll
    text = Text()
    text.append(f"{decision.label} ", style="bold")
    text.append(f"({STEP.format(number=decision.step + 1)}) ", style="dim")
    text.append(poll.proposal)
    text.append("\n  ")
    if poll.outcome is not None:
        text.append(OUTCOME_LABELS[poll.outcome].upper(), style="bold reverse")
        text.append(" ")
        text.append(tally_line(poll.counts) if poll.counts is not None else COUNTS_HIDDEN)
        text.append(f" ({FINAL if poll.final else NOT_FINAL})", style="italic")
    # The outcome in words next, before the reasons: the panel is short at
    # 80x24 and the decision itself must stay in view.
    text.append("\n  ")
    if poll.record:
        text.append(RECORDED, style="bold")
        text.append(poll.record)
    else:
        text.append(NOT_RECORDED, style="italic dim")
    for choice, reason, voter in poll.reasons:
        text.append("\n  ")
        text.append(f"{SHORT_CHOICE_LABELS[choice].capitalize()}: ", style="bold")
        text.append(reason)
        if names:
            text.append(f" ({voter or ANONYMOUS})", style="italic")
    if rule and poll.rule:  # last: the longest line, and the first a small screen cuts
        text.append("\n  ")
        text.append(RULE.format(rule=poll.rule), style="dim")
    return text


def decisions_text(
    decisions: tuple[Decision, ...], *, rule: bool = True, names: bool = True
) -> Text:
    text = Text()
    for i, decision in enumerate(decisions):
        if i:
            text.append("\n")
        text.append_text(decision_text(decision, rule=rule, names=names))
    return text


class DecisionsPanel(Panel):
    """The decisions made so far (hidden until there is one)."""

    DEFAULT_CSS = """
    DecisionsPanel {
        height: auto; max-height: 35%; padding: 0 1; overflow-y: auto;
        border-top: solid $success; border-title-align: left;
    }
    DecisionsPanel.-empty { display: none; }
    """

    def on_mount(self) -> None:
        self.border_title = TITLE

    def show(
        self, decisions: tuple[Decision, ...], *, rule: bool = True, names: bool = True
    ) -> None:
        """``rule=False, names=False`` for the room display: shorter, and it
        never puts a name beside what someone said."""
        self.set_class(not decisions, "-empty")
        self.put(decisions_text(decisions, rule=rule, names=names))
