"""The stack tests manage their own services: no session Kafka/Redis is needed or started."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _services_answer() -> None:
    """Override tests/conftest.py's check: these integration tests start their own stack."""
