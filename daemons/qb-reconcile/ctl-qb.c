/*
 * Control commands of qb-reconcile (used by `syncctl qb ...`; `syncctl qb status` reads ops.db itself):
 *
 *   qb-retry   {"invoice_id": N}   a failed or abandoned (or pending) invoice goes back to pending with a new
 *                                  requestid generation and is pushed at once; the reply (later) is the outcome.
 *   qb-connect {}                  a random state and the authorize URL to open.
 *   qb-connect {"code": C, "realm": R, "state": S}
 *                                  the state must be the one issued (and not expired); it is consumed before the
 *                                  code is exchanged, so a code is exchanged exactly once.  The reply (later)
 *                                  says whether the new tokens are stored.
 *
 * Replies never carry a token or the client secret.
 */
#include <sys/random.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char SQL_RETRY[] =
    "UPDATE billing_invoices SET qb_sync_status = 'pending', qb_attempts = 0, qb_request_gen = qb_request_gen + 1,"
    " qb_last_error = NULL, updated_at = ?2 WHERE id = ?1 AND qb_sync_status IN ('failed', 'abandoned')";
static const char SQL_OUTCOME[] =
    "SELECT qb_sync_status, qb_invoice_id, qb_last_error, qb_attempts, doc_number FROM billing_invoices WHERE id = ?";
static const char SQL_SET_STATE[] =
    "UPDATE qb_connection SET pending_state = ?1, pending_state_expires_at = ?2, updated_at = ?3 WHERE id = 1";
static const char SQL_GET_STATE[] =
    "SELECT pending_state, pending_state_expires_at, coalesce(realm_id, '') FROM qb_connection WHERE id = 1";
static const char SQL_CLEAR_STATE[] =
    "UPDATE qb_connection SET pending_state = NULL, pending_state_expires_at = NULL, updated_at = ?2"
    " WHERE id = 1 AND pending_state = ?1";

/* --- qb-retry ----------------------------------------------------------------------------------------------- */

struct retry {
	struct qbr *q;
	uint64_t client;
	struct inv inv;
	struct pusher *p;
};

static void
retry_done(struct pusher *p, void *arg)
{
	struct retry *r = arg;
	struct daemon *d = r->q->d;
	struct ctl_client *c;
	int64_t synced = 0, failed = 0, abandoned = 0;
	char *cause = NULL;
	sqlite3_stmt *s;
	cJSON *out = cJSON_CreateObject();

	if (db_begin(d->db, &cause) == -1 ||
	    pusher_commit(r->q, d->db, p, "retry", &synced, &failed, &abandoned, &cause) == -1 ||
	    db_commit(d->db, &cause) == -1) {
		db_rollback(d->db);
		log_warnx("qb retry: cannot record the outcome of invoice %" PRId64 ": %s", r->inv.id, cause);
		if ((c = ctl_client_find(d->control, r->client)) != NULL)
			ctl_reply_error(c, "failed", cause, NULL);
		free(cause);
		cJSON_Delete(out);
		goto done;
	}
	cJSON_AddNumberToObject(out, "invoice_id", (double)r->inv.id);
	if ((s = db_stmt(d->db, SQL_OUTCOME, &cause)) != NULL) {
		db_bind_int(s, 1, r->inv.id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			cJSON_AddStringToObject(out, "doc_number", db_col_text(s, 4));
			cJSON_AddStringToObject(out, "status", db_col_text(s, 0));
			if (sqlite3_column_type(s, 1) != SQLITE_NULL)
				cJSON_AddStringToObject(out, "qb_invoice_id", db_col_text(s, 1));
			if (sqlite3_column_type(s, 2) != SQLITE_NULL)
				cJSON_AddStringToObject(out, "error", db_col_text(s, 2));
			cJSON_AddNumberToObject(out, "attempts", (double)sqlite3_column_int64(s, 3));
		}
		sqlite3_reset(s);
	} else
		free(cause);
	if (pusher_auth_lost(p))
		cJSON_AddStringToObject(out, "note", "QuickBooks is not connected: the invoice stays pending");
	log_info("qb retry: invoice %" PRId64 ": %s", r->inv.id, synced ? "synced" : failed ? "failed" :
	    abandoned ? "abandoned" : "not pushed");
	if ((c = ctl_client_find(d->control, r->client)) != NULL)
		ctl_reply(c, out);
	else
		cJSON_Delete(out);
done:
	pusher_free(p);
	inv_free(&r->inv);
	free(r);
}

