/*
 * The Intuit OAuth 2.0 client: the refresh grant (the daily heartbeat, and the one refresh after a 401) and the
 * authorization-code exchange of `syncctl qb connect`.
 *
 * Rules from the reference (quickbooks-online.md §1, §5):
 *  - refresh one at a time: within this process a refresh in progress is joined, across processes the refresh lock
 *    (flock) is held from reading the store to storing the answer, and the store is re-read under the lock, so a
 *    refresh always presents the newest refresh token, never one another process already spent;
 *  - the new pair is stored (atomically) before anything uses it; only then is the refresh a success;
 *  - invalid_grant is confirmed once before it is believed: Intuit outages answer it too (reference §1.7), so the
 *    refresh asks once more invalid_grant_recheck later (the refused token spent nothing, so presenting it again is
 *    safe) and only a second refusal marks the connection reconnect_required; no loop beyond that one recheck;
 *  - the token call is retried at most once, and not after a 500 (Intuit may have rotated the token and lost the
 *    answer: a retry would then spend a dead token);
 *  - ask for the hard (5-year) expiry with x-include-refresh-token-hard-expires-in: true and record it;
 *  - a code is exchanged exactly once.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cycle.h"
#include "daemon.h"
#include "http.h"
#include "jsonlimit.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

#define LOCK_POLL 0.05
#define TOKEN_MAX_BODY (64 * 1024)	/* the token answer is a few KB */
#define TOKEN_MAX_NODES 1000		/* ... and about ten values */
#define ACCESS_MARGIN 120	/* seconds: an access token this close to expiry is refreshed first */

struct waiter {
	refresh_done_fn fn;
	void *arg;
	struct waiter *next;
};

struct refresh {
	struct qbr *q;
	bool force;
	char *stale_access;
	struct waiter *waiters;
	struct token_lock *lock;
	ev_timer timer;
	double deadline;
	bool exchange;
	char *code, *realm;
	connect_done_fn cfn;
	void *carg;
	enum refresh_result result;
	char *error;
	bool finishing;
	bool rechecking;	/* a first invalid_grant was seen: the token endpoint is asked once more */
	char first_refusal[256];	/* what the first invalid_grant said, for the error and the mail */
	struct refresh *next_live;	/* q->refresh_all */
};

