"""Redis connections that pack commands in C (hiredis), as redis-py's synchronous client does.

redis-py's asyncio connection packs every command in Python (``pack_command``: one encode and
a few joins per argument); with one commit-script call of ~20 arguments per user that was 6-7 %
of a worker's time. hiredis' ``pack_command`` writes the same bytes (the contract test compares
them for every kind of argument the store sends) in one C call. Arguments hiredis refuses
(``bool``, ``None``, other objects) raise redis-py's ``DataError``, as the Python packer does.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import DataError


def pack(args: tuple[Any, ...]) -> list[bytes]:
    """One command in the Redis protocol, as ``Connection.pack_command`` would write it."""
    first = args[0]
    if isinstance(first, str):
        args = (*first.encode().split(), *args[1:])  # "CONFIG GET" -> two words
    elif b" " in first:
        args = (*first.split(), *args[1:])
    if any(isinstance(a, (bytearray, memoryview)) for a in args):
        args = tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)
    try:
        return [hiredis.pack_command(args)]
    except TypeError as exc:
        raise DataError(str(exc)) from None


class PackedConnection(Connection):
    """A plain TCP connection whose commands hiredis packs."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return pack(args)


class PackedSSLConnection(SSLConnection):
    """A TLS connection whose commands hiredis packs."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return pack(args)