static enum ctl_retval
cmd_retry(struct ctl_client *c, const cJSON *args, char **cause)
{
	struct daemon *d = ctl_daemon(c);
	struct qbr *q = d->job_ctx;
	const cJSON *idv = cJSON_GetObjectItemCaseSensitive(args, "invoice_id");
	struct retry *r;
	sqlite3_stmt *s;
	char now[ISO8601_LEN];
	int64_t id;
	int rc;

	if (!cJSON_IsNumber(idv) || idv->valuedouble < 1 || idv->valuedouble > 1e12 ||
	    idv->valuedouble != (double)(int64_t)idv->valuedouble) {
		xasprintf(cause, "\"invoice_id\" must be a positive integer");
		return CTL_ERROR;
	}
	id = (int64_t)idv->valuedouble;
	if (cycle_running(d->cycle)) {
		ctl_reply_error(c, "busy", "a qb-reconcile run is in progress; retry when it has ended", NULL);
		return CTL_DONE;
	}
	if (qbr_busy(q, id)) {
		ctl_reply_error(c, "busy", "this invoice is being pushed right now", NULL);
		return CTL_DONE;
	}
	if (q->billing_d1) {
		/* The invoice is billing's, in D1: reset it there as the admin's Retry does; the next run pushes it. */
		qbd1_retry(q, c, id);
		return CTL_ASYNC;
	}
	r = xcalloc(1, sizeof *r);
	r->q = q;
	r->client = ctl_client_id(c);
	if ((rc = inv_load(d->db, id, &r->inv, cause)) != 1) {
		free(r);
		if (rc == 0) {
			ctl_reply_error(c, "not_found", "no such invoice", NULL);
			return CTL_DONE;
		}
		return CTL_ERROR;
	}
	if (strcmp(r->inv.status, "synced") == 0) {
		char msg[160];

		snprintf(msg, sizeof msg, "invoice %" PRId64 " is already synced (QuickBooks invoice %s)", id,
		    r->inv.qb_invoice_id ? r->inv.qb_invoice_id : "?");
		inv_free(&r->inv);
		free(r);
		ctl_reply_error(c, "already_synced", msg, NULL);
		return CTL_DONE;
	}
	/* Back to pending with a new requestid generation: the old one may replay an answer that no longer holds
	 * (an invoice deleted in QuickBooks since).  The DocNumber lookup still finds one that exists. */
	if (db_begin(d->db, cause) == -1)
		goto fail;
	if ((s = db_stmt(d->db, SQL_RETRY, cause)) == NULL)
		goto fail_tx;
	db_bind_int(s, 1, id);
	db_bind_text(s, 2, iso8601_now(now));
	if (db_step_done(d->db, s, cause) == -1 || db_commit(d->db, cause) == -1)
		goto fail_tx;
	inv_free(&r->inv);
	if (inv_load(d->db, id, &r->inv, cause) != 1)
		goto fail;
	log_info("qb retry: invoice %" PRId64 " (%s) requested by %s", id, r->inv.doc_number, ctl_peer_name(c));
	r->p = pusher_start(q, &r->inv, 1, NULL, retry_done, r);
	return CTL_ASYNC;
fail_tx:
	db_rollback(d->db);
fail:
	inv_free(&r->inv);
	free(r);
	return CTL_ERROR;
}

const struct ctl_cmd qbr_cmd_retry = { "qb-retry", "{\"invoice_id\":N}", cmd_retry };

