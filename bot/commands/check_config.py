"""`check-config`: validate the environment and the TOML file, print the resolved plan, send nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from bot.commands import options
from bot.commands.common import EXIT_CONFIG, EXIT_OK, ConfigError, load_settings
from bot.console.overrides import apply_overrides
from bot.console.overrides import describe as describe_overrides
from bot.console.telegram import telegram_problems
from bot.ops.web import is_loopback_name, web_problems
from bot.schedule.plan import hours_plan, render_hours
from config.loader import ConfigFileError, LoadedAd, LoadedConfig, load_config
from config.models import AdConfig, AppConfig, BotConfig, NotifyConfig, Reaction
from config.settings import Settings, config_path
from state.overrides import read_overrides

Plan = dict[str, Any]


add_arguments = options.check_config  # the options live in a light module (fast --help)


def run(args: argparse.Namespace) -> int:
    """Entry point of `check-config`: exit 0 when valid, 2 with one line per problem otherwise."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems.append(str(exc))
    env_config = os.environ.get("P2PBOT_CONFIG")
    configured = settings.config if settings else (Path(env_config) if env_config else None)
    path = config_path(args.config, configured)
    loaded: LoadedConfig | None = None
    try:
        loaded = load_config(path)
    except ConfigFileError as exc:
        problems += exc.problems
    if settings is not None and loaded is not None:
        problems += web_problems(loaded.app.web, settings.web_token, loaded.path)
        problems += telegram_problems(loaded.app.telegram, settings.telegram_token, loaded.path)
    if problems or settings is None or loaded is None:
        for line in problems:
            print(f"configuration error: {line}", file=sys.stderr)
        return EXIT_CONFIG
    plan = console_plan(settings, loaded)
    print(json.dumps(plan, indent=2) if args.json else render(plan))
    return EXIT_OK


# --- the plan as data ------------------------------------------------------------------


def console_plan(settings: Settings, loaded: LoadedConfig) -> Plan:
    """The plan of the config the bot would run: the file and the console's stored overrides
    (read from the store without writing to it), listed under "overrides"."""
    rows = read_overrides(settings.db)
    merged, skipped = apply_overrides(loaded, rows)
    plan = build_plan(settings, merged if rows else loaded)
    plan["overrides"] = {"store": str(settings.db), "changes": describe_overrides(rows, loaded),
                         "not_applied": skipped}
    plan["telegram"] = loaded.app.telegram.model_dump(mode="json")
    return plan



def build_plan(settings: Settings, loaded: LoadedConfig) -> Plan:
    """Everything the bot would do with this environment and file, JSON-ready."""
    app = loaded.app
    env = environment(settings)
    return {
        "config": str(loaded.path),
        "environment": env,
        "bot": _bot(app.bot),
        "capabilities": app.capabilities.model_dump(mode="json"),
        "ads": [_ad(ad, app.bot) for ad in loaded.ads],
        "markets": markets(app),
        "orders": {
            "stuck_after_minutes": app.orders.stuck_after_minutes,
            "reactions": {s: _reaction(r) for s, r in app.orders.on.items()},
        },
        "chat": app.chat.model_dump(mode="json"),
        "notify": _notify(app.notify, env),
        "web": app.web.model_dump(mode="json"),
        "hours": hours_plan(app, loaded.ads, time.time()),
        "warnings": warnings(app, env) + step_warnings(loaded.ads),
        "requests_sent": 0,
    }


def environment(settings: Settings) -> Plan:
    """Whether each secret is configured (never its value), and the non-secret settings."""
    key_file = settings.private_key_file
    token = getattr(settings, "telegram_token", None) or os.environ.get("P2PBOT_TELEGRAM_TOKEN")
    return {
        "api_key": _is_set(settings.api_key),
        "api_secret": _is_set(settings.api_secret),
        "private_key_file": "not set" if key_file is None
        else ("set" if key_file.is_file() else "set, but the file does not exist"),
        "telegram_token": bool(token),
        "web_token": _is_set(settings.web_token),
        "base_url": settings.base_url,
        "db": str(settings.db),
        "proxy": settings.proxy is not None,
    }


def _is_set(secret: Any) -> bool:
    return secret is not None and bool(secret.get_secret_value())


