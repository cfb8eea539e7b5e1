"""``nbo --help`` speaks to users: what each command does and an example, no code notes."""

from __future__ import annotations

import argparse

import pytest

from agents.cli import build_parser

pytestmark = pytest.mark.unit

CODE_WORDS = (":func:", ":class:", ":mod:", "``", "import", "Handler", "docstring")


def sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_top_help_names_every_command_with_examples_and_no_code_notes() -> None:
    parser = build_parser()
    text = parser.format_help()
    assert not [w for w in CODE_WORDS if w in text], text
    assert "examples:" in text
    for name in sub_parsers(parser):
        assert f"    {name} " in text, name


@pytest.mark.parametrize(
    "name", ["stack", "worker", "produce", "catalog", "tail", "demo", "bench", "simulate"]
)
def test_each_main_command_says_what_it_does_and_shows_an_example(name: str) -> None:
    text = sub_parsers(build_parser())[name].format_help()
    assert not [w for w in CODE_WORDS if w in text], text
    assert f"example:\n  nbo {name}" in text or "example:\n  NBO_" in text, text
