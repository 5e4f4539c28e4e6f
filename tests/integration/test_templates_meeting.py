"""Every built-in template, and a group's own file, run as a whole meeting by
real ``relsec peer`` processes; the record one member exports holds what
everyone entered (and nothing it should not)."""

from __future__ import annotations

import json
import pathlib
from importlib import resources
from typing import Any

import pytest

from relsec_p2p.core.template import Template
from relsec_p2p.peerproc import PeerProcess, wait_all_equal
from relsec_p2p.templates import load_template

N = 3
NAMES = ["Ana", "Bo", "Cy"]


@pytest.fixture
def trio(peers: list[PeerProcess]) -> list[PeerProcess]:
    """``N`` peer processes, started (and closed by ``peers``)."""
    peers.extend(PeerProcess() for _ in range(N))
    return peers


def all_see(peers: list[PeerProcess], predicate: Any) -> None:
    for peer in peers:
        peer.wait_state(predicate)


def labels_of(state: dict[str, Any]) -> dict[str, str]:
    """Contribution id -> label, as the record numbers them (fold order per step)."""
    counts: dict[int, int] = {}
    labels = {}
    for c in state["contributions"]:
        counts[c["step"]] = counts.get(c["step"], 0) + 1
        labels[c["id"]] = f"{c['step'] + 1}.{counts[c['step']]}"
    return labels


