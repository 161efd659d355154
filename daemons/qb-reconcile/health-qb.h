/*
 * The QuickBooks connection as the operator's tools see it (ops.db table qb_connection, read-only): read by the
 * daemon's monitor for its metrics (qbr_metrics, a job hook) and by `syncctl doctor` (syncctl-qb.c).
 */
#ifndef RTOPACKS_HEALTH_QB_H
#define RTOPACKS_HEALTH_QB_H

#include <stdbool.h>
#include <time.h>

struct buf;
struct daemon;
struct db;

struct qb_health {
	bool present;			/* the table exists and has a row */
	char state[64];
	time_t refresh_expires, refresh_hard_expires, last_heartbeat;	/* 0: unknown */
	time_t last_heartbeat_ok_at;	/* last heartbeat that refreshed and stored the tokens (0: none/unknown) */
	int last_heartbeat_ok;		/* did the last heartbeat work: 1, 0, or -1 unknown */
};
int health_qb(struct db *, struct qb_health *, char **cause);
/* A state that means the connection works (connected, ok, active, ...); anything else needs the operator. */
bool health_qb_state_ok(const char *state);
/* job_def.metrics: the QuickBooks series after the shared ones (nothing written when it fails). */
int qbr_metrics(struct daemon *, struct buf *out, char **cause);

#endif
