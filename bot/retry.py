"""Backoff as a generator; retryability as one function (bot.binance.errors.is_retryable)."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(
    first: float = 60.0,
    factor: float = 2.0,
    cap: float = 1800.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Delays first, first*factor, ... capped at `cap`, each moved by up to ±jitter of itself."""
    rng = rng or random.Random()
    delay = first
    while True:
        spread = delay * jitter
        yield max(0.0, min(cap * (1 + jitter), delay + rng.uniform(-spread, spread)))
        delay = min(cap, delay * factor)
