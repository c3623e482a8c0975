"""What the status page shows of the console: the overrides on top of the file, and the
alerts waiting for an acknowledgement (with their ids, for the page's buttons)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from state.alerts import AlertStore
from state.overrides import BOT_SCOPE, OverrideStore

if TYPE_CHECKING:
    from bot.app import Bot


async def console_status(bot: Bot) -> dict[str, Any]:
    """`overrides` and `alerts` for /api/status."""
    labels = {ad.config.selector: ad.label for ad in bot.toml.ads}
    overrides = [{"ad": None if o.scope == BOT_SCOPE else labels.get(o.scope, o.scope),
                  "key": o.key, "value": o.value, "set_by": o.set_by, "set_at": o.set_at}
                 for o in await OverrideStore(bot.store).all()]
    alerts = [{"id": a.id, "kind": a.kind, "text": a.text, "first_at": a.first_at,
               "last_at": a.last_at, "sent": a.sent}
              for a in await AlertStore(bot.store).open()]
    return {"overrides": overrides, "alerts": alerts}
