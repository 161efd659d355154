/*
 * cricos-sync's CKAN page reader on arbitrary answers, as phase-sync.c and phase-init.c drive it: the checking pass
 * of the streaming scanner over a spool file (envelope + record count; now and then with the answer straddling two
 * reads), the envelope checks (success, error text, result, total / offset / limit, fields against each table's
 * columns, the resources of package_show / resource_show), then the writing pass from memory with every record
 * parsed and cleaned for each of the four tables (BOMs, money, grouped integers, decimals, yes/no, codes,
 * postcodes).  An answer that is not a JSON object is also read as an error body (ckan_failure) and as one raw cell
 * through the cleaning functions.  The daemon's own sources (fuzz/ckan_page.sources) are linked, not copies.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cJSON.h>

#include "http.h"
#include "log.h"

#include "../ckan-page.h"
#include "../ckan.h"
#include "../clean.h"
#include "../tables.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* Undefined behaviour is a finding like a crash (the ASan test build has -fno-sanitize-recover too). */
const char *
__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

#define SPOOL_CHUNK (64 * 1024)	/* ckan-page.c's READ_CHUNK */

static int spool = -1;
static char spaces[SPOOL_CHUNK];

struct pass {
	struct row row;
	size_t records;
};

static int
record(const char *json, size_t len, size_t index, void *arg)
{
	struct pass *p = arg;
	char why[300], what[128];
	cJSON *rec;
	int t;

	p->records++;
	/* The scanner checks the shape only: cJSON may still refuse one (a lone \uD800); the daemon then fails the
	 * page cleanly. */
	if ((rec = cJSON_ParseWithLength(json, len)) != NULL && cJSON_IsObject(rec)) {
		for (t = 0; t < T_COUNT; t++) {
			if (row_clean(&cricos_tables[t], rec, &p->row, why, sizeof why) == ROW_OK)
				row_describe(&p->row, what, sizeof what);
		}
	}
	cJSON_Delete(rec);
	return 0;
}

static void
envelope(const cJSON *env)
{
	const cJSON *result, *it, *id;
	struct ckan_resource res;
	char *msg, *text;
	bool fatal;
	int t;

	if ((msg = ckan_envelope_check(env, "fuzz", &result, &fatal)) != NULL) {
		free(msg);
		return;
	}
	/* datastore_search: the counts page_done pages by, and the fields must name every column of a table */
	if (ckan_count(result, "total", -1, CKAN_COUNT_MAX) > CKAN_COUNT_MAX ||
	    ckan_count(result, "offset", 0, CKAN_COUNT_MAX) > CKAN_COUNT_MAX ||
	    ckan_count(result, "limit", -1, INT_MAX) > INT_MAX)
		abort();
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "fields")) {
		id = cJSON_GetObjectItemCaseSensitive(it, "id");
		if (cJSON_IsString(id))
			for (t = 0; t < T_COUNT; t++)
				(void)table_col(&cricos_tables[t], id->valuestring);
	}
	/* package_show: result.resources; resource_show: result itself */
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "resources"))
		(void)ckan_resource_read(it, &res);
	(void)ckan_resource_read(result, &res);
	if ((it = cJSON_GetObjectItemCaseSensitive(env, "error")) != NULL) {
		text = ckan_error_text(it);
		free(text);
	}
}

/* Not an answer: an error body, and one raw cell. */
static void
not_a_page(const char *body, size_t size)
{
	struct http_result r;
	char *msg, *pc;
	const char *s;
	size_t n;
	int64_t v;
	double d;
	bool fatal;
	static const long statuses[] = { 302, 400, 403, 409, 500 };

	memset(&r, 0, sizeof r);
	r.status = statuses[size % 5];
	r.error = "HTTP error";
	r.body = body;
	r.body_len = size;
	r.attempts = 2;
	r.spool_fd = -1;
	msg = ckan_failure(&r, "fuzz", &fatal);
	free(msg);

	n = clean_trim(body, size, &s);
	(void)clean_money_cents(s, n, &v);
	(void)clean_integer(s, n, &v);
	(void)clean_decimal(s, n, &d);
	(void)clean_yesno(s, n, &v);
	(void)clean_provider_code(s, n);
	(void)clean_course_code(s, n);
	if (n <= CLEAN_MAX_VALUE) {
		pc = malloc(n + 2);
		if (clean_postcode(s, n, pc) > n + 1)
			abort();
		free(pc);
	}
}

