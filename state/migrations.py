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
    # 3: the order desk: orders and their transitions, the outbox, chat messages, notifications
    """
    CREATE TABLE orders (
        order_number TEXT PRIMARY KEY,
        adv_no TEXT,
        side TEXT,
        asset TEXT,
        fiat TEXT,
        amount TEXT,
        total TEXT,
        price TEXT,
        status INTEGER NOT NULL,
        counterparty TEXT,
        pay_method TEXT,
        created_at REAL,
        updated_at REAL NOT NULL,
        source TEXT NOT NULL
    );
    CREATE INDEX orders_status ON orders (status, updated_at);
    CREATE TABLE order_transitions (
        id INTEGER PRIMARY KEY,
        order_number TEXT NOT NULL,
        old INTEGER,
        new INTEGER NOT NULL,
        at REAL NOT NULL,
        inferred INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL,
        UNIQUE (order_number, new)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        order_number TEXT NOT NULL,
        status TEXT NOT NULL,
        action TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'pending',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        answer TEXT,
        UNIQUE (order_number, status, action)
    );
    CREATE INDEX outbox_state ON outbox (state, id);
    CREATE TABLE chat_messages (
        id TEXT PRIMARY KEY,
        order_number TEXT NOT NULL,
        direction TEXT NOT NULL,
        type TEXT NOT NULL,
        content TEXT NOT NULL DEFAULT '',
        created_at REAL,
        uuid TEXT
    );
    CREATE INDEX chat_messages_order ON chat_messages (order_number, created_at);
    CREATE INDEX chat_messages_uuid ON chat_messages (uuid);
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        sent_at REAL NOT NULL,
        channels TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX notifications_key ON notifications (key, sent_at);
    CREATE INDEX notifications_sent ON notifications (sent_at)
    """,
    # 4: a decision that sent nothing is stored once and its repeats counted (first at `at`,
    # latest at `last_at`); retention deletes by `last_at`
    """
    ALTER TABLE price_decisions ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE price_decisions ADD COLUMN last_at REAL;
    UPDATE price_decisions SET last_at = at;
    CREATE INDEX price_decisions_last ON price_decisions (last_at)
    """,
    # 5: the market as each pricing decision saw it, the decisions and the orders won, for
    # `export` and `backtest` (state.recording); body is zlib-compressed JSON, size its length
    """
    CREATE TABLE recording (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        body BLOB NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE INDEX recording_at ON recording (at)
    """,
    # 6: changes made from the Telegram console, kept on top of the TOML file (scope: an ad's
    # selector, or "*" for the whole bot); alerts that repeat until acknowledged
    """
    CREATE TABLE overrides (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        set_by TEXT NOT NULL DEFAULT '',
        set_at REAL NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        first_at REAL NOT NULL,
        last_at REAL NOT NULL,
        sent INTEGER NOT NULL DEFAULT 1,
        acked_at REAL,
        acked_by TEXT,
        resolved_at REAL
    );
    CREATE INDEX alerts_open ON alerts (resolved_at, acked_at)
    """,
]

# run once, in the transaction of migration 1, by the open that creates the store (an
# upgrade never runs it): a store without this row was created by an older version
STORE_CREATED_AT = "store_created_at"
MARK_CREATED = f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{STORE_CREATED_AT}', ?)"
