#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "observatory.h"
#include "outbox.h"
#include "splitcrash.h"
#include "timeutil.h"
#include "xmalloc.h"

#include "cycle-int.h"

static const char SQL_CYCLE_REJECTED[] =
    "SELECT coalesce(sum(s.rejected), 0) FROM sync_steps s JOIN sync_runs r ON r.run_id = s.run_id"
    " WHERE r.cycle_id = ? AND s.sync_type = ?";

static void schedule_next(struct cycle *, double delay);
static void fail_run(struct cycle *, const char *error);
static void end_run_interrupted(struct cycle *);
static int64_t queue_failure_mail(struct cycle *, const char *phase, const char *error, char **cause);

/* --- helpers ------------------------------------------------------------------------------------------------- */

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

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static const char *
nowstr(char buf[ISO8601_LEN])
{
	return iso8601_now(buf);
}

static void
emit(struct cycle *cy, const char *event, cJSON *data)
{
	if (cy->listener != NULL)
		cy->listener(event, data, cy->larg);
	cJSON_Delete(data);
}

static cJSON *
progress_json(struct cycle *cy)
{
	cJSON *o = cJSON_CreateObject();
	double elapsed = mono_now() - cy->mono_start;

	cJSON_AddStringToObject(o, "run_id", cy->run_id);
	cJSON_AddStringToObject(o, "sync_type", cy->job->sync_type);
	cJSON_AddStringToObject(o, "phase", cy->phase_idx < (int)cy->job->nphases ?
	    cy->job->phases[cy->phase_idx].name : "done");
	cJSON_AddNumberToObject(o, "phase_index", cy->phase_idx + 1);
	cJSON_AddNumberToObject(o, "phases", (double)cy->job->nphases);
	cJSON_AddStringToObject(o, "phase_cursor", cy->cur.phase_cursor ? cy->cur.phase_cursor : "");
	cJSON_AddNumberToObject(o, "records_in", (double)cy->run_in);
	cJSON_AddNumberToObject(o, "records_out", (double)cy->run_out);
	cJSON_AddNumberToObject(o, "elapsed", elapsed);
	cJSON_AddNumberToObject(o, "rate", elapsed > 0 ? (double)cy->run_in / elapsed : 0);
	return o;
}

/* --- the cursor row ------------------------------------------------------------------------------------------ */

static int
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
	db_bind_text(st, 10, nowstr(now));
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
static int
commit_cursor(struct cycle *cy, const char *label, char **cause)
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

/* --- set-up -------------------------------------------------------------------------------------------------- */

struct cycle *
cycle_new(struct daemon *d, char **cause)
{
	struct cycle *cy = xcalloc(1, sizeof *cy);
	const char *t = d->job->sync_type;
	char now[ISO8601_LEN];
	sqlite3_stmt *st;

	cy->d = d;
	cy->job = d->job;
	cy->db = d->db;
	cy->row_phase_idx = -1;
	snprintf(cy->last_status, sizeof cy->last_status, "none");
	cycle_reconfigure(cy);
	ev_timer_init(&cy->next, NULL, 0.0, 0.0);
	ev_timer_init(&cy->grace, NULL, 0.0, 0.0);

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
	db_bind_text(st, 1, nowstr(now));
	if (db_step_done(cy->db, st, cause) == -1 || db_commit(cy->db, cause) == -1)
		goto fail;
	if (cursor_load(cy, &cy->cur, cause) == -1)
		goto fail;
	return cy;
fail:
	db_rollback(cy->db);
	cycle_free(cy);
	return NULL;
}

void
cycle_reconfigure(struct cycle *cy)
{
	struct daemon *d = cy->d;

	cy->step_retries = (int)config_int(d->cfg, d->section, "step_retries");
	cy->backoff_ms = config_ms(d->cfg, d->section, "step_backoff");
	cy->backoff_max_ms = config_ms(d->cfg, d->section, "step_backoff_max");
	cy->stop_grace_ms = config_ms(d->cfg, d->section, "stop_grace");
}

void
cycle_free(struct cycle *cy)
{
	if (cy == NULL)
		return;
	ev_timer_stop(cy->d->loop, &cy->next);
	ev_timer_stop(cy->d->loop, &cy->grace);
	cursor_clear(&cy->cur);
	cJSON_Delete(cy->ph_detail);
	free(cy->last_error);
	free(cy);
}

void
cycle_set_listener(struct cycle *cy, cycle_listener_fn fn, void *arg)
{
	cy->listener = fn;
	cy->larg = arg;
}

bool
cycle_running(const struct cycle *cy)
{
	return cy->running;
}

const char *
cycle_run_id(const struct cycle *cy)
{
	return cy->running ? cy->run_id : NULL;
}

