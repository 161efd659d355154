/*
 * qb-reconcile's QuickBooks parsers on arbitrary bodies: the error parser (JSON Fault/fault in any case, code as
 * string or number, XML <Fault>, the OAuth {"error"} shape, errorCode= in a message) with the 6140 detail reader;
 * a 2xx answer as qbo.c and its callers read it (a Fault inside a 200; Invoice, Customer, QueryResponse and
 * CDCResponse members through qbo-read.c, the reader pusher.c and phase-reconcile.c use, not a copy); and the token endpoint's answers (a 200 into a token
 * pair, the error code of a refusal).  A registered secret quoted in an error body must not survive into the
 * parsed fault.  The daemon's own sources (fuzz/qbo_response.sources) are linked.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"
#include "timeutil.h"

#include "../qbo-read.h"
#include "../qbr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* Undefined behaviour is a finding like a crash (the ASan test build has -fno-sanitize-recover too). */
const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* A registered secret, as the daemon's client secret is: a parsed fault must never hold it (masked first). */
#define SECRET "QbFuzzSecret-4711"

static void
fault(const char *body, size_t len, const char *ctype)
{
	struct qbo_fault f;
	char type[32], id[32];

	if (!qbo_parse_fault(body, len, ctype, &f))
		return;
	if (strlen(f.code) >= sizeof f.code || strlen(f.type) >= sizeof f.type ||
	    strlen(f.message) >= sizeof f.message || strlen(f.detail) >= sizeof f.detail)
		abort();
	if (strstr(f.code, SECRET) != NULL || strstr(f.type, SECRET) != NULL || strstr(f.message, SECRET) != NULL ||
	    strstr(f.detail, SECRET) != NULL)
		abort();
	(void)qbo_parse_6140(f.detail, type, sizeof type, id, sizeof id);
}

/* An invoice or a customer as pusher.c and phase-reconcile.c read it (qbo-read.c, the daemon's own reader). */
static void
object(const cJSON *o)
{
	struct qbo_invoice inv;
	const char *name, *id;

	qbo_invoice_read(o, &inv);
	if (!inv.amounts && (inv.total_cents != 0 || inv.balance_cents != 0))
		abort();	/* amounts only when both are there */
	if (inv.updated_ok && strlen(inv.updated) != ISO8601_LEN - 1)
		abort();
	if (qbo_customer_row(o, &name, &id) && (name == NULL || id == NULL))
		abort();
}

static int
cdc_object(const char *entity, const cJSON *obj, void *arg)
{
	int64_t *n = arg;

	if (entity == NULL)
		abort();
	(*n)++;
	object(obj);
	return 0;
}

static void
answer(const char *body, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *rows, *row;
	char when[ISO8601_LEN];
	int64_t n = 0;

	if (root == NULL || !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return;
	}
	if (json_get(root, "Fault") != NULL) {
		/* "200 may still contain a Fault": qbo.c prints it back and parses it as an error body. */
		char *s = cJSON_PrintUnformatted(root);

		fault(s, strlen(s), "application/json");
		free(s);
	}
	object(json_get(root, "Invoice"));
	object(json_get(root, "Customer"));
	if ((rows = qbo_query_rows(root, "Invoice")) != NULL)
		cJSON_ArrayForEach(row, rows)
			object(row);
	if ((rows = qbo_query_rows(root, "Customer")) != NULL)
		cJSON_ArrayForEach(row, rows)
			object(row);
	if (qbo_cdc_each(root, cdc_object, &n) != 0 || n < 0)
		abort();
	(void)qbo_time_utc(json_str(root, "time"), when);
	cJSON_Delete(root);
}

static void
token(const char *body, size_t len)
{
	struct qbr_tokens t;
	char code[64];

	memset(&t, 0, sizeof t);
	if (qbr_parse_token_answer(body, len, &t) == NULL &&
	    (t.access_token == NULL || t.refresh_token == NULL || t.access_expires_at <= t.obtained_at))
		abort();	/* accepted means complete */
	tokens_clear(&t);
	/* The code is cut to the buffer and escaped: it reaches log lines and rows, so no control character. */
	qbr_oauth_error_code(body, len, code, sizeof code);
	for (const char *c = code; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	char *body, type[32], id[32];

	if (!ready) {
		log_init("fuzz", 0);
		secret_register(SECRET);
		ready = true;
	}
	/* Bodies from the HTTP layer are NUL-terminated. */
	body = malloc(size + 1);
	memcpy(body, data, size);
	body[size] = '\0';

	fault(body, size, "application/json");
	fault(body, size, "application/xml");
	answer(body, size);
	token(body, size);
	(void)qbo_parse_6140(body, type, sizeof type, id, sizeof id);

	secret_forget_all();	/* the token parser registers what it accepted */
	secret_register(SECRET);
	free(body);
	return 0;
}
