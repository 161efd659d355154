/*
 * Pushing a set of invoices to QuickBooks, exactly once each.  Used by the push phase (a batch per step) and by
 * `syncctl qb retry` (one invoice, at once).
 *
 *   1. Local checks (mapping.c): an invalid invoice is failed with the reason and never sent; an is_test invoice is
 *      held back when the company is production.
 *   2. Customers without a QuickBooks id: one query for the batch (DisplayName IN (...)), then a create for each
 *      one not found (requestid per customer and name); 6240 (name taken) -> look the name up, inactive customers
 *      included, and use it if it is active; an inactive one (or none: a vendor or employee has the name) fails
 *      the invoice with what the operator can do: reactivate it in QuickBooks, or map the customer.
 *   3. At the same time, one query for the batch's DocNumbers (DocNumber IN (...)): an invoice already in
 *      QuickBooks (ours from an attempt whose answer was lost, or a crash before our commit) is adopted, not created.
 *   4. Create each remaining invoice with requestid qbr-<install>-<id>-g<gen> (the same after a crash or a lost
 *      answer, so QuickBooks replays instead of creating it twice); an invoice already in QuickBooks that billing
 *      changed (pending with a qb_invoice_id) gets a sparse update.  6140 -> adopt the TxnId it names (after reading
 *      it back); 5010 -> read the invoice back for its SyncToken and update once more; 401 -> qbo.c refreshes once
 *      and sends the same request again.
 *
 * So a clean batch of n invoices costs n + 1 requests (+ 1 per new customer, + 1 query when the batch has new
 * customers).  Results stay in memory until the caller commits them together (pusher_commit), in one transaction
 * with the step's cursor: a crash before that commit repeats the batch, and steps 3/4 make the repeat harmless.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "daemon.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "qbo-read.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

enum item_state { IT_NEW, IT_WAIT, IT_WRITING, IT_DONE };

struct pitem {
	struct pusher *p;
	struct inv *v;
	struct push_result res;
	enum item_state state;
	int64_t gen;
	bool retried_5010;
	bool update_after_read;	/* the GET was for a fresh SyncToken (5010), not for an adoption (6140) */
	bool rereading;		/* a GET after 6140 / 5010 */
	char *found;		/* the invoice the DocNumber lookup found (JSON), adopted at the write stage */
};

struct pcust {
	int64_t id;
	char *name;
	char *qb_id;
	bool create;
	bool failed;
	char *error;
	struct inv *sample;	/* one invoice of the customer, for its name and e-mail */
};

struct pusher {
	struct qbr *q;
	struct pitem *items;
	size_t n;
	struct pcust *custs;
	size_t ncusts;
	struct http_group *group;
	pusher_done_fn done;
	void *arg;
	struct qbo_call **calls;
	size_t ncalls, calls_cap;
	int stage;		/* 1: lookups, 2: writes, 3: finished */
	bool auth_lost, cancelling, cancelled, reported;
	char install[32];
	ev_timer report;
};

struct callctx {
	struct pusher *p;
	struct pitem *it;	/* or NULL */
	struct pcust *c;	/* or NULL */
	int kind;
	struct qbo_call *call;
};

enum { CK_CUST_QUERY, CK_CUST_CREATE, CK_CUST_REQUERY, CK_DOC_QUERY, CK_WRITE, CK_REREAD };

static void advance(struct pusher *);

/* --- the busy set ------------------------------------------------------------------------------------------- */

bool
qbr_busy(struct qbr *q, int64_t id)
{
	size_t i;

	for (i = 0; i < q->nbusy; i++)
		if (q->busy[i] == id)
			return true;
	return false;
}

void
qbr_busy_add(struct qbr *q, int64_t id)
{
	if (q->nbusy == q->busy_cap) {
		q->busy_cap = q->busy_cap ? q->busy_cap * 2 : 64;
		q->busy = xreallocarray(q->busy, q->busy_cap, sizeof *q->busy);
	}
	q->busy[q->nbusy++] = id;
}

void
qbr_busy_del(struct qbr *q, int64_t id)
{
	size_t i;

	for (i = 0; i < q->nbusy; i++)
		if (q->busy[i] == id) {
			q->busy[i] = q->busy[--q->nbusy];
			return;
		}
}

/* --- results ------------------------------------------------------------------------------------------------ */

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL ? xstrdup(s) : NULL;
}

