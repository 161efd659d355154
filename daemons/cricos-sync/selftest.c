/*
 * cricos-sync-selftest: unit tests of the pure parts (value cleaning, the streaming page scanner, record
 * cleaning).  Run by ctest as unit.cricos-sync-selftest; exits non-zero on the first failure, naming it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "check.h"
#include "ckan-page.h"
#include "ckan.h"
#include "clean.h"
#include "tables.h"
#include "xmalloc.h"

static void
test_money(void)
{
	static const struct { const char *in; bool ok; long long cents; } cases[] = {
		{ "$13,300.00", true, 1330000 }, { "$150.00", true, 15000 }, { "$0.00", true, 0 },
		{ "$1,234,567.89", true, 123456789 }, { "13300", true, 1330000 }, { "$13300.5", true, 1330050 },
		{ "-$5.00", true, -500 }, { "$-5.00", true, -500 }, { "$ 20", true, 2000 },
		{ "$1,2x0.00", false, 0 }, { "$12,34.00", false, 0 }, { "$1234,567.00", false, 0 },
		{ "$1,2345.00", false, 0 }, { "N/A", false, 0 }, { "TBA", false, 0 }, { "$", false, 0 },
		{ "$1.005", false, 0 }, { "$1.", false, 0 }, { "1e5", false, 0 }, { "$1,000,000,000,000,000.00", false, 0 },
		{ "", false, 0 },
	};
	size_t i;
	int64_t v;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool ok = clean_money_cents(cases[i].in, strlen(cases[i].in), &v);

		CHECK_MSG(ok == cases[i].ok, "money '%s': ok=%d", cases[i].in, ok);
		if (ok && cases[i].ok)
			CHECK_MSG(v == cases[i].cents, "money '%s' = %lld, want %lld", cases[i].in, (long long)v,
			    cases[i].cents);
	}
}

static void
test_integer(void)
{
	static const struct { const char *in; bool ok; long long v; } cases[] = {
		{ "2,610", true, 2610 }, { "80", true, 80 }, { "-1", true, -1 }, { "1,050", true, 1050 },
		{ "44.00", true, 44 }, { "0", true, 0 }, { "-20", true, -20 }, { "+7", true, 7 },
		{ "44.5", false, 0 }, { "2,61", false, 0 }, { "26,10,0", false, 0 }, { "abc", false, 0 },
		{ "1 000", false, 0 }, { "", false, 0 }, { "4.", false, 0 }, { "1234567890123456", false, 0 },
	};
	size_t i;
	int64_t v;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool ok = clean_integer(cases[i].in, strlen(cases[i].in), &v);

		CHECK_MSG(ok == cases[i].ok, "integer '%s': ok=%d", cases[i].in, ok);
		if (ok && cases[i].ok)
			CHECK_MSG(v == cases[i].v, "integer '%s' = %lld", cases[i].in, (long long)v);
	}
}

static void
test_misc(void)
{
	const char *s;
	size_t n;
	double d;
	int64_t v;
	char pc[16];

	n = clean_trim("\xef\xbb\xbf  BSB50420 \t", 15, &s);
	CHECK_MSG(n == 8 && memcmp(s, "BSB50420", 8) == 0, "trim BOM + spaces: %zu '%.*s'", n, (int)n, s);
	n = clean_trim("   ", 3, &s);
	CHECK_MSG(n == 0, "trim blank");
	n = clean_trim("\xc2\xa0x\xc2\xa0", 5, &s);
	CHECK_MSG(n == 1 && *s == 'x', "trim nbsp");
	CHECK_MSG(clean_decimal("4.00", 4, &d) && d == 4.0, "decimal 4.00");
	CHECK_MSG(clean_decimal("10.30", 5, &d) && d > 10.299 && d < 10.301, "decimal 10.30");
	CHECK_MSG(clean_decimal("1,050.5", 7, &d) && d == 1050.5, "decimal 1,050.5");
	CHECK_MSG(!clean_decimal("4.x", 3, &d), "decimal 4.x");
	CHECK_MSG(clean_yesno("Yes", 3, &v) && v == 1, "yes");
	CHECK_MSG(clean_yesno("no", 2, &v) && v == 0, "no");
	CHECK_MSG(!clean_yesno("Y", 1, &v), "Y");
	CHECK_MSG(clean_provider_code("00001K", 6), "provider ok");
	CHECK_MSG(!clean_provider_code("00001k", 6) && !clean_provider_code("0001K", 5), "provider bad");
	CHECK_MSG(clean_course_code("001623A", 7) && clean_course_code("0100000", 7), "course ok");
	CHECK_MSG(!clean_course_code("01623A", 6) && !clean_course_code("00162aA", 7), "course bad");
	CHECK_MSG(clean_postcode("800", 3, pc) == 4 && strcmp(pc, "0800") == 0, "postcode 800");
	CHECK_MSG(clean_postcode("3173", 4, pc) == 4 && strcmp(pc, "3173") == 0, "postcode 3173");
}

/* --- the page scanner ----------------------------------------------------------------------------------------- */

