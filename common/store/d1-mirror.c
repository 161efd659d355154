#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "d1-mirror.h"
#include "d1-sql.h"
#include "d1.h"
#include "db.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

#define MIRROR_COALESCE 0.2		/* seconds: a burst of cycle events becomes one request */

enum kind { K_STEP, K_CURSOR, K_RUN };
static const char *const kind_names[] = { "step", "cursor", "run" };

struct sent {
	enum kind kind;
	char *run_id, *step;
	int64_t gen;
};

struct d1_mirror {
	struct ev_loop *loop;
	struct db *db;
	char *sync_type;
	bool enabled;
	struct d1 *d1;
	struct d1_db *ops;
	char *steps_table, *runs_table, *cursor_table;
	long backoff_ms, backoff_max_ms;
	char sql_trigger[1024];
	char sql_cursor_get[256];
	bool in_flight, ddl_sent;
	int fails;
	double not_before;		/* mono_now(): back-off after a failed request */
	ev_timer kick;
	struct sent *sent;
	size_t nsent;
};

static const char SQL_REGISTER[] =
    "INSERT INTO d1_mirror (sync_type, since) VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
    " ON CONFLICT (sync_type) DO NOTHING";
static const char SQL_UNREGISTER[] = "DELETE FROM d1_mirror WHERE sync_type = ?";
static const char SQL_QUEUE_CURSOR[] =
    "INSERT INTO d1_outbox (sync_type, kind, queued_at) VALUES (?, 'cursor', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
    " ON CONFLICT (sync_type, kind, run_id, step) DO UPDATE SET gen = gen + 1";
/* Steps first, the cursor, the runs last (a reader never sees a run complete before its steps); 200 rows per
 * request, a few dozen KB (a run has one step row per phase); the rest goes in the next request. */
static const char SQL_PENDING[] =
    "SELECT kind, run_id, step, gen FROM d1_outbox WHERE sync_type = ?"
    " ORDER BY CASE kind WHEN 'step' THEN 0 WHEN 'cursor' THEN 1 ELSE 2 END, queued_at, run_id, step LIMIT 200";
/* D1's statuses: running|complete|partial|failed|stale (CS §5). */
static const char SQL_STEP_GET[] =
    "SELECT run_id, sync_type, step, CASE status WHEN 'cancelled' THEN 'failed' ELSE status END, records_in,"
    " records_out, CASE WHEN status = 'cancelled' THEN coalesce(error, 'cancelled by the operator') ELSE error END,"
    " started_at, finished_at FROM sync_steps WHERE run_id = ? AND sync_type = ? AND step = ?";
static const char SQL_RUN_GET[] =
    "SELECT run_id, sync_type, cycle_id, trigger, requested_by, full,"
    " CASE status WHEN 'cancelled' THEN 'failed' WHEN 'degraded' THEN 'partial' ELSE status END, phase,"
    " started_at, finished_at, records_in, records_out, changes,"
    " CASE WHEN status = 'cancelled' THEN coalesce(error, 'cancelled by the operator') ELSE error END,"
    " host, version, resumed_from FROM sync_runs WHERE run_id = ? AND sync_type = ?";
static const char SQL_SENT[] =
    "DELETE FROM d1_outbox WHERE sync_type = ? AND kind = ? AND run_id = ? AND step = ? AND gen = ?";
static const char SQL_FAILED[] =
    "UPDATE d1_outbox SET attempts = attempts + 1, last_error = ? WHERE sync_type = ? AND kind = ? AND run_id = ?"
    " AND step = ?";
static const char SQL_WAITING[] =
    "SELECT count(*), min(queued_at), max(attempts),"
    " (SELECT last_error FROM d1_outbox WHERE sync_type = ?1 AND last_error IS NOT NULL LIMIT 1)"
    " FROM d1_outbox WHERE sync_type = ?1";

static const char *const step_cols[] = { "run_id", "sync_type", "step", "status", "records_in", "records_out",
    "error", "started_at", "finished_at" };
static const char *const run_cols[] = { "run_id", "sync_type", "cycle_id", "trigger", "requested_by", "full",
    "status", "phase", "started_at", "finished_at", "records_in", "records_out", "changes", "error", "host",
    "version", "resumed_from" };
static const char *const cursor_cols[] = { "sync_type", "cycle_phase", "run_id", "cycle_id", "phase_cursor", "full",
    "seq", "updated_at" };
#define NELEM(a) (sizeof (a) / sizeof (a)[0])

static void drain(struct d1_mirror *);

static void
kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	drain(w->data);
}

