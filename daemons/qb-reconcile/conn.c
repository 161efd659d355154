/*
 * The qb_connection row: the QuickBooks connection as operators (`syncctl qb status`, `syncctl doctor`, metrics)
 * see it.  A mirror of the token store's expiries plus the heartbeat's outcome; never a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "db.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char SQL_READ[] =
    "SELECT state, coalesce(realm_id, ''), install_id, connection_generation FROM qb_connection WHERE id = 1";
static const char SQL_TOKENS[] =
    "UPDATE qb_connection SET state = 'connected', environment = ?1, realm_id = ?2, access_expires_at = ?3,"
    " refresh_expires_at = ?4, refresh_hard_expires_at = coalesce(?5, refresh_hard_expires_at),"
    " last_refresh_at = ?6, last_error = NULL, last_intuit_tid = coalesce(?7, last_intuit_tid),"
    " connection_generation = ?8, connected_at = CASE WHEN ?9 THEN ?6 ELSE coalesce(connected_at, ?6) END,"
    " updated_at = ?6 WHERE id = 1";
static const char SQL_STATE[] =
    "UPDATE qb_connection SET state = ?1, last_error = ?2, last_intuit_tid = coalesce(?3, last_intuit_tid),"
    " updated_at = ?4 WHERE id = 1";
static const char SQL_HEARTBEAT[] =
    "UPDATE qb_connection SET last_heartbeat_at = ?1, last_heartbeat_ok = CASE WHEN ?2 THEN ?1 ELSE"
    " last_heartbeat_ok END, last_error = CASE WHEN ?2 THEN NULL ELSE ?3 END, updated_at = ?1 WHERE id = 1";

int
conn_read(struct db *db, struct conn_info *ci, char **cause)
{
	sqlite3_stmt *st;

	memset(ci, 0, sizeof *ci);
	if ((st = db_stmt(db, SQL_READ, cause)) == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_error(db, cause, "read qb_connection");
	}
	snprintf(ci->state, sizeof ci->state, "%s", db_col_text(st, 0));
	snprintf(ci->realm_id, sizeof ci->realm_id, "%s", db_col_text(st, 1));
	snprintf(ci->install_id, sizeof ci->install_id, "%s", db_col_text(st, 2));
	ci->generation = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	return 0;
}

static const char *
fmt_or_null(time_t t, char buf[ISO8601_LEN])
{
	return t > 0 ? iso8601_fmt(t, buf) : NULL;
}

int
conn_tokens_stored(struct qbr *q, const struct qbr_tokens *t, bool new_connection, const char *tid, char **cause)
{
	struct db *db = q->d->db;
	sqlite3_stmt *st;
	char now[ISO8601_LEN], a[ISO8601_LEN], r[ISO8601_LEN], h[ISO8601_LEN];

	if (db_begin(db, cause) == -1)
		return -1;
	if ((st = db_stmt(db, SQL_TOKENS, cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, q->environment);
	db_bind_text(st, 2, t->realm_id);
	db_bind_text(st, 3, fmt_or_null(t->access_expires_at, a));
	db_bind_text(st, 4, fmt_or_null(t->refresh_expires_at, r));
	db_bind_text(st, 5, fmt_or_null(t->refresh_hard_expires_at, h));
	db_bind_text(st, 6, iso8601_now(now));
	db_bind_text(st, 7, tid);
	db_bind_int(st, 8, t->generation);
	db_bind_int(st, 9, new_connection ? 1 : 0);
	if (db_step_done(db, st, cause) == -1 || db_commit(db, cause) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	return -1;
}

int
conn_set_state(struct qbr *q, const char *state, const char *error, const char *tid, char **cause)
{
	struct db *db = q->d->db;
	sqlite3_stmt *st;
	char now[ISO8601_LEN];

	if (db_begin(db, cause) == -1)
		return -1;
	if ((st = db_stmt(db, SQL_STATE, cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, state);
	db_bind_text(st, 2, error);
	db_bind_text(st, 3, tid);
	db_bind_text(st, 4, iso8601_now(now));
	if (db_step_done(db, st, cause) == -1 || db_commit(db, cause) == -1)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	return -1;
}

int
conn_heartbeat(struct db *db, bool ok, const char *error, char **cause)
{
	sqlite3_stmt *st;
	char now[ISO8601_LEN];

	if ((st = db_stmt(db, SQL_HEARTBEAT, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, iso8601_now(now));
	db_bind_int(st, 2, ok ? 1 : 0);
	db_bind_text(st, 3, error);
	return db_step_done(db, st, cause);
}