static const char *const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64[p[i] >> 2];
		*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = b64[p[i + 2] & 63];
	}
	if (i < len) {
		*o++ = b64[p[i] >> 2];
		if (i + 1 < len) {
			*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*o++ = b64[(p[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

bool
qbr_access_usable(const struct qbr *q)
{
	return q->have_tokens && q->tok.access_expires_at > clock_now() + ACCESS_MARGIN;
}

static struct refresh *
refresh_new(struct qbr *q)
{
	struct refresh *rf = xcalloc(1, sizeof *rf);

	rf->q = q;
	rf->next_live = q->refresh_all;
	q->refresh_all = rf;
	return rf;
}

static void
refresh_free(struct refresh *rf)
{
	struct refresh **pp;
	struct waiter *w;

	for (pp = &rf->q->refresh_all; *pp != NULL; pp = &(*pp)->next_live)
		if (*pp == rf) {
			*pp = rf->next_live;
			break;
		}
	ev_timer_stop(rf->q->d->loop, &rf->timer);
	while ((w = rf->waiters) != NULL) {
		rf->waiters = w->next;
		free(w);
	}
	token_lock_release(rf->lock);
	if (rf->stale_access != NULL) {
		explicit_bzero(rf->stale_access, strlen(rf->stale_access));
		free(rf->stale_access);
	}
	if (rf->code != NULL) {
		explicit_bzero(rf->code, strlen(rf->code));
		free(rf->code);
	}
	free(rf->realm);
	free(rf->error);
	free(rf);
}

static void
deliver(struct refresh *rf)
{
	struct qbr *q = rf->q;
	struct waiter *w;

	ev_timer_stop(q->d->loop, &rf->timer);
	token_lock_release(rf->lock);
	rf->lock = NULL;
	/* Detach first: a waiter may start the next refresh. */
	if (q->refresh == rf)
		q->refresh = NULL;
	if (rf->exchange) {
		if (rf->cfn != NULL)
			rf->cfn(rf->result == REFRESH_OK, rf->error, rf->carg);
	} else {
		while ((w = rf->waiters) != NULL) {
			rf->waiters = w->next;
			w->fn(rf->result, rf->error, w->arg);
			free(w);
		}
	}
	refresh_free(rf);
}

static void
deliver_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	deliver(t->data);
}

/* Finish later, from the loop (callers are promised never to be called back from inside their own call). */
static void
finish(struct refresh *rf, enum refresh_result result, const char *error)
{
	rf->result = result;
	free(rf->error);
	rf->error = error != NULL ? xstrdup(error) : NULL;
	rf->finishing = true;
	ev_timer_stop(rf->q->d->loop, &rf->timer);
	ev_timer_init(&rf->timer, deliver_cb, 0.0, 0.0);
	rf->timer.data = rf;
	ev_timer_start(rf->q->d->loop, &rf->timer);
}

static bool
num_in(const cJSON *o, const char *key, double lo, double hi, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi)
		return false;
	*out = (int64_t)v->valuedouble;
	return true;
}

/* A 200 answer of the token endpoint -> tokens; every field checked (a half answer must never replace the store). */
const char *
qbr_parse_token_answer(const char *body, size_t len, struct qbr_tokens *t)
{
	cJSON *o;
	const cJSON *at, *rt, *tt;
	int64_t expires_in, rexp, hard;
	time_t now = clock_now();
	char why[160];

	if ((o = json_parse_bounded(body, len, TOKEN_MAX_NODES, why, sizeof why)) == NULL || !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return "the token endpoint answered 200 without a usable JSON object";
	}
	at = cJSON_GetObjectItemCaseSensitive(o, "access_token");
	rt = cJSON_GetObjectItemCaseSensitive(o, "refresh_token");
	tt = cJSON_GetObjectItemCaseSensitive(o, "token_type");
	if (!cJSON_IsString(at) || !tokens_text_ok(at->valuestring, QBR_ACCESS_MAX) || !cJSON_IsString(rt) ||
	    !tokens_text_ok(rt->valuestring, QBR_REFRESH_MAX)) {
		cJSON_Delete(o);
		return "the token endpoint's answer has no usable access_token or refresh_token";
	}
	if (tt != NULL && (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "bearer") != 0)) {
		cJSON_Delete(o);
		return "the token endpoint's answer has a token_type other than bearer";
	}
	/* Always the returned numbers, never constants: they differ between answers (reference §1.4). */
	if (!num_in(o, "expires_in", 1, 86400, &expires_in) ||
	    !num_in(o, "x_refresh_token_expires_in", 1, 20.0 * 365 * 86400, &rexp)) {
		cJSON_Delete(o);
		return "the token endpoint's answer lacks expires_in or x_refresh_token_expires_in";
	}
	t->access_token = xstrdup(at->valuestring);
	t->refresh_token = xstrdup(rt->valuestring);
	secret_register(t->access_token);
	secret_register(t->refresh_token);
	t->obtained_at = now;
	t->access_expires_at = now + expires_in;
	t->refresh_expires_at = now + rexp;
	if (num_in(o, "x_refresh_token_hard_expires_in", 0, 20.0 * 365 * 86400, &hard))
		t->refresh_hard_expires_at = now + hard;
	cJSON_Delete(o);
	return NULL;
}

/*
 * One string field of an OAuth error answer into buf ("" if none): bounded parse, masked before it is cut (a secret
 * quoted back and cut in two would escape redaction later), at most max characters, then escaped (it reaches the
 * connection row, the log and the mail).
 */
static const char *
error_field(const char *body, size_t bodylen, const char *key, int max, char *buf, size_t len)
{
	char why[160];
	cJSON *o = json_parse_bounded(body, bodylen, TOKEN_MAX_NODES, why, sizeof why);
	const cJSON *e = o != NULL ? json_get(o, key) : NULL;

	buf[0] = '\0';
	if (cJSON_IsString(e)) {
		char *clean = redact_dup(e->valuestring);

		snprintf(buf, len, "%.*s", max, clean != NULL ? clean : "");
		free(clean);
		text_escape_inplace(buf, len, 0);
	}
	cJSON_Delete(o);
	return buf;
}

const char *
qbr_oauth_error_code(const char *body, size_t bodylen, char *buf, size_t len)
{
	return error_field(body, bodylen, "error", 60, buf, len);
}

const char *
qbr_oauth_error_desc(const char *body, size_t bodylen, char *buf, size_t len)
{
	return error_field(body, bodylen, "error_description", INT_MAX, buf, len);
}

static void lock_poll_cb(struct ev_loop *, ev_timer *, int);

/* invalid_grant_recheck for people: "120s", "0.3s". */
static const char *
recheck_text(const struct qbr *q, char *buf, size_t len)
{
	if (q->grant_recheck_ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(q->grant_recheck_ms / 1000));
	else
		snprintf(buf, len, "%.1fs", (double)q->grant_recheck_ms / 1000.0);
	return buf;
}

/* The recheck is due: take the lock again and re-read the store (another process may have refreshed meanwhile). */
static void
recheck_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct refresh *rf = t->data;

	ev_timer_stop(loop, t);
	rf->deadline = ev_now(loop) + (double)rf->q->lock_timeout_ms / 1000.0;
	ev_timer_init(&rf->timer, lock_poll_cb, 0.0, LOCK_POLL);
	rf->timer.data = rf;
	ev_timer_start(loop, &rf->timer);
}

/* "at 2026-11-29T04:00:00Z, HTTP 400 invalid_grant "Token invalid" (intuit_tid X)": what one refusal looked like. */
static void
describe_refusal(const struct http_result *r, const char *tid, char *buf, size_t len)
{
	char now[ISO8601_LEN], desc[160];

	qbr_oauth_error_desc(r->body, r->body_len, desc, sizeof desc);
	snprintf(buf, len, "at %s, HTTP %ld invalid_grant%s%s%s (intuit_tid %s)", iso8601_now(now), r->status,
	    desc[0] ? " \"" : " without a description", desc, desc[0] ? "\"" : "", tid ? tid : "-");
}

static void
token_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct refresh *rf = arg;
	struct qbr *q = rf->q;
	struct qbr_tokens nt;
	char code[64], *cause = NULL, *msg = NULL;
	const char *err, *tid = r->captured_header;

	log_info("QuickBooks token endpoint (%s): HTTP %ld, intuit_tid %s", rf->exchange ? "authorization_code" :
	    "refresh_token", r->status, tid ? tid : "-");
	memset(&nt, 0, sizeof nt);
	if (r->status == 200 && r->error == NULL) {
		if ((err = qbr_parse_token_answer(r->body, r->body_len, &nt)) != NULL) {
			tokens_clear(&nt);
			finish(rf, REFRESH_FAILED, err);
			return;
		}
		if (rf->exchange) {
			nt.realm_id = xstrdup(rf->realm);
			nt.generation = (q->have_tokens ? q->tok.generation : 0) + 1;
			nt.refreshes = 0;
		} else {
			nt.realm_id = xstrdup(q->tok.realm_id);
			nt.generation = q->tok.generation;
			nt.refreshes = q->tok.refreshes + 1;
			/* The hard cap belongs to the connection: keep the last known one if this answer lacks it. */
			if (nt.refresh_hard_expires_at == 0)
				nt.refresh_hard_expires_at = q->tok.refresh_hard_expires_at;
		}
		/* The new pair replaces the old one in memory at once (the old refresh token may be dead now), and in
		 * the store before anyone uses it. */
		tokens_copy(&q->tok, &nt);
		q->have_tokens = true;
		if (tokens_store(q->token_file, &nt, &cause) == -1) {
			log_warnx("QuickBooks: NEW TOKENS NOT STORED (%s); they are kept in memory and stored at the next "
			    "refresh; a restart before then needs `syncctl qb connect`", cause);
			xasprintf(&msg, "cannot store the new tokens: %s", cause);
			free(cause);
			tokens_clear(&nt);
			finish(rf, REFRESH_FAILED, msg);
			free(msg);
			return;
		}
		crashpoint("qbr_tokens_stored");
		if (conn_tokens_stored(q, &nt, rf->exchange, tid, &cause) == -1) {
			/* The store is the truth; the row is a mirror for operators and is rewritten next time. */
			log_warnx("QuickBooks: tokens stored but qb_connection not updated: %s", cause);
			xfree(&cause);
		}
		{
			char re[ISO8601_LEN], he[ISO8601_LEN] = "unknown";

			if (nt.refresh_hard_expires_at != 0)
				iso8601_fmt(nt.refresh_hard_expires_at, he);
			log_info("QuickBooks: tokens %s and stored (connection %lld; refresh token expires %s, hard "
			    "expiry %s)", rf->exchange ? "issued" : "refreshed", (long long)nt.generation,
			    iso8601_fmt(nt.refresh_expires_at, re), he);
		}
		tokens_clear(&nt);
		if (rf->rechecking)
			log_warnx("QuickBooks accepted the refresh token when asked again: the earlier invalid_grant (%s) "
			    "was transient; the connection is fine", rf->first_refusal);
		finish(rf, REFRESH_OK, NULL);
		return;
	}
	if (r->cancelled) {
		finish(rf, REFRESH_FAILED, "cancelled");
		return;
	}
	qbr_oauth_error_code(r->body, r->body_len, code, sizeof code);
	if (r->status == 400 && strcmp(code, "invalid_grant") == 0) {
		if (rf->exchange) {
			finish(rf, REFRESH_FAILED, "the authorization code was refused (invalid_grant): it is used, "
			    "expired, or the redirect URI differs; run `syncctl qb connect` again for a new one");
			return;
		}
		char seen[256], wait[32];

		describe_refusal(r, tid, seen, sizeof seen);
		if (!rf->rechecking && q->grant_recheck_ms > 0) {
			/* An outage can say invalid_grant too: ask once more before the operator is told to reconnect. */
			rf->rechecking = true;
			snprintf(rf->first_refusal, sizeof rf->first_refusal, "%s", seen);
			log_warnx("QuickBooks refused the refresh token %s; outages can answer this too, so it is asked "
			    "once more in %s before QuickBooks is declared disconnected", seen,
			    recheck_text(q, wait, sizeof wait));
			token_lock_release(rf->lock);
			rf->lock = NULL;
			ev_timer_stop(q->d->loop, &rf->timer);
			ev_timer_init(&rf->timer, recheck_cb, (double)q->grant_recheck_ms / 1000.0, 0.0);
			rf->timer.data = rf;
			ev_timer_start(q->d->loop, &rf->timer);
			return;
		}
		free(q->refused_refresh);
		q->refused_refresh = xstrdup(q->tok.refresh_token);
		if (rf->rechecking)
			xasprintf(&msg, "the refresh token was refused twice, %s apart (first %s; then %s): QuickBooks "
			    "must be reconnected with `syncctl qb connect`", recheck_text(q, wait, sizeof wait),
			    rf->first_refusal, seen);
		else
			xasprintf(&msg, "the refresh token was refused (%s): QuickBooks must be reconnected with "
			    "`syncctl qb connect`", seen);
		if (conn_set_state(q, "reconnect_required", msg, tid, &cause) == -1) {
			log_warnx("cannot record reconnect_required: %s", cause);
			xfree(&cause);
		}
		finish(rf, REFRESH_INVALID_GRANT, msg);
		free(msg);
		return;
	}
	if (r->status == 401 || strcmp(code, "invalid_client") == 0) {
		finish(rf, REFRESH_FAILED, "the token endpoint refused the client id or secret (invalid_client): check "
		    "[qb-reconcile] client_id and the client secret");
		return;
	}
	xasprintf(&msg, "token endpoint: %s%s%s", r->error ? r->error : "unexpected answer", code[0] ? ": " : "",
	    code);
	finish(rf, REFRESH_FAILED, msg);
	free(msg);
}

