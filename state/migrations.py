"""Numbered schema migrations: MIGRATIONS[n-1] takes the store from version n-1 to n.

Never edit a migration that has shipped; add a new one. Ids are TEXT: exchange ids
are 19-20 digit numbers that overflow SQLite INTEGER.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: endpoint health history, probe results, key/value meta (bans)
    """
    CREATE TABLE endpoint_transitions (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        endpoint TEXT NOT NULL,
        old_state TEXT NOT NULL,
        new_state TEXT NOT NULL,
        code INTEGER,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX endpoint_transitions_at ON endpoint_transitions (endpoint, at);
    CREATE TABLE probe_results (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        endpoint TEXT NOT NULL,
        state TEXT NOT NULL,
        code INTEGER,
        message TEXT NOT NULL DEFAULT '',
        latency_ms REAL
    );
    CREATE INDEX probe_results_at ON probe_results (endpoint, at);
    CREATE TABLE endpoint_state (
        endpoint TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        code INTEGER,
        message TEXT NOT NULL DEFAULT '',
        since REAL NOT NULL
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    # 2: pricing decisions with their trace
    """
    CREATE TABLE price_decisions (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        ad TEXT NOT NULL,
        adv_no TEXT NOT NULL,
        strategy TEXT NOT NULL,
        price_before TEXT NOT NULL,
        target TEXT,
        result TEXT NOT NULL,
        reason TEXT NOT NULL,
        guards TEXT NOT NULL DEFAULT '',
        code INTEGER,
        trace TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX price_decisions_ad ON price_decisions (adv_no, at)
    """,
]
