/*
 * Billing in Cloudflare D1 ([qb-reconcile] billing_source = d1; issue 16; docs/qb-reconcile.md "Billing in D1").
 *
 * The contract tables (billing_customers, billing_invoices, billing_invoice_lines, qb_reconcile_issues and
 * qb_connection's non-secret columns) live in D1's ops database, where billing writes them.  ops.db stays the
 * journal of every QuickBooks request (requestid generations, attempts), so the push runs exactly as in local mode:
 *
 *   pull       (phase, after the heartbeat) first delivers every write-back still waiting, then copies the invoices
 *              to push (pending, failed: a Retry in the admin panel sets failed -> pending) with their lines and
 *              customers into ops.db, PULL_PAGE invoices per step, each page read in ONE D1 request (one snapshot)
 *              and committed with the phase cursor.  qb_d1_base keeps what D1 had (updated_at, status) and the cycle
 *              that pulled it; the push phase pushes only the invoices its cycle pulled.  The local journal wins
 *              for what only it knows (qb_invoice_id, qb_sync_token, the requestid generation: the larger one);
 *              billing's columns and the status come from D1.  An invoice that went failed|abandoned -> pending in
 *              D1 (a Retry) starts a new requestid generation, as `syncctl qb retry` does.  D1 unreachable (the
 *              write-backs or a page): nothing is pushed this cycle, the run ends degraded saying so.
 *   write-back triggers (schema/ops/0006) queue every outcome in qb_d1_writeback in the transaction that records it;
 *              a drain (after each push step, at the summary, on housekeeping) reads the current local rows and
 *              sends them to D1, 100 keys per request, and deletes what was sent unless it changed meanwhile.  Per
 *              invoice two statements: the QuickBooks facts (qb_invoice_id, qb_sync_token, max(qb_request_gen),
 *              amounts, qb_state, paid_at: billing never writes them) unconditionally, and the status
 *              (qb_sync_status, attempts, error, times, updated_at) only while D1 still has the updated_at and
 *              status of the pull, or of our own last write (compare-and-set): a newer billing edit (lines
 *              changed and pending again, a Retry) is never overwritten; the next pull takes it, and since the
 *              facts went back, the edit becomes a sparse update of the same QuickBooks invoice.  Every statement
 *              is safe to repeat (a lost answer, a 504 that committed, a crash before the local delete).
 *   retry      `syncctl qb retry ID` resets the invoice in D1 as the admin's Retry (POST /billing/qb-retry) does:
 *              failed|abandoned -> pending, attempts 0, error cleared, updated_at now; the next run pushes it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "control.h"
#include "cursorkv.h"
#include "cycle.h"
#include "d1-mirror.h"
#include "d1-sql.h"
#include "d1.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

#define PULL_PAGE 500		/* invoices per pull request (a few hundred KB of JSON) */
#define WB_KEYS 100		/* outbox keys per write-back request (2 statements per invoice) */
#define WB_COALESCE 0.2		/* seconds: a burst of commits becomes one request */

struct wbsent {
	char kind[12];
	int64_t key, gen;
	int cas_stmt;		/* invoice: index of the compare-and-set statement in the request, or -1 */
	char *new_updated, *new_status;
};

struct qbd1 {
	struct qbr *q;
	ev_timer kick;
	bool in_flight;
	int fails;
	double not_before;
	struct wbsent *sent;
	size_t nsent;
	/* One flush waiter (the pull or the summary step). */
	qbd1_flush_fn flush_cb;
	void *flush_arg;
	bool flush_failed_once;
};

static void drain(struct qbd1 *);

/* --- set-up --------------------------------------------------------------------------------------------------- */

static const char SQL_MODE[] = "UPDATE qb_d1_state SET mode = ?, pulling = 0 WHERE id = 1";

static void
kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	drain(w->data);
}

int
qbd1_setup(struct qbr *q, char **cause)
{
	struct db *db = q->d->db;
	sqlite3_stmt *st;

	if (q->d1b == NULL) {
		q->d1b = xcalloc(1, sizeof *q->d1b);
		q->d1b->q = q;
		ev_timer_init(&q->d1b->kick, kick_cb, 0.0, 0.0);
		q->d1b->kick.data = q->d1b;
	}
	if (db_begin(db, cause) == -1)
		return -1;
	if ((st = db_stmt(db, SQL_MODE, cause)) == NULL)
		goto fail;
	db_bind_text(st, 1, q->billing_d1 ? "d1" : "local");
	if (db_step_done(db, st, cause) == -1 || db_commit(db, cause) == -1)
		goto fail;
	if (q->billing_d1)
		log_info("billing source: the ops database in D1 (pull, push, write-back)");
	return 0;
fail:
	db_rollback(db);
	return -1;
}

static void
clear_sent(struct qbd1 *b)
{
	size_t i;

	for (i = 0; i < b->nsent; i++) {
		free(b->sent[i].new_updated);
		free(b->sent[i].new_status);
	}
	free(b->sent);
	b->sent = NULL;
	b->nsent = 0;
}

