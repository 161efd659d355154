#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "observatory.h"
#include "xmalloc.h"

static const char SQL_RUN_EXISTS[] = "SELECT 1 FROM sync_runs WHERE run_id = ?";
/*
 * A run that resumes a cycle starts with the cycle's change summary, if the run it continues had one (the cycle
 * was interrupted after write_snapshot): the run that completes the cycle must carry it (syncctl runs, health).
 */
static const char SQL_RUN_INSERT[] =
    "INSERT INTO sync_runs (run_id, sync_type, cycle_id, trigger, requested_by, full, status, phase, started_at,"
    " host, pid, version, resumed_from, summary, changes) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?,"
    " (SELECT summary FROM sync_runs WHERE run_id = ?12),"
    " coalesce((SELECT changes FROM sync_runs WHERE run_id = ?12 AND summary IS NOT NULL), 0))";
static const char SQL_RUN_PHASE[] = "UPDATE sync_runs SET phase = ? WHERE run_id = ?";
static const char SQL_RUN_FINISH[] =
    "UPDATE sync_runs SET status = ?, error = coalesce(?, error), finished_at = ?,"
    " records_in = (SELECT coalesce(sum(records_in), 0) FROM sync_steps WHERE run_id = sync_runs.run_id),"
    " records_out = (SELECT coalesce(sum(records_out), 0) FROM sync_steps WHERE run_id = sync_runs.run_id)"
    " WHERE run_id = ?";
static const char SQL_RUN_SUMMARY[] = "UPDATE sync_runs SET summary = ?, changes = ? WHERE run_id = ?";
static const char SQL_STEP_UPSERT[] =
    "INSERT INTO sync_steps (run_id, sync_type, step, status, records_in, records_out, rejected, attempts, error,"
    " detail, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, sync_type, step) DO UPDATE SET status = excluded.status,"
    " records_in = excluded.records_in, records_out = excluded.records_out, rejected = excluded.rejected,"
    " attempts = excluded.attempts, error = coalesce(excluded.error, error),"
    " detail = coalesce(excluded.detail, detail), finished_at = excluded.finished_at";
static const char SQL_STEP_FINISH[] =
    "UPDATE sync_steps SET status = ?, error = coalesce(?, error), finished_at = ?"
    " WHERE run_id = ? AND sync_type = ? AND step = ?";
static const char SQL_STALE_RUNS[] =
    "UPDATE sync_runs SET status = 'stale', finished_at = ?,"
    " error = 'process ' || pid || ' on ' || host || ' stopped during phase ' || coalesce(phase, '?') ||"
    " ' without finishing the run (crash, kill or power loss); the cycle resumes from its cursor',"
    " records_in = (SELECT coalesce(sum(records_in), 0) FROM sync_steps WHERE run_id = sync_runs.run_id),"
    " records_out = (SELECT coalesce(sum(records_out), 0) FROM sync_steps WHERE run_id = sync_runs.run_id)"
    " WHERE sync_type = ? AND status = 'running'";
static const char SQL_STALE_STEPS[] =
    "UPDATE sync_steps SET status = 'stale', finished_at = ?,"
    " error = coalesce(error, 'interrupted: the process stopped during this step')"
    " WHERE sync_type = ? AND status = 'running'";

int
obs_new_run_id(struct db *db, const char *sync_type, const char *started_at, char *out, size_t len, char **cause)
{
	sqlite3_stmt *st;
	int n, rc;

	for (n = 1; n < 1000; n++) {
		if (n == 1)
			snprintf(out, len, "%s-%s", sync_type, started_at);
		else
			snprintf(out, len, "%s-%s-%d", sync_type, started_at, n);
		if ((st = db_stmt(db, SQL_RUN_EXISTS, cause)) == NULL)
			return -1;
		db_bind_text(st, 1, out);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return db_error(db, cause, "look up run id");
	}
	xasprintf(cause, "no free run id for %s at %s", sync_type, started_at);
	return -1;
}

