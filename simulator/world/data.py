"""Shared pieces of the simulated world: fiat tables, ids, number formats, request parameters, the Ad object."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from simulator.answers import dumps_text
from simulator.errors import SimError, illegal, missing

STEP_MS = 1000  # the world moves in fixed one-second simulated steps
AMOUNT_PLACES = 8  # amounts and ratios go out as "1500.00000000"
SIDES = ("BUY", "SELL")

FIAT_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "UAH": "₴", "KZT": "₸", "TRY": "₺",
                "NGN": "₦", "INR": "₹", "VND": "₫", "BRL": "R$", "GBP": "£", "ARS": "$"}
ASSET_SCALES = {"USDT": 2, "USDC": 2, "FDUSD": 2, "BTC": 8, "ETH": 8, "BNB": 8}
PAY_METHODS = {
    "RUB": ["Tinkoff", "SBP", "RaiffeisenBank", "RosBankNew", "YandexMoneyNew", "HomeCreditBank"],
    "UAH": ["Monobank", "PrivatBank", "ABank", "PUMBBank"],
    "EUR": ["SEPA", "Revolut", "Wise", "N26"],
    "USD": ["Zelle", "Wise", "Revolut", "BANK"],
}
FALLBACK_PAY_METHODS = ["BANK", "Wise", "Revolut"]
PAY_METHOD_NAMES = {"SBP": "SBP - Fast Bank Transfer", "RosBankNew": "Rosbank",
                    "YandexMoneyNew": "Yandex.Money", "RaiffeisenBank": "Raiffeisenbank",
                    "HomeCreditBank": "Home Credit Bank", "BANK": "Bank Transfer"}

_ADJECTIVES = ["Swift", "Golden", "Quiet", "Lucky", "Crypto", "Silver", "Polar", "Rapid", "Honest",
               "Steady", "Bright", "North", "Urban", "Calm", "Prime", "Royal"]
_NOUNS = ["Fox", "Trader", "Bear", "Falcon", "Exchange", "Wolf", "Otter", "Desk", "Lynx", "Change",
          "Harbor", "Owl", "Ledger", "Bison", "Pilot", "Comet"]
_FIRST = ["IVAN", "ANNA", "PAVEL", "OLGA", "DMITRII", "ELENA", "SERGEI", "MARIA", "ALEKSEI", "IRINA"]
_LAST = ["IVANOV", "PETROVA", "SMIRNOV", "KUZNETSOVA", "POPOV", "SOKOLOVA", "LEBEDEV", "VOLKOVA"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scales:
    """How a market's numbers are written."""

    asset_scale: int
    price_scale: int
    fiat_symbol: str

    @classmethod
    def of(cls, asset: str, fiat: str, price_scale: int) -> Scales:
        """The scales of an asset/fiat pair."""
        return cls(ASSET_SCALES.get(asset, 8), price_scale, FIAT_SYMBOLS.get(fiat, fiat))


_EXPONENTS = {places: Decimal(1).scaleb(-places) for places in range(13)}


