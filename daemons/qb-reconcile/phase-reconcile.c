/*
 * Phase reconcile: bring what QuickBooks holds back into our invoices (balance, paid, deleted, voided, changed
 * amounts) and record what a person must look at (qb_reconcile_issues).
 *
 * Normally one change-data-capture request: cdc?entities=Invoice,Payment&changedSince=<last reconcile - margin>.
 * CDC looks back at most 30 days and returns at most 1,000 objects (oldest first): a full answer moves the window
 * to the newest time it contained and asks again.  Paged queries instead (Id IN (...) over our synced invoices,
 * query_batch per step) when there is no previous reconcile, it is older than 29 days, the cycle is --full, or CDC
 * cannot make progress; they also find invoices that are missing in QuickBooks.
 *
 * Cursor: "cdc:<since>" or "paged:<after our invoice id>".  job_state.cdc_since (QuickBooks' own clock, from the
 * answer's "time") is where the next cycle's CDC starts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cursorkv.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "qbo-read.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

#define CDC_LOOKBACK (29 * 86400)	/* CDC allows 30 days; keep a day of margin for clock differences */

static const char SQL_OURS[] =
    "SELECT i.id, i.total_cents, i.paid_at, i.qb_state, c.qb_customer_id FROM billing_invoices i"
    " LEFT JOIN billing_customers c ON c.id = i.customer_id"
    " WHERE i.qb_invoice_id = ? AND i.qb_sync_status = 'synced'";
static const char SQL_APPLY[] =
    "UPDATE billing_invoices SET qb_total_cents = ?2, qb_balance_cents = ?3,"
    " qb_sync_token = coalesce(?4, qb_sync_token), qb_state = ?5, qb_updated_at = coalesce(?6, qb_updated_at), paid_at = ?7, updated_at = ?8 WHERE id = ?1 AND"
    " (qb_total_cents IS NOT ?2 OR qb_balance_cents IS NOT ?3 OR qb_sync_token IS NOT coalesce(?4, qb_sync_token)"
    " OR qb_state IS NOT ?5 OR paid_at IS NOT ?7)";
static const char SQL_GONE[] =
    "UPDATE billing_invoices SET qb_state = ?2, updated_at = ?3 WHERE id = ?1 AND qb_state IS NOT ?2";
static const char SQL_PAGE[] =
    "SELECT id, qb_invoice_id FROM billing_invoices WHERE qb_sync_status = 'synced' AND qb_invoice_id IS NOT NULL"
    " AND id > ? ORDER BY id LIMIT ?";

struct rc {
	struct step *st;
	struct qbr *q;
	struct qbo_call *call;
	bool paged;
	char since[ISO8601_LEN];
	int64_t after, last_id;
	int64_t *ids;
	char **qb_ids;
	size_t n;
	bool aborted;
};

struct tally {
	int64_t seen, changed, paid, issues;
};

static void
rc_free(struct rc *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->qb_ids[i]);
	free(r->qb_ids);
	free(r->ids);
	free(r);
}

static int
open_issue(struct step *st, struct db *db, int64_t id, const char *qb_id, const char *kind, const char *detail,
    int64_t ours, int64_t theirs, bool cents, struct tally *t, char **cause)
{
	t->issues++;
	log_warnx("reconcile: invoice %" PRId64 " (QuickBooks %s): %s", id, qb_id, detail);
	return issue_open(db, id, qb_id, kind, detail, ours, theirs, cents, step_cycle_id(st), cause);
}

