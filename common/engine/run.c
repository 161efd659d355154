/*
 * The run: the engine's state and its one setter, the events the daemon listens to, and the end of a run (its run
 * row, the failure mail).  See cycle-int.h for how the engine's files call each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "observatory.h"
#include "outbox.h"
#include "xmalloc.h"

#include "cycle-int.h"

static const char SQL_CYCLE_REJECTED[] =
    "SELECT coalesce(sum(s.rejected), 0) FROM sync_steps s JOIN sync_runs r ON r.run_id = s.run_id"
    " WHERE r.cycle_id = ? AND s.sync_type = ?";

void
cycle_set_state(struct cycle *cy, enum cycle_state state)
{
	if (state == CYCLE_STOPPING && cy->state == CYCLE_CANCELLING)
		return;
	cy->state = state;
}

void
cycle_emit(struct cycle *cy, const char *event, cJSON *data)
{
	if (cy->listener != NULL)
		cy->listener(event, data, cy->larg);
	cJSON_Delete(data);
}

cJSON *
cycle_progress(struct cycle *cy)
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

void
cycle_run_finished(struct cycle *cy, const char *status, const char *error)
{
	cJSON *o = cycle_progress(cy);

	cycle_set_state(cy, CYCLE_IDLE);
	snprintf(cy->last_status, sizeof cy->last_status, "%s", status);
	free(cy->last_error);
	cy->last_error = error != NULL ? xstrdup(error) : NULL;
	ev_timer_stop(cy->h->loop, &cy->grace);
	cJSON_AddStringToObject(o, "status", status);
	if (error != NULL)
		cJSON_AddStringToObject(o, "error", error);
	log_info("run %s ended: %s%s%s", cy->run_id, status, error ? ": " : "", error ? error : "");
	cycle_emit(cy, "run_end", o);
}

void
cycle_run_interrupted(struct cycle *cy)
{
	const char *phase = cy->job->phases[cy->phase_idx].name;
	char now[ISO8601_LEN], *cause = NULL, *msg = NULL;

	if (cy->state == CYCLE_CANCELLING)
		xasprintf(&msg, "cancelled by %s during phase %s; the next trigger resumes at '%s'", cy->cancel_by,
		    phase, cy->cur.phase_cursor ? cy->cur.phase_cursor : "");
	else
		xasprintf(&msg, "the daemon was stopped during phase %s; it resumes at '%s' when it starts again", phase,
		    cy->cur.phase_cursor ? cy->cur.phase_cursor : "");
	iso8601_now(now);
	if (db_begin(cy->db, &cause) == -1 ||
	    (cy->row_phase_idx == cy->phase_idx && obs_step_finish(cy->db, cy->run_id, cy->job->sync_type, phase,
	    "cancelled", NULL, now, &cause) == -1) ||
	    obs_run_finish(cy->db, cy->run_id, "cancelled", msg, now, &cause) == -1 || db_commit(cy->db, &cause) == -1) {
		db_rollback(cy->db);
		log_warnx("cannot record the end of run %s: %s", cy->run_id, cause);
		free(cause);
	}
	cycle_run_finished(cy, "cancelled", msg);
	free(msg);
}

/*
 * The run's first commit failed (e.g. rtopacks.db is read-only or full: that commit writes its checkpoint): record
 * the run as failed in ops.db alone, with the failure mail, so that the operator sees it like any failed run.  The
 * cursor has not moved, so the next trigger tries again.
 */
void
cycle_start_failed(struct cycle *cy, const struct obs_run *run, const char *error)
{
	char now[ISO8601_LEN], *cause = NULL, *full = NULL;
	int64_t mail = -1;

	xasprintf(&full, "%s: cannot start the run: %s", run->phase, error);
	log_warnx("run %s failed: %s", run->run_id, full);
	if (db_begin(cy->db, &cause) == -1 || obs_run_insert(cy->db, run, &cause) == -1 ||
	    obs_run_finish(cy->db, run->run_id, "failed", full, iso8601_now(now), &cause) == -1 ||
	    (config_bool(cy->h->cfg, cy->h->section, "notify") &&
	    (mail = cycle_failure_mail(cy, run->phase, full, &cause)) == -1) || db_commit(cy->db, &cause) == -1) {
		db_rollback(cy->db);
		log_warnx("cannot record the failed start of run %s either: %s", run->run_id, cause);
		free(cause);
		mail = -1;
	}
	if (mail != -1)
		outbox_deliver(cy->h->outbox, mail, 1, NULL, NULL);
	snprintf(cy->last_status, sizeof cy->last_status, "failed");
	free(cy->last_error);
	cy->last_error = full;
}

int64_t
cycle_failure_mail(struct cycle *cy, const char *phase, const char *error, char **cause)
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
	id = outbox_queue(cy->h->outbox, key, cy->job->sync_type, cy->run_id, subject, body, cause);
	free(subject);
	free(body);
	return id;
}

int
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