void
qbd1_fini(struct qbr *q)
{
	struct qbd1 *b = q->d1b;
	struct d1 *d1;

	if (b == NULL)
		return;
	ev_timer_stop(q->d->loop, &b->kick);
	/* Requests in flight (a write-back, a pull, a retry) end cancelled now, while b still exists (queued rows
	 * stay queued). */
	if (q->billing_d1 && (d1 = d1_mirror_client(q->d->mirror)) != NULL)
		d1_cancel_all(d1);
	clear_sent(b);
	free(b);
	q->d1b = NULL;
}

static struct d1_db *
ops_db(struct qbr *q)
{
	struct d1 *d1 = d1_mirror_client(q->d->mirror);

	return d1 != NULL ? d1_ops(d1) : NULL;
}

/* --- values --------------------------------------------------------------------------------------------------- */

/* A local column as an SQL literal for D1 (NULL when it has none: it cannot happen for our own rows). */
static void
lit_col(struct buf *out, sqlite3_stmt *st, int i)
{
	struct d1_value v;
	char why[128];

	memset(&v, 0, sizeof v);
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		v = D1_INT(sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		v = D1_REAL(sqlite3_column_double(st, i));
		break;
	case SQLITE_TEXT:
		v.type = D1V_TEXT;
		v.p = sqlite3_column_text(st, i);
		v.len = (size_t)sqlite3_column_bytes(st, i);
		break;
	default:
		v = D1_NULL;
		break;
	}
	if (d1_sql_literal(out, &v, why, sizeof why) == -1)
		buf_adds(out, "NULL");
}

static void
lit_text(struct buf *out, const char *s)
{
	struct d1_value v = s != NULL ? D1_TEXT(s) : D1_NULL;
	char why[128];

	if (d1_sql_literal(out, &v, why, sizeof why) == -1)
		buf_adds(out, "NULL");
}

/* Bind a value of a D1 answer row (JSON) to a local statement. */
static void
bind_json(sqlite3_stmt *st, int idx, const cJSON *v)
{
	if (cJSON_IsString(v))
		db_bind_text(st, idx, v->valuestring);
	else if (cJSON_IsNumber(v)) {
		if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9.0e15)
			db_bind_int(st, idx, (int64_t)v->valuedouble);
		else
			sqlite3_bind_double(st, idx, v->valuedouble);
	} else if (cJSON_IsBool(v))
		db_bind_int(st, idx, cJSON_IsTrue(v) ? 1 : 0);
	else
		sqlite3_bind_null(st, idx);
}

static const cJSON *
result_rows(const cJSON *result, int i)
{
	const cJSON *r = cJSON_GetArrayItem(result, i), *rows;

	rows = r != NULL ? cJSON_GetObjectItem(r, "results") : NULL;
	return cJSON_IsArray(rows) ? rows : NULL;
}

/* --- the write-back drain ---------------------------------------------------------------------------------- */

static const char SQL_WB_PENDING[] =
    "SELECT kind, key, gen FROM qb_d1_writeback ORDER BY CASE kind WHEN 'customer' THEN 0 WHEN 'invoice' THEN 1"
    " WHEN 'issue' THEN 2 ELSE 3 END, key LIMIT " "100";
static const char SQL_WB_CUSTOMER[] = "SELECT qb_customer_id FROM billing_customers WHERE id = ?";
static const char SQL_WB_INVOICE[] =
    "SELECT i.qb_sync_status, i.qb_attempts, i.qb_last_error, i.qb_last_attempt_at, i.qb_synced_at, i.updated_at,"
    " i.qb_invoice_id, i.qb_sync_token, i.qb_request_gen, i.qb_total_cents, i.qb_balance_cents, i.qb_state,"
    " i.qb_updated_at, i.paid_at, b.d1_updated_at, b.d1_status"
    " FROM billing_invoices i LEFT JOIN qb_d1_base b ON b.invoice_id = i.id WHERE i.id = ?";
static const char SQL_WB_ISSUE[] =
    "SELECT id, invoice_id, qb_invoice_id, kind, detail, our_cents, qb_cents, first_seen_at, last_seen_at,"
    " first_cycle_id, resolved_at FROM qb_reconcile_issues WHERE id = ?";
static const char SQL_WB_CONN[] =
    "SELECT state, environment, realm_id, connection_generation, connected_at, access_expires_at,"
    " refresh_expires_at, refresh_hard_expires_at, last_refresh_at, last_heartbeat_at, last_heartbeat_ok,"
    " last_error, last_intuit_tid, install_id, updated_at FROM qb_connection WHERE id = 1";
static const char *const conn_cols[] = { "id", "state", "environment", "realm_id", "connection_generation",
    "connected_at", "access_expires_at", "refresh_expires_at", "refresh_hard_expires_at", "last_refresh_at",
    "last_heartbeat_at", "last_heartbeat_ok", "last_error", "last_intuit_tid", "install_id", "updated_at" };
static const char SQL_WB_SENT[] = "DELETE FROM qb_d1_writeback WHERE kind = ? AND key = ? AND gen = ?";
static const char SQL_WB_FAILED[] =
    "UPDATE qb_d1_writeback SET attempts = attempts + 1, last_error = ? WHERE kind = ? AND key = ?";
static const char SQL_WB_BASE[] =
    "UPDATE qb_d1_base SET d1_updated_at = ?2, d1_status = ?3 WHERE invoice_id = ?1";
static const char SQL_WB_COUNT[] = "SELECT count(*) FROM qb_d1_writeback";

