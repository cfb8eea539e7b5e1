"""``nbo token``: clients created with a strong token shown once, listed, revoked."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agents.cli import main
from app.commands.tokens import TokenCommandError, create_client, read_clients, revoke_client
from app.core.access import Scope, parse_tokens, token_hash

pytestmark = pytest.mark.unit


def test_create_appends_the_hash_never_the_token_to_a_file_only_its_owner_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens"
    token = create_client(path, "push", [Scope.OFFERS])
    other = create_client(path, "support", [Scope.DECISIONS, Scope.PROFILE])

    text = path.read_text()
    assert token not in text and other not in text
    assert set(parse_tokens(text)) == {token_hash(token), token_hash(other)}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [c.name for c in read_clients(path)] == ["push", "support"]


def test_a_name_cannot_be_taken_twice(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    create_client(path, "push", [Scope.OFFERS])
    with pytest.raises(TokenCommandError, match="exists"):
        create_client(path, "push", [Scope.PROFILE])


def test_revoke_removes_only_that_client_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# managed by nbo token\n")
    create_client(path, "push", [Scope.OFFERS])
    kept = create_client(path, "support", [Scope.DECISIONS])

    revoke_client(path, "push")

    assert path.read_text().startswith("# managed by nbo token\n")
    assert list(parse_tokens(path.read_text())) == [token_hash(kept)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(TokenCommandError, match="no client"):
        revoke_client(path, "push")


def test_the_command_prints_the_token_alone_on_its_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tokens"
    argv = ["token", "--file", str(path), "create", "push", "--scopes", "offers:read"]
    assert main(argv) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    assert list(parse_tokens(path.read_text())) == [token_hash(token)]

    assert main(["token", "--file", str(path), "list"]) == 0
    assert capsys.readouterr().out == "push\toffers:read\n"
    assert main(["token", "--file", str(path), "create", "x", "--scopes", "all"]) == 2
    assert "unknown scope" in capsys.readouterr().err
    assert main(["token", "--file", str(path), "revoke", "push"]) == 0
    assert read_clients(path) == []
