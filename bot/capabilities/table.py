"""The tables behind the capability registry: the bot's features, the endpoints each needs
(with alternatives, the first source primary), and the cheapest call that probes each endpoint.
Data that code queries, not branches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.binance.p2p import money
from bot.clock import Clock

HISTORY_PROBE_MS = 86_400_000  # the order-history probe reads the last day, a fixed window


class Hinted(Protocol):
    """What a probe needs to build its parameters: ids and the market learned so far, and
    the clock (a time window is fixed when the probe is built)."""

    hints: dict[str, str]
    clock: Clock


ProbeParams = Callable[[Hinted], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """Re-probing and flap damping (the `[capabilities]` table of the TOML file)."""

    first: float = 60.0
    factor: float = 2.0
    cap: float = 1800.0
    jitter: float = 0.2
    flap_window: float = 3600.0
    flap_threshold: int = 3  # more flaps than this in the window ...
    trust_after: int = 3  # ... and this many consecutive successes are needed to trust it again


@dataclass(frozen=True, slots=True)
class Source:
    """One way to provide a capability: all its endpoints must work."""

    name: str
    endpoints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CapabilitySpec:
    """A feature of the bot, its sources (the first is primary) and what losing it costs."""

    name: str
    sources: tuple[Source, ...]
    does: str
    without: str  # what the bot does when the capability is disabled
    degraded: str = ""  # what it does on an alternative source

    def says(self, state: str) -> str:
        """The sentence for a state: what it does (enabled), on an alternative (degraded), without it."""
        if state == "enabled":
            return self.does
        if state == "degraded":
            return self.degraded or f"{self.does}, on an alternative source"
        return self.without


CAPABILITIES: dict[str, CapabilitySpec] = {
    spec.name: spec
    for spec in (
        CapabilitySpec("market", (Source("search", ("search",)),),
                       "reads competitors' ads for each market",
                       "no repricing against competitors: ads hold their price"),
        CapabilitySpec("reference_price",
                       (Source("exchange", ("reference_price",)), Source("derived", ("search",))),
                       "reads Binance's reference price",
                       "no reference price: follow_reference ads hold, the reference band is off",
                       "the reference is derived from the median of the top filtered ads"),
        CapabilitySpec("my_ads", (Source("my_ads", ("my_ads",)),),
                       "reads the merchant's own ads",
                       "ads configured by asset/fiat/side cannot be found; known ads keep the "
                       "price the bot last set"),
        CapabilitySpec("repricing", (Source("update_ad", ("update_ad",)),),
                       "changes the price of the merchant's ads",
                       "decisions are computed and recorded but not applied"),
        CapabilitySpec("orders",
                       (Source("summary+list", ("order_summary", "list_orders")),
                        Source("list", ("list_orders",)),
                        Source("summary", ("order_summary",))),
                       "follows every order and its status",
                       "orders are not followed: no greetings, no alerts on payment",
                       "orders are followed with one of the two order endpoints"),
        CapabilitySpec("chat",
                       (Source("websocket", ("chat_credential",)), Source("rest", ("chat_messages",))),
                       "reads and sends order chat messages",
                       "messages to counterparties wait in the outbox; incoming ones are not read",
                       "incoming messages are read over REST; outgoing ones wait in the outbox"),
        CapabilitySpec("merchant_state",
                       (Source("business", ("merchant_detail", "start_business", "close_business")),),
                       "reads the merchant's state and opens or closes the business on schedule",
                       "schedules switch the ads one by one (ads/updateStatus); the merchant's "
                       "own state is left as it is"),
        CapabilitySpec("categories", (Source("categories", ("categories",)),),
                       "reads the ad categories open to the account",
                       "nothing essential: informational only"),
    )
}


def _market(reg: Hinted) -> tuple[str, str]:
    return reg.hints.get("asset", "USDT"), reg.hints.get("fiat", "USD")


def _last_day(clock: Clock) -> dict[str, Any]:
    """Order history in a fixed window (the last day): never an open end, which is "now"."""
    end = int(clock.time() * 1000)
    return {"tradeType": "SELL", "startTimestamp": end - HISTORY_PROBE_MS, "endTimestamp": end,
            "page": 1, "rows": 1}


def _with(key: str, build: Callable[[str], dict[str, Any]]) -> ProbeParams:
    def params(reg: Hinted) -> Mapping[str, Any] | None:
        value = reg.hints.get(key)
        return build(value) if value else None

    return params


# The cheapest read-only call that exercises each endpoint. Writes are in WRITE_PROBES.
PROBES: dict[str, ProbeParams] = {
    "search": lambda r: {"asset": _market(r)[0], "fiat": _market(r)[1], "tradeType": "BUY",
                         "page": 1, "rows": 1},
    "reference_price": lambda r: {"assets": [_market(r)[0]], "fiatCurrency": _market(r)[1],
                                  "tradeType": "BUY"},
    "categories": lambda r: {},
    "my_ads": lambda r: {"page": 1, "rows": 1},
    "ad_detail": _with("adv_no", lambda v: {"adsNo": v}),
    "order_summary": lambda r: {},
    "list_orders": lambda r: {"page": 1, "rows": 1},
    "order_detail": _with("order_no", lambda v: {"adOrderNo": v}),
    "order_history": lambda r: _last_day(r.clock),
    "chat_credential": lambda r: {},
    "chat_messages": lambda r: {"page": 1, "rows": 1},
    "get_ads": lambda r: {},
    "key_permissions": lambda r: {},
    "merchant_detail": lambda r: {},
    "funding_asset": lambda r: {"asset": _market(r)[0]},
}


def _same_price(ad: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """ads/update with the price field the ad has now: a fixed ad's `price`, a floating ad's
    `priceFloatingRatio`. If it succeeds nothing changes."""
    field = "priceFloatingRatio" if str(ad.get("priceType")) == "2" else "price"
    value = ad.get(field)
    if not ad.get("advNo") or value in (None, ""):
        return None
    return {"advNo": str(ad["advNo"]), field: money(value)}


def _same_status(ad: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """ads/updateStatus to the status the ad has now (online or offline; a closed ad is left
    alone: closing is final)."""
    status = str(ad.get("advStatus", ""))
    if not ad.get("advNo") or status not in ("1", "3"):
        return None
    return {"advNos": [str(ad["advNo"])], "advStatus": int(status)}


def _same_business(status: int) -> Callable[[Mapping[str, Any]], Mapping[str, Any] | None]:
    """startBusiness while open, closeBusiness while closed: a success changes nothing. In
    the other state nothing is safe to send (it would switch the business)."""
    def params(detail: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return {} if str(detail.get("businessStatus", "")) == str(status) else None

    return params


# What a write probe is built from: the read sent just before it (an ad, else as named here).
WRITE_PROBE_READS: dict[str, str] = {"start_business": "merchant_detail",
                                     "close_business": "merchant_detail"}

# The probe of each write endpoint, built from one of the merchant's ads as read immediately
# before (ad detail, else my_ads): the write sets what the ad already has, so a success
# changes nothing. None: nothing safe to send (the ad lacks the field): not probed.
WRITE_PROBES: dict[str, Callable[[Mapping[str, Any]], Mapping[str, Any] | None]] = {
    "update_ad": _same_price,
    "update_ad_status": _same_status,
    "start_business": _same_business(1),
    "close_business": _same_business(2),
}
