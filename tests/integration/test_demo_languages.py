"""``relsec demo --headless --lang es --export FILE``: the whole scripted
meeting, real peer processes on loopback, narrated and recorded in Spanish
(issue 15.5). Needs the compiled catalogs, as an installed relsec has them
(.ci/run compiles them; README "Translations")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_headless_demo_in_spanish_writes_a_spanish_record(tmp_path: Path) -> None:
    record = tmp_path / "acta.md"
    # An English environment: the language must come from --lang.
    environment = {**os.environ, "LANG": "en_GB.UTF-8", "LANGUAGE": "", "LC_ALL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "relsec_p2p", "demo", "--headless", "--lang", "es",
         "--export", str(record)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
        env=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Ana abrió el paso 1: Amenazas" in result.stdout
    assert "La reunión de demostración ha terminado." in result.stdout
    assert "The demo" not in result.stdout
    text = record.read_text(encoding="utf-8")
    assert text.startswith("# Demo: la relación con la financiadora\n")
    for expected in (
        "Acta de una reunión de relsec",
        "## Orden del día",
        "## 1. Amenazas",
        "## 3. ¿Qué tan probable es cada amenaza?",
        "| Sobre qué | Respuestas | Respuesta central | muy improbable |",
        "*interna*: ",  # the template's tag, shown in Spanish
        "Nuestra única relación con quien financia está en manos de una sola persona.",
        "Votación cerrada: **consenso**. Votos: 4 de 4 miembros",
        "  - En voz alta: ",
        "Resumen del estado: `",
    ):
        assert expected in text, expected
    for english in ("## Agenda", "Threats", "Poll closed", "State digest", "*internal*"):
        assert english not in text, english