int
cycle_recover(struct cycle *cy, bool *resume, char **cause)
{
	char now[ISO8601_LEN];
	int n;

	if (cursor_load(cy, &cy->cur, cause) == -1)
		return -1;
	if (cy->job->uses_corpus && corpus_reconcile(cy, cause) == -1)
		return -1;
	if (db_begin(cy->db, cause) == -1)
		return -1;
	if ((n = obs_mark_stale(cy->db, cy->job->sync_type, nowstr(now), cause)) == -1 ||
	    db_commit(cy->db, cause) == -1) {
		db_rollback(cy->db);
		return -1;
	}
	if (n > 0)
		log_warnx("marked %d run%s of %s left running by a process that is gone as stale", n, n == 1 ? "" : "s",
		    cy->job->sync_type);
	*resume = strcmp(cy->cur.phase, "done") != 0;
	return 0;
}

/* --- runs ---------------------------------------------------------------------------------------------------- */

/*
 * The run's first commit failed (e.g. rtopacks.db is read-only or full: that commit writes its checkpoint): record
 * the run as failed in ops.db alone, with the failure mail, so that the operator sees it like any failed run.  The
 * cursor has not moved, so the next trigger tries again.
 */
static void
record_start_failure(struct cycle *cy, const struct obs_run *run, const char *error)
{
	char now[ISO8601_LEN], *cause = NULL, *full = NULL;
	int64_t mail = -1;

	xasprintf(&full, "%s: cannot start the run: %s", run->phase, error);
	log_warnx("run %s failed: %s", run->run_id, full);
	if (db_begin(cy->db, &cause) == -1 || obs_run_insert(cy->db, run, &cause) == -1 ||
	    obs_run_finish(cy->db, run->run_id, "failed", full, nowstr(now), &cause) == -1 ||
	    (config_bool(cy->d->cfg, cy->d->section, "notify") &&
	    (mail = queue_failure_mail(cy, run->phase, full, &cause)) == -1) || db_commit(cy->db, &cause) == -1) {
		db_rollback(cy->db);
		log_warnx("cannot record the failed start of run %s either: %s", run->run_id, cause);
		free(cause);
		mail = -1;
	}
	if (mail != -1)
		outbox_deliver(cy->d->outbox, mail, 1, NULL, NULL);
	snprintf(cy->last_status, sizeof cy->last_status, "failed");
	free(cy->last_error);
	cy->last_error = full;
}

enum trigger_result
cycle_trigger(struct cycle *cy, const char *trigger, const char *requested_by, bool full, char *run_id, size_t len,
    char **cause)
{
	struct cursor c;
	struct obs_run run;
	char now[ISO8601_LEN], id[128];
	bool resume, inserted = false;
	int idx;

	if (cy->running) {
		snprintf(run_id, len, "%s", cy->run_id);
		return TRIGGER_ALREADY_RUNNING;
	}
	memset(&c, 0, sizeof c);
	if (cursor_load(cy, &c, cause) == -1)
		return TRIGGER_ERROR;
	resume = strcmp(c.phase, "done") != 0 && !full;
	if (resume) {
		if ((idx = phase_index(cy->job, c.phase)) == -1) {
			xasprintf(cause, "the cursor of %s names phase '%s', which this version does not have: start a new "
			    "cycle with `syncctl trigger %s --full`", cy->job->sync_type, c.phase, cy->job->daemon);
			cursor_clear(&c);
			return TRIGGER_ERROR;
		}
	} else {
		if (strcmp(c.phase, "done") != 0)
			log_warnx("a full cycle was asked for: the unfinished cycle %s (at %s) is abandoned",
			    c.cycle_id ? c.cycle_id : "?", c.phase);
		idx = 0;
	}

	nowstr(now);
	if (db_begin(cy->db, cause) == -1) {
		cursor_clear(&c);
		return TRIGGER_ERROR;
	}
	if (obs_new_run_id(cy->db, cy->job->sync_type, now, id, sizeof id, cause) == -1)
		goto fail;
	memset(&run, 0, sizeof run);
	run.run_id = id;
	run.sync_type = cy->job->sync_type;
	run.cycle_id = resume && c.cycle_id != NULL ? c.cycle_id : id;
	run.trigger = resume ? "resume" : trigger;
	run.requested_by = requested_by;
	run.full = resume ? c.full != 0 : full;
	run.resumed_from = resume ? c.run_id : NULL;
	run.phase = cy->job->phases[idx].name;
	run.started_at = now;
	if (obs_run_insert(cy->db, &run, cause) == -1)
		goto fail;
	inserted = true;

	snprintf(cy->run_id, sizeof cy->run_id, "%s", id);
	snprintf(cy->started_at, sizeof cy->started_at, "%s", now);
	snprintf(cy->cycle_id, sizeof cy->cycle_id, "%s", run.cycle_id);
	snprintf(cy->trigger, sizeof cy->trigger, "%s", run.trigger);
	snprintf(cy->requested_by, sizeof cy->requested_by, "%s", requested_by ? requested_by : "");
	snprintf(cy->resumed_from, sizeof cy->resumed_from, "%s", run.resumed_from ? run.resumed_from : "");
	cy->full = run.full;
	free(c.run_id);
	c.run_id = xstrdup(id);
	free(c.cycle_id);
	c.cycle_id = xstrdup(cy->cycle_id);
	if (!resume) {
		free(c.phase);
		c.phase = xstrdup(cy->job->phases[0].name);
		free(c.phase_cursor);
		c.phase_cursor = xstrdup("");
		free(c.cycle_state);
		c.cycle_state = xstrdup("{}");
		c.full = full;
	}
	c.seq++;
	if (cursor_store(cy, &c, cause) == -1 ||
	    (cy->job->uses_corpus && checkpoint_store(cy, &c, "", 0, 0, 0, cause) == -1) ||
	    commit_cursor(cy, "trigger", cause) == -1)
		goto fail;

	cursor_clear(&cy->cur);
	cy->cur = c;
	cy->mono_start = mono_now();
	cy->running = true;
	cy->phase_idx = idx;
	cy->row_phase_idx = -1;
	cy->attempts = 0;
	cy->run_in = cy->run_out = 0;
	cy->cancel_req = false;
	cy->stop_req = cy->d->stopping;
	xfree(&cy->last_error);
	snprintf(run_id, len, "%s", id);
	log_info("run %s started (%s%s%s%s, phase %s%s%s)", id, run.trigger, requested_by ? " by " : "",
	    requested_by ? requested_by : "", run.full ? ", full" : "", c.phase,
	    c.phase_cursor[0] ? " at " : "", c.phase_cursor);
	{
		cJSON *o = progress_json(cy);

		cJSON_AddStringToObject(o, "trigger", run.trigger);
		cJSON_AddStringToObject(o, "cycle_id", cy->cycle_id);
		emit(cy, "run_start", o);
	}
	schedule_next(cy, 0);
	return TRIGGER_STARTED;
fail:
	db_rollback(cy->db);
	if (inserted) {
		/* c's strings were replaced after the insert: the run row takes the engine's copies. */
		run.cycle_id = cy->cycle_id;
		run.resumed_from = cy->resumed_from[0] != '\0' ? cy->resumed_from : NULL;
		record_start_failure(cy, &run, *cause);
	}
	cursor_clear(&c);
	return TRIGGER_ERROR;
}