static void
item_fail(struct pitem *it, const char *error, bool count_attempt, bool refused)
{
	struct qbr *q = it->p->q;

	it->res.outcome = PUSH_FAILED;
	set_str(&it->res.error, error);
	it->res.count_attempt = count_attempt;
	/* QuickBooks remembers a refusal under its requestid: the next attempt needs a new one to be heard. */
	it->res.new_gen = refused ? it->gen + 1 : it->gen;
	it->res.attempts = it->v->attempts + (count_attempt ? 1 : 0);
	if (count_attempt && it->res.attempts >= q->max_attempts) {
		char *msg = NULL;

		it->res.outcome = PUSH_ABANDONED;
		xasprintf(&msg, "abandoned after %" PRId64 " attempts; last error: %s", it->res.attempts, error);
		set_str(&it->res.error, msg);
		free(msg);
	}
	it->state = IT_DONE;
	log_warnx("invoice %" PRId64 " (%s): %s", it->v->id, it->v->doc_number ? it->v->doc_number : "-",
	    it->res.error);
}

static void
item_skip(struct pitem *it, const char *why)
{
	it->res.outcome = PUSH_SKIPPED;
	set_str(&it->res.error, why);
	it->res.new_gen = it->gen;
	it->state = IT_DONE;
}

static const char *
qb_state_of(int64_t total, int64_t balance)
{
	if (balance == 0 && total > 0)
		return "paid";
	if (balance < total)
		return "partial";
	return "open";
}

/* Take an invoice QuickBooks holds as ours: verify it is the same invoice first (never adopt a stranger). */
static bool
item_adopt(struct pitem *it, const cJSON *qi, bool adopted)
{
	struct qbo_invoice inv;
	const char *id, *tok, *doc, *cust, *ours = it->res.qb_customer_id ? it->res.qb_customer_id :
	    it->v->cust_qb_id;
	char msg[512];
	int64_t total, bal;

	qbo_invoice_read(qi, &inv);
	id = inv.id;
	tok = inv.sync_token;
	doc = inv.doc_number;
	cust = inv.customer;
	total = inv.total_cents;
	bal = inv.balance_cents;
	if (id == NULL || tok == NULL || doc == NULL || !inv.amounts) {
		item_fail(it, "QuickBooks returned an invoice without Id, SyncToken, DocNumber, TotalAmt or Balance",
		    true, false);
		return false;
	}
	if (strcasecmp(doc, it->v->doc_number) != 0) {
		/* A replayed answer for another invoice: a requestid collision.  Never take it. */
		snprintf(msg, sizeof msg, "QuickBooks answered with invoice %s (DocNumber %s), not DocNumber %s: "
		    "requestid collision? not adopted", id, doc, it->v->doc_number);
		item_fail(it, msg, true, true);
		return false;
	}
	if (cust == NULL || ours == NULL || strcmp(cust, ours) != 0) {
		snprintf(msg, sizeof msg, "DocNumber %s is already used in QuickBooks by invoice %s of customer %s "
		    "(ours is %s): not adopted; renumber the invoice or fix it in QuickBooks", doc, id,
		    cust ? cust : "?", ours ? ours : "?");
		item_fail(it, msg, true, false);
		return false;
	}
	it->res.outcome = PUSH_SYNCED;
	it->res.adopted = adopted;
	set_str(&it->res.qb_invoice_id, id);
	set_str(&it->res.qb_sync_token, tok);
	it->res.qb_total_cents = total;
	it->res.qb_balance_cents = bal;
	if (inv.updated_ok)
		set_str(&it->res.qb_updated_at, inv.updated);
	/* This generation is spent: QuickBooks keeps its answer under the requestid, so the next write of this
	 * invoice (an update after billing changes it) needs a new one or it would get this answer replayed. */
	it->res.new_gen = it->gen + 1;
	it->res.attempts = 0;
	if (total != it->v->total_cents) {
		char a[32], b[32];

		cents_str(it->v->total_cents, a, sizeof a);
		cents_str(total, b, sizeof b);
		set_str(&it->res.issue_kind, "amount_differs");
		snprintf(msg, sizeof msg, "QuickBooks invoice %s totals %s, ours %s", id, b, a);
		set_str(&it->res.issue_detail, msg);
	}
	it->state = IT_DONE;
	log_info("invoice %" PRId64 " (%s): %s QuickBooks invoice %s (%s)", it->v->id, it->v->doc_number,
	    adopted ? "adopted" : "synced as", id, qb_state_of(total, bal));
	return true;
}

/* --- calls -------------------------------------------------------------------------------------------------- */

static void call_done(const struct qbo_resp *r, void *arg);