/* One invoice as QuickBooks has it now -> our row (inside the step's transaction). */
static int
apply_invoice(struct step *st, struct db *db, const cJSON *qi, struct tally *t, char **cause)
{
	struct qbo_invoice inv;
	const char *qb_id, *status, *note, *cust, *updated;
	sqlite3_stmt *s;
	int64_t id, ours, total, bal;
	char paid_at[ISO8601_LEN] = "", now[ISO8601_LEN], detail[512], a[32], b[32];
	char our_cust[64], our_state[16];
	const char *state;
	bool have_paid, have_updated;

	qbo_invoice_read(qi, &inv);
	qb_id = inv.id;
	status = inv.status;
	note = inv.note;
	cust = inv.customer;
	if (qb_id == NULL)
		return 0;
	if ((s = db_stmt(db, SQL_OURS, cause)) == NULL)
		return -1;
	db_bind_text(s, 1, qb_id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return 0;	/* not one of ours (or not synced yet): nothing to reconcile */
	}
	id = sqlite3_column_int64(s, 0);
	ours = sqlite3_column_int64(s, 1);
	have_paid = sqlite3_column_type(s, 2) != SQLITE_NULL;
	if (have_paid)
		snprintf(paid_at, sizeof paid_at, "%s", db_col_text(s, 2));
	snprintf(our_state, sizeof our_state, "%s", db_col_text(s, 3));
	snprintf(our_cust, sizeof our_cust, "%s", db_col_text(s, 4));
	sqlite3_reset(s);
	t->seen++;
	iso8601_now(now);

	if (status != NULL && strcasecmp(status, "Deleted") == 0) {
		if ((s = db_stmt(db, SQL_GONE, cause)) == NULL)
			return -1;
		db_bind_int(s, 1, id);
		db_bind_text(s, 2, "deleted");
		db_bind_text(s, 3, now);
		if (db_step_done(db, s, cause) == -1)
			return -1;
		t->changed += sqlite3_changes(db_handle(db));
		snprintf(detail, sizeof detail, "invoice %s was deleted in QuickBooks", qb_id);
		return open_issue(st, db, id, qb_id, "deleted_in_qb", detail, 0, 0, false, t, cause);
	}
	if (!inv.amounts) {
		log_warnx("reconcile: QuickBooks invoice %s has no TotalAmt or Balance; skipped", qb_id);
		return 0;
	}
	total = inv.total_cents;
	bal = inv.balance_cents;
	have_updated = inv.updated_ok;
	updated = inv.updated;
	if (total == 0 && ours != 0 && note != NULL && strstr(note, "Voided") != NULL) {
		state = "voided";
		snprintf(detail, sizeof detail, "invoice %s was voided in QuickBooks", qb_id);
		if (open_issue(st, db, id, qb_id, "voided_in_qb", detail, ours, 0, true, t, cause) == -1)
			return -1;
	} else {
		state = bal == 0 && total > 0 ? "paid" : bal < total ? "partial" : "open";
		if (total != ours) {
			cents_str(ours, a, sizeof a);
			cents_str(total, b, sizeof b);
			snprintf(detail, sizeof detail, "QuickBooks invoice %s totals %s, ours %s", qb_id, b, a);
			if (open_issue(st, db, id, qb_id, "amount_differs", detail, ours, total, true, t, cause) == -1)
				return -1;
		} else if (issue_resolve(db, id, "amount_differs", cause) == -1)
			return -1;
		if (cust != NULL && our_cust[0] != '\0' && strcmp(cust, our_cust) != 0) {
			snprintf(detail, sizeof detail, "QuickBooks invoice %s belongs to customer %s, ours is %s", qb_id,
			    cust, our_cust);
			if (open_issue(st, db, id, qb_id, "customer_differs", detail, 0, 0, false, t, cause) == -1)
				return -1;
		}
	}
	if (strcmp(state, "paid") == 0) {
		/* Paid when QuickBooks last changed it (the payment's application), or now if it does not say. */
		if (!have_paid)
			snprintf(paid_at, sizeof paid_at, "%s", have_updated ? updated : now);
		if (strcmp(our_state, "paid") != 0)
			t->paid++;
	} else
		paid_at[0] = '\0';
	if ((s = db_stmt(db, SQL_APPLY, cause)) == NULL)
		return -1;
	db_bind_int(s, 1, id);
	db_bind_int(s, 2, total);
	db_bind_int(s, 3, bal);
	db_bind_text(s, 4, inv.sync_token);
	db_bind_text(s, 5, state);
	db_bind_text(s, 6, have_updated ? updated : NULL);
	db_bind_text(s, 7, paid_at[0] ? paid_at : NULL);
	db_bind_text(s, 8, now);
	if (db_step_done(db, s, cause) == -1)
		return -1;
	t->changed += sqlite3_changes(db_handle(db));
	return 0;
}

