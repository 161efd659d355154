#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "mail.h"
#include "outbox.h"
#include "timeutil.h"
#include "xmalloc.h"

struct waiter {
	outbox_done_fn done;
	void *arg;
	SLIST_ENTRY(waiter) entry;
};

struct delivery {
	struct outbox *ob;
	int64_t id;
	int attempts_left;
	int attempt;
	ev_timer retry;
	char *message;
	SLIST_HEAD(, waiter) waiters;
	TAILQ_ENTRY(delivery) entry;
};

struct outbox {
	char sync_type[64];
	struct ev_loop *loop;
	struct db *db;
	struct mailer *m;
	int64_t retry_backoff_ms, queue_retry_ms, max_age_ms;
	TAILQ_HEAD(, delivery) active;
	int busy;
};

static const char SQL_QUEUE[] =
    "INSERT INTO mail_outbox (mail_key, sync_type, run_id, subject, message, status, created_at, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (mail_key) DO NOTHING";
static const char SQL_ID_BY_KEY[] = "SELECT id FROM mail_outbox WHERE mail_key = ?";
static const char SQL_GET[] = "SELECT status, message, subject FROM mail_outbox WHERE id = ?";
static const char SQL_SENT[] =
    "UPDATE mail_outbox SET status = 'sent', sent_at = ?, attempts = attempts + ?, last_error = NULL WHERE id = ?";
static const char SQL_FAILED[] =
    "UPDATE mail_outbox SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? WHERE id = ?";
/*
 * ops.db's outbox is shared by the daemons; each delivers only its own mail (in-flight tracking is per process, so
 * two daemons working one row could send it twice).
 */
static const char SQL_DUE[] =
    "SELECT id FROM mail_outbox WHERE status = 'pending' AND sync_type = ? AND next_attempt_at <= ? ORDER BY id"
    " LIMIT 20";
static const char SQL_DROP_OLD[] =
    "UPDATE mail_outbox SET status = 'dropped', last_error = coalesce(last_error, '') ||"
    " ' (dropped: undeliverable for too long)' WHERE status = 'pending' AND sync_type = ? AND created_at < ?"
    " RETURNING id, subject";

struct outbox *
outbox_new(struct ev_loop *loop, struct db *db, struct mailer *m, const struct config *cfg, const char *sync_type)
{
	struct outbox *ob = xcalloc(1, sizeof *ob);

	snprintf(ob->sync_type, sizeof ob->sync_type, "%s", sync_type);
	ob->loop = loop;
	ob->db = db;
	TAILQ_INIT(&ob->active);
	outbox_reconfigure(ob, m, cfg);
	return ob;
}

void
outbox_reconfigure(struct outbox *ob, struct mailer *m, const struct config *cfg)
{
	ob->m = m;
	ob->retry_backoff_ms = config_ms(cfg, "smtp", "retry_backoff");
	ob->queue_retry_ms = config_ms(cfg, "smtp", "queue_retry");
	ob->max_age_ms = config_ms(cfg, "smtp", "queue_max_age");
}

static void
delivery_free(struct delivery *d)
{
	struct waiter *w;

	ev_timer_stop(d->ob->loop, &d->retry);
	while ((w = SLIST_FIRST(&d->waiters)) != NULL) {
		SLIST_REMOVE_HEAD(&d->waiters, entry);
		free(w);
	}
	free(d->message);
	free(d);
}

void
outbox_free(struct outbox *ob)
{
	struct delivery *d;

	if (ob == NULL)
		return;
	if (ob->m != NULL)
		mailer_cancel_all(ob->m);
	while ((d = TAILQ_FIRST(&ob->active)) != NULL) {
		TAILQ_REMOVE(&ob->active, d, entry);
		delivery_free(d);
	}
	free(ob);
}

int
outbox_busy(const struct outbox *ob)
{
	return ob->busy;
}

