/*
 * Phase summary: the cycle's result, exactly
 *
 *	{"status":"ok"|"degraded","synced":N,"failed":N,"abandoned":N,"heartbeat":true|false}
 *
 * (degraded when anything failed or was abandoned this cycle, the heartbeat failed or the connection was lost),
 * stored on the run row (sync_runs.summary, shown by `syncctl runs --json` and `syncctl qb status`) and printed by
 * `qb-reconcile --once`.  A degraded result also ends the run 'degraded' (exit 10 of --once and `syncctl trigger
 * --wait`), with the run row's error saying what needs the operator: a timer, systemd or a monitoring check must
 * never read a dead connection as success.
 *
 * Mail only when something needs the operator: failures, abandons, new reconcile issues, a failed heartbeat (but
 * not for reconnect_required, which has its own once-only mail), plus the optional digest ([qb-reconcile]
 * digest = yes).  Like the generic notify phase, and with the same helper (mailstep.c): the first step queues the
 * mail in the outbox with the cursor "queued:<id>" in one commit, the second delivers it, so a crash never sends
 * it twice and a mail server that is down never fails the cycle.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "mailstep.h"
#include "outbox.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char SQL_PROBLEMS[] =
    "SELECT id, doc_number, qb_sync_status, qb_attempts, coalesce(qb_last_error, '') FROM billing_invoices"
    " WHERE qb_sync_status IN ('failed', 'abandoned') ORDER BY id LIMIT 50";
static const char SQL_NEW_ISSUES[] =
    "SELECT i.invoice_id, b.doc_number, i.kind, i.detail FROM qb_reconcile_issues i JOIN billing_invoices b"
    " ON b.id = i.invoice_id WHERE i.first_cycle_id = ? AND i.resolved_at IS NULL ORDER BY i.id LIMIT 50";
static const char SQL_NEW_ISSUE_COUNT[] =
    "SELECT count(*) FROM qb_reconcile_issues WHERE first_cycle_id = ? AND resolved_at IS NULL";
static const char SQL_CONN[] =
    "SELECT state, coalesce(realm_id, '-'), coalesce(refresh_expires_at, '-'), coalesce(refresh_hard_expires_at,"
    " '-'), coalesce(last_heartbeat_ok, 'never'), coalesce(last_error, '') FROM qb_connection WHERE id = 1";

cJSON *
qbr_result_json(const cJSON *cs)
{
	cJSON *o = cJSON_CreateObject();
	const cJSON *v;
	double synced = 0, failed = 0, abandoned = 0;
	bool hb;

	if (cJSON_IsNumber(v = cJSON_GetObjectItem(cs, "synced")))
		synced = v->valuedouble;
	if (cJSON_IsNumber(v = cJSON_GetObjectItem(cs, "failed")))
		failed = v->valuedouble;
	if (cJSON_IsNumber(v = cJSON_GetObjectItem(cs, "abandoned")))
		abandoned = v->valuedouble;
	hb = cJSON_IsTrue(cJSON_GetObjectItem(cs, "heartbeat"));
	/* Key order as the operator's runbook prints it. */
	cJSON_AddStringToObject(o, "status", failed > 0 || abandoned > 0 || !hb ||
	    cJSON_IsTrue(cJSON_GetObjectItem(cs, "connection_lost")) ||
	    cJSON_IsString(cJSON_GetObjectItem(cs, "d1_error")) ||
	    cJSON_IsString(cJSON_GetObjectItem(cs, "d1_writeback_error")) ? "degraded" : "ok");
	cJSON_AddNumberToObject(o, "synced", synced);
	cJSON_AddNumberToObject(o, "failed", failed);
	cJSON_AddNumberToObject(o, "abandoned", abandoned);
	cJSON_AddBoolToObject(o, "heartbeat", hb);
	return o;
}