static void
finish_step(struct rc *r, struct tally *t, enum step_result res)
{
	struct step *st = r->st;

	cstate_add(st, "paid", t->paid);
	cstate_add(st, "issues", t->issues);
	step_count(st, t->seen, t->changed);
	step_detail_add(st, "paid", t->paid);
	step_detail_add(st, "issues", t->issues);
	rc_free(r);
	step_done(st, res);
}

/* The cursor in the tag form it has always had: "cdc:<since>" or "paged:<after our invoice id>". */
static void
set_cdc(struct step *st, const char *since)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_tag(&b, "cdc", since);
	step_set_cursor(st, "%s", ckv_str(&b));
}

static void
set_paged(struct step *st, int64_t after)
{
	struct ckv_builder b;

	ckv_init(&b);
	ckv_tag_i64(&b, "paged", after);
	step_set_cursor(st, "%s", ckv_str(&b));
}

static void
set_since(struct step *st, const char *since)
{
	cJSON *js = step_job_state(st);

	cJSON_DeleteItemFromObject(js, "cdc_since");
	cJSON_AddStringToObject(js, "cdc_since", since);
}

/* --- CDC ---------------------------------------------------------------------------------------------------- */

/* A query that failed: without authorisation the phase ends failed (a retry cannot help);
 * anything else is retried as a step. */
static void
request_failed(struct step *st, const struct qbo_resp *resp)
{
	if (resp->auth_lost) {
		step_set_status(st, "failed", resp->error);
		step_done(st, STEP_PHASE_DONE);
	} else
		step_fail(st, STEP_RETRY, "%s", resp->error);
}

/* A CDC answer's objects, walked by qbo_cdc_each(): invoices applied, the newest change time kept. */
struct cdc_walk {
	struct step *st;
	struct db *db;
	struct tally *t;
	char *cause;
	int64_t objects;
	char newest[ISO8601_LEN];
};

static int
cdc_object(const char *entity, const cJSON *obj, void *arg)
{
	struct cdc_walk *w = arg;
	char when[ISO8601_LEN];

	w->objects++;
	if (qbo_time_utc(json_str(json_get(obj, "MetaData"), "LastUpdatedTime"), when) && strcmp(when, w->newest) > 0)
		snprintf(w->newest, sizeof w->newest, "%s", when);
	if (strcasecmp(entity, "Invoice") == 0)
		return apply_invoice(w->st, w->db, obj, w->t, &w->cause);
	return 0;
}

static void
cdc_done(const struct qbo_resp *resp, void *arg)
{
	struct rc *r = arg;
	struct step *st = r->st;
	struct tally t = { 0, 0, 0, 0 };
	struct cdc_walk w = { st, NULL, &t, NULL, 0, "" };
	char *cause = NULL, qbtime[ISO8601_LEN];
	const char *newest = w.newest;
	int64_t objects;
	struct db *db;

	r->call = NULL;
	if (r->aborted || resp->cancelled) {
		rc_free(r);
		step_fail(st, STEP_RETRY, "stopped");
		return;
	}
	if (resp->error != NULL) {
		if (resp->has_fault && strcmp(resp->fault.code, "4001") == 0 && strstr(resp->fault.detail, "cdc")) {
			/* Older than CDC's window after all (clocks): the paged way. */
			log_warnx("reconcile: %s; falling back to paged queries", resp->error);
			set_paged(st, 0);
			rc_free(r);
			step_done(st, STEP_MORE);
			return;
		}
		rc_free(r);
		request_failed(st, resp);
		return;
	}
	if ((db = step_db(st, &cause)) == NULL)
		goto dberr;
	w.db = db;
	if (qbo_cdc_each(resp->json, cdc_object, &w) == -1) {
		cause = w.cause;
		goto dberr;
	}
	objects = w.objects;
	step_detail_add(st, "cdc_objects", objects);
	if (objects >= r->q->cdc_max_objects) {
		/* A full answer may have been cut: ask again from the newest time it held. */
		if (newest[0] == '\0' || strcmp(newest, r->since) <= 0) {
			log_warnx("reconcile: CDC returned %" PRId64 " objects without progress; paged queries instead",
			    objects);
			set_paged(st, 0);
		} else
			set_cdc(st, newest);
		finish_step(r, &t, STEP_MORE);
		return;
	}
	if (!qbo_time_utc(json_str(resp->json, "time"), qbtime))
		iso8601_now(qbtime);
	set_since(st, qbtime);
	finish_step(r, &t, STEP_PHASE_DONE);
	return;
dberr:
	rc_free(r);
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}

