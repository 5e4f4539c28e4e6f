"""Build hook: compile the translation catalogs into the package build.

Git holds only the catalogs' sources (``relsec_p2p/locale/*/LC_MESSAGES/
relsec.po``); a wheel or an installed relsec gets the compiled ``.mo`` files
from here, so it shows every language without Babel at run time (README
"Translations"). Everything else about the build is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    """``build_py``, then each ``.po`` compiled to its ``.mo`` in the build."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for source in sorted(Path("relsec_p2p/locale").glob("*/LC_MESSAGES/relsec.po")):
            language = source.parts[-3]
            with source.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            target = Path(self.build_lib) / source.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as handle:
                write_mo(handle, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
