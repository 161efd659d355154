/*
 * The QuickBooks Online Accounting API client.
 *
 * Every call: Bearer token, Accept: application/json, minorversion, the requestid of a write, intuit_tid logged
 * for every response.  The http client under it (common/http.c) keeps QuickBooks' limits: at most max_in_flight
 * (≤ 10) requests at once, min_interval between starts (134 ms by default: under 8 per second and 450 per minute,
 * well inside QuickBooks' 10/s and 500/min), and a 429 pauses the whole client (pause_on_429) for Retry-After or
 * throttle_wait (60 s) before the request is retried.  On top of that, here:
 *  - 401: refresh once (serialised with every other refresh, see oauth.c) and send the same request again, with
 *    the same requestid, so a write that did happen is replayed, not repeated;
 *  - 403 ThrottleExceeded (the old form of throttling): pause the client and send again (up to 3 times);
 *  - error bodies are parsed whatever their shape: JSON "Fault" or lower-case "fault", "Error"/"error",
 *    "Message"/"message", code as string or number, XML <Fault> (QuickBooks sends XML for throttling and some auth
 *    errors even to Accept: application/json), and a 200 that carries a Fault is an error.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "daemon.h"
#include "http.h"
#include "jsonlimit.h"
#include "log.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

#define THROTTLE_REISSUES 3
/* A query page is at most 1000 entities (MAXRESULTS), an invoice ~2 KB and ~100 values: sized with room.  Beyond
 * that the upstream is broken or hostile, and the tree of a bigger body would not fit the unit's memory. */
#define API_MAX_BODY ((size_t)8 << 20)
#define API_MAX_NODES 400000
#define FAULT_MAX_NODES 10000	/* an error body is at most 64 KiB and a handful of values */

struct qbo_call {
	struct qbr *q;
	char *method, *path, *query, *requestid, *body, *ctype, *what;
	struct http_group *group;
	qbo_done_fn done;
	void *arg;
	struct http_request *req;
	bool waiting_refresh;
	bool auth_retried;
	bool ended;
	int throttle_reissues;
	char *access_used;
	ev_timer defer;
	char tid[80];
};

static void send_call(struct qbo_call *);

/* --- fault parsing ------------------------------------------------------------------------------------------ */

/* A decoded JSON string, masked before it is cut (its escapes may have hidden a secret from the body's masking). */
static void
copy_bounded(char *dst, size_t len, const char *src)
{
	char *clean = redact_dup(src != NULL ? src : "");

	snprintf(dst, len, "%s", clean != NULL ? clean : "");
	free(clean);
}

