/*
 * The two databases of a corpus job (one that writes rtopacks.db): the checkpoint and the start-up check.
 *
 * ops.db is the main database and rtopacks.db is ATTACHed as "corpus".  In WAL mode a transaction that writes both
 * commits file by file, ops.db first, so a crash can leave ops.db one commit ahead of rtopacks.db, and never the
 * other way round.  The invariant that makes that state impossible to mis-repair:
 *
 *   Every cursor commit of a corpus job (the run's start, every step of every phase, write_snapshot, notify, the
 *   last one) writes the cursor to ops.db AND a copy of it, with the same seq, to corpus.sync_checkpoint, in the
 *   same transaction as the rows it describes.  seq grows by one per commit.
 *
 * So at start-up exactly three states exist: the seqs are equal (nothing was split), or ops.db is ahead by exactly
 * one (the corpus half of that commit, seq N, was lost; the checkpoint is the state after commit N-1, the first
 * one included: no checkpoint means "nothing ever committed", seq 0), or the files do not belong together (refused).
 * For the lost commit N:
 *   - if it carried rows of its own into rtopacks.db (a PHASE_CORPUS step: the cursor's corpus_seq is N), those rows
 *     are gone: the cursor goes back to the checkpoint and the ops.db side of commit N is undone (the step row's
 *     counts and status, the run's summary, a finished run back to running); the resumed run redoes the step;
 *   - if it did not (the run's start, init, write_snapshot, notify, the last commit), its corpus half was the
 *     checkpoint alone, so nothing of the data is missing: the checkpoint is rewritten from the ops.db cursor and
 *     the commit stands, with its run row and the mail it queued (which is therefore sent once).
 * Which run died is the cursor's run_id either way, so the resumed run's resumed_from names it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle-int.h"
#include "db.h"
#include "log.h"
#include "xmalloc.h"

static const char SQL_CKPT_GET[] =
    "SELECT seq, run_id, cycle_id, cycle_phase, phase_cursor, cycle_state, job_state, full, step, step_records_in,"
    " step_records_out, step_rejected, corpus_seq, run_summary, run_changes FROM corpus.sync_checkpoint"
    " WHERE sync_type = ?";
/* The run row's summary is read back inside the same transaction, after the commit's own changes to it. */
static const char SQL_CKPT_SET[] =
    "INSERT INTO corpus.sync_checkpoint (sync_type, seq, run_id, cycle_id, cycle_phase, phase_cursor, cycle_state,"
    " job_state, full, step, step_records_in, step_records_out, step_rejected, updated_at, corpus_seq, run_summary,"
    " run_changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
    " (SELECT summary FROM main.sync_runs WHERE run_id = ?3),"
    " coalesce((SELECT changes FROM main.sync_runs WHERE run_id = ?3), 0))"
    " ON CONFLICT (sync_type) DO UPDATE SET seq = excluded.seq,"
    " run_id = excluded.run_id, cycle_id = excluded.cycle_id, cycle_phase = excluded.cycle_phase,"
    " phase_cursor = excluded.phase_cursor, cycle_state = excluded.cycle_state, job_state = excluded.job_state,"
    " full = excluded.full, step = excluded.step, step_records_in = excluded.step_records_in,"
    " step_records_out = excluded.step_records_out, step_rejected = excluded.step_rejected,"
    " updated_at = excluded.updated_at, corpus_seq = excluded.corpus_seq, run_summary = excluded.run_summary,"
    " run_changes = excluded.run_changes";
static const char SQL_STEP_COUNTS_GET[] =
    "SELECT records_in, records_out, rejected FROM sync_steps WHERE run_id = ? AND sync_type = ? AND step = ?";
/* Undo a lost step commit: back to the counts before it, and running (recovery then marks the run stale). */
static const char SQL_STEP_UNDO[] =
    "UPDATE sync_steps SET records_in = ?, records_out = ?, rejected = ?, status = 'running', finished_at = NULL"
    " WHERE run_id = ? AND sync_type = ? AND step = ?";