class Run:
    """Walks a meeting through every step of a template and remembers what was
    entered, to compare with the record."""

    def __init__(self, peers: list[PeerProcess], template: Template) -> None:
        self.peers = peers
        self.template = template
        self.ids = [step.id for step in template.steps]
        self.items: dict[str, list[dict[str, Any]]] = {}  # step id -> entered items
        self.ratings: dict[str, dict[str | None, list[int]]] = {}
        self.proposals: dict[str, dict[str, Any]] = {}

    @property
    def facilitator(self) -> PeerProcess:
        return self.peers[0]

    def start(self, template_ref: str) -> None:
        answer = self.facilitator.ok(cmd="start", template=template_ref, name=NAMES[0])
        for peer, name in zip(self.peers[1:], NAMES[1:], strict=True):
            peer.ok(cmd="join", code=answer["code"], name=name)

    def walk(self) -> None:
        for index, step in enumerate(self.template.steps):
            wait_all_equal(self.peers)  # answers may refer to what others just said
            self.facilitator.ok(cmd="open_step", step=index)
            all_see(self.peers, lambda s, i=index: s["current"] == i)
            about = self.items.get(step.about or "", [])
            if step.mode == "anonymous":
                continue  # no anonymous rounds in this build: nothing a peer may send
            if step.kind == "text":
                self.text_step(index, step.id, step.tags, about)
            elif step.kind == "rating":
                self.rating_step(index, step.id, len(step.scale), about)
            else:
                self.proposal_step(index, step.id, about)
        wait_all_equal(self.peers)
        self.facilitator.ok(cmd="close_step", step=len(self.ids) - 1)

    def text_step(
        self, index: int, step_id: str, tags: tuple[str, ...], about: list[dict[str, Any]]
    ) -> None:
        entered = self.items.setdefault(step_id, [])
        for j, peer in enumerate(self.peers):
            command: dict[str, Any] = {"step": index, "text": f"{step_id}: answer from {j}"}
            if tags:
                command["tag"] = tags[j % len(tags)]
            if about:
                command["ref"] = about[j % len(about)]["id"]
            answer = peer.ok(cmd="contribute", **command)
            entered.append(
                {
                    "id": answer["entry"],
                    "text": command["text"],
                    "tag": command.get("tag"),
                    "about": command.get("ref"),
                    "by": NAMES[j],
                }
            )

    def rating_step(self, index: int, step_id: str, size: int, about: list[dict[str, Any]]) -> None:
        targets: list[str | None] = [item["id"] for item in about] or [None]
        given = self.ratings.setdefault(step_id, {})
        for t, target in enumerate(targets):
            for j, peer in enumerate(self.peers):
                value = (j + t) % size
                command: dict[str, Any] = {"step": index, "value": value}
                if target is not None:
                    command["ref"] = target
                peer.ok(cmd="rate", **command)
                given.setdefault(target, []).append(value)

    def proposal_step(self, index: int, step_id: str, about: list[dict[str, Any]]) -> None:
        state = wait_all_equal(self.peers)[0]
        labels = labels_of(state)
        named = [labels[item["id"]] for item in about[:2]]
        text = "We take this up together" + "".join(f" [{label}]" for label in named)
        proposal = self.peers[1].ok(cmd="propose", step=index, text=text)["entry"]
        all_see(self.peers, lambda s: any(p["id"] == proposal for p in s["proposals"]))
        poll = self.facilitator.ok(cmd="open_poll", proposal=proposal)["entry"]
        all_see(self.peers, lambda s: any(p["id"] == poll for p in s["polls"]))
        for peer, choice in zip(self.peers, ["agree", "concerns", "agree"], strict=True):
            peer.ok(cmd="vote", poll=poll, choice=choice)
        all_see(
            self.peers,
            lambda s: sum(next(p for p in s["polls"] if p["id"] == poll)["tally"].values()) == N,
        )
        self.facilitator.ok(cmd="close_poll", poll=poll)
        # Every member's client co-signs the closed tally by itself.
        all_see(
            self.peers,
            lambda s: len(next(p for p in s["polls"] if p["id"] == poll)["cosigners"]) == N,
        )
        outcome = f"Agreed for {step_id}: we start next week."
        self.facilitator.ok(cmd="record_outcome", poll=poll, text=outcome)
        self.proposals[step_id] = {"text": text, "names": named, "outcome": outcome}

    def export(
        self, tmp: pathlib.Path, member: int = 2
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """The record as ``member`` writes it (by default not the facilitator:
        every laptop can write the record)."""
        states = wait_all_equal(self.peers)
        markdown, data = tmp / "record.md", tmp / "record.json"
        self.peers[member].ok(cmd="export", markdown=str(markdown), json=str(data))
        return states[member], markdown.read_text(encoding="utf-8"), json.loads(data.read_text())


def check_record(
    run: Run, state: dict[str, Any], text: str, record: dict[str, Any], *, credited: bool = True
) -> None:
    template = run.template
    labels = labels_of(state)
    attributed = template.settings["attribute_named"]
    assert record["title"] == template.title
    if credited:
        assert record["process"]["credit"] == template.credit
        assert template.credit.split(";")[0] in text.replace("\n", " ")
    else:
        assert record["process"] is None
    assert record["safety_number"] == state["safety_number"] != ""
    assert record["roster"]["members"] == N
    assert record["settings"] == {
        key: template.settings[key]
        for key in ("quorum_pct", "stand_aside_limit", "anon_threshold", "attribute_named")
    } | {"rule": record["settings"]["rule"]}
    assert [s["id"] for s in record["steps"]] == run.ids
    for step, spec in zip(record["steps"], template.steps, strict=True):
        assert step["status"] == "closed"
        entered = run.items.get(spec.id, [])
        got = sorted(
            (i["text"], i["tag"], i["about"], i.get("by")) for i in step["items"] if i["label"]
        )
        want = sorted(
            (
                e["text"],
                e["tag"],
                labels[e["about"]] if e["about"] else None,
                e["by"] if attributed else None,
            )
            for e in entered
        )
        assert got == want, spec.id
        for item in entered:
            assert item["text"] in text
        if spec.kind == "rating":
            check_ratings(run, spec, step, labels)
        if spec.kind == "proposal" and spec.mode != "anonymous":
            (proposal,) = step["proposals"]
            expected = run.proposals[spec.id]
            assert proposal["text"] == expected["text"]
            assert [n["label"] for n in proposal["names"]] == expected["names"]
            (poll,) = proposal["polls"]
            assert poll["result"]["outcome"] == "consensus"
            assert poll["result"]["counts"] == {
                "agree": 2,
                "concerns": 1,
                "stand_aside": 0,
                "block": 0,
            }
            assert poll["cosigned_by"] == N and poll["outcome"] == expected["outcome"]
            assert poll["result"]["rule"] in text and expected["outcome"] in text
    for name in NAMES:
        assert (f"— {name}" in text) is attributed
    # Never a key, an id or the meeting id, in either form.
    secrets = [state["mid"], *(m["key"] for m in state["members"])]
    secrets += [c["id"] for c in state["contributions"]]
    secrets += [p["id"] for p in state["proposals"]]
    for secret in secrets:
        assert secret not in text and secret not in json.dumps(record)


def check_ratings(run: Run, spec: Any, step: dict[str, Any], labels: dict[str, str]) -> None:
    given = run.ratings.get(spec.id, {})
    threshold = run.template.settings["anon_threshold"]
    rows = {row["about"]: row for row in step["ratings"]}
    if spec.mode == "anonymous":
        assert all(not row["shown"] for row in rows.values())
        return
    for target, values in given.items():
        row = rows[labels[target] if target else None]
        assert row["shown"] is (len(values) >= threshold)
        ordered = sorted(values)
        assert row["middle"] == spec.scale[ordered[(len(ordered) - 1) // 2]]
        assert list(row["spread"].values()) == [values.count(v) for v in range(len(spec.scale))]


@pytest.mark.parametrize(
    "name", ["relational-security", "healing", "holistic-security", "movement-values"]
)
def test_builtin_template_meeting_produces_a_faithful_record(
    name: str, trio: list[PeerProcess], tmp_path: pathlib.Path
) -> None:
    run = Run(trio, load_template(name))
    run.start(name)
    run.walk()
    state, text, record = run.export(tmp_path)
    check_record(run, state, text, record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json", "record.md"]


def test_a_groups_own_template_file(trio: list[PeerProcess], tmp_path: pathlib.Path) -> None:
    """A group's own file (``--template FILE``): here the relational process
    with named ratings and attribution, so the matrix and names show."""
    source = resources.files("relsec_p2p.templates") / "relational-security.toml"
    text = source.read_text(encoding="utf-8")
    text = text.replace('mode = "anonymous"', 'mode = "both"')
    text = text.replace("attribute_named = false", "attribute_named = true")
    path = tmp_path / "our-process.toml"
    path.write_text(text, encoding="utf-8")
    run = Run(trio, load_template(str(path)))
    run.start(str(path))
    run.walk()
    # A member who joined holds no copy of the file: no credit, but the same
    # content, and the matrix found from the steps themselves.
    out = tmp_path / "member"
    out.mkdir()
    state, markdown, record = run.export(out)
    check_record(run, state, markdown, record, credited=False)
    mine = tmp_path / "facilitator"
    mine.mkdir()
    _, facilitators, full = run.export(mine, member=0)
    check_record(run, state, facilitators, full)
    for ours, theirs in zip(full["steps"], record["steps"], strict=True):
        assert ours["items"] == theirs["items"]
        assert ours.get("ratings") == theirs.get("ratings")
    assert full["matrices"][0]["cells"] == record["matrices"][0]["cells"]
    (matrix,) = record["matrices"]
    assert matrix["rows"]["step"] == "likelihood" and matrix["columns"]["step"] == "severity"
    placed = sorted(label for row in matrix["cells"] for cell in row for label in cell)
    threats = [label for label in labels_of(state).values() if label.startswith("1.")]
    assert placed == sorted(threats)  # three answers each: every threat is placed
    assert "## Matrices" in markdown


def test_a_broken_template_is_refused_with_its_line(
    peers: list[PeerProcess], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(
        'title = "Ours"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\n'
        'mode = "both"\nkind = "vote"\n',
        encoding="utf-8",
    )
    peers.append(PeerProcess())
    answer = peers[0].cmd(cmd="start", template=str(path), name="Ana")
    assert answer["event"] == "error" and answer["code"] == "template"
    assert answer["message"] == (
        f"{path}, line 7: unknown kind 'vote' in step 'a'; use text, rating or proposal."
    )
    assert peers[0].state()["in_meeting"] is False
