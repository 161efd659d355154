/*
 * The cycle engine's private state, shared by cycle.c (the state machine) and cycle-corpus.c (the checkpoint in
 * rtopacks.db and the start-up check between the two databases).  Not for daemons: they see cycle.h only.
 */
#ifndef RTOPACKS_CYCLE_INT_H
#define RTOPACKS_CYCLE_INT_H

#include <cJSON.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "cycle.h"
#include "timeutil.h"

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

struct cycle {
	struct daemon *d;
	const struct job_def *job;
	struct db *db;
	char sql_cursor_ddl[1024], sql_cursor_init[256], sql_cursor_get[512], sql_cursor_set[512];

	bool running;
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
	bool cancel_req, stop_req;
	char cancel_by[64];
	char *last_error;
	char last_status[16];

	int step_retries;
	int64_t backoff_ms, backoff_max_ms, stop_grace_ms;

	cycle_listener_fn listener;
	void *larg;
};

/* cycle.c */
void cursor_clear(struct cursor *);
int cursor_store(struct cycle *, const struct cursor *, char **cause);
int phase_index(const struct job_def *, const char *name);

/* cycle-corpus.c: see there. */
int checkpoint_store(struct cycle *, const struct cursor *, const char *step, int64_t in, int64_t out, int64_t rej,
    char **cause);
int corpus_reconcile(struct cycle *, char **cause);

#endif