void
qbd1_kick(struct qbr *q, bool now)
{
	struct qbd1 *b = q->d1b;
	double wait;

	if (b == NULL || !q->billing_d1 || b->in_flight)
		return;
	wait = b->not_before - mono_now();
	if (wait < (now ? 0 : WB_COALESCE))
		wait = now ? 0 : WB_COALESCE;
	if (ev_is_active(&b->kick)) {
		if (ev_timer_remaining(q->d->loop, &b->kick) <= wait)
			return;
		ev_timer_stop(q->d->loop, &b->kick);
	}
	ev_timer_set(&b->kick, wait, 0.0);
	ev_timer_start(q->d->loop, &b->kick);
}

static void
flush_report(struct qbd1 *b, bool ok, const char *error)
{
	qbd1_flush_fn cb = b->flush_cb;
	void *arg = b->flush_arg;

	if (cb == NULL)
		return;
	b->flush_cb = NULL;
	b->flush_arg = NULL;
	cb(ok, error, arg);
}

static void
mark(struct qbd1 *b, const char *error, const cJSON *result)
{
	struct db *db = b->q->d->db;
	sqlite3_stmt *st;
	char *cause = NULL;
	size_t i;

	if (db_in_tx(db) || db_begin(db, &cause) == -1)
		goto fail;
	for (i = 0; i < b->nsent; i++) {
		struct wbsent *s = &b->sent[i];

		if (error != NULL) {
			if ((st = db_stmt(db, SQL_WB_FAILED, &cause)) == NULL)
				goto fail_tx;
			db_bind_text(st, 1, error);
			db_bind_text(st, 2, s->kind);
			db_bind_int(st, 3, s->key);
			if (db_step_done(db, st, &cause) == -1)
				goto fail_tx;
			continue;
		}
		if (s->cas_stmt >= 0) {
			const cJSON *r = cJSON_GetArrayItem(result, s->cas_stmt), *meta, *ch;
			double changes = 0;

			if (r != NULL && (meta = cJSON_GetObjectItem(r, "meta")) != NULL &&
			    cJSON_IsNumber(ch = cJSON_GetObjectItem(meta, "changes")))
				changes = ch->valuedouble;
			if (changes > 0) {
				if ((st = db_stmt(db, SQL_WB_BASE, &cause)) == NULL)
					goto fail_tx;
				db_bind_int(st, 1, s->key);
				db_bind_text(st, 2, s->new_updated);
				db_bind_text(st, 3, s->new_status);
				if (db_step_done(db, st, &cause) == -1)
					goto fail_tx;
			} else
				log_info("D1 write-back: invoice %" PRId64 " was changed in D1 since it was pulled (a billing "
				    "edit or a Retry): its status there stays as billing set it, the QuickBooks ids and amounts "
				    "went back; the next pull takes the edit", s->key);
		}
		if ((st = db_stmt(db, SQL_WB_SENT, &cause)) == NULL)
			goto fail_tx;
		db_bind_text(st, 1, s->kind);
		db_bind_int(st, 2, s->key);
		db_bind_int(st, 3, s->gen);
		if (db_step_done(db, st, &cause) == -1)
			goto fail_tx;
	}
	if (db_commit(db, &cause) == -1)
		goto fail_tx;
	return;
fail_tx:
	db_rollback(db);
fail:
	/* The rows stay queued and go out again: harmless, every statement is safe to repeat. */
	log_warnx("D1 write-back: cannot update qb_d1_writeback: %s", cause ? cause : "a transaction is open");
	free(cause);
}

static void
on_sent(const struct d1_result *r, void *arg)
{
	struct qbd1 *b = arg;
	struct qbr *q = b->q;
	double delay;
	long bo = 1000, bomax = 60000;

	b->in_flight = false;
	if (r->status == D1_ERR_CANCELLED) {
		clear_sent(b);
		flush_report(b, false, "cancelled");
		return;
	}
	if (r->status == D1_OK) {
		mark(b, NULL, r->result);
		if (b->fails > 0)
			log_info("D1 write-back: the ops database answers again; %zu rows sent", b->nsent);
		b->fails = 0;
		b->not_before = 0;
		clear_sent(b);
		/* The rest, or report the flush: from the loop, not from inside D1's callback. */
		ev_timer_stop(q->d->loop, &b->kick);
		ev_timer_set(&b->kick, 0.0, 0.0);
		ev_timer_start(q->d->loop, &b->kick);
		return;
	}
	mark(b, r->error, NULL);
	b->fails++;
	delay = (double)bo / 1000.0 * pow(2.0, b->fails - 1);
	if (delay > (double)bomax / 1000.0)
		delay = (double)bomax / 1000.0;
	b->not_before = mono_now() + delay;
	log_warnx("D1 write-back: %zu rows not delivered, kept for later (next try in %.0fs): %s", b->nsent, delay,
	    r->error);
	clear_sent(b);
	flush_report(b, false, r->error);
	qbd1_kick(q, false);
}

