"""deploy/redis/users.acl is derived from what the code really calls: every Redis command the
worker, the consent and privacy agents and ``nbo api`` issue (in Python and inside the Lua
scripts) is granted, and nothing else is. A command added to the code without its grant, or
a grant no code uses, fails here, before any deployment meets it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ACL_FILE = ROOT / "deploy" / "redis" / "users.acl"
STORAGE = ROOT / "app" / "storage"
LUA_CALL = re.compile(r"redis\.call\('([A-Za-z]+)'")
# a call on a Redis client or pipeline, as the storage adapters write them
PY_CALL = re.compile(r"\b(?:pipe|client|_client|redis)\.([a-z_]+)\(")
NOT_COMMANDS = {"pipeline", "execute", "aclose", "force_metadata_update", "execute_command"}
# a command sent by name: pipe.execute_command("WAIT", ...)
BY_NAME = re.compile(r"execute_command\(\s*\"([A-Z]+)\"")
RENAMED = {"delete": "del", "script_load": "script|load"}
# redis-py methods run by the lookups (RedisProfileStore: loads, decisions, readiness)
LOOKUP_METHODS = {"_load", "decisions", "ping"}


def granted(user: str) -> set[str]:
    for line in ACL_FILE.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:2] == ["user", user]:
            return {w[1:].lower() for w in words if w.startswith("+")}
    raise AssertionError(f"no user {user} in {ACL_FILE}")


def command(method: str) -> str:
    assert hasattr(aioredis.Redis, method), f"{method} is not a redis-py command method"
    return RENAMED.get(method, method)


def python_commands(paths: list[Path]) -> set[str]:
    found = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        found |= {name.lower() for name in BY_NAME.findall(text)}
        for method in PY_CALL.findall(text):
            if method not in NOT_COMMANDS:
                found.add(command(method))
    return found


def lua_commands() -> set[str]:
    return {
        name.lower()
        for path in sorted(STORAGE.glob("*.lua"))
        for name in LUA_CALL.findall(path.read_text(encoding="utf-8"))
    }


def methods_commands(module: str, methods: set[str]) -> set[str]:
    """The Redis commands issued inside ``methods`` of ``app/storage/<module>``."""
    tree = ast.parse((STORAGE / module).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name in methods:
            for call in ast.walk(node):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                    continue
                method = call.func.attr
                text = f"{ast.unparse(call.func.value)}.{method}("
                if PY_CALL.search(text) and method not in NOT_COMMANDS:
                    found.add(command(method))
    return found


def lookup_commands() -> set[str]:
    return methods_commands("redis_store.py", LOOKUP_METHODS)


def console_commands() -> set[str]:
    """`nbo console` connects as the lookup user too (deploy/k8s/base/console.yaml): the
    Person page reads through the lookups' store methods, the Offers page and its sampler
    through the offer-statistics store's ``read_all``."""
    return lookup_commands() | methods_commands("offer_stats.py", {"read_all"})


def test_the_worker_user_is_granted_exactly_the_commands_the_code_issues() -> None:
    issued = python_commands(sorted(STORAGE.glob("*.py"))) | lua_commands()
    rights = granted("nbo-worker")
    assert sorted(issued - rights) == [], "issued by the code but not granted"
    assert sorted(rights - issued) == [], "granted but issued by no code"


def test_the_lookup_user_is_granted_exactly_what_nbo_api_and_the_console_read() -> None:
    issued = lookup_commands() | console_commands()
    assert methods_commands("offer_stats.py", {"read_all"}) == {"hgetall"}
    assert {"hgetall", "get", "zrange", "zrevrange", "lrange", "ping"} <= issued
    rights = granted("nbo-lookup")
    assert sorted(issued - rights) == [], "read by nbo api but not granted"
    # HGET is granted besides, for channel services that read one field directly
    assert sorted(rights - issued) == ["hget"]


def test_the_lookup_user_can_only_read() -> None:
    line = next(ln for ln in ACL_FILE.read_text().splitlines() if "nbo-lookup" in ln)
    assert "%R~nbo:*" in line.split() and "~nbo:*" not in line.split()
