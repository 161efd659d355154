/*
 * The observatory: run rows (sync_runs) and step rows (sync_steps) in ops.db, which operators read with
 * `syncctl runs` / `syncctl steps` and filter by sync_type.  Writers run inside the caller's transaction; step rows
 * are always upserts on (run_id, sync_type, step).  Error texts pass through redact() before they are stored.
 */
#ifndef RTOPACKS_OBSERVATORY_H
#define RTOPACKS_OBSERVATORY_H

#include <stdbool.h>
#include <stdint.h>

struct db;

struct obs_run {
	const char *run_id, *sync_type, *cycle_id, *trigger, *requested_by, *resumed_from, *phase;
	bool full;
	const char *started_at;
};

struct obs_step {
	const char *run_id, *sync_type, *step, *status;
	int64_t records_in, records_out, rejected, attempts;
	const char *error;	/* NULL: keep what is there */
	const char *detail;	/* JSON or NULL */
	const char *started_at;
	const char *finished_at;	/* NULL while running */
};

/* A new run id "<sync_type>-<started_at>", with "-2", "-3"... if that second is taken.  out: 128 bytes. */
int obs_new_run_id(struct db *, const char *sync_type, const char *started_at, char *out, size_t len, char **cause);
int obs_run_insert(struct db *, const struct obs_run *, char **cause);
int obs_run_set_phase(struct db *, const char *run_id, const char *phase, char **cause);
/* Finish a run: status, error (may be NULL), finished_at; records in/out are summed from its step rows. */
int obs_run_finish(struct db *, const char *run_id, const char *status, const char *error, const char *finished_at,
    char **cause);
int obs_run_set_summary(struct db *, const char *run_id, const char *summary_json, int64_t changes, char **cause);
int obs_step_upsert(struct db *, const struct obs_step *, char **cause);
/* Set status/error/finished_at of one step row (keeping counters). */
int obs_step_finish(struct db *, const char *run_id, const char *sync_type, const char *step, const char *status,
    const char *error, const char *finished_at, char **cause);
/*
 * Runs of sync_type left 'running' by a process that is gone (the caller holds the job's instance lock, so every
 * such run is dead) become 'stale', with an error saying where they stopped.  Returns how many, or -1.
 */
int obs_mark_stale(struct db *, const char *sync_type, const char *now, char **cause);

#endif
