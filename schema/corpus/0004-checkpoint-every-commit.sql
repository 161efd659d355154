-- rtopacks.db 0004: the checkpoint is written by EVERY cursor commit of a job that uses rtopacks.db.
-- With it the authoritative position of such a job lives here, with the data, and ops.db's cursor is at most one
-- commit ahead of it (ops.db, the main database, commits first).  The start-up check compares the two seqs; see
-- docs/ARCHITECTURE.md, "The two databases".
--   corpus_seq    the cursor's corpus_seq at this commit (the seq of the last commit that carried corpus rows).
--                 NULL in a row written by an engine from before this migration (then the row was written by the
--                 last corpus commit only; the start-up check adopts such a row once, when it agrees).
--   run_summary,  the run row's summary and change count after this commit, so that undoing a lost commit can
--   run_changes   put them back.
ALTER TABLE sync_checkpoint ADD COLUMN corpus_seq INTEGER;
ALTER TABLE sync_checkpoint ADD COLUMN run_summary TEXT;
ALTER TABLE sync_checkpoint ADD COLUMN run_changes INTEGER NOT NULL DEFAULT 0;
