"""What an order's change calls for: chat messages and alerts as outbox items (no I/O).

Rules (evaluated inside the transaction that stores the change, so they are exact):
- `new` is planned once the order is known in full while it is still open; an
  order first seen already finished (history, or finished while the bot was
  down) never gets a greeting.
- Every other status gets its reaction on a step the bot saw. Inferred steps
  get none: an alert that an order was paid is no use once it is completed.
- An order seen for the first time already finished gets no reaction at all.
- On a store that began following orders at `store_since` (state.meta.Meta.orders_since;
  None for a store from before that rule), an order created before it was open before
  the store existed, and may have been greeted by a run whose store was lost: it never
  gets a greeting, and its first sighting is recorded with no reaction (its status was
  reached before); only the steps seen after that get theirs.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import fields, replace

from loguru import logger

from bot.orders.track import REACTION_OF, STATUS_NAME, infer_path, is_final
from config.models import Reaction, Reactions
from state.orders import OrderRecord, Plan, Step
from state.outbox import OutboxItem

TITLES = {"new": "New order", "buyer_paid": "Buyer paid", "appeal": "Appeal",
          "completed": "Order completed", "cancelled": "Order cancelled", "stuck": "Stuck order"}
ADVICE: dict[tuple[str, str], str] = {
    ("new", "SELL"): "wait for the buyer's payment; release only once the money is in your account",
    ("new", "BUY"): "pay {total} {fiat} to {nickname} with {pay_method}, then mark the order paid"
                    " in the Binance app",
    ("buyer_paid", "SELL"): "check that {total} {fiat} from {nickname} arrived ({pay_method}),"
                            " then release in the Binance app",
    ("buyer_paid", "BUY"): "the order is marked paid: wait for {nickname} to release",
    ("appeal", ""): "open the order in the Binance app and answer the appeal",
    ("stuck", "SELL"): "check the payment, then release or appeal in the Binance app",
    ("stuck", "BUY"): "ask {nickname} to release, or appeal in the Binance app",
    ("completed", ""): "nothing: the order is complete",
    ("cancelled", ""): "nothing: the order was cancelled",
}
NEVER = "The bot never releases coins or marks orders paid."

UuidFactory = Callable[[], str]


def new_uuid() -> str:
    """A fresh message uuid."""
    return str(uuidlib.uuid4())


def template_values(o: OrderRecord) -> dict[str, object]:
    """The fields a chat template may use (config.models.TEMPLATE_FIELDS)."""
    return {"nickname": o.counterparty or "", "amount": o.amount, "asset": o.asset or "",
            "fiat": o.fiat or "", "total": o.total, "price": o.price, "order_no": o.order_number,
            "pay_method": o.pay_method or ""}


def render(template: str, order: OrderRecord) -> str:
    """A chat template filled in for `order`."""
    return template.format_map(template_values(order))


def age_text(seconds: float) -> str:
    """12 s, 7 min, 2 h 5 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def alert_text(reaction: str, o: OrderRecord, now: float, since: float | None = None) -> str:
    """An alert that carries everything a person needs to act on the order."""
    side = (o.side or "").upper()
    verb = {"SELL": "you sell", "BUY": "you buy"}.get(side, "trade of")
    age = age_text(now - o.created_at) if o.created_at else "unknown"
    advice = ADVICE.get((reaction, side)) or ADVICE.get((reaction, ""), "check the order")
    advice = advice.format_map({k: "" if v is None else v for k, v in template_values(o).items()})
    waited = f"; {STATUS_NAME.get(o.status, o.status)} for {age_text(now - since)}" if since else ""
    return (f"{TITLES.get(reaction, reaction)}: order {o.order_number}: {verb} {o.amount} "
            f"{o.asset} for {o.total} {o.fiat} at {o.price}; counterparty {o.counterparty or '?'};"
            f" pay method {o.pay_method or '?'}; age {age}{waited}. To do: {advice}. {NEVER}")


def items_for(name: str, reaction: Reaction | None, order: OrderRecord, now: float,
              make_uuid: UuidFactory, since: float | None = None) -> list[OutboxItem]:
    """The outbox items of one configured reaction."""
    if reaction is None:
        return []
    reaction = reaction.for_side(order.side)
    items: list[OutboxItem] = []
    if reaction.chat:
        try:
            content = render(reaction.chat, order)
        except (ValueError, TypeError, KeyError) as exc:
            logger.error("order {}: the {} chat template failed: {}", order.order_number, name, exc)
        else:
            items.append(OutboxItem(order.order_number, name, "chat",
                                    {"uuid": make_uuid(), "content": content}))
    if reaction.notify:
        text = alert_text(name, order, now, since)
        items.append(OutboxItem(order.order_number, name, "notify",
                                {"kind": name, "key": f"order:{order.order_number}:{name}",
                                 "text": text}))
    return items


def _same(a: OrderRecord, b: OrderRecord) -> bool:
    skip = {"updated_at", "source"}
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(a) if f.name not in skip)


def predates(order: OrderRecord, store_since: float | None) -> bool:
    """Whether the order was created before this store began following orders."""
    if store_since is None or order.created_at is None:
        return False  # an existing store, or a creation time unknown: as always
    return order.created_at < store_since


def plan_change(stored: OrderRecord | None, seen: OrderRecord, cfg: Reactions, now: float,
                make_uuid: UuidFactory = new_uuid, store_since: float | None = None) -> Plan:
    """Merge what was seen into what is stored: the steps to record and the reactions to queue."""
    if stored is None:
        steps = infer_path(None, seen.status)
        if not steps:
            return Plan(seen, write=False)
        record = seen
    else:
        steps = infer_path(stored.status, seen.status)
        record = replace(stored.merged(seen), status=seen.status if steps else stored.status)
        if not steps and _same(stored, record):
            return Plan(record, write=False)
    names = _reactions(stored, record, steps, predates(record, store_since))
    items = [i for n in names for i in items_for(n, getattr(cfg, n), record, now, make_uuid)]
    return Plan(record, tuple(steps), tuple(items))


def _reactions(stored: OrderRecord | None, record: OrderRecord, steps: list[Step],
               before_store: bool) -> list[str]:
    if not record.complete:
        return []  # planned later, once the order is known in full
    if stored is None and before_store:
        return []  # all of it happened before this store: recorded, not reacted to
    names: list[str] = ["new"] if record.is_open and not before_store else []
    first_final = stored is None and is_final(record.status)
    for step in steps:
        if not step.inferred and step.new != 1 and not first_final:
            names.append(REACTION_OF[step.new])
    filled_in = stored is not None and not stored.complete and not before_store
    if filled_in and not steps and record.status in (2, 3):
        names.append(REACTION_OF[record.status])
    return names


def plan_stuck(order: OrderRecord, paid_at: float, cfg: Reactions, now: float,
               make_uuid: UuidFactory = new_uuid) -> list[OutboxItem]:
    """The `stuck` reaction for an order paid at `paid_at` and not released since."""
    if not order.complete:
        return []
    return items_for("stuck", cfg.stuck, order, now, make_uuid, since=paid_at)
