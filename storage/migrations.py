"""Versioned schema migrations, applied in order, one transaction each.

Add a migration by appending ``Migration(<last + 1>, "<name>", "<SQL>")`` to ``MIGRATIONS``;
never edit one that has shipped. Applied versions are recorded in ``schema_version``.
Conventions: timestamps are ISO-8601 UTC text, amounts decimal text (never REAL).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.db import Database

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


class MigrationError(Exception):
    """The migration list or the database's recorded history is inconsistent."""


SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""

V1_INITIAL = """
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,  -- the Telegram user id
    language    TEXT,                 -- NULL until the user picks one
    first_seen  TEXT NOT NULL,
    blocked_bot INTEGER NOT NULL DEFAULT 0 CHECK (blocked_bot IN (0, 1))
);

CREATE TABLE orders (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           INTEGER NOT NULL REFERENCES users (id),
    provider          TEXT NOT NULL,
    provider_order_id TEXT NOT NULL,
    kind              TEXT NOT NULL,     -- OrderKind
    service           TEXT NOT NULL,
    country           TEXT NOT NULL,
    phone             TEXT NOT NULL,
    price             TEXT,              -- Decimal text, in `currency` (the provider's)
    currency          TEXT,
    display_price     TEXT,              -- Decimal text, what the user was shown
    display_currency  TEXT,
    status            TEXT NOT NULL DEFAULT 'active',  -- OrderStatus
    remote_status     TEXT,              -- RemoteStatus, last seen
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    expires_at        TEXT,
    auto_renew        INTEGER NOT NULL DEFAULT 0 CHECK (auto_renew IN (0, 1)),
    duration_hours    INTEGER,
    meta              TEXT NOT NULL DEFAULT '{}',  -- JSON object of Order.meta
    UNIQUE (provider, provider_order_id),
    CHECK ((price IS NULL) = (currency IS NULL)),
    CHECK ((display_price IS NULL) = (display_currency IS NULL))
);

CREATE INDEX orders_by_user_status ON orders (user_id, status, id);
CREATE INDEX orders_active_by_expiry ON orders (expires_at) WHERE status = 'active';

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sms_id       TEXT NOT NULL,
    code         TEXT,
    text         TEXT,
    sender       TEXT,
    received_at  TEXT,
    stored_at    TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (order_id, sms_id)
);

CREATE INDEX messages_undelivered ON messages (order_id, id) WHERE delivered_at IS NULL;

CREATE TABLE reminders (
    order_id     INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    lead_seconds INTEGER NOT NULL,
    sent_at      TEXT NOT NULL,
    PRIMARY KEY (order_id, lead_seconds)
) WITHOUT ROWID;
"""

V2_TELEGRAM_LANGUAGE = """
-- The language Telegram reports for the user, for messages the bot sends on its own.
ALTER TABLE users ADD COLUMN telegram_language TEXT;
"""

V3_WALLETS_AND_ACCESS = """
-- User wallets: an append-only ledger; a balance is the sum of its rows' amounts.
-- amount is the signed effect on the available balance (Decimal text): topup +, hold -,
-- capture 0 (the hold already took the money), release +, refund +, adjust + or -.
CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL
               CHECK (kind IN ('topup', 'hold', 'capture', 'release', 'refund', 'adjust')),
    amount     TEXT NOT NULL,
    currency   TEXT NOT NULL,
    hold_id    INTEGER REFERENCES ledger (id),   -- capture/release: the hold they settle
    order_id   INTEGER REFERENCES orders (id),   -- capture/refund: the order paid for
    ref        TEXT,                             -- idempotency key (Stars: the charge id)
    actor      INTEGER,                          -- adjust: the admin who made it
    reason     TEXT,
    created_at TEXT NOT NULL,
    CHECK ((hold_id IS NOT NULL) = (kind IN ('capture', 'release'))),
    CHECK (order_id IS NOT NULL OR kind NOT IN ('capture', 'refund')),
    CHECK (ref IS NOT NULL OR kind <> 'topup'),
    CHECK (actor IS NOT NULL OR kind <> 'adjust'),
    CHECK (CASE kind
        WHEN 'hold' THEN CAST(amount AS REAL) < 0
        WHEN 'capture' THEN CAST(amount AS REAL) = 0
        WHEN 'adjust' THEN CAST(amount AS REAL) <> 0
        ELSE CAST(amount AS REAL) > 0
    END)
);

CREATE INDEX ledger_by_user ON ledger (user_id, currency, id);
CREATE INDEX ledger_by_order ON ledger (order_id) WHERE order_id IS NOT NULL;
-- Duplicates made impossible by the database itself:
CREATE UNIQUE INDEX ledger_one_settlement_per_hold ON ledger (hold_id)
    WHERE kind IN ('capture', 'release');
CREATE UNIQUE INDEX ledger_one_refund_per_order ON ledger (order_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX ledger_unique_ref ON ledger (ref) WHERE ref IS NOT NULL;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN
    SELECT RAISE(ABORT, 'ledger is append-only');
END;

-- Access control: whether a user may use the bot, and whether an admin blocked them.
ALTER TABLE users ADD COLUMN access TEXT NOT NULL DEFAULT 'none'
    CHECK (access IN ('none', 'requested', 'approved', 'denied'));
ALTER TABLE users ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1));
"""