def _bot(bot: BotConfig) -> Plan:
    return {**bot.model_dump(mode="json"), "note": "intervals stretch to stay under weight_budget"}


def _ad(loaded: LoadedAd, bot: BotConfig) -> Plan:
    ad = loaded.config
    return {
        "index": loaded.index + 1,
        "name": ad.name,
        "enabled": ad.enabled,
        "updates": _updates(ad, bot),
        "selector": _selector(ad),
        "market": _market(ad),
        "strategy": {
            "spec": ad.strategy,
            "name": type(loaded.strategy).name,
            "class": f"{type(loaded.strategy).__module__}:{type(loaded.strategy).__qualname__}",
            "params": _with_defaults(loaded.params),
        },
        "filters": _with_defaults(ad.filters),
        "guards": _with_defaults(ad.guards),
    }


def _updates(ad: AdConfig, bot: BotConfig) -> str:
    if not ad.enabled:
        return "off (enabled = false)"
    if bot.kill_switch:
        return "off ([bot] kill_switch = true)"
    return "dry run: logs 'would reprice', updates nothing" if bot.dry_run else "live"


def _selector(ad: AdConfig) -> Plan:
    if ad.adv_no is not None:
        return {"adv_no": ad.adv_no, "text": f"adv_no {ad.adv_no}"}
    return {
        "asset": ad.asset, "fiat": ad.fiat, "side": str(ad.side),
        "text": f"resolved at start from your ads: {ad.asset}/{ad.fiat} {ad.side}",
    }


def _market(ad: AdConfig) -> Plan:
    trade = ad.search_trade_type
    if trade is None:
        return {"text": "learned at start from the ad (a SELL ad's competitors are searched "
                        "with tradeType BUY, and a BUY ad's with tradeType SELL)"}
    return {
        "asset": ad.asset, "fiat": ad.fiat, "trade_type": str(trade),
        "text": f"search {ad.asset}/{ad.fiat} tradeType={trade} (the taker's side: "
                f"competitors of your {ad.side} ad are the other {ad.side} ads)",
    }


def _with_defaults(model: BaseModel) -> Plan:
    values = model.model_dump(mode="json")
    return {"set": {k: v for k, v in values.items() if k in model.model_fields_set},
            "defaults": {k: v for k, v in values.items() if k not in model.model_fields_set}}


def markets(app: AppConfig) -> list[Plan]:
    """One search per (asset, fiat, tradeType), shared by the ads in it; adv_no ads join at start."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for i, ad in enumerate(app.ads):
        if ad.search_trade_type is not None and ad.enabled:
            key = (str(ad.asset), str(ad.fiat), str(ad.search_trade_type))
            found.setdefault(key, []).append(f"#{i + 1}")
    return [{"asset": a, "fiat": f, "trade_type": t, "ads": ads,
             "every_seconds": app.bot.market_interval} for (a, f, t), ads in found.items()]


def _notify(notify: NotifyConfig, env: Plan) -> Plan:
    channels = ["log"]
    if notify.webhook_url:
        # the host only: a webhook URL often carries a token in its path
        channels.append(f"webhook ({urlsplit(notify.webhook_url).hostname})")
    if notify.telegram_chat_id and env["telegram_token"]:
        channels.append(f"telegram (chat {notify.telegram_chat_id})")
    return {"dedupe_minutes": notify.dedupe_minutes, "max_per_hour": notify.max_per_hour,
            "channels": channels}


def warnings(app: AppConfig, env: Plan) -> list[str]:
    """Valid but worth knowing: what will not happen, and what `run` will still need."""
    out: list[str] = []
    if not app.ads:
        out.append("no [[ads]]: no ad is priced; only the order desk runs")
    if app.bot.kill_switch:
        out.append("[bot] kill_switch = true: no ad will be updated")
    elif app.bot.dry_run:
        out.append("[bot] dry_run = true: decisions are logged, no ad is updated"
                   " and no chat message is sent (alerts still go out)")
    out += [f"[[ads]] #{i + 1} ({ad.label}) is disabled" for i, ad in enumerate(app.ads) if not ad.enabled]
    if not env["api_key"]:
        out.append("P2PBOT_API_KEY is not set: `run` and `probe` need it")
    if not env["api_secret"] and env["private_key_file"] == "not set":
        out.append("neither P2PBOT_API_SECRET nor P2PBOT_PRIVATE_KEY_FILE is set: `run` needs one")
    if env["private_key_file"].startswith("set, but"):
        out.append("P2PBOT_PRIVATE_KEY_FILE names a file that does not exist")
    out += _notify_warnings(app, env)
    if app.web.enabled and not is_loopback_name(app.web.host):
        out.append(f"[web] host = {app.web.host}: the server is reachable from the network "
                   "(the token guards it; it speaks plain HTTP: put TLS in front)")
    return out


USUAL_TICK = Decimal("0.01")
"""The price tick of most fiats (2 decimals); an ad's own tick is known only from the exchange."""


