"""Acknowledging alerts: the one path behind the console's /ack, the status page's button
(POST /api/alerts/{id}/ack) and `p2pbot ack`.

An alert is named by its id (shown in every repeat: "[alert 12]") or by an order number,
which acknowledges every open alert of that order at once.
"""

from __future__ import annotations

from loguru import logger

from state.alerts import AlertRow, AlertStore


class UnknownAlert(LookupError):
    """No alert has that id, and no open alert is about that order."""


async def acknowledge(alerts: AlertStore, ref: str, by: str, at: float) -> list[AlertRow]:
    """Acknowledge the alert `ref` names (an id, or an order number); the acknowledged rows.

    Acknowledging twice is harmless: the first acknowledgement (who, when) is kept.
    """
    ref = ref.strip().lstrip("#")
    if not ref.isdigit():
        raise UnknownAlert(f"'{ref}' is neither an alert id nor an order number")
    rows: list[AlertRow] = []
    if len(ref) < 12:  # ids are small; order numbers have 18 to 20 digits
        row = await alerts.by_id(int(ref))
        if row is None:
            raise UnknownAlert(f"no alert {ref}")
        rows = [row]
    else:
        rows = [r for r in await alerts.open() if f":{ref}:" in f"{r.key}:"]
        if not rows:
            raise UnknownAlert(f"no open alert about order {ref}")
    done = []
    for row in rows:
        acked = await alerts.ack(row.id, by, at)
        if acked is not None:
            done.append(acked)
            logger.info("alert {} ({}) acknowledged by {}", acked.id, acked.key, acked.acked_by)
    return done


def describe(row: AlertRow) -> str:
    """One line for a list of alerts."""
    state = ("acknowledged by " + (row.acked_by or "?")) if row.acked_at is not None else \
        "resolved" if row.resolved_at is not None else f"open, sent {row.sent}x"
    return f"[alert {row.id}] {row.kind} ({state}): {row.text[:160]}"