/* --- qb-connect --------------------------------------------------------------------------------------------- */

struct connect {
	struct qbr *q;
	uint64_t client;
	char old_realm[64];
};

static bool
charset_ok(const char *s, size_t min, size_t max, const char *allowed)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, allowed) == n;
}

static void
connect_done(bool ok, const char *error, void *arg)
{
	struct connect *cx = arg;
	struct qbr *q = cx->q;
	struct ctl_client *c = ctl_client_find(q->d->control, cx->client);
	char buf[ISO8601_LEN];
	cJSON *out;

	if (!ok) {
		log_warnx("qb connect: %s", error ? error : "failed");
		if (c != NULL)
			ctl_reply_error(c, "connect_failed", error ? error : "the code exchange failed", NULL);
		free(cx);
		return;
	}
	log_info("qb connect: QuickBooks company %s connected (connection %" PRId64 ")", q->tok.realm_id,
	    q->tok.generation);
	if (c != NULL) {
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "state", "connected");
		cJSON_AddStringToObject(out, "realm_id", q->tok.realm_id);
		cJSON_AddStringToObject(out, "environment", q->environment);
		cJSON_AddStringToObject(out, "refresh_expires_at", iso8601_fmt(q->tok.refresh_expires_at, buf));
		if (q->tok.refresh_hard_expires_at != 0)
			cJSON_AddStringToObject(out, "refresh_hard_expires_at",
			    iso8601_fmt(q->tok.refresh_hard_expires_at, buf));
		if (cx->old_realm[0] != '\0' && strcmp(cx->old_realm, q->tok.realm_id) != 0)
			cJSON_AddStringToObject(out, "warning", "this is a different QuickBooks company than before: "
			    "invoices synced to the old one keep their QuickBooks ids, which mean nothing here");
		ctl_reply(c, out);
	}
	free(cx);
}

static enum ctl_retval
connect_url(struct ctl_client *c, struct qbr *q, char **cause)
{
	struct daemon *d = q->d;
	unsigned char raw[24];
	char state[64], now[ISO8601_LEN], exp[ISO8601_LEN], *url;
	sqlite3_stmt *s;
	cJSON *out;
	size_t i;

	if (q->redirect_uri == NULL) {
		xasprintf(cause, "[qb-reconcile] redirect_uri is not set: register one with the Intuit app and set it");
		return CTL_ERROR;
	}
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		xasprintf(cause, "getrandom: %s", strerror(errno));
		return CTL_ERROR;
	}
	for (i = 0; i < sizeof raw; i++)
		snprintf(state + 2 * i, 3, "%02x", raw[i]);
	iso8601_now(now);
	iso8601_fmt(clock_now() + q->state_lifetime_s, exp);
	if (db_begin(d->db, cause) == -1)
		return CTL_ERROR;
	if ((s = db_stmt(d->db, SQL_SET_STATE, cause)) == NULL)
		goto fail;
	db_bind_text(s, 1, state);
	db_bind_text(s, 2, exp);
	db_bind_text(s, 3, now);
	if (db_step_done(d->db, s, cause) == -1 || db_commit(d->db, cause) == -1)
		goto fail;
	url = qbr_authorize_url(q, state);
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "url", url);
	cJSON_AddStringToObject(out, "state", state);
	cJSON_AddStringToObject(out, "redirect_uri", q->redirect_uri);
	cJSON_AddStringToObject(out, "environment", q->environment);
	cJSON_AddStringToObject(out, "expires_at", exp);
	free(url);
	ctl_reply(c, out);
	return CTL_DONE;
fail:
	db_rollback(d->db);
	return CTL_ERROR;
}