static const char SQL_RUN_UNDO[] =
    "UPDATE sync_runs SET summary = ?, changes = ? WHERE run_id = ?";
static const char SQL_RUN_UNFINISH[] =
    "UPDATE sync_runs SET status = 'running', finished_at = NULL, error = NULL WHERE run_id = ?";

struct checkpoint {
	struct cursor c;
	char *step, *summary;
	int64_t in, out, rej, changes;
	bool legacy;		/* written by an engine from before schema 0004: by corpus commits only */
};

int
checkpoint_store(struct cycle *cy, const struct cursor *c, const char *step, int64_t in, int64_t out, int64_t rej,
    char **cause)
{
	char now[ISO8601_LEN];
	sqlite3_stmt *st;

	if ((st = db_stmt(cy->db, SQL_CKPT_SET, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, cy->job->sync_type);
	db_bind_int(st, 2, c->seq);
	db_bind_text(st, 3, c->run_id);
	db_bind_text(st, 4, c->cycle_id);
	db_bind_text(st, 5, c->phase);
	db_bind_text(st, 6, c->phase_cursor ? c->phase_cursor : "");
	db_bind_text(st, 7, c->cycle_state ? c->cycle_state : "{}");
	db_bind_text(st, 8, c->job_state ? c->job_state : "{}");
	db_bind_int(st, 9, c->full);
	db_bind_text(st, 10, step);
	db_bind_int(st, 11, in);
	db_bind_int(st, 12, out);
	db_bind_int(st, 13, rej);
	db_bind_text(st, 14, iso8601_now(now));
	db_bind_int(st, 15, c->corpus_seq);
	return db_step_done(cy->db, st, cause);
}

static char *
col_dup(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, i));
}