struct collect {
	struct buf all;
	size_t n;
};

static int
collect_cb(const char *json, size_t len, size_t index, void *arg)
{
	struct collect *c = arg;

	buf_add(&c->all, json, len);
	buf_addc(&c->all, '\n');
	c->n++;
	return 0;
}

static int
scan_mem(const char *doc, cJSON **env, size_t *n, struct collect *col, char **cause)
{
	struct page_src src = { -1, doc, strlen(doc) };

	return ckan_page_scan(&src, col ? collect_cb : NULL, col, env, n, cause);
}

static void
test_scanner(void)
{
	static const char good[] =
	    "{\"help\": \"h\", \"success\": true, \"result\": {\"limit\": 2, \"offset\": 0,"
	    " \"records\": [ {\"_id\": 1, \"a\": \"x \\\"q\\\" \\u00e9\", \"b\": null},\n"
	    " {\"_id\":2,\"a\":\"]}\",\"b\":-1.5e3} ],"
	    " \"fields\": [{\"id\": \"_id\"}, {\"id\": \"\\ufeffa\"}], \"_links\": {\"next\": \"/x\"}, \"total\": 7,"
	    " \"total_was_estimated\": false}}";
	static const char *const bad[] = {
		"", "[]", "{\"success\": true, \"result\": {\"records\": [{\"a\": 1},]}}",
		"{\"success\": true, \"result\": {\"records\": [{\"a\": 1}",
		"{\"success\": tru}", "{\"a\": \"unterminated}", "{\"a\": 01}", "{\"a\": 1} x",
		"{\"a\": \"bad \\x escape\"}", "{\"a\": [1 2]}", "{\"a\" 1}",
		"{\"help\": \"h\", \"success\": true, \"result\": {\"records\": [{\"_id\": 1, \"a\": \"x\"},{\"_id\":2,\"a\":\"",
		"{\"result\": {\"records\": [], \"records\": []}}",
	};
	struct collect col;
	cJSON *env = NULL;
	char *cause = NULL, path[] = "/tmp/cricos-selftest-XXXXXX";
	size_t n = 0, i;
	int fd;

	buf_init(&col.all);
	col.n = 0;
	CHECK_MSG(scan_mem(good, &env, &n, &col, &cause) == 0, "good page: %s", cause ? cause : "");
	CHECK_MSG(n == 2 && col.n == 2, "two records (%zu)", n);
	CHECK_MSG(col.all.data != NULL && strcmp(col.all.data,
	    "{\"_id\":1,\"a\":\"x \\\"q\\\" \\u00e9\",\"b\":null}\n{\"_id\":2,\"a\":\"]}\",\"b\":-1.5e3}\n") == 0,
	    "records split: %s", col.all.data ? col.all.data : "(none)");
	CHECK_MSG(env != NULL && cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(env, "result"),
	    "records")) == 0, "envelope keeps an empty records list");
	CHECK_MSG(env != NULL && cJSON_GetObjectItem(cJSON_GetObjectItem(env, "result"), "total")->valueint == 7,
	    "envelope total");
	cJSON_Delete(env);
	env = NULL;
	buf_free(&col.all);

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		free(cause);
		cause = NULL;
		CHECK_MSG(scan_mem(bad[i], &env, &n, NULL, &cause) == -1 && env == NULL, "bad page %zu accepted", i);
		CHECK_MSG(cause != NULL && strncmp(cause, "malformed JSON at byte ", 23) == 0, "bad page %zu: %s", i,
		    cause ? cause : "(no message)");
	}
	free(cause);
	cause = NULL;

	/* The same from a file, across read-chunk boundaries: a 200,000-record page. */
	if ((fd = mkstemp(path)) == -1) {
		CHECK_MSG(0, "mkstemp");
		return;
	}
	unlink(path);
	{
		struct buf doc;
		struct page_src src = { fd, NULL, 0 };

		buf_init(&doc);
		buf_adds(&doc, "{\"success\": true, \"result\": {\"records\": [");
		for (i = 0; i < 200000; i++)
			buf_printf(&doc, "%s{\"_id\": %zu, \"CRICOS Course Code\": \"%07zu\", \"s\": \"a\\\\b\\\"c\"}",
			    i ? ", " : "", i + 1, i);
		buf_adds(&doc, "], \"total\": 200000}}");
		CHECK_MSG(write(fd, doc.data, doc.len) == (ssize_t)doc.len, "write");
		buf_init(&col.all);
		col.n = 0;
		CHECK_MSG(ckan_page_scan(&src, NULL, NULL, &env, &n, &cause) == 0 && n == 200000, "file page: %s",
		    cause ? cause : "");
		cJSON_Delete(env);
		env = NULL;
		CHECK_MSG(ckan_page_scan(&src, collect_cb, &col, &env, &n, &cause) == 0 && col.n == 200000,
		    "file page records");
		cJSON_Delete(env);
		env = NULL;
		buf_free(&col.all);
		/* Truncated in the middle: found by the checking pass. */
		CHECK_MSG(ftruncate(fd, (off_t)(doc.len / 2)) == 0, "truncate");
		free(cause);
		cause = NULL;
		CHECK_MSG(ckan_page_scan(&src, NULL, NULL, &env, &n, &cause) == -1, "truncated file accepted");
		CHECK_MSG(cause != NULL && strstr(cause, "truncated") != NULL, "truncated: %s", cause ? cause : "");
		buf_free(&doc);
	}
	free(cause);
	close(fd);
}