/* Retry the token call only when nothing can have been spent: no 500 (Intuit may have rotated the token). */
static bool
token_should_retry(long status, const char *ct, const char *body, size_t len, void *arg)
{
	return status != 500;
}

static void
post_token(struct refresh *rf)
{
	struct qbr *q = rf->q;
	struct http_req_opts o;
	struct buf body;
	char *enc, *auth;
	const char *headers[6];

	buf_init(&body);
	if (rf->exchange) {
		buf_adds(&body, "grant_type=authorization_code&code=");
		enc = http_urlencode(rf->code);
		buf_adds(&body, enc);
		explicit_bzero(enc, strlen(enc));
		free(enc);
		buf_adds(&body, "&redirect_uri=");
		enc = http_urlencode(q->redirect_uri);
		buf_adds(&body, enc);
		free(enc);
	} else {
		buf_adds(&body, "grant_type=refresh_token&refresh_token=");
		enc = http_urlencode(q->tok.refresh_token);
		buf_adds(&body, enc);
		explicit_bzero(enc, strlen(enc));
		free(enc);
	}
	xasprintf(&auth, "Authorization: %s", q->basic_auth);
	headers[0] = auth;
	headers[1] = "Accept: application/json";
	headers[2] = "Content-Type: application/x-www-form-urlencoded";
	headers[3] = "x-include-refresh-token-hard-expires-in: true";
	headers[4] = NULL;
	memset(&o, 0, sizeof o);
	o.method = "POST";
	o.url = q->token_url;
	o.headers = headers;
	o.body = body.data;
	o.body_len = body.len;
	o.accept_types = "application/json";
	o.max_body = TOKEN_MAX_BODY;
	o.on_done = token_done;
	o.should_retry = token_should_retry;
	o.arg = rf;
	o.capture_header = "intuit_tid";
	o.what = rf->exchange ? "token (authorization_code)" : "token (refresh_token)";
	o.retries = 1;
	http_request(q->oauth, &o);
	explicit_bzero(body.data, body.len);
	buf_free(&body);
	explicit_bzero(auth, strlen(auth));
	free(auth);
}

