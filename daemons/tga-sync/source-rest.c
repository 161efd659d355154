/*
 * The REST source (source-rest.h): GET requests on the event loop with the project's HTTP rules (http.c:
 * timeouts, retries with backoff on connection errors, 5xx and 429 honouring Retry-After), answers parsed into
 * src_pages and stage records (parse-rest.c).
 *
 * A 2xx answer that does not parse (cut short, malformed, an HTML page instead of JSON, not the shape expected) is
 * requested again, up to parse_retries times, then the operation fails naming the request and what was wrong.
 * An RTO's scope is staged as its pages arrive; a bad scope page, or a scope whose totalCount moves while it is
 * read, starts the RTO again (its entity is dropped from the stage first), a few times at most.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "jsonlimit.h"
#include "log.h"
#include "parse-rest.h"
#include "source-rest.h"
#include "xmalloc.h"

/* Bodies are held in memory: sized to what the API sends, with room, and each JSON tree to a node budget. */
#define MAX_SEARCH_BODY ((size_t)8 << 20)	/* a page of 1,000 results is ~1 MB */
#define MAX_DETAIL_BODY ((size_t)4 << 20)	/* a component or RTO is a few KB; a unit grid ~10 KB */
#define MAX_SCOPE_BODY ((size_t)4 << 20)	/* a page of 1,000 scope rows is ~330 KB */
#define MAX_DETAIL_NODES 200000
#define GROW_AFTER 8				/* good scope pages at a halved size before it doubles again */
#define MAX_RESTARTS 3				/* an RTO read again from the start, at most */

struct rest_source {
	struct tga *t;
	int scope_size;			/* scope page size now (halved on trouble, grows back) */
	int scope_good;			/* good pages since the last change of scope_size */
};

struct rest_source *
rest_source_new(struct tga *t)
{
	struct rest_source *s = xcalloc(1, sizeof *s);

	s->t = t;
	s->scope_size = t->set.rest_scope_page_size;
	return s;
}

void
rest_source_free(struct rest_source *s)
{
	free(s);
}

/* --- one GET, with parse retries ------------------------------------------------------------------------------- */

struct req;
typedef int (*parse_fn)(struct req *, const struct http_result *, char *msg, size_t msglen);
typedef void (*end_fn)(struct req *, const struct src_error *, long status);

struct req {
	struct rest_source *src;
	struct http_group *g;
	char *url;
	char what[256];
	size_t max_body;
	int attempt;
	bool parse_once;		/* a bad answer is reported, not requested again (the caller decides) */
	bool malformed;			/* the last error was a 2xx that did not parse */
	parse_fn parse;
	end_fn end;
};

static void req_done(struct http_request *, const struct http_result *, void *);

static void
req_submit(struct req *q)
{
	static const char *const headers[] = { "Accept: application/json", NULL };
	struct http_req_opts o;

	memset(&o, 0, sizeof o);
	o.method = "GET";
	o.url = q->url;
	o.headers = headers;
	o.accept_types = "application/json,text/json,application/problem+json";
	o.max_body = q->max_body;
	o.on_done = req_done;
	o.arg = q;
	o.what = q->what;
	o.group = q->g;
	q->attempt++;
	http_request(q->src->t->http, &o);
}

/* Start a request (the url is taken over). */
static void
req_start(struct req *q, char *url, size_t max_body)
{
	free(q->url);
	q->url = url;
	q->max_body = max_body;
	q->attempt = 0;
	q->malformed = false;
	req_submit(q);
}