/*
 * Random damage to a valid page (deterministic): the scanner must never crash (ASan runs this), and whatever it
 * accepts must be JSON that cJSON accepts too (it is never more lenient than the parser behind it).
 */
static void
test_scanner_mutations(void)
{
	static const char base[] =
	    "{\"help\": \"h\", \"success\": true, \"result\": {\"limit\": 2, \"offset\": 0, \"records\": ["
	    "{\"_id\": 1, \"CRICOS Provider Code\": \"00001K\", \"Tuition Fee\": \"$13,300.00\", \"x\": null},"
	    "{\"_id\": 2, \"a\": \"q\\\"\\u00e9\", \"b\": [1, 2.5e3, true, false], \"c\": {}}],"
	    " \"fields\": [{\"id\": \"_id\", \"type\": \"int\"}], \"total\": 2}}";
	static const char alphabet[] = "{}[]\",:\\ u0aE-+.tfn\x01\xc3";
	unsigned long seed = 12345;
	char doc[sizeof base + 8];
	int i, k, accepted = 0;

	for (i = 0; i < 20000; i++) {
		size_t len = sizeof base - 1;
		cJSON *env = NULL, *whole;
		char *cause = NULL;
		size_t n;
		int edits = 1 + (int)(seed % 3);

		memcpy(doc, base, len + 1);
		for (k = 0; k < edits && len > 0; k++) {
			size_t at;

			seed = seed * 6364136223846793005UL + 1442695040888963407UL;
			at = (size_t)(seed >> 33) % len;
			switch ((seed >> 20) % 3) {
			case 0:
				doc[at] = alphabet[(seed >> 40) % (sizeof alphabet - 1)];
				break;
			case 1:
				memmove(doc + at, doc + at + 1, len - at);
				len--;
				break;
			default:
				len = at;
				doc[len] = '\0';
				break;
			}
		}
		{
			struct page_src src = { -1, doc, len };

			if (ckan_page_scan(&src, NULL, NULL, &env, &n, &cause) == 0) {
				accepted++;
				whole = cJSON_ParseWithLength(doc, len);
				CHECK_MSG(whole != NULL, "the scanner accepted what cJSON rejects: %.*s", (int)len, doc);
				cJSON_Delete(whole);
				cJSON_Delete(env);
			} else
				CHECK_MSG(cause != NULL, "a rejection without a message");
		}
		free(cause);
	}
	CHECK_MSG(accepted > 0 && accepted < 20000, "mutations: %d of 20000 accepted", accepted);
}

