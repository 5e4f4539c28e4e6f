"""Every member in their own language (issue 15): the language chosen, the
record in it, the safety number read aloud in it, templates in several
languages, and one meeting (one digest) whatever each laptop shows."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from test_record import full_meeting

from relsec_p2p.cli import language_argument
from relsec_p2p.core.fields import parse_agenda
from relsec_p2p.core.i18n import (
    LANGUAGES,
    LOCALE_DIR,
    CatalogMissing,
    _,
    current_language,
    language_from_environment,
    ngettext,
    on_language_change,
    set_language,
)
from relsec_p2p.core.record import render_json, render_markdown
from relsec_p2p.core.safety import spoken_safety_number
from relsec_p2p.core.template import TemplateError, parse_template, step_in_language
from relsec_p2p.core.wording import CHOICE_LABELS, REFUSAL_SENTENCES
from relsec_p2p.templates import builtin_templates, load_template, template_for

SAFETY = "12345 67890 11111 22222"
PASSPHRASE = "correct horse battery"  # noqa: S105 -- a test save's


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalogs as they are in the tree, compiled here (not whatever
    .mo files an earlier build left beside them)."""
    folder = tmp_path_factory.mktemp("locale")
    for language in LANGUAGES[1:]:
        with (LOCALE_DIR / language / "LC_MESSAGES" / "relsec.po").open("rb") as handle:
            catalog = read_po(handle, locale=language)
        target = folder / language / "LC_MESSAGES"
        target.mkdir(parents=True)
        with (target / "relsec.mo").open("wb") as handle:
            write_mo(handle, catalog)
    return folder


Speak = Callable[[str], str]


@pytest.fixture
def speak(compiled: Path) -> Iterator[Speak]:
    """``speak("es")`` switches this process's language; English after the test."""

    def switch(language: str) -> str:
        return set_language(language, localedir=compiled)

    yield switch
    set_language("en")


# --- choosing the language ------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en"),
        ({"LANG": "es_ES.UTF-8"}, "es"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8", "LC_ALL": "pt_BR.UTF-8"}, "pt"),
        ({"LANG": "fr_FR.UTF-8", "LC_ALL": "pt_BR", "LANGUAGE": "de:es"}, "es"),
        ({"LC_MESSAGES": "fr_CA"}, "fr"),
    ],
)
def test_language_from_environment(environ: dict[str, str], expected: str) -> None:
    assert language_from_environment(environ) == expected


def test_lang_argument_is_read_before_the_parser() -> None:
    assert language_argument(["--lang", "es", "demo"]) == "es"
    assert language_argument(["export", "--lang=pt", "--resume", "x"]) == "pt"
    assert language_argument(["demo", "--", "--lang", "fr"]) is None
    assert language_argument(["demo"]) is None


def test_switching_at_run_time_tells_listeners(speak: Speak) -> None:
    heard: list[str] = []
    stop = on_language_change(heard.append)
    try:
        assert _("Only the facilitator can do that.") == "Only the facilitator can do that."
        speak("fr")
        assert current_language() == "fr"
        assert _("Only the facilitator can do that.") == (
            "Seule la personne qui facilite peut faire cela."
        )
        assert CHOICE_LABELS["stand_aside"] == "se mettre en retrait"  # tables read now
        speak("es")
        assert CHOICE_LABELS["stand_aside"] == "hacerse a un lado"
    finally:
        stop()
    speak("pt")  # no longer listening
    assert heard == ["fr", "es"]


def test_an_unknown_language_is_refused_and_nothing_changes(speak: Speak) -> None:
    speak("es")
    with pytest.raises(CatalogMissing, match="en, es, fr, pt"):
        set_language("de")
    with pytest.raises(CatalogMissing, match="no está instalado"):  # said in Spanish
        set_language("fr", localedir=Path("/nonexistent"))
    assert current_language() == "es"
    assert _("That step is not open.") == "Ese paso no está abierto."


@pytest.mark.parametrize(
    ("language", "one", "two"),
    [("en", "1 member", "2 members"), ("es", "1 miembro", "2 miembros"),
     ("fr", "1 membre", "2 membres"), ("pt", "1 membro", "2 membros")],
)  # fmt: skip
def test_plurals(speak: Speak, language: str, one: str, two: str) -> None:
    speak(language)
    assert ngettext("{n} member", "{n} members", 1).format(n=1) == one
    assert ngettext("{n} member", "{n} members", 2).format(n=2) == two


def test_every_refusal_has_a_sentence_in_every_language(speak: Speak) -> None:
    from relsec_p2p.core.refusals import Refusal

    assert set(REFUSAL_SENTENCES) == set(Refusal)
    english = {code: REFUSAL_SENTENCES[code] for code in Refusal}
    for language in ("es", "fr", "pt"):
        speak(language)
        for code in Refusal:
            assert REFUSAL_SENTENCES[code] != english[code], (language, code)