static void
req_fail(struct req *q, enum src_status status, long http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
req_fail(struct req *q, enum src_status status, long http_status, const char *fmt, ...)
{
	struct src_error e;
	va_list ap;

	memset(&e, 0, sizeof e);
	e.status = status;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	q->end(q, &e, http_status);
}

static void
req_done(struct http_request *hr, const struct http_result *r, void *arg)
{
	struct req *q = arg;
	struct src_error ok;
	char msg[640], detail[480];
	int rc;

	if (r->cancelled) {
		req_fail(q, SRC_CANCELLED, 0, "cancelled");
		return;
	}
	q->malformed = false;
	if (r->error == NULL) {
		if ((rc = q->parse(q, r, msg, sizeof msg)) == 0) {
			memset(&ok, 0, sizeof ok);
			q->end(q, &ok, r->status);
			return;
		}
	} else if (r->status >= 200 && r->status <= 299) {
		/* A 2xx that http.c refused (an HTML page instead of JSON): as malformed. */
		snprintf(msg, sizeof msg, "%s", r->error);
	} else {
		pr_error_text(r->body, r->body_len, detail, sizeof detail);
		/* A 400 is the API refusing the request (a filter, a parameter, the offset cap): retrying as is cannot
		 * help.  Everything else (5xx and 429 after http.c's retries, 404, 417, transport errors) is for the
		 * caller to judge by the status. */
		req_fail(q, r->status == 400 ? SRC_FAULT : SRC_TRANSIENT, r->status, "TGA REST %s: %s%s%s", q->what,
		    r->error, detail[0] ? ": " : "", detail);
		return;
	}
	q->malformed = true;
	if (!q->parse_once && q->attempt <= q->src->t->set.parse_retries) {
		log_warnx("TGA REST %s: the response does not parse (%s); requesting it again (%d of %d)", q->what, msg,
		    q->attempt, q->src->t->set.parse_retries);
		req_submit(q);
		return;
	}
	req_fail(q, SRC_TRANSIENT, r->status, "TGA REST %s: malformed response: %s (after %d attempt%s)", q->what, msg,
	    q->attempt, q->attempt == 1 ? "" : "s");
}

static char *
url(struct rest_source *src, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
url(struct rest_source *src, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b);
	buf_adds(&b, src->t->set.rest_base_url);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return buf_release(&b);
}

/* --- metadata -------------------------------------------------------------------------------------------------- */

struct meta {
	struct req q;			/* first: the callbacks get it back */
	int64_t *ticks;
	rest_done_fn done;
	void *arg;
};

static int
meta_parse(struct req *q, const struct http_result *r, char *msg, size_t msglen)
{
	struct meta *m = (struct meta *)q;

	return pr_metadata(r->body, r->body_len, m->ticks, msg, msglen);
}

static void
meta_end(struct req *q, const struct src_error *e, long status)
{
	struct meta *m = (struct meta *)q;

	m->done(m->arg, e, status);
	free(q->url);
	free(m);
}

void
rest_metadata(struct rest_source *src, struct http_group *g, int64_t *ticks, rest_done_fn done, void *arg)
{
	struct meta *m = xcalloc(1, sizeof *m);

	m->q.src = src;
	m->q.g = g;
	m->q.parse = meta_parse;
	m->q.end = meta_end;
	snprintf(m->q.what, sizeof m->q.what, "metadata");
	m->ticks = ticks;
	m->done = done;
	m->arg = arg;
	req_start(&m->q, url(src, "/metadata"), MAX_DETAIL_BODY);
}

/* --- search ---------------------------------------------------------------------------------------------------- */

struct search {
	struct req q;
	enum tga_service svc;
	const char *expect;
	int page_size;
	struct src_page *out;
	rest_done_fn done;
	void *arg;
};

static int
search_parse(struct req *q, const struct http_result *r, char *msg, size_t msglen)
{
	struct search *s = (struct search *)q;

	return pr_search(r->body, r->body_len, s->svc, s->expect, s->page_size, s->out, msg, msglen);
}

static void
search_end(struct req *q, const struct src_error *e, long status)
{
	struct search *s = (struct search *)q;

	s->done(s->arg, e, status);
	free(q->url);
	free(s);
}

void
rest_search(struct rest_source *src, struct http_group *g, const struct rest_query *rq, struct src_page *out,
    rest_done_fn done, void *arg)
{
	struct search *s = xcalloc(1, sizeof *s);
	struct buf f;
	char *enc = NULL, *u;

	s->q.src = src;
	s->q.g = g;
	s->q.parse = search_parse;
	s->q.end = search_end;
	s->svc = rq->svc;
	s->page_size = rq->page_size;
	s->out = out;
	s->done = done;
	s->arg = arg;
	/* OData: the type as the NRT's [Flags] number (reference: "Type/Id eq 2|4|8|32"); string literals double
	 * their quotes (a code never has one). */
	buf_init(&f);
	if (rq->svc == SVC_TRAINING) {
		s->expect = rest_type_from_soap(rq->type);
		buf_printf(&f, "Type/Id eq %d", rest_type_id(rq->type));
	}
	if (rq->after != NULL && rq->after[0] != '\0')
		buf_printf(&f, "%sCode gt '%s'", f.len > 0 ? " and " : "", rq->after);
	if (f.len > 0)
		enc = http_urlencode(f.data);
	u = url(src, "/search/%s?pageSize=%d&offset=%lld%s%s&orderBy=Code%%20asc&includeTotalCount=true",
	    rq->svc == SVC_TRAINING ? "training" : "organisation", rq->page_size, (long long)rq->offset,
	    enc ? "&filter=" : "", enc ? enc : "");
	snprintf(s->q.what, sizeof s->q.what, "search/%s [%s] offset %lld, %d per page",
	    rq->svc == SVC_TRAINING ? "training" : "organisation", f.len > 0 ? f.data : "all", (long long)rq->offset,
	    rq->page_size);
	free(enc);
	buf_free(&f);
	req_start(&s->q, u, MAX_SEARCH_BODY);
}

/* --- details --------------------------------------------------------------------------------------------------- */

enum det_step { D_DETAIL, D_GRID, D_SUMMARY, D_SCOPE };

struct det {
	struct req q;
	struct rest_fetch *f;
	struct stage *stage;
	rest_done_fn done;
	void *arg;
	enum det_step step;
	char *code_enc;			/* the code in a URL path */
	struct rec head;
	bool in_entity;
	/* training */
	struct pr_releases rels;
	int reli;
	/* organisation */
	bool scope_on, explicit_on, implicit_on;
	struct pr_types types;
	int ti;
	char after[TGA_CODE_MAX];	/* scope rows after this code (past the offset cap) */
	int64_t offset, total;		/* in the current type (after `after`), the total of its first page */
	int size;			/* page size of the request in flight */
	/* completeness of the current type, over its partitions: rows read, the highest code read, and what the
	 * scopesummary and the type's first page said there are (-1 unknown) */
	int64_t type_read, type_summary, type_first;
	char type_last[TGA_CODE_MAX];
	int64_t expected, shortfall;	/* over the RTO's types */
	struct pr_scope scope;
	struct pr_scope_page page;
};

static void det_request(struct det *);

static void
det_finish(struct det *d, const struct src_error *e, long status)
{
	if (d->in_entity)
		stage_entity_abort(d->stage, NULL);
	rec_free(&d->head);
	free(d->code_enc);
	free(d->q.url);
	d->done(d->arg, e, status);
	free(d);
}

static void
det_fail(struct det *d, enum src_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
det_fail(struct det *d, enum src_status st, const char *fmt, ...)
{
	struct src_error e;
	va_list ap;

	memset(&e, 0, sizeof e);
	e.status = st;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	det_finish(d, &e, 0);
}

static void
det_ok(struct det *d)
{
	struct src_error ok;

	memset(&ok, 0, sizeof ok);
	det_finish(d, &ok, 200);
}

/* The record is complete: its head closes the entity. */
static void
det_close(struct det *d)
{
	char *cause = NULL, num[32];

	if (d->f->svc == SVC_ORGANISATION) {
		snprintf(num, sizeof num, "%lld", (long long)d->scope.hash);
		rec_set_str(&d->head, ORG_SCOPE_HASH, num);
		snprintf(num, sizeof num, "%lld", (long long)d->scope.count);
		rec_set_str(&d->head, ORG_SCOPE_COUNT, num);
		rec_set_str(&d->head, ORG_SCOPE_SEEN, d->scope_on ? "1" : "0");
		d->f->scope_rows += d->scope.count;
		d->f->scope_checked = d->scope_on;
		d->f->scope_expected = d->expected;
		d->f->scope_short = d->shortfall;
	}
	if (stage_entity_end(d->stage, d->f->code, d->f->item, &d->head, &cause) == -1) {
		det_fail(d, SRC_TRANSIENT, "%s", cause);
		free(cause);
		return;
	}
	d->in_entity = false;
	det_ok(d);
}

/* Read the record again from its first request (a scope that moved, a bad scope page). */
static void
det_restart(struct det *d, const char *why)
{
	if (++d->f->restarts > MAX_RESTARTS) {
		det_fail(d, SRC_TRANSIENT, "TGA REST organisation %s: %s, %d times; giving up for now", d->f->code, why,
		    MAX_RESTARTS + 1);
		return;
	}
	log_info("TGA REST organisation %s: %s; reading it again from the start", d->f->code, why);
	if (d->in_entity)
		stage_entity_abort(d->stage, NULL);
	d->in_entity = false;
	memset(&d->scope, 0, sizeof d->scope);
	d->expected = d->shortfall = 0;
	d->step = D_DETAIL;
	det_request(d);
}

static void
next_type(struct det *d)
{
	/* Types without rows cost no request. */
	do
		d->ti++;
	while (d->ti < d->types.n && d->types.total[d->ti] == 0);
	if (d->ti >= d->types.n) {
		det_close(d);
		return;
	}
	d->offset = 0;
	d->after[0] = '\0';
	d->total = -1;
	d->type_read = 0;
	d->type_first = -1;
	d->type_last[0] = '\0';
	/* What the summary says this request will list: every row, or only the explicit or implicit ones asked for. */
	d->type_summary = d->explicit_on && d->implicit_on ? d->types.total[d->ti] : d->explicit_on ?
	    d->types.explicit_n[d->ti] : d->types.implicit_n[d->ti];
	d->step = D_SCOPE;
	det_request(d);
}

/*
 * The type's rows are all read (an empty page, or the rows reached the totals): check them against the
 * scopesummary and the type's first page.  A shortfall starts the RTO again; one that persists is staged as a
 * rejected record naming it, so the RTO's rows read are written but none is removed for not being seen, the RTO is
 * fetched again next cycle, and the run ends partial.
 */
static void
type_end(struct det *d)
{
	int64_t want = d->type_summary > d->type_first ? d->type_summary : d->type_first;
	struct rec r;
	char msg[400], *cause = NULL;

	if (want >= 0)
		d->expected += want;
	if (want < 0 || d->type_read >= want) {
		next_type(d);
		return;
	}
	snprintf(msg, sizeof msg, "RTO %s: %lld of %lld %s scope rows read (scopesummary %lld, first page %lld): "
	    "%lld missing", d->f->code, (long long)d->type_read, (long long)want, d->types.name[d->ti],
	    (long long)d->type_summary, (long long)d->type_first, (long long)(want - d->type_read));
	if (d->f->restarts < MAX_RESTARTS) {
		det_restart(d, msg);
		return;
	}
	log_warnx("TGA REST %s; still short after %d readings: its rows read are kept, none is removed, the run will "
	    "end partial and the RTO is read again next cycle", msg, MAX_RESTARTS + 1);
	d->shortfall += want - d->type_read;
	rec_init(&r);
	rec_begin(&r, REC_REJECT, 1);
	rec_set_str(&r, 0, msg);
	if (stage_put(d->stage, &r, &cause) == -1) {
		rec_free(&r);
		det_fail(d, SRC_TRANSIENT, "%s", cause);
		free(cause);
		return;
	}
	rec_free(&r);
	next_type(d);
}

static void
det_request(struct det *d)
{
	struct rest_source *src = d->q.src;
	const char *svc = d->f->svc == SVC_TRAINING ? "training" : "organisation";
	struct buf f;
	char *enc, *rel;

	d->q.parse_once = false;
	d->f->requests++;
	switch (d->step) {
	case D_DETAIL:
		snprintf(d->q.what, sizeof d->q.what, "%s %s", svc, d->f->code);
		/* include=all: the legal names, trading names, addresses, web addresses and registrations in one
		 * answer ([S7]), instead of a request for each. */
		req_start(&d->q, url(src, "/%s/%s%s", svc, d->code_enc, d->f->svc == SVC_ORGANISATION ?
		    "?include=all" : ""), MAX_DETAIL_BODY);
		return;
	case D_GRID:
		rel = http_urlencode(d->rels.number[d->reli]);
		snprintf(d->q.what, sizeof d->q.what, "training %s release %s unitgrid", d->f->code,
		    d->rels.number[d->reli]);
		req_start(&d->q, url(src, "/training/%s/releases/%s/unitgrid", d->code_enc, rel), MAX_DETAIL_BODY);
		free(rel);
		return;
	case D_SUMMARY:
		snprintf(d->q.what, sizeof d->q.what, "organisation %s scopesummary", d->f->code);
		req_start(&d->q, url(src, "/organisation/%s/scopesummary", d->code_enc), MAX_DETAIL_BODY);
		return;
	case D_SCOPE:
		/*
		 * One component type at a time: without a componentType term the API leaves out the granted
		 * qualifications.  Explicit rows only is includeImplicitItems=false, never isImplicit==false (an HTTP
		 * 500 upstream).  Sorted by code, so that past the offset cap the rows go on after the last code.
		 */
		d->size = src->scope_size;
		buf_init(&f);
		buf_printf(&f, "componentType==%s", d->types.name[d->ti]);
		if (!d->explicit_on)
			buf_adds(&f, ",isImplicit==true");
		if (d->after[0] != '\0')
			buf_printf(&f, ",code>%s", d->after);
		enc = http_urlencode(f.data);
		snprintf(d->q.what, sizeof d->q.what, "organisation %s scope [%s] offset %lld, %d per page", d->f->code,
		    f.data, (long long)d->offset, d->size);
		/* A bad page has staged part of its rows: the RTO starts again rather than the page. */
		d->q.parse_once = true;
		req_start(&d->q, url(src, "/organisation/%s/scope?offset=%lld&pageSize=%d&filters=%s&sorts=code"
		    "&includeImplicitItems=%s", d->code_enc, (long long)d->offset, d->size, enc,
		    d->implicit_on ? "true" : "false"), MAX_SCOPE_BODY);
		free(enc);
		buf_free(&f);
		return;
	}
}

static int
det_parse(struct req *q, const struct http_result *r, char *msg, size_t msglen)
{
	struct det *d = (struct det *)q;
	const struct tga_settings *set = &q->src->t->set;
	char updated[TICKS_LEN];
	cJSON *doc = NULL;
	int rc = -1;

	switch (d->step) {
	case D_DETAIL:
	case D_GRID:
		if ((doc = json_parse_bounded(r->body, r->body_len, MAX_DETAIL_NODES, msg, msglen)) == NULL)
			return -1;
		break;
	default:
		break;
	}
	switch (d->step) {
	case D_DETAIL: {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "updatedDate");
		int64_t t;
		bool zone;

		/* Unchanged (the stored UpdatedDate): nothing more to fetch or write, as SOAP skips it. */
		if (d->f->known_updated[0] != '\0' && cJSON_IsString(v) &&
		    ticks_parse(v->valuestring, strlen(v->valuestring), &t, &zone) &&
		    strcmp(ticks_format(t, updated), d->f->known_updated) == 0) {
			d->f->unchanged = true;
			rc = 0;
			break;
		}
		stage_entity_begin(d->stage);
		d->in_entity = true;
		if (d->f->svc == SVC_TRAINING)
			rc = pr_training(doc, d->stage, &d->head, updated, sizeof updated, &d->rels, msg, msglen);
		else
			rc = pr_org(doc, (set->org_flags & ORGF("ShowResponsibleLegalPersons")) != 0, d->stage, &d->head,
			    updated, sizeof updated, msg, msglen);
		if (rc == -1) {
			stage_entity_abort(d->stage, NULL);
			d->in_entity = false;
		}
		break;
	}
	case D_GRID:
		rc = pr_grid(doc, d->f->code, d->rels.number[d->reli], d->stage, msg, msglen);
		break;
	case D_SUMMARY:
		rc = pr_scopesummary(r->body, r->body_len, &d->types, msg, msglen);
		break;
	case D_SCOPE:
		rc = pr_scope_page(r->body, r->body_len, d->f->code, d->explicit_on, d->implicit_on, d->stage, &d->scope,
		    &d->page, msg, msglen);
		break;
	}
	cJSON_Delete(doc);
	return rc;
}

/* A scope page failed (after http.c's retries): halve the page size, or go on by code past an offset cap. */
static void
scope_trouble(struct det *d, const struct src_error *e, long status)
{
	struct rest_source *src = d->q.src;

	if (status == 400 && d->offset > 0 && d->type_last[0] != '\0') {
		/* The offset cap, lower than configured: the rest of the type is the codes after the last one read. */
		log_info("TGA REST organisation %s: offset %lld refused (%s); going on after code %s", d->f->code,
		    (long long)d->offset, e->msg, d->type_last);
		snprintf(d->after, sizeof d->after, "%s", d->type_last);
		d->offset = 0;
		d->total = -1;
		det_request(d);
		return;
	}
	if (e->status == SRC_TRANSIENT && (status == 417 || status == 429 || status >= 500 || status == 0) &&
	    !d->q.malformed && d->size > REST_MIN_PAGE) {
		/* The reference: 417, 429 and 5xx are answered by halving pageSize on repeated failure. */
		if (src->scope_size >= d->size) {
			src->scope_size = d->size / 2 > REST_MIN_PAGE ? d->size / 2 : REST_MIN_PAGE;
			src->scope_good = 0;
			log_warnx("TGA REST %s failed (%s): scope pages of %d rows from now on", d->q.what, e->msg,
			    src->scope_size);
		}
		d->f->halvings++;
		det_request(d);
		return;
	}
	det_finish(d, e, status);
}

static void
det_end(struct req *q, const struct src_error *e, long status)
{
	struct det *d = (struct det *)q;
	struct rest_source *src = q->src;
	const struct tga_settings *set = &src->t->set;
	char *cause = NULL;

	if (e->status != SRC_OK) {
		if (d->step == D_DETAIL && status == 404) {
			/* Gone upstream (deleted since the search, or what a crawl no longer lists): a nil entity. */
			d->f->gone = true;
			stage_entity_begin(d->stage);
			if (stage_entity_end(d->stage, d->f->code, d->f->item, NULL, &cause) == -1) {
				det_fail(d, SRC_TRANSIENT, "%s", cause);
				free(cause);
				return;
			}
			det_ok(d);
			return;
		}
		if (d->step == D_SCOPE && q->malformed) {
			det_restart(d, e->msg);
			return;
		}
		if (d->step == D_SCOPE) {
			scope_trouble(d, e, status);
			return;
		}
		det_finish(d, e, status);
		return;
	}
	switch (d->step) {
	case D_DETAIL:
		if (d->f->unchanged) {
			det_ok(d);
			return;
		}
		if (d->f->svc == SVC_TRAINING) {
			if (d->rels.n > 0 && (set->tc_flags & TCF("ShowReleases")) && (set->tc_flags & TCF("ShowUnitGrid"))) {
				d->step = D_GRID;
				d->reli = 0;
				det_request(d);
				return;
			}
			det_close(d);
			return;
		}
		if (d->scope_on) {
			d->step = D_SUMMARY;
			det_request(d);
			return;
		}
		det_close(d);
		return;
	case D_GRID:
		if (++d->reli < d->rels.n) {
			det_request(d);
			return;
		}
		det_close(d);
		return;
	case D_SUMMARY:
		d->ti = -1;
		next_type(d);
		return;
	case D_SCOPE:
		if (d->offset == 0) {
			d->total = d->page.total;
			if (d->after[0] == '\0')
				d->type_first = d->page.total;
		} else if (d->page.total >= 0 && d->total >= 0 && d->page.total != d->total) {
			char why[160];

			snprintf(why, sizeof why, "its %s scope went from %lld to %lld rows while it was read",
			    d->types.name[d->ti], (long long)d->total, (long long)d->page.total);
			det_restart(d, why);
			return;
		}
		if (++src->scope_good >= GROW_AFTER && src->scope_size < set->rest_scope_page_size) {
			src->scope_size = src->scope_size * 2 < set->rest_scope_page_size ? src->scope_size * 2 :
			    set->rest_scope_page_size;
			src->scope_good = 0;
		}
		d->type_read += d->page.rows;
		if (d->page.last[0] != '\0')
			snprintf(d->type_last, sizeof d->type_last, "%s", d->page.last);
		if (d->page.rows == 0) {
			/* An empty page before the total (a server that stops serving at some offset): go on after the
			 * last code read, from offset 0, as past an offset cap; at offset 0 it is a shortfall. */
			if (d->offset > 0 && d->type_last[0] != '\0' && ((d->total >= 0 && d->offset < d->total) ||
			    (d->type_summary >= 0 && d->type_read < d->type_summary))) {
				log_warnx("TGA REST %s: an empty page before the total (%lld); going on after code %s",
				    d->q.what, (long long)d->total, d->type_last);
				snprintf(d->after, sizeof d->after, "%s", d->type_last);
				d->offset = 0;
				d->total = -1;
				det_request(d);
				return;
			}
			type_end(d);
			return;
		}
		/*
		 * More after this page unless its rows reach the totals (the page's, and the summary's; the summary's
		 * alone when the page has none): a server may serve fewer rows than asked (a page cap below pageSize),
		 * so a short page is no end.  Without any total the end is the first empty page.
		 */
		if ((d->page.total >= 0 ? d->offset + d->page.rows >= d->page.total : d->type_summary >= 0) &&
		    (d->type_summary < 0 || d->type_read >= d->type_summary)) {
			type_end(d);
			return;
		}
		d->offset += d->page.rows;
		if (set->rest_offset_cap > 0 && d->offset + src->scope_size > set->rest_offset_cap &&
		    d->type_last[0] != '\0') {
			/* The next page would reach the offset cap: go on with the codes after the last one. */
			snprintf(d->after, sizeof d->after, "%s", d->type_last);
			d->offset = 0;
			d->total = -1;
		}
		det_request(d);
		return;
	}
}

void
rest_details(struct rest_source *src, struct http_group *g, struct rest_fetch *f, struct stage *stage,
    rest_done_fn done, void *arg)
{
	const struct tga_settings *set = &src->t->set;
	struct det *d = xcalloc(1, sizeof *d);

	d->q.src = src;
	d->q.g = g;
	d->q.parse = det_parse;
	d->q.end = det_end;
	d->f = f;
	d->stage = stage;
	d->done = done;
	d->arg = arg;
	d->code_enc = http_urlencode(f->code);
	d->explicit_on = (set->org_flags & ORGF("ShowExplicitScope")) != 0;
	d->implicit_on = (set->org_flags & ORGF("ShowImplicitScope")) != 0;
	d->scope_on = d->explicit_on || d->implicit_on;
	rec_init(&d->head);
	f->unchanged = f->gone = false;
	d->step = D_DETAIL;
	det_request(d);
}
