/*
 * The cycle engine as the daemon drives it (cycle.h): set-up, recovery at start-up, trigger, cancel, stop and
 * status.  The steps themselves are in step.c, the run's state and end in run.c, the cursor row in cursor.c (see
 * cycle-int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "observatory.h"
#include "xmalloc.h"

#include "cycle-int.h"

/* --- set-up -------------------------------------------------------------------------------------------------- */

struct cycle *
cycle_new(const struct cycle_host *h, char **cause)
{
	struct cycle *cy = xcalloc(1, sizeof *cy);

	cy->h = h;
	cy->job = h->job;
	cy->db = h->db;
	cy->state = CYCLE_IDLE;
	cy->row_phase_idx = -1;
	snprintf(cy->last_status, sizeof cy->last_status, "none");
	cycle_reconfigure(cy);
	ev_timer_init(&cy->next, NULL, 0.0, 0.0);
	ev_timer_init(&cy->grace, NULL, 0.0, 0.0);
	if (cursor_prepare(cy, cause) == -1) {
		cycle_free(cy);
		return NULL;
	}
	return cy;
}

void
cycle_reconfigure(struct cycle *cy)
{
	const struct cycle_host *h = cy->h;

	cy->step_retries = (int)config_int(h->cfg, h->section, "step_retries");
	cy->backoff_ms = config_ms(h->cfg, h->section, "step_backoff");
	cy->backoff_max_ms = config_ms(h->cfg, h->section, "step_backoff_max");
	cy->stop_grace_ms = config_ms(h->cfg, h->section, "stop_grace");
}

void
cycle_free(struct cycle *cy)
{
	if (cy == NULL)
		return;
	ev_timer_stop(cy->h->loop, &cy->next);
	ev_timer_stop(cy->h->loop, &cy->grace);
	cursor_clear(&cy->cur);
	cJSON_Delete(cy->trigger_flags);
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
	return cycle_busy(cy);
}