static int64_t
count_new_issues(struct db *db, const char *cycle_id, char **cause)
{
	sqlite3_stmt *s;
	int64_t n;

	if ((s = db_stmt(db, SQL_NEW_ISSUE_COUNT, cause)) == NULL)
		return -1;
	db_bind_text(s, 1, cycle_id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return db_error(db, cause, "count issues");
	}
	n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

/*
 * Why a degraded cycle is not OK, in one line for the run row (and the mail): the connection first (nothing else
 * works without it), then when the refresh token dies if no heartbeat succeeds before, then the invoices.  NULL when
 * the result is ok.
 */
static char *
degraded_reason(struct step *st, const cJSON *res, char **cause)
{
	struct db *db = step_daemon(st)->db;
	const cJSON *cs = step_cycle_state(st);
	const char *hb_error = cJSON_IsString(cJSON_GetObjectItem(cs, "heartbeat_error")) ?
	    cJSON_GetObjectItem(cs, "heartbeat_error")->valuestring : "heartbeat failed";
	double failed = cJSON_GetObjectItem(res, "failed")->valuedouble,
	    abandoned = cJSON_GetObjectItem(res, "abandoned")->valuedouble;
	bool hb = cJSON_IsTrue(cJSON_GetObjectItem(res, "heartbeat"));
	char state[24] = "", rolling[ISO8601_LEN] = "unknown", hard[ISO8601_LEN] = "unknown";
	sqlite3_stmt *s;
	struct buf b;

	if (strcmp(cJSON_GetObjectItem(res, "status")->valuestring, "ok") == 0)
		return NULL;
	if ((s = db_stmt(db, SQL_CONN, cause)) == NULL)
		return NULL;
	if (sqlite3_step(s) == SQLITE_ROW) {
		snprintf(state, sizeof state, "%s", db_col_text(s, 0));
		snprintf(rolling, sizeof rolling, "%s", db_col_text(s, 2));
		snprintf(hard, sizeof hard, "%s", db_col_text(s, 3));
	}
	sqlite3_reset(s);
	buf_init(&b);
	if (strcmp(state, "reconnect_required") == 0)
		buf_printf(&b, "QuickBooks needs reconnecting (`syncctl qb connect`): %s; nothing is pushed or reconciled "
		    "until then", hb ? "the connection was lost during the run" : hb_error);
	else if (strcmp(state, "not_connected") == 0)
		buf_printf(&b, "QuickBooks is not connected: run `syncctl qb connect`");
	else if (!hb)
		buf_printf(&b, "the heartbeat failed (%s); the refresh token still works until %s (hard limit %s): a "
		    "heartbeat must succeed before then, or QuickBooks must be reconnected", hb_error, rolling,
		    strcmp(hard, "-") == 0 ? "unknown" : hard);
	if (cJSON_IsString(cJSON_GetObjectItem(cs, "d1_error")))
		buf_printf(&b, "%s%s", b.len > 0 ? "; " : "", cJSON_GetObjectItem(cs, "d1_error")->valuestring);
	if (cJSON_IsString(cJSON_GetObjectItem(cs, "d1_writeback_error")))
		buf_printf(&b, "%s%s", b.len > 0 ? "; " : "", cJSON_GetObjectItem(cs, "d1_writeback_error")->valuestring);
	if (failed > 0 || abandoned > 0)
		buf_printf(&b, "%s%.0f invoice%s failed and %.0f abandoned in this cycle (syncctl qb status lists them)",
		    b.len > 0 ? "; " : "", failed, failed == 1 ? "" : "s", abandoned);
	if (b.len == 0)
		buf_adds(&b, "degraded");
	return buf_release(&b);
}

static int
compose(struct step *st, const char *result, const char *reason, bool attention, int64_t new_issues,
    char **subject, char **body, char **cause)
{
	struct db *db = step_daemon(st)->db;
	struct buf b;
	sqlite3_stmt *s;
	const cJSON *cs = step_cycle_state(st);
	int n = 0;

	buf_init(&b);
	buf_printf(&b, "Result:   %s\nRun ID:   %s\n\n", result, step_run_id(st));
	if (reason != NULL)
		buf_printf(&b, "Needs attention: %s.\n\n", reason);
	if ((s = db_stmt(db, SQL_CONN, cause)) == NULL)
		goto fail;
	if (sqlite3_step(s) == SQLITE_ROW)
		buf_printf(&b, "QuickBooks connection: %s (company %s)\n  refresh token expires: %s (hard limit %s)\n"
		    "  last good heartbeat:   %s\n%s%s%s\n", db_col_text(s, 0), db_col_text(s, 1), db_col_text(s, 2),
		    db_col_text(s, 3), db_col_text(s, 4), *db_col_text(s, 5) ? "  last error: " : "",
		    db_col_text(s, 5), *db_col_text(s, 5) ? "\n" : "");
	sqlite3_reset(s);

	if ((s = db_stmt(db, SQL_PROBLEMS, cause)) == NULL)
		goto fail;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n++ == 0)
			buf_adds(&b, "Invoices that did not reach QuickBooks (syncctl qb retry ID pushes one at once):\n");
		buf_printf(&b, "  %" PRId64 "  %-21s  %-9s  attempts %" PRId64 "\n      %s\n",
		    (int64_t)sqlite3_column_int64(s, 0), db_col_text(s, 1), db_col_text(s, 2),
		    (int64_t)sqlite3_column_int64(s, 3), db_col_text(s, 4));
	}
	sqlite3_reset(s);
	if (n > 0)
		buf_adds(&b, "\n");
	if (new_issues > 0) {
		buf_printf(&b, "Reconciliation found %" PRId64 " new issue%s:\n", new_issues, new_issues == 1 ? "" : "s");
		if ((s = db_stmt(db, SQL_NEW_ISSUES, cause)) == NULL)
			goto fail;
		db_bind_text(s, 1, step_cycle_id(st));
		while (sqlite3_step(s) == SQLITE_ROW)
			buf_printf(&b, "  invoice %" PRId64 " (%s): %s: %s\n", (int64_t)sqlite3_column_int64(s, 0),
			    db_col_text(s, 1), db_col_text(s, 2), db_col_text(s, 3));
		sqlite3_reset(s);
		buf_adds(&b, "\n");
	}
	if (cJSON_IsNumber(cJSON_GetObjectItem(cs, "paid")) && cJSON_GetObjectItem(cs, "paid")->valuedouble > 0)
		buf_printf(&b, "Newly paid in QuickBooks: %.0f\n\n", cJSON_GetObjectItem(cs, "paid")->valuedouble);
	buf_printf(&b, "-- \nrtopacks-sync %s, qb-reconcile\nsyncctl qb status | syncctl runs --sync-type qb_reconcile\n",
	    RTOPACKS_VERSION);
	*body = buf_release(&b);
	xasprintf(subject, "[qb-reconcile] %s: %s", attention ? "needs attention" : "daily digest", result);
	return 0;
