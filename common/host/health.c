/* Job health from ops.db and a schedule (see health.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "health.h"
#include "schedule.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char SQL_TABLE_EXISTS[] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
static const char SQL_LAST_RUN[] =
    "SELECT run_id, status, started_at, finished_at, records_in, records_out, changes FROM sync_runs"
    " WHERE sync_type = ? ORDER BY started_at DESC, rowid DESC LIMIT 1";
static const char SQL_LAST_FINISHED[] =
    "SELECT run_id, status, started_at, finished_at, records_in, records_out, changes FROM sync_runs"
    " WHERE sync_type = ? AND status <> 'running' ORDER BY started_at DESC, rowid DESC LIMIT 1";
/* Partial runs completed (with rejected records counted): they moved the data, so they are successes here. */
static const char SQL_LAST_SUCCESS[] =
    "SELECT run_id, status, started_at, finished_at, records_in, records_out, changes FROM sync_runs"
    " WHERE sync_type = ? AND status IN ('complete', 'partial') ORDER BY finished_at DESC, rowid DESC LIMIT 1";
static const char SQL_RUNNING[] =
    "SELECT run_id, status, started_at, finished_at, records_in, records_out, changes FROM sync_runs"
    " WHERE sync_type = ? AND status = 'running' ORDER BY started_at, rowid LIMIT 1";
static const char SQL_FIRST_RUN[] = "SELECT min(started_at) FROM sync_runs WHERE sync_type = ?";
static const char SQL_ARMED[] = "SELECT armed_at, on_calendar FROM sync_monitor WHERE sync_type = ?";
/* A run answers the scheduled time E if it started at or after E, or was in progress at E. */
static const char SQL_RAN_SINCE[] =
    "SELECT 1 FROM sync_runs WHERE sync_type = ?1 AND (started_at >= ?2 OR finished_at IS NULL OR finished_at >= ?2)"
    " LIMIT 1";

bool
health_table_exists(struct db *db, const char *table)
{
	sqlite3_stmt *st;
	bool r;

	if ((st = db_stmt(db, SQL_TABLE_EXISTS, NULL)) == NULL)
		return false;
	db_bind_text(st, 1, table);
	r = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return r;
}

time_t
health_col_time(sqlite3_stmt *st, int col)
{
	time_t t;

	if (sqlite3_column_type(st, col) == SQLITE_NULL || !iso8601_parse(db_col_text(st, col), &t))
		return 0;
	return t;
}

static int
load_run(struct db *db, const char *sql, const char *sync_type, struct run_info *r, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	memset(r, 0, sizeof *r);
	if ((st = db_stmt(db, sql, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, sync_type);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r->present = true;
		snprintf(r->run_id, sizeof r->run_id, "%s", db_col_text(st, 0));
		snprintf(r->status, sizeof r->status, "%s", db_col_text(st, 1));
		r->started = health_col_time(st, 2);
		r->finished = health_col_time(st, 3);
		r->records_in = sqlite3_column_int64(st, 4);
		r->records_out = sqlite3_column_int64(st, 5);
		r->changes = sqlite3_column_int64(st, 6);
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return db_error(db, cause, "sync_runs");
	}
	sqlite3_reset(st);
	return 0;
}

static bool
valid_ident(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 48)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_' || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static int
load_cursor(struct db *db, const char *sync_type, struct health *h, char **cause)
{
	sqlite3_stmt *st;
	char sql[256], table[64];
	int rc;

	/* The cursor table is named after the job; the name is checked, never taken from outside as typed. */
	if (!valid_ident(sync_type)) {
		xasprintf(cause, "'%s' is not a job name", sync_type);
		return -1;
	}
	snprintf(table, sizeof table, "%s_cursor", sync_type);
	if (!health_table_exists(db, table))
		return 0;
	snprintf(sql, sizeof sql, "SELECT cycle_phase, run_id, updated_at FROM \"%s\" WHERE id = 1", table);
	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, cause, table);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		h->have_cursor = true;
		snprintf(h->cycle_phase, sizeof h->cycle_phase, "%s", db_col_text(st, 0));
		snprintf(h->cursor_run_id, sizeof h->cursor_run_id, "%s", db_col_text(st, 1));
		h->cursor_updated = health_col_time(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(db, cause, table);
	return 0;
}

static time_t
lookup_armed(struct db *db, const char *sync_type, const struct schedule *s)
{
	sqlite3_stmt *st;
	time_t t = 0;

	if (health_table_exists(db, "sync_monitor") && (st = db_stmt(db, SQL_ARMED, NULL)) != NULL) {
		db_bind_text(st, 1, sync_type);
		/* A row for another expression was armed for that one: the current schedule starts with its runs. */
		if (sqlite3_step(st) == SQLITE_ROW && (s == NULL || strcmp(db_col_text(st, 1), s->on_calendar) == 0))
			t = health_col_time(st, 0);
		sqlite3_reset(st);
		if (t != 0)
			return t;
	}
	if ((st = db_stmt(db, SQL_FIRST_RUN, NULL)) != NULL) {
		db_bind_text(st, 1, sync_type);
		if (sqlite3_step(st) == SQLITE_ROW)
			t = health_col_time(st, 0);
		sqlite3_reset(st);
	}
	return t;
}

static int
ran_since(struct db *db, const char *sync_type, time_t e, bool *ran, char **cause)
{
	char iso[ISO8601_LEN];
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, SQL_RAN_SINCE, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, sync_type);
	db_bind_text(st, 2, iso8601_fmt(e, iso));
	rc = sqlite3_step(st);
	*ran = rc == SQLITE_ROW;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(db, cause, "sync_runs");
	return 0;
}

