"""Meeting templates: the built-in ones load and say what the seeds ask for;
a broken file gets one sentence naming the file, the line and the problem."""

from __future__ import annotations

import pathlib
import re
from importlib import resources
from typing import Any

import pytest

from relsec_p2p.core.codec import ENTRY_LIMITS, pack
from relsec_p2p.core.feed import encode_entry
from relsec_p2p.core.fields import parse_agenda, parse_settings
from relsec_p2p.core.identity import Identity
from relsec_p2p.core.state import (
    MAX_AGENDA_BYTES,
    MAX_HELP,
    MAX_NAME,
    MAX_PROMPT,
    MAX_STEPS,
    MAX_TAG,
    MAX_TITLE,
)
from relsec_p2p.core.template import TemplateError, parse_template
from relsec_p2p.templates import builtin_templates, load_template, template_for

BUILT_IN = ["healing", "holistic-security", "movement-values", "relational-security"]


def builtin_text(name: str) -> str:
    return (resources.files("relsec_p2p.templates") / f"{name}.toml").read_text(encoding="utf-8")


# --- the built-in templates ----------------------------------------------------------


def test_every_builtin_template_is_listed_and_loads() -> None:
    infos = builtin_templates()
    assert [info.name for info in infos] == BUILT_IN
    for info in infos:
        template = load_template(info.name)
        assert template.title == info.title and template.title
        assert template.credit and template.summary
        assert not isinstance(parse_agenda(template.agenda), str)
        assert parse_settings(template.settings) == template.settings
        assert template.agenda_size() <= MAX_AGENDA_BYTES


def test_builtin_meeting_create_fits_one_entry_at_worst() -> None:
    """With the longest title and name a person may choose, meeting.create
    still fits in one log entry."""
    identity = Identity.from_seed(b"\x01" * 32)
    for name in BUILT_IN:
        template = load_template(name)
        entry = encode_entry(
            identity,
            mid=bytes(16),
            seq=1,
            prev=None,
            lam=1,
            ts=0,
            kind="meeting.create",
            data={
                "title": "\U0001f600" * MAX_TITLE,
                "name": "\U0001f600" * MAX_NAME,
                "ring": identity.ring_key,
                "agenda": template.agenda,
                "settings": template.settings,
            },
        )
        assert len(entry.envelope) <= ENTRY_LIMITS.max_bytes


def test_relational_security_follows_the_eight_questions() -> None:
    template = load_template("relational-security")
    steps = {step.id: step for step in template.steps}
    order = [step.id for step in template.steps]
    assert order == [
        "threats",
        "impacts",
        "likelihood",
        "severity",
        "options",
        "tradeoffs",
        "capacity",
        "oppression",
        "way",
        "learnings",
    ]
    assert steps["threats"].tags == ("internal", "external")
    assert steps["impacts"].about == "threats" and "threats" in steps["impacts"].links
    assert steps["options"].about == "threats"
    assert steps["tradeoffs"].about == "options" and set(steps["tradeoffs"].tags) == {
        "risk",
        "benefit",
    }
    for rating in ("likelihood", "severity"):
        assert steps[rating].kind == "rating" and steps[rating].mode == "anonymous"
        assert steps[rating].about == "threats" and len(steps[rating].scale) == 5
    assert [(m.rows, m.columns) for m in template.matrices] == [("likelihood", "severity")]
    assert steps["oppression"].about == "options"
    way = steps["way"]
    assert way.kind == "proposal" and way.about == "options" and way.mode != "anonymous"
    # The prompt's example label must point at the options step (step 5).
    assert "[5." in way.prompt and order.index("options") == 4
    assert steps["learnings"].kind == "text"


def test_the_other_builtin_templates_cover_their_sources() -> None:
    healing = [s.id for s in load_template("healing").steps]
    assert healing == ["individual", "organisational", "outside", "resources"]
    holistic = load_template("holistic-security").steps
    assert [s.id for s in holistic[:2]] == ["context", "meaning"]
    assert {"wellbeing", "digital", "physical"} <= {s.id for s in holistic}
    values = load_template("movement-values").steps
    five = ["honesty", "integrity", "loyalty", "accountability", "transformation"]
    assert [s.id for s in values] == [*five, "gaps", "struggles"]
    for step in values[:5]:
        assert step.kind == "rating" and step.mode == "anonymous"
    assert values[5].kind == "text" and values[6].kind == "text"


