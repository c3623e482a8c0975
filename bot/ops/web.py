"""The health, metrics and status server (aiohttp), bound to 127.0.0.1 by default.

| route | what |
|---|---|
| GET /healthz | the process and its event loop are alive (loop lag); never needs the token |
| GET /readyz | 200 when the `[capabilities] essential` capabilities were seen working and no ban or 429 pause runs, else 503 |
| GET /metrics | Prometheus text format (the bot's own CollectorRegistry) |
| GET /api/status | JSON: capabilities, endpoint timelines, ads, decisions, open orders |
| GET /api/report | JSON: the last `days` (14) days of trade, per day, in the merchant's zone |
| GET / | the status page (bot/ops/web_static/, no external assets, no data of its own) |
| GET /api/desk, GET /desk | this instance and its `[desk] peers` in one table (bot/accounts/page.py) |

With `P2PBOT_WEB_TOKEN` set, every route but /healthz and the page needs `Authorization:
Bearer <token>`, and only that: a token in a URL ends up in logs and browser history. The
page asks for the token (or reads it from the URL fragment `#token=...`, which browsers
never send) and sends the header itself.

Without a token the server listens on loopback only (`listen_web` refuses any other host,
exit 2) and answers only requests whose Host is a loopback name or `[web] host`: a page
elsewhere whose name an attacker points at 127.0.0.1 (DNS rebinding) gets 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web
from loguru import logger
from pydantic import SecretStr

from bot.accounts.page import add_desk_routes
from bot.alerts.acks import UnknownAlert, acknowledge
from bot.commands.common import ConfigError
from bot.console.status import console_status
from bot.ops import report_api
from bot.ops import status_api as status
from bot.ops.metrics import CONTENT_TYPE, BotMetrics, LoopLag
from state.alerts import AlertStore

if TYPE_CHECKING:
    from bot.app import Bot
    from config.models import WebConfig
    from config.settings import Settings

LAG_UNHEALTHY = 5.0  # seconds of loop lag (or of a silent lag monitor) that fail /healthz
OPEN = frozenset({"/healthz", "/", "/desk"})  # the page holds no data: it fetches /api/status with the token
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
PORT_FAULTS = frozenset({errno.EADDRINUSE, errno.EACCES})  # else the host is at fault


class WebRefused(Exception):
    """The server must not listen on this host (see `host_problem`); `run` exits 2."""


# --- where the server may listen, and which Host it answers --------------------------------------


def _ip(text: str) -> IP | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_loopback_name(name: str) -> bool:
    """`localhost`, a name under `.localhost` (RFC 6761), or a loopback IP: without resolving."""
    name = name.lower().rstrip(".")
    ip = _ip(name)
    return name == "localhost" or name.endswith(".localhost") or (ip is not None and ip.is_loopback)


def host_name(header: str) -> str | None:
    """The name in a Host header, without its port and lower-cased; None when malformed."""
    if header.startswith("["):
        inside, closed, rest = header[1:].partition("]")
        port_ok = not rest or (rest.startswith(":") and rest[1:].isdigit())
        return inside.lower() if closed and port_ok and isinstance(_ip(inside), ipaddress.IPv6Address) else None
    name, colon, port = header.partition(":")
    if colon and not port.isdigit():
        return None
    return name.lower().rstrip(".") or None


def host_allowed(header: str, configured: str) -> bool:
    """Whether a request with this Host is answered without a token: a loopback name or `[web] host`.

    Never resolved: under DNS rebinding the attacker's name does resolve to 127.0.0.1.
    """
    name = host_name(header)
    return name is not None and (is_loopback_name(name) or name == configured.lower().rstrip("."))


def addresses(host: str) -> set[IP]:
    """The addresses `host` stands for (an IP, or a name resolved); OSError when it is neither."""
    ip = _ip(host)
    if ip is not None:
        return {ip}
    found = {_ip(str(info[4][0]).partition("%")[0]) for info in
             socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    return {a for a in found if a is not None}


def host_problem(host: str, token: bool) -> str | None:
    """Why the server must not listen on `host`, or None: it must resolve, and leave the
    machine only with a token (no token: anyone on the network reads the desk)."""
    try:
        found = addresses(host)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"{host} is not an IP address or a name that resolves ({reason})"
    if not token and not (found and all(a.is_loopback for a in found)):
        return (f"{host} is reachable from the network and P2PBOT_WEB_TOKEN is not set: set it "
                "(or P2PBOT_WEB_TOKEN_FILE), or keep host = \"127.0.0.1\" and use an SSH tunnel")
    return None


def _token(settings: Settings | None) -> SecretStr | None:
    token = getattr(settings, "web_token", None) if settings is not None else None
    return token if isinstance(token, SecretStr) and token.get_secret_value() else None


def web_problems(cfg: WebConfig, token: SecretStr | None, path: Path) -> list[str]:
    """`[web]` problems `check-config` and `run` refuse (exit 2), as 'FILE: [web] → host: ...'."""
    has_token = token is not None and bool(token.get_secret_value())
    problem = host_problem(cfg.host, has_token) if cfg.enabled else None
    return [] if problem is None else [f"{path}: [web] → host: {problem}"]


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def page(nonce: str) -> str:
    """The status page with its stylesheet and script inlined (one response, one auth check)."""
    static = resources.files("bot.ops") / "web_static"
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
        self.closing: asyncio.Task[None] | None = None  # see listen_web
        self.serving = False  # the bot has started and runs this part

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
        app.router.add_get("/api/report", self.api_report)
        app.router.add_post("/api/alerts/{id}/ack", self.ack_alert)
        app.router.add_get("/", self.index)
        add_desk_routes(app, self)
        return app

    async def start(self) -> None:
        """Listen (port 0: any free port; `port` then holds the one chosen); WebRefused, OSError."""
        problem = host_problem(self.host, bool(self.token))
        if problem is not None:
            raise WebRefused(problem)
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
        """The bot part: start (unless `listen_web` did), then sample the loop lag until cancelled."""
        try:
            if self._runner is None:
                await self.start()
        except (OSError, WebRefused) as exc:
            logger.error("web server: cannot listen on {}:{} ({}); running without it",
                         self.host, self.port, getattr(exc, "strerror", None) or exc)
            return
        self.serving = True
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
        if not self.token and not host_allowed(request.headers.get(hdrs.HOST, ""), self.host):
            return web.json_response(
                {"error": "unknown Host: without P2PBOT_WEB_TOKEN the server answers only "
                          "localhost, loopback addresses and [web] host"}, status=403)
        if self.token and request.path not in OPEN and not self._authorised(request):
            return web.json_response({"error": "unauthorised: send Authorization: Bearer <token>"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def _authorised(self, request: web.Request) -> bool:
        """`Authorization: Bearer <token>` and nothing else (no query string, no Basic)."""
        scheme, _, value = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        try:
            given = value.strip().encode()
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
            return False
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self.token.encode())

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
        """200 when the bot runs and every essential capability has been seen working and no IP
        ban or 429 pause runs; else 503 with those not seen working (unchecked ones too; all of
        them during a ban or pause), the ban's or pause's end, or `starting` (`run` listens
        before it checks the key and reads the ads)."""
        capable, down = status.readiness(self.bot)
        ready = capable and self.serving
        caps = {c["name"]: c for c in status.capabilities(self.bot)}
        body = {"ready": ready, "starting": not self.serving,
                "essential": list(self.bot.cfg.capabilities.essential),
                "banned_until": self.bot.registry.banned_until(),
                "paused_until": self.bot.registry.paused_until(),
                "down": [{"capability": n, "state": caps[n]["state"], "cause": caps[n]["cause"],
                          "causes": caps[n]["causes"], "without": caps[n]["without"]}
                         for n in down]}
        return web.json_response(body, status=200 if ready else 503, dumps=_dumps)

    async def metrics_route(self, request: web.Request) -> web.Response:
        """Prometheus exposition."""
        with contextlib.suppress(Exception):  # a desk error must not break the scrape
            self.metrics.open_orders = await status.open_orders(self.bot) or []
        with contextlib.suppress(Exception):
            await self.metrics.refresh()
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
                 "orders_known": orders is not None, **await console_status(self.bot)}
        doc = await status.build(self.bot, hours, orders, extra)
        return web.json_response(doc, dumps=_dumps)

    async def api_report(self, request: web.Request) -> web.Response:
        """The daily trade the page charts (bot/ops/report_api.py)."""
        try:
            days = int(request.query.get("days", report_api.DAYS))
        except ValueError:
            raise web.HTTPBadRequest(text="days must be a whole number") from None
        return web.json_response(await report_api.daily(self.bot, days), dumps=_dumps)
    async def ack_alert(self, request: web.Request) -> web.Response:
        """Acknowledge an alert (the page's button): only with the bearer token configured,
        so no other page open in the same browser can acknowledge for you."""
        if not self.token:
            return web.json_response({"error": "set P2PBOT_WEB_TOKEN to acknowledge alerts from "
                                               "the page (or use p2pbot ack ID)"}, status=403)
        try:
            rows = await acknowledge(AlertStore(self.bot.store), request.match_info["id"], "web",
                                     self.bot.clock.time())
        except UnknownAlert as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"acknowledged": [r.id for r in rows]})

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
    server = WebServer(bot, host=host or web_cfg.host, port=web_cfg.port if port is None else port,
                       token=_token(settings))
    bot.add_part(server.serve, server.close)
    return server


async def listen_web(bot: Bot, settings: Settings, path: Path) -> WebServer:
    """`attach_web` and listen now, before any request is sent: a host that must not or cannot
    be listened on is a ConfigError naming `[web] host` or `port` (exit 2), not a bot without
    /healthz."""
    server = attach_web(bot, settings)
    try:
        await server.start()
    except WebRefused as exc:
        raise ConfigError(f"{path}: [web] → host: {exc}") from None
    except OSError as exc:
        key = "port" if exc.errno in PORT_FAULTS else "host"
        raise ConfigError(f"{path}: [web] → {key}: cannot listen on {server.host}:{server.port} "
                          f"({exc.strerror or exc})") from None
    server.closing = asyncio.create_task(_close_with_the_loop(server))
    return server


async def _close_with_the_loop(server: WebServer) -> None:
    """Close `server` when cancelled: `asyncio.run` cancels this task on its way out, so the
    socket is closed even when `run` returns before the bot runs (its parts' closers)."""
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