V4_INTENTS_AND_QUOTES = """
-- Prices the server showed: a Buy button names a quote, never a price.
CREATE TABLE quotes (
    id               TEXT PRIMARY KEY,   -- random token in the Buy button
    user_id          INTEGER NOT NULL REFERENCES users (id),
    provider         TEXT NOT NULL,
    service          TEXT NOT NULL,
    country          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    duration_hours   INTEGER,
    ref              TEXT NOT NULL,
    price            TEXT NOT NULL,      -- the provider's price then, in its currency
    currency         TEXT NOT NULL,
    display_price    TEXT NOT NULL,      -- what the user was shown (and pays), marked up
    display_currency TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX quotes_by_time ON quotes (created_at);

-- Write-ahead records of every money-moving provider call (buy, renew, cancel):
-- opened before the call in the same transaction as the hold, completed after it in the same
-- transaction as the order, capture or refund; the reconciler finishes what a crash left open.
CREATE TABLE intents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    action            TEXT NOT NULL CHECK (action IN ('buy', 'renew', 'cancel')),
    user_id           INTEGER NOT NULL REFERENCES users (id),
    provider          TEXT NOT NULL,
    service           TEXT NOT NULL,
    country           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    duration_hours    INTEGER,
    ref               TEXT NOT NULL DEFAULT '',
    cost              TEXT,              -- the provider's price for this call, its currency
    cost_currency     TEXT,
    display_price     TEXT,              -- what the user pays for it
    display_currency  TEXT,
    hold_id           INTEGER UNIQUE REFERENCES ledger (id),  -- NULL: the user does not pay
    order_id          INTEGER REFERENCES orders (id),  -- renew/cancel: the order; buy: once bought
    quote_id          TEXT UNIQUE,       -- buy: the quote confirmed (one purchase per Buy)
    expires_before    TEXT,              -- renew: the order's end before the call
    refund            TEXT,              -- cancel: the RefundScope the rules promised
    status            TEXT NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'done', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,  -- reconciliations tried
    note              TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    CHECK ((cost IS NULL) = (cost_currency IS NULL)),
    CHECK ((display_price IS NULL) = (display_currency IS NULL)),
    CHECK (status <> 'done' OR order_id IS NOT NULL)
);
CREATE INDEX intents_open ON intents (id) WHERE status = 'open';
CREATE INDEX intents_by_order ON intents (order_id);
-- At most one money-moving call in flight per order (two processes cannot renew twice).
CREATE UNIQUE INDEX intents_one_open_per_order ON intents (order_id)
    WHERE status = 'open' AND order_id IS NOT NULL;

-- The latest renewal the bot made (cancel windows count from the latest charge).
ALTER TABLE orders ADD COLUMN renewed_at TEXT;
"""

V5_DELIVERY_ATTEMPTS = """
-- Deliveries Telegram refused for their content: counted, and given up (failed_at) after a
-- bounded number, so one poison message never blocks the order's later SMS.
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN failed_at TEXT;
ALTER TABLE messages ADD COLUMN failure TEXT;  -- Telegram's last refusal, for the admins
CREATE INDEX messages_failed ON messages (failed_at) WHERE failed_at IS NOT NULL;
"""

V6_FSM = """
-- aiogram FSM states and data (a step that waits for typed input survives a restart).
CREATE TABLE fsm (
    key        TEXT PRIMARY KEY,   -- aiogram's StorageKey, built by DefaultKeyBuilder
    state      TEXT,
    data       TEXT NOT NULL DEFAULT '{}',  -- JSON object
    updated_at TEXT NOT NULL
);
"""

V7_PROVIDER_NOTICES = """
-- What an adapter learned at run time that the operator must fix (e.g. a server zone that
-- disagrees with the setting): told to the admins once, and shown by `doctor`.
CREATE TABLE provider_notices (
    provider   TEXT NOT NULL,
    text       TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (provider, text)
) WITHOUT ROWID;
"""

