"""Commands packed by hiredis are byte for byte what redis-py's Python packer writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from app.storage.resp import PackedConnection, pack

pytestmark = pytest.mark.unit

PYTHON = Connection()

ARGS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=50),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=40).map(bytearray),
    st.binary(max_size=40).map(memoryview),
)


@given(st.sampled_from(["EVALSHA", "ZADD", "CONFIG GET", b"HSET", b"SCRIPT LOAD"]), st.lists(ARGS))
def test_packed_commands_equal_the_python_packer(command: str | bytes, args: list[object]) -> None:
    expected = b"".join(PYTHON.pack_command(command, *args))
    assert b"".join(pack((command, *args))) == expected
    assert b"".join(PackedConnection().pack_command(command, *args)) == expected


def test_a_large_value_is_packed_whole() -> None:
    value = b"x" * 200_000  # beyond redis-py's buffer cut-off, which splits it into chunks
    assert b"".join(pack(("SET", "k", value))) == b"".join(PYTHON.pack_command("SET", "k", value))


@pytest.mark.parametrize("bad", [True, None, object()], ids=["bool", "none", "object"])
def test_an_argument_redis_py_refuses_is_a_data_error(bad: object) -> None:
    with pytest.raises(DataError):
        PYTHON.pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        pack(("SET", "k", bad))
