/*
 * Job health from ops.db and a schedule: the one implementation of "missed", "overrun" and "stuck" that both the
 * daemons' monitor (common/monitor.c) and `syncctl doctor` use, so they can never disagree.
 *
 *   due      the last scheduled time has passed but its grace has not, and no run has started since it
 *   missed   the last scheduled time whose grace has passed (and that is not before armed_at) saw no run: none
 *            started at or after it, and none was in progress at it.  A late run (a catch-up) clears it.
 *   overrun  a run is 'running' for longer than the schedule's max_runtime
 *   stuck    the cursor is not 'done', no run is in progress, and it has not moved for max_runtime
 * Only reads: the caller owns any transaction.
 */
#ifndef RTOPACKS_HEALTH_H
#define RTOPACKS_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct db;
struct schedule;

struct run_info {
	bool present;
	char run_id[128];
	char status[16];
	time_t started, finished;	/* finished 0 while running */
	int64_t records_in, records_out, changes;
};

struct health {
	/* Schedule (when one is given). */
	bool scheduled;
	time_t armed;			/* 0: never armed (no monitor row and no run) */
	time_t last_due;		/* last scheduled time <= now (0 if none) */
	time_t expected;		/* last scheduled time whose grace has passed (0 if none) */
	time_t next;			/* next scheduled time after now (0 if none) */
	bool due, missed;
	/* Runs. */
	struct run_info last, last_finished, last_success, running;
	bool overrun;
	/* Cursor. */
	bool have_cursor;
	char cycle_phase[64];
	char cursor_run_id[128];
	time_t cursor_updated;
	bool stuck;
};

/*
 * Fill h for sync_type at `now`.  s may be NULL (no schedule: only runs and cursor).  armed_at: the monitor's
 * arming time, 0 to look it up (sync_monitor, else the first run).  max_runtime_s: the overrun/stuck threshold
 * when s is NULL.  Returns 0, or -1 with *cause.
 */
int health_check(struct db *, const char *sync_type, const struct schedule *s, time_t now, time_t armed_at,
    int64_t max_runtime_s, struct health *h, char **cause);
/* The single word for status and metrics: missed > overrun > stuck > due > ok. */
const char *health_word(const struct health *);


/* An ISO 8601 column as Unix time; 0 for NULL or a value that does not parse. */
struct sqlite3_stmt;
time_t health_col_time(struct sqlite3_stmt *, int col);
/* Does table exist in ops.db (main)? */
bool health_table_exists(struct db *, const char *table);

#endif