struct d1_mirror *
d1_mirror_new(struct ev_loop *loop, struct d1 *d1, struct db *ops, const struct config *cfg,
    const char *sync_type, char **cause)
{
	struct d1_settings s;
	struct d1_mirror *m;
	sqlite3_stmt *st;

	if (d1_settings_load(&s, cfg, sync_type, 0, cause) == -1)
		return NULL;
	m = xcalloc(1, sizeof *m);
	m->loop = loop;
	m->db = ops;
	m->sync_type = xstrdup(sync_type);
	ev_timer_init(&m->kick, kick_cb, 0.0, 0.0);
	m->kick.data = m;
	m->enabled = d1 != NULL && s.enabled && s.ops_id != NULL && d1_sql_identifier(sync_type);
	if (!m->enabled) {
		/* Nothing is queued for a daemon that does not mirror (rows queued before stay, and go out if the
		 * mirror is switched on again). */
		if ((st = db_stmt(ops, SQL_UNREGISTER, cause)) == NULL)
			goto fail;
		db_bind_text(st, 1, sync_type);
		if (db_step_done(ops, st, cause) == -1)
			goto fail;
		if (s.enabled)
			log_info("[d1] has no ops_database_id: runs and steps are not mirrored to D1");
		d1_settings_clear(&s);
		return m;
	}
	m->steps_table = xstrdup(s.steps_table);
	m->runs_table = xstrdup(s.runs_table);
	m->cursor_table = xstrdup(s.cursor_table);
	m->backoff_ms = s.backoff_ms > 0 ? s.backoff_ms : 1000;
	m->backoff_max_ms = s.backoff_max_ms > m->backoff_ms ? s.backoff_max_ms : m->backoff_ms;
	/* The job's cursor table is made by the cycle engine (sync_type is a constant of the job, checked above). */
	snprintf(m->sql_trigger, sizeof m->sql_trigger,
	    "CREATE TRIGGER IF NOT EXISTS \"d1_outbox_%s_cursor\" AFTER UPDATE ON \"%s_cursor\""
	    " WHEN EXISTS (SELECT 1 FROM d1_mirror WHERE sync_type = '%s')"
	    " BEGIN INSERT INTO d1_outbox (sync_type, kind, queued_at)"
	    " VALUES ('%s', 'cursor', strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now'))"
	    " ON CONFLICT (sync_type, kind, run_id, step) DO UPDATE SET gen = gen + 1; END",
	    sync_type, sync_type, sync_type, sync_type);
	snprintf(m->sql_cursor_get, sizeof m->sql_cursor_get,
	    "SELECT cycle_phase, run_id, cycle_id, phase_cursor, full, seq, updated_at FROM \"%s_cursor\" WHERE id = 1",
	    sync_type);
	if (db_begin(ops, cause) == -1 || db_exec(ops, m->sql_trigger, cause) == -1 ||
	    (st = db_stmt(ops, SQL_REGISTER, cause)) == NULL)
		goto fail_tx;
	db_bind_text(st, 1, sync_type);
	if (db_step_done(ops, st, cause) == -1 || (st = db_stmt(ops, SQL_QUEUE_CURSOR, cause)) == NULL)
		goto fail_tx;
	db_bind_text(st, 1, sync_type);
	if (db_step_done(ops, st, cause) == -1 || db_commit(ops, cause) == -1)
		goto fail_tx;
	m->d1 = d1;
	m->ops = d1_ops(m->d1);
	log_info("mirroring runs, steps and the cursor to D1 (%s, %s, %s in the ops database)", m->steps_table,
	    m->runs_table, m->cursor_table);
	d1_settings_clear(&s);
	return m;
fail_tx:
	db_rollback(ops);
fail:
	d1_settings_clear(&s);
	d1_mirror_free(m);
	return NULL;
}

static void
clear_sent(struct d1_mirror *m)
{
	size_t i;

	for (i = 0; i < m->nsent; i++) {
		free(m->sent[i].run_id);
		free(m->sent[i].step);
	}
	free(m->sent);
	m->sent = NULL;
	m->nsent = 0;
}

void
d1_mirror_free(struct d1_mirror *m)
{
	if (m == NULL)
		return;
	ev_timer_stop(m->loop, &m->kick);
	if (m->d1 != NULL)
		d1_cancel_for(m->d1, m);	/* a request in flight ends cancelled: its rows stay queued */
	clear_sent(m);
	free(m->sync_type);
	free(m->steps_table);
	free(m->runs_table);
	free(m->cursor_table);
	free(m);
}

