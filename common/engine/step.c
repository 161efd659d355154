/*
 * Steps: the API a phase's step uses (cycle.h), running one step, its commit (step_done) or its failure
 * (step_fail, with retries and backoff), the phase's step row, and a run that fails.  See cycle-int.h for how the
 * engine's files call each other.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ballast.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "observatory.h"
#include "outbox.h"
#include "xmalloc.h"

#include "cycle-int.h"

static void fail_run(struct cycle *, const char *error);

/* --- the step API ------------------------------------------------------------------------------------------- */

struct daemon *
step_daemon(struct step *st)
{
	return st->cy->h->daemon;
}

void *
step_job(struct step *st)
{
	return st->cy->h->job_ctx;
}

const struct cycle_host *
step_host(struct step *st)
{
	return st->cy->h;
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

bool
step_flag(struct step *st, const char *flag)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st->cycle_state, "flags"),
	    flag));
}

int
step_attempt(struct step *st)
{
	return st->cy->attempts;
}

bool
step_stopping(struct step *st)
{
	return cycle_ending(st->cy) || st->aborting;
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
	st->status_error = error != NULL ? xstrdup(error) : NULL;
}

void
step_set_run_degraded(struct step *st, const char *error)
{
	free(st->degraded);
	st->degraded = xstrdup(error != NULL ? error : "degraded");
}

/* --- the phase's step row ----------------------------------------------------------------------------------- */

/*
 * The one builder of step rows: the current phase's row in this run, with the phase's totals so far (the caller
 * adds what the step itself brings).  A row that is not 'running' is finished now.  started_at is the phase's start
 * once its row exists (ensure_step_row), else now.
 */
static void
step_row(struct cycle *cy, struct obs_step *row, const char *status, const char *error, const char *now)
{
	memset(row, 0, sizeof *row);
	row->run_id = cy->run_id;
	row->sync_type = cy->job->sync_type;
	row->step = cy->job->phases[cy->phase_idx].name;
	row->status = status;
	row->records_in = cy->ph_in;
	row->records_out = cy->ph_out;
	row->rejected = cy->ph_rej;
	row->attempts = cy->ph_attempts;
	row->error = error;
	row->started_at = cy->row_phase_idx == cy->phase_idx && cy->ph_started[0] != '\0' ? cy->ph_started : now;
	row->finished_at = strcmp(status, "running") != 0 ? now : NULL;
}

/* Make sure this run has a step row for the current phase ('running'); it is written at the phase's first step. */
static int
ensure_step_row(struct cycle *cy, char **cause)
{
	struct obs_step row;
	const char *phase = cy->job->phases[cy->phase_idx].name;

	if (cy->row_phase_idx == cy->phase_idx)
		return 0;
	iso8601_now(cy->ph_started);
	cy->ph_in = cy->ph_out = cy->ph_rej = cy->ph_attempts = 0;
	cJSON_Delete(cy->ph_detail);
	cy->ph_detail = NULL;
	step_row(cy, &row, "running", NULL, cy->ph_started);
	if (db_begin(cy->db, cause) == -1)
		return -1;
	if (obs_step_upsert(cy->db, &row, cause) == -1 || obs_run_set_phase(cy->db, cy->run_id, phase, cause) == -1 ||
	    db_commit(cy->db, cause) == -1) {
		db_rollback(cy->db);
		return -1;
	}
	cy->row_phase_idx = cy->phase_idx;
	cycle_emit(cy, "phase", cycle_progress(cy));
	return 0;
}

/* --- running a step ----------------------------------------------------------------------------------------- */

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

