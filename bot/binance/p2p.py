"""The typed P2P API: one async method per endpoint, parameters named as on the wire.

`P2PApi` sits on a `Caller` (the SignedClient, or the capability registry around
it). It builds each request's parameters exactly as docs/exchange.md §3 names
them, sends money as decimal strings, and returns the models of
`bot.binance.models`. It never retries except where docs/exchange.md §6 says so
(order detail on -31002, once, with the other parameter name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import StrictBool

from bot.binance.client import NOT_PARSED, Caller, Response
from bot.binance.errors import SHAPE_CHANGED, BadResponse, IllegalParameter, ShapeChanged
from bot.binance.models import (
    Ad,
    Categories,
    ChatCredential,
    ChatMessage,
    FundingAsset,
    HistoryRow,
    KeyRestrictions,
    MerchantDetail,
    OrderDetail,
    OrderRow,
    OrderSummary,
    Page,
    ReferencePrice,
    SearchItem,
    ServerTime,
    StatusUpdate,
    parse,
)
from bot.binance.search import SearchRow, parse_search

T = TypeVar("T")

SIDES = ("BUY", "SELL")
MAX_REFERENCE_ASSETS = 3
MAX_HISTORY_ROWS = 100
MAX_HISTORY_SPAN_MS = 30 * 24 * 3600 * 1000


def history_windows(start_ms: int, end_ms: int,
                    span_ms: int = MAX_HISTORY_SPAN_MS) -> list[tuple[int, int]]:
    """[start_ms, end_ms] cut into back-to-back fixed windows of at most `span_ms`."""
    if end_ms < start_ms:
        raise ValueError("order history: the start must not be after the end")
    windows, at = [], start_ms
    while True:
        end = min(at + span_ms, end_ms)
        windows.append((at, end))
        if end >= end_ms:
            return windows
        at = end + 1

# my_ads filters: python names and wire names both accepted, sent as wire names
MY_ADS_FILTERS: dict[str, str] = {
    "adv_no": "advNo",
    "adv_status": "advStatus",
    "asset": "asset",
    "fiat_unit": "fiatUnit",
    "trade_type": "tradeType",
}


# The model of each endpoint's `data` (paged lists are arrays, never null). The registry reads
# every reply with it before it counts the call a success, so a renamed field or `data: null`
# is that endpoint's failure, not a success the desk cannot use.
SHAPES: dict[str, Any] = {
    "search": list[SearchItem],
    "reference_price": list[ReferencePrice],
    "categories": Categories,
    "my_ads": list[Ad],
    "ad_detail": Ad,
    "update_ad": StrictBool | None,  # the success envelope without data is a success too
    "update_ad_status": StatusUpdate,
    "order_summary": OrderSummary,
    "list_orders": list[OrderRow],
    "order_detail": OrderDetail,
    "order_history": list[HistoryRow],
    "chat_credential": ChatCredential,
    "chat_messages": list[ChatMessage],
    "key_permissions": KeyRestrictions,
    "server_time": ServerTime,
    "merchant_detail": MerchantDetail,
    "start_business": StrictBool | None,
    "close_business": StrictBool | None,
    "funding_asset": list[FundingAsset],
}


# Endpoints read by a lean parser instead of their model (same errors, fewer fields checked):
# a search reply is read every few seconds per market, and only to price against it.
LEAN: dict[str, Callable[[Any, str], Any]] = {"search": parse_search}


def read(resp: Response) -> Any:
    """The reply's `data` as its endpoint's model, parsed once; ShapeChanged names the field."""
    if resp.parsed is NOT_PARSED:
        name = resp.endpoint.name
        shape = SHAPES.get(name)
        data = resp.data
        if data is None and resp.total == 0 and getattr(shape, "__origin__", None) is list:
            data = []  # null rows with `total: 0` is an empty page; without it, a changed shape
        try:
            lean = LEAN.get(name)
            resp.parsed = data if shape is None else lean(data, name) if lean is not None \
                else parse(shape, data, name)
        except BadResponse as exc:
            raise ShapeChanged(f"{SHAPE_CHANGED}: {exc.msg}", endpoint=name) from None
    return resp.parsed


def money(value: Decimal | str | int) -> str:
    """A price, amount or ratio as the decimal string the exchange expects; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("money must be a Decimal, str or int, never a float")
    number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    if not number.is_finite():
        raise ValueError("money must be a finite number")
    return format(number, "f")