int64_t
outbox_queue(struct outbox *ob, const char *key, const char *sync_type, const char *run_id, const char *subject,
    const char *body, char **cause)
{
	char now[ISO8601_LEN], *message, *clean_body, *clean_subject;
	sqlite3_stmt *st;
	int64_t id;
	int rc;

	iso8601_now(now);
	/* Belt and braces: nothing that reaches a mailbox may carry a secret, or an upstream's control characters. */
	clean_body = sanitize_dup(body, TEXT_KEEP_LINES);
	clean_subject = sanitize_dup(subject, 0);
	message = mail_compose(ob->m, key, clean_subject, clean_body);
	if ((st = db_stmt(ob->db, SQL_QUEUE, cause)) == NULL) {
		free(message);
		free(clean_body);
		free(clean_subject);
		return -1;
	}
	db_bind_text(st, 1, key);
	db_bind_text(st, 2, sync_type);
	db_bind_text(st, 3, run_id);
	db_bind_text(st, 4, clean_subject);
	db_bind_text(st, 5, message);
	db_bind_text(st, 6, now);
	db_bind_text(st, 7, now);
	rc = db_step_done(ob->db, st, cause);
	free(message);
	free(clean_body);
	free(clean_subject);
	if (rc == -1)
		return -1;
	if ((st = db_stmt(ob->db, SQL_ID_BY_KEY, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, key);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return db_error(ob->db, cause, "find queued mail");
	}
	id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return id;
}

/* Short transaction of its own: the outbox is never written inside a step's transaction from a callback. */
static void
record_result(struct outbox *ob, int64_t id, int attempts, const char *error)
{
	char now[ISO8601_LEN], next[ISO8601_LEN], *cause = NULL;
	sqlite3_stmt *st;

	iso8601_now(now);
	if (db_begin(ob->db, &cause) == -1)
		goto fail;
	if (error == NULL) {
		if ((st = db_stmt(ob->db, SQL_SENT, &cause)) == NULL)
			goto fail;
		db_bind_text(st, 1, now);
		db_bind_int(st, 2, attempts);
		db_bind_int(st, 3, id);
	} else {
		iso8601_fmt(clock_now() + ob->queue_retry_ms / 1000, next);
		if ((st = db_stmt(ob->db, SQL_FAILED, &cause)) == NULL)
			goto fail;
		db_bind_int(st, 1, attempts);
		db_bind_text(st, 2, error);
		db_bind_text(st, 3, next);
		db_bind_int(st, 4, id);
	}
	if (db_step_done(ob->db, st, &cause) == -1 || db_commit(ob->db, &cause) == -1)
		goto fail;
	return;
fail:
	db_rollback(ob->db);
	log_warnx("outbox: cannot record the delivery of mail %lld: %s", (long long)id, cause);
	free(cause);
}

static void finish_delivery(struct delivery *, const char *error);
static void try_send(struct delivery *);

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	try_send(w->data);
}

static void
sent_cb(const char *error, void *arg)
{
	struct delivery *d = arg;
	struct outbox *ob = d->ob;

	if (error == NULL) {
		record_result(ob, d->id, d->attempt, NULL);
		log_info("outbox: mail %lld delivered", (long long)d->id);
		finish_delivery(d, NULL);
		return;
	}
	log_warnx("outbox: mail %lld, attempt %d: %s", (long long)d->id, d->attempt, error);
	if (--d->attempts_left > 0) {
		double delay = (double)ob->retry_backoff_ms / 1000.0 * (double)(1 << (d->attempt - 1 < 10 ? d->attempt - 1 : 10));

		ev_timer_init(&d->retry, retry_cb, delay, 0.0);
		d->retry.data = d;
		ev_timer_start(ob->loop, &d->retry);
		return;
	}
	record_result(ob, d->id, d->attempt, error);
	finish_delivery(d, error);
}

static void
try_send(struct delivery *d)
{
	d->attempt++;
	if (mail_send(d->ob->m, d->message, sent_cb, d) == -1)
		sent_cb("the mail transfer could not be started", d);
}

static void
finish_delivery(struct delivery *d, const char *error)
{
	struct outbox *ob = d->ob;
	struct waiter *w;
	char *err = error ? xstrdup(error) : NULL;

	TAILQ_REMOVE(&ob->active, d, entry);
	ob->busy--;
	while ((w = SLIST_FIRST(&d->waiters)) != NULL) {
		SLIST_REMOVE_HEAD(&d->waiters, entry);
		w->done(err, w->arg);
		free(w);
	}
	delivery_free(d);
	free(err);
}

/* Report to a waiter from the loop, never from inside the caller. */
struct deferred {
	ev_timer t;
	outbox_done_fn done;
	void *arg;
	char *error;
};

static void
deferred_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct deferred *df = (struct deferred *)w;

	df->done(df->error, df->arg);
	free(df->error);
	free(df);
}

static void
defer(struct outbox *ob, outbox_done_fn done, void *arg, const char *error)
{
	struct deferred *df = xcalloc(1, sizeof *df);

	df->done = done;
	df->arg = arg;
	df->error = error ? xstrdup(error) : NULL;
	ev_timer_init(&df->t, deferred_cb, 0.0, 0.0);
	ev_timer_start(ob->loop, &df->t);
}

