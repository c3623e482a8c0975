"""Pricing strategies: the plugin API, competitor filters, the built-ins and the loader.

Strategies are pure: `decide(ctx, params) -> Reprice | Hold`, no I/O, no clock
but `ctx.now`. The pricing engine builds the `PricingContext`, calls every
strategy through `safe_decide`, and enforces its own guards on the result.
"""

from __future__ import annotations

from strategies.base import (
    API_VERSION,
    CompetitorAd,
    Decision,
    Hold,
    OwnAd,
    PricingContext,
    Reference,
    Reprice,
    Side,
    Strategy,
    safe_decide,
)
from strategies.filters import CompetitorFilters, FilterResult
from strategies.fixed import Fixed, FixedParams
from strategies.follow_reference import FollowReference, FollowReferenceParams
from strategies.loader import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    StrategyLoadError,
    StrategyParamsError,
    check_plugin,
    load_strategy,
    validate_params,
)
from strategies.undercut import Undercut, UndercutParams

__all__ = [
    "API_VERSION",
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "CompetitorAd",
    "CompetitorFilters",
    "Decision",
    "FilterResult",
    "Fixed",
    "FixedParams",
    "FollowReference",
    "FollowReferenceParams",
    "Hold",
    "OwnAd",
    "PricingContext",
    "Reference",
    "Reprice",
    "Side",
    "Strategy",
    "StrategyLoadError",
    "StrategyParamsError",
    "Undercut",
    "UndercutParams",
    "check_plugin",
    "load_strategy",
    "safe_decide",
    "validate_params",
]
