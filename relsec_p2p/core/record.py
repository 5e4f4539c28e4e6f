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
- Written in the language shown (core/i18n.py; ``relsec export --lang``):
  the record's own words and the template's texts in that language, what
  members wrote as they wrote it. The digest is the meeting's, whatever the
  language.
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

from .i18n import _, current_language, ngettext
from .safety import safety_number, spoken_safety_number
from .state import MeetingState, Poll, Step
from .template import Template, step_in_language
from .text import safe_text
from .wording import (
    CHOICE_LABELS,
    KIND_LABELS,
    MODE_LABELS,
    OUTCOME_LABELS,
    SHORT_CHOICE_LABELS,
    STATUS_LABELS,
)

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
    template: Template | None  # already in the record's language
    original: Template | None  # as loaded: its tags in every language
    labels: dict[bytes, str]
    items: list[_Item]
    threshold: int
    steps: list[Step]  # the meeting's steps in the record's language
    language: str

    def tag_shown(self, step: int, tag: str | None) -> str | None:
        """A contribution's tag in the record's language, when the template
        lists it (a tag someone typed is left as written)."""
        if tag is None:
            return None
        template_step = None if self.original is None else self.original.step(self.steps[step].id)
        shown = tag if template_step is None else template_step.tag_label(tag, self.language)
        return safe_text(shown, newlines=False)

    def item_json(self, item: _Item) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "label": item.label,
            "text": safe_text(item.text),
            "tag": self.tag_shown(item.step, item.tag),
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
        step = self.steps[index]
        target_id: str | None = None
        if self.template is not None:
            template_step = self.template.step(step.id)
            if template_step is not None:
                target_id = template_step.about
        if target_id is None and len(step.links) == 1:
            target_id = step.links[0]
        ids = [s.id for s in self.steps]
        return ids.index(target_id) if target_id in ids else None

    def rating_values(self, index: int) -> dict[bytes | None, list[int]]:
        """Every rating given in step ``index``, by the thing rated: raw
        values, for the aggregates below and the "2 of 3 have rated" count
        (how many, never who)."""
        step = self.steps[index]
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
        step = self.steps[index]  # in the reader's language: the scale's labels
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
                    {k: _name(self.state, k) or _("a member") for k in self.state.members},
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
        links = self.steps[index].links
        linked = {i for i, s in enumerate(self.steps) if s.id in links}
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
        ids = [s.id for s in self.steps]
        if self.template is not None:
            for matrix in self.template.matrices:
                if matrix.rows in ids and matrix.columns in ids:
                    pairs.append((matrix.title, ids.index(matrix.rows), ids.index(matrix.columns)))
        else:  # a joined member with a group's own template: pair rating steps about one step
            rating = [i for i, s in enumerate(self.steps) if s.kind == "rating"]
            for first, second in itertools.pairwise(rating):
                about = self.about_step(first)
                if about is not None and about == self.about_step(second):
                    title = f"{self.steps[first].title} / {self.steps[second].title}"
                    pairs.append((title, first, second))
        return [self.matrix(title, rows, columns) for title, rows, columns in pairs]

    def matrix(self, title: str, rows: int, columns: int) -> dict[str, Any]:
        row_step, column_step = self.steps[rows], self.steps[columns]
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


def _builder(
    state: MeetingState, template: Template | None, labels: dict[bytes, str], items: list[_Item]
) -> _Builder:
    """A builder in the language shown now (``current_language``)."""
    language = current_language()
    return _Builder(
        state,
        None if template is None else template.in_language(language),
        template,
        labels,
        items,
        int(state.settings["anon_threshold"]),
        [step_in_language(step, language) for step in state.steps],
        language,
    )