static int
add_invoice(struct qbd1 *b, struct buf *sql, struct wbsent *s, int *nstmt, char **cause)
{
	struct db *db = b->q->d->db;
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, SQL_WB_INVOICE, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, s->key);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;	/* gone locally: nothing to send */
		return db_error(db, cause, "qb_d1_writeback");
	}
	/* The QuickBooks facts: billing never writes them, so they always go back. */
	buf_adds(sql, "UPDATE billing_invoices SET qb_invoice_id = coalesce(");
	lit_col(sql, st, 6);
	buf_adds(sql, ", qb_invoice_id), qb_sync_token = coalesce(");
	lit_col(sql, st, 7);
	buf_adds(sql, ", qb_sync_token), qb_request_gen = max(qb_request_gen, ");
	lit_col(sql, st, 8);
	buf_adds(sql, "), qb_total_cents = ");
	lit_col(sql, st, 9);
	buf_adds(sql, ", qb_balance_cents = ");
	lit_col(sql, st, 10);
	buf_adds(sql, ", qb_state = ");
	lit_col(sql, st, 11);
	buf_adds(sql, ", qb_updated_at = ");
	lit_col(sql, st, 12);
	buf_adds(sql, ", paid_at = ");
	lit_col(sql, st, 13);
	buf_printf(sql, " WHERE id = %" PRId64 ";\n", s->key);
	(*nstmt)++;
	s->cas_stmt = -1;
	if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
		/* The status, compare-and-set: only over what D1 had at the pull (or after our last write), or over
		 * this very write (a repeat). */
		buf_adds(sql, "UPDATE billing_invoices SET qb_sync_status = ");
		lit_col(sql, st, 0);
		buf_adds(sql, ", qb_attempts = ");
		lit_col(sql, st, 1);
		buf_adds(sql, ", qb_last_error = ");
		lit_col(sql, st, 2);
		buf_adds(sql, ", qb_last_attempt_at = ");
		lit_col(sql, st, 3);
		buf_adds(sql, ", qb_synced_at = ");
		lit_col(sql, st, 4);
		buf_adds(sql, ", updated_at = ");
		lit_col(sql, st, 5);
		buf_printf(sql, " WHERE id = %" PRId64 " AND updated_at IN (", s->key);
		lit_col(sql, st, 14);
		buf_adds(sql, ", ");
		lit_col(sql, st, 5);
		buf_adds(sql, ") AND qb_sync_status IN (");
		lit_col(sql, st, 15);
		buf_adds(sql, ", ");
		lit_col(sql, st, 0);
		buf_adds(sql, ");\n");
		s->cas_stmt = (*nstmt)++;
		s->new_updated = xstrdup(db_col_text(st, 5));
		s->new_status = xstrdup(db_col_text(st, 0));
	}
	sqlite3_reset(st);
	return 1;
}

static int
add_customer(struct qbd1 *b, struct buf *sql, struct wbsent *s, int *nstmt, char **cause)
{
	struct db *db = b->q->d->db;
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, SQL_WB_CUSTOMER, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, s->key);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL) {
		sqlite3_reset(st);
		return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(db, cause, "qb_d1_writeback");
	}
	buf_adds(sql, "UPDATE billing_customers SET qb_customer_id = ");
	lit_col(sql, st, 0);
	buf_printf(sql, " WHERE id = %" PRId64 ";\n", s->key);
	(*nstmt)++;
	s->cas_stmt = -1;
	sqlite3_reset(st);
	return 1;
}

static int
add_issue(struct qbd1 *b, struct buf *sql, struct wbsent *s, int *nstmt, char **cause)
{
	struct db *db = b->q->d->db;
	sqlite3_stmt *st;
	int rc, i;

	if ((st = db_stmt(db, SQL_WB_ISSUE, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, s->key);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : db_error(db, cause, "qb_d1_writeback");
	}
	/* Only for an invoice D1 has (its foreign key would refuse the whole request otherwise). */
	buf_adds(sql, "INSERT INTO qb_reconcile_issues (id, invoice_id, qb_invoice_id, kind, detail, our_cents, qb_cents,"
	    " first_seen_at, last_seen_at, first_cycle_id, resolved_at) SELECT ");
	for (i = 0; i < 11; i++) {
		if (i > 0)
			buf_adds(sql, ", ");
		lit_col(sql, st, i);
	}
	buf_printf(sql, " WHERE EXISTS (SELECT 1 FROM billing_invoices WHERE id = %" PRId64 ") ON CONFLICT (id) DO UPDATE"
	    " SET qb_invoice_id = excluded.qb_invoice_id, detail = excluded.detail, our_cents = excluded.our_cents,"
	    " qb_cents = excluded.qb_cents, last_seen_at = excluded.last_seen_at, resolved_at = excluded.resolved_at;\n",
	    (int64_t)sqlite3_column_int64(st, 1));
	(*nstmt)++;
	s->cas_stmt = -1;
	sqlite3_reset(st);
	return 1;
}

static int
add_connection(struct qbd1 *b, struct buf *sql, struct wbsent *s, int *nstmt, char **cause)
{
	struct db *db = b->q->d->db;
	struct d1_upsert *u;
	struct d1_value v[16];
	sqlite3_stmt *st;
	char why[256];
	int rc, i;

	if ((st = db_stmt(db, SQL_WB_CONN, cause)) == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? 0 : db_error(db, cause, "qb_d1_writeback");
	}
	if ((u = d1_upsert_new("qb_connection", conn_cols, 16, 1, 0)) == NULL)
		fatalx("D1 write-back: qb_connection columns");
	v[0] = D1_INT(1);
	for (i = 0; i < 15; i++) {
		memset(&v[i + 1], 0, sizeof v[i + 1]);
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v[i + 1] = D1_INT(sqlite3_column_int64(st, i));
			break;
		case SQLITE_TEXT:
			v[i + 1].type = D1V_TEXT;
			v[i + 1].p = sqlite3_column_text(st, i);
			v[i + 1].len = (size_t)sqlite3_column_bytes(st, i);
			break;
		default:
			v[i + 1] = D1_NULL;
			break;
		}
	}
	rc = d1_upsert_row(u, sql, v, why, sizeof why);
	d1_upsert_end(u, sql);
	d1_upsert_free(u);
	sqlite3_reset(st);
	if (rc == -1) {
		log_warnx("D1 write-back: the connection row not sent: %s", why);
		return 0;
	}
	(*nstmt)++;
	s->cas_stmt = -1;
	return 1;
}

