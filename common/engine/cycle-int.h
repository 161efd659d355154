/*
 * The cycle engine's private state, shared by its files (not for daemons: they see cycle.h only).  The files, each
 * calling only the ones listed after it (no call cycle between them: tests/foundation/test_layers.py):
 *
 *   cycle.c         the engine as the daemon drives it: set-up, recovery, trigger, cancel, stop, status
 *   notify.c        the completion mail phase (a phase like a job's: it uses the step API)
 *   step.c          the step API, running a step, its commit (step_done) or failure (step_fail), retries, the
 *                   step rows, a run that fails
 *   run.c           the run: the engine's state and its one setter, events, the run's end, the failure mail
 *   cycle-corpus.c  the checkpoint in rtopacks.db and the start-up check between the two databases
 *   cursor.c        the cursor row: load, store, commit (with the crash points of tests)
 */
#ifndef RTOPACKS_CYCLE_INT_H
#define RTOPACKS_CYCLE_INT_H

#include <cJSON.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "cycle.h"
#include "timeutil.h"

struct obs_run;
struct obs_step;

/* The committed cursor row (a copy in memory). */
struct cursor {
	char *phase;		/* cycle_phase: a phase name or "done" */
	char *run_id, *cycle_id;
	char *phase_cursor;
	char *cycle_state, *job_state;
	int full;
	int64_t seq, corpus_seq;
};

struct step {
	struct cycle *cy;
	int phase_idx;
	char *cursor;
	char *new_cursor;
	cJSON *cycle_state, *job_state;
	struct http_group *group;
	int64_t in, out, rejected;
	cJSON *detail;
	cJSON *summary;
	int64_t changes;
	char *status_override, *status_error;
	char *degraded;		/* step_set_run_degraded: why the run ends 'degraded' */
	bool tx;
	bool aborting;		/* the engine cancelled it: whatever it reports is rolled back */
	bool leaked_tx;		/* it held its transaction across the event loop */
	void (*on_abort)(void *);
	void *abort_arg;
};

/* The engine's state: changed by cycle_set_state() only. */
enum cycle_state {
	CYCLE_IDLE,		/* no run */
	CYCLE_RUNNING,		/* a run, stepping */
	CYCLE_STOPPING,		/* the daemon stops: the run ends 'cancelled' at the next boundary, resumed later */
	CYCLE_CANCELLING,	/* cancelled (cancel_by): the run ends 'cancelled' at the next step boundary */
};

struct cycle {
	const struct cycle_host *h;
	const struct job_def *job;
	struct db *db;
	char sql_cursor_ddl[1024], sql_cursor_init[256], sql_cursor_get[512], sql_cursor_set[512];

	enum cycle_state state;
	char run_id[128], cycle_id[128], trigger[16], requested_by[64], resumed_from[128];
	char started_at[ISO8601_LEN];
	bool full;
	double mono_start;
	int phase_idx;
	struct cursor cur;

	/* The current phase's step row in this run. */
	int row_phase_idx;
	int64_t ph_in, ph_out, ph_rej, ph_attempts;
	char ph_started[ISO8601_LEN];
	cJSON *ph_detail;
	int64_t run_in, run_out;

	struct step *st;
	int attempts;		/* failures of the current step */
	ev_timer next;
	ev_timer grace;
	char cancel_by[64];
	char *last_error;
	char last_status[16];

	int step_retries;
	int64_t backoff_ms, backoff_max_ms, stop_grace_ms;

	cycle_listener_fn listener;
	void *larg;

	cJSON *trigger_flags;	/* for the next trigger: {"republish": true}, written into its cycle state */
};

/* A run is in progress (in any state but idle). */
static inline bool
cycle_busy(const struct cycle *cy)
{
	return cy->state != CYCLE_IDLE;
}

/* A stop or a cancel is pending: the run ends at the next step boundary. */
static inline bool
cycle_ending(const struct cycle *cy)
{
	return cy->state == CYCLE_STOPPING || cy->state == CYCLE_CANCELLING;
}

/* cursor.c */
void cursor_clear(struct cursor *);
/* Build the cursor table's statements, create the table and its row if needed, and load it into cy->cur. */
int cursor_prepare(struct cycle *, char **cause);
int cursor_load(struct cycle *, struct cursor *, char **cause);
int cursor_store(struct cycle *, const struct cursor *, char **cause);
/* Commit a transaction that moves the cursor; label ("trigger" or the phase) names it for the crash points. */
int cursor_commit(struct cycle *, const char *label, char **cause);
int phase_index(const struct job_def *, const char *name);

/* cycle-corpus.c: see there. */
int checkpoint_store(struct cycle *, const struct cursor *, const char *step, int64_t in, int64_t out, int64_t rej,
    char **cause);
int corpus_reconcile(struct cycle *, char **cause);

/* run.c */
/*
 * The one setter of the engine's state.  A cancel outranks a stop: CYCLE_STOPPING asked for while cancelling
 * leaves the state CYCLE_CANCELLING (the run ends as cancelled by the operator, as it was asked first or last).
 */
void cycle_set_state(struct cycle *, enum cycle_state);
/* Send an event to the listener; data is consumed. */
void cycle_emit(struct cycle *, const char *event, cJSON *data);
/* The run's progress as the events and `status` show it (a new object). */
cJSON *cycle_progress(struct cycle *);
/* The run has ended (its rows are written): back to idle, tell the listener. */
void cycle_run_finished(struct cycle *, const char *status, const char *error);
/* End the run 'cancelled' at a step boundary (a cancel or a stop). */
void cycle_run_interrupted(struct cycle *);
/* The run's first commit failed: record it as failed in ops.db alone, with the failure mail. */
void cycle_start_failed(struct cycle *, const struct obs_run *, const char *error);
/* Queue the failure mail inside the transaction that records the failure: the outbox id, or -1 with *cause. */
int64_t cycle_failure_mail(struct cycle *, const char *phase, const char *error, char **cause);
/* The records rejected so far in this cycle (all its runs). */
int cycle_rejected(struct cycle *, int64_t *n, char **cause);

/* step.c */
/* Run the next step of the current phase after delay seconds. */
void cycle_schedule_step(struct cycle *, double delay);
/* Stop grace expired: cancel the current step; its report (rolled back) ends the run. */
void cycle_abort_step(struct cycle *);
/* What the engine got from the host (for the engine's own phases: notify.c). */
const struct cycle_host *step_host(struct step *);

#endif