static void
start_call(struct pusher *p, int kind, struct pitem *it, struct pcust *c, const struct qbo_req *req0)
{
	struct callctx *cx = xcalloc(1, sizeof *cx);
	struct qbo_req req = *req0;

	cx->p = p;
	cx->it = it;
	cx->c = c;
	cx->kind = kind;
	req.group = p->group;
	req.done = call_done;
	req.arg = cx;
	if (p->ncalls == p->calls_cap) {
		p->calls_cap = p->calls_cap ? p->calls_cap * 2 : 32;
		p->calls = xreallocarray(p->calls, p->calls_cap, sizeof *p->calls);
	}
	cx->call = qbo_call(p->q, &req);
	p->calls[p->ncalls++] = cx->call;
}

static void
forget_call(struct pusher *p, struct qbo_call *call)
{
	size_t i;

	for (i = 0; i < p->ncalls; i++)
		if (p->calls[i] == call) {
			p->calls[i] = p->calls[--p->ncalls];
			return;
		}
}

static void
query(struct pusher *p, int kind, struct pcust *c, const char *text, const char *what)
{
	struct qbo_req req;

	memset(&req, 0, sizeof req);
	/* POST with an application/text body: no URL length limit for a batch's IN list. */
	req.method = "POST";
	req.path = "query";
	req.body = text;
	req.content_type = "application/text";
	req.what = what;
	start_call(p, kind, NULL, c, &req);
}

static struct pcust *
cust_by_name(struct pusher *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->ncusts; i++)
		if (strcasecmp(p->custs[i].name, name) == 0)
			return &p->custs[i];
	return NULL;
}

static void
cust_create(struct pusher *p, struct pcust *c)
{
	struct qbo_req req;
	char rid[64], what[160];
	char *body = customer_json(c->sample);

	if (customer_requestid(p->install, c->sample, rid, sizeof rid) == -1) {
		c->failed = true;
		set_str(&c->error, "cannot form a requestid for the customer");
		free(body);
		return;
	}
	snprintf(what, sizeof what, "create customer %" PRId64, c->id);
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.path = "customer";
	req.requestid = rid;
	req.body = body;
	req.what = what;
	start_call(p, CK_CUST_CREATE, NULL, c, &req);
	free(body);
}

static bool
has_typographic_quote(const char *s)
{
	/* U+2018, U+2019, U+201C, U+201D: a lexical error in the query language even inside a literal. */
	return strstr(s, "\xe2\x80\x98") || strstr(s, "\xe2\x80\x99") || strstr(s, "\xe2\x80\x9c") ||
	    strstr(s, "\xe2\x80\x9d");
}

static void
cust_requery(struct pusher *p, struct pcust *c)
{
	struct buf b;
	char what[160];

	if (has_typographic_quote(c->name)) {
		c->failed = true;
		set_str(&c->error, "QuickBooks has a customer of this name (6240) but a name with a typographic quote "
		    "cannot be looked up: set billing_customers.qb_customer_id to its Id");
		return;
	}
	buf_init(&b);
	buf_adds(&b, "select * from Customer where DisplayName = ");
	qbo_quote(&b, c->name);
	/* Name lists return active entities only unless the query names Active: an inactive customer holds its name. */
	buf_adds(&b, " and Active IN (true, false)");
	snprintf(what, sizeof what, "find customer %" PRId64, c->id);
	query(p, CK_CUST_REQUERY, c, b.data, what);
	buf_free(&b);
}

static void
on_cust_query(struct pusher *p, const struct qbo_resp *r)
{
	const cJSON *rows, *row;
	struct pcust *c;
	size_t i;

	if (r->error != NULL) {
		for (i = 0; i < p->ncusts; i++)
			if (p->custs[i].qb_id == NULL && !p->custs[i].failed) {
				p->custs[i].failed = true;
				set_str(&p->custs[i].error, r->error);
			}
		return;
	}
	if ((rows = qbo_query_rows(r->json, "Customer")) != NULL)
		cJSON_ArrayForEach(row, rows) {
			const char *name, *id;

			if (qbo_customer_row(row, &name, &id) && (c = cust_by_name(p, name)) != NULL && c->qb_id == NULL)
				set_str(&c->qb_id, id);
		}
	for (i = 0; i < p->ncusts; i++)
		if (p->custs[i].qb_id == NULL && !p->custs[i].failed)
			cust_create(p, &p->custs[i]);
}

static void
on_cust_create(struct pusher *p, struct pcust *c, const struct qbo_resp *r)
{
	const cJSON *cu;
	const char *id;

	if (r->error == NULL && (cu = json_get(r->json, "Customer")) != NULL && (id = json_str(cu, "Id")) != NULL) {
		set_str(&c->qb_id, id);
		log_info("customer %" PRId64 " created in QuickBooks as %s", c->id, id);
		return;
	}
	if (r->has_fault && strcmp(r->fault.code, "6240") == 0) {
		/* Someone (or an earlier attempt of ours) created this name meanwhile: use that one. */
		cust_requery(p, c);
		return;
	}
	c->failed = true;
	set_str(&c->error, r->error ? r->error : "QuickBooks answered a customer create without a Customer");
	if (r->auth_lost)
		p->auth_lost = true;
}