const char *
cycle_run_id(const struct cycle *cy)
{
	return cycle_busy(cy) ? cy->run_id : NULL;
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
	if ((n = obs_mark_stale(cy->db, cy->job->sync_type, iso8601_now(now), cause)) == -1 ||
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

/* --- trigger ------------------------------------------------------------------------------------------------- */

static enum trigger_result
trigger_run(struct cycle *cy, const char *trigger, const char *requested_by, bool full, char *run_id, size_t len,
    char **cause)
{
	struct cursor c;
	struct obs_run run;
	char now[ISO8601_LEN], id[128];
	bool resume, inserted = false;
	int idx;

	if (cycle_busy(cy)) {
		cJSON_Delete(cy->trigger_flags);
		cy->trigger_flags = NULL;
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

	iso8601_now(now);
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
	if (cy->trigger_flags != NULL) {
		/* Flags for the phases (cycle_set_trigger_flag), in the cycle state this commit stores. */
		cJSON *state = cJSON_Parse(c.cycle_state ? c.cycle_state : "{}"), *f, *it;

		if (!cJSON_IsObject(state)) {
			cJSON_Delete(state);
			state = cJSON_CreateObject();
		}
		if (!cJSON_IsObject(f = cJSON_GetObjectItemCaseSensitive(state, "flags"))) {
			cJSON_DeleteItemFromObjectCaseSensitive(state, "flags");
			f = cJSON_AddObjectToObject(state, "flags");
		}
		cJSON_ArrayForEach(it, cy->trigger_flags) {
			cJSON_DeleteItemFromObjectCaseSensitive(f, it->string);
			cJSON_AddItemToObject(f, it->string, cJSON_Duplicate(it, 1));
		}
		free(c.cycle_state);
		c.cycle_state = cJSON_PrintUnformatted(state);
		cJSON_Delete(state);
		cJSON_Delete(cy->trigger_flags);
		cy->trigger_flags = NULL;
	}
	c.seq++;
	if (cursor_store(cy, &c, cause) == -1 ||
	    (cy->job->uses_corpus && checkpoint_store(cy, &c, "", 0, 0, 0, cause) == -1) ||
	    cursor_commit(cy, "trigger", cause) == -1)
		goto fail;

	cursor_clear(&cy->cur);
	cy->cur = c;
	cy->mono_start = mono_now();
	cy->phase_idx = idx;
	cy->row_phase_idx = -1;
	cy->attempts = 0;
	cy->run_in = cy->run_out = 0;
	cycle_set_state(cy, *cy->h->stopping ? CYCLE_STOPPING : CYCLE_RUNNING);
	xfree(&cy->last_error);
	snprintf(run_id, len, "%s", id);
	log_info("run %s started (%s%s%s%s, phase %s%s%s)", id, run.trigger, requested_by ? " by " : "",
	    requested_by ? requested_by : "", run.full ? ", full" : "", c.phase,
	    c.phase_cursor[0] ? " at " : "", c.phase_cursor);
	{
		cJSON *o = cycle_progress(cy);

		cJSON_AddStringToObject(o, "trigger", run.trigger);
		cJSON_AddStringToObject(o, "cycle_id", cy->cycle_id);
		cycle_emit(cy, "run_start", o);
	}
	cycle_schedule_step(cy, 0);
	return TRIGGER_STARTED;
fail:
	db_rollback(cy->db);
	if (inserted) {
		/* c's strings were replaced after the insert: the run row takes the engine's copies. */
		run.cycle_id = cy->cycle_id;
		run.resumed_from = cy->resumed_from[0] != '\0' ? cy->resumed_from : NULL;
		cycle_start_failed(cy, &run, *cause);
	}
	cursor_clear(&c);
	return TRIGGER_ERROR;
}

/* --- control ------------------------------------------------------------------------------------------------- */

static void
grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	cycle_abort_step(w->data);
}

enum trigger_result
cycle_trigger(struct cycle *cy, const char *trigger, const char *requested_by, bool full, char *run_id, size_t len,
    char **cause)
{
	enum trigger_result r = trigger_run(cy, trigger, requested_by, full, run_id, len, cause);

	cJSON_Delete(cy->trigger_flags);	/* one trigger's, whatever came of it */
	cy->trigger_flags = NULL;
	return r;
}

void
cycle_set_trigger_flag(struct cycle *cy, const char *flag)
{
	if (cy->trigger_flags == NULL)
		cy->trigger_flags = cJSON_CreateObject();
	cJSON_DeleteItemFromObjectCaseSensitive(cy->trigger_flags, flag);
	cJSON_AddBoolToObject(cy->trigger_flags, flag, true);
}

void
cycle_cancel(struct cycle *cy, const char *by)
{
	if (!cycle_busy(cy))
		return;
	cycle_set_state(cy, CYCLE_CANCELLING);
	snprintf(cy->cancel_by, sizeof cy->cancel_by, "%s", by ? by : "operator");
	log_info("run %s: cancel requested by %s; stopping at the next step boundary", cy->run_id, cy->cancel_by);
	if (cy->st == NULL) {
		/* Between steps (or waiting out a retry backoff): that is a boundary. */
		ev_timer_stop(cy->h->loop, &cy->next);
		cycle_run_interrupted(cy);
	}
}

void
cycle_stop(struct cycle *cy)
{
	if (!cycle_busy(cy))
		return;
	cycle_set_state(cy, CYCLE_STOPPING);
	if (cy->st == NULL) {
		ev_timer_stop(cy->h->loop, &cy->next);
		cycle_run_interrupted(cy);
		return;
	}
	log_info("run %s: stopping after the current step (at most %.0fs)", cy->run_id,
	    (double)cy->stop_grace_ms / 1000.0);
	ev_timer_stop(cy->h->loop, &cy->grace);
	ev_timer_init(&cy->grace, grace_cb, (double)cy->stop_grace_ms / 1000.0, 0.0);
	cy->grace.data = cy;
	ev_timer_start(cy->h->loop, &cy->grace);
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

	cJSON_AddStringToObject(out, "state", cycle_busy(cy) ? "running" : "idle");
	if (cycle_busy(cy)) {
		cJSON *run = cycle_progress(cy);

		cJSON_AddStringToObject(run, "cycle_id", cy->cycle_id);
		cJSON_AddStringToObject(run, "trigger", cy->trigger);
		cJSON_AddStringToObject(run, "started_at", cy->started_at);
		cJSON_AddBoolToObject(run, "full", cy->full);
		cJSON_AddNumberToObject(run, "step_attempts", cy->attempts);
		if (cycle_ending(cy))
			cJSON_AddStringToObject(run, "stopping", cy->state == CYCLE_CANCELLING ? "cancel" : "stop");
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
