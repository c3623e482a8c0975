"""The simulated exchange behind the gateway: markets, the merchant's account, orders and chat.

The gateway authenticates a request and calls `World.handle(endpoint, query, body)`. The world
moves in fixed one-second simulated steps (`advance`), each drawing from seeded generators of
its own, so the same seed, the same clock moves and the same requests give the same results.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web

from simulator.answers import WrittenRows
from simulator.chat import ChatHub, Credentials
from simulator.clock import VirtualClock
from simulator.errors import SimError, missing
from simulator.scenario import RealismSpec
from simulator.world.account import Account
from simulator.world.chatlog import ChatLog, risk_alert_frame, statistics_frame, system_event
from simulator.world.config import WorldConfig
from simulator.world.data import (
    SIDES,
    STEP_MS,
    Ids,
    as_mapping,
    fmt,
    get_decimal,
    get_str,
    page_of,
)
from simulator.world.market import Market, SearchFilter
from simulator.world.orders import STATUS_NAMES, OrderBook, OrderEvent, Party

SEARCH_CAP = 20  # a search page never holds more than 20 ads, whatever `rows` says
CATEGORIES = ["mass", "profession"]
RISK_ALERT_P = 0.1

Handler = Callable[[Mapping[str, str], Any], tuple[Any, "int | None"]]


REFERENCE_PAY_TYPE_FAILED = 20001  # the simulator's code; Binance's is not known


class World:
    """A local Binance P2P exchange: everything behind the gateway's authentication."""

    def __init__(self, cfg: WorldConfig, *, seed: int, clock: VirtualClock) -> None:
        self.cfg, self.clock = cfg, clock
        now = clock.now_ms()
        seen: set[str] = set()

        def stream(name: str) -> random.Random:
            return random.Random(f"{seed}:{name}")

        self.markets: dict[tuple[str, str], Market] = {
            (m.asset, m.fiat): Market(m, rng=stream(f"market:{m.asset}:{m.fiat}"),
                                      ids=Ids(stream(f"market-ids:{m.asset}:{m.fiat}"), seen),
                                      now_ms=now,
                                      rivals=(stream(f"market-rivals:{m.asset}:{m.fiat}"),
                                              Ids(stream(f"market-rival-ids:{m.asset}:{m.fiat}"),
                                                  seen)))
            for m in cfg.markets}
        self.account = Account(cfg, self.markets, ids=Ids(stream("account"), seen), now_ms=now)
        self.chatlog = ChatLog(stream("chat"), cfg.chat, self.account.nickname)
        merchant = Party(self.account.nickname, self.account.advertiser.user_no,
                         self.account.real_name)
        self.orders = OrderBook(cfg.orders, rng=stream("orders"), ids=Ids(stream("order-ids"), seen),
                                merchant=merchant, message_probability=cfg.chat.message_probability,
                                unread=self.chatlog.unread)
        self.credentials = Credentials(Ids(stream("credentials"), seen), cfg.chat)
        self.hub = ChatHub(cfg.chat, self.credentials, clock, self._on_chat_text)
        self.ws_base_url = "ws://127.0.0.1/chat"
        self._realism_rng = stream("realism")
        self._noise = stream("noise")
        self._band = stream("band")
        self._next_ms = now + STEP_MS
        for market in self.markets.values():
            self.account.record_ranks(market, now)
        self._handlers = self._handler_table()

    def _handler_table(self) -> dict[str, Handler]:
        """endpoint name -> handler(query, body) -> (data, total)."""
        account, orders = self.account, self.orders
        return {
            "search": self._search, "reference_price": self._reference_price,
            "categories": lambda q, b: ({"advClassifies": list(CATEGORIES)}, None),
            "my_ads": lambda q, b: account.my_ads(b, self.clock.now_ms()),
            "ad_detail": lambda q, b: (account.ad_detail(q, self.clock.now_ms()), None),
            "update_ad": lambda q, b: (account.update_ad(b, self.clock.now_ms()), None),
            "update_ad_status": lambda q, b: (account.update_ad_status(b, self.clock.now_ms()), None),
            "order_summary": lambda q, b: (orders.summary(), None),
            "list_orders": lambda q, b: orders.list_orders(b),
            "order_detail": lambda q, b: (orders.detail(b), None),
            "order_history": lambda q, b: orders.history(q),
            "chat_credential": self._chat_credential,
            "chat_messages": lambda q, b: self.chatlog.page(q),
            "merchant_detail": lambda q, b: (account.merchant_detail(), None),
            "start_business": lambda q, b: (account.set_business(True, self.clock.now_ms()), None),
            "close_business": lambda q, b: (account.set_business(False, self.clock.now_ms()), None),
        }

    def use_realism(self, spec: RealismSpec) -> None:
        """The scenario's [realism] switches that live in the world (read lag, quantity state)."""
        self.account.use_realism(spec, self._realism_rng)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, seed: int, clock: VirtualClock) -> World:
        """A world from the scenario's [world] table ({} gives the calm default)."""
        return cls(WorldConfig.model_validate(dict(cfg)), seed=seed, clock=clock)

    # ----- time ---------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring the world up to the clock, one fixed simulated second at a time."""
        now = self.clock.now_ms()
        while self._next_ms <= now:
            self._step(self._next_ms)
            self._next_ms += STEP_MS

    def _step(self, now_ms: int) -> None:
        account = self.account
        account.refresh_hidden(self.orders.open_per_ad, now_ms)
        band = self.cfg.rules.price_band_mode == "moving" and now_ms % 60_000 == 0
        for market in self.markets.values():
            market.walk()
            if band:
                account.move_band(market, self._band)
            ads = account.ads_in(market.asset, market.fiat)
            account.reprice(market, now_ms, ads)
            market.move(now_ms, [ad for ad in ads if ad.searchable])
            account.record_ranks(market, now_ms, ads)
        markets = self.markets  # the online ads and their markets' scales (Account.market_of)
        candidates = [(ad, markets[(ad.asset, ad.fiat)].scales)
                      for ad in account.ads.values() if ad.status == 1]
        self.emit(self.orders.arrivals(now_ms, candidates), now_ms)
        self.emit(self.orders.step(now_ms), now_ms)
        chat = self.cfg.chat
        if chat.noise and self.hub.connected and (now_ms // STEP_MS) % chat.statistics_seconds == 0:
            # every message is of a known order (emit, receive and push_counterparty see to it)
            unread = self.chatlog.unread_total
            self.hub.push(statistics_frame(unread, self.orders.summary()["inProcessCount"]))

    def emit(self, events: list[OrderEvent], now_ms: int) -> None:
        """Turn order events into stored chat messages and frames for the socket."""
        for event in events:
            order = event.order
            if event.kind == "say":
                msg = self.chatlog.counterparty(order.order_no, order.counterparty.nickname,
                                                event.text, now_ms)
                self.hub.push(msg.to_json())
                continue
            if order.status not in STATUS_NAMES:
                continue  # an odd status: no system message names it
            msg = self.chatlog.system(order.order_no, system_event(order.side, order.status), now_ms)
            self.hub.push(msg.to_json())
            if event.kind == "created":
                self._on_created(order.order_no, order.ad.auto_reply, now_ms)

    def _on_created(self, order_no: str, auto_reply: str, now_ms: int) -> None:
        if auto_reply:
            msg = self.chatlog.add(order_no, "auto_reply", auto_reply, now_ms, self_=True,
                                   from_nick=self.account.nickname)
            self.hub.push(msg.to_json())
        if self.cfg.chat.noise and self._noise.random() < RISK_ALERT_P:
            self.hub.push(risk_alert_frame(order_no, now_ms))

    # ----- requests -----------------------------------------------------------------------

    def funding_assets(self, params: dict[str, str]) -> Any:
        """The funding wallet, as `/sapi/v1/asset/get-funding-asset` answers it."""
        return self.account.funding_assets(params)

    def handle(self, endpoint: str, query: dict[str, str], body: Any) -> tuple[Any, int | None]:
        """Answer one authenticated request: (data, total or None); SimError for errors."""
        self.advance()
        self.account.refresh_hidden(self.orders.open_per_ad, self.clock.now_ms())
        handler = self._handlers.get(endpoint)
        if handler is None:
            raise SimError(-1000, f"The simulated world does not serve '{endpoint}'.", 404)
        return handler(query, body)

    def _search(self, query: Mapping[str, str], body: Any) -> tuple[list[dict[str, Any]], int]:
        src = as_mapping(body)
        asset = get_str(src, "asset", required=True)
        fiat = get_str(src, "fiat", required=True)
        taker = get_str(src, "tradeType", required=True, choices=SIDES)
        assert asset is not None and fiat is not None and taker is not None
        pay_types = src.get("payTypes") or []
        if not isinstance(pay_types, list) or not all(isinstance(p, str) for p in pay_types):
            raise SimError(-1100, "Illegal parameter 'payTypes': a list of strings is expected.")
        flt = SearchFilter(
            pay_types=frozenset(pay_types),
            publisher_type=get_str(src, "publisherType", choices=("merchant", "user")),
            trans_amount=get_decimal(src, "transAmount") or None,
            tradable_only=get_str(src, "filterType", choices=("tradable", "all")) == "tradable")
        market = self.markets.get((asset, fiat))
        if market is None:
            page_of([], src, cap=SEARCH_CAP, required=True)  # still checks page and rows
            return [], 0
        shown = [self.account.shown(ad, "search", self.clock.now_ms())
                 for ad in self.account.searchable_in(asset, fiat)]
        entries = market.search(taker, flt, shown,
                                self.account.advertiser)
        rows = page_of(entries, src, cap=SEARCH_CAP, required=True)
        scales = market.scales
        data, texts = [], []
        for ad, who in rows:
            written = ad.written(scales)
            data.append({"adv": dict(written.doc), "advertiser": who.to_json()})
            texts.append(f'{{"adv":{written.text()},"advertiser":{who.json_text()}}}')
        return WrittenRows(data, texts), len(entries)

    def _reference_price(self, query: Mapping[str, str], body: Any) -> tuple[Any, None]:
        src = as_mapping(body)
        assets = src.get("assets")
        if not assets:
            raise missing("assets")
        if not isinstance(assets, list) or len(assets) > 3 or not all(
                isinstance(a, str) for a in assets):
            raise SimError(-1100, "Illegal parameter 'assets': a list of at most 3 assets.")
        fiat = get_str(src, "fiatCurrency", required=True)
        get_str(src, "tradeType", required=True, choices=SIDES)
        pay_type = get_str(src, "payType")
        data = []
        for asset in assets:
            market = self.markets.get((asset, fiat or ""))
            if market is None:
                continue
            if pay_type and market.cfg.reference_pay_type_fails:
                raise SimError(REFERENCE_PAY_TYPE_FAILED,
                               f"No reference price for payType {pay_type}; try again later.")
            scales = market.scales
            data.append({"asset": asset, "assetScale": scales.asset_scale, "currency": fiat,
                         "currencyScale": 2, "currencySymbol": scales.fiat_symbol,
                         "priceScale": scales.price_scale,
                         "referencePrice": fmt(market.reference_price(), scales.price_scale)})
        return data, None

    def _chat_credential(self, query: Mapping[str, str], body: Any) -> tuple[Any, None]:
        tainted = bool(query) and self.cfg.chat.refuse_if_query
        cred = self.credentials.issue(self.clock.now_ms(), tainted=tainted)
        return {"chatWssUrl": self.ws_base_url} | cred, None

    def _on_chat_text(self, text: str) -> list[dict[str, Any]]:
        self.advance()
        return self.chatlog.receive(text, self.clock.now_ms(), lambda no: no in self.orders.orders)

    # ----- wiring ---------------------------------------------------------------------------

    def push_counterparty(self, order_no: str, content: str) -> dict[str, Any]:
        """A counterparty message now (control API); KeyError for an unknown order."""
        self.advance()
        order = self.orders.orders[order_no]
        msg = self.chatlog.counterparty(order_no, order.counterparty.nickname, content,
                                        self.clock.now_ms())
        self.hub.push(msg.to_json())
        return msg.to_json()

    def add_routes(self, app: web.Application) -> None:
        """The chat websocket (GET /chat/{listen_key}), /_sim/world/ control routes, the ticker."""
        from simulator.world.control import add_control_routes

        app.router.add_get("/chat/{listen_key}", self.hub.handle)
        add_control_routes(app, self)
        app.on_shutdown.append(self.hub.close_all)
        if self.cfg.tick_seconds > 0:
            app.cleanup_ctx.append(self._ticker)

    async def _ticker(self, _app: web.Application) -> AsyncIterator[None]:
        """Advance in the background so chat frames flow between requests."""
        async def tick() -> None:
            while True:
                await asyncio.sleep(self.cfg.tick_seconds)
                self.advance()

        task = asyncio.create_task(tick())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