def render_json(
    state: MeetingState, *, safety_number: str, template: Template | None = None
) -> dict[str, Any]:
    """The record as JSON-ready data (no bytes, no keys)."""
    language = current_language()
    shown_template = None if template is None else template.in_language(language)
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
    builder = _builder(state, template, labels, named + anonymous)
    active = state.active_members()
    return {
        "format": FORMAT,
        "language": language,
        "title": safe_text(state.title, newlines=False),
        "process": None
        if shown_template is None
        else {
            "name": shown_template.name,
            "title": shown_template.title,
            "credit": shown_template.credit,
        },
        "safety_number": safety_number,
        "safety_number_spoken": spoken_safety_number(safety_number) if safety_number else "",
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
        "steps": [builder.step_json(i, step) for i, step in enumerate(builder.steps)],
        "matrices": builder.matrices(),
        "state_digest": state.digest().hex(),
    }


def _live_builder(state: MeetingState, template: Template | None) -> _Builder:
    return _builder(state, template, item_labels(state), [])


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
    # The share is a value ("75%"), not text around a "%": a "%" in a catalog
    # entry would be read as a printf placeholder by the catalog tools.
    return _(
        "a block stops a proposal; at least {share} of the members present must vote; "
        "more than {limit} stand-asides means no consensus; "
        "otherwise consensus (concerns are recorded, not counted against)"
    ).format(share=f"{settings['quorum_pct']}%", limit=settings["stand_aside_limit"])


# --- Markdown ------------------------------------------------------------------------


def _step_heading(step: dict[str, Any]) -> str:
    return f"## {step['number']}. {md(step['title'])}"


def _item_line(item: dict[str, Any]) -> str:
    parts = []
    if item["label"]:
        parts.append(f"**{item['label']}**")
    if item["anonymous"]:
        parts.append("*(" + _("anonymous") + ")*")
    if item["tag"]:
        parts.append(f"*{md(item['tag'], cell=True)}*:")
    parts.append(md(item["text"]))
    if item.get("by"):
        parts.append(f"— {md(item['by'], cell=True)}")
    carried = item.get("round")
    if carried and carried["number"] is not None:
        # How many slots its round held, so a suppressed answer would show.
        members = ngettext("{n} member", "{n} members", carried["members"]).format(
            n=carried["members"]
        )
        slots = ngettext("{n} slot", "{n} slots", carried["slots"]).format(n=carried["slots"])
        parts.append(
            "("
            + _("round {number}: {members}, {slots}").format(
                number=carried["number"], members=members, slots=slots
            )
            + ")"
        )
    return " ".join(parts)


def _items_markdown(step: dict[str, Any], out: list[str], texts: dict[str, str]) -> None:
    items = step["items"]
    if not items:
        out.append("*" + _("No answers.") + "*")
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
        out.append(
            "- "
            + _("About {label} {text}").format(
                label=f"**{about}**", text=md(texts.get(about, ""), cell=True)
            )
        )
        out.extend(f"  - {_item_line(item)}" for item in members)
    for item in groups.get(None, []):
        reply = (
            " (" + _("re {label}").format(label=f"**{item['about']}**") + ")"
            if item["about"]
            else ""
        )
        out.append(f"- {_item_line(item)}{reply}")


def _ratings_markdown(step: dict[str, Any], out: list[str], threshold: int) -> None:
    scale = step["scale"]
    out.append(
        ngettext(
            "Only the spread of answers is shown, and only where at least {n} member answered.",
            "Only the spread of answers is shown, and only where at least {n} members answered.",
            threshold,
        ).format(n=threshold)
    )
    out.append("")
    headers = [_("About"), _("Answers"), _("Middle answer")]
    headers += [md(label, cell=True) for label in scale]
    out.append("| " + " | ".join(headers) + " |")
    out.append("|---|---|---|" + "---|" * len(scale))
    for row in step["ratings"]:
        about = (
            _("the group")
            if row["about"] is None
            else f"**{row['about']}** {md(row['about_text'] or '', cell=True)}"
        )
        if row["shown"]:
            spread = " | ".join(str(row["spread"][s]) for s in scale)
            out.append(
                f"| {about} | {row['answers']} | {md(row['middle'], cell=True)} | {spread} |"
            )
        else:
            fewer = _("fewer than {n}").format(n=threshold)
            out.append(f"| {about} | {fewer} | — |" + " |" * len(scale))


