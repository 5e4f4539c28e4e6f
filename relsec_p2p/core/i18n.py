"""The language this laptop shows, and the gettext calls every text goes through.

Rules of this file:
- Run time uses the standard library's ``gettext`` only. The catalogs are
  ``relsec_p2p/locale/<lang>/LC_MESSAGES/relsec.mo``, compiled from the
  ``.po`` files by Babel (README "Translations"); Babel is a maintainer's
  and a build's tool, never imported here.
- ``_`` and ``ngettext`` look the catalog up on every call, so after
  ``set_language`` the next render is in the new language. Texts built at
  import time (tables, help lines) are marked with ``N_`` and translated
  where they are shown; a screen that has already drawn itself registers a
  listener (``on_language_change``) and redraws when told.
- The language is display only: nothing here reaches the log, the state or
  its digest, so laptops showing different languages hold the same meeting.
- English is the source language: it needs no catalog. A language without an
  installed catalog is refused with ``CatalogMissing`` (one plain sentence),
  never shown as English while claiming to be something else.
"""

from __future__ import annotations

import gettext as _gettext
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

from .errors import LocalError

DOMAIN: Final = "relsec"
SOURCE_LANGUAGE: Final = "en"
# The languages the app ships complete catalogs for (tests/unit/test_catalogs.py).
LANGUAGES: Final = ("en", "es", "fr", "pt")
# Each language's name in itself: what a language menu shows.
LANGUAGE_NAMES: Final[dict[str, str]] = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "pt": "Português",
}
LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "locale"
# The environment variables that name a language, in the order gettext
# itself reads them (LANGUAGE may list several, separated by colons).
ENVIRONMENT_VARIABLES: Final = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
_TAG: Final = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


class CatalogMissing(LocalError):
    """A language was asked for whose compiled catalog is not installed."""

    code = "catalog_missing"


_translations: _gettext.NullTranslations = _gettext.NullTranslations()
_language: str = SOURCE_LANGUAGE
_listeners: list[Callable[[str], None]] = []


def primary(tag: str) -> str | None:
    """The primary language of a tag or locale name ("pt_BR.UTF-8" -> "pt"),
    lower case; None for "C", "POSIX" or anything that is not a language."""
    base = tag.split(".", 1)[0].split("@", 1)[0]
    if not _TAG.fullmatch(base):
        return None
    return re.split(r"[-_]", base, maxsplit=1)[0].lower()


def supported(tag: str) -> str | None:
    """The shipped language a tag asks for ("es-419" -> "es"), or None."""
    language = primary(tag)
    return language if language in LANGUAGES else None


def language_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The first shipped language named by LANGUAGE, LC_ALL, LC_MESSAGES or
    LANG (in that order, as gettext reads them); English otherwise."""
    environ = os.environ if environ is None else environ
    for variable in ENVIRONMENT_VARIABLES:
        for tag in environ.get(variable, "").split(":"):
            language = supported(tag.strip())
            if language is not None:
                return language
    return SOURCE_LANGUAGE


def catalog_path(language: str, localedir: Path = LOCALE_DIR) -> Path:
    return localedir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"


def set_language(language: str, *, localedir: Path | None = None) -> str:
    """Show ``language`` from now on; returns the shipped language chosen.

    Raises ``CatalogMissing`` (one sentence) for a language relsec does not
    ship or whose catalog was not compiled; the language shown then stays as
    it was. Listeners are told after the switch."""
    global _translations, _language
    chosen = supported(language)
    if chosen is None:
        raise CatalogMissing(
            _("relsec has no {language!r} translation; choose one of {languages}.").format(
                language=language, languages=", ".join(LANGUAGES)
            )
        )
    if chosen == SOURCE_LANGUAGE:
        translations: _gettext.NullTranslations = _gettext.NullTranslations()
    else:
        folder = LOCALE_DIR if localedir is None else localedir
        path = catalog_path(chosen, folder)
        try:
            with path.open("rb") as handle:
                translations = _gettext.GNUTranslations(handle)
        except OSError:
            raise CatalogMissing(
                _(
                    "The {language} catalog is not installed ({path}); compile the catalogs "
                    "with: pybabel compile -d relsec_p2p/locale -D relsec"
                ).format(language=LANGUAGE_NAMES[chosen], path=path)
            ) from None
    _translations, _language = translations, chosen
    for listener in list(_listeners):
        listener(chosen)
    return chosen


def current_language() -> str:
    return _language


def on_language_change(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(language)`` after every switch; returns the function
    that stops it (a screen calls it when it closes)."""
    _listeners.append(listener)

    def stop() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return stop


def _(message: str) -> str:
    """``message`` in the language shown now."""
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of a message for ``count`` (the language's own plural rule)."""
    return _translations.ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    """``message`` as meant in ``context`` (a digit read aloud, say)."""
    return _translations.pgettext(context, message)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it yet (tables
    built at import); translate it with ``_`` where it is shown."""
    return message


def NC_(context: str, message: str) -> tuple[str, str]:
    """Mark ``message`` for the catalog under ``context`` (translated later
    with ``pgettext(context, message)``)."""
    return context, message


class Labels(Mapping[str, str]):
    """A table of labels marked with ``N_``, read in the language shown now:
    ``LABELS[key]`` translates at the moment it is read."""

    def __init__(self, source: Mapping[str, str]) -> None:
        self._source = dict(source)

    def __getitem__(self, key: str) -> str:
        return _(self._source[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)

    def source(self, key: str) -> str:
        """The English label (what the catalog is keyed by)."""
        return self._source[key]


__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LOCALE_DIR",
    "NC_",
    "N_",
    "SOURCE_LANGUAGE",
    "CatalogMissing",
    "Labels",
    "_",
    "catalog_path",
    "current_language",
    "language_from_environment",
    "ngettext",
    "on_language_change",
    "pgettext",
    "primary",
    "set_language",
    "supported",
]