def step_warnings(ads: Sequence[LoadedAd]) -> list[str]:
    """A strategy `step` with more decimals than the usual fiat tick: the bot cannot move by it.

    check-config sends nothing, so the ad's real tick (its price scale) is unknown here;
    `run` warns again at start once it has read the ad.
    """
    out = []
    for ad in ads:
        step = getattr(ad.params, "step", None)
        if isinstance(step, Decimal) and step % USUAL_TICK:
            out.append(f"[[ads]] #{ad.index + 1} ({ad.config.label}): step {step} is finer than "
                       f"the usual {USUAL_TICK} tick of fiat prices (2 decimals): prices are "
                       f"rounded to the ad's tick, still ahead of the competitor beaten, so the "
                       f"ad moves by whole ticks; `run` logs the ad's real tick at start")
    return out


def _notify_warnings(app: AppConfig, env: Plan) -> list[str]:
    n, out = app.notify, []
    if n.telegram_chat_id and not env["telegram_token"]:
        out.append("telegram_chat_id is set but P2PBOT_TELEGRAM_TOKEN is not: no Telegram alerts")
    if env["telegram_token"] and not n.telegram_chat_id:
        out.append("P2PBOT_TELEGRAM_TOKEN is set but [notify] telegram_chat_id is empty: no Telegram alerts")
    notifying = any(r.notify for _, r in app.orders.on.items())
    if notifying and not n.webhook_url and not (n.telegram_chat_id and env["telegram_token"]):
        out.append("alerts go to the log only: set [notify] webhook_url or telegram_chat_id")
    return out


# --- the plan as text ------------------------------------------------------------------


def render(plan: Plan) -> str:
    """The plan for people."""
    lines = [f"config: {plan['config']} is valid", "", *_render_env(plan["environment"]), ""]
    lines += _render_bot(plan)
    lines += ["", f"ads ({len(plan['ads'])}):"] if plan["ads"] else ["", "ads: none (order desk only)"]
    for ad in plan["ads"]:
        lines += _render_ad(ad)
    lines += ["", *_render_orders(plan)]
    lines += ["", *render_hours(plan["hours"])]
    lines += _render_overrides(plan.get("overrides"), plan.get("telegram"))
    if plan["warnings"]:
        lines += ["", "warnings:", *(f"  - {w}" for w in plan["warnings"])]
    lines += ["", "nothing was sent: check-config makes no request"]
    return "\n".join(lines)


def _render_overrides(found: Plan | None, telegram: Plan | None = None) -> list[str]:
    lines = []
    if telegram and telegram.get("enabled"):
        chats = ", ".join(map(str, telegram["allowed_chat_ids"]))
        lines = ["", f"console: Telegram commands from chat(s) {chats} (docs/console.md)"]
    if not found or not (found["changes"] or found["not_applied"]):
        return lines
    lines += ["", f"console overrides (in {found['store']}, on top of the file; /clear forgets "
                  "them):", *(f"  {c}" for c in found["changes"])]
    return lines + [f"  not applied: {p}" for p in found["not_applied"]]


def _render_env(env: Plan) -> list[str]:
    said = {True: "set", False: "not set"}
    return [
        "environment (secrets are never shown):",
        f"  P2PBOT_API_KEY: {said[env['api_key']]}",
        f"  P2PBOT_API_SECRET: {said[env['api_secret']]}",
        f"  P2PBOT_PRIVATE_KEY_FILE: {env['private_key_file']}",
        f"  P2PBOT_TELEGRAM_TOKEN: {said[env['telegram_token']]}",
        f"  P2PBOT_WEB_TOKEN: {said[env['web_token']]}",
        f"  exchange: {env['base_url']}   store: {env['db']}   proxy: {'yes' if env['proxy'] else 'no'}",
    ]