V8_USER_PROFILE = """
-- The user's name and @username as Telegram last reported them (for the admins' /user and
-- /users), and the time zone they chose in /settings (NULL: UTC).
ALTER TABLE users ADD COLUMN full_name TEXT;
ALTER TABLE users ADD COLUMN username TEXT;  -- without the @, as Telegram spells it
ALTER TABLE users ADD COLUMN timezone TEXT;  -- an IANA zone name
CREATE INDEX users_by_username ON users (lower(username)) WHERE username IS NOT NULL;
"""

V9_BROADCASTS = """
-- Admin broadcasts: the message, and each recipient's delivery state, so a broadcast a restart
-- interrupted continues where it stopped and nobody gets it twice.
CREATE TABLE broadcasts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id            INTEGER NOT NULL,   -- who wrote it
    text                TEXT NOT NULL,      -- Telegram HTML, as the admin formatted it
    status              TEXT NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'sending', 'done', 'cancelled')),
    progress_chat_id    INTEGER,            -- the message showing "sent N/M" to the admin
    progress_message_id INTEGER,
    created_at          TEXT NOT NULL,
    started_at          TEXT,
    finished_at         TEXT
);
CREATE INDEX broadcasts_sending ON broadcasts (id) WHERE status = 'sending';

CREATE TABLE broadcast_deliveries (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'blocked', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT,
    PRIMARY KEY (broadcast_id, user_id)
);
CREATE INDEX broadcast_deliveries_pending ON broadcast_deliveries (broadcast_id, user_id)
    WHERE status = 'pending';
"""

V10_OFFER_STATS = """
-- How each offer delivers (issue #12), learnt once per order: the order's outcome is written on
-- the order (stats_outcome: code, no_code, cancelled or banned; NULL while not known) in the
-- transaction that stores its first SMS or closes it, and folded into the aggregates below in
-- that same transaction, so a tap reads a few rows instead of scanning history.
ALTER TABLE orders ADD COLUMN stats_outcome TEXT
    CHECK (stats_outcome IN ('code', 'no_code', 'cancelled', 'banned'));

-- Counts per offer (provider x service x country x kind): lifetime, and of the recent ring.
CREATE TABLE offer_stats (
    provider     TEXT NOT NULL,
    service      TEXT NOT NULL,
    country      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    samples      INTEGER NOT NULL DEFAULT 0,   -- outcomes recorded (also the ring's next slot)
    codes        INTEGER NOT NULL DEFAULT 0,
    no_code      INTEGER NOT NULL DEFAULT 0,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    banned       INTEGER NOT NULL DEFAULT 0,
    code_seconds INTEGER NOT NULL DEFAULT 0,   -- sum of the times to the first SMS
    recent       INTEGER NOT NULL DEFAULT 0,   -- outcomes in the ring below (at most its size)
    recent_codes INTEGER NOT NULL DEFAULT 0,   -- of which codes
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (provider, service, country, kind)
);

-- The latest outcomes per offer, a ring of a fixed size (slot = sample number modulo its
-- size): recent share and typical time come from at most that many rows.
CREATE TABLE offer_recent (
    provider TEXT NOT NULL,
    service  TEXT NOT NULL,
    country  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    slot     INTEGER NOT NULL,
    order_id INTEGER NOT NULL,
    outcome  TEXT NOT NULL CHECK (outcome IN ('code', 'no_code', 'cancelled', 'banned')),
    seconds  INTEGER,                          -- time to the first SMS (outcome code)
    at       TEXT NOT NULL,
    PRIMARY KEY (provider, service, country, kind, slot)
);

-- "Tell me when": a user asks to hear once when a (service, country) has numbers, or an
-- offer under max_price (in currency, the display currency then). fired_at is set once, by
-- the one check that sends the message (a conditional UPDATE: two processes cannot both).
CREATE TABLE stock_alerts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    service    TEXT NOT NULL,
    country    TEXT NOT NULL,
    max_price  TEXT,                          -- Decimal text; NULL: any offer in stock
    currency   TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    checked_at TEXT,
    fired_at   TEXT,
    CHECK ((max_price IS NULL) = (currency IS NULL))
);
CREATE INDEX stock_alerts_pending ON stock_alerts (service, country) WHERE fired_at IS NULL;
CREATE INDEX stock_alerts_by_user ON stock_alerts (user_id, id) WHERE fired_at IS NULL;
"""

V11_ADMIN_SUMMARY = """
-- Admins who asked for the daily summary (issue #12), by Telegram id (admins come from the
-- ADMIN_IDS setting, not from users). last_sent_day (YYYY-MM-DD, UTC) is claimed by one
-- conditional UPDATE before sending, so a restart or a second process does not send it twice.
CREATE TABLE admin_summaries (
    admin_id      INTEGER PRIMARY KEY,
    enabled       INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    last_sent_day TEXT,
    updated_at    TEXT NOT NULL
);
"""

