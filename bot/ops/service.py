"""What `run` adds around the Bot to be a service: key safety, SIGHUP reload, systemd, timing.

- `check_key`: the key's restrictions (`apiRestrictions`) through the registry: a key
  that can withdraw is refused unless the merchant accepts it; a key without an IP
  whitelist is warned about; a key whose restrictions cannot be read is warned about.
- `check_credentials`: when that read was refused with -1022 or -2015, ask the P2P
  endpoints too; refused by every one, the secret, key or IP whitelist is wrong (exit 2).
- `reloader`: on SIGHUP, validate the TOML file and hand it to `Bot.reload`; an
  invalid file is refused and logged, and the running config is kept.
- `report_first_decision`: the start-up figure in the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loguru import logger

from bot.binance.errors import BinanceError
from bot.capabilities.registry import CapabilityRegistry, CapabilityUnavailable
from bot.health import EndpointState
from bot.ops import sdnotify
from config.loader import LoadedConfig

if TYPE_CHECKING:
    from bot.app import Bot
    from bot.binance.p2p import P2PApi

ACCEPT_FLAG = "--i-accept-withdrawal-permission"

BAD_SIGNATURE = (-1022,)  # the secret (or private key) does not belong to the key
KEY_REFUSED = (-2015, -2014)  # the key itself, its IP whitelist, or its permissions
# Signed P2P reads asked in turn once the key check was refused with one of those codes.
# The first that answers anything else (success, -2008, a timeout) ends the check: with a
# working key that is the first one, a read the bot makes at start anyway.
CREDENTIAL_PROBES = ("my_ads", "order_summary", "list_orders", "chat_messages", "categories",
                     "search", "reference_price")


async def check_key(api: P2PApi, accept_withdrawals: bool = False) -> str | None:
    """Read the key's restrictions: a refusal message (exit 2), or None to go on."""
    try:
        r = await api.key_restrictions()
    except (CapabilityUnavailable, BinanceError) as exc:
        logger.warning("could not check the API key's permissions ({}); make sure the key "
                       "cannot withdraw and is restricted to your server's IP", exc)
        return None
    if r.enable_withdrawals:
        if not accept_withdrawals:
            return ("the API key can withdraw funds (enableWithdrawals is on): a leaked key would "
                    "empty the account. Create a key without the withdrawal permission (the bot "
                    f"never withdraws), or start with {ACCEPT_FLAG} to run anyway")
        logger.warning("the API key can withdraw funds; running because of {}", ACCEPT_FLAG)
    if r.ip_restrict is False:
        logger.warning("the API key is not restricted to trusted IPs (ipRestrict is off): "
                       "restrict it to your server's IP address in the API management page")
    return None


async def check_credentials(registry: CapabilityRegistry) -> str | None:
    """After `check_key`: a refusal (exit 2) when every endpoint refuses the key or its signature.

    A wrong secret draws -1022 from every endpoint, an unknown key or a machine outside
    the key's IP whitelist -2015. One endpoint's -1022 while Binance enables the key
    endpoint by endpoint is a capability matter: the bot runs, and that endpoint is parked.
    """
    codes: dict[str, int] = {}
    for name in ("key_permissions", *CREDENTIAL_PROBES):
        if name != "key_permissions":  # check_key has just asked that one
            await registry.probe(name)
        h = registry.health[name]
        if h.state is not EndpointState.REFUSED or h.code not in (*BAD_SIGNATURE, *KEY_REFUSED):
            return None
        codes[name] = h.code
    return credentials_refused(codes)


def credentials_refused(codes: dict[str, int]) -> str:
    """What every endpoint answering these codes means, and which variable to fix."""
    said = ", ".join(f"{name} {code}" for name, code in codes.items())
    causes = []
    if any(c in BAD_SIGNATURE for c in codes.values()):
        causes.append("-1022: the signature is not valid, so P2PBOT_API_SECRET (or the key in "
                      "P2PBOT_PRIVATE_KEY_FILE) is not the secret of P2PBOT_API_KEY")
    refused = sorted({c for c in codes.values() if c in KEY_REFUSED}, reverse=True)
    if refused:
        causes.append(f"{'/'.join(map(str, refused))}: the API key is refused: check "
                      "P2PBOT_API_KEY (mistyped, or deleted in the API management page), that "
                      "this machine's IP address (IPv4 or IPv6) is on the key's IP whitelist, "
                      "and the key's permissions")
    return (f"every endpoint refused the credentials ({said}). " + "; ".join(causes)
            + ". Nothing can work until that is fixed")


async def reloader(bot: Bot, hup: asyncio.Event, load: Callable[[], LoadedConfig]) -> None:
    """On each SIGHUP (`hup` set): validate the file, then `bot.reload` it; until cancelled."""
    while True:
        await hup.wait()
        hup.clear()
        await reload_once(bot, load)


async def reload_once(bot: Bot, load: Callable[[], LoadedConfig]) -> bool:
    """One reload: True when applied; an invalid file is refused and the running config kept."""
    sdnotify.reloading()
    try:
        try:
            loaded = await asyncio.to_thread(load)
        except Exception as exc:  # ConfigError, or a strategy plugin that fails to import
            logger.error("config reload refused, the running configuration is kept: {}", exc)
            return False
        changes = await bot.reload(loaded)
        logger.info("config reloaded from {}: {}", loaded.path, ", ".join(changes))
        return True
    finally:
        sdnotify.ready(status_line(bot))


def status_line(bot: Bot) -> str:
    """A one-line status for `systemctl status`."""
    flags = " (dry run)" if bot.engine.dry_run else ""
    flags += " (kill switch on)" if bot.engine.kill_switch else ""
    return f"running {len(bot.ads)} ad(s){flags}"


async def report_first_decision(bot: Bot, began: float) -> None:
    """Log how long the start took, up to the first pricing decision."""
    await bot.first_decision.wait()
    logger.info("first decision {:.2f} s after start", time.monotonic() - began)