def _render_bot(plan: Plan) -> list[str]:
    b, c = plan["bot"], plan["capabilities"]
    return [
        f"bot: dry_run {_onoff(b['dry_run'])}, kill_switch {_onoff(b['kill_switch'])}",
        f"  every: market {b['market_interval']:g}s, reference {b['reference_interval']:g}s, "
        f"my ads {b['my_ads_interval']:g}s, orders {b['orders_interval']:g}s "
        f"(stretched to stay under {b['weight_budget']} weight/min); {b['search_rows']} rows per search",
        f"  markets searched: {_render_markets(plan['markets'])}",
        f"capabilities: re-probe after {c['probe_first']:g}s x{c['probe_factor']:g} up to "
        f"{c['probe_cap']:g}s (+/-{c['probe_jitter']:g}); untrusted after more than "
        f"{c['flap_threshold']} flaps in {c['flap_window']:g}s until {c['trust_after']} successes; "
        f"essential: {', '.join(c['essential']) or 'none'}",
    ]


def _render_markets(found: list[Plan]) -> str:
    if not found:
        return "none known before start"
    return "; ".join(f"{m['asset']}/{m['fiat']} tradeType={m['trade_type']} for {', '.join(m['ads'])}"
                     for m in found)


def _render_ad(ad: Plan) -> list[str]:
    name = f' "{ad["name"]}"' if ad["name"] else ""
    s = ad["strategy"]
    spec = s["spec"] if s["spec"] == s["name"] else f"{s['spec']} ({s['name']}, {s['class']})"
    return [
        f"  #{ad['index']}{name}: updates {ad['updates']}",
        f"    selector: {ad['selector']['text']}",
        f"    market:   {ad['market']['text']}",
        f"    strategy: {spec}",
        f"    params:   {_render_values(s['params'])}",
        f"    filters:  {_render_values(ad['filters'])}",
        f"    guards:   {_render_values(ad['guards'], none='off')}",
    ]


def _render_values(values: Plan, none: str = "none") -> str:
    def show(items: dict[str, Any]) -> str:
        return ", ".join(f"{k}={none if v is None else _scalar(v)}" for k, v in items.items())

    parts = [show(values["set"])] if values["set"] else []
    if values["defaults"]:
        parts.append(f"defaults: {show(values['defaults'])}")
    return "; ".join(parts) or "none"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _render_orders(plan: Plan) -> list[str]:
    o, n = plan["orders"], plan["notify"]
    lines = [f"orders: stuck after {o['stuck_after_minutes']} min paid and not released"]
    for status, r in o["reactions"].items():
        lines.append(f"  on {status}: {_does(r)}")
        for side in ("sell", "buy"):
            if side in r:
                lines.append(f"    when you {side}: {_does(r[side])}")
    unlisted = [s for s in ("new", "buyer_paid", "completed", "cancelled", "appeal", "stuck")
                if s not in o["reactions"]]
    if unlisted:
        lines.append(f"  not configured (nothing happens): {', '.join(unlisted)}")
    w = plan["web"]
    return lines + [
        f"notify: via {', '.join(n['channels'])}; the same alert at most once per "
        f"{n['dedupe_minutes']} min, at most {n['max_per_hour']} per hour",
        f"chat: unsent messages are dropped after {plan['chat']['outbox_expiry_minutes']} min",
        f"web: {'http://' + w['host'] + ':' + str(w['port']) if w['enabled'] else 'off'}",
    ]


def _reaction(r: Reaction) -> dict[str, Any]:
    """A reaction as JSON; a side table (`.sell`/`.buy`) only when set, as what that side gets."""
    out: dict[str, Any] = {"chat": r.chat, "notify": r.notify}
    for side in ("sell", "buy"):
        if getattr(r, side) is not None:
            own = r.for_side(side)
            out[side] = {"chat": own.chat, "notify": own.notify}
    return out


def _does(r: dict[str, Any]) -> str:
    does = ([f"chat {json.dumps(r['chat'], ensure_ascii=False)}"] if r["chat"] else []) + (
        ["notify"] if r["notify"] else [])
    return ", ".join(does) or "nothing"


def _onoff(flag: bool) -> str:
    return "ON" if flag else "off"