bool
d1_mirror_enabled(const struct d1_mirror *m)
{
	return m != NULL && m->enabled;
}

bool
d1_mirror_busy(const struct d1_mirror *m)
{
	/* Sending, or about to (not while backing off from a failure: --once does not wait for that). */
	return m != NULL && (m->in_flight || (ev_is_active(&m->kick) && m->fails == 0));
}

struct d1 *
d1_mirror_client(struct d1_mirror *m)
{
	return m != NULL && m->enabled ? m->d1 : NULL;
}

void
d1_mirror_kick(struct d1_mirror *m, bool now)
{
	double wait;

	if (m == NULL || !m->enabled || m->in_flight)
		return;
	wait = m->not_before - mono_now();
	if (wait < (now ? 0 : MIRROR_COALESCE))
		wait = now ? 0 : MIRROR_COALESCE;
	if (ev_is_active(&m->kick)) {
		if (!now || ev_timer_remaining(m->loop, &m->kick) <= wait)
			return;
		ev_timer_stop(m->loop, &m->kick);
	}
	ev_timer_set(&m->kick, wait, 0.0);
	ev_timer_start(m->loop, &m->kick);
}

/* One local row as values (valid until the statement moves). */
static void
row_values(sqlite3_stmt *st, struct d1_value *v, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		memset(&v[i], 0, sizeof v[i]);
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v[i] = D1_INT(sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			v[i] = D1_REAL(sqlite3_column_double(st, i));
			break;
		case SQLITE_TEXT:
			v[i].type = D1V_TEXT;
			v[i].p = sqlite3_column_text(st, i);
			v[i].len = (size_t)sqlite3_column_bytes(st, i);
			break;
		case SQLITE_BLOB:
			v[i].type = D1V_BLOB;
			v[i].p = sqlite3_column_blob(st, i);
			v[i].len = (size_t)sqlite3_column_bytes(st, i);
			break;
		default:
			v[i] = D1_NULL;
			break;
		}
	}
}

static void
mark(struct d1_mirror *m, const char *sql, const char *error)
{
	sqlite3_stmt *st;
	char *cause = NULL;
	size_t i;

	if (db_in_tx(m->db) || db_begin(m->db, &cause) == -1)
		goto fail;
	for (i = 0; i < m->nsent; i++) {
		if ((st = db_stmt(m->db, sql, &cause)) == NULL)
			goto fail_tx;
		if (error != NULL) {
			db_bind_text(st, 1, error);
			db_bind_text(st, 2, m->sync_type);
			db_bind_text(st, 3, kind_names[m->sent[i].kind]);
			db_bind_text(st, 4, m->sent[i].run_id);
			db_bind_text(st, 5, m->sent[i].step);
		} else {
			db_bind_text(st, 1, m->sync_type);
			db_bind_text(st, 2, kind_names[m->sent[i].kind]);
			db_bind_text(st, 3, m->sent[i].run_id);
			db_bind_text(st, 4, m->sent[i].step);
			db_bind_int(st, 5, m->sent[i].gen);
		}
		if (db_step_done(m->db, st, &cause) == -1)
			goto fail_tx;
	}
	if (db_commit(m->db, &cause) == -1)
		goto fail_tx;
	return;
fail_tx:
	db_rollback(m->db);
fail:
	/* The rows stay queued: they go out (again) on the next drain, which is harmless (upserts). */
	log_warnx("D1 mirror: cannot update d1_outbox: %s", cause ? cause : "a transaction is open");
	free(cause);
}

static void
on_sent(const struct d1_result *r, void *arg)
{
	struct d1_mirror *m = arg;
	double delay;

	m->in_flight = false;
	if (r->status == D1_ERR_CANCELLED) {
		clear_sent(m);
		return;
	}
	if (r->status == D1_OK) {
		mark(m, SQL_SENT, NULL);
		if (m->fails > 0)
			log_info("D1 mirror: the ops database answers again; %zu waiting rows sent", m->nsent);
		m->fails = 0;
		m->not_before = 0;
		m->ddl_sent = true;
		clear_sent(m);
		d1_mirror_kick(m, false);	/* what changed meanwhile, or the rest of a long queue */
		return;
	}
	mark(m, SQL_FAILED, r->error);
	m->fails++;
	delay = (double)m->backoff_ms / 1000.0 * pow(2.0, m->fails - 1);
	if (delay > (double)m->backoff_max_ms / 1000.0)
		delay = (double)m->backoff_max_ms / 1000.0;
	m->not_before = mono_now() + delay;
	/* Never the sync's failure: the rows wait, like queued mail. */
	log_warnx("D1 mirror: %zu rows not sent, kept for later (next try in %.0fs): %s", m->nsent, delay, r->error);
	clear_sent(m);
	d1_mirror_kick(m, false);
}

