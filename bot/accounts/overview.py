"""The desk overview: every account's /api/status read at once, one row per account.

Each instance is read concurrently under its own timeout: one that is unreachable,
slow, refuses the token or answers something that is not its status document is a
row that says so, within its timeout, and never holds up the others. `summarise` is
pure (a status document in, a row out); `read_all` does the I/O.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

DEFAULT_TIMEOUT = 5.0  # seconds per instance
HOURS = 0.1  # the status window asked for: the overview needs no price history
MAX_BYTES = 4 * 1024 * 1024  # a status document larger than this is garbage
LAST_WIDTH = 60  # characters of the last decision's reason in the table


@dataclass(frozen=True)
class Peer:
    """One instance to read: its base URL, its bearer token, a name to show (else derived)."""

    url: str
    token: SecretStr | None = None
    name: str = ""


@dataclass
class Row:
    """One account in the overview. `health` is ok, not ready, or what went wrong reading it."""

    account: str
    url: str
    health: str
    capabilities: str = ""
    ads: list[str] = field(default_factory=list)
    orders: str = ""
    alerts: list[str] = field(default_factory=list)
    last: str = ""

    @property
    def reachable(self) -> bool:
        """Whether a status document was read."""
        return self.health in ("ok", "not ready")

    def as_json(self) -> dict[str, Any]:
        """The row for the desk page."""
        return {**asdict(self), "reachable": self.reachable}


class Garbage(ValueError):
    """The answer is not a status document."""


def account_name(doc: dict[str, Any], peer: Peer) -> str:
    """The peer's given name, else the document's `account`, else its config file's folder."""
    if peer.name:
        return peer.name
    if isinstance(doc.get("account"), str) and doc["account"]:
        return str(doc["account"])
    config = doc.get("config")
    return Path(config).parent.name if isinstance(config, str) and config else peer.url


def _capabilities(caps: list[dict[str, Any]]) -> tuple[str, list[str]]:
    up = [c for c in caps if c.get("state") in ("enabled", "degraded")]
    down = [c for c in caps if c.get("state") not in ("enabled", "degraded")]
    text = f"{len(up)}/{len(caps)} up"
    if down:
        text += "; " + ", ".join(f"{c.get('name')} {c.get('state')}" for c in down)
    alerts = [f"{c.get('name')} lost" for c in down
              if c.get("state") == "disabled" and c.get("essential")]
    return text, alerts


def _ad(ad: dict[str, Any]) -> str:
    rank = ad.get("rank")
    where = f" #{rank}" if rank is not None else " (rank unknown)"
    price = ad.get("price") or "no price"
    text = f"{ad.get('label')}: {price}{where}"
    return text + (f" [{ad['problem']}]" if ad.get("problem") else "")


def _orders(orders: list[dict[str, Any]], known: Any) -> str:
    if known is False:
        return "unknown"
    paid = sum(1 for o in orders if o.get("status") == 2)
    appeal = sum(1 for o in orders if o.get("status") == 3)
    text = f"{len(orders)} open"
    parts = [f"{paid} paid"] * bool(paid) + [f"{appeal} in appeal"] * bool(appeal)
    return text + (f" ({', '.join(parts)})" if parts else "")


def _last(decisions: list[dict[str, Any]]) -> str:
    if not decisions:
        return "none yet"
    d = decisions[0]
    reason = str(d.get("reason") or "")
    if len(reason) > LAST_WIDTH:
        reason = reason[:LAST_WIDTH - 1] + "…"
    return f"{d.get('ad')}: {d.get('result')}, {reason}"


def _alerts(doc: dict[str, Any]) -> list[str]:
    alerts = []
    if doc.get("banned_until"):
        alerts.append("banned by the exchange")
    elif doc.get("paused_until"):
        alerts.append("paused by the exchange (429)")
    if doc.get("kill_switch"):
        alerts.append("kill switch on")
    if doc.get("dry_run"):
        alerts.append("dry run")
    return alerts


def summarise(doc: Any, peer: Peer) -> Row:
    """A row from one status document; Garbage when it is not one."""
    if not isinstance(doc, dict):
        raise Garbage(f"a JSON {type(doc).__name__}, not a status document")
    try:
        caps_text, cap_alerts = _capabilities(list(doc["capabilities"]))
        ads = [_ad(a) for a in doc["ads"]]
        row = Row(account=account_name(doc, peer), url=peer.url,
                  health="ok" if doc["ready"] else "not ready", capabilities=caps_text, ads=ads,
                  orders=_orders(list(doc.get("orders") or []), doc.get("orders_known")),
                  alerts=_alerts(doc) + cap_alerts, last=_last(list(doc.get("decisions") or [])))
    except (KeyError, TypeError, AttributeError) as exc:
        raise Garbage(f"not a status document (missing or odd {exc})") from None
    if not doc["ready"]:
        row.alerts.insert(0, "not ready: " + (", ".join(map(str, doc.get("essential_down") or []))
                                              or "starting"))
    return row


def failed(peer: Peer, health: str) -> Row:
    """The row of an instance that could not be read."""
    return Row(account=peer.name or peer.url, url=peer.url, health=health)


async def fetch_status(session: aiohttp.ClientSession, peer: Peer) -> Any:
    """The decoded /api/status of `peer`; Garbage when it answers something else."""
    headers = {"Authorization": f"Bearer {peer.token.get_secret_value()}"} if peer.token else {}
    url = peer.url.rstrip("/") + "/api/status"
    async with session.get(url, params={"hours": str(HOURS)}, headers=headers,
                           allow_redirects=False) as resp:
        if resp.status != 200:
            raise Garbage(f"HTTP {resp.status}" + (" (the token was refused)"
                                                   if resp.status in (401, 403) else ""))
        body = await resp.content.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise Garbage(f"an answer over {MAX_BYTES} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Garbage("an answer that is not JSON") from None


async def read_one(session: aiohttp.ClientSession, peer: Peer, within: float) -> Row:
    """One instance's row within `within` seconds, whatever happens."""
    try:
        async with asyncio.timeout(within):
            doc = await fetch_status(session, peer)
        return summarise(doc, peer)
    except TimeoutError:
        return failed(peer, f"slow: no answer within {within:g} s")
    except Garbage as exc:
        return failed(peer, f"garbage: {exc}" if not str(exc).startswith("HTTP") else str(exc))
    except aiohttp.ClientError as exc:
        return failed(peer, f"unreachable: {getattr(exc, 'strerror', None) or type(exc).__name__}")
    except OSError as exc:
        return failed(peer, f"unreachable: {exc.strerror or exc}")


async def read_all(peers: Sequence[Peer], within: float = DEFAULT_TIMEOUT) -> list[Row]:
    """Every peer's row, read concurrently; the whole takes at most about `within`."""
    client_timeout = aiohttp.ClientTimeout(total=None, connect=within)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        return list(await asyncio.gather(*(read_one(session, p, within) for p in peers)))


COLUMNS = ("account", "health", "capabilities", "ads (price, rank)", "orders", "alerts",
           "last decision")


def cells(row: Row) -> list[str]:
    """The row's cells in COLUMNS order."""
    return [row.account, row.health, row.capabilities, "; ".join(row.ads) or "-", row.orders or "-",
            "; ".join(row.alerts) or "-", row.last or "-"]


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table with a header line, columns padded to their widest cell."""
    table = [list(COLUMNS), *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in table)
