/*
 * The source operations over the SOAP web services: build the request (soap.c), send it on the event loop with the
 * project's HTTP rules (http.c: timeouts, retries with backoff on connection errors, 5xx and 429 honouring
 * Retry-After; a 500 carrying a SOAP fault about the request is not retried, an s:Server fault is), spool the
 * answer, parse it streaming (parse-*.c), and say what happened in the terms of source.h.
 *
 * A 2xx answer that does not parse (cut short, malformed, not the expected result) is requested again, up to
 * parse_retries times, before the operation fails naming the operation and what was wrong.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "log.h"
#include "parse.h"
#include "soap.h"
#include "source.h"
#include "xmalloc.h"
#include "xml.h"

struct tga_source {
	struct tga *t;
	char *url[2];
};

/* Sized to what the service sends, with room: an RTO with 30,000 scope rows is ~10 MB, a page of 1000 search
 * results ~1 MB, the server time a few hundred bytes.  More is a broken or hostile upstream. */
#define MAX_DETAILS_BODY ((size_t)64 << 20)
#define MAX_SEARCH_BODY ((size_t)16 << 20)
#define MAX_TIME_BODY ((size_t)64 << 10)

enum call_kind { K_TIME, K_MODIFIED, K_DELETED, K_DETAILS };

struct call {
	struct tga_source *src;
	struct http_group *group;
	enum call_kind kind;
	enum tga_service svc;
	const char *op;
	char what[192];
	struct buf body;
	char *action;
	int attempt;
	int page_size;
	int64_t *time_out;
	struct src_page *page;
	struct src_tombs *tombs;
	struct stage *stage;
	char code[TGA_CODE_MAX];
	int item;
	src_done_fn done;
	void *arg;
};

/* --- the source --------------------------------------------------------------------------------------------- */

struct tga_source *
src_soap_new(struct tga *t)
{
	struct tga_source *s = xcalloc(1, sizeof *s);

	s->t = t;
	s->url[SVC_TRAINING] = soap_url(&t->set, SVC_TRAINING);
	s->url[SVC_ORGANISATION] = soap_url(&t->set, SVC_ORGANISATION);
	return s;
}

void
src_free(struct tga_source *s)
{
	if (s == NULL)
		return;
	free(s->url[0]);
	free(s->url[1]);
	free(s);
}

static void call_done(struct http_request *, const struct http_result *, void *);

static void
submit(struct call *c)
{
	struct http_req_opts o;
	const char *headers[4];

	headers[0] = "Content-Type: text/xml; charset=utf-8";
	headers[1] = c->action;
	headers[2] = "Accept: text/xml";
	headers[3] = NULL;
	memset(&o, 0, sizeof o);
	o.method = "POST";
	o.url = c->src->url[c->svc];
	o.headers = headers;
	o.body = c->body.data;
	o.body_len = c->body.len;
	o.accept_types = "text/xml,application/soap+xml,application/xml";
	/* Spooled to a file, parsed streaming: the bound is on disk use, not memory.  The largest answers are RTOs
	 * with 30,000 scope rows (~10 MB); a page of 1000 search results is ~1 MB. */
	o.max_body = c->kind == K_DETAILS ? MAX_DETAILS_BODY : c->kind == K_TIME ? MAX_TIME_BODY : MAX_SEARCH_BODY;
	o.spool = true;
	o.should_retry = soap_should_retry;
	o.on_done = call_done;
	o.arg = c;
	o.what = c->what;
	o.group = c->group;
	c->attempt++;
	http_request(c->src->t->http, &o);
}

static struct call *
call_new(struct tga_source *src, struct http_group *g, enum call_kind kind, enum tga_service svc, const char *op,
    src_done_fn done, void *arg)
{
	struct call *c = xcalloc(1, sizeof *c);

	c->src = src;
	c->group = g;
	c->kind = kind;
	c->svc = svc;
	c->op = op;
	c->done = done;
	c->arg = arg;
	c->item = -1;
	buf_init(&c->body);
	c->action = soap_action_header(&src->t->set, svc, op);
	snprintf(c->what, sizeof c->what, "%s.%s", soap_service_name(svc), op);
	return c;
}