static void
on_cust_requery(struct pusher *p, struct pcust *c, const struct qbo_resp *r)
{
	const cJSON *rows, *row, *active;
	const char *inactive_id = NULL;
	char *msg = NULL;

	if (r->error == NULL && (rows = qbo_query_rows(r->json, "Customer")) != NULL)
		cJSON_ArrayForEach(row, rows) {
			const char *name, *id;

			if (!qbo_customer_row(row, &name, &id) || strcasecmp(name, c->name) != 0)
				continue;
			active = json_get(row, "Active");
			if (cJSON_IsFalse(active) || (cJSON_IsString(active) && strcasecmp(active->valuestring, "false") == 0)) {
				inactive_id = id;
				continue;
			}
			set_str(&c->qb_id, id);
			return;
		}
	c->failed = true;
	if (r->error != NULL) {
		set_str(&c->error, r->error);
		return;
	}
	/* An invoice for an inactive customer is refused (610): the operator must choose, we cannot. */
	if (inactive_id != NULL)
		xasprintf(&msg, "QuickBooks customer %s (Id %s) is inactive, and it holds the name, so it cannot be created "
		    "again (6240): reactivate it in QuickBooks (Sales > Customers, show inactive, Make active), or map our "
		    "customer %" PRId64 " to another QuickBooks customer (billing_customers.qb_customer_id), then `syncctl "
		    "qb retry INVOICE_ID`", c->name, inactive_id, c->id);
	else
		xasprintf(&msg, "the name %s is taken in QuickBooks (6240) but no customer has it: a vendor or employee "
		    "(or a deleted customer) uses it; rename that one in QuickBooks, or map our customer %" PRId64 " to a "
		    "QuickBooks customer (billing_customers.qb_customer_id), then `syncctl qb retry INVOICE_ID`", c->name,
		    c->id);
	set_str(&c->error, msg);
	free(msg);
}

static void
on_doc_query(struct pusher *p, const struct qbo_resp *r)
{
	const cJSON *rows, *row;
	size_t i;

	if (r->error != NULL) {
		/* Without the lookup a create could duplicate an invoice whose answer we lost: do not create. */
		for (i = 0; i < p->n; i++)
			if (p->items[i].state == IT_WAIT && p->items[i].v->qb_invoice_id == NULL) {
				if (r->auth_lost)
					item_skip(&p->items[i], r->error);
				else
					item_fail(&p->items[i], r->error, true, false);
			}
		if (r->auth_lost)
			p->auth_lost = true;
		return;
	}
	if ((rows = qbo_query_rows(r->json, "Invoice")) == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		struct pitem *it = &p->items[i];
		const cJSON *found = NULL;
		int matches = 0;

		if (it->state != IT_WAIT || it->v->qb_invoice_id != NULL)
			continue;
		cJSON_ArrayForEach(row, rows) {
			const char *doc = json_str(row, "DocNumber");

			if (doc != NULL && strcasecmp(doc, it->v->doc_number) == 0) {
				found = row;
				matches++;
			}
		}
		if (matches == 1) {
			/* The customer may still be resolving: keep the row and adopt once it is known. */
			free(it->found);
			it->found = cJSON_PrintUnformatted(found);
		} else if (matches > 1) {
			char msg[256];

			snprintf(msg, sizeof msg, "DocNumber %s appears %d times in QuickBooks: resolve it there",
			    it->v->doc_number, matches);
			item_fail(it, msg, true, false);
		}
	}
}

static void write_item(struct pusher *, struct pitem *);

static void
reread(struct pusher *p, struct pitem *it, const char *qb_id)
{
	struct qbo_req req;
	char path[64], what[160];

	snprintf(path, sizeof path, "invoice/%s", qb_id);
	snprintf(what, sizeof what, "read invoice %s for %s", qb_id, it->v->doc_number);
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = path;
	req.what = what;
	it->rereading = true;
	start_call(p, CK_REREAD, it, NULL, &req);
}