static void
run_finished(struct cycle *cy, const char *status, const char *error)
{
	cJSON *o = progress_json(cy);

	cy->running = false;
	snprintf(cy->last_status, sizeof cy->last_status, "%s", status);
	free(cy->last_error);
	cy->last_error = dup_or_null(error);
	ev_timer_stop(cy->d->loop, &cy->grace);
	cJSON_AddStringToObject(o, "status", status);
	if (error != NULL)
		cJSON_AddStringToObject(o, "error", error);
	log_info("run %s ended: %s%s%s", cy->run_id, status, error ? ": " : "", error ? error : "");
	emit(cy, "run_end", o);
}

static void
free_step(struct step *st)
{
	free(st->cursor);
	free(st->new_cursor);
	cJSON_Delete(st->cycle_state);
	cJSON_Delete(st->job_state);
	cJSON_Delete(st->detail);
	cJSON_Delete(st->summary);
	free(st->status_override);
	free(st->status_error);
	free(st->degraded);
	http_group_free(st->group);
	free(st);
}

/* Make sure this run has a step row for the current phase ('running'); it is written at the phase's first step. */
static int
ensure_step_row(struct cycle *cy, char **cause)
{
	struct obs_step row;
	const char *phase = cy->job->phases[cy->phase_idx].name;

	if (cy->row_phase_idx == cy->phase_idx)
		return 0;
	nowstr(cy->ph_started);
	cy->ph_in = cy->ph_out = cy->ph_rej = cy->ph_attempts = 0;
	cJSON_Delete(cy->ph_detail);
	cy->ph_detail = NULL;
	memset(&row, 0, sizeof row);
	row.run_id = cy->run_id;
	row.sync_type = cy->job->sync_type;
	row.step = phase;
	row.status = "running";
	row.started_at = cy->ph_started;
	if (db_begin(cy->db, cause) == -1)
		return -1;
	if (obs_step_upsert(cy->db, &row, cause) == -1 || obs_run_set_phase(cy->db, cy->run_id, phase, cause) == -1 ||
	    db_commit(cy->db, cause) == -1) {
		db_rollback(cy->db);
		return -1;
	}
	cy->row_phase_idx = cy->phase_idx;
	{
		cJSON *o = progress_json(cy);

		emit(cy, "phase", o);
	}
	return 0;
}