def test_template_for_recognises_a_builtin_agenda_only_when_unchanged() -> None:
    from fakenet import FakeNetwork

    template = load_template("healing")
    net = FakeNetwork.meeting(2, agenda=template.agenda, settings=template.settings)
    found = template_for(net[0].state)
    assert found is not None and found.name == "healing"
    edited = template.agenda
    edited[0]["prompt"] = "Something else entirely"
    other = FakeNetwork.meeting(2, agenda=edited, settings=template.settings)
    assert template_for(other[0].state) is None


def test_a_groups_own_file_loads_by_path(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ours.toml"
    path.write_text(
        'title = "Our check-in"\n'
        "[[steps]]\n"
        'id = "round"\ntitle = "Round"\nprompt = "How are you?"\nmode = "both"\nkind = "text"\n',
        encoding="utf-8",
    )
    template = load_template(str(path))
    assert template.name == "ours" and template.title == "Our check-in"
    assert template.agenda == [
        {"id": "round", "title": "Round", "prompt": "How are you?", "mode": "both", "kind": "text"}
    ]
    assert template.credit == ""


def test_about_adds_the_link_the_fold_needs() -> None:
    template = parse_template(
        'title = "T"\n'
        '[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "both"\nkind = "text"\n'
        '[[steps]]\nid = "b"\ntitle = "B"\nprompt = "p"\nmode = "both"\nkind = "text"\n'
        'about = "a"\n',
        "t.toml",
    )
    assert template.agenda[1]["links"] == ["a"]


# --- broken templates ----------------------------------------------------------------

TWELVE = "[" + ", ".join(f'"{i}"' for i in range(12)) + "]"
GOOD_STEP = 'id = "a"\ntitle = "A"\nprompt = "What?"\nmode = "both"\nkind = "text"\n'


def broken(text: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        parse_template(text, "ours.toml")
    return caught.value


def assert_one_sentence(error: TemplateError, line: int | None, *words: str) -> None:
    message = str(error)
    expected = "ours.toml" if line is None else f"ours.toml, line {line}:"
    assert message.startswith(expected), message
    assert error.line == line
    assert message.endswith(".") and "\n" not in message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # Not TOML at all: tomllib's position.
        ('title = "T"\n[[steps]]\nid = "a"\ntitle = \n', 4, ("invalid value", "not valid TOML")),
        ('title = "T"\n[[steps]\n', 2, ("not valid TOML",)),
        ('title = "T\n', 1, ("not valid TOML",)),
        # An unknown kind, on the kind's own line.
        (
            'title = "T"\n\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "both"\n'
            'kind = "poll"\n',
            8,
            ("unknown kind 'poll'", "text, rating or proposal"),
        ),
        # A link to a step that does not exist.
        (
            f'title = "T"\n[[steps]]\n{GOOD_STEP}[[steps]]\nid = "b"\ntitle = "B"\n'
            'prompt = "p"\nmode = "both"\nkind = "text"\nlinks = ["a", "threatz"]\n',
            14,
            ("'threatz'", "not a step", "steps: a, b"),
        ),
        (
            f'title = "T"\n[[steps]]\n{GOOD_STEP}about = "nowhere"\n',
            8,
            ("'nowhere'", "not a step"),
        ),
        (
            f'title = "T"\n[[steps]]\n{GOOD_STEP}links = ["a"]\n',
            8,
            ("links to itself",),
        ),
        # Unknown keys (typos) and missing ones.
        (f'title = "T"\n[[steps]]\n{GOOD_STEP}promt = "x"\n', 8, ("unknown key 'promt'",)),
        (f'title = "T"\ncolour = "red"\n[[steps]]\n{GOOD_STEP}', 2, ("unknown key 'colour'",)),
        (
            'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nmode = "both"\nkind = "text"\n',
            2,
            ("prompt of step 'a' is missing",),
        ),
        (f"[[steps]]\n{GOOD_STEP}", 1, ("title of the template is missing",)),
        ('title = "T"\n', None, ("no steps",)),
        (
            f'title = "T"\n[[steps]]\n{GOOD_STEP}[[steps]]\n{GOOD_STEP}',
            9,
            ("two steps have the id 'a'",),
        ),
        ('title = "T"\n[[steps]]\nid = "a b"\n', 3, ("needs an id",)),
        # Modes, scales and tags.
        (
            'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "secret"\n'
            'kind = "text"\n',
            6,
            ("unknown mode 'secret'",),
        ),
        (
            'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "both"\n'
            'kind = "rating"\n',
            7,
            ("needs a scale",),
        ),
        (
            'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "both"\n'
            'kind = "rating"\nscale = ["only"]\n',
            8,
            ("at least 2 labels",),
        ),
        (
            'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "both"\n'
            f'kind = "rating"\nscale = {TWELVE}\n',
            8,
            ("12 labels", "at most 11"),
        ),
        (f'title = "T"\n[[steps]]\n{GOOD_STEP}scale = ["a", "b"]\n', 8, ("only rating steps",)),
        (
            'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "p"\nmode = "both"\n'
            'kind = "rating"\nscale = ["x", "y"]\ntags = ["t"]\n',
            9,
            ("only text steps offer tags",),
        ),
        (f'title = "T"\n[[steps]]\n{GOOD_STEP}tags = ["x", "x"]\n', 8, ("same label twice",)),
        (
            f'title = "T"\n[[steps]]\n{GOOD_STEP}tags = ["{"t" * 33}"]\n',
            8,
            ("1 to 32 characters",),
        ),
        # Settings are checked with the fold's own rules, at the key's line.
        (
            f'title = "T"\n[settings]\nquorum_pct = 150\n[[steps]]\n{GOOD_STEP}',
            3,
            ("quorum_pct",),
        ),
        (
            f'title = "T"\n[settings]\nquorum = 50\n[[steps]]\n{GOOD_STEP}',
            3,
            ("unknown setting 'quorum'",),
        ),
        (
            f'title = "T"\n[settings]\nattribute_named = "yes"\n[[steps]]\n{GOOD_STEP}',
            3,
            ("attribute_named",),
        ),
        (f'format = 2\ntitle = "T"\n[[steps]]\n{GOOD_STEP}', 1, ("format 2",)),
        # A matrix must cross two rating steps about the same step.
        (
            f'title = "T"\n[[steps]]\n{GOOD_STEP}[[matrix]]\ntitle = "M"\nrows = "a"\n'
            'columns = "a"\n',
            10,
            ("rows must name a rating step",),
        ),
    ],
)
def test_broken_template_names_file_line_and_problem(
    text: str, line: int | None, words: tuple[str, ...]
) -> None:
    assert_one_sentence(broken(text), line, *words)