static void
run_step(struct cycle *cy)
{
	const struct phase_def *ph;
	struct step *st;
	char *cause = NULL;

	if (cycle_ending(cy)) {
		cycle_run_interrupted(cy);
		return;
	}
	if (ensure_step_row(cy, &cause) == -1) {
		/* The observatory cannot be written (disk full, locked...): retry like a failed step. */
		cy->attempts++;
		if (cy->attempts <= cy->step_retries) {
			log_warnx("cannot start phase %s: %s; retrying", cy->job->phases[cy->phase_idx].name, cause);
			free(cause);
			cycle_schedule_step(cy, (double)cy->backoff_ms / 1000.0);
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

void
cycle_schedule_step(struct cycle *cy, double delay)
{
	ev_timer_stop(cy->h->loop, &cy->next);
	ev_timer_init(&cy->next, next_cb, delay, 0.0);
	cy->next.data = cy;
	ev_timer_start(cy->h->loop, &cy->next);
}

/* --- a run that fails --------------------------------------------------------------------------------------- */

/* Write the failure to the step and run rows and queue the failure mail, in one transaction. */
static int
record_failure(struct cycle *cy, const char *error, const char *full_error, int64_t *mail, char **cause)
{
	const char *phase = cy->job->phases[cy->phase_idx].name;
	char now[ISO8601_LEN];
	struct obs_step row;

	iso8601_now(now);
	*mail = -1;
	if (db_begin(cy->db, cause) == -1)
		goto fail;
	step_row(cy, &row, "failed", error, now);
	if (obs_step_upsert(cy->db, &row, cause) == -1 ||
	    obs_run_finish(cy->db, cy->run_id, "failed", full_error, now, cause) == -1)
		goto fail;
	if (config_bool(cy->h->cfg, cy->h->section, "notify") &&
	    (*mail = cycle_failure_mail(cy, phase, error, cause)) == -1)
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
	if (rc == -1 && ballast_release(config_str(cy->h->cfg, "paths", "state_dir"), cy->job->daemon)) {
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
		outbox_deliver(cy->h->outbox, mail, 1, NULL, NULL);
	cycle_run_finished(cy, "failed", full_error);
	free(full_error);
}

/* --- the end of a step -------------------------------------------------------------------------------------- */

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

/* The abort of a cancelled step has come back: the step is gone, end the run. */
static void
finish_abort(struct cycle *cy, struct step *st)
{
	if (st->tx)
		db_rollback(cy->db);
	cy->st = NULL;
	free_step(st);
	cycle_run_interrupted(cy);
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
	iso8601_now(now);

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

	/* The step row: the phase's totals with this step's. */
	if (cy->ph_detail != NULL)
		merged = cJSON_Duplicate(cy->ph_detail, 1);
	detail_merge(&merged, st->detail);
	detail = merged ? cJSON_PrintUnformatted(merged) : NULL;
	if (phase_done)
		status = st->status_override ? st->status_override :
		    (cy->ph_rej + st->rejected > 0 ? "partial" : "complete");
	else
		status = "running";
	step_row(cy, &row, status, phase_done ? st->status_error : NULL, now);
	row.records_in += st->in;
	row.records_out += st->out;
	row.rejected += st->rejected;
	row.detail = detail;
	row.finished_at = phase_done ? now : NULL;

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
	if (cursor_commit(cy, ph->name, &cause) == -1)
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
			cycle_run_finished(cy, run_status, run_error);
			free(run_error);
			return;
		}
	}
	free(run_error);
	cycle_emit(cy, "progress", cycle_progress(cy));
	if (cycle_ending(cy)) {
		cycle_run_interrupted(cy);
		return;
	}
	cycle_schedule_step(cy, 0);
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

	if (kind == STEP_RETRY && cy->attempts <= cy->step_retries && !cycle_ending(cy)) {
		delay = (double)cy->backoff_ms / 1000.0 * (double)(1L << (cy->attempts - 1 < 20 ? cy->attempts - 1 : 20));
		if (delay > (double)cy->backoff_max_ms / 1000.0)
			delay = (double)cy->backoff_max_ms / 1000.0;
		log_warnx("%s: step failed (attempt %d of %d), retrying in %.1fs: %s", phase, cy->attempts,
		    cy->step_retries + 1, delay, error);
		/* Let the operator see the retries while they happen. */
		step_row(cy, &row, "running", error, iso8601_now(now));
		if (db_begin(cy->db, &cause) == -1 || obs_step_upsert(cy->db, &row, &cause) == -1 ||
		    db_commit(cy->db, &cause) == -1) {
			db_rollback(cy->db);
			log_warnx("cannot record the retry: %s", cause);
			xfree(&cause);
		}
		{
			cJSON *o = cycle_progress(cy);

			cJSON_AddStringToObject(o, "error", error);
			cJSON_AddNumberToObject(o, "attempt", cy->attempts);
			cJSON_AddNumberToObject(o, "delay", delay);
			cycle_emit(cy, "retry", o);
		}
		free(error);
		cycle_schedule_step(cy, delay);
		return;
	}
	if (cycle_ending(cy)) {
		free(error);
		cycle_run_interrupted(cy);
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

void
cycle_abort_step(struct cycle *cy)
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
