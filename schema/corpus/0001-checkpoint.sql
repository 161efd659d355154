-- rtopacks.db 0001: the cycle engine's checkpoint.
-- A step that writes the corpus commits its data, its cursor in ops.db and a copy of that cursor here in one
-- transaction.  SQLite in WAL mode makes such a transaction atomic in each file but not across the two files, so
-- after a crash in the middle of a commit the copy here (which sits with the data) is the truth about which data
-- is in: at start-up the engine compares seq here with corpus_seq in ops.db and repairs the cursor there.
CREATE TABLE sync_checkpoint (
    sync_type       TEXT PRIMARY KEY,
    seq             INTEGER NOT NULL,
    run_id          TEXT,
    cycle_id        TEXT,
    cycle_phase     TEXT NOT NULL,
    phase_cursor    TEXT NOT NULL,
    cycle_state     TEXT NOT NULL,
    job_state       TEXT NOT NULL,
    full            INTEGER NOT NULL,
    step            TEXT NOT NULL,       -- the phase this commit counted records for
    step_records_in  INTEGER NOT NULL,   -- that step row's counters after this commit
    step_records_out INTEGER NOT NULL,
    step_rejected    INTEGER NOT NULL,
    updated_at      TEXT NOT NULL
);