static void
call_free(struct call *c)
{
	/* The body holds the password: wipe it before the memory goes back. */
	if (c->body.data != NULL)
		explicit_bzero(c->body.data, c->body.cap);
	buf_free(&c->body);
	free(c->action);
	free(c);
}

static void
finish(struct call *c, enum src_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
finish(struct call *c, enum src_status status, const char *fmt, ...)
{
	struct src_error e;
	va_list ap;

	memset(&e, 0, sizeof e);
	e.status = status;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(e.msg, sizeof e.msg, fmt, ap);
		va_end(ap);
	}
	c->done(c->arg, &e);
	call_free(c);
}

static void
report_fault(struct call *c, const struct xml_fault *f, long status, int attempts)
{
	char detail[1100] = "";

	if (f->detail[0] != '\0')
		snprintf(detail, sizeof detail, " [ValidationFault: %s]", f->detail);
	switch (soap_fault_class(f)) {
	case FAULT_CREDENTIALS:
		finish(c, SRC_CREDENTIALS, "TGA rejected the credentials: %s (SOAP fault %s from %s; check [tga-sync] "
		    "username and the password in password_file or the tga-password credential; a wrong clock can also "
		    "cause this)", f->string, f->code, c->what);
		return;
	case FAULT_SERVER:
		/* Already retried with backoff by the HTTP layer (soap_should_retry): the step retry is next. */
		finish(c, SRC_TRANSIENT, "TGA %s: SOAP fault %s (HTTP %ld, after %d attempt%s): %s%s", c->what, f->code,
		    status, attempts, attempts == 1 ? "" : "s", f->string, detail);
		return;
	case FAULT_CLIENT:
		finish(c, SRC_FAULT, "TGA %s: SOAP fault %s (HTTP %ld): %s%s", c->what, f->code, status, f->string, detail);
		return;
	}
}

/* Parse the answer with the call's handler; returns 0, or -1 with msg (malformed), or 1 if it was a fault. */
static int
parse(struct call *c, const struct http_result *r, char *msg, size_t msglen)
{
	const struct tga_settings *set = &c->src->t->set;
	struct xml_parser *p;
	struct ps_ctx ps;
	struct pd_ctx pd;
	void *ctx;
	const struct xml_handler *hd;
	int rc;

	if (c->kind == K_DETAILS) {
		pd_init(&pd, c->svc, c->svc == SVC_TRAINING ? set->tc_flags : set->org_flags, c->stage, c->code);
		hd = c->svc == SVC_TRAINING ? &pd_tc_handler : &pd_org_handler;
		ctx = &pd;
		stage_entity_begin(c->stage);
	} else {
		ps_init(&ps, c->kind == K_TIME ? PS_TIME : c->kind == K_MODIFIED ? PS_MODIFIED : PS_DELETED, c->svc,
		    c->page_size);
		if (c->page != NULL) {
			src_page_clear(c->page);
			ps.page = c->page;
		}
		if (c->tombs != NULL) {
			src_tombs_clear(c->tombs);
			ps.tombs = c->tombs;
		}
		ps.time_out = c->time_out;
		hd = &ps_handler;
		ctx = &ps;
	}
	p = xml_parser_new(hd, ctx);
	rc = r->spool_fd != -1 ? xml_parse_fd(p, r->spool_fd) : xml_parse_mem(p, r->body, r->body_len);
	if (rc == 0 && xml_fault(p)->present) {
		if (c->kind == K_DETAILS)
			stage_entity_abort(c->stage, NULL);
		if (c->kind == K_DETAILS)
			pd_free(&pd);
		report_fault(c, xml_fault(p), r->status, r->attempts);
		xml_parser_free(p);
		return 1;
	}
	if (rc == -1)
		snprintf(msg, msglen, "%s", xml_error(p));
	else if (c->kind == K_DETAILS)
		rc = pd_check(&pd, msg, msglen);
	else
		rc = ps_check(&ps, msg, msglen);
	if (c->kind == K_DETAILS) {
		char *cause = NULL;

		if (rc == 0 && stage_entity_end(c->stage, c->code, c->item, pd.nil ? NULL : &pd.head, &cause) == -1) {
			snprintf(msg, msglen, "%s", cause);
			free(cause);
			rc = -1;
		}
		if (rc == -1)
			stage_entity_abort(c->stage, NULL);
		pd_free(&pd);
	}
	xml_parser_free(p);
	return rc;
}