V12_KEEP_TRYING = """
-- "Keep trying" (issue #12): a user allows up to `tries` activations of one (service,
-- country), each at most max_price (display currency). `state` is the plan's next step:
-- buying (quote_id: the quote being bought; its intent, found by quote_id, tells whether it
-- was), waiting (order_id: the current order, until `deadline`), cancelling (order_id: no
-- code came in time), or an end (done: a code came; stopped: by the user; gave_up: `reason`
-- says why). Each step moves `step` on with a conditional UPDATE, so it is taken once.
CREATE TABLE keep_trying (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    service     TEXT NOT NULL,
    country     TEXT NOT NULL,
    tries       INTEGER NOT NULL CHECK (tries BETWEEN 1 AND 10),
    max_price   TEXT NOT NULL,                -- Decimal text, in `currency`
    currency    TEXT NOT NULL,
    start_quote TEXT NOT NULL UNIQUE,         -- the confirmation it began on (one plan each)
    tries_used  INTEGER NOT NULL DEFAULT 0,   -- purchases made under the plan
    state       TEXT NOT NULL
        CHECK (state IN ('buying', 'waiting', 'cancelling', 'done', 'stopped', 'gave_up')),
    quote_id    TEXT,
    order_id    INTEGER REFERENCES orders (id),
    deadline    TEXT,
    reason      TEXT,
    step        INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX keep_trying_live ON keep_trying (state, id)
    WHERE state IN ('buying', 'waiting', 'cancelling');
CREATE INDEX keep_trying_by_order ON keep_trying (order_id);

-- The offers a plan bought or tried: one plan never buys one offer twice.
CREATE TABLE keep_trying_offers (
    plan_id    INTEGER NOT NULL REFERENCES keep_trying (id),
    provider   TEXT NOT NULL,
    ref        TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (plan_id, provider, ref)
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", V1_INITIAL),
    Migration(2, "telegram language", V2_TELEGRAM_LANGUAGE),
    Migration(3, "wallets and access", V3_WALLETS_AND_ACCESS),
    Migration(4, "purchase intents and quotes", V4_INTENTS_AND_QUOTES),
    Migration(5, "delivery attempts", V5_DELIVERY_ATTEMPTS),
    Migration(6, "fsm", V6_FSM),
    Migration(7, "provider notices", V7_PROVIDER_NOTICES),
    Migration(8, "user profile", V8_USER_PROFILE),
    Migration(9, "broadcasts", V9_BROADCASTS),
    Migration(10, "offer stats", V10_OFFER_STATS),
    Migration(11, "admin summary", V11_ADMIN_SUMMARY),
    Migration(12, "keep trying", V12_KEEP_TRYING),
)


def split_statements(script: str) -> list[str]:
    """Split a script into statements (``;`` inside strings, comments and triggers is kept)."""
    statements: list[str] = []
    buffer = ""
    *pieces, tail = script.split(";")
    for piece in pieces:
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip() != ";":
                statements.append(buffer.strip())
            buffer = ""
    rest = (buffer + tail).strip()  # a last statement without ';' (or only a comment)
    if rest:
        statements.append(rest)
    return statements


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Versions must be 1, 2, 3, ... in order, each with a name."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected or not migration.name:
            raise MigrationError(
                f"migration #{expected} is {migration!r}: expected version {expected} with a name"
            )


async def apply_migrations(db: Database, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations the database lacks, each in its own transaction.

    Returns the versions applied now. Safe against another process migrating concurrently:
    each step re-reads the recorded history under ``BEGIN IMMEDIATE``.
    """
    check_migrations(migrations)
    async with db.transaction() as tx:
        await tx.execute(SCHEMA_VERSION_TABLE)
    applied: list[int] = []
    for migration in migrations:
        async with db.transaction() as tx:
            rows = await tx.fetchall("SELECT version, name FROM schema_version ORDER BY version")
            recorded = {int(row[0]): str(row[1]) for row in rows}
            if recorded and max(recorded) > len(migrations):
                raise MigrationError(
                    f"database schema v{max(recorded)} is newer than this code "
                    f"(v{len(migrations)})"
                )
            if migration.version in recorded:
                if recorded[migration.version] != migration.name:
                    raise MigrationError(
                        f"database has v{migration.version} "
                        f"{recorded[migration.version]!r}, code has {migration.name!r}"
                    )
                continue
            for statement in split_statements(migration.sql):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (
                    migration.version,
                    migration.name,
                    datetime.now(UTC).isoformat(timespec="microseconds"),
                ),
            )
        logger.info("applied migration v%d %s", migration.version, migration.name)
        applied.append(migration.version)
    return applied