fail:
	buf_free(&b);
	return -1;
}

static void summary_run(struct step *);

/* billing_source = d1: every outcome goes back to D1 before the result is made (a flush, in the first step). */
struct sumflush {
	struct step *st;	/* NULL once aborted */
	struct qbr *q;
};

static void
sum_abort(void *arg)
{
	struct sumflush *f = arg;
	struct step *st = f->st;

	qbd1_flush_forget(f->q, f);
	free(f);
	step_fail(st, STEP_RETRY, "stopped");
}

static void
sum_flushed(bool ok, const char *error, void *arg)
{
	struct sumflush *f = arg;
	struct step *st = f->st;
	cJSON *cs = step_cycle_state(st);
	char msg[1024];

	free(f);
	step_on_abort(st, NULL, NULL);
	cJSON_DeleteItemFromObject(cs, "d1_writeback_error");
	if (!ok) {
		int64_t n = qbd1_waiting(step_daemon(st)->db);

		snprintf(msg, sizeof msg, "%" PRId64 " write-back%s to D1 not delivered (%s): the admin panel shows an "
		    "older QuickBooks status until they go out (the next run sends them first; syncctl qb status)", n,
		    n == 1 ? "" : "s", error ? error : "?");
		cJSON_AddStringToObject(cs, "d1_writeback_error", msg);
	}
	summary_run(st);
}

