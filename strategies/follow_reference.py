"""`follow_reference`: the reference price plus an absolute margin or times a percentage."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strategies.base import Decision, Hold, PricingContext, Reprice


class FollowReferenceParams(BaseModel):
    """Parameters of `follow_reference`: exactly one of `margin` and `ratio`."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    margin: Decimal | None = None
    """Fiat added to the reference price; negative to go under it (usual for a BUY ad)."""
    ratio: Decimal | None = Field(None, gt=0)
    """Percent of the reference price, as Binance writes floating ratios: "101.5" = 1.5% above."""
    on_derived: Literal["use", "hold"] = "use"
    """With a reference derived from the market (Binance's reference price endpoint is down):
    "use" it (the reason says so) or "hold"."""

    @model_validator(mode="after")
    def _one_of_margin_or_ratio(self) -> FollowReferenceParams:
        if (self.margin is None) == (self.ratio is None):
            raise ValueError("set exactly one of 'margin' or 'ratio'")
        return self


class FollowReference:
    """Price at the reference plus `margin`, or at `ratio` percent of it."""

    name: ClassVar[str] = "follow_reference"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = FollowReferenceParams

    def decide(self, ctx: PricingContext, params: FollowReferenceParams) -> Decision:
        """Reprice relative to `ctx.reference`; hold without one, or on a derived one if asked."""
        ref = ctx.reference
        if ref is None:
            return Hold("no reference price")
        derived = ref.source == "derived"
        if derived and params.on_derived == "hold":
            return Hold(f"reference {ref.price} is derived (on_derived = hold)")
        if params.ratio is not None:
            price = ref.price * params.ratio / 100
            how = f"{_signed(params.ratio - 100)}%"
        else:
            margin = params.margin or Decimal(0)  # the validator guarantees one of the two
            price = ref.price + margin
            how = _signed(margin)
        note = " (derived)" if derived else " (stale: last read)" if ref.stale else ""
        reason = f"reference {ref.price}{note} {how}"
        if ctx.ad.quantize(price) == ctx.ad.price:
            return Hold(f"unchanged: {reason}")
        return Reprice(price, reason, ratio=params.ratio)


def _signed(value: Decimal) -> str:
    """'+1.5', '-0.30', '+0': always signed, never in exponent notation."""
    return f"{'-' if value < 0 else '+'}{abs(value):f}"
