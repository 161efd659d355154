/*
 * The cursor row, <sync_type>_cursor in ops.db: where the cycle is (phase, position inside it, cycle and job
 * state), loaded at start-up and at a trigger, stored with every step's commit (cycle.h: durability).
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "splitcrash.h"
#include "xmalloc.h"

#include "cycle-int.h"

void
cursor_clear(struct cursor *c)
{
	free(c->phase);
	free(c->run_id);
	free(c->cycle_id);
	free(c->phase_cursor);
	free(c->cycle_state);
	free(c->job_state);
	memset(c, 0, sizeof *c);
}

int
cursor_prepare(struct cycle *cy, char **cause)
{
	const char *t = cy->job->sync_type;
	char now[ISO8601_LEN];
	sqlite3_stmt *st;

	/* The table name comes from the job definition (a constant), never from input. */
	snprintf(cy->sql_cursor_ddl, sizeof cy->sql_cursor_ddl,
	    "CREATE TABLE IF NOT EXISTS \"%s_cursor\" (id INTEGER PRIMARY KEY CHECK (id = 1),"
	    " cycle_phase TEXT NOT NULL DEFAULT 'done', run_id TEXT, cycle_id TEXT,"
	    " phase_cursor TEXT NOT NULL DEFAULT '', cycle_state TEXT NOT NULL DEFAULT '{}',"
	    " job_state TEXT NOT NULL DEFAULT '{}', full INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0,"
	    " corpus_seq INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL)", t);
	snprintf(cy->sql_cursor_init, sizeof cy->sql_cursor_init,
	    "INSERT INTO \"%s_cursor\" (id, cycle_phase, updated_at) VALUES (1, 'done', ?) ON CONFLICT (id) DO NOTHING",
	    t);
	snprintf(cy->sql_cursor_get, sizeof cy->sql_cursor_get,
	    "SELECT cycle_phase, run_id, cycle_id, phase_cursor, cycle_state, job_state, full, seq, corpus_seq"
	    " FROM \"%s_cursor\" WHERE id = 1", t);
	snprintf(cy->sql_cursor_set, sizeof cy->sql_cursor_set,
	    "UPDATE \"%s_cursor\" SET cycle_phase = ?, run_id = ?, cycle_id = ?, phase_cursor = ?, cycle_state = ?,"
	    " job_state = ?, full = ?, seq = ?, corpus_seq = ?, updated_at = ? WHERE id = 1", t);

	if (db_begin(cy->db, cause) == -1 || db_exec(cy->db, cy->sql_cursor_ddl, cause) == -1 ||
	    (st = db_stmt(cy->db, cy->sql_cursor_init, cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, iso8601_now(now));
	if (db_step_done(cy->db, st, cause) == -1 || db_commit(cy->db, cause) == -1 ||
	    cursor_load(cy, &cy->cur, cause) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(cy->db);
	return -1;
}

int
cursor_load(struct cycle *cy, struct cursor *c, char **cause)
{
	sqlite3_stmt *st;

	if ((st = db_stmt(cy->db, cy->sql_cursor_get, cause)) == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_error(cy->db, cause, "read the cursor");
	}
	cursor_clear(c);
	c->phase = xstrdup(db_col_text(st, 0));
	c->run_id = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, 1));
	c->cycle_id = sqlite3_column_type(st, 2) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, 2));
	c->phase_cursor = xstrdup(db_col_text(st, 3));
	c->cycle_state = xstrdup(db_col_text(st, 4));
	c->job_state = xstrdup(db_col_text(st, 5));
	c->full = sqlite3_column_int(st, 6);
	c->seq = sqlite3_column_int64(st, 7);
	c->corpus_seq = sqlite3_column_int64(st, 8);
	sqlite3_reset(st);
	return 0;
}

int
cursor_store(struct cycle *cy, const struct cursor *c, char **cause)
{
	char now[ISO8601_LEN];
	sqlite3_stmt *st;

	if ((st = db_stmt(cy->db, cy->sql_cursor_set, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, c->phase);
	db_bind_text(st, 2, c->run_id);
	db_bind_text(st, 3, c->cycle_id);
	db_bind_text(st, 4, c->phase_cursor ? c->phase_cursor : "");
	db_bind_text(st, 5, c->cycle_state ? c->cycle_state : "{}");
	db_bind_text(st, 6, c->job_state ? c->job_state : "{}");
	db_bind_int(st, 7, c->full);
	db_bind_int(st, 8, c->seq);
	db_bind_int(st, 9, c->corpus_seq);
	db_bind_text(st, 10, iso8601_now(now));
	return db_step_done(cy->db, st, cause);
}

int
phase_index(const struct job_def *job, const char *name)
{
	size_t i;

	for (i = 0; i < job->nphases; i++)
		if (strcmp(job->phases[i].name, name) == 0)
			return (int)i;
	return -1;
}

/*
 * Commit a transaction that moves the cursor.  label ("trigger" or the phase) names the commit for the crash points
 * of tests: before_commit@<label>, split_commit@<label> (ops.db committed, rtopacks.db not: see splitcrash.h) and
 * after_commit@<label>.
 */
int
cursor_commit(struct cycle *cy, const char *label, char **cause)
{
	char name[96];
	int rc;

	snprintf(name, sizeof name, "before_commit@%s", label);
	crashpoint(name);
	splitcrash_begin(label);
	rc = db_commit(cy->db, cause);
	splitcrash_end();
	if (rc == 0) {
		log_debug("cursor commit %s", label);
		snprintf(name, sizeof name, "after_commit@%s", label);
		crashpoint(name);
	}
	return rc;
}
