"""The README documents what a user needs: every setting, the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings

pytestmark = pytest.mark.unit

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme_table(field: str) -> None:
    assert f"| `NBO_{field.upper()}` |" in README


def test_the_readme_shows_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
