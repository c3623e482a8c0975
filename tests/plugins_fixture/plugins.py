"""Fake strategy plugins for the loader tests: one good, the rest each wrong in one way."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from strategies.base import Decision, Hold, PricingContext


class GoodParams(BaseModel):
    """Params of the good plugin."""

    level: int = 1


class Good:
    """A well-formed plugin."""

    name: ClassVar[str] = "good"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = GoodParams

    def decide(self, ctx: PricingContext, params: Any) -> Decision:
        """Always hold."""
        return Hold("good")


class NoParams:
    name = "no_params"
    api_version = 1

    def decide(self, ctx: PricingContext, params: Any) -> Decision:
        return Hold("x")


class NoName:
    api_version = 1
    Params = GoodParams

    def decide(self, ctx: PricingContext, params: Any) -> Decision:
        return Hold("x")


class NullName(Good):
    name = None  # type: ignore[assignment]


class EmptyName(Good):
    name = ""


class NoVersion:
    name = "no_version"
    Params = GoodParams

    def decide(self, ctx: PricingContext, params: Any) -> Decision:
        return Hold("x")


class FutureVersion(Good):
    api_version = 2


class TextVersion(Good):
    api_version = "1"  # type: ignore[assignment]


class DictParams(Good):
    Params = dict  # type: ignore[assignment]


class DecideNotCallable(Good):
    decide = 5  # type: ignore[assignment]


class NoDecide:
    name = "no_decide"
    api_version = 1
    Params = GoodParams


class Bare:
    """Declares nothing at all."""


class NeedsArguments(Good):
    def __init__(self, client: object) -> None:
        self.client = client


class DecideTakesOnlyCtx(Good):
    def decide(self, ctx: PricingContext) -> Decision:  # type: ignore[override]
        return Hold("x")


instance = Good()

namespace = type("namespace", (), {"Inner": Good})