static void
add_ddl(struct d1_mirror *m, struct buf *sql)
{
	/* In place already in a live account (the Observatory reads them): then these do nothing. */
	buf_printf(sql, "CREATE TABLE IF NOT EXISTS %s (run_id TEXT NOT NULL, sync_type TEXT NOT NULL, step TEXT NOT NULL,"
	    " status TEXT NOT NULL, records_in INTEGER NOT NULL DEFAULT 0, records_out INTEGER NOT NULL DEFAULT 0,"
	    " error TEXT, started_at TEXT, finished_at TEXT, UNIQUE (run_id, sync_type, step));\n", m->steps_table);
	buf_printf(sql, "CREATE TABLE IF NOT EXISTS %s (run_id TEXT PRIMARY KEY, sync_type TEXT NOT NULL, cycle_id TEXT,"
	    " trigger TEXT, requested_by TEXT, full INTEGER, status TEXT NOT NULL, phase TEXT, started_at TEXT,"
	    " finished_at TEXT, records_in INTEGER, records_out INTEGER, changes INTEGER, error TEXT, host TEXT,"
	    " version TEXT, resumed_from TEXT);\n", m->runs_table);
	buf_printf(sql, "CREATE TABLE IF NOT EXISTS %s (sync_type TEXT PRIMARY KEY, cycle_phase TEXT NOT NULL DEFAULT"
	    " 'done', run_id TEXT, cycle_id TEXT, phase_cursor TEXT, full INTEGER, seq INTEGER, updated_at TEXT);\n",
	    m->cursor_table);
}