static void
drain(struct qbd1 *b)
{
	struct qbr *q = b->q;
	struct db *db = q->d->db;
	struct d1_db *ops;
	struct d1_query dq;
	struct buf sql;
	sqlite3_stmt *st;
	char *cause = NULL;
	int rc, nstmt = 0, rows = 0;
	size_t i;

	if (!q->billing_d1 || b->in_flight)
		return;
	if (db_in_tx(db)) {
		/* A step's transaction is open: after it. */
		ev_timer_stop(q->d->loop, &b->kick);
		ev_timer_set(&b->kick, 0.05, 0.0);
		ev_timer_start(q->d->loop, &b->kick);
		return;
	}
	if (b->flush_cb == NULL && mono_now() < b->not_before) {
		qbd1_kick(q, true);
		return;
	}
	clear_sent(b);
	if ((st = db_stmt(db, SQL_WB_PENDING, &cause)) == NULL)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct wbsent *s;

		b->sent = xreallocarray(b->sent, b->nsent + 1, sizeof *b->sent);
		s = &b->sent[b->nsent++];
		memset(s, 0, sizeof *s);
		snprintf(s->kind, sizeof s->kind, "%s", db_col_text(st, 0));
		s->key = sqlite3_column_int64(st, 1);
		s->gen = sqlite3_column_int64(st, 2);
		s->cas_stmt = -1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		db_error(db, &cause, "qb_d1_writeback");
		goto fail;
	}
	if (b->nsent == 0) {
		flush_report(b, true, NULL);
		return;
	}
	if ((ops = ops_db(q)) == NULL) {
		xasprintf(&cause, "[d1] has no ops database: write-backs cannot be delivered");
		goto fail;
	}
	buf_init(&sql);
	for (i = 0; i < b->nsent; i++) {
		struct wbsent *s = &b->sent[i];

		if (strcmp(s->kind, "invoice") == 0)
			rc = add_invoice(b, &sql, s, &nstmt, &cause);
		else if (strcmp(s->kind, "customer") == 0)
			rc = add_customer(b, &sql, s, &nstmt, &cause);
		else if (strcmp(s->kind, "issue") == 0)
			rc = add_issue(b, &sql, s, &nstmt, &cause);
		else
			rc = add_connection(b, &sql, s, &nstmt, &cause);
		if (rc == -1) {
			buf_free(&sql);
			goto fail;
		}
		rows += rc;
	}
	if (rows == 0) {
		buf_free(&sql);
		mark(b, NULL, NULL);
		clear_sent(b);
		drain(b);
		return;
	}
	memset(&dq, 0, sizeof dq);
	dq.sql = sql.data;
	dq.sql_len = sql.len;
	dq.what = "qb-reconcile write-back";
	dq.on_done = on_sent;
	dq.arg = b;
	b->in_flight = true;
	d1_query(ops, &dq);
	buf_free(&sql);
	return;
fail:
	log_warnx("D1 write-back: %s", cause);
	clear_sent(b);
	b->fails++;
	b->not_before = mono_now() + 60.0;
	flush_report(b, false, cause);
	free(cause);
}

void
qbd1_flush(struct qbr *q, qbd1_flush_fn cb, void *arg)
{
	struct qbd1 *b = q->d1b;

	b->flush_cb = cb;
	b->flush_arg = arg;
	if (b->in_flight)
		return;		/* on_sent goes on from there */
	ev_timer_stop(q->d->loop, &b->kick);
	/* From the loop, never from inside this call. */
	b->not_before = 0;
	ev_timer_set(&b->kick, 0.0, 0.0);
	ev_timer_start(q->d->loop, &b->kick);
}

void
qbd1_flush_forget(struct qbr *q, void *arg)
{
	if (q->d1b != NULL && q->d1b->flush_arg == arg) {
		q->d1b->flush_cb = NULL;
		q->d1b->flush_arg = NULL;
	}
}

