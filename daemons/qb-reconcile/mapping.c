/*
 * Billing rows <-> QuickBooks: loading an invoice with its lines and customer, the local checks that keep a bad
 * invoice from ever reaching QuickBooks, the JSON we send, and the requestids.
 *
 * Money is integer cents everywhere; the JSON carries amounts as exact decimal text ("150.50", written with
 * cJSON_CreateRaw) so no binary floating point ever touches an amount we send.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "buf.h"
#include "db.h"
#include "qbr.h"
#include "timeutil.h"
#include "xmalloc.h"

static const char SQL_INV[] =
    "SELECT i.id, i.customer_id, i.doc_number, i.txn_date, i.due_date, i.currency, i.total_cents, i.memo, i.is_test,"
    " i.qb_sync_status, i.qb_invoice_id, i.qb_sync_token, i.qb_attempts, i.qb_request_gen,"
    " c.display_name, c.email, c.is_test, c.qb_customer_id"
    " FROM billing_invoices i LEFT JOIN billing_customers c ON c.id = i.customer_id WHERE i.id = ?";
static const char SQL_LINES[] =
    "SELECT line_no, item, description, quantity, unit_price_cents, amount_cents FROM billing_invoice_lines"
    " WHERE invoice_id = ? ORDER BY line_no LIMIT 251";

#define MAX_LINES 250		/* far more than an invoice of ours has; bounds the request */

static char *
col_dup(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : xstrdup(db_col_text(st, i));
}

void
inv_free(struct inv *v)
{
	size_t i;

	for (i = 0; i < v->nlines; i++) {
		free(v->lines[i].item);
		free(v->lines[i].description);
	}
	free(v->lines);
	free(v->doc_number);
	free(v->txn_date);
	free(v->due_date);
	free(v->currency);
	free(v->memo);
	free(v->status);
	free(v->qb_invoice_id);
	free(v->qb_sync_token);
	free(v->cust_name);
	free(v->cust_email);
	free(v->cust_qb_id);
	memset(v, 0, sizeof *v);
}

int
inv_load(struct db *db, int64_t id, struct inv *v, char **cause)
{
	sqlite3_stmt *st;
	int rc;

	memset(v, 0, sizeof *v);
	if ((st = db_stmt(db, SQL_INV, cause)) == NULL)
		return -1;
	db_bind_int(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;
		return db_error(db, cause, "load invoice");
	}
	v->id = sqlite3_column_int64(st, 0);
	v->customer_id = sqlite3_column_int64(st, 1);
	v->doc_number = col_dup(st, 2);
	v->txn_date = col_dup(st, 3);
	v->due_date = col_dup(st, 4);
	v->currency = col_dup(st, 5);
	v->total_cents = sqlite3_column_int64(st, 6);
	v->memo = col_dup(st, 7);
	v->is_test = sqlite3_column_int(st, 8) != 0;
	v->status = col_dup(st, 9);
	v->qb_invoice_id = col_dup(st, 10);
	v->qb_sync_token = col_dup(st, 11);
	v->attempts = sqlite3_column_int64(st, 12);
	v->gen = sqlite3_column_int64(st, 13);
	v->cust_name = col_dup(st, 14);
	v->cust_email = col_dup(st, 15);
	v->cust_is_test = sqlite3_column_int(st, 16) != 0;
	v->cust_qb_id = col_dup(st, 17);
	sqlite3_reset(st);

	if ((st = db_stmt(db, SQL_LINES, cause)) == NULL) {
		inv_free(v);
		return -1;
	}
	db_bind_int(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct inv_line *l;

		v->lines = xreallocarray(v->lines, v->nlines + 1, sizeof *v->lines);
		l = &v->lines[v->nlines++];
		l->line_no = sqlite3_column_int64(st, 0);
		l->item = col_dup(st, 1);
		l->description = col_dup(st, 2);
		l->quantity = sqlite3_column_int64(st, 3);
		l->unit_price_cents = sqlite3_column_int64(st, 4);
		l->amount_cents = sqlite3_column_int64(st, 5);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		inv_free(v);
		return db_error(db, cause, "load invoice lines");
	}
	return 1;
}

bool
inv_is_test(const struct inv *v)
{
	/* A test customer's invoices are test invoices, whatever the invoice row says. */
	return v->is_test || v->cust_is_test;
}

