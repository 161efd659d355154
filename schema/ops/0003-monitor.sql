-- ops.db 0003: missed-run monitoring (common/monitor.c writes it; `syncctl doctor` reads it).
-- Every timestamp is ISO-8601 UTC text, YYYY-MM-DDTHH:MM:SSZ.
-- IF NOT EXISTS: the migrations numbered before this one are written in parallel by other daemons' owners, so a
-- development database may meet this file at another position in the sequence; it must apply cleanly either way.

-- One row per job whose daemon watches a schedule.  armed_at is when the monitor first watched this schedule (or
-- the schedule last changed): scheduled times before it are never reported as missed, so installing a daemon on a
-- Tuesday does not report last Sunday's run as missed.
CREATE TABLE IF NOT EXISTS sync_monitor (
    sync_type    TEXT PRIMARY KEY,
    on_calendar  TEXT NOT NULL,          -- the OnCalendar= expression watched, with its zone
    armed_at     TEXT NOT NULL,
    health       TEXT NOT NULL DEFAULT 'ok'
                 CHECK (health IN ('ok', 'due', 'missed', 'overrun', 'stuck')),
    expected_at  TEXT,                   -- the last scheduled time whose grace has passed
    updated_at   TEXT NOT NULL           -- when health or expected_at last changed
);