# --- the safety number read aloud --------------------------------------------------


@pytest.mark.parametrize(
    ("language", "first_group"),
    [
        ("en", "one two three four five"),
        ("es", "uno dos tres cuatro cinco"),
        ("fr", "un deux trois quatre cinq"),
        ("pt", "um dois três quatro cinco"),
    ],
)
def test_safety_number_read_aloud_in_groups(speak: Speak, language: str, first_group: str) -> None:
    speak(language)
    spoken = spoken_safety_number(SAFETY)
    groups = spoken.split(" / ")
    assert groups[0] == first_group
    assert [len(group.split()) for group in groups] == [5, 5, 5, 5]  # grouped as written
    assert len(set(groups[2].split())) == 1 and len(set(groups[3].split())) == 1
    assert groups[2] != groups[3]


def test_digit_words_are_ten_different_words_in_each_language(speak: Speak) -> None:
    for language in LANGUAGES:
        speak(language)
        words = spoken_safety_number("01234 56789").replace(" / ", " ").split()
        assert len(set(words)) == 10, (language, words)


# --- templates in several languages --------------------------------------------------

MULTI = """
languages = ["en", "es", "fr"]
title = "Check-in"
[es]
title = "Ronda de inicio"
[[steps]]
id = "how"
title = "How are you?"
prompt = "How are you today?"
help = "A word or two."
mode = "both"
kind = "text"
tags = ["tired", "fine"]
[steps.es]
title = "¿Cómo estás?"
prompt = "¿Cómo estás hoy?"
tags = ["cansada", "bien"]
[steps.fr]
prompt = "Comment allez-vous aujourd'hui ?"
[[steps]]
id = "rate"
title = "Energy"
prompt = "How much energy do you have?"
mode = "anonymous"
kind = "rating"
scale = ["low", "high"]
[steps.es]
scale = ["poca", "mucha"]
"""

ONE_LANGUAGE = """
title = "Check-in"
[[steps]]
id = "how"
title = "How are you?"
prompt = "How are you today?"
mode = "both"
kind = "text"
"""


def test_a_one_language_template_still_loads_as_before() -> None:
    template = parse_template(ONE_LANGUAGE, "ours.toml")
    assert template.languages == ()
    assert "translations" not in template.agenda[0]
    assert template.in_language("es") == template


def test_each_language_shows_its_text_and_falls_back_to_the_first() -> None:
    template = parse_template(MULTI, "ours.toml")
    assert template.languages == ("en", "es", "fr")
    es, fr, de = (template.in_language(lang) for lang in ("es", "fr", "de"))
    assert (es.title, es.steps[0].title, es.steps[0].prompt) == (
        "Ronda de inicio",
        "¿Cómo estás?",
        "¿Cómo estás hoy?",
    )
    assert es.steps[0].help == "A word or two."  # not given in es: the first language's
    assert es.steps[0].tags == ("cansada", "bien") and es.steps[1].scale == ("poca", "mucha")
    assert (fr.title, fr.steps[0].title) == ("Check-in", "How are you?")
    assert fr.steps[0].prompt == "Comment allez-vous aujourd'hui ?"
    assert de == template  # a language the template lacks: its first language
    assert template.in_language("es-MX").steps[0].title == "¿Cómo estás?"
    # The stored tag is whichever label was sent; each reader sees their own.
    assert template.steps[0].tag_label("tired", "es") == "cansada"
    assert template.steps[0].tag_label("cansada", "en") == "tired"
    assert template.steps[0].tag_label("typed by hand", "es") == "typed by hand"


def test_the_agenda_carries_every_language_and_the_fold_reads_it() -> None:
    template = parse_template(MULTI, "ours.toml")
    agenda = template.agenda
    assert agenda[0]["translations"] == {
        "es": {"title": "¿Cómo estás?", "prompt": "¿Cómo estás hoy?"},
        "fr": {"prompt": "Comment allez-vous aujourd'hui ?"},
    }  # never the guide or the tags: those stay on this laptop
    steps = parse_agenda(agenda)
    assert not isinstance(steps, str)
    shown = step_in_language(steps[1], "es")
    assert shown.scale == ["poca", "mucha"] and steps[1].scale == ["low", "high"]
    assert step_in_language(steps[0], "pt") is steps[0]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ('languages = ["en", "es", "fr"]', "unknown key 'es'"),  # no languages line
        ('scale = ["poca", "mucha"]', "has 1 labels and the first language's has 2"),
        ('[steps.es]\ntitle = "¿Cómo estás?"', "unknown key 'colour'"),
        ('languages = ["en", "es", "fr"]', "same language twice"),
        ('languages = ["en", "es", "fr"]', "also a key's name"),
    ],
)
def test_mistakes_in_translations_name_the_line(change: str, problem: str) -> None:
    replacement = {
        "unknown key 'es'": "",
        "has 1 labels and the first language's has 2": 'scale = ["poca"]',
        "unknown key 'colour'": '[steps.es]\ncolour = "red"\ntitle = "¿Cómo estás?"',
        "same language twice": 'languages = ["en", "es", "es", "fr"]',
        "also a key's name": 'languages = ["en", "es", "fr", "id"]',
    }[problem]
    with pytest.raises(TemplateError, match=re.escape(problem)) as caught:
        parse_template(MULTI.replace(change, replacement, 1), "ours.toml")
    assert caught.value.line is not None


