/*
 * Alerts that reach the operator once per occurrence (daemon.h: daemon_alert_once).  A file of its own, below
 * daemon.c: the monitor (monitor.c) and the jobs raise alerts, and daemon.c drives the monitor, so the alert
 * cannot live in daemon.c without a call cycle between the two files.
 */
#include <sqlite3.h>
#include <stdio.h>

#include "daemon.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "timeutil.h"

static const char SQL_ALERT[] =
    "INSERT INTO sync_alerts (sync_type, kind, alert_key, created_at, detail) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (sync_type, kind, alert_key) DO NOTHING";

int
daemon_alert_once(struct daemon *d, const char *kind, const char *key, const char *subject, const char *body,
    char **cause)
{
	char now[ISO8601_LEN], mkey[512];
	sqlite3_stmt *st;
	int64_t id = -1;
	int fresh;

	if (db_begin(d->db, cause) == -1)
		return -1;
	if ((st = db_stmt(d->db, SQL_ALERT, cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, d->job->sync_type);
	db_bind_text(st, 2, kind);
	db_bind_text(st, 3, key);
	db_bind_text(st, 4, iso8601_now(now));
	db_bind_text(st, 5, subject);
	if (db_step_done(d->db, st, cause) == -1)
		goto fail;
	fresh = sqlite3_changes(db_handle(d->db)) > 0;
	if (fresh) {
		snprintf(mkey, sizeof mkey, "%s/alert/%s/%s", d->job->sync_type, kind, key);
		if ((id = outbox_queue(d->outbox, mkey, d->job->sync_type, NULL, subject, body, cause)) == -1)
			goto fail;
	}
	if (db_commit(d->db, cause) == -1)
		goto fail;
	if (fresh) {
		log_warnx("alert: %s", subject);
		outbox_deliver(d->outbox, id, 1, NULL, NULL);
	}
	return fresh;
fail:
	db_rollback(d->db);
	return -1;
}
