"""docs/settings.md is generated from settings.py and must list every setting with its default."""

from __future__ import annotations

from pathlib import Path

from ownbase.settings import Settings
from ownbase.settings_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_settings_doc_is_current() -> None:
    assert DOC.read_text() == render(), "run: python -m ownbase.settings_doc > docs/settings.md"


def test_every_setting_documented_with_a_meaning() -> None:
    text = DOC.read_text()
    for name in Settings.model_fields:
        row = next((line for line in text.splitlines() if f"`OWNBASE_{name.upper()}`" in line), None)
        assert row is not None, name
        assert not row.rstrip().endswith("|  |"), f"OWNBASE_{name.upper()} has no description"