static void
on_write(struct pusher *p, struct pitem *it, const struct qbo_resp *r)
{
	const cJSON *qi;
	char ttype[32], tid[32], msg[1400];

	if (r->cancelled) {
		item_skip(it, "cancelled");
		return;
	}
	if (r->error == NULL && (qi = json_get(r->json, "Invoice")) != NULL) {
		item_adopt(it, qi, false);
		return;
	}
	if (r->auth_lost) {
		p->auth_lost = true;
		item_skip(it, r->error);
		return;
	}
	if (r->has_fault && strcmp(r->fault.code, "6140") == 0 && it->v->qb_invoice_id == NULL) {
		if (qbo_parse_6140(r->fault.detail, ttype, sizeof ttype, tid, sizeof tid) &&
		    strcmp(ttype, "Invoice") == 0) {
			/* Already created (an earlier attempt, or a race): read it back and adopt it if it is ours. */
			reread(p, it, tid);
			return;
		}
		snprintf(msg, sizeof msg, "DocNumber %s is already used in QuickBooks by a %s: renumber the invoice "
		    "(%s)", it->v->doc_number, ttype[0] ? ttype : "transaction of another type", r->error);
		item_fail(it, msg, true, true);
		return;
	}
	if (r->has_fault && strcmp(r->fault.code, "5010") == 0 && it->v->qb_invoice_id != NULL &&
	    !it->retried_5010) {
		/* Stale SyncToken: read the invoice again and update once more, under a new requestid (QuickBooks
		 * remembers the 5010 under the old one). */
		it->retried_5010 = true;
		it->update_after_read = true;
		it->gen++;
		reread(p, it, it->v->qb_invoice_id);
		return;
	}
	item_fail(it, r->error ? r->error : "QuickBooks answered without an Invoice", true, r->answered);
}

static void
on_reread(struct pusher *p, struct pitem *it, const struct qbo_resp *r)
{
	const cJSON *qi;
	const char *tok;

	it->rereading = false;
	if (r->cancelled) {
		item_skip(it, "cancelled");
		return;
	}
	if (r->auth_lost) {
		p->auth_lost = true;
		item_skip(it, r->error);
		return;
	}
	if (r->error != NULL || (qi = json_get(r->json, "Invoice")) == NULL) {
		item_fail(it, r->error ? r->error : "QuickBooks answered a read without an Invoice", true, false);
		return;
	}
	if (it->update_after_read) {
		it->update_after_read = false;
		if ((tok = json_str(qi, "SyncToken")) == NULL) {
			item_fail(it, "QuickBooks returned an invoice without a SyncToken", true, false);
			return;
		}
		set_str(&it->v->qb_sync_token, tok);
		write_item(p, it);
		return;
	}
	item_adopt(it, qi, true);
}

static void
call_done(const struct qbo_resp *r, void *arg)
{
	struct callctx *cx = arg;
	struct pusher *p = cx->p;

	forget_call(p, cx->call);
	switch (cx->kind) {
	case CK_CUST_QUERY:
		if (r->auth_lost)
			p->auth_lost = true;
		on_cust_query(p, r);
		break;
	case CK_CUST_CREATE:
		on_cust_create(p, cx->c, r);
		break;
	case CK_CUST_REQUERY:
		on_cust_requery(p, cx->c, r);
		break;
	case CK_DOC_QUERY:
		on_doc_query(p, r);
		break;
	case CK_WRITE:
		on_write(p, cx->it, r);
		break;
	case CK_REREAD:
		on_reread(p, cx->it, r);
		break;
	}
	free(cx);
	if (!p->cancelling)
		advance(p);
}

/* --- stages ------------------------------------------------------------------------------------------------- */

static void
write_item(struct pusher *p, struct pitem *it)
{
	struct qbr *q = p->q;
	struct qbo_req req;
	char rid[64], what[160], *body;
	bool update = it->v->qb_invoice_id != NULL;

	if (inv_requestid(p->install, it->v, it->gen, rid, sizeof rid) == -1) {
		item_fail(it, "cannot form a requestid of at most 50 characters", true, false);
		return;
	}
	body = inv_json(q, it->v, update ? it->v->qb_invoice_id : NULL, it->v->qb_sync_token);
	snprintf(what, sizeof what, "%s invoice %" PRId64 " (%s)", update ? "update" : "create", it->v->id,
	    it->v->doc_number);
	memset(&req, 0, sizeof req);
	req.method = "POST";
	req.path = "invoice";
	req.requestid = rid;
	req.body = body;
	req.what = what;
	it->state = IT_WRITING;
	start_call(p, CK_WRITE, it, NULL, &req);
	free(body);
}

static struct pcust *
cust_of(struct pusher *p, int64_t id)
{
	size_t i;

	for (i = 0; i < p->ncusts; i++)
		if (p->custs[i].id == id)
			return &p->custs[i];
	return NULL;
}

