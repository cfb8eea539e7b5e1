"""Pure shaping of the console's page data (no I/O): the policy as titled tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.policy.config import ContactPolicy

GENERAL = "general"


@dataclass(frozen=True)
class Section:
    """One table of the Policy page: ``rows`` of (setting, value as text)."""

    title: str
    rows: tuple[tuple[str, str], ...]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if all(isinstance(v, Mapping) and set(v) == {"max", "window_ms"} for v in value):
            return ", ".join(f"{v['max']} per {v['window_ms']}" for v in value) or "none"
        return ", ".join(_text(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


def _rows(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            name = str(key).rstrip("_")  # global_ is "global"
            rows.extend(_rows(f"{prefix}.{name}" if prefix else name, inner))
        return rows
    return [(prefix, _text(value))]


def policy_sections(policy: ContactPolicy) -> list[Section]:
    """The policy's settings grouped by its top-level parts (durations as written in the
    policy file, e.g. ``1d``); scalar settings first, under :data:`GENERAL`."""
    dump = policy.model_dump(mode="json")
    general = [(k, _text(v)) for k, v in dump.items() if not isinstance(v, Mapping)]
    sections = [Section(GENERAL, tuple(general))]
    for key, value in dump.items():
        if isinstance(value, Mapping):
            sections.append(Section(key.replace("_", " "), tuple(_rows("", value))))
    return sections
