-- ops.db 0002: billing, the contract between the billing side (which writes customers, invoices and their lines)
-- and qb-reconcile (which pushes invoices to QuickBooks Online and reconciles what QuickBooks holds back into them).
-- Documented in docs/qb-reconcile.md.  Money is integer cents; every timestamp is ISO-8601 UTC
-- (YYYY-MM-DDTHH:MM:SSZ), dates are YYYY-MM-DD.  Columns prefixed qb_ are written by qb-reconcile only.

-- Customers (RTOs we bill).  display_name becomes the QuickBooks DisplayName: unique there (case-insensitively)
-- and without a colon.
CREATE TABLE billing_customers (
    id             INTEGER PRIMARY KEY,          -- our customer id
    rto_code       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    email          TEXT,
    is_test        INTEGER NOT NULL DEFAULT 0 CHECK (is_test IN (0, 1)),  -- 1: never sent to a production company
    qb_customer_id TEXT,                         -- QuickBooks Customer.Id, once found or created
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX billing_customers_name ON billing_customers (display_name COLLATE NOCASE);

-- Invoices.  The billing side inserts a row with qb_sync_status 'pending' (the default); qb-reconcile pushes it and
-- sets 'synced' (with qb_invoice_id), or 'failed' (qb_last_error says why; retried next run), or 'abandoned' after
-- [qb-reconcile] max_attempts failed attempts.  To change an invoice that is already in QuickBooks, change its lines
-- and total and set qb_sync_status back to 'pending': the next push sends a sparse update of that invoice.
CREATE TABLE billing_invoices (
    id                 INTEGER PRIMARY KEY,      -- our invoice id (part of the QuickBooks requestid)
    customer_id        INTEGER NOT NULL REFERENCES billing_customers (id),
    doc_number         TEXT NOT NULL,            -- QuickBooks DocNumber: 1 to 21 characters, unique
    txn_date           TEXT NOT NULL,            -- YYYY-MM-DD
    due_date           TEXT,                     -- YYYY-MM-DD; NULL: QuickBooks' default (terms)
    currency           TEXT NOT NULL DEFAULT 'AUD',
    total_cents        INTEGER NOT NULL,         -- must equal the sum of the lines' amount_cents
    memo               TEXT,                     -- shown to the customer (CustomerMemo)
    is_test            INTEGER NOT NULL DEFAULT 0 CHECK (is_test IN (0, 1)),
    qb_sync_status     TEXT NOT NULL DEFAULT 'pending'
                       CHECK (qb_sync_status IN ('pending', 'synced', 'failed', 'abandoned')),
    qb_invoice_id      TEXT,                     -- QuickBooks Invoice.Id
    qb_sync_token      TEXT,                     -- QuickBooks SyncToken last seen
    qb_attempts        INTEGER NOT NULL DEFAULT 0,   -- failed push attempts since the last success or retry
    qb_request_gen     INTEGER NOT NULL DEFAULT 0,   -- requestid generation (see docs): moves on after a refusal
    qb_last_error      TEXT,
    qb_last_attempt_at TEXT,
    qb_synced_at       TEXT,
    qb_total_cents     INTEGER,                  -- TotalAmt in QuickBooks
    qb_balance_cents   INTEGER,                  -- Balance in QuickBooks (0 = paid in full)
    qb_state           TEXT CHECK (qb_state IN ('open', 'partial', 'paid', 'voided', 'deleted', 'missing')),
    qb_updated_at      TEXT,                     -- MetaData.LastUpdatedTime in QuickBooks (as UTC)
    paid_at            TEXT,                     -- when QuickBooks showed it paid in full
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX billing_invoices_doc ON billing_invoices (doc_number COLLATE NOCASE);
CREATE INDEX billing_invoices_sync ON billing_invoices (qb_sync_status, id);
CREATE INDEX billing_invoices_qb ON billing_invoices (qb_invoice_id);

-- Invoice lines.  The QuickBooks Item of a line comes from [qb-reconcile] item_map (item -> Item.Id) or
-- default_item.  amount_cents must equal quantity * unit_price_cents.
CREATE TABLE billing_invoice_lines (
    id               INTEGER PRIMARY KEY,
    invoice_id       INTEGER NOT NULL REFERENCES billing_invoices (id) ON DELETE CASCADE,
    line_no          INTEGER NOT NULL,
    item             TEXT,                       -- our plan / product code, e.g. 'essential'
    description      TEXT,
    quantity         INTEGER NOT NULL DEFAULT 1,
    unit_price_cents INTEGER NOT NULL,
    amount_cents     INTEGER NOT NULL,
    UNIQUE (invoice_id, line_no)
);

-- What reconciliation found that a person must look at.  One open row per (invoice, kind); resolved_at is set when
-- QuickBooks agrees with us again.
CREATE TABLE qb_reconcile_issues (
    id             INTEGER PRIMARY KEY,
    invoice_id     INTEGER NOT NULL REFERENCES billing_invoices (id),
    qb_invoice_id  TEXT,
    kind           TEXT NOT NULL CHECK (kind IN ('amount_differs', 'deleted_in_qb', 'voided_in_qb', 'missing_in_qb',
                                                 'customer_differs')),
    detail         TEXT NOT NULL,
    our_cents      INTEGER,
    qb_cents       INTEGER,
    first_seen_at  TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    first_cycle_id TEXT,
    resolved_at    TEXT
);
CREATE UNIQUE INDEX qb_reconcile_issues_open ON qb_reconcile_issues (invoice_id, kind) WHERE resolved_at IS NULL;

-- The QuickBooks connection, one row.  Read by `syncctl qb status`, `syncctl doctor` and the metrics: keep these
-- column names.  The tokens themselves are never in the database (see the token store in docs/qb-reconcile.md).
CREATE TABLE qb_connection (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    state                   TEXT NOT NULL DEFAULT 'not_connected'
                            CHECK (state IN ('connected', 'reconnect_required', 'not_connected')),
    environment             TEXT,                -- sandbox | production (from the config, at the last token event)
    realm_id                TEXT,                -- the QuickBooks company
    connection_generation   INTEGER NOT NULL DEFAULT 0,  -- +1 per authorization (syncctl qb connect)
    connected_at            TEXT,
    access_expires_at       TEXT,
    refresh_expires_at      TEXT,                -- rolling expiry of the refresh token (about 100 days)
    refresh_hard_expires_at TEXT,                -- hard (5-year) expiry of the refresh token
    last_refresh_at         TEXT,
    last_heartbeat_at       TEXT,                -- last heartbeat attempt
    last_heartbeat_ok       TEXT,                -- last heartbeat that refreshed and stored the tokens
    last_error              TEXT,
    last_intuit_tid         TEXT,
    pending_state           TEXT,                -- `syncctl qb connect`: the state of the authorize URL
    pending_state_expires_at TEXT,
    install_id              TEXT NOT NULL,       -- random, part of every requestid (a recreated database never
                                                 -- replays an old database's requests)
    updated_at              TEXT NOT NULL
);
INSERT INTO qb_connection (id, state, install_id, updated_at)
    VALUES (1, 'not_connected', lower(hex(randomblob(6))), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