static void
drain(struct d1_mirror *m)
{
	struct d1_upsert *u[3];
	struct buf part[3], sql;
	struct d1_value v[NELEM(run_cols) + 1];
	struct d1_query q;
	sqlite3_stmt *st, *row;
	char *cause = NULL, why[256];
	int rc, k, rows = 0;
	size_t i;

	if (!m->enabled || m->in_flight || db_in_tx(m->db))
		return;
	if (mono_now() < m->not_before) {
		d1_mirror_kick(m, true);
		return;
	}
	u[K_STEP] = d1_upsert_new(m->steps_table, step_cols, NELEM(step_cols), 3, 0);
	u[K_CURSOR] = d1_upsert_new(m->cursor_table, cursor_cols, NELEM(cursor_cols), 1, 0);
	u[K_RUN] = d1_upsert_new(m->runs_table, run_cols, NELEM(run_cols), 1, 0);
	if (u[K_STEP] == NULL || u[K_CURSOR] == NULL || u[K_RUN] == NULL)
		fatalx("D1 mirror: a table name is not an identifier");	/* checked by d1_settings_load */
	for (k = 0; k < 3; k++)
		buf_init(&part[k]);
	clear_sent(m);
	if ((st = db_stmt(m->db, SQL_PENDING, &cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, m->sync_type);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = db_col_text(st, 0);
		struct sent *s;

		m->sent = xreallocarray(m->sent, m->nsent + 1, sizeof *m->sent);
		s = &m->sent[m->nsent++];
		s->kind = strcmp(kind, "step") == 0 ? K_STEP : strcmp(kind, "cursor") == 0 ? K_CURSOR : K_RUN;
		s->run_id = xstrdup(db_col_text(st, 1));
		s->step = xstrdup(db_col_text(st, 2));
		s->gen = sqlite3_column_int64(st, 3);
	}
	if (rc != SQLITE_DONE) {
		db_error(m->db, &cause, "d1_outbox");
		goto fail;
	}
	sqlite3_reset(st);
	for (i = 0; i < m->nsent; i++) {
		struct sent *s = &m->sent[i];
		int n;

		switch (s->kind) {
		case K_STEP:
			row = db_stmt(m->db, SQL_STEP_GET, &cause);
			n = NELEM(step_cols);
			break;
		case K_RUN:
			row = db_stmt(m->db, SQL_RUN_GET, &cause);
			n = NELEM(run_cols);
			break;
		default:
			row = db_stmt(m->db, m->sql_cursor_get, &cause);
			n = NELEM(cursor_cols);
			break;
		}
		if (row == NULL)
			goto fail;
		if (s->kind != K_CURSOR) {
			db_bind_text(row, 1, s->run_id);
			db_bind_text(row, 2, m->sync_type);
			if (s->kind == K_STEP)
				db_bind_text(row, 3, s->step);
		}
		if ((rc = sqlite3_step(row)) == SQLITE_ROW) {
			if (s->kind == K_CURSOR) {
				v[0] = D1_TEXT(m->sync_type);
				row_values(row, v + 1, n - 1);
			} else
				row_values(row, v, n);
			if (d1_upsert_row(u[s->kind], &part[s->kind], v, why, sizeof why) == -1)
				log_warnx("D1 mirror: %s %s %s not sent: %s", kind_names[s->kind], s->run_id, s->step, why);
			else
				rows++;
		} else if (rc != SQLITE_DONE) {
			sqlite3_reset(row);
			db_error(m->db, &cause, "d1 mirror");
			goto fail;
		}
		/* Gone locally (pruned): nothing to send; its outbox row is deleted with the others. */
		sqlite3_reset(row);
	}
	for (k = 0; k < 3; k++)
		d1_upsert_end(u[k], &part[k]);
	if (m->nsent == 0)
		goto done;
	if (rows == 0) {
		mark(m, SQL_SENT, NULL);
		clear_sent(m);
		goto done;
	}
	buf_init(&sql);
	if (!m->ddl_sent)
		add_ddl(m, &sql);
	for (k = 0; k < 3; k++)
		buf_add(&sql, part[k].data != NULL ? part[k].data : "", part[k].len);
	memset(&q, 0, sizeof q);
	q.sql = sql.data;
	q.sql_len = sql.len;
	q.what = "mirror runs and steps";
	q.on_done = on_sent;
	q.arg = m;
	m->in_flight = true;
	d1_query(m->ops, &q);
	buf_free(&sql);
	goto done;
fail:
	log_warnx("D1 mirror: %s", cause);
	free(cause);
	clear_sent(m);
	m->fails++;
	m->not_before = mono_now() + (double)m->backoff_max_ms / 1000.0;
done:
	for (k = 0; k < 3; k++) {
		buf_free(&part[k]);
		d1_upsert_free(u[k]);
	}
}

void
d1_mirror_status(struct d1_mirror *m, cJSON *out)
{
	cJSON *o, *notes;
	sqlite3_stmt *st;
	char line[1024], when[ISO8601_LEN];
	double blocked;
	int waiting = 0;

	if (m == NULL)
		return;
	o = cJSON_AddObjectToObject(out, "d1");
	cJSON_AddBoolToObject(o, "enabled", m->enabled);
	if (!m->enabled)
		return;
	cJSON_AddBoolToObject(o, "sending", m->in_flight);
	if ((st = db_stmt(m->db, SQL_WAITING, NULL)) == NULL)
		return;
	db_bind_text(st, 1, m->sync_type);
	if (sqlite3_step(st) == SQLITE_ROW) {
		waiting = sqlite3_column_int(st, 0);
		cJSON_AddNumberToObject(o, "waiting", waiting);
		if (waiting > 0) {
			cJSON_AddStringToObject(o, "since", db_col_text(st, 1));
			cJSON_AddNumberToObject(o, "attempts", sqlite3_column_int(st, 2));
			if (sqlite3_column_type(st, 3) != SQLITE_NULL)
				cJSON_AddStringToObject(o, "last_error", db_col_text(st, 3));
			snprintf(line, sizeof line, "d1: %d row%s waiting since %s%s%s%s", waiting, waiting == 1 ? "" : "s",
			    db_col_text(st, 1), sqlite3_column_type(st, 3) != SQLITE_NULL ? " (last error: " : "",
			    db_col_text(st, 3), sqlite3_column_type(st, 3) != SQLITE_NULL ? ")" : "");
			if ((notes = cJSON_GetObjectItem(out, "notes")) == NULL)
				notes = cJSON_AddArrayToObject(out, "notes");
			if (cJSON_IsArray(notes))
				cJSON_AddItemToArray(notes, cJSON_CreateString(line));
		}
	}
	sqlite3_reset(st);
	if ((blocked = d1_blocked_until(m->d1)) > 0) {
		iso8601_fmt((time_t)ceil(blocked), when);
		cJSON_AddStringToObject(o, "blocked_until", when);
		snprintf(line, sizeof line, "d1: waiting for D1's rate limit until %s", when);
		if ((notes = cJSON_GetObjectItem(out, "notes")) == NULL)
			notes = cJSON_AddArrayToObject(out, "notes");
		if (cJSON_IsArray(notes))
			cJSON_AddItemToArray(notes, cJSON_CreateString(line));
	}
}