/* --- CKAN envelopes and errors ------------------------------------------------------------------------------------ */

static void
test_ckan_errors(void)
{
	const cJSON *result;
	struct http_result r;
	char *msg;
	cJSON *doc;
	bool fatal;

	doc = cJSON_Parse("{\"help\": \"h\", \"success\": true, \"result\": {\"total\": 1}}");
	msg = ckan_envelope_check(doc, "datastore_search", &result, &fatal);
	CHECK_MSG(msg == NULL && result != NULL, "success envelope");
	cJSON_Delete(doc);

	/* success:false with HTTP 200 is not CKAN's way, but must still be an error, judged by its class. */
	doc = cJSON_Parse("{\"help\": \"h\", \"success\": false, \"error\": {\"__type\": \"Validation Error\","
	    " \"limit\": [\"Invalid integer\"]}}");
	msg = ckan_envelope_check(doc, "datastore_search", &result, &fatal);
	CHECK_MSG(msg != NULL && strcmp(msg, "datastore_search: CKAN answered success=false: Validation Error: limit: "
	    "Invalid integer") == 0 && fatal, "success false: %s", msg ? msg : "");
	free(msg);
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"success\": false, \"error\": {\"__type\": \"Internal Server Error\", \"message\": \"x\"}}");
	msg = ckan_envelope_check(doc, "package_show", &result, &fatal);
	CHECK_MSG(msg != NULL && !fatal, "internal error is retryable");
	free(msg);
	cJSON_Delete(doc);
	doc = cJSON_Parse("{\"success\": true}");
	msg = ckan_envelope_check(doc, "package_show", &result, &fatal);
	CHECK_MSG(msg != NULL && strstr(msg, "no \"result\"") != NULL, "no result: %s", msg ? msg : "");
	free(msg);
	cJSON_Delete(doc);
	doc = cJSON_Parse("[1]");
	msg = ckan_envelope_check(doc, "package_show", &result, &fatal);
	CHECK_MSG(msg != NULL, "not an envelope");
	free(msg);
	cJSON_Delete(doc);

	memset(&r, 0, sizeof r);
	r.status = 409;
	r.error = "data.gov.au datastore_search: http://x: HTTP 409";
	r.body = "{\"help\": \"h\", \"success\": false, \"error\": {\"query\": [\"Search took too long\"], "
	    "\"__type\": \"Validation Error\"}}";
	r.body_len = strlen(r.body);
	msg = ckan_failure(&r, "datastore_search X offset 0", &fatal);
	CHECK_MSG(strcmp(msg, "datastore_search X offset 0: HTTP 409 Validation Error: query: Search took too long") == 0 &&
	    !fatal, "statement timeout: %s", msg);
	free(msg);
	r.status = 400;
	r.body = "\"Bad request - Action name not known: datastore_search_sql\"";
	r.body_len = strlen(r.body);
	msg = ckan_failure(&r, "datastore_search_sql", &fatal);
	CHECK_MSG(fatal && strstr(msg, "Action name not known") != NULL, "bare string 400: %s", msg);
	free(msg);
	r.status = 503;
	r.body = "<html>busy</html>";
	r.body_len = strlen(r.body);
	r.error = "data.gov.au package_show: http://x: HTTP 503 with an HTML error page";
	msg = ckan_failure(&r, "package_show", &fatal);
	CHECK_MSG(!fatal && strcmp(msg, r.error) == 0, "HTML 503: %s", msg);
	free(msg);
}

/* --- records --------------------------------------------------------------------------------------------------- */