def _poll_markdown(poll: dict[str, Any], out: list[str]) -> None:
    result = poll["result"]
    if result is None:
        so_far = ", ".join(f"{CHOICE_LABELS[c]} {n}" for c, n in poll["so_far"].items())
        out.append(
            "  - " + _("Poll still open (named votes so far: {counts}).").format(counts=so_far)
        )
    else:
        shown = result["counts"]
        counts = (
            ", ".join(f"{CHOICE_LABELS[c]} {n}" for c, n in shown.items())
            if shown is not None
            else _("counts not shown (too few anonymous voters)")
        )
        voted = ngettext(
            "{voters} of {members} member present voted (quorum {quorum}): {counts}.",
            "{voters} of {members} members present voted (quorum {quorum}): {counts}.",
            result["members"],
        ).format(
            voters=result["voters"],
            members=result["members"],
            quorum=result["quorum"],
            counts=counts,
        )
        closed = _("Poll closed: {outcome}.").format(
            outcome=f"**{OUTCOME_LABELS[result['outcome']]}**"
        )
        out.append(f"  - {closed} {voted}")
        out.append("  - " + _("Rule: {rule}.").format(rule=result["rule"]))
        cosigned = ngettext(
            "Tally digest {digest}, co-signed by {cosigned} of {members} member's laptops",
            "Tally digest {digest}, co-signed by {cosigned} of {members} members' laptops",
            poll["members"],
        ).format(
            digest=f"`{poll['tally_digest']}`",
            cosigned=poll["cosigned_by"],
            members=poll["members"],
        )
        final = _("(final).") if poll.get("final") else _("(not final: no majority co-signed it).")
        out.append(f"  - {cosigned} {final}")
        for line in poll.get("objections", []):
            out.append("  - " + _("Objection: {line}").format(line=line))
    if "anonymous_tally" in poll:
        tally = poll["anonymous_tally"]
        if tally is None:
            out.append("  - " + _("Anonymous votes: too few to show."))
        else:
            words = ", ".join(f"{CHOICE_LABELS.get(c, c)} {n}" for c, n in tally.items())
            out.append("  - " + _("Anonymous votes: {counts}.").format(counts=words))
    for reason in poll.get("reasons", []):
        by = f" — {md(reason['by'], cell=True)}" if reason["by"] else ""
        head = SHORT_CHOICE_LABELS[reason["choice"]].capitalize()
        out.append(f"  - {head}: {md(reason['text'], cell=True)}{by}")
    if poll["outcome"]:
        out.append(
            "  - "
            + _("Outcome recorded by the facilitator: {outcome}").format(
                outcome=md(poll["outcome"])
            )
        )


