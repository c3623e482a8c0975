"""The desk page of one instance: it and its `[desk] peers` in one table (GET /desk, /api/desk).

The page holds no data (like the status page, it is served without the token); it
fetches /api/desk with the bearer token, which reads this bot's own status in-process
and every peer's /api/status concurrently (bot/accounts/overview.py): a peer that is slow,
unreachable or answers garbage is a row that says so within `[desk] timeout`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import SecretStr

from bot.accounts.overview import HOURS, Peer, Row, failed, read_all, summarise
from bot.ops import status_api as status
from config.secret_files import SecretFileError, read_secret

if TYPE_CHECKING:
    from bot.ops.web import WebServer
    from config.models import DeskPeer


def peer_of(cfg: DeskPeer) -> Peer:
    """The peer to read; SecretFileError when its token file cannot be used."""
    token = None
    if cfg.token_file is not None:
        token = SecretStr(read_secret(Path(cfg.token_file), "[desk] peers → token_file"))
    return Peer(cfg.url, token, cfg.name)


async def own_row(server: WebServer) -> Row:
    """This instance's row, from its status document built in-process."""
    bot = server.bot
    try:
        orders = await status.open_orders(bot)
    except Exception:  # the desk is optional: its failure is the orders cell, not the page
        orders = None
    doc = await status.build(bot, HOURS, orders, {"orders_known": orders is not None})
    me = Peer(server.url, None, bot.cfg.desk.name)
    return summarise(doc, me)


async def rows(server: WebServer) -> list[Row]:
    """This instance first, then every peer in the order configured."""
    desk = server.bot.cfg.desk
    readable: list[Peer] = []
    spoiled: dict[int, Row] = {}
    for i, cfg in enumerate(desk.peers):
        try:
            readable.append(peer_of(cfg))
        except SecretFileError as exc:
            spoiled[i] = failed(Peer(cfg.url, None, cfg.name), f"token file: {exc}")
    read = iter(await read_all(readable, desk.timeout))
    peers = [spoiled[i] if i in spoiled else next(read) for i in range(len(desk.peers))]
    return [await own_row(server), *peers]


def add_desk_routes(app: web.Application, server: WebServer) -> None:
    """GET /desk (the page) and GET /api/desk (the rows, behind the token)."""

    async def api_desk(request: web.Request) -> web.Response:
        return web.json_response({"rows": [r.as_json() for r in await rows(server)],
                                  "timeout": server.bot.cfg.desk.timeout})

    async def desk_page(request: web.Request) -> web.Response:
        nonce = secrets.token_urlsafe(16)
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return web.Response(text=PAGE.replace("{{nonce}}", nonce), content_type="text/html",
                            charset="utf-8", headers={"Content-Security-Policy": csp})

    app.router.add_get("/api/desk", api_desk)
    app.router.add_get("/desk", desk_page)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>p2pbot desk</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{{nonce}}">
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4em;
text-align:left;vertical-align:top}th{background:#f4f4f4}.bad{color:#b00020;font-weight:600}
.ok{color:#08660d;font-weight:600}#ask{display:none;margin:1em 0}small{color:#666}
</style></head><body>
<h1>p2pbot desk</h1>
<form id="ask"><label>web token <input id="token" type="password" autocomplete="off"></label>
<button>show</button> <span id="why"></span></form>
<table><thead><tr><th>account</th><th>health</th><th>capabilities</th><th>ads (price, rank)</th>
<th>orders</th><th>alerts</th><th>last decision</th></tr></thead><tbody id="rows"></tbody></table>
<p><small id="when"></small></p>
<script nonce="{{nonce}}">
(() => {
  "use strict";
  const KEY = "p2pbot-token";  // the status page's key: one token entered serves both pages
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("token")) { sessionStorage.setItem(KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname); }
  let token = sessionStorage.getItem(KEY);
  const cell = (text, cls) => { const td = document.createElement("td");
    td.textContent = text; if (cls) td.className = cls; return td; };
  function draw(rows) {
    const body = document.getElementById("rows");
    body.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr");
      tr.append(cell(r.account), cell(r.health, r.health === "ok" ? "ok" : "bad"),
        cell(r.capabilities || "-"), cell(r.ads.join("; ") || "-"), cell(r.orders || "-"),
        cell(r.alerts.join("; ") || "-", r.alerts.length ? "bad" : ""), cell(r.last || "-"));
      return tr; }));
    document.getElementById("when").textContent = "read at " + new Date().toLocaleTimeString();
  }
  async function load() {
    const resp = await fetch("/api/desk", { headers: token ? { Authorization: "Bearer " + token } : {},
      cache: "no-store" });
    if (resp.status === 401) { document.getElementById("ask").style.display = "block";
      document.getElementById("why").textContent = token ? "this token was refused" : ""; return; }
    draw((await resp.json()).rows);
  }
  document.getElementById("ask").addEventListener("submit", (event) => {
    event.preventDefault(); token = document.getElementById("token").value.trim();
    sessionStorage.setItem(KEY, token); document.getElementById("ask").style.display = "none"; load();
  });
  load(); setInterval(load, 10000);
})();
</script></body></html>
"""