def test_too_long_a_prompt_names_its_line() -> None:
    long_prompt = "x" * 2001
    text = (
        f'title = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "{long_prompt}"\n'
        'mode = "both"\nkind = "text"\n'
    )
    assert_one_sentence(broken(text), 5, "prompt of step 'a'", "2001 characters")


def test_a_template_too_big_for_one_entry_says_so() -> None:
    """Each field within its limit, but all together over the entry's budget:
    the message names the longest step's line and what to do."""
    steps = []
    for i in range(20):
        help_text = ("h" * 3900) if i != 7 else ("h" * 3990)
        steps.append(
            f'[[steps]]\nid = "s{i}"\ntitle = "S"\nprompt = "{"p" * 1900}"\n'
            f'help = "{help_text}"\nmode = "both"\nkind = "text"\n'
        )
    text = 'title = "T"\n' + "".join(steps)
    error = broken(text)
    header_line = 2 + 7 * 7
    assert_one_sentence(
        error, header_line, "64,000", "shorten prompts and help", "'s7'", "split the agenda"
    )


def _agenda_of(size: int) -> list[dict[str, Any]]:
    """A valid agenda whose encoding is exactly ``size`` bytes: steps with
    every text at its character limit in 4-byte characters, then one step
    whose help and prompt take up the bytes left."""
    wide = "\U0001f600"
    steps = [
        {
            "id": f"{i:02d}" + wide * (MAX_TAG - 2),
            "title": wide * MAX_TITLE,
            "prompt": wide * MAX_PROMPT,
            "help": wide * MAX_HELP,
            "mode": "both",
            "kind": "text",
        }
        for i in range(MAX_STEPS - 1)
    ]
    filler = {"id": "last", "title": "t", "prompt": "p", "help": "", "mode": "both", "kind": "text"}
    steps.append(filler)
    while len(pack(steps)) > size:
        del steps[-2]
    for key, limit in (("help", MAX_HELP), ("prompt", MAX_PROMPT)):
        for char in (wide, "h"):
            room = min((size - len(pack(steps))) // len(char.encode()), limit - len(filler[key]))
            filler[key] += char * max(room, 0)
            while len(pack(steps)) > size:  # a str header grew by a byte
                filler[key] = filler[key][:-1]
    assert len(pack(steps)) == size
    return steps


def test_the_largest_agenda_the_limits_allow_fits_one_entry() -> None:
    """SPEC §6.3: an agenda of MAX_AGENDA_BYTES, with the longest title and
    name, the largest settings and the largest clocks, still makes a
    meeting.create within the entry limits (Appendix B, item 7)."""
    agenda = _agenda_of(MAX_AGENDA_BYTES)
    assert not isinstance(parse_agenda(agenda), str)
    identity = Identity.from_seed(b"\x01" * 32)
    entry = encode_entry(
        identity,
        mid=bytes(16),
        seq=1,
        prev=None,
        lam=(1 << 53) - 1,
        ts=(1 << 53) - 1,
        kind="meeting.create",
        data={
            "title": "\U0001f600" * MAX_TITLE,
            "name": "\U0001f600" * MAX_NAME,
            "ring": identity.ring_key,
            "agenda": agenda,
            "settings": {
                "anon_threshold": 256,
                "attribute_named": True,
                "quorum_pct": 100,
                "stand_aside_limit": 256,
            },
        },
    )
    assert len(entry.body) <= ENTRY_LIMITS.max_bin
    # What the SPEC states: 1 328 bytes besides the agenda at worst (a first
    # entry names no dependencies), 80 to spare.
    assert len(entry.body) == MAX_AGENDA_BYTES + 1328 == ENTRY_LIMITS.max_bin - 80


def test_an_agenda_one_byte_over_the_total_is_refused_by_the_fold() -> None:
    assert not isinstance(parse_agenda(_agenda_of(MAX_AGENDA_BYTES)), str)
    assert parse_agenda(_agenda_of(MAX_AGENDA_BYTES + 1)) == (
        f"the agenda takes {MAX_AGENDA_BYTES + 1} bytes, at most {MAX_AGENDA_BYTES}"
    )


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes(b'title = "T"\n[[steps]]\nid = "a"\ntitle = "Caf\xe9"\n')
    with pytest.raises(TemplateError) as caught:
        load_template(str(path))
    assert str(caught.value) == f"{path}, line 4: the file is not UTF-8 text; save it as UTF-8."


def test_missing_file_and_unknown_name_are_plain(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TemplateError, match=r"no such file; check the path\.$"):
        load_template(str(tmp_path / "nope.toml"))
    with pytest.raises(TemplateError) as caught:
        load_template("relational")
    message = str(caught.value)
    assert message.startswith("relational: there is no built-in template of that name")
    assert all(name in message for name in BUILT_IN)


def test_each_builtin_broken_one_way_reports_the_right_line() -> None:
    """The line finder works on the real files, not only on tiny examples:
    break the kind of each step of a built-in template in turn."""
    text = builtin_text("relational-security")
    kind_lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.startswith("kind")]
    assert len(kind_lines) == 10
    for number in kind_lines:
        lines = text.splitlines()
        lines[number - 1] = 'kind = "vote"'
        error = broken("\n".join(lines))
        assert error.line == number
        assert re.search(r"unknown kind 'vote' in step '[a-z]+'", str(error))


def test_a_proposal_step_of_mode_both_may_offer_anonymous_polls_first() -> None:
    template = load_template("relational-security")
    way = template.step("way")
    assert way is not None and way.poll == "anonymous"
    assert all(step.poll == "named" for step in template.steps if step.id != "way")


def test_poll_is_refused_where_there_is_no_choice_to_make() -> None:
    text = (
        'format = 1\ntitle = "T"\n[[steps]]\nid = "a"\ntitle = "A"\nprompt = "P"\n'
        'mode = "anonymous"\nkind = "proposal"\npoll = "anonymous"\n'
    )
    with pytest.raises(TemplateError, match="only a proposal step of mode both"):
        parse_template(text, "own.toml")
    with pytest.raises(TemplateError, match="poll in step 'a' is named or anonymous"):
        parse_template(text.replace('poll = "anonymous"', 'poll = "secret"'), "own.toml")