int
obs_run_insert(struct db *db, const struct obs_run *r, char **cause)
{
	char host[256] = "unknown";
	sqlite3_stmt *st;

	gethostname(host, sizeof host - 1);
	if ((st = db_stmt(db, SQL_RUN_INSERT, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, r->run_id);
	db_bind_text(st, 2, r->sync_type);
	db_bind_text(st, 3, r->cycle_id);
	db_bind_text(st, 4, r->trigger);
	db_bind_text(st, 5, r->requested_by);
	db_bind_int(st, 6, r->full);
	db_bind_text(st, 7, r->phase);
	db_bind_text(st, 8, r->started_at);
	db_bind_text(st, 9, host);
	db_bind_int(st, 10, getpid());
	db_bind_text(st, 11, RTOPACKS_VERSION);
	db_bind_text(st, 12, r->resumed_from);
	return db_step_done(db, st, cause);
}

int
obs_run_set_phase(struct db *db, const char *run_id, const char *phase, char **cause)
{
	sqlite3_stmt *st;

	if ((st = db_stmt(db, SQL_RUN_PHASE, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, phase);
	db_bind_text(st, 2, run_id);
	return db_step_done(db, st, cause);
}

/*
 * Finish a run (SQL_RUN_FINISH) or one of its steps (SQL_STEP_FINISH): its status, its error (sanitised; NULL
 * keeps the one it has), finished_at, then the row's key (run_id; or run_id, sync_type and step).
 */
static int
finish_row(struct db *db, const char *sql, const char *status, const char *error, const char *finished_at,
    const char *const *key, int nkey, char **cause)
{
	sqlite3_stmt *st;
	char *clean;
	int i, rc;

	if ((st = db_stmt(db, sql, cause)) == NULL)
		return -1;
	clean = sanitize_dup(error, 0);
	db_bind_text(st, 1, status);
	db_bind_text(st, 2, clean);
	db_bind_text(st, 3, finished_at);
	for (i = 0; i < nkey; i++)
		db_bind_text(st, 4 + i, key[i]);
	rc = db_step_done(db, st, cause);
	free(clean);
	return rc;
}

int
obs_run_finish(struct db *db, const char *run_id, const char *status, const char *error, const char *finished_at,
    char **cause)
{
	const char *key[] = { run_id };

	return finish_row(db, SQL_RUN_FINISH, status, error, finished_at, key, 1, cause);
}

int
obs_run_set_summary(struct db *db, const char *run_id, const char *summary_json, int64_t changes, char **cause)
{
	sqlite3_stmt *st;
	char *clean;
	int rc;

	if ((st = db_stmt(db, SQL_RUN_SUMMARY, cause)) == NULL)
		return -1;
	clean = sanitize_dup(summary_json, TEXT_JSON);
	db_bind_text(st, 1, clean);
	db_bind_int(st, 2, changes);
	db_bind_text(st, 3, run_id);
	rc = db_step_done(db, st, cause);
	free(clean);
	return rc;
}

int
obs_step_upsert(struct db *db, const struct obs_step *s, char **cause)
{
	sqlite3_stmt *st;
	char *clean_error, *clean_detail;
	int rc;

	if ((st = db_stmt(db, SQL_STEP_UPSERT, cause)) == NULL)
		return -1;
	clean_error = sanitize_dup(s->error, 0);
	clean_detail = sanitize_dup(s->detail, TEXT_JSON);
	db_bind_text(st, 1, s->run_id);
	db_bind_text(st, 2, s->sync_type);
	db_bind_text(st, 3, s->step);
	db_bind_text(st, 4, s->status);
	db_bind_int(st, 5, s->records_in);
	db_bind_int(st, 6, s->records_out);
	db_bind_int(st, 7, s->rejected);
	db_bind_int(st, 8, s->attempts);
	db_bind_text(st, 9, clean_error);
	db_bind_text(st, 10, clean_detail);
	db_bind_text(st, 11, s->started_at);
	db_bind_text(st, 12, s->finished_at);
	rc = db_step_done(db, st, cause);
	free(clean_error);
	free(clean_detail);
	return rc;
}

int
obs_step_finish(struct db *db, const char *run_id, const char *sync_type, const char *step, const char *status,
    const char *error, const char *finished_at, char **cause)
{
	const char *key[] = { run_id, sync_type, step };

	return finish_row(db, SQL_STEP_FINISH, status, error, finished_at, key, 3, cause);
}

/* Mark the sync type's running rows stale as of now (SQL_STALE_STEPS or SQL_STALE_RUNS); how many, or -1. */
static int
mark_stale(struct db *db, const char *sql, const char *sync_type, const char *now, char **cause)
{
	sqlite3_stmt *st;

	if ((st = db_stmt(db, sql, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, now);
	db_bind_text(st, 2, sync_type);
	if (db_step_done(db, st, cause) == -1)
		return -1;
	return sqlite3_changes(db_handle(db));
}

int
obs_mark_stale(struct db *db, const char *sync_type, const char *now, char **cause)
{
	if (mark_stale(db, SQL_STALE_STEPS, sync_type, now, cause) == -1)
		return -1;
	return mark_stale(db, SQL_STALE_RUNS, sync_type, now, cause);
}