def side(value: str) -> str:
    """A trade side, upper case; ValueError unless BUY or SELL."""
    text = value.strip().upper()
    if text not in SIDES:
        raise ValueError(f"trade side must be BUY or SELL, not {value!r}")
    return text


def _page_args(page: int, rows: int) -> dict[str, int]:
    if page < 1 or rows < 1:
        raise ValueError("page and rows start at 1")
    return {"page": page, "rows": rows}


class P2PApi:
    """Typed calls to the merchant endpoints, returning models."""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    def __repr__(self) -> str:
        return f"P2PApi({self._caller!r})"

    async def _call(self, endpoint: str, params: Mapping[str, Any] | None = None) -> Response:
        return await self._caller.call(endpoint, params)

    async def _one(self, model: type[T], endpoint: str, params: Mapping[str, Any] | None = None) -> T:
        """One object; `model` is SHAPES[endpoint], named here for the type checker."""
        result: T = read(await self._call(endpoint, params))
        return result

    async def _page(self, model: type[T], endpoint: str, params: Mapping[str, Any]) -> Page[T]:
        resp = await self._call(endpoint, params)
        items: list[T] = read(resp)
        return Page[model](items=items, total=resp.total)  # type: ignore[valid-type]

    # --- market ------------------------------------------------------------------

    async def search_ads(
        self,
        asset: str,
        fiat: str,
        trade_type: str,
        *,
        page: int = 1,
        rows: int = 20,
        pay_types: Iterable[str] | None = None,
        publisher_type: str | None = None,
        trans_amount: Decimal | str | int | None = None,
    ) -> Page[SearchRow]:
        """Ads of a market, as lean rows (bot.binance.search). `trade_type` is the taker's side:
        a SELL ad's rivals are found with BUY."""
        body: dict[str, Any] = {"asset": asset, "fiat": fiat, "tradeType": side(trade_type),
                                **_page_args(page, rows)}
        if pay_types is not None:
            body["payTypes"] = [pay_types] if isinstance(pay_types, str) else list(pay_types)
        if publisher_type is not None:
            body["publisherType"] = publisher_type
        if trans_amount is not None:
            body["transAmount"] = money(trans_amount)
        resp = await self._call("search", body)
        found: list[SearchRow] = read(resp)  # parsed by parse_search (LEAN)
        result: Page[SearchRow] = Page.model_construct(items=found, total=resp.total)
        return result

    async def reference_prices(
        self, assets: str | Iterable[str], fiat: str, trade_type: str,
        pay_type: str | None = None,
    ) -> list[ReferencePrice]:
        """Binance's reference price for up to three assets in one fiat (optionally for one
        payment method: that filter can fail where the unfiltered call works)."""
        names = [assets] if isinstance(assets, str) else list(assets)
        if not 1 <= len(names) <= MAX_REFERENCE_ASSETS:
            raise ValueError(f"reference prices take 1 to {MAX_REFERENCE_ASSETS} assets")
        body: dict[str, Any] = {"assets": names, "fiatCurrency": fiat,
                                "tradeType": side(trade_type)}
        if pay_type:
            body["payType"] = pay_type
        result: list[ReferencePrice] = read(await self._call("reference_price", body))
        return result

    async def reference_price(self, asset: str, fiat: str, trade_type: str) -> ReferencePrice | None:
        """The reference price of one asset, or None when the answer does not name it."""
        prices = await self.reference_prices([asset], fiat, trade_type)
        return next((p for p in prices if p.asset.upper() == asset.upper()), None)

    async def categories(self) -> Categories:
        """The ad categories open to the account."""
        return await self._one(Categories, "categories")

    # --- own ads -----------------------------------------------------------------

    async def my_ads(self, page: int = 1, rows: int = 20, **filters: Any) -> Page[Ad]:
        """The merchant's own ads; filters: adv_no, adv_status, asset, fiat_unit, trade_type."""
        body: dict[str, Any] = _page_args(page, rows)
        wire_names = set(MY_ADS_FILTERS.values())
        for name, value in filters.items():
            wire = MY_ADS_FILTERS.get(name) or (name if name in wire_names else None)
            if wire is None:
                raise TypeError(f"my_ads() got an unknown filter {name!r}")
            if value is not None:
                body[wire] = side(value) if wire == "tradeType" else value
        return await self._page(Ad, "my_ads", body)

    async def ad_detail(self, adv_no: str) -> Ad:
        """One own ad, read back (adsNo goes in the signed query; the body is empty)."""
        return await self._one(Ad, "ad_detail", {"adsNo": str(adv_no)})

    async def update_ad_price(
        self,
        adv_no: str,
        *,
        price: Decimal | str | None = None,
        ratio: Decimal | str | None = None,
    ) -> bool:
        """Set a fixed ad's `price` or a floating ad's `priceFloatingRatio` (exactly one)."""
        if (price is None) == (ratio is None):
            raise ValueError("give exactly one of price (fixed ads) or ratio (floating ads)")
        field, value = ("price", price) if price is not None else ("priceFloatingRatio", ratio)
        assert value is not None
        text = money(value)
        if Decimal(text) <= 0:
            raise ValueError(f"{field} must be positive")
        resp = await self._call("update_ad", {"advNo": str(adv_no), field: text})
        return read(resp) is not False  # the success envelope without data is a success

    async def update_ad_visible(self, adv_no: str, visible: bool) -> bool:
        """Show (`visible` 1) or hide (0) an ad in search; it stays online either way (docs/exchange.md §11.7)."""
        resp = await self._call("update_ad", {"advNo": str(adv_no), "visible": 1 if visible else 0})
        return read(resp) is not False

    async def update_ad_amount(self, adv_no: str, init_amount: Decimal) -> bool:
        """Set an ad's initAmount (the available amount follows: docs/exchange.md §11.8)."""
        resp = await self._call("update_ad", {"advNo": str(adv_no), "initAmount": money(init_amount)})
        return read(resp) is not False

    async def funding_free(self, asset: str) -> Decimal:
        """The free balance of `asset` in the funding wallet (0 when it holds none)."""
        rows = read(await self._call("funding_asset", {"asset": asset}))
        return next((r.free for r in rows if r.asset == asset), Decimal(0))

    async def update_ad_status(self, adv_nos: str | Iterable[str], status: int) -> StatusUpdate:
        """Put ads online (1), offline (3) or close them (4)."""
        numbers = [adv_nos] if isinstance(adv_nos, str) else [str(n) for n in adv_nos]
        if int(status) not in (1, 3, 4):
            raise ValueError("advStatus is 1 (online), 3 (offline) or 4 (closed)")
        body = {"advNos": numbers, "advStatus": int(status)}
        return await self._one(StatusUpdate, "update_ad_status", body)

    # --- orders ------------------------------------------------------------------

    async def order_summary(self) -> OrderSummary:
        """Counts of open orders."""
        return await self._one(OrderSummary, "order_summary")

    async def list_orders(
        self,
        page: int = 1,
        rows: int = 20,
        statuses: Iterable[int] | None = None,
        *,
        trade_type: str | None = None,
        asset: str | None = None,
        adv_no: str | None = None,
        start_date: int | None = None,
        end_date: int | None = None,
    ) -> Page[OrderRow]:
        """The merchant's orders, optionally only those in `statuses` (ints)."""
        body: dict[str, Any] = _page_args(page, rows)
        optional: dict[str, Any] = {
            "orderStatusList": None if statuses is None else [int(s) for s in statuses],
            "tradeType": None if trade_type is None else side(trade_type),
            "asset": asset,
            "advNo": adv_no,
            "startDate": start_date,
            "endDate": end_date,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return await self._page(OrderRow, "list_orders", body)

    async def order_detail(self, order_number: str) -> OrderDetail:
        """One order in full; on -31002 asks once more with `orderNumber` as well."""
        number = str(order_number)
        try:
            return await self._one(OrderDetail, "order_detail", {"adOrderNo": number})
        except IllegalParameter:
            params = {"adOrderNo": number, "orderNumber": number}
            return await self._one(OrderDetail, "order_detail", params)

    async def order_history(
        self,
        trade_type: str,
        *,
        start_timestamp: int,
        end_timestamp: int,
        page: int = 1,
        rows: int = MAX_HISTORY_ROWS,
    ) -> Page[HistoryRow]:
        """Finished orders in one fixed window (the documented endpoint): span at most 30 days,
        rows at most 100. Both ends are required: an open end is "now", a list that moves
        between pages, and paging a moving list skips or repeats rows."""
        if rows > MAX_HISTORY_ROWS:
            raise ValueError(f"order history pages hold at most {MAX_HISTORY_ROWS} rows")
        if not 0 <= end_timestamp - start_timestamp <= MAX_HISTORY_SPAN_MS:
            raise ValueError("order history spans at most 30 days, start before end")
        query: dict[str, Any] = {"tradeType": side(trade_type),
                                 "startTimestamp": int(start_timestamp),
                                 "endTimestamp": int(end_timestamp)}
        query.update(_page_args(page, rows))
        return await self._page(HistoryRow, "order_history", query)

    async def order_history_between(
        self, trade_type: str, start_ms: int, end_ms: int, *, rows: int = MAX_HISTORY_ROWS,
        max_pages: int = 50,
    ) -> list[HistoryRow]:
        """Every finished order created in [start_ms, end_ms], read in fixed windows of at most
        30 days (oldest window first), each paged with the same two ends; a row on two pages
        (a window's edge) is kept once."""
        found: dict[str, HistoryRow] = {}
        for start, end in history_windows(start_ms, end_ms):
            for page in range(1, max_pages + 1):
                got = await self.order_history(trade_type, start_timestamp=start,
                                               end_timestamp=end, page=page, rows=rows)
                for row in got.items:
                    found.setdefault(row.order_number, row)
                if len(got.items) < rows or (got.total is not None and page * rows >= got.total):
                    break
        return list(found.values())

    # --- chat --------------------------------------------------------------------

    async def chat_credential(self) -> ChatCredential:
        """A chat websocket credential (no extra query: the websocket would refuse it)."""
        return await self._one(ChatCredential, "chat_credential")

    async def chat_messages(
        self, order_no: str, page: int = 1, rows: int = 20, before_id: str | None = None
    ) -> Page[ChatMessage]:
        """An order's chat history over REST, optionally only messages older than `before_id`."""
        query: dict[str, Any] = {**_page_args(page, rows), "orderNo": str(order_no)}
        if before_id is not None:
            query["id"] = str(before_id)
        return await self._page(ChatMessage, "chat_messages", query)

    # --- the merchant's state (docs/exchange.md §11.13) -----------------------------

    async def merchant_detail(self) -> MerchantDetail:
        """The merchant's state: open, closed or on a break."""
        return await self._one(MerchantDetail, "merchant_detail", {})

    async def set_business(self, open_: bool) -> bool:
        """Open (startBusiness) or close (closeBusiness) the merchant's business. Closing takes
        the ads offline; opening does not bring them back (docs/exchange.md §11.6)."""
        resp = await self._call("start_business" if open_ else "close_business", {})
        return read(resp) is not False

    # --- account, time, probes -----------------------------------------------------

    async def key_restrictions(self) -> KeyRestrictions:
        """What the API key may do (IP whitelist, withdrawals, ...)."""
        return await self._one(KeyRestrictions, "key_permissions")

    async def server_time(self) -> ServerTime:
        """The exchange's clock."""
        return await self._one(ServerTime, "server_time")

    async def get_ads(self) -> Any:
        """Probe `ads/getAds`, a path that only ever answers an empty 200 (BogusResponse)."""
        return (await self._call("get_ads")).data
