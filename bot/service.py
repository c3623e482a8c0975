"""What `run` adds around the Bot to be a service: key safety, SIGHUP reload, systemd, timing.

- `check_key`: the key's restrictions (`apiRestrictions`) through the registry: a key
  that can withdraw is refused unless the merchant accepts it; a key without an IP
  whitelist is warned about; a key whose restrictions cannot be read is warned about.
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

from bot import sdnotify
from bot.binance.errors import BinanceError
from bot.capabilities import CapabilityUnavailable
from config.loader import LoadedConfig

if TYPE_CHECKING:
    from bot.app import Bot
    from bot.binance.p2p import P2PApi

ACCEPT_FLAG = "--i-accept-withdrawal-permission"


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
