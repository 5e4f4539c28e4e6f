"""The meeting's record, as JSON data and as Markdown, from the folded state.

Rules of this file:
- Pure: a ``MeetingState`` (and optionally its ``Template``) in, a dict or a
  string out. Writing it to disk is the caller's job, and only on request.
- Never a key, an entry id, an address or the join code. Items are named by
  labels ("2.3": step 2, item 3) that every laptop derives the same way.
- Anonymous items are never attributed; named ones carry the author's name
  only if the meeting chose that (``settings.attribute_named``). Rating
  aggregates and anonymous vote tallies appear only once at least
  ``settings.anon_threshold`` answers exist (docs/ARCHITECTURE.md §4 "Small groups leak").
- Every text that came from a member is cleaned (core/text.py: control and
  bidi characters out, the same rule as the screens) and, in Markdown,
  escaped, so a contribution cannot forge the record's structure or hide a
  link.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from .safety import safety_number
from .state import MeetingState, Poll, Step
from .template import Template
from .text import safe_text
from .wording import CHOICE_LABELS, MODE_LABELS, OUTCOME_LABELS, SHORT_CHOICE_LABELS

FORMAT = "relsec-record/1"
_NAMED_ITEM = re.compile(r"\[(\d+)\.(\d+)\]")


# --- text ----------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")
_MD_LINE_START = re.compile(r"^(\s*)(\d*)([-+=.)])", re.MULTILINE)


def md(text: str, *, cell: bool = False) -> str:
    """Member text escaped for Markdown: shown literally, never as markup."""
    cleaned = safe_text(text, newlines=not cell).strip()
    # A line may not start a list or an underline: escape the punctuation
    # ("\-", "2\."); a backslash before a digit would show as itself.
    escaped = _MD_LINE_START.sub(r"\1\2\\\3", _MD_SPECIAL.sub(r"\\\1", cleaned))
    if cell:
        return escaped
    return escaped.replace("\n", "  \n    ")


# --- what the record is made of ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Item:
    """One answer in a step, named or anonymous, as the record shows it."""

    label: str | None
    step: int
    text: str
    tag: str | None
    ref: bytes | None
    by: str | None
    anonymous: bool
    round: int | None = None
    members: int | None = None
    slots: int | None = None


def item_labels(state: MeetingState) -> dict[bytes, str]:
    """Labels for answers, named and anonymous alike: "<step number>.<n-th in
    that step>", in fold order, so every laptop shows the same label for the
    same item (an anonymous one's place says no more than its round does)."""
    counts: dict[int, int] = {}
    labels: dict[bytes, str] = {}
    for ident in sorted(state.item_order, key=state.item_order.__getitem__):
        step = state.item_step(ident)
        if step is None:
            continue
        counts[step] = counts.get(step, 0) + 1
        labels[ident] = f"{step + 1}.{counts[step]}"
    return labels


def proposal_labels(state: MeetingState) -> dict[bytes, str]:
    """Labels for proposals: "P<n>", numbered across the meeting in fold order."""
    return {p.id: f"P{n}" for n, p in enumerate(state.proposals.values(), start=1)}


def _anonymous_items(state: MeetingState, labels: dict[bytes, str]) -> list[_Item]:
    return [
        _Item(
            label=labels.get(item.id),
            step=item.step,
            text=item.text,
            tag=item.tag,
            ref=item.ref,
            by=None,
            anonymous=True,
            round=item.round,
            members=item.members,
            slots=item.slots,
        )
        for item in state.anonymous_contributions
    ]


def _name(state: MeetingState, key: bytes) -> str | None:
    if not state.settings.get("attribute_named"):
        return None
    member = state.members.get(key)
    return None if member is None else safe_text(member.name, newlines=False)


# --- building the record -------------------------------------------------------------


@dataclass(slots=True)
class _Builder:
    state: MeetingState
    template: Template | None
    labels: dict[bytes, str]
    items: list[_Item]
    threshold: int

    def item_json(self, item: _Item) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "label": item.label,
            "text": safe_text(item.text),
            "tag": None if item.tag is None else safe_text(item.tag, newlines=False),
            "about": self.labels.get(item.ref) if item.ref else None,
            "anonymous": item.anonymous,
        }
        if item.anonymous:
            entry["round"] = {"number": item.round, "members": item.members, "slots": item.slots}
        else:
            entry["by"] = item.by
        return entry

    def about_step(self, index: int) -> int | None:
        """The step whose items answers in step ``index`` are about: the
        template's ``about``, else the only step it links to."""
        step = self.state.steps[index]
        target_id: str | None = None
        if self.template is not None:
            template_step = self.template.step(step.id)
            if template_step is not None:
                target_id = template_step.about
        if target_id is None and len(step.links) == 1:
            target_id = step.links[0]
        ids = [s.id for s in self.state.steps]
        return ids.index(target_id) if target_id in ids else None

    def rating_values(self, index: int) -> dict[bytes | None, list[int]]:
        """Every rating given in step ``index``, by the thing rated: raw
        values, for the aggregates below and the "2 of 3 have rated" count
        (how many, never who)."""
        step = self.state.steps[index]
        values: dict[bytes | None, list[int]] = {}
        for (rated_step, ref, _author), value in self.state.ratings.items():
            if rated_step == index:
                values.setdefault(ref, []).append(value)
        # A step takes named or anonymous ratings, never both (SPEC §13.4),
        # so one member's rating is never counted twice here.
        for (rated_step, ref), given in self.state.anonymous_ratings.items():
            if rated_step == index:
                values.setdefault(ref, []).extend(v for v in given.values() if v < len(step.scale))
        return values

    def ratings(self, index: int) -> list[dict[str, Any]]:
        step = self.state.steps[index]
        values = self.rating_values(index)
        about = self.about_step(index)
        targets: list[bytes | None] = []
        if about is not None:
            # Every answer of that step, named or anonymous, in label order.
            targets = [
                ident
                for ident in sorted(self.state.item_order, key=self.state.item_order.__getitem__)
                if self.state.item_step(ident) == about
            ]
        targets += [ref for ref in values if ref not in targets]
        if not targets:
            targets = [None]
        rows = []
        for ref in targets:
            answers = values.get(ref, [])
            shown = len(answers) >= self.threshold
            row: dict[str, Any] = {
                "about": self.labels.get(ref) if ref else None,
                "about_text": self.text_of(ref),
                "answers": len(answers) if shown else None,
                "shown": shown,
            }
            if shown:
                ordered = sorted(answers)
                row["middle"] = step.scale[ordered[(len(ordered) - 1) // 2]]
                row["spread"] = {
                    label: answers.count(position) for position, label in enumerate(step.scale)
                }
            rows.append(row)
        return rows

    def text_of(self, ref: bytes | None) -> str | None:
        if ref is None:
            return None
        text = self.state.item_text(ref)
        return None if text is None else safe_text(text, newlines=False)

    def poll_json(self, poll: Poll) -> dict[str, Any]:
        members = len(self.state.active_members())
        entry: dict[str, Any] = {
            "status": poll.status,
            "result": None,
            "tally_digest": None if poll.tally_digest is None else poll.tally_digest.hex(),
            "cosigned_by": len(poll.cosigners),
            "members": members,
            "final": poll.final,
            # Names only where the meeting chose to attribute (settings).
            "objections": list(
                objection_lines(
                    poll,
                    {k: _name(self.state, k) or "a member" for k in self.state.members},
                    b"",
                )
            ),
            "outcome": None if poll.outcome is None else safe_text(poll.outcome),
        }
        if poll.result is not None:
            result = poll.result
            entry["result"] = {
                "outcome": result.outcome,
                "counts": poll.shown_counts(
                    self.state.poll_counts_anonymously(poll), self.threshold
                ),
                "voters": result.voters,
                "members": result.members,
                "quorum": result.quorum,
                "stand_aside_limit": result.stand_aside_limit,
                "rule": result.rule(),
            }
        else:
            entry["so_far"] = poll.tally()
        if self.state.poll_counts_anonymously(poll):
            tally = poll.anonymous_tally(self.threshold)
            entry["anonymous_tally"] = None if tally is None else dict(tally)
        entry["reasons"] = self.reasons(poll)
        return entry

    def reasons(self, poll: Poll) -> list[dict[str, Any]]:
        """What the concerns and blocks were (SPEC §6.5): named ones with the
        voter's name where the meeting attributes, anonymous ones only where
        the poll's counts are shown (a reason can tell which choice it is)."""
        named, anonymous = poll.latest_reasons()
        rows = [
            {
                "choice": choice,
                "text": safe_text(reason, newlines=False),
                "by": _name(self.state, a),
            }
            for a, choice, reason in named
        ]
        counts_anonymously = self.state.poll_counts_anonymously(poll)
        if poll.shown_counts(counts_anonymously, self.threshold) is not None or (
            poll.result is None and poll.anonymous_tally(self.threshold) is not None
        ):
            rows += sorted(
                (
                    {"choice": choice, "text": safe_text(reason, newlines=False), "by": None}
                    for choice, reason in anonymous
                ),
                key=lambda row: (row["choice"], row["text"]),
            )
        return rows

    def proposals(self, index: int) -> list[dict[str, Any]]:
        numbered = proposal_labels(self.state)
        links = self.state.steps[index].links
        linked = {i for i, s in enumerate(self.state.steps) if s.id in links}
        by_label = {label: cid for cid, label in self.labels.items()}
        found = []
        for proposal in self.state.proposals.values():
            if proposal.step != index:
                continue
            names: list[dict[str, Any]] = []
            for match in _NAMED_ITEM.finditer(proposal.text):
                label = f"{match.group(1)}.{match.group(2)}"
                cid = by_label.get(label)
                if cid is None or label in (n["label"] for n in names):
                    continue
                if self.state.item_step(cid) in linked:
                    names.append({"label": label, "text": self.text_of(cid)})
            polls = [p for p in self.state.polls.values() if p.proposal == proposal.id]
            found.append(
                {
                    "label": numbered[proposal.id],
                    "text": safe_text(proposal.text),
                    "by": _name(self.state, proposal.author),
                    "names": names,
                    "polls": [self.poll_json(poll) for poll in polls],
                }
            )
        return found

    def step_json(self, index: int, step: Step) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "number": index + 1,
            "id": step.id,
            "title": step.title,
            "prompt": step.prompt,
            "mode": step.mode,
            "kind": step.kind,
            "status": step.status,
            "links": list(step.links),
            "items": [self.item_json(i) for i in self.items if i.step == index],
        }
        if self.template is not None:
            template_step = self.template.step(step.id)
            if template_step is not None and template_step.tags:
                entry["tags"] = list(template_step.tags)
        if step.kind == "rating":
            entry["scale"] = list(step.scale)
            entry["ratings"] = self.ratings(index)
        if step.kind == "proposal":
            entry["proposals"] = self.proposals(index)
        return entry

    def matrices(self) -> list[dict[str, Any]]:
        pairs: list[tuple[str, int, int]] = []
        ids = [s.id for s in self.state.steps]
        if self.template is not None:
            for matrix in self.template.matrices:
                if matrix.rows in ids and matrix.columns in ids:
                    pairs.append((matrix.title, ids.index(matrix.rows), ids.index(matrix.columns)))
        else:  # a joined member with a group's own template: pair rating steps about one step
            rating = [i for i, s in enumerate(self.state.steps) if s.kind == "rating"]
            for first, second in itertools.pairwise(rating):
                about = self.about_step(first)
                if about is not None and about == self.about_step(second):
                    title = f"{self.state.steps[first].title} / {self.state.steps[second].title}"
                    pairs.append((title, first, second))
        return [self.matrix(title, rows, columns) for title, rows, columns in pairs]

    def matrix(self, title: str, rows: int, columns: int) -> dict[str, Any]:
        row_step, column_step = self.state.steps[rows], self.state.steps[columns]
        by_row = {r["about"]: r for r in self.ratings(rows) if r["about"]}
        by_column = {r["about"]: r for r in self.ratings(columns) if r["about"]}
        cells: list[list[list[str]]] = [[[] for _ in column_step.scale] for _ in row_step.scale]
        left_out = []
        for label, row in by_row.items():
            column = by_column.get(label)
            if not row["shown"] or column is None or not column["shown"]:
                left_out.append(label)
                continue
            r = row_step.scale.index(row["middle"])
            c = column_step.scale.index(column["middle"])
            cells[r][c].append(label)
        return {
            "title": title,
            "rows": {"step": row_step.id, "title": row_step.title, "scale": list(row_step.scale)},
            "columns": {
                "step": column_step.id,
                "title": column_step.title,
                "scale": list(column_step.scale),
            },
            "cells": cells,  # cells[row position][column position]: item labels
            "left_out": left_out,
        }


def render_json(
    state: MeetingState, *, safety_number: str, template: Template | None = None
) -> dict[str, Any]:
    """The record as JSON-ready data (no bytes, no keys)."""
    labels = item_labels(state)
    named = [
        _Item(
            label=labels[c.id],
            step=c.step,
            text=c.text,
            tag=c.tag,
            ref=c.ref,
            by=_name(state, c.author),
            anonymous=False,
        )
        for c in state.contributions
    ]
    anonymous = _anonymous_items(state, labels)
    settings = state.settings
    builder = _Builder(state, template, labels, named + anonymous, int(settings["anon_threshold"]))
    active = state.active_members()
    return {
        "format": FORMAT,
        "title": safe_text(state.title, newlines=False),
        "process": None
        if template is None
        else {"name": template.name, "title": template.title, "credit": template.credit},
        "safety_number": safety_number,
        "roster": {
            "epoch": state.epoch,
            "members": len(active),
            "present": len(state.present_members()),
            "ever_joined": len(state.members),
            "names": [safe_text(m.name, newlines=False) for m in active]
            if settings.get("attribute_named")
            else None,
        },
        "settings": {
            "quorum_pct": settings["quorum_pct"],
            "stand_aside_limit": settings["stand_aside_limit"],
            "anon_threshold": settings["anon_threshold"],
            "attribute_named": settings["attribute_named"],
            "rule": consensus_rule(settings),
        },
        "anonymous_rounds": len(state.anon_rounds),
        "steps": [builder.step_json(i, step) for i, step in enumerate(state.steps)],
        "matrices": builder.matrices(),
        "state_digest": state.digest().hex(),
    }


def _live_builder(state: MeetingState, template: Template | None) -> _Builder:
    threshold = int(state.settings["anon_threshold"])
    return _Builder(state, template, item_labels(state), [], threshold)


def step_ratings(
    state: MeetingState, index: int, *, template: Template | None = None
) -> list[dict[str, Any]]:
    """The record's rows for rating step ``index`` (one per rated thing: its
    label, the count, middle answer and spread once at least the threshold
    answered), for a screen to show as answers come in."""
    return _live_builder(state, template).ratings(index)


def rating_counts(state: MeetingState, index: int) -> dict[bytes | None, int]:
    """How many have rated each thing in step ``index`` (named and anonymous
    alike): a count, never who nor what, so it may show below the threshold."""
    values = _live_builder(state, None).rating_values(index)
    return {ref: len(given) for ref, given in values.items()}


def rating_grids(state: MeetingState, *, template: Template | None = None) -> list[dict[str, Any]]:
    """The likelihood x impact grids as the record has them (``matrices``):
    each item placed by its middle answers once both scales have enough."""
    return _live_builder(state, template).matrices()


def roster_safety_number(state: MeetingState) -> str:
    """The safety number of the roster as it stands ("" before the meeting exists)."""
    if not state.created:
        return ""
    return safety_number(state.mid, state.epoch, [m.key for m in state.active_members()])


def consensus_rule(settings: dict[str, Any]) -> str:
    """The meeting's consensus rule in words, before any poll has run."""
    return (
        f"a block stops a proposal; at least {settings['quorum_pct']}% of the members present "
        "must vote; "
        f"more than {settings['stand_aside_limit']} stand-asides means no consensus; "
        "otherwise consensus (concerns are recorded, not counted against)"
    )


# --- Markdown ------------------------------------------------------------------------


def _step_heading(step: dict[str, Any]) -> str:
    return f"## {step['number']}. {md(step['title'])}"


def _item_line(item: dict[str, Any]) -> str:
    parts = []
    if item["label"]:
        parts.append(f"**{item['label']}**")
    if item["anonymous"]:
        parts.append("*(anonymous)*")
    if item["tag"]:
        parts.append(f"*{md(item['tag'], cell=True)}*:")
    parts.append(md(item["text"]))
    if item.get("by"):
        parts.append(f"— {md(item['by'], cell=True)}")
    carried = item.get("round")
    if carried and carried["number"] is not None:
        # How many slots its round held, so a suppressed answer would show.
        parts.append(
            f"(round {carried['number']}: {carried['members']} members, {carried['slots']} slots)"
        )
    return " ".join(parts)


def _items_markdown(step: dict[str, Any], out: list[str], texts: dict[str, str]) -> None:
    items = step["items"]
    if not items:
        out.append("*No answers.*")
        return
    own = {i["label"] for i in items if i["label"]}
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for item in items:
        about = item["about"]
        key = about if about and about not in own else None  # replies stay in place
        groups.setdefault(key, []).append(item)
    for about, members in groups.items():
        if about is None:
            continue
        out.append(f"- About **{about}** {md(texts.get(about, ''), cell=True)}")
        out.extend(f"  - {_item_line(item)}" for item in members)
    for item in groups.get(None, []):
        reply = f" (re **{item['about']}**)" if item["about"] else ""
        out.append(f"- {_item_line(item)}{reply}")


def _ratings_markdown(step: dict[str, Any], out: list[str], threshold: int) -> None:
    scale = step["scale"]
    out.append(
        f"Only the spread of answers is shown, and only where at least {threshold} "
        "members answered."
    )
    out.append("")
    out.append(
        "| About | Answers | Middle answer | " + " | ".join(md(s, cell=True) for s in scale) + " |"
    )
    out.append("|---|---|---|" + "---|" * len(scale))
    for row in step["ratings"]:
        about = (
            "the group"
            if row["about"] is None
            else f"**{row['about']}** {md(row['about_text'] or '', cell=True)}"
        )
        if row["shown"]:
            spread = " | ".join(str(row["spread"][s]) for s in scale)
            out.append(
                f"| {about} | {row['answers']} | {md(row['middle'], cell=True)} | {spread} |"
            )
        else:
            out.append(f"| {about} | fewer than {threshold} | — |" + " |" * len(scale))


def _poll_markdown(poll: dict[str, Any], out: list[str]) -> None:
    result = poll["result"]
    if result is None:
        so_far = ", ".join(f"{CHOICE_LABELS[c]} {n}" for c, n in poll["so_far"].items())
        out.append(f"  - Poll still open (named votes so far: {so_far}).")
    else:
        shown = result["counts"]
        counts = (
            ", ".join(f"{CHOICE_LABELS[c]} {n}" for c, n in shown.items())
            if shown is not None
            else "counts not shown (too few anonymous voters)"
        )
        out.append(
            f"  - Poll closed: **{OUTCOME_LABELS[result['outcome']]}**. {result['voters']} of "
            f"{result['members']} members present voted (quorum {result['quorum']}): {counts}."
        )
        out.append(f"  - Rule: {result['rule']}.")
        out.append(
            f"  - Tally digest `{poll['tally_digest']}`, co-signed by {poll['cosigned_by']} of "
            f"{poll['members']} members' laptops"
            + (" (final)." if poll.get("final") else " (not final: no majority co-signed it).")
        )
        for line in poll.get("objections", []):
            out.append(f"  - Objection: {line}")
    if "anonymous_tally" in poll:
        tally = poll["anonymous_tally"]
        if tally is None:
            out.append("  - Anonymous votes: too few to show.")
        else:
            words = ", ".join(f"{CHOICE_LABELS.get(c, c)} {n}" for c, n in tally.items())
            out.append(f"  - Anonymous votes: {words}.")
    for reason in poll.get("reasons", []):
        by = f" — {md(reason['by'], cell=True)}" if reason["by"] else ""
        head = SHORT_CHOICE_LABELS[reason["choice"]].capitalize()
        out.append(f"  - {head}: {md(reason['text'], cell=True)}{by}")
    if poll["outcome"]:
        out.append(f"  - Outcome recorded by the facilitator: {md(poll['outcome'])}")


def _matrix_markdown(matrix: dict[str, Any], out: list[str], threshold: int) -> None:
    rows, columns = matrix["rows"], matrix["columns"]
    out.append(f"### {md(matrix['title'])}")
    out.append("")
    if not any(labels for row in matrix["cells"] for labels in row):
        left = ", ".join(matrix["left_out"]) or "none yet"
        out.append(f"No item has at least {threshold} answers on both scales yet (items: {left}).")
        return
    out.append(
        f"Each item sits where the middle answers of *{md(rows['title'])}* (rows) and "
        f"*{md(columns['title'])}* (columns) meet."
    )
    out.append("")
    out.append("| | " + " | ".join(md(s, cell=True) for s in columns["scale"]) + " |")
    out.append("|---|" + "---|" * len(columns["scale"]))
    for position in reversed(range(len(rows["scale"]))):
        cells = [", ".join(labels) for labels in matrix["cells"][position]]
        out.append(f"| **{md(rows['scale'][position], cell=True)}** | " + " | ".join(cells) + " |")
    if matrix["left_out"]:
        out.append("")
        out.append(
            f"Left out (fewer than {threshold} answers on a scale): "
            + ", ".join(matrix["left_out"])
            + "."
        )


def render_markdown(
    state: MeetingState, *, safety_number: str, template: Template | None = None
) -> str:
    """The record as a Markdown document a person can read and keep."""
    record = render_json(state, safety_number=safety_number, template=template)
    settings = record["settings"]
    threshold = settings["anon_threshold"]
    roster = record["roster"]
    out = [f"# {md(record['title'])}", ""]
    out.append("Record of a relsec meeting, written on request by one member's laptop.")
    out.append("")
    process = record["process"]
    if process is not None:
        out.append(f"- Process: {md(process['title'])}. {md(process['credit'])}")
    out.append(
        f"- Members at the end: {roster['members']} ({roster['ever_joined']} joined in all; "
        f"roster epoch {roster['epoch']})."
    )
    out.append(f"- Safety number at the end: **{record['safety_number'] or 'none'}**")
    if roster["names"] is None:
        # Nobody was asked in the meeting: the setting came with its process
        # (the template), so the record says where it came from.
        origin = "the meeting's process keeps" if process is not None else "its settings keep"
        out.append(
            f"- Names: not recorded ({origin} who said what out of the record; "
            "the setting is attribute_named)."
        )
    else:
        out.append("- Names: " + ", ".join(md(n, cell=True) for n in roster["names"]) + ".")
    out.append(f"- Consensus rule: {settings['rule']}.")
    out.append(f"- Anonymous rounds released: {record['anonymous_rounds']}.")
    out.append("")
    out.append("## Agenda")
    out.append("")
    status_words = {"pending": "not reached", "open": "open", "closed": "done"}
    for step in record["steps"]:
        out.append(
            f"{step['number']}. {md(step['title'])} ({step['kind']}, {MODE_LABELS[step['mode']]}; "
            f"{status_words.get(step['status'], step['status'])})"
        )
    texts = {
        item["label"]: item["text"]
        for step in record["steps"]
        for item in step["items"]
        if item["label"]
    }
    for step in record["steps"]:
        out.append("")
        out.append(_step_heading(step))
        out.append("")
        out.append("> " + md(step["prompt"]).replace("\n    ", "\n> "))
        out.append("")
        if step["kind"] == "rating":
            _ratings_markdown(step, out, threshold)
            if step["items"]:
                out.append("")
                _items_markdown(step, out, texts)
        elif step["kind"] == "proposal":
            if step["items"]:
                _items_markdown(step, out, texts)
            if not step["proposals"]:
                out.append("*No proposals.*")
            for proposal in step["proposals"]:
                by = f" — {md(proposal['by'], cell=True)}" if proposal["by"] else ""
                out.append(f"- **Proposal {proposal['label']}**: {md(proposal['text'])}{by}")
                if proposal["names"]:
                    named = "; ".join(
                        f"**{n['label']}** {md(n['text'] or '', cell=True)}"
                        for n in proposal["names"]
                    )
                    out.append(f"  - Takes up: {named}")
                for poll in proposal["polls"]:
                    _poll_markdown(poll, out)
        else:
            _items_markdown(step, out, texts)
    if record["matrices"]:
        out.append("")
        out.append("## Matrices")
        for matrix in record["matrices"]:
            out.append("")
            _matrix_markdown(matrix, out, threshold)
    out.append("")
    out.append(f"State digest: `{record['state_digest']}`")
    out.append("")
    return "\n".join(out)


__all__ = [
    "FORMAT",
    "consensus_rule",
    "item_labels",
    "md",
    "proposal_labels",
    "rating_counts",
    "rating_grids",
    "render_json",
    "render_markdown",
    "roster_safety_number",
    "step_ratings",
]


def objection_lines(poll: Poll, names: dict[bytes, str], me: bytes) -> tuple[str, ...]:
    """What every screen says about a close some laptops refused to co-sign:
    whose laptop, which close, whose named votes it left out (SPEC §6.5). An
    anonymous vote is named by the round entry that released it, whose author
    is not its voter: those are only counted, never named."""
    named = {(v.author, v.seq) for v in poll.votes}
    lines: list[str] = []
    for close in poll.closes:
        closer = names.get(close.author, "?")
        for objector, left_out in sorted(close.objections.items()):
            voters = sorted({names.get(a, "?") for a, seq in left_out if (a, seq) in named})
            anonymous = sum(1 for pair in left_out if pair not in named)
            parts = [", ".join(voters)] if voters else []
            if anonymous:
                parts.append(f"{anonymous} anonymous")
            who = "Your" if objector == me else f"{names.get(objector, '?')}'s"
            mine = any(pair in named and pair[0] == me for pair in left_out)
            if not left_out:
                lines.append(
                    f"{who} laptop refused to co-sign the close by {closer}: {closer} was not "
                    "the facilitator it knew."
                )
                continue
            lines.append(
                f"{who} laptop refused to co-sign the close by {closer}: it left out "
                f"votes already cast ({'; '.join(parts)})."
                + (" Yours was one of them." if mine else "")
            )
    return tuple(lines)