static void
call_done(struct http_request *req, const struct http_result *r, void *arg)
{
	struct call *c = arg;
	char msg[640];
	int rc;

	if (r->cancelled) {
		if (r->spool_fd != -1)
			close(r->spool_fd);
		finish(c, SRC_CANCELLED, "cancelled");
		return;
	}
	if (r->error != NULL) {
		/* An error answer's body (bounded by http.c) may be a SOAP fault: that is the real message. */
		struct xml_fault f;

		if (soap_parse_fault(r->body, r->body_len, &f)) {
			report_fault(c, &f, r->status, r->attempts);
			return;
		}
		if (r->status == 401 || r->status == 403) {
			finish(c, SRC_CREDENTIALS, "TGA rejected the credentials: %s (check [tga-sync] username and the "
			    "password in password_file or the tga-password credential)", r->error);
			return;
		}
		finish(c, SRC_TRANSIENT, "%s", r->error);
		return;
	}
	rc = parse(c, r, msg, sizeof msg);
	if (r->spool_fd != -1)
		close(r->spool_fd);
	if (rc == 1)
		return;		/* a fault, reported */
	if (rc == 0) {
		finish(c, SRC_OK, NULL);
		return;
	}
	if (c->attempt <= c->src->t->set.parse_retries) {
		log_warnx("TGA %s: the response does not parse (%s); requesting it again (%d of %d)", c->what, msg,
		    c->attempt, c->src->t->set.parse_retries);
		submit(c);
		return;
	}
	finish(c, SRC_TRANSIENT, "TGA %s: malformed response: %s (after %d attempt%s)", c->what, msg, c->attempt,
	    c->attempt == 1 ? "" : "s");
}

/* --- operations --------------------------------------------------------------------------------------------- */

void
src_server_time(struct tga_source *src, struct http_group *g, int64_t *ticks, src_done_fn done, void *arg)
{
	struct call *c = call_new(src, g, K_TIME, SVC_TRAINING, "GetServerTime", done, arg);

	c->time_out = ticks;
	soap_server_time(&c->body, &src->t->set, src->t->password);
	submit(c);
}

void
src_search_modified(struct tga_source *src, struct http_group *g, enum tga_service svc, int64_t from, int64_t to,
    int page, int page_size, struct src_page *out, src_done_fn done, void *arg)
{
	struct call *c = call_new(src, g, K_MODIFIED, svc, "SearchByModifiedDate", done, arg);
	char a[TICKS_LEN], b[TICKS_LEN];

	snprintf(c->what, sizeof c->what, "%s.SearchByModifiedDate [%s, %s) page %d", soap_service_name(svc),
	    ticks_format(from, a), ticks_format(to, b), page);
	c->page = out;
	c->page_size = page_size;
	soap_search_modified(&c->body, &src->t->set, src->t->password, svc, from, to, page, page_size);
	submit(c);
}

void
src_search_deleted(struct tga_source *src, struct http_group *g, enum tga_service svc, int64_t from, int64_t to,
    int page, int page_size, struct src_tombs *out, src_done_fn done, void *arg)
{
	struct call *c = call_new(src, g, K_DELETED, svc, "SearchDeletedByDeletedDate", done, arg);
	char a[TICKS_LEN], b[TICKS_LEN];

	snprintf(c->what, sizeof c->what, "%s.SearchDeletedByDeletedDate [%s, %s) page %d", soap_service_name(svc),
	    ticks_format(from, a), ticks_format(to, b), page);
	c->tombs = out;
	c->page_size = page_size;
	soap_search_deleted(&c->body, &src->t->set, src->t->password, from, to, page, page_size);
	submit(c);
}

void
src_get_details(struct tga_source *src, struct http_group *g, enum tga_service svc, const char *code, int item,
    struct stage *stage, src_done_fn done, void *arg)
{
	struct call *c = call_new(src, g, K_DETAILS, svc, "GetDetails", done, arg);

	snprintf(c->what, sizeof c->what, "%s.GetDetails %s", soap_service_name(svc), code);
	snprintf(c->code, sizeof c->code, "%s", code);
	c->item = item;
	c->stage = stage;
	soap_get_details(&c->body, &src->t->set, src->t->password, svc, code);
	submit(c);
}