static void
start_writes(struct pusher *p)
{
	size_t i;

	p->stage = 2;
	for (i = 0; i < p->n; i++) {
		struct pitem *it = &p->items[i];
		struct pcust *c;

		if (it->state != IT_WAIT)
			continue;
		if (p->auth_lost) {
			item_skip(it, "QuickBooks connection lost");
			continue;
		}
		if (it->v->cust_qb_id == NULL) {
			if ((c = cust_of(p, it->v->customer_id)) == NULL || c->qb_id == NULL) {
				const char *err = c && c->error ? c->error : "customer could not be found or created";

				if (c && c->failed && p->auth_lost)
					item_skip(it, err);
				else
					item_fail(it, err, true, false);
				continue;
			}
			set_str(&it->v->cust_qb_id, c->qb_id);
			set_str(&it->res.qb_customer_id, c->qb_id);
			it->res.customer_id = c->id;
		}
		if (it->found != NULL) {
			/* Found by the DocNumber lookup: adopt instead of creating. */
			cJSON *found = cJSON_Parse(it->found);

			if (found != NULL)
				item_adopt(it, found, true);
			else
				item_fail(it, "cannot parse the invoice found by DocNumber", true, false);
			cJSON_Delete(found);
			continue;
		}
		write_item(p, it);
	}
}

static void
report_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct pusher *p = t->data;

	p->done(p, p->arg);
}

static void
advance(struct pusher *p)
{
	size_t i;

	if (p->ncalls > 0 || p->reported)
		return;
	if (p->stage == 1)
		start_writes(p);
	if (p->ncalls > 0)
		return;
	for (i = 0; i < p->n; i++)
		if (p->items[i].state != IT_DONE)
			item_skip(&p->items[i], p->auth_lost ? "QuickBooks connection lost" : "not pushed");
	p->stage = 3;
	p->reported = true;
	/* Report from the loop: never from inside pusher_start or pusher_cancel. */
	ev_timer_init(&p->report, report_cb, 0.0, 0.0);
	p->report.data = p;
	ev_timer_start(p->q->d->loop, &p->report);
}

struct pusher *
pusher_start(struct qbr *q, struct inv *invs, size_t n, struct http_group *group, pusher_done_fn done, void *arg)
{
	struct pusher *p = xcalloc(1, sizeof *p);
	struct conn_info ci;
	struct buf names, docs;
	char *cause = NULL, why[512];
	size_t i, nnames = 0, ndocs = 0;

	p->q = q;
	p->group = group;
	p->done = done;
	p->arg = arg;
	p->n = n;
	p->stage = 1;
	p->items = xcalloc(n ? n : 1, sizeof *p->items);
	if (conn_read(q->d->db, &ci, &cause) == -1) {
		log_warnx("push: %s", cause);
		free(cause);
		snprintf(ci.install_id, sizeof ci.install_id, "x");
	}
	snprintf(p->install, sizeof p->install, "%s", ci.install_id);
	buf_init(&names);
	buf_init(&docs);
	for (i = 0; i < n; i++) {
		struct pitem *it = &p->items[i];
		const char *bad;

		it->p = p;
		it->v = &invs[i];
		it->gen = it->v->gen;
		it->res.invoice_id = it->v->id;
		it->res.new_gen = it->gen;
		it->res.attempts = it->v->attempts;
		it->res.customer_id = it->v->customer_id;
		qbr_busy_add(q, it->v->id);
		if ((bad = inv_invalid(q, it->v, why, sizeof why)) != NULL) {
			char *msg = NULL;

			xasprintf(&msg, "invalid invoice, not sent: %s", bad);
			item_fail(it, msg, true, false);
			free(msg);
			continue;
		}
		if (q->production && inv_is_test(it->v)) {
			it->res.outcome = PUSH_HELD;
			set_str(&it->res.error, "test invoice (is_test): never sent to a production QuickBooks company");
			it->state = IT_DONE;
			continue;
		}
		if (!q->have_tokens) {
			item_skip(it, "QuickBooks is not connected");
			p->auth_lost = true;
			continue;
		}
		it->state = IT_WAIT;
		if (it->v->cust_qb_id == NULL && cust_of(p, it->v->customer_id) == NULL) {
			struct pcust *c;

			p->custs = xreallocarray(p->custs, p->ncusts + 1, sizeof *p->custs);
			c = &p->custs[p->ncusts++];
			memset(c, 0, sizeof *c);
			c->id = it->v->customer_id;
			c->name = xstrdup(it->v->cust_name);
			c->sample = it->v;
			if (!has_typographic_quote(c->name)) {
				buf_adds(&names, nnames++ ? ", " : "");
				qbo_quote(&names, c->name);
			}
		}
		if (it->v->qb_invoice_id == NULL) {
			buf_adds(&docs, ndocs++ ? ", " : "");
			qbo_quote(&docs, it->v->doc_number);
		}
	}
	if (nnames > 0) {
		struct buf b;

		buf_init(&b);
		buf_printf(&b, "select * from Customer where DisplayName in (%s) MAXRESULTS 1000", names.data);
		query(p, CK_CUST_QUERY, NULL, b.data, "find customers by DisplayName");
		buf_free(&b);
	} else {
		for (i = 0; i < p->ncusts; i++)
			cust_create(p, &p->custs[i]);
	}
	if (ndocs > 0) {
		struct buf b;

		buf_init(&b);
		buf_printf(&b, "select * from Invoice where DocNumber in (%s) MAXRESULTS 1000", docs.data);
		query(p, CK_DOC_QUERY, NULL, b.data, "find invoices by DocNumber");
		buf_free(&b);
	}
	buf_free(&names);
	buf_free(&docs);
	if (p->ncalls == 0)
		advance(p);
	return p;
}