@pytest.mark.parametrize("name", [info.name for info in builtin_templates()])
def test_builtin_templates_are_complete_in_four_languages(name: str) -> None:
    template = load_template(name)
    assert template.languages == ("en", "es", "fr", "pt")
    assert set(template.texts) == {"es", "fr", "pt"}
    for language in ("es", "fr", "pt"):
        text = template.texts[language]
        assert text.title and text.summary and text.credit, (name, language)
        for step in template.steps:
            given = step.texts[language]
            assert given.title and given.prompt, (name, step.id, language)
            assert bool(given.help) == bool(step.help), (name, step.id, language)
            assert bool(given.guide) == bool(step.guide), (name, step.id, language)
            assert len(given.scale) == len(step.scale), (name, step.id, language)
            assert len(given.tags) == len(step.tags), (name, step.id, language)
        for matrix in template.matrices:
            assert matrix.titles[language], (name, language)
    # Four languages fit one meeting.create with room to spare (SPEC §6.3).
    assert template.agenda_size() < 32_000


# --- one meeting, whatever each laptop shows ------------------------------------------


def test_equal_digests_whatever_language_each_laptop_shows(speak: Speak) -> None:
    """Two laptops of one meeting, one showing Spanish and one English: the
    same state and digest, each record in its own language, what members
    wrote left as written on both."""
    meeting, _unused = full_meeting(attribute_named=True)
    spanish_laptop, english_laptop = meeting.net[0], meeting.net[1]
    assert spanish_laptop.state.steps[0].translations["es"]["title"] == "Amenazas"
    speak("es")
    spanish = render_markdown(spanish_laptop.state, safety_number=SAFETY, template=meeting.template)
    spanish_json = render_json(
        spanish_laptop.state, safety_number=SAFETY, template=meeting.template
    )
    spanish_digest = spanish_laptop.digest()
    speak("en")
    english = render_markdown(english_laptop.state, safety_number=SAFETY, template=meeting.template)
    assert spanish_digest == english_laptop.digest()
    assert spanish_json["state_digest"] == spanish_digest.hex()
    assert f"`{spanish_digest.hex()}`" in spanish and f"`{spanish_digest.hex()}`" in english
    assert "## 1. Amenazas" in spanish and "## 1. Threats" in english
    assert "## Orden del día" in spanish and "## Agenda" in english
    assert "The funder relationship rests on one member" in spanish  # as written
    assert "*interna*" in spanish and "*internal*" in english  # the tag in each language
    assert "En voz alta: uno dos tres cuatro cinco / seis" in spanish
    assert "Threats" not in spanish and "Amenazas" not in english
    assert spanish_json["language"] == "es"


def test_a_joined_member_finds_the_builtin_template_of_a_multilingual_agenda() -> None:
    meeting, _unused = full_meeting(attribute_named=True)
    for laptop in meeting.net:
        # relational(...) changes modes, so this is not the built-in's agenda;
        # the built-in's own agenda round-trips through the fold and matches.
        steps = parse_agenda(load_template("relational-security").agenda)
        assert not isinstance(steps, str)
        laptop.state.steps = steps
        assert template_for(laptop.state) is load_template("relational-security")


