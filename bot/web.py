"""The health, metrics and status server (aiohttp), bound to 127.0.0.1 by default.

| route | what |
|---|---|
| GET /healthz | the process and its event loop are alive (loop lag); never needs the token |
| GET /readyz | 200 when the `[capabilities] essential` capabilities were seen working and no ban runs, else 503 |
| GET /metrics | Prometheus text format (the bot's own CollectorRegistry) |
| GET /api/status | JSON: capabilities, endpoint timelines, ads, decisions, open orders |
| GET / | the status page (bot/web_static/, no external assets) |

With `P2PBOT_WEB_TOKEN` set, every route but /healthz needs `Authorization: Bearer
<token>`; the page also takes `/?token=...` once and sends the header itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web
from loguru import logger
from pydantic import SecretStr

from bot import status
from bot.metrics import CONTENT_TYPE, BotMetrics, LoopLag

if TYPE_CHECKING:
    from bot.app import Bot
    from config.settings import Settings

LAG_UNHEALTHY = 5.0  # seconds of loop lag (or of a silent lag monitor) that fail /healthz
OPEN = frozenset({"/healthz"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def page(nonce: str) -> str:
    """The status page with its stylesheet and script inlined (one response, one auth check)."""
    static = resources.files("bot") / "web_static"
    html = (static / "index.html").read_text(encoding="utf-8")
    return (html.replace("{{nonce}}", nonce)
            .replace("/*{{style}}*/", (static / "style.css").read_text(encoding="utf-8"))
            .replace("/*{{script}}*/", (static / "app.js").read_text(encoding="utf-8")))


class WebServer:
    """Serves one bot's health, metrics and status; a part of the bot (start/stop with it)."""

    def __init__(self, bot: Bot, *, host: str = "127.0.0.1", port: int = 8080,
                 token: SecretStr | None = None) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self.token = token.get_secret_value() if token is not None else ""
        self.lag = LoopLag()
        self.metrics = BotMetrics(bot, self.lag)
        self.metrics.attach()
        self.started = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL once started."""
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_route)
        app.router.add_get("/api/status", self.api_status)
        app.router.add_get("/", self.index)
        return app

    async def start(self) -> None:
        """Listen (port 0: any free port; `port` then holds the one chosen)."""
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.started.set()
        logger.info("status page, /healthz, /readyz, /metrics on {}/{}", self.url,
                    " (bearer token required)" if self.token else "")

    async def serve(self) -> None:
        """The bot part: start, then sample the loop lag until cancelled."""
        try:
            await self.start()
        except OSError as exc:
            logger.error("web server: cannot listen on {}:{} ({}); running without it",
                         self.host, self.port, exc.strerror or exc)
            return
        self.metrics.attach_desk()
        await self.lag.run()

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # --- auth ------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token and request.path not in OPEN and not self._authorised(request):
            return web.json_response({"error": "unauthorised: send Authorization: Bearer <token>"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" and request.path == "/":
            value = request.query.get("token", "")
        return hmac.compare_digest(value.strip().encode(), self.token.encode())

    # --- routes ----------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the loop runs and wakes on time; 503 when it lags or the sampler stopped."""
        age = self.lag.age()
        stale = age is not None and age > self.lag.interval + LAG_UNHEALTHY
        ok = self.lag.last < LAG_UNHEALTHY and not stale
        now = self.bot.clock.time()
        body = {"status": "ok" if ok else "lagging", "loop_lag_seconds": self.lag.last,
                "loop_lag_max_seconds": self.lag.max, "lag_samples": self.lag.samples,
                "pid": os.getpid(),
                "uptime_seconds": None if self.bot.started_at is None else now - self.bot.started_at}
        return web.json_response(body, status=200 if ok else 503)

    async def readyz(self, request: web.Request) -> web.Response:
        """200 when every essential capability has been seen working and no IP ban runs; else
        503 with those not seen working (unchecked ones too) and the ban's end."""
        ready, down = status.readiness(self.bot)
        caps = {c["name"]: c for c in status.capabilities(self.bot)}
        body = {"ready": ready, "essential": list(self.bot.cfg.capabilities.essential),
                "banned_until": self.bot.registry.banned_until(),
                "down": [{"capability": n, "state": caps[n]["state"], "cause": caps[n]["cause"],
                          "causes": caps[n]["causes"], "without": caps[n]["without"]}
                         for n in down]}
        return web.json_response(body, status=200 if ready else 503, dumps=_dumps)

    async def metrics_route(self, request: web.Request) -> web.Response:
        """Prometheus exposition."""
        with contextlib.suppress(Exception):  # a desk error must not break the scrape
            self.metrics.open_orders = await status.open_orders(self.bot) or []
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def api_status(self, request: web.Request) -> web.Response:
        """The JSON document the page draws."""
        try:
            hours = min(168.0, max(0.1, float(request.query.get("hours", status.HISTORY_HOURS))))
        except ValueError:
            raise web.HTTPBadRequest(text="hours must be a number") from None
        try:
            orders = await status.open_orders(self.bot)
        except Exception as exc:  # the desk is optional and someone else's: report, do not fail
            logger.warning("status: open orders unavailable: {}", exc)
            orders = None
        extra = {"loop_lag_seconds": self.lag.last, "auth": bool(self.token),
                 "orders_known": orders is not None}
        doc = await status.build(self.bot, hours, orders, extra)
        return web.json_response(doc, dumps=_dumps)

    async def index(self, request: web.Request) -> web.Response:
        """The status page."""
        nonce = secrets.token_urlsafe(16)
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")
        return web.Response(text=page(nonce), content_type="text/html", charset="utf-8",
                            headers={"Content-Security-Policy": csp})


def attach_web(bot: Bot, settings: Settings | None = None, *, host: str | None = None,
               port: int | None = None) -> WebServer:
    """Build the server for `bot` from `[web]` and P2PBOT_WEB_TOKEN; it runs and stops with the bot."""
    web_cfg = bot.cfg.web
    token = getattr(settings, "web_token", None) if settings is not None else None
    server = WebServer(bot, host=host or web_cfg.host, port=web_cfg.port if port is None else port,
                       token=token)
    bot.parts.tasks.append(server.serve)
    bot.parts.closers.append(server.close)
    return server