static void
code_of(const cJSON *v, char *dst, size_t len)
{
	if (cJSON_IsString(v))
		snprintf(dst, len, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(dst, len, "%.0f", v->valuedouble);
}

static bool
parse_json_fault(const char *body, size_t len, struct qbo_fault *f)
{
	char why[160];
	cJSON *root = json_parse_bounded(body, len, FAULT_MAX_NODES, why, sizeof why);
	const cJSON *fault, *errs, *e;
	bool ok = false;

	if (root == NULL)
		return false;
	if ((fault = json_get(root, "Fault")) != NULL && cJSON_IsObject(fault)) {
		copy_bounded(f->type, sizeof f->type, json_str(fault, "type"));
		errs = json_get(fault, "Error");
		e = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : errs;
		if (cJSON_IsObject(e)) {
			code_of(json_get(e, "code"), f->code, sizeof f->code);
			copy_bounded(f->message, sizeof f->message, json_str(e, "Message"));
			copy_bounded(f->detail, sizeof f->detail, json_str(e, "Detail"));
		}
		ok = true;
	} else if (json_str(root, "error") != NULL) {
		/* OAuth-style: {"error":"invalid_grant","error_description":"..."} */
		copy_bounded(f->code, sizeof f->code, json_str(root, "error"));
		copy_bounded(f->message, sizeof f->message, json_str(root, "error_description"));
		ok = true;
	}
	cJSON_Delete(root);
	return ok;
}

static const char *
find_ci(const char *hay, const char *end, const char *needle)
{
	size_t n = strlen(needle);
	const char *p;

	for (p = hay; p + n <= end; p++)
		if (strncasecmp(p, needle, n) == 0)
			return p;
	return NULL;
}

/* XML text of <tag>...</tag> after start, entities decoded, bounded. */
static void
xml_text(const char *start, const char *end, const char *tag, char *out, size_t len)
{
	char open[32], close[32];
	const char *a, *b;
	size_t o = 0;

	out[0] = '\0';
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	if ((a = find_ci(start, end, open)) == NULL || (b = find_ci(a, end, close)) == NULL)
		return;
	for (a += strlen(open); a < b && o + 1 < len; a++) {
		if (*a == '&') {
			static const struct { const char *e; char c; } ents[] = { { "&amp;", '&' }, { "&lt;", '<' },
				{ "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' } };
			size_t i;

			for (i = 0; i < sizeof ents / sizeof ents[0]; i++) {
				size_t el = strlen(ents[i].e);

				if ((size_t)(b - a) >= el && strncmp(a, ents[i].e, el) == 0) {
					out[o++] = ents[i].c;
					a += el - 1;
					break;
				}
			}
			if (i < sizeof ents / sizeof ents[0])
				continue;
		}
		out[o++] = (*a == '\n' || *a == '\r' || *a == '\t') ? ' ' : *a;
	}
	out[o] = '\0';
}

static void
xml_attr(const char *start, const char *end, const char *attr, char *out, size_t len)
{
	char pat[40];
	const char *a, *b;

	out[0] = '\0';
	snprintf(pat, sizeof pat, "%s=\"", attr);
	if ((a = find_ci(start, end, pat)) == NULL)
		return;
	a += strlen(pat);
	if ((b = memchr(a, '"', (size_t)(end - a))) == NULL)
		return;
	snprintf(out, len, "%.*s", (int)(b - a) < (int)len - 1 ? (int)(b - a) : (int)len - 1, a);
}

static bool
parse_xml_fault(const char *body, size_t len, struct qbo_fault *f)
{
	const char *end = body + len, *fault, *err;

	if ((fault = find_ci(body, end, "<Fault")) == NULL)
		return false;
	xml_attr(fault, end, "type", f->type, sizeof f->type);
	if ((err = find_ci(fault, end, "<Error")) != NULL) {
		xml_attr(err, end, "code", f->code, sizeof f->code);
		xml_text(err, end, "Message", f->message, sizeof f->message);
		xml_text(err, end, "Detail", f->detail, sizeof f->detail);
	}
	return true;
}

static bool
parse_fault(const char *body, size_t len, struct qbo_fault *f)
{
	const char *p;
	size_t i = 0;

	while (i < len && isspace((unsigned char)body[i]))
		i++;
	if (i < len && (body[i] == '{') && parse_json_fault(body + i, len - i, f))
		goto found;
	if (parse_xml_fault(body, len, f))
		goto found;
	return false;
found:
	/* "message=ThrottleExceeded; errorCode=003001; statusCode=429": the code, when the element had none. */
	if (f->code[0] == '\0' && (p = strstr(f->message, "errorCode=")) != NULL) {
		p += 10;
		while (*p == '0')
			p++;
		snprintf(f->code, sizeof f->code, "%.*s", (int)strspn(p, "0123456789"), p);
	}
	return true;
}

bool
qbo_parse_fault(const char *body, size_t len, const char *content_type, struct qbo_fault *f)
{
	char *copy, *p;
	bool found;

	memset(f, 0, sizeof *f);
	if (body == NULL || len == 0)
		return false;
	/*
	 * An error body may quote what we sent (a token, the client secret).  Mask the registered secrets before the
	 * fields are cut to their sizes: a secret cut in two is one that redaction further on no longer recognises.
	 */
	copy = xmalloc(len + 1);
	memcpy(copy, body, len);
	copy[len] = '\0';
	for (p = copy; p < copy + len; p += strlen(p) + 1)
		redact(p);
	found = parse_fault(copy, len, f);
	free(copy);
	/* QuickBooks' words go into logs, rows and mails: escaped on the way in. */
	text_escape_inplace(f->code, sizeof f->code, 0);
	text_escape_inplace(f->type, sizeof f->type, 0);
	text_escape_inplace(f->message, sizeof f->message, 0);
	text_escape_inplace(f->detail, sizeof f->detail, 0);
	return found;
}

bool
qbo_parse_6140(const char *detail, char *txn_type, size_t tlen, char *txn_id, size_t ilen)
{
	const char *t = strstr(detail, "TxnType="), *i = strstr(detail, "TxnId=");
	size_t n;

	if (t == NULL || i == NULL)
		return false;
	t += 8;
	n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
	if (n == 0 || n >= tlen)
		return false;
	snprintf(txn_type, tlen, "%.*s", (int)n, t);
	i += 6;
	n = strspn(i, "0123456789");
	if (n == 0 || n >= ilen || n > 20)
		return false;
	snprintf(txn_id, ilen, "%.*s", (int)n, i);
	return true;
}

/* --- calls -------------------------------------------------------------------------------------------------- */

static void
call_free(struct qbo_call *c)
{
	ev_timer_stop(c->q->d->loop, &c->defer);
	free(c->method);
	free(c->path);
	free(c->query);
	free(c->requestid);
	free(c->body);
	free(c->ctype);
	free(c->what);
	if (c->access_used != NULL) {
		explicit_bzero(c->access_used, strlen(c->access_used));
		free(c->access_used);
	}
	free(c);
}

static void
end_call(struct qbo_call *c, struct qbo_resp *resp)
{
	c->ended = true;
	resp->tid = c->tid[0] ? c->tid : NULL;
	c->done(resp, c->arg);
	cJSON_Delete(resp->json);
	call_free(c);
}

static void
end_error(struct qbo_call *c, const char *error, bool auth_lost)
{
	struct qbo_resp r;

	memset(&r, 0, sizeof r);
	r.error = error;
	r.auth_lost = auth_lost;
	end_call(c, &r);
}

static void
refreshed(enum refresh_result res, const char *error, void *arg)
{
	struct qbo_call *c = arg;
	char *msg = NULL;

	c->waiting_refresh = false;
	switch (res) {
	case REFRESH_OK:
		send_call(c);
		return;
	case REFRESH_NOT_CONNECTED:
	case REFRESH_INVALID_GRANT:
		end_error(c, error ? error : "QuickBooks is not connected", true);
		return;
	case REFRESH_FAILED:
	default:
		xasprintf(&msg, "cannot refresh the QuickBooks token: %s", error ? error : "unknown error");
		end_error(c, msg, false);
		free(msg);
		return;
	}
}

static bool
is_throttle(const struct qbo_fault *f, const char *body)
{
	return strcmp(f->code, "3001") == 0 || strstr(body, "ThrottleExceeded") != NULL;
}

static void
http_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct qbo_call *c = arg;
	struct qbo_resp resp;
	char msg[1600];

	c->req = NULL;
	if (r->cancelled) {
		memset(&resp, 0, sizeof resp);
		resp.cancelled = true;
		resp.error = "cancelled";
		end_call(c, &resp);
		return;
	}
	snprintf(c->tid, sizeof c->tid, "%s", r->captured_header ? r->captured_header : "");
	log_info("QuickBooks %s: HTTP %ld in %.2fs (%d attempt%s), intuit_tid %s", c->what, r->status, r->elapsed,
	    r->attempts, r->attempts == 1 ? "" : "s", c->tid[0] ? c->tid : "-");

	memset(&resp, 0, sizeof resp);
	resp.status = r->status;
	if (r->status == 401 && !c->auth_retried) {
		/* Expired or revoked access token: one refresh (under the lock), then the same request again. */
		c->auth_retried = true;
		c->waiting_refresh = true;
		qbr_refresh(c->q, false, c->access_used, refreshed, c);
		return;
	}
	if (r->status >= 200 && r->status <= 299 && r->error == NULL) {
		char why[160] = "not an object";

		if ((resp.json = json_parse_bounded(r->body, r->body_len, API_MAX_NODES, why, sizeof why)) == NULL ||
		    !cJSON_IsObject(resp.json)) {
			cJSON_Delete(resp.json);
			resp.json = NULL;
			snprintf(msg, sizeof msg, "QuickBooks %s: HTTP %ld with a body that is not a JSON object "
			    "(intuit_tid %s): %s", c->what, r->status, c->tid[0] ? c->tid : "-", why);
			resp.error = msg;
			end_call(c, &resp);
			return;
		}
		if (json_get(resp.json, "Fault") != NULL) {
			/* "200 may still contain a Fault" (error-codes page). */
			char *s = cJSON_PrintUnformatted(resp.json);

			qbo_parse_fault(s, strlen(s), "application/json", &resp.fault);
			free(s);
			cJSON_Delete(resp.json);
			resp.json = NULL;
			resp.has_fault = true;
			resp.answered = true;
			snprintf(msg, sizeof msg, "QuickBooks fault %s: %s%s%s (intuit_tid %s)", resp.fault.code,
			    resp.fault.message, resp.fault.detail[0] ? ": " : "", resp.fault.detail, c->tid);
			resp.error = msg;
			end_call(c, &resp);
			return;
		}
		resp.answered = true;
		end_call(c, &resp);
		return;
	}
	resp.has_fault = qbo_parse_fault(r->body, r->body_len, r->content_type, &resp.fault);
	if ((r->status == 403 || r->status == 429) && is_throttle(&resp.fault, r->body) &&
	    c->throttle_reissues < THROTTLE_REISSUES) {
		/* Throttled beyond the http client's own retries (or the old 403 form): wait as documented. */
		c->throttle_reissues++;
		log_warnx("QuickBooks %s: throttled (HTTP %ld); waiting %llds", c->what, r->status,
		    (long long)(c->q->throttle_wait_ms / 1000));
		http_client_pause(c->q->api, (double)c->q->throttle_wait_ms / 1000.0);
		send_call(c);
		return;
	}
	if (r->status == 401)
		resp.auth_lost = true;	/* refused even after a refresh: the connection itself is the problem */
	/* A 4xx with a fault is QuickBooks' definite answer; 5xx, 429 and transport errors leave the outcome open. */
	resp.answered = r->status >= 400 && r->status <= 499 && r->status != 429 && r->status != 401 &&
	    resp.has_fault;
	if (resp.has_fault)
		snprintf(msg, sizeof msg, "QuickBooks %s: HTTP %ld, fault %s%s%s: %s%s%s (intuit_tid %s)", c->what,
		    r->status, resp.fault.code[0] ? resp.fault.code : "?", resp.fault.type[0] ? " " : "",
		    resp.fault.type, resp.fault.message, resp.fault.detail[0] ? ": " : "", resp.fault.detail,
		    c->tid[0] ? c->tid : "-");
	else
		snprintf(msg, sizeof msg, "%s (intuit_tid %s)", r->error ? r->error : "unexpected answer",
		    c->tid[0] ? c->tid : "-");
	resp.error = msg;
	end_call(c, &resp);
}

static void
send_call(struct qbo_call *c)
{
	struct qbr *q = c->q;
	struct http_req_opts o;
	struct buf url;
	char *auth, *enc;
	const char *headers[5];
	int nh = 0;

	if (!q->have_tokens || q->tok.realm_id == NULL) {
		end_error(c, "QuickBooks is not connected: run `syncctl qb connect`", true);
		return;
	}
	if (!qbr_access_usable(q) && !c->auth_retried) {
		/* Expired (or about to): refresh first instead of collecting a 401. */
		c->auth_retried = true;
		c->waiting_refresh = true;
		qbr_refresh(q, false, q->tok.access_token, refreshed, c);
		return;
	}
	buf_init(&url);
	buf_printf(&url, "%s/v3/company/%s/%s?minorversion=%d", q->api_base, q->tok.realm_id, c->path,
	    q->minor_version);
	if (c->query != NULL)
		buf_printf(&url, "&%s", c->query);
	if (c->requestid != NULL) {
		enc = http_urlencode(c->requestid);
		buf_printf(&url, "&requestid=%s", enc);
		free(enc);
	}
	free(c->access_used);
	c->access_used = xstrdup(q->tok.access_token);
	xasprintf(&auth, "Authorization: Bearer %s", q->tok.access_token);
	headers[nh++] = auth;
	headers[nh++] = "Accept: application/json";
	if (strcmp(c->method, "POST") == 0)
		headers[nh++] = c->ctype;
	headers[nh] = NULL;
	memset(&o, 0, sizeof o);
	o.method = c->method;
	o.url = url.data;
	o.headers = headers;
	o.body = c->body;
	o.body_len = c->body ? strlen(c->body) : 0;
	o.accept_types = "application/json";
	o.max_body = API_MAX_BODY;
	o.on_done = http_done;
	o.arg = c;
	o.capture_header = "intuit_tid";
	o.what = c->what;
	o.group = c->group;
	c->req = http_request(q->api, &o);
	explicit_bzero(auth, strlen(auth));
	free(auth);
	buf_free(&url);
}

static void
defer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	send_call(t->data);
}

struct qbo_call *
qbo_call(struct qbr *q, const struct qbo_req *r)
{
	struct qbo_call *c = xcalloc(1, sizeof *c);

	c->q = q;
	c->method = xstrdup(r->method ? r->method : (r->body ? "POST" : "GET"));
	c->path = xstrdup(r->path);
	c->query = r->query ? xstrdup(r->query) : NULL;
	c->requestid = r->requestid ? xstrdup(r->requestid) : NULL;
	c->body = r->body ? xstrdup(r->body) : NULL;
	xasprintf(&c->ctype, "Content-Type: %s", r->content_type ? r->content_type : "application/json");
	c->what = xstrdup(r->what ? r->what : r->path);
	c->group = r->group;
	c->done = r->done;
	c->arg = r->arg;
	/* Start from the loop: the caller gets its call handle before any callback. */
	ev_timer_init(&c->defer, defer_cb, 0.0, 0.0);
	c->defer.data = c;
	ev_timer_start(q->d->loop, &c->defer);
	return c;
}

void
qbo_call_cancel(struct qbo_call *c)
{
	struct qbo_resp r;

	if (c->req != NULL)
		return;		/* in its http group: the group's cancel ends it */
	if (c->waiting_refresh)
		qbr_refresh_forget(c->q, refreshed, c);
	memset(&r, 0, sizeof r);
	r.cancelled = true;
	r.error = "cancelled";
	end_call(c, &r);
}

bool
qbo_call_in_flight(const struct qbo_call *c)
{
	return c->req != NULL;
}
