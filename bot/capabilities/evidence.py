"""probe's evidence pack: what to paste into a Binance support ticket about an endpoint.

-2008 cases are settled with Binance's merchant support, who ask per endpoint what was
called, when, what came back and the request id. The pack says exactly that, per endpoint:
method and path, the HTTP status, the exchange's code and message, the time in UTC (the
exchange's clock) and in the merchant's zone, and every id the exchange gave the request
(SignedClient.last_seen). It never holds the API key, the secret, a signature or a query
string: only the path is named, and every registered secret is masked once more at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import tzinfo
from typing import Any

from bot.binance.client import Seen
from bot.binance.endpoints import ENDPOINTS
from bot.localtime import show, utc, zone_name
from bot.logs import Redactor

HEADER = "p2pbot probe: evidence for a Binance support ticket"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One endpoint's line of evidence."""

    endpoint: str
    method: str
    path: str
    state: str
    http_status: int | None
    code: int | None
    message: str
    time_utc: str | None
    time_local: str | None
    request_ids: dict[str, str]
    note: str = ""


def gather(rows: Iterable[Any], seen: Mapping[str, Seen], tz: tzinfo) -> list[Evidence]:
    """One Evidence per probe row (ProbeRow-like: endpoint, state, code, message, note)."""
    found = []
    for row in rows:
        ep, last = ENDPOINTS[row.endpoint], seen.get(row.endpoint)
        sent = last is not None and not row.note.startswith("not probed")
        found.append(Evidence(
            row.endpoint, ep.method, ep.path, row.state,
            last.status if sent and last else None, row.code, row.message,
            utc(last.at) if sent and last else None,
            show(last.at, tz) if sent and last else None,
            dict(last.ids) if sent and last else {}, row.note))
    return found


def render(items: Sequence[Evidence], *, base_url: str, generated_at: float, tz: tzinfo,
           capabilities: Mapping[str, str], redactor: Redactor) -> str:
    """The pack as text: a header, then one block per endpoint; secrets masked."""
    lines = [HEADER, "",
             f"generated: {utc(generated_at)} ({show(generated_at, tz)}, {zone_name(tz)})",
             f"exchange:  {base_url}",
             "API key:   not included (name the key by its label in API Management)", "",
             "capabilities: " + ", ".join(f"{n} {s}" for n, s in capabilities.items()), ""]
    for e in items:
        lines.append(f"{e.endpoint}: {e.method} {e.path}")
        lines.append(f"  result:     {_result(e)}")
        if e.time_utc:
            lines.append(f"  time:       {e.time_utc} ({e.time_local})")
        ids = ", ".join(f"{k}: {v}" for k, v in e.request_ids.items())
        lines.append(f"  request id: {ids or 'none given by the exchange'}")
        lines.append("")
    return redactor.redact("\n".join(lines))


def _result(e: Evidence) -> str:
    if e.note.startswith("not probed"):
        return e.note
    said = [f"HTTP {e.http_status}"] if e.http_status is not None else []
    if e.code is not None:
        said.append(f"code {e.code}")
    if e.message:
        said.append(repr(e.message[:300]))
    return f"{e.state}" + (f" ({', '.join(said)})" if said else "")


def as_json(items: Sequence[Evidence], redactor: Redactor) -> list[dict[str, Any]]:
    """The pack as JSON-ready dicts, secrets masked."""
    return [redactor.redact_value(asdict(e)) for e in items]
