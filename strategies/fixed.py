"""`fixed`: one configured price."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from strategies.base import Decision, Hold, PricingContext, Reprice


class FixedParams(BaseModel):
    """Parameters of `fixed`."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    price: Decimal = Field(gt=0)
    """The price to hold the ad at (fiat per unit of the asset)."""


class Fixed:
    """Keep the ad at `price`."""

    name: ClassVar[str] = "fixed"
    api_version: ClassVar[int] = 1
    Params: ClassVar[type[BaseModel]] = FixedParams

    def decide(self, ctx: PricingContext, params: FixedParams) -> Decision:
        """Reprice to `params.price` when the ad is elsewhere."""
        if ctx.ad.price == params.price:
            return Hold(f"already at the fixed price {params.price}")
        return Reprice(params.price, f"fixed price {params.price}")
