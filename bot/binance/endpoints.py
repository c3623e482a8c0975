"""The table of every exchange endpoint the bot uses: data that code queries."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import StrEnum

OFFICIAL_PREFIXES = ("/sapi/", "/api/")


class UnofficialPath(ValueError):
    """A path outside Binance's official API (/sapi/, /api/): never sent."""


def check_official(path: str) -> str:
    """`path` if it is under /sapi/ or /api/ (after resolving `..` and `//`), else UnofficialPath.

    The web endpoints behind cookies (`/bapi/c2c/...`) break the exchange's terms and put
    the account at risk: the client never calls them, whatever a plugin or a table asks.
    """
    resolved = posixpath.normpath(path) + ("/" if path.endswith("/") else "")
    if resolved != path or not path.startswith(OFFICIAL_PREFIXES):
        raise UnofficialPath(
            f"refusing to call {path!r}: only Binance's official API paths ({', '.join(OFFICIAL_PREFIXES)}) "
            "are used; the website's own endpoints (such as /bapi/) break Binance's terms of use "
            "and put the account at risk")
    return path


class Style(StrEnum):
    """Where an endpoint's parameters travel."""

    QUERY = "query"  # GET (or POST) with every parameter in the signed query string
    JSON = "json"  # POST with a JSON body; only recvWindow/timestamp (+ query_params) are signed


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One exchange endpoint and what the bot knows about it."""

    name: str
    method: str
    path: str
    style: Style
    weight: int = 1
    signed: bool = True
    envelope: bool = True  # answers with {"code":"000000","data":...}
    write: bool = False  # changes state on the exchange: a timeout is an unknown outcome
    query_params: tuple[str, ...] = ()  # JSON-body endpoints that take some params in the query
    summary: str = ""

    def __post_init__(self) -> None:
        check_official(self.path)


C2C = "/sapi/v1/c2c"

_TABLE: tuple[Endpoint, ...] = (
    Endpoint("search", "POST", f"{C2C}/ads/search", Style.JSON, summary="competitor ads of a market"),
    Endpoint("reference_price", "POST", f"{C2C}/ads/getReferencePrice", Style.JSON,
             summary="Binance's reference price"),
    Endpoint("categories", "GET", f"{C2C}/ads/getAvailableAdsCategory", Style.QUERY,
             summary="ad categories open to the account"),
    Endpoint("my_ads", "POST", f"{C2C}/ads/listWithPagination", Style.JSON,
             summary="the merchant's own ads"),
    Endpoint("ad_detail", "POST", f"{C2C}/ads/getDetailByNo", Style.QUERY,  # adsNo, empty body
             summary="one own ad, read back"),
    Endpoint("update_ad", "POST", f"{C2C}/ads/update", Style.JSON, write=True,
             summary="change an ad's price"),
    Endpoint("update_ad_status", "POST", f"{C2C}/ads/updateStatus", Style.JSON, write=True,
             summary="put ads online / offline"),
    Endpoint("order_summary", "GET", f"{C2C}/orderMatch/getUserOrderSummary", Style.QUERY,
             summary="counts of open orders"),
    Endpoint("list_orders", "POST", f"{C2C}/orderMatch/listOrders", Style.JSON,
             summary="the merchant's orders"),
    Endpoint("order_detail", "POST", f"{C2C}/orderMatch/getUserOrderDetail", Style.JSON,
             summary="one order in full"),
    Endpoint("order_history", "GET", f"{C2C}/orderMatch/listUserOrderHistory", Style.QUERY,
             summary="finished orders (documented endpoint)"),
    Endpoint("chat_credential", "GET", f"{C2C}/chat/retrieveChatCredential", Style.QUERY,
             summary="chat websocket credential"),
    Endpoint("chat_messages", "GET", f"{C2C}/chat/retrieveChatMessagesWithPagination",
             Style.QUERY, summary="chat history of an order"),
    # the merchant's state (docs/exchange.md §11.13): read it, open and close the business
    Endpoint("merchant_detail", "POST", f"{C2C}/user/baseDetail", Style.JSON,
             summary="the merchant's state (open, closed, on a break)"),
    Endpoint("start_business", "POST", f"{C2C}/merchant/startBusiness", Style.JSON, write=True,
             summary="open the merchant's business"),
    Endpoint("close_business", "POST", f"{C2C}/merchant/closeBusiness", Style.JSON, write=True,
             summary="close the merchant's business (the exchange takes the ads offline)"),
    Endpoint("get_ads", "GET", f"{C2C}/ads/getAds", Style.QUERY,
             summary="not a real endpoint: answers an empty 200"),
    Endpoint("server_time", "GET", "/api/v3/time", Style.QUERY, signed=False, envelope=False,
             summary="exchange clock"),
    Endpoint("key_permissions", "GET", "/sapi/v1/account/apiRestrictions", Style.QUERY,
             envelope=False, summary="what the API key may do"),
    Endpoint("funding_asset", "POST", "/sapi/v1/asset/get-funding-asset", Style.QUERY,
             envelope=False, summary="the funding wallet's balance (inventory refill)"),
)

ENDPOINTS: dict[str, Endpoint] = {ep.name: ep for ep in _TABLE}
BY_PATH: dict[tuple[str, str], Endpoint] = {(ep.method, ep.path): ep for ep in _TABLE}


def endpoint(name: str) -> Endpoint:
    """The endpoint called `name`; KeyError names the known ones."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise KeyError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINTS)}") from None