static void
test_rows(void)
{
	struct row r;
	char why[300];
	cJSON *rec;

	row_init(&r);
	rec = cJSON_Parse("{\"_id\": 3, \"\\ufeffCRICOS Provider Code\": \"00649C\", \"Institution Name\": \"Haileybury\","
	    " \"Location Name\": \" Haileybury College \", \"Location Type\": \"\", \"Address Line 1\": \"855 Springvale Rd\","
	    " \"Address Line 2\": null, \"Address Line 3\": \"\", \"Address Line 4\": null, \"City\": \"Keysborough\","
	    " \"State\": \"VIC\", \"Postcode\": \"800\"}");
	CHECK_MSG(row_clean(&cricos_tables[T_LOCATIONS], rec, &r, why, sizeof why) == ROW_OK, "location: %s", why);
	CHECK_MSG(r.key.data != NULL && strcmp(r.key.data, "00649C|Haileybury College|KEYSBOROUGH|VIC") == 0,
	    "location key: %s", r.key.data ? r.key.data : "");
	CHECK_MSG(r.v[3].type == V_NULL && !r.unparseable[3], "empty string is NULL");
	CHECK_MSG(r.v[10].type == V_TEXT && r.v[10].len == 4 && memcmp(r.v[10].s, "0800", 4) == 0, "postcode padded");
	cJSON_Delete(rec);

	rec = cJSON_Parse("{\"_id\": 1, \"CRICOS Provider Code\": \"00001K\", \"Institution Name\": \"CIT\","
	    " \"CRICOS Course Code\": \"001623A\", \"Course Name\": \"Cert IV\", \"VET National Code\": \"BSB50420 \","
	    " \"Dual Qualification\": \"No\", \"Work Component Hours/Week\": \"4.00\","
	    " \"Work Component Total Hours\": \"1,050\","
	    " \"Duration (Weeks)\": 44, \"Tuition Fee\": \"$1,2x0.00\", \"Non Tuition Fee\": 104793.75,"
	    " \"Estimated Total Course Cost\": \"$13,450.00\", \"Expired\": \"Yes\", \"Unknown\": \"x\"}");
	CHECK_MSG(row_clean(&cricos_tables[T_COURSES], rec, &r, why, sizeof why) == ROW_OK, "course: %s", why);
	CHECK_MSG(r.v[4].len == 8, "VET code trimmed");
	CHECK_MSG(r.v[15].type == V_REAL && r.v[15].d == 4.0, "hours/week");
	CHECK_MSG(r.v[17].type == V_INT && r.v[17].i == 1050, "total hours");
	CHECK_MSG(r.v[19].type == V_INT && r.v[19].i == 44, "duration as a JSON number");
	CHECK_MSG(r.v[20].type == V_NULL && r.unparseable[20], "bad money is NULL and counted");
	CHECK_MSG(r.v[21].type == V_INT && r.v[21].i == 10479375, "money as a JSON number");
	CHECK_MSG(r.v[22].type == V_INT && r.v[22].i == 1345000, "money");
	CHECK_MSG(r.v[23].type == V_INT && r.v[23].i == 1, "expired flag");
	cJSON_Delete(rec);

	rec = cJSON_Parse("{\"_id\": 41, \"CRICOS Provider Code\": null, \"Trading Name\": \"\", \"Institution Name\": null}");
	CHECK_MSG(row_clean(&cricos_tables[T_INSTITUTIONS], rec, &r, why, sizeof why) == ROW_BLANK, "blank row");
	cJSON_Delete(rec);
	rec = cJSON_Parse("{\"_id\": 2, \"CRICOS Provider Code\": \"1234\", \"Institution Name\": \"X\"}");
	CHECK_MSG(row_clean(&cricos_tables[T_INSTITUTIONS], rec, &r, why, sizeof why) == ROW_REJECT &&
	    strstr(why, "invalid CRICOS Provider Code '1234'") != NULL, "bad key rejected: %s", why);
	cJSON_Delete(rec);
	rec = cJSON_Parse("{\"_id\": 2, \"CRICOS Course Code\": \"0016231\", \"Institution Name\": \"X\"}");
	CHECK_MSG(row_clean(&cricos_tables[T_COURSE_LOCATIONS], rec, &r, why, sizeof why) == ROW_REJECT,
	    "course location without provider rejected");
	cJSON_Delete(rec);
	row_free(&r);
}

int
main(void)
{
	test_money();
	test_integer();
	test_misc();
	test_scanner();
	test_scanner_mutations();
	test_ckan_errors();
	test_rows();
	CHECK_DONE();
}