int
health_check(struct db *db, const char *sync_type, const struct schedule *s, time_t now, time_t armed_at,
    int64_t max_runtime_s, struct health *h, char **cause)
{
	bool ran;

	memset(h, 0, sizeof *h);
	if (load_run(db, SQL_LAST_RUN, sync_type, &h->last, cause) == -1 ||
	    load_run(db, SQL_LAST_FINISHED, sync_type, &h->last_finished, cause) == -1 ||
	    load_run(db, SQL_LAST_SUCCESS, sync_type, &h->last_success, cause) == -1 ||
	    load_run(db, SQL_RUNNING, sync_type, &h->running, cause) == -1 ||
	    load_cursor(db, sync_type, h, cause) == -1)
		return -1;
	if (s != NULL)
		max_runtime_s = s->max_runtime_s;
	if (max_runtime_s > 0 && h->running.present && h->running.started != 0 &&
	    now - h->running.started > max_runtime_s)
		h->overrun = true;
	if (max_runtime_s > 0 && h->have_cursor && strcmp(h->cycle_phase, "done") != 0 && !h->running.present &&
	    h->cursor_updated != 0 && now - h->cursor_updated > max_runtime_s)
		h->stuck = true;
	if (s == NULL)
		return 0;

	h->scheduled = true;
	h->armed = armed_at != 0 ? armed_at : lookup_armed(db, sync_type, s);
	if (!calspec_next(s->spec, now, &h->next))
		h->next = 0;
	if (!calspec_prev(s->spec, now, &h->last_due))
		return 0;
	/* The scheduled time being judged: the last one whose grace has run out. */
	if (h->last_due + s->grace_s <= now)
		h->expected = h->last_due;
	else {
		if (ran_since(db, sync_type, h->last_due, &ran, cause) == -1)
			return -1;
		h->due = !ran;
		if (!calspec_prev(s->spec, h->last_due - 1, &h->expected))
			h->expected = 0;
	}
	/* Scheduled times before the monitor was armed are not judged (a new install, a changed schedule). */
	if (h->expected == 0 || h->armed == 0 || h->expected < h->armed)
		return 0;
	if (ran_since(db, sync_type, h->expected, &ran, cause) == -1)
		return -1;
	h->missed = !ran;
	return 0;
}

const char *
health_word(const struct health *h)
{
	if (h->missed)
		return "missed";
	if (h->overrun)
		return "overrun";
	if (h->stuck)
		return "stuck";
	if (h->due)
		return "due";
	return "ok";
}
