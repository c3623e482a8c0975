"""The world's control routes under /_sim/world/ (JSON, no auth): read the world, poke it.

GET  /_sim/world/ads                        own ads: price, rank, price and rank history
GET  /_sim/world/orders                     every order in full with its status timeline
POST /_sim/world/orders                     {"adv_no"} or {"side","asset","fiat"} [+ "amount" fiat]
POST /_sim/world/orders/{orderNo}/status    {"status": 2}: a legal move (1->2/6/7, 2->3/4, 3->4/6)
GET  /_sim/world/chat/sent                  what the merchant sent (?orderNo= to filter)
GET  /_sim/world/chat/status                {connected, connections, silent}
POST /_sim/world/chat/push                  {"orderNo","content"}: a counterparty message
POST /_sim/world/chat/drop                  close the live socket abruptly
POST /_sim/world/chat/silence               {"seconds"}: real seconds without pongs or frames
POST /_sim/world/chat/expire                expire every chat credential
GET  /_sim/world/market?asset=&fiat=&side=  reference and competitors (side: the advertiser's)
Errors answer {"error": "..."} with 400 (bad input), 404 (unknown) or 409 (not allowed now).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.world.account import OwnAd
from simulator.world.data import SIDES

if TYPE_CHECKING:
    from simulator.world.core import World

PREFIX = "/_sim/world"
Route = Callable[[web.Request], Awaitable[web.Response]]


class ControlError(Exception):
    """A control request that cannot be served; answered as {"error"} with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _guarded(world: World, fn: Callable[[web.Request], Awaitable[Any]]) -> Route:
    async def route(request: web.Request) -> web.Response:
        world.advance()
        try:
            return web.json_response(await fn(request))
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status)
    return route


def _find_ad(world: World, body: dict[str, Any]) -> OwnAd:
    if body.get("adv_no"):
        ad = world.account.ads.get(str(body["adv_no"]))
        if ad is None:
            raise ControlError(404, f"no own ad {body['adv_no']}")
        return ad
    side, asset, fiat = body.get("side"), body.get("asset"), body.get("fiat")
    if side not in SIDES or not asset or not fiat:
        raise ControlError(400, 'give {"adv_no"} or {"side","asset","fiat"}')
    for ad in world.account.ads_in(str(asset), str(fiat)):
        if ad.side == side and ad.status == 1:
            return ad
    raise ControlError(404, f"no online own {side} ad on {asset}/{fiat}")


class WorldControl:
    """The handlers of the control routes, one method each."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def get_ads(self, request: web.Request) -> Any:
        """Own ads with price, rank and histories."""
        return {"time": self.world.clock.now_ms(), "ads": self.world.account.to_control()}

    async def get_orders(self, request: web.Request) -> Any:
        """Every order in full."""
        return {"time": self.world.clock.now_ms(), "orders": self.world.orders.to_control()}

    async def create_order(self, request: web.Request) -> Any:
        """Open an order on an own ad now."""
        world = self.world
        body = await _json_body(request)
        ad = _find_ad(world, body)
        if ad.status != 1:
            raise ControlError(409, f"ad {ad.adv_no} is not online")
        try:
            total = Decimal(str(body["amount"])) if body.get("amount") is not None else None
            events = world.orders.create(ad, world.account.market_of(ad).scales,
                                         world.clock.now_ms(), total)
        except (InvalidOperation, ValueError) as exc:
            raise ControlError(409, str(exc)) from None
        world.emit(events, world.clock.now_ms())
        return {"order": world.orders.detail_json(events[0].order)}

    async def set_status(self, request: web.Request) -> Any:
        """Move an order to a status now."""
        world = self.world
        body = await _json_body(request)
        order_no = request.match_info["order_no"]
        status = body.get("status")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ControlError(400, 'give {"status": <int>}')
        if order_no not in world.orders.orders:
            raise ControlError(404, f"no order {order_no}")
        try:
            event = world.orders.force(order_no, status, world.clock.now_ms())
        except ValueError as exc:
            raise ControlError(409, str(exc)) from None
        world.emit([event], world.clock.now_ms())
        return {"order": world.orders.detail_json(event.order)}

    async def chat_sent(self, request: web.Request) -> Any:
        """What the merchant sent, refused messages included."""
        order_no = request.query.get("orderNo")
        return {"sent": [s for s in self.world.chatlog.sent
                         if not order_no or s["orderNo"] == order_no]}

    async def chat_status(self, request: web.Request) -> Any:
        """Whether a socket is open, how many were, whether the server is silent."""
        hub = self.world.hub
        return {"connected": hub.connected, "connections": hub.connections, "silent": hub.silent}

    async def chat_push(self, request: web.Request) -> Any:
        """A counterparty message now."""
        body = await _json_body(request)
        order_no, content = body.get("orderNo"), body.get("content")
        if not isinstance(order_no, str) or not isinstance(content, str) or not content:
            raise ControlError(400, 'give {"orderNo", "content"}')
        if order_no not in self.world.orders.orders:
            raise ControlError(404, f"no order {order_no}")
        return {"message": self.world.push_counterparty(order_no, content)}

    async def chat_drop(self, request: web.Request) -> Any:
        """Close the live socket abruptly."""
        return {"dropped": self.world.hub.drop()}

    async def chat_silence(self, request: web.Request) -> Any:
        """No pongs and no frames for some real seconds."""
        body = await _json_body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ControlError(400, 'give {"seconds": <number >= 0>}')
        self.world.hub.silence(float(seconds))
        return {"silent_for": seconds}

    async def chat_expire(self, request: web.Request) -> Any:
        """Expire every chat credential."""
        return {"expired": self.world.credentials.expire_all(self.world.clock.now_ms())}

    async def get_market(self, request: web.Request) -> Any:
        """Reference and competitors of one market (default: the first)."""
        markets = self.world.markets
        first = next(iter(markets.values()))
        key = (request.query.get("asset", first.asset), request.query.get("fiat", first.fiat))
        side = request.query.get("side") or None
        if key not in markets:
            raise ControlError(404, f"no market {key[0]}/{key[1]}")
        if side is not None and side not in SIDES:
            raise ControlError(400, "side is BUY or SELL (the advertiser's side)")
        return markets[key].to_control(side)


def add_control_routes(app: web.Application, world: World) -> None:
    """Register every /_sim/world/ route on `app`."""
    ctl = WorldControl(world)
    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]] = [
        ("GET", "/ads", ctl.get_ads), ("GET", "/orders", ctl.get_orders),
        ("POST", "/orders", ctl.create_order), ("POST", "/orders/{order_no}/status", ctl.set_status),
        ("GET", "/chat/sent", ctl.chat_sent), ("GET", "/chat/status", ctl.chat_status),
        ("POST", "/chat/push", ctl.chat_push), ("POST", "/chat/drop", ctl.chat_drop),
        ("POST", "/chat/silence", ctl.chat_silence), ("POST", "/chat/expire", ctl.chat_expire),
        ("GET", "/market", ctl.get_market),
    ]
    for method, path, fn in routes:
        app.router.add_route(method, PREFIX + path, _guarded(world, fn))