static void
run_step(struct cycle *cy)
{
	const struct phase_def *ph;
	struct step *st;
	char *cause = NULL;

	if (cy->stop_req || cy->cancel_req) {
		end_run_interrupted(cy);
		return;
	}
	if (ensure_step_row(cy, &cause) == -1) {
		/* The observatory cannot be written (disk full, locked...): retry like a failed step. */
		cy->attempts++;
		if (cy->attempts <= cy->step_retries) {
			log_warnx("cannot start phase %s: %s; retrying", cy->job->phases[cy->phase_idx].name, cause);
			free(cause);
			schedule_next(cy, (double)cy->backoff_ms / 1000.0);
			return;
		}
		fail_run(cy, cause);
		free(cause);
		return;
	}
	ph = &cy->job->phases[cy->phase_idx];
	st = xcalloc(1, sizeof *st);
	st->cy = cy;
	st->phase_idx = cy->phase_idx;
	st->cursor = xstrdup(cy->cur.phase_cursor ? cy->cur.phase_cursor : "");
	if ((st->cycle_state = cJSON_Parse(cy->cur.cycle_state ? cy->cur.cycle_state : "{}")) == NULL ||
	    !cJSON_IsObject(st->cycle_state)) {
		cJSON_Delete(st->cycle_state);
		st->cycle_state = cJSON_CreateObject();
	}
	if ((st->job_state = cJSON_Parse(cy->cur.job_state ? cy->cur.job_state : "{}")) == NULL ||
	    !cJSON_IsObject(st->job_state)) {
		cJSON_Delete(st->job_state);
		st->job_state = cJSON_CreateObject();
	}
	st->group = http_group_new();
	cy->st = st;
	crashpoint("step_begin");
	ph->run(st);
}

static void
next_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	run_step(w->data);
}

static void
schedule_next(struct cycle *cy, double delay)
{
	ev_timer_stop(cy->d->loop, &cy->next);
	ev_timer_init(&cy->next, next_cb, delay, 0.0);
	cy->next.data = cy;
	ev_timer_start(cy->d->loop, &cy->next);
}

/* Queue the failure mail inside the transaction that records the failure. */
static int64_t
queue_failure_mail(struct cycle *cy, const char *phase, const char *error, char **cause)
{
	char key[256], *subject = NULL, *body = NULL, first[256];
	int64_t id;

	snprintf(key, sizeof key, "%s/failed/%s", cy->job->sync_type, cy->run_id);
	/* Subjects stay one short line: the first line of the error, cut at 160 characters. */
	snprintf(first, sizeof first, "%.*s", (int)strcspn(error, "\r\n"), error);
	if (strlen(first) > 160)
		strcpy(first + 157, "...");
	xasprintf(&subject, "[%s] cycle FAILED \xe2\x80\x94 %s: %s", cy->job->daemon, phase, first);
	xasprintf(&body,
	    "The %s run %s failed in phase %s and stopped.\n\n"
	    "Error: %s\n\n"
	    "Run ID:    %s\nCycle:     %s\nTrigger:   %s\nStarted:   %s\n\n"
	    "Nothing is lost: the cursor stays at phase %s (position '%s'), and the next trigger resumes there.\n"
	    "After fixing the cause:   syncctl trigger %s --wait\n"
	    "Steps of this run:        syncctl steps %s\n",
	    cy->job->daemon, cy->run_id, phase, error, cy->run_id, cy->cycle_id, cy->trigger, cy->started_at, phase,
	    cy->cur.phase_cursor ? cy->cur.phase_cursor : "", cy->job->daemon, cy->run_id);
	id = outbox_queue(cy->d->outbox, key, cy->job->sync_type, cy->run_id, subject, body, cause);
	free(subject);
	free(body);
	return id;
}