def _matrix_markdown(matrix: dict[str, Any], out: list[str], threshold: int) -> None:
    rows, columns = matrix["rows"], matrix["columns"]
    out.append(f"### {md(matrix['title'])}")
    out.append("")
    if not any(labels for row in matrix["cells"] for labels in row):
        left = ", ".join(matrix["left_out"]) or _("none yet")
        out.append(
            ngettext(
                "No item has at least {n} answer on both scales yet (items: {items}).",
                "No item has at least {n} answers on both scales yet (items: {items}).",
                threshold,
            ).format(n=threshold, items=left)
        )
        return
    out.append(
        _(
            "Each item sits where the middle answers of {rows} (rows) and {columns} (columns) meet."
        ).format(rows=f"*{md(rows['title'])}*", columns=f"*{md(columns['title'])}*")
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
            ngettext(
                "Left out (fewer than {n} answer on a scale): {items}.",
                "Left out (fewer than {n} answers on a scale): {items}.",
                threshold,
            ).format(n=threshold, items=", ".join(matrix["left_out"]))
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
    out.append(_("Record of a relsec meeting, written on request by one member's laptop."))
    out.append("")
    process = record["process"]
    if process is not None:
        out.append(
            "- "
            + _("Process: {title}. {credit}").format(
                title=md(process["title"]), credit=md(process["credit"])
            )
        )
    joined = ngettext("{n} joined in all", "{n} joined in all", roster["ever_joined"]).format(
        n=roster["ever_joined"]
    )
    out.append(
        "- "
        + _("Members at the end: {members} ({joined}; roster epoch {epoch}).").format(
            members=roster["members"], joined=joined, epoch=roster["epoch"]
        )
    )
    number = record["safety_number"]
    out.append(
        "- "
        + _("Safety number at the end: {number}").format(
            number=f"**{number}**" if number else "**" + _("none") + "**"
        )
    )
    if number:
        out.append("  - " + _("Read aloud: {words}").format(words=record["safety_number_spoken"]))
    if roster["names"] is None:
        # Nobody was asked in the meeting: the setting came with its process
        # (the template) or its settings, so the record says which.
        if process is not None:
            why = _(
                "Names: not recorded (the meeting's process keeps who said what out of "
                "the record; the setting is attribute_named)."
            )
        else:
            why = _(
                "Names: not recorded (its settings keep who said what out of the record; "
                "the setting is attribute_named)."
            )
        out.append("- " + why)
    else:
        names = ", ".join(md(n, cell=True) for n in roster["names"])
        out.append("- " + _("Names: {names}.").format(names=names))
    out.append("- " + _("Consensus rule: {rule}.").format(rule=settings["rule"]))
    out.append("- " + _("Anonymous rounds released: {n}.").format(n=record["anonymous_rounds"]))
    out.append("")
    out.append("## " + _("Agenda"))
    out.append("")
    for step in record["steps"]:
        status = (
            STATUS_LABELS[step["status"]] if step["status"] in STATUS_LABELS else step["status"]
        )
        out.append(
            f"{step['number']}. {md(step['title'])} ({KIND_LABELS[step['kind']]}, "
            f"{MODE_LABELS[step['mode']]}; {status})"
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
                out.append("*" + _("No proposals.") + "*")
            for proposal in step["proposals"]:
                by = f" — {md(proposal['by'], cell=True)}" if proposal["by"] else ""
                heading = _("Proposal {label}").format(label=proposal["label"])
                out.append(f"- **{heading}**: {md(proposal['text'])}{by}")
                if proposal["names"]:
                    named = "; ".join(
                        f"**{n['label']}** {md(n['text'] or '', cell=True)}"
                        for n in proposal["names"]
                    )
                    out.append("  - " + _("Takes up: {items}").format(items=named))
                for poll in proposal["polls"]:
                    _poll_markdown(poll, out)
        else:
            _items_markdown(step, out, texts)
    if record["matrices"]:
        out.append("")
        out.append("## " + _("Matrices"))
        for matrix in record["matrices"]:
            out.append("")
            _matrix_markdown(matrix, out, threshold)
    out.append("")
    out.append(_("State digest: {digest}").format(digest=f"`{record['state_digest']}`"))
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
                parts.append(
                    ngettext("{n} anonymous", "{n} anonymous", anonymous).format(n=anonymous)
                )
            mine = any(pair in named and pair[0] == me for pair in left_out)
            objector_name = names.get(objector, "?")
            if not left_out:
                line = (
                    _(
                        "Your laptop refused to co-sign the close by {closer}: {closer} was not "
                        "the facilitator it knew."
                    )
                    if objector == me
                    else _(
                        "{name}'s laptop refused to co-sign the close by {closer}: {closer} was "
                        "not the facilitator it knew."
                    )
                )
                lines.append(line.format(name=objector_name, closer=closer))
                continue
            line = (
                _(
                    "Your laptop refused to co-sign the close by {closer}: it left out votes "
                    "already cast ({votes})."
                )
                if objector == me
                else _(
                    "{name}'s laptop refused to co-sign the close by {closer}: it left out votes "
                    "already cast ({votes})."
                )
            )
            lines.append(
                line.format(name=objector_name, closer=closer, votes="; ".join(parts))
                + (" " + _("Yours was one of them.") if mine else "")
            )
    return tuple(lines)
