"""Which Redis errors mean "not now" (retry the input) and which "never" (isolate it)."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    DataError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from app.core.errors import EventRejected, PermanentError, TransientError, is_transient
from app.ports import PublishUnavailable, StoreUnavailable
from app.storage.lua_script import redis_unavailable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("connection refused"),
        TimeoutError("timed out"),
        BusyLoadingError("Redis is loading the dataset in memory"),
        ReadOnlyError("You can't write against a read only replica."),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        NoPermissionError("this user has no permissions to run the 'evalsha' command"),
        ClusterDownError("The cluster is down"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's failing"),
        ResponseError("BUSY Redis is busy running a script."),
        ResponseError("NOREPLICAS Not enough good replicas to write."),
        ResponseError(
            'Command # 1 (EVALSHA 9dcb 7 nbo:{u:a}:profile) of pipeline caused error: ("The '
            "user executing the script can't run this command or subcommand script: 9dcb, on "
            '@user_script:92.",)'
        ),
        ResponseError("Command # 2 (EVALSHA x) of pipeline caused error: MISCONF snapshots fail"),
        OSError("network is unreachable"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e).split(" ")[0],
)
def test_a_redis_that_cannot_serve_now_is_unavailable(exc: Exception) -> None:
    assert redis_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ResponseError("nbo commit: bad seen score"),
        ResponseError(
            "Command # 3 (EVALSHA x) of pipeline caused error: nbo consent: bad arguments"
        ),
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        DataError("Invalid input of type: 'NoneType'"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e).split(" ")[0],
)
def test_a_call_that_can_never_succeed_is_not_unavailable(exc: Exception) -> None:
    assert not redis_unavailable(exc)


def test_the_hierarchy_has_one_root_and_two_kinds() -> None:
    assert issubclass(StoreUnavailable, TransientError)
    assert issubclass(PublishUnavailable, TransientError)
    assert issubclass(EventRejected, PermanentError)
    assert is_transient(StoreUnavailable("x")) and is_transient(ConnectionResetError())
    assert not is_transient(EventRejected("SchemaViolation", "x"))
    assert not is_transient(AttributeError("a bug met by one record"))