static bool
valid_date(const char *s)
{
	time_t t;

	return s != NULL && strlen(s) == 10 && s[4] == '-' && s[7] == '-' && iso8601_parse(s, &t);
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* DocNumbers go into the batch lookup query: printable ASCII only (a typographic quote is a lexical error there
 * and would fail the whole batch), no quote or backslash. */
static bool
doc_chars_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '\'' || *s == '\\')
			return false;
	return true;
}

const char *
inv_invalid(const struct qbr *q, const struct inv *v, char *buf, size_t len)
{
	int64_t sum = 0;
	size_t i, n;

	if (v->id <= 0 || v->id >= 1000000000000LL)
		return "invoice id out of range";
	if (v->cust_name == NULL)
		snprintf(buf, len, "customer %" PRId64 " does not exist", v->customer_id);
	else if (v->doc_number == NULL || (n = strlen(v->doc_number)) == 0)
		snprintf(buf, len, "no DocNumber");
	else if (n > QBR_DOC_MAX)
		snprintf(buf, len, "DocNumber '%.40s' is %zu characters long; QuickBooks allows at most %d", v->doc_number,
		    n, QBR_DOC_MAX);
	else if (!doc_chars_ok(v->doc_number))
		snprintf(buf, len, "DocNumber '%.40s' has characters other than printable ASCII, or a quote or "
		    "backslash", v->doc_number);
	else if (v->nlines == 0)
		snprintf(buf, len, "no invoice lines (QuickBooks needs at least one)");
	else if (v->nlines > MAX_LINES)
		snprintf(buf, len, "more than %d invoice lines", MAX_LINES);
	else if (v->total_cents < 0)
		snprintf(buf, len, "negative total %" PRId64 " cents", v->total_cents);
	else if (v->total_cents > QBR_MONEY_MAX_CENTS)
		snprintf(buf, len, "total %" PRId64 " cents is implausibly large", v->total_cents);
	else if (!valid_date(v->txn_date))
		snprintf(buf, len, "txn_date '%.20s' is not a YYYY-MM-DD date", v->txn_date ? v->txn_date : "");
	else if (v->due_date != NULL && !valid_date(v->due_date))
		snprintf(buf, len, "due_date '%.20s' is not a YYYY-MM-DD date", v->due_date);
	else if (v->currency == NULL || strcmp(v->currency, q->currency) != 0)
		snprintf(buf, len, "currency %.8s differs from the QuickBooks company's currency %s",
		    v->currency ? v->currency : "(none)", q->currency);
	else if (strchr(v->cust_name, ':') != NULL || !printable(v->cust_name) || strlen(v->cust_name) > 100 ||
	    strlen(v->cust_name) == 0)
		snprintf(buf, len, "customer name '%.40s' cannot be a QuickBooks DisplayName (1-100 printable "
		    "characters, no colon)", v->cust_name);
	else {
		for (i = 0; i < v->nlines; i++) {
			const struct inv_line *l = &v->lines[i];

			if (l->quantity <= 0 || l->quantity > 1000000 || l->unit_price_cents < 0 ||
			    l->unit_price_cents > QBR_MONEY_MAX_CENTS) {
				snprintf(buf, len, "line %" PRId64 ": quantity or unit price out of range", l->line_no);
				return buf;
			}
			if (l->amount_cents != l->quantity * l->unit_price_cents) {
				snprintf(buf, len, "line %" PRId64 ": amount %" PRId64 " cents is not quantity %" PRId64
				    " x unit price %" PRId64 " cents", l->line_no, l->amount_cents, l->quantity,
				    l->unit_price_cents);
				return buf;
			}
			if (l->description != NULL && (strlen(l->description) > 4000 || !printable(l->description))) {
				snprintf(buf, len, "line %" PRId64 ": description too long or with control characters",
				    l->line_no);
				return buf;
			}
			sum += l->amount_cents;
			if (sum > QBR_MONEY_MAX_CENTS) {
				snprintf(buf, len, "lines add up to an implausibly large amount");
				return buf;
			}
		}
		if (sum != v->total_cents) {
			snprintf(buf, len, "total %" PRId64 " cents does not match the lines' sum %" PRId64 " cents",
			    v->total_cents, sum);
			return buf;
		}
		return NULL;
	}
	return buf;
}

void
cents_str(int64_t cents, char *buf, size_t len)
{
	int64_t a = cents < 0 ? -cents : cents;

	snprintf(buf, len, "%s%" PRId64 ".%02" PRId64, cents < 0 ? "-" : "", a / 100, a % 100);
}

