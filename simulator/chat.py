"""The chat websocket server: credentials, one socket per account, pings, and the control knobs.

Refusal: a bad, expired, used or tainted credential gets HTTP 401 before the upgrade, with a
JSON body {"code": 401, "msg": reason}. A socket replaced by a newer connection is closed with
code 4001 ("kicked"); a socket that misses a pong is closed with 1011; shutdown closes with 1001.
The protocol (parsing, serialising, storing) lives in `simulator.world.chatlog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from simulator.clock import VirtualClock
from simulator.world.config import ChatConfig
from simulator.world.data import Ids

KICKED = 4001


@dataclass(slots=True)
class Credential:
    """One listenToken and its state."""

    token: str
    expires_ms: int
    used: bool = False
    tainted: bool = False  # fetched with extra query parameters


class Credentials:
    """The account's listen key and the tokens issued for it."""

    def __init__(self, ids: Ids, cfg: ChatConfig) -> None:
        self._ids, self._cfg = ids, cfg
        self.listen_key = f"c2c_{ids.hex(32)}_v2"
        self._tokens: dict[str, Credential] = {}

    def issue(self, now_ms: int, *, tainted: bool = False) -> dict[str, str]:
        """A fresh credential: {listenKey, listenToken}."""
        token = f"TOKEN{self._ids.hex(32)}"
        self._tokens[token] = Credential(token, now_ms + self._cfg.credential_ttl_seconds * 1000,
                                         tainted=tainted)
        return {"listenKey": self.listen_key, "listenToken": token}

    def admit(self, listen_key: str, token: str, now_ms: int) -> str | None:
        """None when the socket may open (and the token is spent if single-use), else why not."""
        cred = self._tokens.get(token)
        if listen_key != self.listen_key:
            return "unknown listen key"
        if cred is None:
            return "invalid token"
        if now_ms >= cred.expires_ms:
            return "token expired"
        if cred.used and self._cfg.single_use:
            return "token already used"
        if cred.tainted:
            return "credential was fetched with extra query parameters"
        cred.used = True
        return None

    def expire_all(self, now_ms: int) -> int:
        """Expire every live credential; returns how many were live."""
        live = [c for c in self._tokens.values() if c.expires_ms > now_ms]
        for cred in live:
            cred.expires_ms = now_ms
        return len(live)


@dataclass(slots=True, eq=False)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    awaiting_pong: bool = False


class ChatHub:
    """Serves GET /chat/{listen_key}: one live socket, frames pushed by the world."""

    def __init__(self, cfg: ChatConfig, credentials: Credentials, clock: VirtualClock,
                 on_text: Callable[[str], list[dict[str, Any]]]) -> None:
        self._cfg, self._credentials, self._clock = cfg, credentials, clock
        self._on_text = on_text
        self._current: _Connection | None = None
        self._silent_until = 0.0  # monotonic seconds: silence is real time, like a client watchdog
        self.connections = 0

    @property
    def connected(self) -> bool:
        """Whether a socket is open."""
        return self._current is not None

    @property
    def silent(self) -> bool:
        """Whether the server currently neither answers pings nor sends frames."""
        return time.monotonic() < self._silent_until

    def push(self, frame: dict[str, Any]) -> None:
        """Send a frame to the live socket, if any and not silent (messages are stored anyway)."""
        if self._current is not None and not self.silent:
            self._current.queue.put_nowait(json.dumps(frame, ensure_ascii=False))

    def silence(self, seconds: float) -> float:
        """Stop answering pings and sending frames for `seconds` of real time."""
        self._silent_until = time.monotonic() + max(0.0, seconds)
        return self._silent_until

    def drop(self) -> bool:
        """Close the live socket abruptly (no close frame); False when none was open."""
        conn, self._current = self._current, None
        if conn is None:
            return False
        transport = conn.request.transport
        if transport is not None:
            transport.abort()
        return True

    async def close_all(self, _app: web.Application | None = None) -> None:
        """Close the live socket politely (app shutdown)."""
        conn, self._current = self._current, None
        if conn is not None:
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The websocket route: check the credential, kick the old socket, serve this one."""
        reason = self._credentials.admit(request.match_info["listen_key"],
                                         request.query.get("token", ""), self._clock.now_ms())
        if reason is not None:
            return web.json_response({"code": 401, "msg": reason}, status=401)
        ws = web.WebSocketResponse(autoping=False)  # pings are ours: silence must stop them
        await ws.prepare(request)
        conn = _Connection(ws, request)
        old, self._current = self._current, conn
        self.connections += 1
        if old is not None:
            await old.ws.close(code=KICKED, message=b"kicked: another connection opened")
        tasks = [asyncio.create_task(self._sender(conn)), asyncio.create_task(self._pinger(conn))]
        try:
            await self._reader(conn)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._current is conn:
                self._current = None
        return ws

    async def _reader(self, conn: _Connection) -> None:
        async for msg in conn.ws:
            if msg.type is WSMsgType.TEXT:
                frames = self._on_text(msg.data)  # recorded even while silent
                for frame in frames if not self.silent else ():
                    conn.queue.put_nowait(json.dumps(frame, ensure_ascii=False))
            elif msg.type is WSMsgType.PING and not self.silent:
                await conn.ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                conn.awaiting_pong = False

    async def _sender(self, conn: _Connection) -> None:
        while not conn.ws.closed:
            frame = await conn.queue.get()
            if self.silent:
                continue  # dropped: the client re-reads stored messages over REST
            with contextlib.suppress(ConnectionError):
                await conn.ws.send_str(frame)

    async def _pinger(self, conn: _Connection) -> None:
        interval = self._cfg.ping_interval_seconds
        if not interval:
            return
        while not conn.ws.closed:
            await self._clock.pause(interval)  # real time, unless the clock is stepped
            if self.silent:
                continue
            if conn.awaiting_pong:
                await conn.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"no pong")
                return
            conn.awaiting_pong = True
            with contextlib.suppress(ConnectionError):
                await conn.ws.ping()
