"""The exceptions of the local stack."""

from __future__ import annotations


class StackError(Exception):
    """The local stack could not do what was asked.

    The message is one paragraph a person can act on: what failed, where its log is, and (for a
    service that failed to start) the last lines of that log.
    """


class StackPrerequisiteMissing(StackError):
    """A tool the stack needs (Java 17+, Maven, redis-server) is missing and cannot be installed.

    The message says what to install.
    """