static cJSON *
money(int64_t cents)
{
	char buf[32];

	cents_str(cents, buf, sizeof buf);
	return cJSON_CreateRaw(buf);
}

const char *
item_for(const struct qbr *q, const char *plan)
{
	size_t i;

	if (plan != NULL)
		for (i = 0; i < q->nitems; i++)
			if (strcmp(q->items[i].plan, plan) == 0)
				return q->items[i].item_id;
	return q->default_item;
}

char *
inv_json(const struct qbr *q, const struct inv *v, const char *qb_id, const char *sync_token)
{
	cJSON *o = cJSON_CreateObject(), *lines, *ln, *det, *ref;
	char *s;
	size_t i;

	if (qb_id != NULL) {
		/* A sparse update: only what we own changes; Line replaces every line. */
		cJSON_AddStringToObject(o, "Id", qb_id);
		cJSON_AddStringToObject(o, "SyncToken", sync_token ? sync_token : "0");
		cJSON_AddTrueToObject(o, "sparse");
	}
	cJSON_AddStringToObject(o, "DocNumber", v->doc_number);
	cJSON_AddStringToObject(o, "TxnDate", v->txn_date);
	if (v->due_date != NULL)
		cJSON_AddStringToObject(o, "DueDate", v->due_date);
	ref = cJSON_AddObjectToObject(o, "CustomerRef");
	cJSON_AddStringToObject(ref, "value", v->cust_qb_id);
	if (v->memo != NULL) {
		ref = cJSON_AddObjectToObject(o, "CustomerMemo");
		cJSON_AddStringToObject(ref, "value", v->memo);
	}
	if (v->cust_email != NULL) {
		ref = cJSON_AddObjectToObject(o, "BillEmail");
		cJSON_AddStringToObject(ref, "Address", v->cust_email);
	}
	lines = cJSON_AddArrayToObject(o, "Line");
	for (i = 0; i < v->nlines; i++) {
		const struct inv_line *l = &v->lines[i];

		ln = cJSON_CreateObject();
		if (l->description != NULL)
			cJSON_AddStringToObject(ln, "Description", l->description);
		cJSON_AddItemToObject(ln, "Amount", money(l->amount_cents));
		cJSON_AddStringToObject(ln, "DetailType", "SalesItemLineDetail");
		det = cJSON_AddObjectToObject(ln, "SalesItemLineDetail");
		ref = cJSON_AddObjectToObject(det, "ItemRef");
		cJSON_AddStringToObject(ref, "value", item_for(q, l->item));
		cJSON_AddNumberToObject(det, "Qty", (double)l->quantity);
		cJSON_AddItemToObject(det, "UnitPrice", money(l->unit_price_cents));
		cJSON_AddItemToArray(lines, ln);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

char *
customer_json(const struct inv *v)
{
	cJSON *o = cJSON_CreateObject(), *e;
	char *s;

	cJSON_AddStringToObject(o, "DisplayName", v->cust_name);
	cJSON_AddStringToObject(o, "CompanyName", v->cust_name);
	if (v->cust_email != NULL) {
		e = cJSON_AddObjectToObject(o, "PrimaryEmailAddr");
		cJSON_AddStringToObject(e, "Address", v->cust_email);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

int
inv_requestid(const char *install, const struct inv *v, int64_t gen, char *out, size_t len)
{
	int n = snprintf(out, len, "qbr-%s-%" PRId64 "-g%" PRId64, install, v->id, gen);

	return n > 0 && (size_t)n < len && n <= QBR_REQUESTID_MAX ? 0 : -1;
}

/* FNV-1a: a short stable fingerprint of the name, so a renamed customer gets a new requestid. */
static uint32_t
fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

int
customer_requestid(const char *install, const struct inv *v, char *out, size_t len)
{
	int n = snprintf(out, len, "qbr-%s-c%" PRId64 "-%08x", install, v->customer_id, fnv1a(v->cust_name));

	return n > 0 && (size_t)n < len && n <= QBR_REQUESTID_MAX ? 0 : -1;
}

void
qbo_quote(struct buf *b, const char *s)
{
	buf_addc(b, '\'');
	for (; *s != '\0'; s++) {
		/* The query language escapes with a backslash; typographic quotes are a lexical error there, so they
		 * never reach a query (names with them are matched by the customer's stored Id instead). */
		if (*s == '\'' || *s == '\\')
			buf_addc(b, '\\');
		buf_addc(b, *s);
	}
	buf_addc(b, '\'');
}
