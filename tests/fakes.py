"""Small injected fakes shared by unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from bot.binance.client import Response
from bot.binance.endpoints import ENDPOINTS
from bot.binance.errors import BinanceError


class FakeClock:
    """A clock whose sleep moves time instead of waiting."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.mono = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


Outcome = Response | BinanceError | Callable[[Mapping[str, Any] | None], Any]


class FakeClient:
    """Stands in for SignedClient: answers from a script per endpoint and logs calls."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.answers: dict[str, Outcome] = {}
        self.calls: list[tuple[str, Mapping[str, Any] | None]] = []
        self.used_weight: dict[str, int] = {}
        self.banned_until = 0.0
        self.paused_until = 0.0
        self.rate_limited = 0  # 429s met (the registry's governor learns from them)

    def ok(self, endpoint: str, data: Any = None) -> None:
        self.answers[endpoint] = Response(
            ENDPOINTS[endpoint], 200, {"code": "000000", "data": data, "success": True}
        )

    def fail(self, endpoint: str, exc: BinanceError) -> None:
        self.answers[endpoint] = exc

    async def call(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Response:
        self.calls.append((endpoint, params))
        answer = self.answers.get(endpoint)
        if answer is None:
            self.ok(endpoint, {})
            answer = self.answers[endpoint]
        if isinstance(answer, BinanceError):
            raise answer
        if isinstance(answer, Response):
            return answer
        return answer(params)

    def restore_ban(self, until: float) -> None:
        self.banned_until = max(self.banned_until, until)

    def sent(self, endpoint: str) -> int:
        return sum(1 for name, _ in self.calls if name == endpoint)
