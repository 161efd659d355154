-- ops.db 0005: the observatory mirror to Cloudflare D1 (issue 14 item 5; common/store/d1-mirror.c).
--
-- A daemon whose [d1] section names an ops database registers its sync_type in d1_mirror at start (and removes it
-- when D1 is not configured).  For those sync_types, every change to a run row, a step row or the cursor marks the
-- row in d1_outbox, inside the transaction that made the change (the triggers below; the cursor's trigger is made
-- by the daemon, since each job's cursor table is made by the cycle engine).  The outbox holds keys, not copies:
-- a drain reads the current local rows, so a newer state replaces an older queued one, and sends them to D1 in one
-- request.  A sent row is deleted only if it was not marked again meanwhile (gen).  D1 being down never fails a
-- sync: the rows wait here, like queued mail, and `syncctl status` shows how many and since when.
CREATE TABLE d1_mirror (
    sync_type TEXT PRIMARY KEY,
    since     TEXT NOT NULL
);

CREATE TABLE d1_outbox (
    sync_type  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('run', 'step', 'cursor')),
    run_id     TEXT NOT NULL DEFAULT '',    -- '' for the cursor
    step       TEXT NOT NULL DEFAULT '',    -- '' for a run and the cursor
    gen        INTEGER NOT NULL DEFAULT 1,  -- bumped by every change after queueing
    queued_at  TEXT NOT NULL,               -- when this row first waited (kept across changes)
    attempts   INTEGER NOT NULL DEFAULT 0,  -- failed sends
    last_error TEXT,
    PRIMARY KEY (sync_type, kind, run_id, step)
);

CREATE TRIGGER d1_outbox_run_insert AFTER INSERT ON sync_runs
    WHEN EXISTS (SELECT 1 FROM d1_mirror WHERE sync_type = NEW.sync_type)
BEGIN
    INSERT INTO d1_outbox (sync_type, kind, run_id, queued_at)
        VALUES (NEW.sync_type, 'run', NEW.run_id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (sync_type, kind, run_id, step) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER d1_outbox_run_update AFTER UPDATE ON sync_runs
    WHEN EXISTS (SELECT 1 FROM d1_mirror WHERE sync_type = NEW.sync_type)
BEGIN
    INSERT INTO d1_outbox (sync_type, kind, run_id, queued_at)
        VALUES (NEW.sync_type, 'run', NEW.run_id, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (sync_type, kind, run_id, step) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER d1_outbox_step_insert AFTER INSERT ON sync_steps
    WHEN EXISTS (SELECT 1 FROM d1_mirror WHERE sync_type = NEW.sync_type)
BEGIN
    INSERT INTO d1_outbox (sync_type, kind, run_id, step, queued_at)
        VALUES (NEW.sync_type, 'step', NEW.run_id, NEW.step, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (sync_type, kind, run_id, step) DO UPDATE SET gen = gen + 1;
END;
CREATE TRIGGER d1_outbox_step_update AFTER UPDATE ON sync_steps
    WHEN EXISTS (SELECT 1 FROM d1_mirror WHERE sync_type = NEW.sync_type)
BEGIN
    INSERT INTO d1_outbox (sync_type, kind, run_id, step, queued_at)
        VALUES (NEW.sync_type, 'step', NEW.run_id, NEW.step, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        ON CONFLICT (sync_type, kind, run_id, step) DO UPDATE SET gen = gen + 1;
END;