size_t
pusher_results(struct pusher *p, struct push_result **out)
{
	size_t i;

	/* The results live in the items; hand out a packed copy of the structs (strings stay owned here). */
	*out = xcalloc(p->n ? p->n : 1, sizeof **out);
	for (i = 0; i < p->n; i++)
		(*out)[i] = p->items[i].res;
	return p->n;
}

bool
pusher_auth_lost(struct pusher *p)
{
	return p->auth_lost;
}

void
pusher_cancel(struct pusher *p)
{
	size_t i;

	if (p->reported)
		return;
	p->cancelling = true;
	/* Calls waiting for a token refresh end here; calls in flight end through their http group. */
	for (i = p->ncalls; i > 0; i--)
		if (i - 1 < p->ncalls)
			qbo_call_cancel(p->calls[i - 1]);
	if (p->group != NULL)
		http_group_cancel(p->group);
	p->cancelling = false;
	p->cancelled = true;
	for (i = 0; i < p->n; i++)
		if (p->items[i].state != IT_DONE)
			item_skip(&p->items[i], "cancelled");
	if (p->ncalls == 0)
		advance(p);
}

void
pusher_free(struct pusher *p)
{
	size_t i;

	if (p == NULL)
		return;
	ev_timer_stop(p->q->d->loop, &p->report);
	for (i = 0; i < p->n; i++) {
		struct push_result *r = &p->items[i].res;

		qbr_busy_del(p->q, p->items[i].v->id);
		free(p->items[i].found);
		free(r->error);
		free(r->qb_invoice_id);
		free(r->qb_sync_token);
		free(r->qb_updated_at);
		free(r->qb_customer_id);
		free(r->issue_kind);
		free(r->issue_detail);
	}
	for (i = 0; i < p->ncusts; i++) {
		free(p->custs[i].name);
		free(p->custs[i].qb_id);
		free(p->custs[i].error);
	}
	free(p->custs);
	free(p->items);
	free(p->calls);
	free(p);
}

/* --- commit ------------------------------------------------------------------------------------------------- */

static const char SQL_SYNCED[] =
    "UPDATE billing_invoices SET qb_sync_status = 'synced', qb_invoice_id = ?2, qb_sync_token = ?3,"
    " qb_total_cents = ?4, qb_balance_cents = ?5, qb_state = ?6, qb_updated_at = coalesce(?7, qb_updated_at),"
    " paid_at = CASE WHEN ?6 = 'paid' THEN coalesce(paid_at, ?7, ?8) ELSE NULL END,"
    " qb_synced_at = ?8, qb_last_attempt_at = ?8, qb_attempts = 0, qb_last_error = NULL, qb_request_gen = ?9,"
    " updated_at = ?8 WHERE id = ?1";
static const char SQL_FAILED[] =
    "UPDATE billing_invoices SET qb_sync_status = ?2, qb_attempts = ?3, qb_last_error = ?4, qb_last_attempt_at = ?5,"
    " qb_request_gen = ?6, updated_at = ?5 WHERE id = ?1";
static const char SQL_HELD[] =
    "UPDATE billing_invoices SET qb_last_error = ?2 WHERE id = ?1 AND qb_last_error IS NOT ?2";
static const char SQL_CUSTOMER[] =
    "UPDATE billing_customers SET qb_customer_id = ?2, updated_at = ?3 WHERE id = ?1 AND qb_customer_id IS NOT ?2";
static const char SQL_ISSUE[] =
    "INSERT INTO qb_reconcile_issues (invoice_id, qb_invoice_id, kind, detail, our_cents, qb_cents, first_seen_at,"
    " last_seen_at, first_cycle_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)"
    " ON CONFLICT (invoice_id, kind) WHERE resolved_at IS NULL DO UPDATE SET qb_invoice_id = excluded.qb_invoice_id,"
    " detail = excluded.detail, our_cents = excluded.our_cents, qb_cents = excluded.qb_cents,"
    " last_seen_at = excluded.last_seen_at";