/* Write the failure to the step and run rows and queue the failure mail, in one transaction. */
static int
record_failure(struct cycle *cy, const char *error, const char *full_error, int64_t *mail, char **cause)
{
	const char *phase = cy->job->phases[cy->phase_idx].name;
	char now[ISO8601_LEN];
	struct obs_step row;

	nowstr(now);
	*mail = -1;
	if (db_begin(cy->db, cause) == -1)
		goto fail;
	memset(&row, 0, sizeof row);
	row.run_id = cy->run_id;
	row.sync_type = cy->job->sync_type;
	row.step = phase;
	row.status = "failed";
	row.records_in = cy->ph_in;
	row.records_out = cy->ph_out;
	row.rejected = cy->ph_rej;
	row.attempts = cy->ph_attempts;
	row.error = error;
	row.started_at = cy->row_phase_idx == cy->phase_idx ? cy->ph_started : now;
	row.finished_at = now;
	if (obs_step_upsert(cy->db, &row, cause) == -1 ||
	    obs_run_finish(cy->db, cy->run_id, "failed", full_error, now, cause) == -1)
		goto fail;
	if (config_bool(cy->d->cfg, cy->d->section, "notify") &&
	    (*mail = queue_failure_mail(cy, phase, error, cause)) == -1)
		goto fail;
	if (db_commit(cy->db, cause) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(cy->db);
	return -1;
}

static void
fail_run(struct cycle *cy, const char *error)
{
	const char *phase = cy->job->phases[cy->phase_idx].name;
	char *cause = NULL, *full_error = NULL;
	int64_t mail;
	int rc;

	xasprintf(&full_error, "%s: %s", phase, error);
	log_warnx("run %s failed: %s", cy->run_id, full_error);
	rc = record_failure(cy, error, full_error, &mail, &cause);
	if (rc == -1 && daemon_release_ballast(cy->d)) {
		/* A full disk would silence the failure itself: the ballast makes room for this one last write. */
		xfree(&cause);
		rc = record_failure(cy, error, full_error, &mail, &cause);
	}
	if (rc == -1) {
		/* Not even the failure can be recorded: say it everywhere we still can. */
		log_warnx("run %s failed and the failure cannot be recorded in %s: %s; the run will show as stale after "
		    "a restart", cy->run_id, db_path(cy->db), cause);
		free(cause);
	} else if (mail != -1)
		outbox_deliver(cy->d->outbox, mail, 1, NULL, NULL);
	run_finished(cy, "failed", full_error);
	free(full_error);
}

static void
end_run_interrupted(struct cycle *cy)
{
	const char *phase = cy->job->phases[cy->phase_idx].name;
	char now[ISO8601_LEN], *cause = NULL, *msg = NULL;

	if (cy->cancel_req)
		xasprintf(&msg, "cancelled by %s during phase %s; the next trigger resumes at '%s'", cy->cancel_by,
		    phase, cy->cur.phase_cursor ? cy->cur.phase_cursor : "");
	else
		xasprintf(&msg, "the daemon was stopped during phase %s; it resumes at '%s' when it starts again", phase,
		    cy->cur.phase_cursor ? cy->cur.phase_cursor : "");
	nowstr(now);
	if (db_begin(cy->db, &cause) == -1 ||
	    (cy->row_phase_idx == cy->phase_idx && obs_step_finish(cy->db, cy->run_id, cy->job->sync_type, phase,
	    "cancelled", NULL, now, &cause) == -1) ||
	    obs_run_finish(cy->db, cy->run_id, "cancelled", msg, now, &cause) == -1 || db_commit(cy->db, &cause) == -1) {
		db_rollback(cy->db);
		log_warnx("cannot record the end of run %s: %s", cy->run_id, cause);
		free(cause);
	}
	run_finished(cy, "cancelled", msg);
	free(msg);
}

/* --- the step API ------------------------------------------------------------------------------------------- */

struct daemon *
step_daemon(struct step *st)
{
	return st->cy->d;
}

void *
step_job(struct step *st)
{
	return st->cy->d->job_ctx;
}

const char *
step_phase(struct step *st)
{
	return st->cy->job->phases[st->phase_idx].name;
}

const char *
step_cursor(struct step *st)
{
	return st->cursor;
}

const char *
step_run_id(struct step *st)
{
	return st->cy->run_id;
}

const char *
step_cycle_id(struct step *st)
{
	return st->cy->cycle_id;
}

bool
step_full(struct step *st)
{
	return st->cy->full;
}

int
step_attempt(struct step *st)
{
	return st->cy->attempts;
}

bool
step_stopping(struct step *st)
{
	return st->cy->stop_req || st->cy->cancel_req || st->aborting;
}

cJSON *
step_cycle_state(struct step *st)
{
	return st->cycle_state;
}

cJSON *
step_job_state(struct step *st)
{
	return st->job_state;
}

struct http_group *
step_http(struct step *st)
{
	return st->group;
}

void
step_on_abort(struct step *st, void (*fn)(void *), void *arg)
{
	st->on_abort = fn;
	st->abort_arg = arg;
}

struct db *
step_db(struct step *st, char **cause)
{
	if (!st->tx) {
		if (db_begin(st->cy->db, cause) == -1)
			return NULL;
		st->tx = true;
	}
	return st->cy->db;
}

void
step_set_cursor(struct step *st, const char *fmt, ...)
{
	va_list ap;

	free(st->new_cursor);
	va_start(ap, fmt);
	xvasprintf(&st->new_cursor, fmt, ap);
	va_end(ap);
}

void
step_count(struct step *st, int64_t in, int64_t out)
{
	st->in += in;
	st->out += out;
}

void
step_reject(struct step *st, int64_t n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	st->rejected += n;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warnx("%s: rejected %lld record%s: %s", step_phase(st), (long long)n, n == 1 ? "" : "s", msg);
}

void
step_detail_add(struct step *st, const char *key, int64_t n)
{
	cJSON *item;

	if (st->detail == NULL)
		st->detail = cJSON_CreateObject();
	if ((item = cJSON_GetObjectItemCaseSensitive(st->detail, key)) != NULL)
		cJSON_SetNumberValue(item, item->valuedouble + (double)n);
	else
		cJSON_AddNumberToObject(st->detail, key, (double)n);
}

void
step_set_summary(struct step *st, const cJSON *summary, int64_t changes)
{
	cJSON_Delete(st->summary);
	st->summary = cJSON_Duplicate(summary, 1);
	st->changes = changes;
}

void
step_set_status(struct step *st, const char *status, const char *error)
{
	free(st->status_override);
	free(st->status_error);
	st->status_override = xstrdup(status);
	st->status_error = dup_or_null(error);
}

void
step_set_run_degraded(struct step *st, const char *error)
{
	free(st->degraded);
	st->degraded = xstrdup(error != NULL ? error : "degraded");
}

/* Add src's numbers into *dst (creating it). */
static void
detail_merge(cJSON **dst, const cJSON *src)
{
	const cJSON *it;
	cJSON *item;

	if (src == NULL)
		return;
	if (*dst == NULL)
		*dst = cJSON_CreateObject();
	cJSON_ArrayForEach(it, src) {
		if ((item = cJSON_GetObjectItemCaseSensitive(*dst, it->string)) != NULL)
			cJSON_SetNumberValue(item, item->valuedouble + it->valuedouble);
		else
			cJSON_AddNumberToObject(*dst, it->string, it->valuedouble);
	}
}

static int
cycle_rejected(struct cycle *cy, int64_t *n, char **cause)
{
	sqlite3_stmt *st;

	if ((st = db_stmt(cy->db, SQL_CYCLE_REJECTED, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, cy->cycle_id);
	db_bind_text(st, 2, cy->job->sync_type);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_error(cy->db, cause, "count rejected records");
	}
	*n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* The abort of a cancelled step has come back: the step is gone, end the run. */
static void
finish_abort(struct cycle *cy, struct step *st)
{
	if (st->tx)
		db_rollback(cy->db);
	cy->st = NULL;
	free_step(st);
	end_run_interrupted(cy);
}

void
step_done(struct step *st, enum step_result result)
{
	struct cycle *cy = st->cy;
	const struct phase_def *ph = &cy->job->phases[st->phase_idx];
	struct cursor nc;
	struct obs_step row;
	char now[ISO8601_LEN], *cause = NULL, *detail = NULL;
	cJSON *merged = NULL;
	bool last = false, phase_done = result == STEP_PHASE_DONE;
	int64_t rejected_total = 0;
	const char *status, *run_status = "complete";
	char *run_error = NULL;

	if (st->aborting) {
		finish_abort(cy, st);
		return;
	}
	if (st->leaked_tx) {
		step_fail(st, STEP_RETRY, "internal error: phase %s held its transaction across the event loop", ph->name);
		return;
	}
	if (!st->tx && step_db(st, &cause) == NULL)
		goto fail;
	nowstr(now);

	/* The new cursor. */
	memset(&nc, 0, sizeof nc);
	nc.run_id = xstrdup(cy->run_id);
	nc.cycle_id = xstrdup(cy->cycle_id);
	nc.full = cy->full;
	nc.seq = cy->cur.seq + 1;
	nc.corpus_seq = (ph->flags & PHASE_CORPUS) ? nc.seq : cy->cur.corpus_seq;
	nc.cycle_state = cJSON_PrintUnformatted(st->cycle_state);
	nc.job_state = cJSON_PrintUnformatted(st->job_state);
	if (phase_done) {
		last = st->phase_idx + 1 >= (int)cy->job->nphases;
		nc.phase = xstrdup(last ? "done" : cy->job->phases[st->phase_idx + 1].name);
		nc.phase_cursor = xstrdup("");
	} else {
		nc.phase = xstrdup(ph->name);
		nc.phase_cursor = xstrdup(st->new_cursor ? st->new_cursor : st->cursor);
	}

	/* The step row. */
	if (cy->ph_detail != NULL)
		merged = cJSON_Duplicate(cy->ph_detail, 1);
	detail_merge(&merged, st->detail);
	detail = merged ? cJSON_PrintUnformatted(merged) : NULL;
	memset(&row, 0, sizeof row);
	row.run_id = cy->run_id;
	row.sync_type = cy->job->sync_type;
	row.step = ph->name;
	row.records_in = cy->ph_in + st->in;
	row.records_out = cy->ph_out + st->out;
	row.rejected = cy->ph_rej + st->rejected;
	row.attempts = cy->ph_attempts;
	row.detail = detail;
	row.started_at = cy->ph_started;
	if (phase_done) {
		status = st->status_override ? st->status_override : (row.rejected > 0 ? "partial" : "complete");
		row.error = st->status_error;
		row.finished_at = now;
	} else
		status = "running";
	row.status = status;

	if (obs_step_upsert(cy->db, &row, &cause) == -1 || cursor_store(cy, &nc, &cause) == -1)
		goto fail_nc;
	if (st->summary != NULL) {
		char *json = cJSON_PrintUnformatted(st->summary);
		int rc = obs_run_set_summary(cy->db, cy->run_id, json, st->changes, &cause);

		free(json);
		if (rc == -1)
			goto fail_nc;
	}
	if (last) {
		if (cycle_rejected(cy, &rejected_total, &cause) == -1)
			goto fail_nc;
		run_status = st->degraded != NULL ? "degraded" : rejected_total > 0 ? "partial" : "complete";
		if (obs_run_finish(cy->db, cy->run_id, run_status, st->degraded, now, &cause) == -1)
			goto fail_nc;
	}
	/* Last, so that the copy in rtopacks.db reads the run row as this commit leaves it. */
	if (cy->job->uses_corpus &&
	    checkpoint_store(cy, &nc, ph->name, row.records_in, row.records_out, row.rejected, &cause) == -1)
		goto fail_nc;
	crashpoint("before_commit");
	if (commit_cursor(cy, ph->name, &cause) == -1)
		goto fail_nc;
	st->tx = false;
	crashpoint("after_commit");

	/* Committed: make it ours. */
	cursor_clear(&cy->cur);
	cy->cur = nc;
	cy->ph_in = row.records_in;
	cy->ph_out = row.records_out;
	cy->ph_rej = row.rejected;
	cJSON_Delete(cy->ph_detail);
	cy->ph_detail = merged;
	cy->run_in += st->in;
	cy->run_out += st->out;
	cy->attempts = 0;
	cy->st = NULL;
	free(detail);
	run_error = st->degraded != NULL ? xstrdup(st->degraded) : NULL;
	free_step(st);
	if (phase_done) {
		cy->phase_idx++;
		if (last) {
			cy->phase_idx = (int)cy->job->nphases;
			run_finished(cy, run_status, run_error);
			free(run_error);
			return;
		}
	}
	free(run_error);
	emit(cy, "progress", progress_json(cy));
	if (cy->stop_req || cy->cancel_req) {
		end_run_interrupted(cy);
		return;
	}
	schedule_next(cy, 0);
	return;

fail_nc:
	cursor_clear(&nc);
	cJSON_Delete(merged);
	free(detail);
fail:
	{
		char *msg = NULL;

		xasprintf(&msg, "cannot commit: %s", cause ? cause : "unknown error");
		free(cause);
		step_fail(st, STEP_RETRY, "%s", msg);
		free(msg);
	}
}

void
step_fail(struct step *st, enum step_error kind, const char *fmt, ...)
{
	struct cycle *cy = st->cy;
	const char *phase = cy->job->phases[st->phase_idx].name;
	char *error = NULL, *cause = NULL, now[ISO8601_LEN];
	struct obs_step row;
	va_list ap;
	double delay;

	if (st->aborting) {
		finish_abort(cy, st);
		return;
	}
	va_start(ap, fmt);
	xvasprintf(&error, fmt, ap);
	va_end(ap);
	if (st->tx) {
		db_rollback(cy->db);
		st->tx = false;
	}
	cy->st = NULL;
	free_step(st);
	cy->attempts++;
	cy->ph_attempts++;

	if (kind == STEP_RETRY && cy->attempts <= cy->step_retries && !cy->stop_req && !cy->cancel_req) {
		delay = (double)cy->backoff_ms / 1000.0 * (double)(1L << (cy->attempts - 1 < 20 ? cy->attempts - 1 : 20));
		if (delay > (double)cy->backoff_max_ms / 1000.0)
			delay = (double)cy->backoff_max_ms / 1000.0;
		log_warnx("%s: step failed (attempt %d of %d), retrying in %.1fs: %s", phase, cy->attempts,
		    cy->step_retries + 1, delay, error);
		/* Let the operator see the retries while they happen. */
		memset(&row, 0, sizeof row);
		row.run_id = cy->run_id;
		row.sync_type = cy->job->sync_type;
		row.step = phase;
		row.status = "running";
		row.records_in = cy->ph_in;
		row.records_out = cy->ph_out;
		row.rejected = cy->ph_rej;
		row.attempts = cy->ph_attempts;
		row.error = error;
		row.started_at = cy->ph_started[0] ? cy->ph_started : nowstr(now);
		if (db_begin(cy->db, &cause) == -1 || obs_step_upsert(cy->db, &row, &cause) == -1 ||
		    db_commit(cy->db, &cause) == -1) {
			db_rollback(cy->db);
			log_warnx("cannot record the retry: %s", cause);
			xfree(&cause);
		}
		{
			cJSON *o = progress_json(cy);

			cJSON_AddStringToObject(o, "error", error);
			cJSON_AddNumberToObject(o, "attempt", cy->attempts);
			cJSON_AddNumberToObject(o, "delay", delay);
			emit(cy, "retry", o);
		}
		free(error);
		schedule_next(cy, delay);
		return;
	}
	if (cy->stop_req || cy->cancel_req) {
		free(error);
		end_run_interrupted(cy);
		return;
	}
	if (kind == STEP_RETRY && cy->step_retries > 0) {
		char *e2 = NULL;

		xasprintf(&e2, "%s (gave up after %d attempts)", error, cy->attempts);
		free(error);
		error = e2;
	}
	fail_run(cy, error);
	free(error);
}

/* --- control ------------------------------------------------------------------------------------------------- */

static void
abort_step(struct cycle *cy)
{
	struct step *st = cy->st;
	struct http_group *g;

	if (st == NULL || st->aborting)
		return;
	log_warnx("%s: the step did not finish in time: rolling it back", step_phase(st));
	st->aborting = true;
	/* The step's requests end as cancelled; the phase reports back and finish_abort ends the run. */
	if (st->on_abort != NULL) {
		void (*fn)(void *) = st->on_abort;

		st->on_abort = NULL;
		fn(st->abort_arg);
		return;		/* the hook reported back: st is gone */
	}
	/* The group leaves the step first: the last cancelled request's report frees the step. */
	g = st->group;
	st->group = NULL;
	http_group_cancel(g);
	http_group_free(g);
}

static void
grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	abort_step(w->data);
}

void
cycle_cancel(struct cycle *cy, const char *by)
{
	if (!cy->running)
		return;
	cy->cancel_req = true;
	snprintf(cy->cancel_by, sizeof cy->cancel_by, "%s", by ? by : "operator");
	log_info("run %s: cancel requested by %s; stopping at the next step boundary", cy->run_id, cy->cancel_by);
	if (cy->st == NULL) {
		/* Between steps (or waiting out a retry backoff): that is a boundary. */
		ev_timer_stop(cy->d->loop, &cy->next);
		end_run_interrupted(cy);
	}
}

void
cycle_stop(struct cycle *cy)
{
	if (!cy->running)
		return;
	cy->stop_req = true;
	if (cy->st == NULL) {
		ev_timer_stop(cy->d->loop, &cy->next);
		end_run_interrupted(cy);
		return;
	}
	log_info("run %s: stopping after the current step (at most %.0fs)", cy->run_id,
	    (double)cy->stop_grace_ms / 1000.0);
	ev_timer_stop(cy->d->loop, &cy->grace);
	ev_timer_init(&cy->grace, grace_cb, (double)cy->stop_grace_ms / 1000.0, 0.0);
	cy->grace.data = cy;
	ev_timer_start(cy->d->loop, &cy->grace);
}

void
cycle_check_tx(struct cycle *cy)
{
	if (!db_in_tx(cy->db))
		return;
	db_rollback(cy->db);
	if (cy->st != NULL && cy->st->tx) {
		log_warnx("%s: a step held its transaction while waiting for the event loop (a bug in the phase); "
		    "rolled back", step_phase(cy->st));
		cy->st->tx = false;
		cy->st->leaked_tx = true;
	} else
		log_warnx("a transaction was left open across the event loop (a bug); rolled back");
}

void
cycle_status(struct cycle *cy, cJSON *out)
{
	cJSON *cur = cJSON_CreateObject();
	char *cause = NULL;
	struct cursor c;

	cJSON_AddStringToObject(out, "state", cy->running ? "running" : "idle");
	if (cy->running) {
		cJSON *run = progress_json(cy);

		cJSON_AddStringToObject(run, "cycle_id", cy->cycle_id);
		cJSON_AddStringToObject(run, "trigger", cy->trigger);
		cJSON_AddStringToObject(run, "started_at", cy->started_at);
		cJSON_AddBoolToObject(run, "full", cy->full);
		cJSON_AddNumberToObject(run, "step_attempts", cy->attempts);
		if (cy->cancel_req || cy->stop_req)
			cJSON_AddStringToObject(run, "stopping", cy->cancel_req ? "cancel" : "stop");
		cJSON_AddItemToObject(out, "run", run);
	} else {
		cJSON_AddStringToObject(out, "last_status", cy->last_status);
		if (cy->last_error != NULL)
			cJSON_AddStringToObject(out, "last_error", cy->last_error);
	}
	memset(&c, 0, sizeof c);
	if (!db_in_tx(cy->db) && cursor_load(cy, &c, &cause) == 0) {
		cJSON_AddStringToObject(cur, "cycle_phase", c.phase);
		cJSON_AddStringToObject(cur, "phase_cursor", c.phase_cursor);
		if (c.run_id)
			cJSON_AddStringToObject(cur, "run_id", c.run_id);
		if (c.cycle_id)
			cJSON_AddStringToObject(cur, "cycle_id", c.cycle_id);
		cursor_clear(&c);
	} else {
		cJSON_AddStringToObject(cur, "error", cause ? cause : "busy");
		free(cause);
	}
	cJSON_AddItemToObject(out, "cursor", cur);
}
