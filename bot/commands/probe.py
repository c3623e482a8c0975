"""`probe`: call every read-only endpoint once and print the capability matrix.

A capability is `enabled` only once its endpoints answered: with the writes not probed,
`repricing` reads `unchecked` (never `enabled` on trust), and the exit status is 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.binance.endpoints import ENDPOINTS
from bot.capabilities.evidence import as_json, gather
from bot.capabilities.evidence import render as render_evidence
from bot.capabilities.registry import CapabilityRegistry
from bot.capabilities.table import CAPABILITIES
from bot.commands import options
from bot.commands.common import (
    EXIT_DEGRADED,
    EXIT_OK,
    ConfigError,
    credentials,
    fail,
    load_settings,
    make_client,
    open_store,
)
from bot.health import CapState, EndpointState
from bot.localtime import zone_of_file
from bot.logs import Redactor
from config.settings import Settings
from state.endpoints import EndpointLog
from state.meta import Meta

# Order matters: my_ads and list_orders teach the ids that ad_detail and order_detail need.
READ_ONLY = (
    "search", "reference_price", "categories", "my_ads", "ad_detail", "order_summary",
    "list_orders", "order_detail", "order_history", "chat_credential", "chat_messages",
    "get_ads", "key_permissions", "merchant_detail", "funding_asset",
)
WRITES = ("update_ad", "update_ad_status")


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """One line of the matrix."""

    endpoint: str
    method: str
    path: str
    state: str
    code: int | None
    message: str
    latency_ms: float | None
    note: str = ""


add_arguments = options.probe  # the options live in a light module (fast --help)


def run(args: argparse.Namespace) -> int:
    """Entry point of `probe`."""
    try:
        return asyncio.run(_main(args))
    except ConfigError as exc:
        return fail(exc)
    except KeyboardInterrupt:
        return EXIT_OK


async def _main(args: argparse.Namespace) -> int:
    settings = load_settings()
    creds = credentials(settings)
    async with open_store(settings.db) as store, make_client(creds) as client:
        reg = CapabilityRegistry(client, log=EndpointLog(store), meta=Meta(store))
        await reg.restore()
        reg.hints["asset"] = args.asset
        if args.fiat:
            reg.hints["fiat"] = args.fiat
        last = await EndpointLog(store).last_states()
        if args.watch:
            if not args.json:
                print(f"exchange: {settings.base_url}", flush=True)
            seen: list[list[ProbeRow]] = []
            def round_done(rows: list[ProbeRow]) -> None:
                seen.append(rows)
                _print_round(reg, rows, args.json)

            await watch(reg, args.watch, args.count, round_done)
            if args.evidence and seen:
                _say_evidence(args.evidence, evidence(reg, seen[-1], settings)[0])
            return _exit_status(reg)
        rows = await probe_once(reg, probe_writes=args.probe_writes, last=last)
        text, pack = evidence(reg, rows, settings)
        if args.json:
            doc = {"base_url": settings.base_url, **json.loads(render_json(reg, rows))}
            print(json.dumps({**doc, "evidence": pack} if args.evidence else doc))
            if args.evidence and args.evidence != "-":
                _say_evidence(args.evidence, text, quiet=True)
        else:
            print(f"exchange: {settings.base_url}\n{render(reg, rows)}")
            if args.evidence:
                _say_evidence(args.evidence, text)
        return _exit_status(reg)


def evidence(reg: CapabilityRegistry, rows: list[ProbeRow],
             settings: Settings) -> tuple[str, list[dict[str, Any]]]:
    """The evidence pack of this round, as text and as JSON, with the settings' secrets masked."""
    redactor = Redactor()
    for secret in (settings.api_key, settings.api_secret, settings.private_key_password):
        redactor.register(secret)
    tz = zone_of_file(settings.config)
    items = gather(rows, reg.client.last_seen, tz)
    caps = {n: ("paused" if reg.halted() else str(s.state)) for n, s in reg.capabilities().items()}
    text = render_evidence(items, base_url=settings.base_url, generated_at=reg.clock.time(),
                           tz=tz, capabilities=caps, redactor=redactor)
    return text, as_json(items, redactor)


def _say_evidence(target: str, text: str, quiet: bool = False) -> None:
    """Print the pack ('-') or write it to the file `target` (mode 600: the umask) and say so."""
    if target == "-":
        print(f"\n{text}", end="")
        return
    with open(target, "w", encoding="utf-8") as f:
        f.write(text)
    if not quiet:
        print(f"\nevidence for a support ticket: {target}")


def _exit_status(reg: CapabilityRegistry) -> int:
    states = {s.state for s in reg.capabilities().values()}
    return EXIT_OK if states == {CapState.ENABLED} and reg.halted() is None else EXIT_DEGRADED


async def probe_once(
    reg: CapabilityRegistry, *, probe_writes: bool = False, last: dict[str, Any] | None = None
) -> list[ProbeRow]:
    """Probe every read-only endpoint (and the writes if asked); one row each."""
    rows: dict[str, ProbeRow] = {}
    order = list(READ_ONLY)
    if "fiat" not in reg.hints:  # learn the market from the merchant's own ads first
        order.insert(0, order.pop(order.index("my_ads")))
    for name in order:
        note = ""
        if _needs_hint(name) and _needs_hint(name) not in reg.hints:
            note = f"not probed: no {_needs_hint(name).replace('_', ' ')} known"
        else:
            await reg.probe(name)
            _learn(reg)
        rows[name] = _row(reg, name, note)
    result = [rows[name] for name in READ_ONLY]
    for name in WRITES:
        result.append(await _write_row(reg, name, probe_writes, last or {}))
    return result