int
issue_open(struct db *db, int64_t invoice_id, const char *qb_id, const char *kind, const char *detail,
    int64_t our, int64_t qb, bool have_cents, const char *cycle_id, char **cause)
{
	sqlite3_stmt *st;
	char now[ISO8601_LEN];

	if ((st = db_stmt(db, SQL_ISSUE, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, invoice_id);
	db_bind_text(st, 2, qb_id);
	db_bind_text(st, 3, kind);
	db_bind_text(st, 4, detail);
	if (have_cents) {
		db_bind_int(st, 5, our);
		db_bind_int(st, 6, qb);
	}
	db_bind_text(st, 7, iso8601_now(now));
	db_bind_text(st, 8, cycle_id);
	return db_step_done(db, st, cause);
}

int
pusher_commit(struct qbr *q, struct db *db, struct pusher *p, const char *cycle_id, int64_t *synced,
    int64_t *failed, int64_t *abandoned, char **cause)
{
	char now[ISO8601_LEN];
	sqlite3_stmt *st;
	size_t i;

	iso8601_now(now);
	for (i = 0; i < p->ncusts; i++) {
		if (p->custs[i].qb_id == NULL)
			continue;
		if ((st = db_stmt(db, SQL_CUSTOMER, cause)) == NULL)
			return -1;
		db_bind_int(st, 1, p->custs[i].id);
		db_bind_text(st, 2, p->custs[i].qb_id);
		db_bind_text(st, 3, now);
		if (db_step_done(db, st, cause) == -1)
			return -1;
	}
	for (i = 0; i < p->n; i++) {
		struct push_result *r = &p->items[i].res;

		switch (r->outcome) {
		case PUSH_SYNCED:
			if ((st = db_stmt(db, SQL_SYNCED, cause)) == NULL)
				return -1;
			db_bind_int(st, 1, r->invoice_id);
			db_bind_text(st, 2, r->qb_invoice_id);
			db_bind_text(st, 3, r->qb_sync_token);
			db_bind_int(st, 4, r->qb_total_cents);
			db_bind_int(st, 5, r->qb_balance_cents);
			db_bind_text(st, 6, qb_state_of(r->qb_total_cents, r->qb_balance_cents));
			db_bind_text(st, 7, r->qb_updated_at);
			db_bind_text(st, 8, now);
			db_bind_int(st, 9, r->new_gen);
			if (db_step_done(db, st, cause) == -1)
				return -1;
			if (r->issue_kind != NULL && issue_open(db, r->invoice_id, r->qb_invoice_id, r->issue_kind,
			    r->issue_detail, p->items[i].v->total_cents, r->qb_total_cents, true, cycle_id, cause) == -1)
				return -1;
			(*synced)++;
			break;
		case PUSH_FAILED:
		case PUSH_ABANDONED:
			if ((st = db_stmt(db, SQL_FAILED, cause)) == NULL)
				return -1;
			db_bind_int(st, 1, r->invoice_id);
			db_bind_text(st, 2, r->outcome == PUSH_FAILED ? "failed" : "abandoned");
			db_bind_int(st, 3, r->attempts);
			db_bind_text(st, 4, r->error);
			db_bind_text(st, 5, now);
			db_bind_int(st, 6, r->new_gen);
			if (db_step_done(db, st, cause) == -1)
				return -1;
			if (r->outcome == PUSH_FAILED)
				(*failed)++;
			else
				(*abandoned)++;
			break;
		case PUSH_HELD:
			if ((st = db_stmt(db, SQL_HELD, cause)) == NULL)
				return -1;
			db_bind_int(st, 1, r->invoice_id);
			db_bind_text(st, 2, r->error);
			if (db_step_done(db, st, cause) == -1)
				return -1;
			break;
		case PUSH_SKIPPED:
			break;
		}
	}
	return 0;
}

static const char SQL_RESOLVE[] =
    "UPDATE qb_reconcile_issues SET resolved_at = ?3 WHERE invoice_id = ?1 AND kind = ?2 AND resolved_at IS NULL";

int
issue_resolve(struct db *db, int64_t invoice_id, const char *kind, char **cause)
{
	sqlite3_stmt *st;
	char now[ISO8601_LEN];

	if ((st = db_stmt(db, SQL_RESOLVE, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, invoice_id);
	db_bind_text(st, 2, kind);
	db_bind_text(st, 3, iso8601_now(now));
	return db_step_done(db, st, cause);
}