/* --- paged -------------------------------------------------------------------------------------------------- */

static void
page_done(const struct qbo_resp *resp, void *arg)
{
	struct rc *r = arg;
	struct step *st = r->st;
	struct tally t = { 0, 0, 0, 0 };
	const cJSON *rows, *row;
	char *cause = NULL, now[ISO8601_LEN], detail[256];
	struct db *db;
	sqlite3_stmt *s;
	size_t i;

	r->call = NULL;
	if (r->aborted || resp->cancelled) {
		rc_free(r);
		step_fail(st, STEP_RETRY, "stopped");
		return;
	}
	if (resp->error != NULL) {
		rc_free(r);
		request_failed(st, resp);
		return;
	}
	if ((db = step_db(st, &cause)) == NULL)
		goto dberr;
	rows = qbo_query_rows(resp->json, "Invoice");
	iso8601_now(now);
	for (i = 0; i < r->n; i++) {
		const cJSON *found = NULL;

		cJSON_ArrayForEach(row, rows) {
			const char *id = json_str(row, "Id");

			if (id != NULL && strcmp(id, r->qb_ids[i]) == 0)
				found = row;
		}
		if (found != NULL) {
			if (apply_invoice(st, db, found, &t, &cause) == -1)
				goto dberr;
			if (issue_resolve(db, r->ids[i], "missing_in_qb", &cause) == -1)
				goto dberr;
			continue;
		}
		/* Not there: deleted in QuickBooks (a deleted invoice cannot be queried) or never was. */
		t.seen++;
		if ((s = db_stmt(db, SQL_GONE, &cause)) == NULL)
			goto dberr;
		db_bind_int(s, 1, r->ids[i]);
		db_bind_text(s, 2, "missing");
		db_bind_text(s, 3, now);
		if (db_step_done(db, s, &cause) == -1)
			goto dberr;
		t.changed += sqlite3_changes(db_handle(db));
		snprintf(detail, sizeof detail, "synced invoice %s is not in QuickBooks (deleted there?)", r->qb_ids[i]);
		if (open_issue(st, db, r->ids[i], r->qb_ids[i], "missing_in_qb", detail, 0, 0, false, &t, &cause) == -1)
			goto dberr;
	}
	set_paged(st, r->last_id);
	finish_step(r, &t, STEP_MORE);
	return;
dberr:
	rc_free(r);
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}

static void
rc_abort(void *arg)
{
	struct rc *r = arg;

	struct http_group *g = step_http(r->st);

	r->aborted = true;
	/* Either way the call ends now and its callback reports (and frees r): touch nothing after. */
	if (r->call != NULL && !qbo_call_in_flight(r->call))
		qbo_call_cancel(r->call);	/* not sent yet, or waiting for a token refresh */
	else
		http_group_cancel(g);		/* in flight: ends as cancelled */
}