void
phase_summary(struct step *st)
{
	struct qbr *q = step_job(st);
	struct sumflush *f;

	if (!q->billing_d1 || *step_cursor(st) != '\0') {
		summary_run(st);
		return;
	}
	f = xcalloc(1, sizeof *f);
	f->st = st;
	f->q = q;
	step_on_abort(st, sum_abort, f);
	qbd1_flush(q, sum_flushed, f);
}

static void
summary_run(struct step *st)
{
	struct daemon *d = step_daemon(st);
	struct qbr *q = step_job(st);
	const char *cur = step_cursor(st);
	const cJSON *cs = step_cycle_state(st);
	cJSON *res;
	char *json, *cause = NULL, *subject = NULL, *body = NULL, key[256];
	char *reason = NULL;
	struct conn_info ci;
	struct db *db;
	int64_t new_issues, id;
	bool hb, attention;

	if (mailstep_queued(cur, &id)) {
		/* The cycle's result, from its committed state (the run may have resumed after the mail was queued). */
		res = qbr_result_json(cs);
		if (q->last_result == NULL) {
			json = cJSON_PrintUnformatted(res);
			q->last_result = xstrdup(json);
			free(json);
		}
		if ((reason = degraded_reason(st, res, &cause)) != NULL)
			step_set_run_degraded(st, reason);
		free(reason);
		cJSON_Delete(res);
		if (cause != NULL) {
			step_fail(st, STEP_RETRY, "%s", cause);
			free(cause);
			return;
		}
		/* Undelivered, the step's status is the error alone (as it always was here). */
		mailstep_deliver(st, d->outbox, id, (int)config_int(d->cfg, "smtp", "retries") + 1, -1);
		return;
	}
	res = qbr_result_json(cs);
	json = cJSON_PrintUnformatted(res);
	hb = cJSON_IsTrue(cJSON_GetObjectItem(res, "heartbeat"));
	free(q->last_result);
	q->last_result = xstrdup(json);
	log_info("result: %s", json);
	if ((new_issues = count_new_issues(d->db, step_cycle_id(st), &cause)) == -1 ||
	    conn_read(d->db, &ci, &cause) == -1)
		goto fail;
	attention = cJSON_IsString(cJSON_GetObjectItem(cs, "d1_error")) ||
	    cJSON_IsString(cJSON_GetObjectItem(cs, "d1_writeback_error")) ||
	    cJSON_GetObjectItem(res, "failed")->valuedouble > 0 ||
	    cJSON_GetObjectItem(res, "abandoned")->valuedouble > 0 || new_issues > 0 ||
	    (!hb && strcmp(ci.state, "reconnect_required") != 0);
	if ((reason = degraded_reason(st, res, &cause)) == NULL && cause != NULL)
		goto fail;
	if (reason != NULL) {
		log_warnx("this cycle is degraded: %s", reason);
		step_set_run_degraded(st, reason);
	}
	if ((db = step_db(st, &cause)) == NULL)
		goto fail;
	step_set_summary(st, res, (int64_t)cJSON_GetObjectItem(res, "synced")->valuedouble);
	step_detail_add(st, "new_issues", new_issues);
	if (!attention && !q->digest) {
		step_set_status(st, "complete", "nothing needs the operator: no mail");
		step_done(st, STEP_PHASE_DONE);
		goto out;
	}
	if (compose(st, json, reason, attention, new_issues, &subject, &body, &cause) == -1)
		goto fail;
	snprintf(key, sizeof key, "qb_reconcile/summary/%s", step_cycle_id(st));
	if (mailstep_queue(st, d->outbox, key, "qb_reconcile", "summary mail", subject, body, &cause) == -1)
		goto fail;
out:
	free(reason);
	free(subject);
	free(body);
	free(json);
	cJSON_Delete(res);
	return;
fail:
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
	free(reason);
	free(subject);
	free(body);
	free(json);
	cJSON_Delete(res);
}