static enum ctl_retval
cmd_connect(struct ctl_client *c, const cJSON *args, char **cause)
{
	struct daemon *d = ctl_daemon(c);
	struct qbr *q = d->job_ctx;
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(args, "code"),
	    *realm = cJSON_GetObjectItemCaseSensitive(args, "realm"),
	    *state = cJSON_GetObjectItemCaseSensitive(args, "state");
	struct connect *cx;
	sqlite3_stmt *s;
	char pending[80] = "", expires[ISO8601_LEN] = "", now[ISO8601_LEN];
	time_t exp;
	int changed;

	if (code == NULL && realm == NULL && state == NULL)
		return connect_url(c, q, cause);
	if (!cJSON_IsString(code) || !cJSON_IsString(realm) || !cJSON_IsString(state)) {
		xasprintf(cause, "give \"code\", \"realm\" and \"state\" together (or none for the authorize URL)");
		return CTL_ERROR;
	}
	/* Bounded and plain before anything else looks at them. */
	if (!charset_ok(code->valuestring, 8, 512, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    "-._~/+=%")) {
		xasprintf(cause, "the code is not a QuickBooks authorization code (1-512 URL characters)");
		return CTL_ERROR;
	}
	if (!charset_ok(realm->valuestring, 1, 32, "0123456789")) {
		xasprintf(cause, "the realm (realmId) must be digits");
		return CTL_ERROR;
	}
	if (!charset_ok(state->valuestring, 48, 48, "0123456789abcdef")) {
		xasprintf(cause, "the state is not one `syncctl qb connect` issued");
		return CTL_ERROR;
	}
	if ((s = db_stmt(d->db, SQL_GET_STATE, cause)) == NULL)
		return CTL_ERROR;
	cx = xcalloc(1, sizeof *cx);
	cx->q = q;
	cx->client = ctl_client_id(c);
	if (sqlite3_step(s) == SQLITE_ROW) {
		snprintf(pending, sizeof pending, "%s", db_col_text(s, 0));
		snprintf(expires, sizeof expires, "%s", db_col_text(s, 1));
		snprintf(cx->old_realm, sizeof cx->old_realm, "%s", db_col_text(s, 2));
	}
	sqlite3_reset(s);
	if (pending[0] == '\0' || strcmp(pending, state->valuestring) != 0) {
		free(cx);
		ctl_reply_error(c, "bad_state", "this state was not issued by `syncctl qb connect`, or it was used "
		    "already: run `syncctl qb connect` again", NULL);
		return CTL_DONE;
	}
	if (!iso8601_parse(expires, &exp) || exp < clock_now()) {
		free(cx);
		ctl_reply_error(c, "bad_state", "the connect request has expired: run `syncctl qb connect` again", NULL);
		return CTL_DONE;
	}
	if (q->refresh != NULL) {
		free(cx);
		ctl_reply_error(c, "busy", "a token refresh is in progress; run the same command again in a minute",
		    NULL);
		return CTL_DONE;
	}
	/* Consume the state first (committed), so the code behind it is exchanged exactly once. */
	if (db_begin(d->db, cause) == -1) {
		free(cx);
		return CTL_ERROR;
	}
	if ((s = db_stmt(d->db, SQL_CLEAR_STATE, cause)) == NULL)
		goto fail;
	db_bind_text(s, 1, state->valuestring);
	db_bind_text(s, 2, iso8601_now(now));
	if (db_step_done(d->db, s, cause) == -1)
		goto fail;
	changed = sqlite3_changes(db_handle(d->db));
	if (db_commit(d->db, cause) == -1)
		goto fail;
	if (changed != 1) {
		free(cx);
		ctl_reply_error(c, "bad_state", "this connect request was used already", NULL);
		return CTL_DONE;
	}
	log_info("qb connect: exchanging an authorization code for company %s (requested by %s)", realm->valuestring,
	    ctl_peer_name(c));
	qbr_connect_exchange(q, code->valuestring, realm->valuestring, connect_done, cx);
	return CTL_ASYNC;
fail:
	db_rollback(d->db);
	free(cx);
	return CTL_ERROR;
}

const struct ctl_cmd qbr_cmd_connect = { "qb-connect", "{} | {\"code\":C, \"realm\":R, \"state\":S}", cmd_connect };