static void
locked(struct refresh *rf)
{
	struct qbr *q = rf->q;
	struct qbr_tokens ft;
	char *cause = NULL;
	int rc;

	memset(&ft, 0, sizeof ft);
	/* Under the lock the store is the truth: another process may have refreshed since we last looked. */
	if ((rc = tokens_load(q->token_file, &ft, &cause)) == -1) {
		finish(rf, REFRESH_FAILED, cause);
		free(cause);
		return;
	}
	if (rc == 1) {
		bool changed = !q->have_tokens || strcmp(ft.access_token, q->tok.access_token) != 0;

		tokens_copy(&q->tok, &ft);
		q->have_tokens = true;
		tokens_clear(&ft);
		if (!rf->exchange && !rf->force && qbr_access_usable(q) &&
		    (changed || rf->stale_access == NULL || strcmp(q->tok.access_token, rf->stale_access) != 0)) {
			log_info("QuickBooks: using the access token another refresh stored meanwhile");
			finish(rf, REFRESH_OK, NULL);
			return;
		}
		if (!rf->exchange && !rf->force && q->refused_refresh != NULL &&
		    strcmp(q->refused_refresh, q->tok.refresh_token) == 0) {
			/* Refused already: presenting it again is the retry loop Intuit warns about. */
			finish(rf, REFRESH_INVALID_GRANT, "the refresh token was refused (invalid_grant): QuickBooks must "
			    "be reconnected with `syncctl qb connect`");
			return;
		}
	} else if (!rf->exchange) {
		q->have_tokens = false;
		tokens_clear(&q->tok);
		finish(rf, REFRESH_NOT_CONNECTED, "QuickBooks is not connected: run `syncctl qb connect`");
		return;
	}
	post_token(rf);
}

