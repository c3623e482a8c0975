"""Endpoint health history: the table merchants keep by hand today."""

from __future__ import annotations

from dataclasses import dataclass

from state.db import Store, where


@dataclass(frozen=True, slots=True)
class Transition:
    """One stored change of an endpoint's state."""

    at: float
    endpoint: str
    old: str
    new: str
    code: int | None
    message: str


@dataclass(frozen=True, slots=True)
class LastState:
    """The latest known state of an endpoint."""

    endpoint: str
    state: str
    code: int | None
    message: str
    since: float


class EndpointLog:
    """Writes and reads endpoint transitions, probe results and the latest states."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record_transition(self, t: Transition) -> None:
        """Store a transition and the endpoint's new current state, in one transaction."""
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO endpoint_transitions (at, endpoint, old_state, new_state, code, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (t.at, t.endpoint, t.old, t.new, t.code, t.message),
            )
            await db.execute(
                "INSERT INTO endpoint_state (endpoint, state, code, message, since)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(endpoint) DO UPDATE SET"
                " state=excluded.state, code=excluded.code, message=excluded.message,"
                " since=excluded.since",
                (t.endpoint, t.new, t.code, t.message, t.at),
            )

    async def record_probe(
        self, at: float, endpoint: str, state: str, code: int | None, message: str,
        latency_ms: float | None,
    ) -> None:
        """Store one probe's result."""
        await self.store.execute(
            "INSERT INTO probe_results (at, endpoint, state, code, message, latency_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, endpoint, state, code, message, latency_ms),
        )

    async def transitions(
        self, endpoint: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[Transition]:
        """Transitions in time order, optionally filtered."""
        sql = "SELECT at, endpoint, old_state, new_state, code, message FROM endpoint_transitions"
        where_sql, params = where(endpoint=endpoint, at__ge=since, at__le=until)
        rows = await self.store.fetchall(f"{sql}{where_sql} ORDER BY at, id", params)
        return [Transition(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def last_states(self) -> dict[str, LastState]:
        """The latest stored state of every endpoint."""
        rows = await self.store.fetchall(
            "SELECT endpoint, state, code, message, since FROM endpoint_state"
        )
        return {r[0]: LastState(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    async def probe_count(self) -> int:
        """How many probe results are stored."""
        row = await self.store.fetchone("SELECT COUNT(*) FROM probe_results")
        return int(row[0]) if row else 0