def _needs_hint(name: str) -> str:
    return {"ad_detail": "adv_no", "order_detail": "order_no"}.get(name, "")


def _learn(reg: CapabilityRegistry) -> None:
    """Take ids and the market from the replies of my_ads and list_orders."""
    ads = _first(reg, "my_ads")
    if ads:
        reg.hints.setdefault("adv_no", str(ads.get("advNo", "")))
        reg.hints.setdefault("fiat", str(ads.get("fiatUnit", "")))
        reg.hints.setdefault("asset", str(ads.get("asset", "")))
    order = _first(reg, "list_orders")
    if order and order.get("orderNumber"):
        reg.hints.setdefault("order_no", str(order["orderNumber"]))
    for key in [k for k, v in reg.hints.items() if not v]:
        del reg.hints[key]


def _first(reg: CapabilityRegistry, endpoint: str) -> dict[str, Any] | None:
    resp = reg.last_response.get(endpoint)
    data = resp.data if resp is not None else None
    return data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None


def _row(reg: CapabilityRegistry, name: str, note: str = "") -> ProbeRow:
    ep, h = ENDPOINTS[name], reg.health[name]
    latency = None if h.latency is None or note else round(h.latency * 1000, 1)
    return ProbeRow(name, ep.method, ep.path, str(h.state), h.code, h.message, latency, note)


async def _write_row(
    reg: CapabilityRegistry, name: str, probe_writes: bool, last: dict[str, Any]
) -> ProbeRow:
    if probe_writes:
        return _row(reg, name, await _probe_write(reg, name))
    seen = last.get(name)
    if seen is not None:
        reg.assume(name, EndpointState(seen.state), seen.code, seen.message)
        note = "not probed (a write): state as the daemon last saw it"
    else:
        note = "not probed (a write): use --probe-writes"
    return _row(reg, name, note)


async def _probe_write(reg: CapabilityRegistry, name: str) -> str:
    """The daemon's own write probe (bot.capabilities.table.WRITE_PROBES); the note says what it sent."""
    adv_no = reg.hints.get("adv_no")
    if not adv_no:
        return "not probed: no ad found to re-send"
    await reg.probe(name)
    sent = reg.probe_params.get(name)
    if sent is None:
        return f"not probed: could not read ad {adv_no} first"
    field, value = next((k, v) for k, v in sent.items() if k not in ("advNo", "advNos"))
    return f"re-sent ad {adv_no}'s current {field} {value}"


async def watch(
    reg: CapabilityRegistry,
    every: float,
    count: int | None,
    on_round: Callable[[list[ProbeRow]], None] | None = None,
    between: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Probe every `every` seconds (`count` rounds, or until cancelled); transitions are stored."""
    n = 0
    while count is None or n < count:
        rows = await probe_once(reg)
        if on_round is not None:
            on_round(rows)
        n += 1
        if count is not None and n >= count:
            break
        await (between() if between is not None else asyncio.sleep(every))


def _print_round(reg: CapabilityRegistry, rows: list[ProbeRow], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"at": time.time(), **json.loads(render_json(reg, rows))}), flush=True)
        return
    up = sum(1 for r in rows if r.state == "available")
    caps = ", ".join(f"{n} {s.state}" for n, s in reg.capabilities().items()
                     if s.state is not CapState.ENABLED) or "all enabled"
    halt = reg.halted()
    if halt is not None:
        caps = f"all {halt.says}"
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp}  {up}/{len(rows)} endpoints available; capabilities: {caps}", flush=True)


def render(reg: CapabilityRegistry, rows: list[ProbeRow]) -> str:
    """The matrix and the capability table as text."""
    lines = [f"{'endpoint':<17} {'method':<6} {'state':<12} {'code':>6} {'latency':>9}  message"]
    for r in rows:
        latency = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-"
        code = "" if r.code is None else str(r.code)
        said = r.note or r.message
        lines.append(f"{r.endpoint:<17} {r.method:<6} {r.state:<12} {code:>6} {latency:>9}  {said}")
    lines += ["", f"{'capability':<16} {'state':<9} {'source':<13} what the bot does"]
    halt = reg.halted()
    for name, status in reg.capabilities().items():
        spec = CAPABILITIES[name]
        if halt is not None:  # nothing is sent: every capability is down until it ends
            lines.append(f"{name:<16} {'paused':<9} {status.source or '-':<13} {halt.says}")
            continue
        what = spec.does if status.state is CapState.ENABLED else f"without it: {spec.without}"
        if status.state is CapState.DEGRADED:
            what = f"on its alternative: {spec.degraded}"
        elif status.state is CapState.UNCHECKED:
            what = f"not seen working: {', '.join(_unchecked(reg, name))} not called"
        lines.append(f"{name:<16} {status.state:<9} {status.source or '-':<13} {what}")
    return "\n".join(lines)


def _unchecked(reg: CapabilityRegistry, capability: str) -> list[str]:
    """The endpoints of the capability's source to try that have not answered yet."""
    source = next(s for s in CAPABILITIES[capability].sources
                  if s.name == reg.status(capability).source)
    return [e for e in source.endpoints if reg.state(e) is EndpointState.UNKNOWN]


def render_json(reg: CapabilityRegistry, rows: list[ProbeRow]) -> str:
    """The matrix and capabilities as JSON."""
    halt = reg.halted()
    caps = {n: {"state": "paused" if halt else str(s.state), "source": s.source,
                "without": halt.says if halt else CAPABILITIES[n].without,
                "paused_until": halt.until if halt else None}
            for n, s in reg.capabilities().items()}
    return json.dumps({"endpoints": [asdict(r) for r in rows], "capabilities": caps})