def q(value: Decimal, places: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """`value` rounded to `places` decimals."""
    exponent = _EXPONENTS.get(places)
    if exponent is None:
        exponent = Decimal(1).scaleb(-places)
    return value.quantize(exponent, rounding=rounding)


def q_down(value: Decimal, places: int) -> Decimal:
    """`value` truncated to `places` decimals."""
    return q(value, places, ROUND_DOWN)


def fmt(value: Decimal, places: int = AMOUNT_PLACES) -> str:
    """A decimal as the exchange writes it: fixed point, `places` decimals."""
    return f"{q(value, places):f}"


def uniform(rng: random.Random, low: Decimal, high: Decimal) -> Decimal:
    """A Decimal drawn uniformly in [low, high] (six significant random digits)."""
    return low + (high - low) * Decimal(f"{rng.random():.6f}")


def nice(value: Decimal) -> Decimal:
    """`value` rounded to two significant digits (limits people type)."""
    if value <= 0:
        return Decimal(0)
    return value.quantize(Decimal(1).scaleb(value.adjusted() - 1), rounding=ROUND_HALF_UP)


class Ids:
    """Every id the world hands out, drawn from one seeded generator and never repeated."""

    def __init__(self, rng: random.Random, seen: set[str] | None = None) -> None:
        self._rng = rng
        self._seen = set() if seen is None else seen  # share it to keep ids unique across streams

    def _unique(self, make: Callable[[], str]) -> str:
        while (value := make()) in self._seen:
            pass
        self._seen.add(value)
        return value

    def adv_no(self) -> str:
        """A 20-digit advNo."""
        return self._unique(lambda: str(self._rng.randint(11 * 10**18, 13 * 10**18 - 1)))

    def order_no(self) -> str:
        """A 20-digit order number."""
        return self._unique(lambda: str(self._rng.randint(2 * 10**19, 23 * 10**18 - 1)))

    def user_no(self) -> str:
        """`s` + 32 hex digits."""
        return self._unique(lambda: f"s{self._rng.getrandbits(128):032x}")

    def hex(self, digits: int = 32) -> str:
        """Random lowercase hex."""
        return f"{self._rng.getrandbits(digits * 4):0{digits}x}"

    def nickname(self) -> str:
        """A plausible P2P nickname."""
        rng = self._rng
        style = rng.randrange(3)
        if style == 0:
            return f"{rng.choice(_ADJECTIVES)}{rng.choice(_NOUNS)}"
        if style == 1:
            return f"{rng.choice(_NOUNS)}-{rng.randint(10, 999)}"
        return f"User-{self.hex(5)}"

    def real_name(self) -> str:
        """A KYC name as order details show it."""
        return f"{self._rng.choice(_LAST)} {self._rng.choice(_FIRST)}"


# ----- request parameters ------------------------------------------------------------------

def as_mapping(body: Any) -> Mapping[str, Any]:
    """The JSON body as a mapping ({} when none was sent)."""
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise SimError(-1100, "Illegal request body: a JSON object is expected.")
    return body


def get_str(src: Mapping[str, Any], name: str, *, required: bool = False,
            choices: Sequence[str] = ()) -> str | None:
    """A string parameter; -1102 when required and absent, -1100 when not one of `choices`."""
    value = src.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise illegal(name)
    text = str(value)
    if choices and text not in choices:
        raise SimError(-1100, f"Illegal parameter '{name}': expected one of {', '.join(choices)}.")
    return text


def get_int(src: Mapping[str, Any], name: str, *, default: int | None = None,
            low: int | None = None, high: int | None = None) -> int:
    """An integer parameter (a number or a digit string); -1102 when absent without default."""
    value = src.get(name)
    if value is None or value == "":
        if default is None:
            raise missing(name)
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise illegal(name)
    try:
        number = int(value)
    except ValueError:
        raise illegal(name) from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise SimError(-1100, f"Illegal parameter '{name}': {number} is out of range.")
    return number


def get_decimal(src: Mapping[str, Any], name: str) -> Decimal | None:
    """A decimal parameter (string or number), None when absent; -1100 when malformed."""
    value = src.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise illegal(name)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise illegal(name) from None
    if not number.is_finite():
        raise illegal(name)
    return number


def page_of(items: Sequence[T], src: Mapping[str, Any], *, default_rows: int = 10,
            cap: int = 100, required: bool = False) -> list[T]:
    """One page of `items` by the `page`/`rows` parameters (1-based; rows capped at `cap`)."""
    page = get_int(src, "page", default=None if required else 1, low=1)
    rows = min(get_int(src, "rows", default=None if required else default_rows, low=1), cap)
    start = (page - 1) * rows
    return list(items[start:start + rows])


# ----- the Ad object -----------------------------------------------------------------------

def trade_method(identifier: str, index: int) -> dict[str, Any]:
    """One entry of an ad's tradeMethods."""
    return {"payId": 10_000_000 + index, "payMethodId": "", "payType": identifier, "identifier": identifier,
            "tradeMethodName": PAY_METHOD_NAMES.get(identifier, identifier),
            "tradeMethodShortName": identifier, "tradeMethodBgColor": "#F0B90B", "iconUrlColor": None,
            "payAccount": None, "payBank": None, "paySubBank": None, "sort": index}


MOVING = ("price", "dynamicMaxSingleTransAmount", "advUpdateTime")  # in the Ad object's order
_MOVING_KEYS = [dumps_text(key) for key in MOVING]


class WrittenAd:
    """An Ad object as last written: its dict and, once asked, its JSON text. A new price
    moves only the MOVING fields: the text is then put together from the unchanged runs
    of fields between them (each encoded once) and the moved fields, the very text
    `dumps_text` writes for the whole object."""

    __slots__ = ("facts", "price", "update_ms", "doc", "_text", "_runs")

    def __init__(self, facts: tuple[Any, ...], price: Decimal, update_ms: int,
                 doc: dict[str, Any], runs: list[str] | None = None) -> None:
        self.facts, self.price, self.update_ms, self.doc = facts, price, update_ms, doc
        self._text: str | None = None
        self._runs = runs

    def moved(self, price: Decimal, update_ms: int, fields: dict[str, Any]) -> WrittenAd:
        """The same object with new MOVING fields."""
        return WrittenAd(self.facts, price, update_ms, self.doc | fields, self.runs())

    def runs(self) -> list[str]:
        """The encoded fields before, between and after the MOVING ones."""
        if self._runs is None:
            runs: list[dict[str, Any]] = [{}]
            for key, value in self.doc.items():
                if key in MOVING:
                    runs.append({})
                else:
                    runs[-1][key] = value
            self._runs = [dumps_text(run)[1:-1] for run in runs]
        return self._runs

    def text(self) -> str:
        """dumps_text(doc)."""
        if self._text is None:
            if self._runs is None:
                self._text = dumps_text(self.doc)
            else:
                parts = [self._runs[0]]
                for key, text, run in zip(MOVING, _MOVING_KEYS, self._runs[1:], strict=True):
                    parts.append(f"{text}:{dumps_text(self.doc[key])}")
                    parts.append(run)
                self._text = "{" + ",".join(part for part in parts if part) + "}"
        return self._text


@dataclass(slots=True, kw_only=True)
class AdBase:
    """What every ad (a competitor's or the merchant's) has: the Ad object's facts."""

    adv_no: str
    side: str  # the advertiser's side
    asset: str
    fiat: str
    price: Decimal
    min_amount: Decimal
    max_amount: Decimal
    surplus: Decimal
    init_amount: Decimal
    pay_methods: list[str]
    create_ms: int
    update_ms: int
    classify: str = "mass"
    pay_time_limit: int = 15
    status: int = 1
    remarks: str = ""
    auto_reply: str = ""
    price_type: int = 1
    ratio: Decimal = field(default_factory=Decimal)
    _shown: WrittenAd | None = field(default=None, init=False, repr=False, compare=False)

    def available_fiat(self) -> Decimal:
        """The largest order this ad can take now, in fiat."""
        return min(self.max_amount, q_down(self.surplus * self.price, 2))

    def tradable(self) -> bool:
        """Whether the ad can fill at least its minimum."""
        return self.available_fiat() >= self.min_amount

    def sort_key(self) -> tuple[Decimal, int, str]:
        """Search order for the taker: cheapest SELL ad first, dearest BUY ad first."""
        return (self.price if self.side == "SELL" else -self.price, self.update_ms, self.adv_no)

    def _facts(self, scales: Scales) -> tuple[Any, ...]:
        """Everything the Ad object is written from, but the price and the update time."""
        return (self.adv_no, self.side, self.asset, self.fiat, self.min_amount, self.max_amount,
                self.surplus, self.init_amount, tuple(self.pay_methods), self.create_ms,
                self.classify, self.pay_time_limit, self.status, self.remarks, self.auto_reply,
                self.price_type, self.ratio, scales)

    def written(self, scales: Scales) -> WrittenAd:
        """The Ad object written: again only when a fact changed, and only the price's fields
        when only the price or update time did (a page of search shows the same ads many
        times a simulated minute, the repricing bots' at a new price now and then)."""
        facts = self._facts(scales)
        shown = self._shown
        if shown is None or shown.facts != facts:
            shown = WrittenAd(facts, self.price, self.update_ms, self._json(scales))
        elif shown.price != self.price or shown.update_ms != self.update_ms:
            shown = shown.moved(self.price, self.update_ms, self._moving(scales))
        else:
            return shown
        self._shown = shown
        return shown

    def to_json(self, scales: Scales) -> dict[str, Any]:
        """The Ad object as search, my_ads and ad_detail return it."""
        return dict(self.written(scales).doc)

    def _moving(self, scales: Scales) -> dict[str, Any]:
        """The fields a new price or update time changes (MOVING)."""
        return {"price": fmt(self.price, scales.price_scale),
                "dynamicMaxSingleTransAmount": fmt(max(self.available_fiat(), Decimal(0))),
                "advUpdateTime": self.update_ms}

    def _json(self, scales: Scales) -> dict[str, Any]:
        return {
            "advNo": self.adv_no, "classify": self.classify, "tradeType": self.side,
            "asset": self.asset, "fiatUnit": self.fiat, "fiatSymbol": scales.fiat_symbol,
            "advStatus": self.status, "priceType": self.price_type,
            "price": fmt(self.price, scales.price_scale),
            "priceFloatingRatio": fmt(self.ratio), "initAmount": fmt(self.init_amount),
            "surplusAmount": fmt(self.surplus), "tradableQuantity": fmt(self.surplus),
            "minSingleTransAmount": fmt(self.min_amount),
            "maxSingleTransAmount": fmt(self.max_amount),
            "dynamicMaxSingleTransAmount": fmt(max(self.available_fiat(), Decimal(0))),
            "payTimeLimit": self.pay_time_limit,
            "tradeMethods": [trade_method(p, i) for i, p in enumerate(self.pay_methods)],
            "remarks": self.remarks, "autoReplyMsg": self.auto_reply,
            "createTime": self.create_ms, "advUpdateTime": self.update_ms,
            "assetScale": scales.asset_scale, "fiatScale": 2, "priceScale": scales.price_scale,
            "offlineReason": None if self.status == 1 else "merchant",
        }