int64_t
qbd1_waiting(struct db *db)
{
	sqlite3_stmt *st;
	int64_t n = 0;

	if ((st = db_stmt(db, SQL_WB_COUNT, NULL)) == NULL)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

/* --- the pull phase ------------------------------------------------------------------------------------------- */

#define PULL_IDS "SELECT id FROM billing_invoices WHERE qb_sync_status IN ('pending', 'failed') AND id > %" PRId64 \
    " ORDER BY id LIMIT %d"

static const char SQL_PULLING[] = "UPDATE qb_d1_state SET pulling = ? WHERE id = 1";
static const char SQL_UP_CUSTOMER[] =
    "INSERT INTO billing_customers (id, rto_code, display_name, email, is_test, qb_customer_id, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, coalesce(?5, 0), ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET rto_code = excluded.rto_code,"
    " display_name = excluded.display_name, email = excluded.email, is_test = excluded.is_test,"
    " qb_customer_id = coalesce(excluded.qb_customer_id, billing_customers.qb_customer_id),"
    " created_at = excluded.created_at, updated_at = excluded.updated_at";
/* Billing's columns and the status from D1; what only the journal knows from ops.db (the larger generation). */
static const char SQL_UP_INVOICE[] =
    "INSERT INTO billing_invoices (id, customer_id, doc_number, txn_date, due_date, currency, total_cents, memo,"
    " is_test, qb_sync_status, qb_invoice_id, qb_sync_token, qb_attempts, qb_request_gen, qb_last_error,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, coalesce(?6, 'AUD'), ?7, ?8, coalesce(?9, 0), ?10, ?11,"
    " ?12, coalesce(?13, 0), coalesce(?14, 0), ?15, ?16, ?17)"
    " ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, doc_number = excluded.doc_number,"
    " txn_date = excluded.txn_date, due_date = excluded.due_date, currency = excluded.currency,"
    " total_cents = excluded.total_cents, memo = excluded.memo, is_test = excluded.is_test,"
    " qb_request_gen = CASE WHEN billing_invoices.qb_sync_status IN ('failed', 'abandoned')"
    " AND excluded.qb_sync_status = 'pending' THEN max(billing_invoices.qb_request_gen + 1, excluded.qb_request_gen)"
    " ELSE max(billing_invoices.qb_request_gen, excluded.qb_request_gen) END,"
    " qb_sync_status = excluded.qb_sync_status, qb_attempts = excluded.qb_attempts,"
    " qb_last_error = excluded.qb_last_error,"
    " qb_sync_token = CASE WHEN billing_invoices.qb_invoice_id IS NOT NULL THEN billing_invoices.qb_sync_token"
    " ELSE excluded.qb_sync_token END,"
    " qb_invoice_id = coalesce(billing_invoices.qb_invoice_id, excluded.qb_invoice_id),"
    " created_at = excluded.created_at, updated_at = excluded.updated_at";
static const char SQL_UP_BASE[] =
    "INSERT INTO qb_d1_base (invoice_id, d1_updated_at, d1_status, cycle_id, pulled_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (invoice_id) DO UPDATE SET d1_updated_at = excluded.d1_updated_at, d1_status = excluded.d1_status,"
    " cycle_id = excluded.cycle_id, pulled_at = excluded.pulled_at";
static const char SQL_DEL_LINES[] = "DELETE FROM billing_invoice_lines WHERE invoice_id = ?";
static const char SQL_ADD_LINE[] =
    "INSERT INTO billing_invoice_lines (invoice_id, line_no, item, description, quantity, unit_price_cents,"
    " amount_cents) VALUES (?1, ?2, ?3, ?4, coalesce(?5, 1), ?6, ?7)";

static const char *const inv_fields[] = { "id", "customer_id", "doc_number", "txn_date", "due_date", "currency",
    "total_cents", "memo", "is_test", "qb_sync_status", "qb_invoice_id", "qb_sync_token", "qb_attempts",
    "qb_request_gen", "qb_last_error", "created_at", "updated_at" };
static const char *const cust_fields[] = { "id", "rto_code", "display_name", "email", "is_test", "qb_customer_id",
    "created_at", "updated_at" };
static const char *const line_fields[] = { "invoice_id", "line_no", "item", "description", "quantity",
    "unit_price_cents", "amount_cents" };
#define NELEM(a) (sizeof (a) / sizeof (a)[0])

struct pull {
	struct step *st;	/* NULL once the step was aborted (a late answer only frees this) */
	struct qbr *q;
	int64_t after;
	bool waiting;
};

static void
d1_unreachable(struct step *st, const char *error)
{
	char msg[1024];

	snprintf(msg, sizeof msg, "billing in D1 could not be read (%s): nothing is pushed in this run", error);
	cJSON_DeleteItemFromObject(step_cycle_state(st), "d1_error");
	cJSON_AddStringToObject(step_cycle_state(st), "d1_error", msg);
	log_warnx("pull: %s", msg);
	step_set_status(st, "failed", msg);
	step_done(st, STEP_PHASE_DONE);
}

static int
run_rows(struct db *db, const char *sql, const cJSON *rows, const char *const *fields, size_t n, char **cause)
{
	const cJSON *row;
	sqlite3_stmt *st;
	size_t i;

	cJSON_ArrayForEach(row, rows) {
		if ((st = db_stmt(db, sql, cause)) == NULL)
			return -1;
		for (i = 0; i < n; i++)
			bind_json(st, (int)i + 1, cJSON_GetObjectItem(row, fields[i]));
		if (db_step_done(db, st, cause) == -1)
			return -1;
	}
	return 0;
}

static int
set_pulling(struct db *db, int on, char **cause)
{
	sqlite3_stmt *st;

	if ((st = db_stmt(db, SQL_PULLING, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, on);
	return db_step_done(db, st, cause);
}

static void
pull_got(const struct d1_result *r, void *arg)
{
	struct pull *p = arg;
	struct step *st = p->st;
	const cJSON *invs, *lines, *custs, *row;
	struct ckv_builder kb;
	char *cause = NULL, now[ISO8601_LEN];
	struct db *db;
	sqlite3_stmt *s;
	int64_t last = p->after, n = 0;

	if (st == NULL) {
		free(p);
		return;
	}
	step_on_abort(st, NULL, NULL);
	if (r->status != D1_OK) {
		free(p);
		d1_unreachable(st, r->error);
		return;
	}
	invs = result_rows(r->result, 0);
	lines = result_rows(r->result, 1);
	custs = result_rows(r->result, 2);
	if (invs == NULL || lines == NULL || custs == NULL) {
		free(p);
		d1_unreachable(st, "D1 answered the pull without its three result sets");
		return;
	}
	if ((db = step_db(st, &cause)) == NULL || set_pulling(db, 1, &cause) == -1 ||
	    run_rows(db, SQL_UP_CUSTOMER, custs, cust_fields, NELEM(cust_fields), &cause) == -1 ||
	    run_rows(db, SQL_UP_INVOICE, invs, inv_fields, NELEM(inv_fields), &cause) == -1)
		goto fail;
	iso8601_now(now);
	cJSON_ArrayForEach(row, invs) {
		const cJSON *id = cJSON_GetObjectItem(row, "id");

		if (!cJSON_IsNumber(id))
			continue;
		n++;
		if ((int64_t)id->valuedouble > last)
			last = (int64_t)id->valuedouble;
		if ((s = db_stmt(db, SQL_DEL_LINES, &cause)) == NULL)
			goto fail;
		db_bind_int(s, 1, (int64_t)id->valuedouble);
		if (db_step_done(db, s, &cause) == -1 || (s = db_stmt(db, SQL_UP_BASE, &cause)) == NULL)
			goto fail;
		db_bind_int(s, 1, (int64_t)id->valuedouble);
		bind_json(s, 2, cJSON_GetObjectItem(row, "updated_at"));
		bind_json(s, 3, cJSON_GetObjectItem(row, "qb_sync_status"));
		db_bind_text(s, 4, step_cycle_id(st));
		db_bind_text(s, 5, now);
		if (db_step_done(db, s, &cause) == -1)
			goto fail;
	}
	if (run_rows(db, SQL_ADD_LINE, lines, line_fields, NELEM(line_fields), &cause) == -1 ||
	    set_pulling(db, 0, &cause) == -1)
		goto fail;
	cstate_add(st, "pulled", n);
	step_count(st, n, n);
	step_detail_add(st, "pulled", n);
	step_detail_add(st, "d1_rows_read", (int64_t)r->rows_read);
	ckv_init(&kb);
	ckv_put_i64(&kb, "after", last);
	step_set_cursor(st, "%s", ckv_str(&kb));
	free(p);
	step_done(st, n < PULL_PAGE ? STEP_PHASE_DONE : STEP_MORE);
	return;
fail:
	free(p);
	step_fail(st, STEP_RETRY, "pull: %s", cause);
	free(cause);
}

static void
pull_abort(void *arg)
{
	struct pull *p = arg;
	struct step *st = p->st;

	p->st = NULL;
	if (p->waiting) {
		/* Waiting for the flush: forget it, nothing will call back. */
		qbd1_flush_forget(p->q, p);
		free(p);
	}
	step_fail(st, STEP_RETRY, "stopped");
}

static void
pull_page(struct pull *p)
{
	struct d1_db *ops = ops_db(p->q);
	struct d1_query dq;
	struct buf sql;

	if (ops == NULL) {
		struct step *st = p->st;

		step_on_abort(st, NULL, NULL);
		free(p);
		d1_unreachable(st, "[d1] has no ops database");
		return;
	}
	buf_init(&sql);
	buf_printf(&sql, "SELECT id, customer_id, doc_number, txn_date, due_date, currency, total_cents, memo, is_test,"
	    " qb_sync_status, qb_invoice_id, qb_sync_token, qb_attempts, qb_request_gen, qb_last_error, created_at,"
	    " updated_at FROM billing_invoices WHERE id IN (" PULL_IDS ") ORDER BY id;\n", p->after, PULL_PAGE);
	buf_printf(&sql, "SELECT invoice_id, line_no, item, description, quantity, unit_price_cents, amount_cents"
	    " FROM billing_invoice_lines WHERE invoice_id IN (" PULL_IDS ") ORDER BY invoice_id, line_no;\n", p->after,
	    PULL_PAGE);
	buf_printf(&sql, "SELECT id, rto_code, display_name, email, is_test, qb_customer_id, created_at, updated_at"
	    " FROM billing_customers WHERE id IN (SELECT customer_id FROM billing_invoices WHERE id IN (" PULL_IDS "))",
	    p->after, PULL_PAGE);
	memset(&dq, 0, sizeof dq);
	dq.sql = sql.data;
	dq.sql_len = sql.len;
	dq.what = "pull invoices to push";
	dq.on_done = pull_got;
	dq.arg = p;
	d1_query(ops, &dq);
	buf_free(&sql);
}

static void
pull_flushed(bool ok, const char *error, void *arg)
{
	struct pull *p = arg;
	struct step *st = p->st;
	char msg[600];

	p->waiting = false;
	if (st == NULL) {
		free(p);
		return;
	}
	if (!ok) {
		step_on_abort(st, NULL, NULL);
		free(p);
		snprintf(msg, sizeof msg, "the write-backs of earlier runs could not be delivered first: %s", error);
		d1_unreachable(st, msg);
		return;
	}
	pull_page(p);
}

void
phase_pull(struct step *st)
{
	struct qbr *q = step_job(st);
	struct pull *p;
	struct ckv c;
	int64_t after = 0;
	const char *cur = step_cursor(st);

	if (!q->billing_d1) {
		step_set_status(st, "complete", "billing_source = local: nothing to pull");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if (*cur != '\0' && (ckv_parse(&c, cur) == -1 || !ckv_get_i64(&c, "after", 0, INT64_MAX, &after)))
		after = 0;
	p = xcalloc(1, sizeof *p);
	p->st = st;
	p->q = q;
	p->after = after;
	step_on_abort(st, pull_abort, p);
	if (*cur == '\0') {
		/* Outcomes not yet in D1 go first: a pull over them would read an older state. */
		cJSON_DeleteItemFromObject(step_cycle_state(st), "d1_error");
		p->waiting = true;
		qbd1_flush(q, pull_flushed, p);
		return;
	}
	pull_page(p);
}

/* --- `syncctl qb retry` in D1 mode ------------------------------------------------------------------------- */

struct d1retry {
	struct qbr *q;
	uint64_t client;
	int64_t id;
};

static void
retry_got(const struct d1_result *r, void *arg)
{
	struct d1retry *x = arg;
	struct ctl_client *c = x->q->d->control != NULL ? ctl_client_find(x->q->d->control, x->client) : NULL;
	const cJSON *rows, *row;
	cJSON *out;
	char msg[256];

	if (c == NULL || r->status == D1_ERR_CANCELLED) {
		free(x);
		return;
	}
	if (r->status != D1_OK) {
		ctl_reply_error(c, "failed", r->error, NULL);
		free(x);
		return;
	}
	rows = result_rows(r->result, 0);
	row = rows != NULL ? cJSON_GetArrayItem(rows, 0) : NULL;
	if (row == NULL) {
		rows = result_rows(r->result, 1);
		row = rows != NULL ? cJSON_GetArrayItem(rows, 0) : NULL;
		if (row == NULL)
			ctl_reply_error(c, "not_found", "no such invoice in D1", NULL);
		else {
			const cJSON *sv = cJSON_GetObjectItem(row, "qb_sync_status");
			const char *status = cJSON_IsString(sv) ? sv->valuestring : "?";

			snprintf(msg, sizeof msg, "invoice %" PRId64 " is %s in D1: only a failed or abandoned invoice is "
			    "reset", x->id, status);
			ctl_reply_error(c, strcmp(status, "synced") == 0 ? "already_synced" : "not_failed", msg, NULL);
		}
		free(x);
		return;
	}
	out = cJSON_CreateObject();
	cJSON_AddNumberToObject(out, "invoice_id", (double)x->id);
	if (cJSON_IsString(cJSON_GetObjectItem(row, "doc_number")))
		cJSON_AddStringToObject(out, "doc_number", cJSON_GetObjectItem(row, "doc_number")->valuestring);
	cJSON_AddStringToObject(out, "status", "pending");
	cJSON_AddBoolToObject(out, "reset_in_d1", true);
	cJSON_AddStringToObject(out, "note", "reset in D1 as the admin's Retry does (pending, attempts 0): the next "
	    "qb-reconcile run pushes it (syncctl trigger qb-reconcile --wait)");
	log_info("qb retry: invoice %" PRId64 " reset to pending in D1", x->id);
	ctl_reply(c, out);
	free(x);
}

void
qbd1_retry(struct qbr *q, struct ctl_client *c, int64_t id)
{
	struct d1_db *ops = ops_db(q);
	struct d1retry *x;
	struct d1_query dq;
	struct buf sql;
	char now[ISO8601_LEN];

	if (ops == NULL) {
		ctl_reply_error(c, "failed", "billing_source = d1 but [d1] has no ops database", NULL);
		return;
	}
	x = xcalloc(1, sizeof *x);
	x->q = q;
	x->client = ctl_client_id(c);
	x->id = id;
	buf_init(&sql);
	buf_adds(&sql, "UPDATE billing_invoices SET qb_sync_status = 'pending', qb_attempts = 0, qb_last_error = NULL,"
	    " updated_at = ");
	lit_text(&sql, iso8601_now(now));
	buf_printf(&sql, " WHERE id = %" PRId64 " AND qb_sync_status IN ('failed', 'abandoned') RETURNING id, doc_number;\n"
	    "SELECT id, qb_sync_status FROM billing_invoices WHERE id = %" PRId64, id, id);
	memset(&dq, 0, sizeof dq);
	dq.sql = sql.data;
	dq.sql_len = sql.len;
	dq.what = "reset an invoice for a retry";
	dq.on_done = retry_got;
	dq.arg = x;
	d1_query(ops, &dq);
	buf_free(&sql);
}
