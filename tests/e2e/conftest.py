"""Fixtures of the end-to-end tests (plain helpers are in tests/e2e/support.py)."""

from __future__ import annotations

import aiosqlite
import pytest

from tests.e2e.support import inline_sqlite


@pytest.fixture
def inline_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's SQLite in the loop's thread (tests.e2e.support.InlineConnection): no thread
    the stepped clock cannot see (tests driven by tests.e2e.support.Stepper or Lives)."""
    monkeypatch.setattr(aiosqlite, "connect", inline_sqlite)
