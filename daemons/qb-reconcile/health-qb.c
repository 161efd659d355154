/* The QuickBooks connection for the monitor's metrics and syncctl doctor (health-qb.h). */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "daemon.h"
#include "db.h"
#include "health-qb.h"
#include "health.h"
#include "metrics.h"

/* --- the connection ------------------------------------------------------------------------------------------ */

bool
health_qb_state_ok(const char *state)
{
	/* qb-reconcile's states are connected | reconnect_required | not_connected (0002-billing.sql). */
	static const char *const good[] = { "connected", "ok", "active", "healthy", "authorized", NULL };
	size_t i;

	for (i = 0; good[i] != NULL; i++)
		if (strcmp(state, good[i]) == 0)
			return true;
	return false;
}

/*
 * Is column in table?  syncctl reads the table whatever qb-reconcile version made it: only the columns that are
 * there.
 */
static bool
has_column(struct db *db, const char *table, const char *col)
{
	sqlite3_stmt *st;
	bool found = false;

	if (sqlite3_prepare_v2(db_handle(db), "SELECT name FROM pragma_table_info(?)", -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while (!found && sqlite3_step(st) == SQLITE_ROW)
		found = strcmp((const char *)sqlite3_column_text(st, 0), col) == 0;
	sqlite3_finalize(st);
	return found;
}

int
health_qb(struct db *db, struct qb_health *q, char **cause)
{
	static const char *const cols[] = { "state", "refresh_expires_at", "refresh_hard_expires_at",
		"last_heartbeat_at", "last_heartbeat_ok" };
	char sql[512];
	sqlite3_stmt *st;
	size_t i, len;
	int rc;

	memset(q, 0, sizeof *q);
	q->last_heartbeat_ok = -1;
	if (!health_table_exists(db, "qb_connection"))
		return 0;
	/* Missing columns read as NULL, so an older or newer table shape still gives what it has. */
	len = (size_t)snprintf(sql, sizeof sql, "SELECT ");
	for (i = 0; i < 5; i++)
		len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s", i ? ", " : "",
		    has_column(db, "qb_connection", cols[i]) ? cols[i] : "NULL");
	snprintf(sql + len, sizeof sql - len, " FROM qb_connection LIMIT 1");
	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, cause, "qb_connection");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		q->present = true;
		snprintf(q->state, sizeof q->state, "%s", db_col_text(st, 0));
		q->refresh_expires = health_col_time(st, 1);
		q->refresh_hard_expires = health_col_time(st, 2);
		q->last_heartbeat = health_col_time(st, 3);
		/*
		 * qb-reconcile stores the time of the last heartbeat that worked (0002-billing.sql); a boolean column
		 * is read as such.  The last heartbeat worked if that time is the last attempt's.
		 */
		if (sqlite3_column_type(st, 4) == SQLITE_INTEGER)
			q->last_heartbeat_ok = sqlite3_column_int(st, 4) != 0;
		else if ((q->last_heartbeat_ok_at = health_col_time(st, 4)) != 0)
			q->last_heartbeat_ok = q->last_heartbeat == 0 || q->last_heartbeat_ok_at >= q->last_heartbeat;
		else if (q->last_heartbeat != 0)
			q->last_heartbeat_ok = 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(db, cause, "qb_connection");
	return 0;
}

/* --- metrics ------------------------------------------------------------------------------------------------ */

int
qbr_metrics(struct daemon *d, struct buf *out, char **cause)
{
	const char *daemon = d->job->daemon;
	struct qb_health qb;

	if (health_qb(d->db, &qb, cause) == -1)
		return -1;
	if (!qb.present)
		return 0;
	metrics_family(out, "qb_refresh_token_expiry_timestamp_seconds",
	    "Expiry of the QuickBooks refresh token: rolling (renewed by each heartbeat) and hard (5 years).");
	if (qb.refresh_expires != 0)
		metrics_sample(out, "qb_refresh_token_expiry_timestamp_seconds", daemon, "token", "rolling",
		    (long long)qb.refresh_expires);
	if (qb.refresh_hard_expires != 0)
		metrics_sample(out, "qb_refresh_token_expiry_timestamp_seconds", daemon, "token", "hard",
		    (long long)qb.refresh_hard_expires);
	if (qb.last_heartbeat != 0)
		metrics_gauge(out, "qb_last_heartbeat_timestamp_seconds", "Last QuickBooks token refresh attempt.",
		    daemon, (long long)qb.last_heartbeat);
	if (qb.last_heartbeat_ok >= 0)
		metrics_gauge(out, "qb_last_heartbeat_ok", "1 if the last QuickBooks token refresh worked.", daemon,
		    qb.last_heartbeat_ok);
	metrics_family(out, "qb_connection_state", "QuickBooks connection state (1 for the current state).");
	metrics_sample(out, "qb_connection_state", daemon, "state", qb.state[0] ? qb.state : "unknown", 1);
	metrics_gauge(out, "qb_connection_ok", "1 if the QuickBooks connection state means it works.", daemon,
	    health_qb_state_ok(qb.state));
	return 0;
}
