-- ops.db 0001: the observatory (runs and steps), the cursors of the cycle engine, queued mail and one-time alerts.
-- Every timestamp is ISO-8601 UTC text, YYYY-MM-DDTHH:MM:SSZ, so that text order is time order.

-- One row per run.  A run is one process working on one cycle; a cycle that is interrupted (crash, stop, failure)
-- and resumed spans several runs that share cycle_id.  Operators filter by sync_type.
CREATE TABLE sync_runs (
    run_id       TEXT PRIMARY KEY,      -- <sync_type>-<UTC start>, e.g. tga_sync-2026-11-29T16:00:03Z
    sync_type    TEXT NOT NULL,         -- tga_sync | cricos_sync | qb_reconcile
    cycle_id     TEXT NOT NULL,         -- run_id of the run that started the cycle
    trigger      TEXT NOT NULL CHECK (trigger IN ('timer', 'manual', 'resume', 'catchup')),
    requested_by TEXT,                  -- timer, startup, or the syncctl user ("uid 0")
    full         INTEGER NOT NULL DEFAULT 0 CHECK (full IN (0, 1)),
    status       TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed', 'cancelled', 'stale')),
    phase        TEXT,                  -- the phase running now, or where the run ended
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    records_in   INTEGER NOT NULL DEFAULT 0,
    records_out  INTEGER NOT NULL DEFAULT 0,
    changes      INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT NOT NULL,
    resumed_from TEXT,                  -- run_id of the run this one continued
    summary      TEXT                   -- JSON: the cycle's change summary (set by write_snapshot / summary)
);
CREATE INDEX sync_runs_by_type ON sync_runs (sync_type, started_at);
CREATE INDEX sync_runs_by_cycle ON sync_runs (cycle_id);
CREATE INDEX sync_runs_running ON sync_runs (sync_type) WHERE status = 'running';

-- One row per phase of a run ("step" is the phase name).  Always written by upsert on the unique key.
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

-- Cycle cursors, one table per job, one row each.  cycle_phase is 'done' when the job is idle; otherwise it names
-- the phase to run next and phase_cursor the position inside it.  seq counts commits; corpus_seq is the seq of the
-- last commit that also wrote rtopacks.db (see sync_checkpoint there).
CREATE TABLE tga_sync_cursor (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    cycle_phase  TEXT NOT NULL DEFAULT 'done',
    run_id       TEXT,
    cycle_id     TEXT,
    phase_cursor TEXT NOT NULL DEFAULT '',
    cycle_state  TEXT NOT NULL DEFAULT '{}',   -- JSON, lives for one cycle (e.g. the window chosen by init)
    job_state    TEXT NOT NULL DEFAULT '{}',   -- JSON, lives across cycles (e.g. the high-water mark)
    full         INTEGER NOT NULL DEFAULT 0,
    seq          INTEGER NOT NULL DEFAULT 0,
    corpus_seq   INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL
);
CREATE TABLE cricos_sync_cursor (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    cycle_phase  TEXT NOT NULL DEFAULT 'done',
    run_id       TEXT,
    cycle_id     TEXT,
    phase_cursor TEXT NOT NULL DEFAULT '',
    cycle_state  TEXT NOT NULL DEFAULT '{}',   -- JSON, lives for one cycle (e.g. the window chosen by init)
    job_state    TEXT NOT NULL DEFAULT '{}',   -- JSON, lives across cycles (e.g. the high-water mark)
    full         INTEGER NOT NULL DEFAULT 0,
    seq          INTEGER NOT NULL DEFAULT 0,
    corpus_seq   INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL
);
CREATE TABLE qb_reconcile_cursor (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    cycle_phase  TEXT NOT NULL DEFAULT 'done',
    run_id       TEXT,
    cycle_id     TEXT,
    phase_cursor TEXT NOT NULL DEFAULT '',
    cycle_state  TEXT NOT NULL DEFAULT '{}',   -- JSON, lives for one cycle (e.g. the window chosen by init)
    job_state    TEXT NOT NULL DEFAULT '{}',   -- JSON, lives across cycles (e.g. the high-water mark)
    full         INTEGER NOT NULL DEFAULT 0,
    seq          INTEGER NOT NULL DEFAULT 0,
    corpus_seq   INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL
);

-- Outgoing mail.  A mail is queued (in the same transaction as the state it reports) before it is sent, so a crash
-- or a mail server that is down never loses it; mail_key makes queueing idempotent, so it is never queued twice.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    mail_key        TEXT NOT NULL UNIQUE,     -- e.g. tga_sync/complete/<cycle_id>
    sync_type       TEXT NOT NULL,
    run_id          TEXT,
    subject         TEXT NOT NULL,
    message         TEXT NOT NULL,            -- the whole message, headers included (never a secret)
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dropped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE status = 'pending';

-- Alerts that must reach the operator once per occurrence (missed run, late edition, reconnect needed).
CREATE TABLE sync_alerts (
    sync_type  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    alert_key  TEXT NOT NULL,               -- what the alert is about, e.g. the expected run time
    created_at TEXT NOT NULL,
    cleared_at TEXT,
    detail     TEXT,
    PRIMARY KEY (sync_type, kind, alert_key)
);