/*
 * The spool file is read in 64 KiB chunks.  Every eighth input (reading 64 KiB more costs) is also read with white
 * space in front (valid before a JSON text) that puts the end of the first read inside the answer, at an offset the
 * input chooses: a value cut across two reads must scan as it does in one.
 */
static void
straddle(const uint8_t *data, size_t size, int rc, size_t n)
{
	static int fd = -1;
	struct page_src src = { -1, NULL, 0 };
	size_t pad = SPOOL_CHUNK - 1 - (size_t)(data[size - 1] * 257u + size) % size, n2 = 0;
	cJSON *env = NULL;
	char *cause = NULL;
	int rc2;

	if (fd == -1) {
		memset(spaces, ' ', sizeof spaces);
		if ((fd = memfd_create("fuzz-ckan-straddle", 0)) == -1 || pwrite(fd, spaces, sizeof spaces, 0) == -1)
			abort();
	}
	/* The file holds SPOOL_CHUNK spaces between inputs: the answer goes over them, then they are put back. */
	if (pwrite(fd, data, size, (off_t)pad) != (ssize_t)size || ftruncate(fd, (off_t)(pad + size)) == -1)
		abort();
	src.fd = fd;
	rc2 = ckan_page_scan(&src, NULL, NULL, &env, &n2, &cause);
	if (rc2 != rc || (rc == 0 && n2 != n))
		abort();	/* one answer, two verdicts */
	cJSON_Delete(env);
	free(cause);
	if (pwrite(fd, spaces, SPOOL_CHUNK - pad, (off_t)pad) != (ssize_t)(SPOOL_CHUNK - pad) ||
	    ftruncate(fd, SPOOL_CHUNK) == -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct page_src src;
	struct pass p;
	cJSON *env = NULL, *env2 = NULL;
	char *cause = NULL, *body;
	size_t n = 0, n2 = 0;
	int rc;

	if (spool == -1) {
		log_init("fuzz", 0);
		if ((spool = memfd_create("fuzz-ckan", 0)) == -1)
			abort();
	}
	if (ftruncate(spool, 0) == -1 || pwrite(spool, data, size, 0) != (ssize_t)size)
		return 0;
	/* Bodies from the HTTP layer are NUL-terminated. */
	body = malloc(size + 1);
	memcpy(body, data, size);
	body[size] = '\0';

	/* Pass 1, from the spool file (as the daemon reads it): the whole answer must be well-formed. */
	src.fd = spool;
	src.mem = NULL;
	src.memlen = 0;
	rc = ckan_page_scan(&src, NULL, NULL, &env, &n, &cause);
	if (size % 8 == 0 && size > 0)
		straddle(data, size, rc, n);
	if (rc == 0) {
		envelope(env);
		/* Pass 2, from memory this time: the same records, each cleaned. */
		memset(&p, 0, sizeof p);
		row_init(&p.row);
		src.fd = -1;
		src.mem = body;
		src.memlen = size;
		if (ckan_page_scan(&src, record, &p, &env2, &n2, &cause) != 0 || n2 != n || p.records != n)
			abort();	/* the two reads of one answer must agree */
		row_free(&p.row);
		cJSON_Delete(env);
		cJSON_Delete(env2);
	} else {
		free(cause);
		not_a_page(body, size);
	}
	free(body);
	return 0;
}