def test_relsec_export_lang_writes_the_record_in_that_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``relsec export --lang es``: the CLI end to end on a real save, with
    the catalogs compiled where an installed relsec has them (.ci/run and the
    package build compile them; README "Translations")."""
    from relsec_p2p.cli import main
    from relsec_p2p.core.save import payload_of, seal_save

    meeting, _unused = full_meeting(attribute_named=True)
    laptop = meeting.net[0]
    save = tmp_path / "meeting.save"
    save.write_bytes(seal_save(payload_of(laptop, template=meeting.template.text), PASSPHRASE))
    monkeypatch.setenv("RELSEC_PASSPHRASE", PASSPHRASE)
    markdown, data = tmp_path / "acta.md", tmp_path / "acta.json"
    try:
        status = main(
            ["export", "--lang", "es", "--resume", str(save), "--markdown", str(markdown),
             "--json", str(data)]
        )  # fmt: skip
    finally:
        set_language("en")
    assert status == 0
    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Relational security\n")  # the meeting's own title, as written
    assert "Acta de una reunión de relsec" in text and "## 1. Amenazas" in text
    assert "- **1.1** *interna*: The funder relationship rests on one member — Bo" in text
    assert f"Resumen del estado: `{laptop.digest().hex()}`" in text
    assert '"language": "es"' in data.read_text(encoding="utf-8")


def test_relsec_lang_without_a_catalog_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    from relsec_p2p.cli import main

    assert main(["--lang", "de", "export", "--resume", "x", "--markdown", "y"]) == 2
    assert capsys.readouterr().err == (
        "relsec: relsec has no 'de' translation; choose one of en, es, fr, pt.\n"
    )
    assert current_language() == "en"


def test_the_builtin_list_is_in_the_language_shown(speak: Speak) -> None:
    speak("pt")
    titles = {info.name: info.title for info in builtin_templates()}
    assert titles["healing"] == "Cura e reparação"
    speak("en")
    assert {info.name: info.title for info in builtin_templates()}["healing"] == (
        "Healing and repair"
    )


# --- the fold's check of translations (SPEC §6.3) ----------------------------------------

STEP = {"id": "s", "title": "T", "prompt": "P", "mode": "named", "kind": "rating",
        "scale": ["a", "b"]}  # fmt: skip


@pytest.mark.parametrize(
    ("translations", "valid"),
    [
        ({}, True),
        ({"es": {}}, True),
        ({"pt-BR": {"title": "T", "prompt": "P", "help": "", "scale": ["x", "y"]}}, True),
        ({"es": {"scale": ["x"]}}, False),  # fewer labels than the step's scale
        ({"es": {"scale": ["x", "y", "z"]}}, False),
        ({"es": {"title": ""}}, False),  # text(200) is not empty
        ({"es": {"title": "x" * 201}}, False),
        ({"es": {"prompt": " \t"}}, False),
        ({"es": {"help": "x" * 4001}}, False),
        ({"es": {"guide": "for the facilitator"}}, False),  # never in the agenda
        ({"es": {"tags": ["a"]}}, False),
        ({"e": {}}, False),  # a tag has 2 to 16 characters
        ({"x" * 17: {}}, False),
        ({"1es": {}}, False),  # starts with a letter
        ({"es_ES": {}}, False),  # hyphens only
        ({"é": {}}, False),  # ASCII only: no rule reads a Unicode table
        ({"es": "Amenazas"}, False),
        ({f"l{i:02d}": {} for i in range(17)}, False),  # at most 16 languages
        ({f"l{i:02d}": {} for i in range(16)}, True),
        ([], False),
        ("es", False),
        ({b"es": {}}, False),
        ({"es": {"title": b"T"}}, False),
        ({"es": {"scale": "ab"}}, False),
        ({"es": {"scale": [1, 2]}}, False),
    ],
)
def test_the_fold_checks_translations(translations: object, valid: bool) -> None:
    step = {**STEP, "translations": translations}
    parsed = parse_agenda([step])
    assert isinstance(parsed, list) == valid, parsed
    if valid:
        assert isinstance(parsed, list) and parsed[0].translations == translations


def test_a_text_step_has_no_translated_scale() -> None:
    step = {"id": "s", "title": "T", "prompt": "P", "mode": "both", "kind": "text"}
    assert isinstance(parse_agenda([{**step, "translations": {"es": {"title": "T"}}}]), list)
    assert isinstance(parse_agenda([{**step, "translations": {"es": {"scale": []}}}]), str)


def test_a_bad_peer_address_is_one_sentence_in_the_language_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from relsec_p2p.cli import main

    try:
        assert main(["--lang", "es", "display", "--peer", "no-port-here"]) == 2
    finally:
        set_language("en")
    assert capsys.readouterr().err == (
        "relsec: --peer 'no-port-here' no es HOST:PUERTO, por ejemplo 10.0.0.5:7777.\n"
    )


def test_spec_states_the_measured_size_of_four_languages() -> None:
    """SPEC §6.3 names the size of the largest built-in agenda in four
    languages; it must be the size the loader measures."""
    spec = (Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md").read_text("utf-8")
    size = f"{load_template('relational-security').agenda_size():,}".replace(",", " ")
    assert f"`relational-security`, takes {size} bytes in en, es, fr and pt" in spec
