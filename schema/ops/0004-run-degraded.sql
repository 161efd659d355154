-- ops.db 0005: a run may end 'degraded': its cycle completed, but something the operator must see went wrong (for
-- qb-reconcile: the QuickBooks connection is dead or its heartbeat failed, or invoices did not reach QuickBooks).
-- It is not a success (`--once` and `syncctl trigger --wait` exit 10, the metrics' last_run_success is 0).
--
-- SQLite cannot change a CHECK constraint in place, so sync_runs is rebuilt.  sync_steps references it with ON
-- DELETE CASCADE and foreign keys are on (they cannot be switched off inside the migration's transaction): dropping
-- sync_runs first would delete every step row, so both tables are copied aside, dropped children first, recreated
-- exactly as 0001 made them (sync_steps unchanged) and filled again.  No other table references them.
CREATE TEMP TABLE m0005_runs AS SELECT * FROM sync_runs;
CREATE TEMP TABLE m0005_steps AS SELECT * FROM sync_steps;
DROP TABLE sync_steps;
DROP TABLE sync_runs;

CREATE TABLE sync_runs (
    run_id       TEXT PRIMARY KEY,      -- <sync_type>-<UTC start>, e.g. tga_sync-2026-11-29T16:00:03Z
    sync_type    TEXT NOT NULL,         -- tga_sync | cricos_sync | qb_reconcile
    cycle_id     TEXT NOT NULL,         -- run_id of the run that started the cycle
    trigger      TEXT NOT NULL CHECK (trigger IN ('timer', 'manual', 'resume', 'catchup')),
    requested_by TEXT,                  -- timer, startup, or the syncctl user ("uid 0")
    full         INTEGER NOT NULL DEFAULT 0 CHECK (full IN (0, 1)),
    status       TEXT NOT NULL
                 CHECK (status IN ('running', 'complete', 'partial', 'degraded', 'failed', 'cancelled', 'stale')),
    phase        TEXT,                  -- the phase running now, or where the run ended
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    records_in   INTEGER NOT NULL DEFAULT 0,
    records_out  INTEGER NOT NULL DEFAULT 0,
    changes      INTEGER NOT NULL DEFAULT 0,
    error        TEXT,                  -- why it failed, or (degraded) what needs the operator
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT NOT NULL,
    resumed_from TEXT,                  -- run_id of the run this one continued
    summary      TEXT                   -- JSON: the cycle's change summary (set by write_snapshot / summary)
);
CREATE INDEX sync_runs_by_type ON sync_runs (sync_type, started_at);
CREATE INDEX sync_runs_by_cycle ON sync_runs (cycle_id);
CREATE INDEX sync_runs_running ON sync_runs (sync_type) WHERE status = 'running';

CREATE TABLE sync_steps (
    run_id      TEXT NOT NULL REFERENCES sync_runs (run_id) ON DELETE CASCADE,
    sync_type   TEXT NOT NULL,
    step        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed', 'cancelled', 'stale')),
    records_in  INTEGER NOT NULL DEFAULT 0,
    records_out INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,  -- records skipped as invalid (e.g. no key); see detail
    attempts    INTEGER NOT NULL DEFAULT 0,  -- failed attempts of a step in this phase (retries)
    error       TEXT,
    detail      TEXT,                        -- JSON, per phase (e.g. unparseable values per column)
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (run_id, sync_type, step)
);

INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, requested_by, full, status, phase, started_at,
    finished_at, records_in, records_out, changes, error, host, pid, version, resumed_from, summary)
    SELECT run_id, sync_type, cycle_id, trigger, requested_by, full, status, phase, started_at, finished_at,
    records_in, records_out, changes, error, host, pid, version, resumed_from, summary FROM m0005_runs;
INSERT INTO sync_steps (run_id, sync_type, step, status, records_in, records_out, rejected, attempts, error, detail,
    started_at, finished_at)
    SELECT run_id, sync_type, step, status, records_in, records_out, rejected, attempts, error, detail, started_at,
    finished_at FROM m0005_steps;
DROP TABLE m0005_runs;
DROP TABLE m0005_steps;