static void
lock_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct refresh *rf = t->data;
	char *cause = NULL, *msg = NULL;
	int rc;

	if ((rc = token_lock_try(rf->q->lock_file, &rf->lock, &cause)) == 1) {
		ev_timer_stop(loop, t);
		locked(rf);
		return;
	}
	if (rc == -1 || ev_now(loop) > rf->deadline) {
		ev_timer_stop(loop, t);
		if (rc == 0)
			xasprintf(&msg, "the token lock %s is held by another process for more than %llds",
			    rf->q->lock_file, (long long)(rf->q->lock_timeout_ms / 1000));
		finish(rf, REFRESH_FAILED, rc == -1 ? cause : msg);
		free(cause);
		free(msg);
	}
}

static void
start(struct refresh *rf)
{
	struct qbr *q = rf->q;

	rf->q->refresh = rf;
	rf->deadline = ev_now(q->d->loop) + (double)q->lock_timeout_ms / 1000.0;
	/* First try from the loop too: results never arrive inside the caller. */
	ev_timer_init(&rf->timer, lock_poll_cb, 0.0, LOCK_POLL);
	rf->timer.data = rf;
	ev_timer_start(q->d->loop, &rf->timer);
}

void
qbr_refresh(struct qbr *q, bool force, const char *stale_access, refresh_done_fn fn, void *arg)
{
	struct refresh *rf = q->refresh;
	struct waiter *w = xcalloc(1, sizeof *w), **pp;

	w->fn = fn;
	w->arg = arg;
	if (rf != NULL && !rf->exchange) {
		/* Join the refresh in progress (or just finished, not yet delivered): one refresh serves every caller
		 * that needs one. */
		for (pp = &rf->waiters; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = w;
		return;
	}
	rf = refresh_new(q);
	rf->force = force;
	rf->stale_access = stale_access ? xstrdup(stale_access) : NULL;
	rf->waiters = w;
	if (q->refresh != NULL) {
		/* A code exchange holds the slot: wait for its lock by polling the same way. */
		ev_timer_init(&rf->timer, lock_poll_cb, 0.0, LOCK_POLL);
		rf->timer.data = rf;
		rf->deadline = ev_now(q->d->loop) + (double)q->lock_timeout_ms / 1000.0;
		ev_timer_start(q->d->loop, &rf->timer);
		return;
	}
	start(rf);
}

void
qbr_refresh_forget(struct qbr *q, refresh_done_fn fn, void *arg)
{
	struct refresh *rf;
	struct waiter **pp, *w;

	for (rf = q->refresh_all; rf != NULL; rf = rf->next_live)
		for (pp = &rf->waiters; (w = *pp) != NULL; pp = &w->next) {
			if (w->fn == fn && w->arg == arg) {
				*pp = w->next;
				free(w);
				return;
			}
		}
}

void
qbr_connect_exchange(struct qbr *q, const char *code, const char *realm_id, connect_done_fn fn, void *arg)
{
	struct refresh *rf = refresh_new(q);

	rf->exchange = true;
	rf->code = xstrdup(code);
	rf->realm = xstrdup(realm_id);
	rf->cfn = fn;
	rf->carg = arg;
	secret_register(rf->code);
	if (q->refresh != NULL) {
		ev_timer_init(&rf->timer, deliver_cb, 0.0, 0.0);
		rf->timer.data = rf;
		rf->result = REFRESH_FAILED;
		rf->error = xstrdup("a token refresh is in progress; try again in a minute");
		rf->finishing = true;
		ev_timer_start(q->d->loop, &rf->timer);
		return;
	}
	start(rf);
}

char *
qbr_authorize_url(struct qbr *q, const char *state)
{
	char *id = http_urlencode(q->client_id), *scope = http_urlencode(q->scope),
	    *ru = http_urlencode(q->redirect_uri), *st = http_urlencode(state), *url;

	xasprintf(&url, "%s%sclient_id=%s&response_type=code&scope=%s&redirect_uri=%s&state=%s", q->authorize_url,
	    strchr(q->authorize_url, '?') ? "&" : "?", id, scope, ru, st);
	free(id);
	free(scope);
	free(ru);
	free(st);
	return url;
}

void
qbr_oauth_fini(struct qbr *q)
{
	struct refresh *rf = q->refresh;

	if (q->refused_refresh != NULL) {
		explicit_bzero(q->refused_refresh, strlen(q->refused_refresh));
		xfree(&q->refused_refresh);
	}

	(void)rf;
	/* Shutting down: nobody waits any more (the loop has ended); an answer still in flight is dropped with the
	 * http client. */
	q->refresh = NULL;
	while (q->refresh_all != NULL)
		refresh_free(q->refresh_all);
}