void
outbox_deliver(struct outbox *ob, int64_t id, int attempts, outbox_done_fn done, void *arg)
{
	struct delivery *d;
	struct waiter *w;
	sqlite3_stmt *st;
	char *cause = NULL, *status;
	int rc;

	TAILQ_FOREACH(d, &ob->active, entry) {
		if (d->id == id) {
			if (done != NULL) {
				w = xcalloc(1, sizeof *w);
				w->done = done;
				w->arg = arg;
				SLIST_INSERT_HEAD(&d->waiters, w, entry);
			}
			return;
		}
	}
	if ((st = db_stmt(ob->db, SQL_GET, &cause)) == NULL) {
		if (done)
			defer(ob, done, arg, cause);
		free(cause);
		return;
	}
	db_bind_int(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		if (done)
			defer(ob, done, arg, "queued mail not found");
		return;
	}
	status = xstrdup(db_col_text(st, 0));
	if (strcmp(status, "pending") != 0) {
		sqlite3_reset(st);
		/* Already sent (e.g. before a crash): do not send again. */
		if (done)
			defer(ob, done, arg, strcmp(status, "sent") == 0 ? NULL : "mail was dropped");
		free(status);
		return;
	}
	free(status);
	d = xcalloc(1, sizeof *d);
	d->ob = ob;
	d->id = id;
	d->message = xstrdup(db_col_text(st, 1));
	sqlite3_reset(st);
	d->attempts_left = attempts > 0 ? attempts : 1;
	ev_timer_init(&d->retry, retry_cb, 0.0, 0.0);
	SLIST_INIT(&d->waiters);
	if (done != NULL) {
		w = xcalloc(1, sizeof *w);
		w->done = done;
		w->arg = arg;
		SLIST_INSERT_HEAD(&d->waiters, w, entry);
	}
	TAILQ_INSERT_TAIL(&ob->active, d, entry);
	ob->busy++;
	if (!mailer_enabled(ob->m)) {
		/* No [smtp] url: say so loudly, keep the mail queued (so configuring SMTP later delivers it). */
		log_warnx("outbox: mail %lld not sent: [smtp] url is not set", (long long)id);
		d->attempts_left = 1;
		sent_cb("no mail server configured ([smtp] url is not set)", d);
		return;
	}
	try_send(d);
}

void
outbox_forget(struct outbox *ob, outbox_done_fn done, void *arg)
{
	struct delivery *d;
	struct waiter *w;

	TAILQ_FOREACH(d, &ob->active, entry) {
		SLIST_FOREACH(w, &d->waiters, entry) {
			if (w->done == done && w->arg == arg) {
				SLIST_REMOVE(&d->waiters, w, waiter, entry);
				free(w);
				return;
			}
		}
	}
}

void
outbox_kick(struct outbox *ob, bool all)
{
	char now[ISO8601_LEN], old[ISO8601_LEN], *cause = NULL;
	sqlite3_stmt *st;
	int64_t ids[20];
	int n = 0, i;

	if (!mailer_enabled(ob->m))
		return;
	iso8601_now(now);
	iso8601_fmt(clock_now() - ob->max_age_ms / 1000, old);
	if (db_begin(ob->db, &cause) == 0 && (st = db_stmt(ob->db, SQL_DROP_OLD, &cause)) != NULL) {
		db_bind_text(st, 1, ob->sync_type);
		db_bind_text(st, 2, old);
		while (sqlite3_step(st) == SQLITE_ROW)
			log_warnx("outbox: dropped mail %lld (\"%s\"): the mail server refused or was unreachable for "
			    "longer than [smtp] queue_max_age", (long long)sqlite3_column_int64(st, 0),
			    db_col_text(st, 1));
		sqlite3_reset(st);
		if (db_commit(ob->db, &cause) == -1)
			db_rollback(ob->db);
	} else
		db_rollback(ob->db);
	if (cause != NULL) {
		log_warnx("outbox: %s", cause);
		xfree(&cause);
	}
	if ((st = db_stmt(ob->db, SQL_DUE, &cause)) == NULL) {
		log_warnx("outbox: %s", cause);
		free(cause);
		return;
	}
	db_bind_text(st, 1, ob->sync_type);
	db_bind_text(st, 2, all ? "9999-12-31T23:59:59Z" : now);
	while (n < 20 && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	for (i = 0; i < n; i++)
		outbox_deliver(ob, ids[i], 1, NULL, NULL);
}
