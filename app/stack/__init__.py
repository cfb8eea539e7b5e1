"""The local stack: a Kafka broker (KRaft, jars from Maven Central) and a Redis server, no Docker.

``nbo stack up | down | status`` call :func:`stack_up`, :func:`stack_down` and
:func:`stack_status`. Importing this package starts nothing and opens no connection.
"""

from __future__ import annotations

from app.stack.errors import StackError, StackPrerequisiteMissing
from app.stack.manager import (
    ServiceStatus,
    StackInfo,
    StackStatus,
    stack_down,
    stack_status,
    stack_up,
)

__all__ = [
    "ServiceStatus",
    "StackError",
    "StackInfo",
    "StackPrerequisiteMissing",
    "StackStatus",
    "stack_down",
    "stack_status",
    "stack_up",
]