/* Read the checkpoint: 1 and *ck, 0 when there is none, -1 on error. */
static int
checkpoint_load(struct cycle *cy, struct checkpoint *ck, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	memset(ck, 0, sizeof *ck);
	if ((st = db_stmt(cy->db, SQL_CKPT_GET, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, cy->job->sync_type);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : db_error(cy->db, cause, "read the checkpoint in rtopacks.db");
	}
	ck->c.seq = sqlite3_column_int64(st, 0);
	ck->c.run_id = col_dup(st, 1);
	ck->c.cycle_id = col_dup(st, 2);
	ck->c.phase = xstrdup(db_col_text(st, 3));
	ck->c.phase_cursor = xstrdup(db_col_text(st, 4));
	ck->c.cycle_state = xstrdup(db_col_text(st, 5));
	ck->c.job_state = xstrdup(db_col_text(st, 6));
	ck->c.full = sqlite3_column_int(st, 7);
	ck->step = xstrdup(db_col_text(st, 8));
	ck->in = sqlite3_column_int64(st, 9);
	ck->out = sqlite3_column_int64(st, 10);
	ck->rej = sqlite3_column_int64(st, 11);
	ck->legacy = sqlite3_column_type(st, 12) == SQLITE_NULL;
	ck->c.corpus_seq = sqlite3_column_int64(st, 12);
	ck->summary = col_dup(st, 13);
	ck->changes = sqlite3_column_int64(st, 14);
	sqlite3_reset(st);
	return 1;
}

static void
checkpoint_clear(struct checkpoint *ck)
{
	cursor_clear(&ck->c);
	free(ck->step);
	free(ck->summary);
	memset(ck, 0, sizeof *ck);
}

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int
refuse(struct cycle *cy, const struct checkpoint *ck, bool have, const char *why, char **cause)
{
	char where[256];

	if (have)
		snprintf(where, sizeof where, "is at commit %lld, run %s", (long long)ck->c.seq,
		    ck->c.run_id ? ck->c.run_id : "none");
	else
		snprintf(where, sizeof where, "is absent");
	xasprintf(cause, "ops.db (%s) and rtopacks.db (%s) do not belong together: %s (the cursor of %s in ops.db is "
	    "at commit %lld, run %s; the checkpoint in rtopacks.db %s). Nothing was changed: restore both files from "
	    "the same backup, or move both aside to start from nothing", cy->h->ops_path, cy->h->corpus_path, why,
	    cy->job->sync_type, (long long)cy->cur.seq, cy->cur.run_id ? cy->cur.run_id : "none", where);
	return -1;
}

/*
 * The corpus half of the last commit was lost but it carried nothing besides the checkpoint: write the checkpoint
 * that commit would have written, from the ops.db cursor.  Its step counters are those of the step row the commit
 * wrote: none for the run's start (a new run id), else the row of the phase the commit ran (the checkpoint's phase).
 */
static int
roll_forward(struct cycle *cy, const struct checkpoint *ck, bool have, char **cause)
{
	const char *step = "";
	int64_t in = 0, out = 0, rej = 0;
	sqlite3_stmt *st;
	int rc;

	if (db_begin(cy->db, cause) == -1)
		return -1;
	if (have && same_text(ck->c.run_id, cy->cur.run_id) && cy->cur.run_id != NULL) {
		step = ck->c.phase;
		if ((st = db_stmt(cy->db, SQL_STEP_COUNTS_GET, cause)) == NULL)
			goto fail;
		db_bind_text(st, 1, cy->cur.run_id);
		db_bind_text(st, 2, cy->job->sync_type);
		db_bind_text(st, 3, step);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			in = sqlite3_column_int64(st, 0);
			out = sqlite3_column_int64(st, 1);
			rej = sqlite3_column_int64(st, 2);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			db_error(cy->db, cause, "read a step row");
			goto fail;
		}
	}
	if (checkpoint_store(cy, &cy->cur, step, in, out, rej, cause) == -1 || db_commit(cy->db, cause) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(cy->db);
	return -1;
}

/*
 * The corpus half of the last commit, with rows of its own, was lost: everything goes back to the checkpoint, the
 * state after the commit before.  The lost commit was a step of the checkpoint's phase in the cursor's run (a run
 * commits its start before any step, so the checkpoint names that run too): its step row gets the counts it had
 * (the checkpoint's, when the commit before counted for the same row, else none) and goes back to running, the run
 * row gets its summary back and, had the lost commit finished the run, goes back to running; recovery then marks it
 * stale like any run that died.
 */
static int
roll_back(struct cycle *cy, struct checkpoint *ck, char **cause)
{
	const char *run = cy->cur.run_id;
	bool same = strcmp(ck->step, ck->c.phase) == 0;
	sqlite3_stmt *st;

	if (db_begin(cy->db, cause) == -1)
		return -1;
	if ((st = db_stmt(cy->db, SQL_STEP_UNDO, cause)) == NULL)
		goto fail;
	db_bind_int(st, 1, same ? ck->in : 0);
	db_bind_int(st, 2, same ? ck->out : 0);
	db_bind_int(st, 3, same ? ck->rej : 0);
	db_bind_text(st, 4, run);
	db_bind_text(st, 5, cy->job->sync_type);
	db_bind_text(st, 6, ck->c.phase);
	if (db_step_done(cy->db, st, cause) == -1 || (st = db_stmt(cy->db, SQL_RUN_UNDO, cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, ck->summary);
	db_bind_int(st, 2, ck->changes);
	db_bind_text(st, 3, run);
	if (db_step_done(cy->db, st, cause) == -1)
		goto fail;
	if (strcmp(cy->cur.phase, "done") == 0) {
		if ((st = db_stmt(cy->db, SQL_RUN_UNFINISH, cause)) == NULL)
			goto fail;
		db_bind_text(st, 1, run);
		if (db_step_done(cy->db, st, cause) == -1)
			goto fail;
	}
	if (cursor_store(cy, &ck->c, cause) == -1 || db_commit(cy->db, cause) == -1)
		goto fail;
	cursor_clear(&cy->cur);
	cy->cur = ck->c;
	memset(&ck->c, 0, sizeof ck->c);
	return 0;
fail:
	db_rollback(cy->db);
	return -1;
}

/* At start-up, before runs are marked stale: make ops.db's cursor and rtopacks.db's checkpoint one state again. */
int
corpus_reconcile(struct cycle *cy, char **cause)
{
	struct checkpoint ck;
	int have, rc = -1;
	long long seq = (long long)cy->cur.seq;

	if ((have = checkpoint_load(cy, &ck, cause)) == -1)
		return -1;
	if (!have || ck.legacy) {
		/*
		 * No checkpoint: nothing ever committed to rtopacks.db, so ops.db may be at most its first commit (the
		 * first run's start, which carries no rows).  A database from before schema 0004 has a checkpoint only
		 * after its first corpus step: no checkpoint and no corpus commit counted in ops.db is that state too.
		 * A legacy checkpoint is right when it is the last corpus commit ops.db counts.  Both are adopted: the
		 * checkpoint is written from the ops.db cursor.
		 */
		if ((!have && cy->cur.corpus_seq == 0) || (have && ck.c.seq == cy->cur.corpus_seq)) {
			if (seq > 1 || have)
				log_info("rtopacks.db: the checkpoint of %s now follows every commit (ops.db at commit %lld)",
				    cy->job->sync_type, seq);
			else if (seq == 1)
				log_warnx("a crash split the first commit of %s (the run's start) between ops.db and "
				    "rtopacks.db: it carried no rows; the checkpoint is completed from ops.db",
				    cy->job->sync_type);
			rc = seq == 0 ? 0 : roll_forward(cy, &ck, false, cause);
		} else if (!have)
			rc = refuse(cy, &ck, false, "rtopacks.db has no checkpoint, but ops.db counts commits that wrote "
			    "rows into it (was rtopacks.db replaced?)", cause);
		else
			rc = refuse(cy, &ck, true, "a crash split a commit between the two files under an older version "
			    "of this program, which cannot be repaired exactly", cause);
	} else if (ck.c.seq == cy->cur.seq) {
		rc = same_text(ck.c.run_id, cy->cur.run_id) ? 0 :
		    refuse(cy, &ck, true, "they are at the same commit number but name different runs", cause);
	} else if (cy->cur.seq == ck.c.seq + 1 && cy->cur.corpus_seq != cy->cur.seq) {
		log_warnx("a crash split commit %lld of %s between ops.db and rtopacks.db; it carried no rows into "
		    "rtopacks.db (phase %s): the checkpoint is completed from ops.db and the commit stands", seq,
		    cy->job->sync_type, ck.c.phase);
		rc = roll_forward(cy, &ck, true, cause);
	} else if (cy->cur.seq == ck.c.seq + 1 && same_text(ck.c.run_id, cy->cur.run_id) &&
	    strcmp(ck.c.phase, "done") != 0) {
		log_warnx("a crash split commit %lld of %s between ops.db and rtopacks.db: its rows in rtopacks.db are "
		    "lost; back to commit %lld (%s at '%s'), the step is redone", seq, cy->job->sync_type,
		    (long long)ck.c.seq, ck.c.phase, ck.c.phase_cursor);
		rc = roll_back(cy, &ck, cause);
	} else if (ck.c.seq > cy->cur.seq)
		rc = refuse(cy, &ck, true, "rtopacks.db is ahead of ops.db, which a crash cannot do", cause);
	else
		rc = refuse(cy, &ck, true, "ops.db is ahead of rtopacks.db by more than the one commit a crash can "
		    "split", cause);
	checkpoint_clear(&ck);
	return rc;
}