static void
start_paged(struct step *st, struct qbr *q, int64_t after)
{
	struct daemon *d = step_daemon(st);
	struct qbo_req req;
	struct rc *r;
	struct buf b;
	sqlite3_stmt *s;
	char *cause = NULL;
	int rc;

	r = xcalloc(1, sizeof *r);
	r->st = st;
	r->q = q;
	r->paged = true;
	r->after = r->last_id = after;
	r->ids = xcalloc((size_t)q->query_batch, sizeof *r->ids);
	r->qb_ids = xcalloc((size_t)q->query_batch, sizeof *r->qb_ids);
	if ((s = db_stmt(d->db, SQL_PAGE, &cause)) == NULL) {
		rc_free(r);
		step_fail(st, STEP_RETRY, "%s", cause);
		free(cause);
		return;
	}
	db_bind_int(s, 1, after);
	db_bind_int(s, 2, q->query_batch);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r->ids[r->n] = r->last_id = sqlite3_column_int64(s, 0);
		r->qb_ids[r->n++] = xstrdup(db_col_text(s, 1));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		rc_free(r);
		db_error(d->db, &cause, "select synced invoices");
		step_fail(st, STEP_RETRY, "%s", cause);
		free(cause);
		return;
	}
	if (r->n == 0) {
		/* Every synced invoice checked: the next cycle can use CDC from the time this pass started. */
		const cJSON *started = cJSON_GetObjectItem(step_cycle_state(st), "reconcile_started");

		if (cJSON_IsString(started))
			set_since(st, started->valuestring);
		rc_free(r);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	buf_init(&b);
	buf_adds(&b, "select * from Invoice where Id in (");
	for (size_t i = 0; i < r->n; i++) {
		buf_adds(&b, i ? ", " : "");
		qbo_quote(&b, r->qb_ids[i]);
	}
	buf_adds(&b, ") MAXRESULTS 1000");
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.path = "query";
	req.body = b.data;
	req.content_type = "application/text";
	req.what = "reconcile: read synced invoices";
	req.group = step_http(st);
	req.done = page_done;
	req.arg = r;
	step_on_abort(st, rc_abort, r);
	r->call = qbo_call(q, &req);
	buf_free(&b);
}

static void
start_cdc(struct step *st, struct qbr *q, const char *since)
{
	struct qbo_req req;
	struct rc *r = xcalloc(1, sizeof *r);
	char *enc, *query;

	r->st = st;
	r->q = q;
	snprintf(r->since, sizeof r->since, "%s", since);
	enc = http_urlencode(since);
	xasprintf(&query, "entities=Invoice,Payment&changedSince=%s", enc);
	free(enc);
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "cdc";
	req.query = query;
	req.what = "reconcile: change data capture";
	req.group = step_http(st);
	req.done = cdc_done;
	req.arg = r;
	step_on_abort(st, rc_abort, r);
	r->call = qbo_call(q, &req);
	free(query);
}

void
phase_reconcile(struct step *st)
{
	struct qbr *q = step_job(st);
	const char *cur = step_cursor(st), *v;
	const cJSON *since = cJSON_GetObjectItem(step_job_state(st), "cdc_since");
	struct ckv c;
	int64_t after;
	char now[ISO8601_LEN], from[ISO8601_LEN];
	time_t t;

	if (!qbr_connection_usable(st)) {
		step_set_status(st, "complete", "QuickBooks is not connected: nothing reconciled");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if (ckv_parse(&c, cur) == 0 && (v = ckv_get(&c, "cdc")) != NULL) {
		start_cdc(st, q, v);
		return;
	}
	if (ckv_field(&c, "paged") != NULL) {
		if (!ckv_get_i64(&c, "paged", 0, INT64_MAX, &after))
			after = 0;
		start_paged(st, q, after);
		return;
	}
	/* First step of the phase: choose the way, remember when the pass began. */
	cJSON_DeleteItemFromObject(step_cycle_state(st), "reconcile_started");
	cJSON_AddStringToObject(step_cycle_state(st), "reconcile_started", iso8601_now(now));
	if (!step_full(st) && cJSON_IsString(since) && iso8601_parse(since->valuestring, &t) &&
	    t - q->cdc_margin_s > clock_now() - CDC_LOOKBACK) {
		iso8601_fmt(t - q->cdc_margin_s, from);
		set_cdc(st, from);
	} else
		set_paged(st, 0);
	step_done(st, STEP_MORE);
}
