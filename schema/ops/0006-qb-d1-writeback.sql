-- ops.db 0006: qb-reconcile with the billing tables in Cloudflare D1 ([qb-reconcile] billing_source = d1; issue 16;
-- daemons/qb-reconcile/d1billing.c, docs/qb-reconcile.md "Billing in D1").
--
-- With billing_source = d1 the contract tables live in D1's ops database.  Each cycle pulls the invoices to push
-- into ops.db (which stays the journal of every QuickBooks request: requestid generations, attempts) and every
-- outcome goes back to D1 through qb_d1_writeback, an outbox of keys (not copies) filled by the triggers below in
-- the transaction that records the outcome; a drain reads the current local rows and sends them, and a sent row is
-- deleted only if it was not marked again meanwhile (gen), as d1_outbox does (0005).  In local mode (the default)
-- qb_d1_state.mode is 'local' and the triggers queue nothing.

-- One row: the mode the daemon last started with, and 'pulling' = 1 inside a pull's transaction (a pull copies
-- D1's rows in: that is no outcome to write back).
CREATE TABLE qb_d1_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    mode    TEXT NOT NULL DEFAULT 'local' CHECK (mode IN ('local', 'd1')),
    pulling INTEGER NOT NULL DEFAULT 0
);
INSERT INTO qb_d1_state (id, mode, pulling) VALUES (1, 'local', 0);

-- Per invoice pulled from D1: the updated_at and qb_sync_status D1 had when it was pulled, or after our last write
-- that D1 took (the compare-and-set base: a write-back of the status applies only while D1 still has them), and the
-- cycle that pulled it (the push phase pushes only the invoices its cycle pulled).
CREATE TABLE qb_d1_base (
    invoice_id    INTEGER PRIMARY KEY,
    d1_updated_at TEXT NOT NULL,
    d1_status     TEXT NOT NULL,
    cycle_id      TEXT,
    pulled_at     TEXT NOT NULL
);
CREATE INDEX qb_d1_base_cycle ON qb_d1_base (cycle_id);

CREATE TABLE qb_d1_writeback (
    kind       TEXT NOT NULL CHECK (kind IN ('invoice', 'customer', 'issue', 'connection')),
    key        INTEGER NOT NULL,            -- the row's id (1 for the connection)
    gen        INTEGER NOT NULL DEFAULT 1,  -- bumped by every change after queueing
    queued_at  TEXT NOT NULL,               -- when this row first waited (kept across changes)
    attempts   INTEGER NOT NULL DEFAULT 0,  -- failed sends
    last_error TEXT,
    PRIMARY KEY (kind, key)
);

CREATE TRIGGER qb_d1_wb_invoice AFTER UPDATE ON billing_invoices
    WHEN EXISTS (SELECT 1 FROM qb_d1_state WHERE id = 1 AND mode = 'd1' AND pulling = 0)
BEGIN
    INSERT INTO qb_d1_writeback (kind, key, queued_at)
        VALUES ('invoice', NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (kind, key) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER qb_d1_wb_customer AFTER UPDATE OF qb_customer_id ON billing_customers
    WHEN EXISTS (SELECT 1 FROM qb_d1_state WHERE id = 1 AND mode = 'd1' AND pulling = 0)
BEGIN
    INSERT INTO qb_d1_writeback (kind, key, queued_at)
        VALUES ('customer', NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (kind, key) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER qb_d1_wb_issue_insert AFTER INSERT ON qb_reconcile_issues
    WHEN EXISTS (SELECT 1 FROM qb_d1_state WHERE id = 1 AND mode = 'd1' AND pulling = 0)
BEGIN
    INSERT INTO qb_d1_writeback (kind, key, queued_at)
        VALUES ('issue', NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (kind, key) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER qb_d1_wb_issue_update AFTER UPDATE ON qb_reconcile_issues
    WHEN EXISTS (SELECT 1 FROM qb_d1_state WHERE id = 1 AND mode = 'd1' AND pulling = 0)
BEGIN
    INSERT INTO qb_d1_writeback (kind, key, queued_at)
        VALUES ('issue', NEW.id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (kind, key) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER qb_d1_wb_connection AFTER UPDATE ON qb_connection
    WHEN EXISTS (SELECT 1 FROM qb_d1_state WHERE id = 1 AND mode = 'd1' AND pulling = 0)
BEGIN
    INSERT INTO qb_d1_writeback (kind, key, queued_at)
        VALUES ('connection', 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (kind, key) DO UPDATE SET gen = gen + 1;
END;
