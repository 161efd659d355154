/*
 * tga-sync-rest-selftest: the REST source's JSON layers on their own (ctest: unit.tga-sync-rest-selftest).
 * jscan on valid and hostile texts (escapes, surrogates, nesting, numbers, truncation, trailing bytes); the
 * mapping of REST answers onto the stage records SOAP fills (parse-rest.c): a component (releases reversed to
 * oldest first, currency mapped, instants canonical), a unit grid, an organisation (the legal person in office),
 * a scope page (the same row hash as the SOAP parser, explicit/implicit filtering, rows without a code rejected)
 * and a search page (a result of another type is an error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "jscan.h"
#include "parse-rest.h"
#include "parse.h"
#include "source-rest.h"
#include "stage.h"
#include "tga.h"

static bool
streq(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Every token of a text as "kind:value" joined by spaces, or "ERROR: ...". */
static void
tokens(const char *text, char *out, size_t len)
{
	static const char *const names[] = { "EOF", "{", "}", "[", "]", "K", "S", "N", "true", "false", "null" };
	struct jscan j;
	enum jtok t;
	size_t n = 0;

	out[0] = '\0';
	jscan_init(&j, text, strlen(text));
	do {
		t = jscan_next(&j);
		if (t == JT_ERROR) {
			snprintf(out, len, "ERROR: %s", j.err);
			break;
		}
		if (t == JT_KEY || t == JT_STRING || t == JT_NUMBER)
			n += (size_t)snprintf(out + n, len - n, "%s%s:%.*s", n ? " " : "", names[t], (int)j.len, j.val);
		else
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", names[t]);
	} while (t != JT_EOF && n < len);
	jscan_free(&j);
}

static void
test_jscan(void)
{
	char out[1024];
	struct jscan j;
	int64_t v;
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", "-", "1e", "tru", "nul",
		"\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\udc00\"", "\"\\ud800x\"", "\"tab\there\"", "[1]]", "{} {}",
		"[\"a\",", "{\"a\":[}", "]",
	};
	char deep[200];
	size_t i;

	tokens(" {\"a\" : [1, -2.5e3, true, false, null, \"x\"], \"b\":{}} ", out, sizeof out);
	CHECK_MSG(strcmp(out, "{ K:a [ N:1 N:-2.5e3 true false null S:x ] K:b { } } EOF") == 0, "%s", out);
	tokens("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", out, sizeof out);
	CHECK_MSG(strcmp(out, "S:\"\\/\b\f\n\r\t EOF") == 0, "escapes: %s", out);
	/* \u escapes as UTF-8, a surrogate pair as one 4-byte character. */
	tokens("\"\\u00e9\\u20AC\\ud83d\\ude00\"", out, sizeof out);
	CHECK_MSG(strcmp(out, "S:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 EOF") == 0, "unicode: %s", out);
	tokens("[]", out, sizeof out);
	CHECK_MSG(strcmp(out, "[ ] EOF") == 0, "%s", out);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tokens(bad[i], out, sizeof out);
		CHECK_MSG(strncmp(out, "ERROR", 5) == 0, "'%s' accepted: %s", bad[i], out);
	}
	/* Nesting beyond the limit. */
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	tokens(deep, out, sizeof out);
	CHECK_MSG(strstr(out, "nesting") != NULL, "%s", out);
	/* Skipping a value. */
	{
		static const char text[] = "{\"skip\":{\"x\":[1,{\"y\":2}]},\"n\":42}";

		jscan_init(&j, text, sizeof text - 1);
	}
	CHECK_MSG(jscan_next(&j) == JT_OBJECT && jscan_next(&j) == JT_KEY && jscan_skip(&j, jscan_next(&j)) == 0 &&
	    jscan_next(&j) == JT_KEY && jscan_is(&j, "n") && jscan_next(&j) == JT_NUMBER && jscan_uint(&j, &v) &&
	    v == 42 && jscan_next(&j) == JT_OBJECT_END && jscan_next(&j) == JT_EOF, "skip: %s", j.err);
	jscan_free(&j);
	/* Not a count. */
	jscan_init(&j, "-1", 2);
	CHECK_MSG(jscan_next(&j) == JT_NUMBER && !jscan_uint(&j, &v), "negative count");
	jscan_free(&j);
}

/* Read a stage back: the records of entity 0, children then head, as lines "type|f0|f1|...". */
static void
read_stage(struct stage *sg, char *out, size_t len)
{
	struct rec r;
	size_t n = 0;
	int i, rc;
	char *cause = NULL;

	out[0] = '\0';
	rec_init(&r);
	if (sg->n == 0 || stage_seek(sg, sg->ents[0].children, &cause) == -1) {
		snprintf(out, len, "no entity %s", cause ? cause : "");
		free(cause);
		rec_free(&r);
		return;
	}
	while ((rc = stage_next(sg, sg->ents[0].end, &r, &cause)) == 1 && n < len) {
		n += (size_t)snprintf(out + n, len - n, "%d", r.type);
		for (i = 0; i < r.n && n < len; i++)
			n += (size_t)snprintf(out + n, len - n, "|%s", rec_str(&r, i) ? rec_str(&r, i) : "~");
		if (n < len)
			n += (size_t)snprintf(out + n, len - n, "\n");
	}
	if (rc == -1) {
		snprintf(out, len, "stage error %s", cause);
		free(cause);
	}
	rec_free(&r);
}

static void
test_training(void)
{
	const char *json = "{\"code\":\" BSB50120 \",\"title\":\"Diploma of Business\",\"type\":\"qualification\","
	    "\"status\":\"current\",\"statusLabel\":\"Current\",\"usageRecommendationLabel\":\"Current\","
	    "\"isConfidential\":false,\"isLegacyData\":null,\"parent\":{\"code\":\"BSB\",\"title\":\"Business\"},"
	    "\"trainingPackageDeveloper\":null,\"createdDate\":\"2020-03-04T05:06:07.5000000Z\","
	    "\"updatedDate\":\"2021-01-02T03:04:05+10:00\","
	    "\"usageRecommendationHistory\":[{\"usageRecommendationLabel\":\"Current\",\"startDate\":\"2020-03-04\","
	    "\"endDate\":null}],\"currencyPeriods\":[],\"classifications\":[{\"schemeCode\":\"05\",\"valueCode\":\"421\","
	    "\"purposeCode\":\"1\",\"startDate\":\"2020-03-04T00:00:00\",\"endDate\":null}],"
	    "\"mappingInformation\":[{\"code\":\"BSB50120\",\"title\":\"t\",\"mapsToCode\":\"BSB50215\",\"mapsToTitle\":"
	    "\"old\",\"isEquivalent\":true,\"notes\":\"Supersedes BSB50215\"}],"
	    "\"releases\":[{\"releaseNumber\":\"2\",\"releaseDate\":\"2022-01-01\",\"currency\":\"current\","
	    "\"approvalProcess\":\"Minor\"},{\"releaseNumber\":1,\"releaseDate\":\"2020-03-04\",\"currency\":\"replaced\","
	    "\"approvalProcess\":null}],\"taxonomy\":{\"industrySectors\":[]}}";
	const char *grid = "[{\"code\":\"BSBCRT511\",\"title\":\"Develop critical thinking\",\"isEssential\":true},"
	    "{\"code\":null,\"title\":\"Orphan\",\"isEssential\":false}]";
	struct pr_releases rels;
	struct stage *sg;
	struct rec head;
	char out[4096], msg[256], upd[TICKS_LEN], *cause = NULL;
	cJSON *d = cJSON_Parse(json), *g = cJSON_Parse(grid);

	if ((sg = stage_new("/tmp", &cause)) == NULL) {
		CHECK_MSG(0, "stage: %s", cause);
		return;
	}
	rec_init(&head);
	stage_entity_begin(sg);
	CHECK_MSG(pr_training(d, sg, &head, upd, sizeof upd, &rels, msg, sizeof msg) == 0, "%s", msg);
	CHECK_MSG(pr_grid(g, "BSB50120", rels.number[1], sg, msg, sizeof msg) == 0, "%s", msg);
	CHECK_MSG(stage_entity_end(sg, "BSB50120", 0, &head, &cause) == 0, "%s", cause);
	CHECK_MSG(strcmp(upd, "2021-01-01T17:04:05Z") == 0, "updated %s", upd);
	CHECK_MSG(rels.n == 2 && strcmp(rels.number[0], "1") == 0 && strcmp(rels.number[1], "2") == 0,
	    "releases oldest first: %d", rels.n);
	read_stage(sg, out, sizeof out);
	/* Children in order (classification, mapping, usage, releases oldest first, grid), then the head. */
	CHECK_MSG(strcmp(out,
	    "2|05|421|1|2020-03-04|~\n"
	    "4|BSB50120|t|BSB50215|old|1|Supersedes BSB50215\n"
	    "7|Current|2020-03-04|~\n"
	    "5|1|2020-03-04|Superseded|~\n"
	    "5|2|2022-01-01|Current|Minor\n"
	    "6|2|BSBCRT511|Develop critical thinking|1\n"
	    "14|BSB50120 release 2: a unit grid entry without a code (Orphan); skipped\n"
	    "1|BSB50120|Qualification|Diploma of Business|BSB|Business|0|~|Current|2020-03-04T05:06:07.5Z|"
	    "2021-01-01T17:04:05Z|Current|~\n") == 0, "%s", out);
	/* A field of the wrong kind is an error (the entity is dropped and requested again). */
	cJSON_ReplaceItemInObject(d, "title", cJSON_CreateArray());
	stage_reset(sg);
	stage_entity_begin(sg);
	CHECK_MSG(pr_training(d, sg, &head, upd, sizeof upd, &rels, msg, sizeof msg) == -1 && strstr(msg, "title"),
	    "wrong kind: %s", msg);
	stage_entity_abort(sg, NULL);
	rec_free(&head);
	stage_free(sg);
	cJSON_Delete(d);
	cJSON_Delete(g);
}

static void
test_org(void)
{
	const char *json = "{\"code\":\"0002\",\"statusLabel\":\"Current\",\"isLegacyData\":false,"
	    "\"createdDate\":\"2016-05-01T21:33:46Z\",\"updatedDate\":\"2023-10-23T09:31:03.9121814Z\","
	    "\"legalNames\":[{\"name\":\"Old Name\",\"abns\":[\"1\"],\"acn\":\"9\",\"startDate\":\"2000-01-01\","
	    "\"endDate\":\"2010-01-01\"},{\"name\":\"Now Pty Ltd\",\"abns\":[null,\" 25 729 836 121\"],\"acn\":\"143874893\","
	    "\"startDate\":\"2010-01-01\",\"endDate\":null},{\"name\":\"Also current\",\"abns\":[],\"acn\":null,"
	    "\"endDate\":null}],\"tradingNames\":[{\"name\":\"Coastal\",\"startDate\":\"2008-04-30\",\"endDate\":null}],"
	    "\"addresses\":[{\"address\":{\"line1\":\"171 Queen St\",\"line2\":null,\"suburb\":\"Toowoomba\","
	    "\"postcode\":\"4350\",\"stateCode\":\"03\",\"countryCode\":\"1101\",\"stateOverseas\":null},"
	    "\"startDate\":\"2008-04-30\",\"endDate\":null},{\"address\":null,\"startDate\":null,\"endDate\":null},"
	    /* the evidenced shape (audit, unicorn-cms), sourcerer's state object, an overseas state */
	    "{\"addressType\":\"headOffice\",\"address\":{\"line1\":\"1 George St\",\"suburb\":\"Sydney\","
	    "\"state\":\"NSW\",\"postcode\":\"2000\",\"country\":\"Australia\",\"countryCodeAlpha3\":\"AUS\","
	    "\"fullAddress\":\"1 George St, Sydney NSW 2000\"},\"startDate\":\"2010-01-01\",\"endDate\":null},"
	    "{\"address\":{\"line1\":\"2 Main Rd\",\"suburb\":\"Bendigo\",\"state\":{\"abbreviation\":\"VIC\"},"
	    "\"postCode\":\"3550\",\"countryCodeAlpha3\":\"AUS\"},\"startDate\":null,\"endDate\":null},"
	    "{\"address\":{\"line1\":\"3 Queen St\",\"suburb\":\"Auckland\",\"state\":\"Auckland\","
	    "\"country\":\"New Zealand\"},\"startDate\":null,\"endDate\":null}],"
	    "\"webAddresses\":[{\"webAddress\":\"https://x.example\",\"startDate\":\"2008-04-30\",\"endDate\":null}],"
	    "\"registrations\":[{\"startDate\":\"2008-04-30\",\"endDate\":\"2013-04-30\",\"legalAuthority\":\"NVR Act\","
	    "\"exerciser\":\"VRQA\",\"endReason\":\"RENEW\",\"endReasonComments\":null}]}";
	struct stage *sg;
	struct rec head;
	char out[4096], msg[256], upd[TICKS_LEN], *cause = NULL;
	cJSON *d = cJSON_Parse(json);

	if ((sg = stage_new("/tmp", &cause)) == NULL) {
		CHECK_MSG(0, "stage: %s", cause);
		return;
	}
	rec_init(&head);
	stage_entity_begin(sg);
	CHECK_MSG(pr_org(d, true, sg, &head, upd, sizeof upd, msg, sizeof msg) == 0, "%s", msg);
	CHECK_MSG(stage_entity_end(sg, "0002", 0, &head, &cause) == 0, "%s", cause);
	read_stage(sg, out, sizeof out);
	CHECK_MSG(strcmp(out,
	    "9|171 Queen St|~|Toowoomba|4350|03|1101|~|2008-04-30|~\n"
	    "9|~|~|~|~|~|~|~|~|~\n"
	    "9|1 George St|~|Sydney|2000|01|1101|~|2010-01-01|~\n"
	    "9|2 Main Rd|~|Bendigo|3550|02|1101|~|~|~\n"
	    "9|3 Queen St|~|Auckland|~|~|~|Auckland|~|~\n"
	    "10|Coastal|2008-04-30|~\n"
	    "11|https://x.example|2008-04-30|~\n"
	    "12|2008-04-30|2013-04-30|RENEW|~|VRQA|NVR Act\n"
	    "8|2016-05-01T21:33:46Z|2023-10-23T09:31:03.9121814Z|Current|0|Now Pty Ltd|25729836121|143874893|~|~|~|~\n")
	    == 0, "%s", out);
	rec_free(&head);
	stage_free(sg);
	cJSON_Delete(d);
}

static void
test_scope(void)
{
	const char *page = "{\"count\":4,\"totalCount\":9,\"value\":["
	    "{\"code\":\"BSB50120\",\"title\":\"x\",\"componentType\":\"qualification\",\"extent\":\"01\","
	    "\"isImplicit\":false,\"isRefused\":false,\"status\":\"granted\",\"statusLabel\":\"Granted\","
	    "\"startDate\":\"2020-01-01\",\"endDate\":null},"
	    "{\"code\":\"BSBCRT511\",\"componentType\":\"unit\",\"extent\":\"02\",\"isImplicit\":true,"
	    "\"status\":\"suspended\",\"startDate\":\"2020-01-01\",\"endDate\":\"2030-04-30\",\"extra\":{\"a\":[1]}},"
	    "{\"code\":null,\"componentType\":\"unit\",\"startDate\":\"2021-01-01\"},"
	    "{\"code\":\"ZZZ1\",\"componentType\":\"accreditedUnit\",\"isImplicit\":false}],\"links\":null}";
	struct pr_scope sc, sc2;
	struct pr_scope_page pg;
	struct stage *sg;
	struct rec r;
	char out[4096], msg[256], *cause = NULL;
	uint64_t h;

	if ((sg = stage_new("/tmp", &cause)) == NULL) {
		CHECK_MSG(0, "stage: %s", cause);
		return;
	}
	memset(&sc, 0, sizeof sc);
	stage_entity_begin(sg);
	CHECK_MSG(pr_scope_page(page, strlen(page), "0002", true, true, sg, &sc, &pg, msg, sizeof msg) == 0, "%s", msg);
	CHECK_MSG(pg.rows == 4 && pg.total == 9 && strcmp(pg.last, "ZZZ1") == 0 && sc.count == 3 && sc.rejects == 1,
	    "rows %lld total %lld last %s count %lld rejects %d", (long long)pg.rows, (long long)pg.total, pg.last,
	    (long long)sc.count, sc.rejects);
	rec_init(&r);
	CHECK_MSG(stage_entity_end(sg, "0002", 0, NULL, &cause) == 0, "%s", cause);
	read_stage(sg, out, sizeof out);
	CHECK_MSG(strcmp(out,
	    "13|BSB50120|0|Qualification|01|0|Granted|2020-01-01|~\n"
	    "13|BSBCRT511|1|Unit|02|0|Suspended|2020-01-01|2030-04-30\n"
	    "14|RTO 0002: a scope row with no code (componentType Unit, startDate 2021-01-01)\n"
	    "13|ZZZ1|0|AccreditedCourseModule|~|0|~|~|~\n") == 0, "%s", out);
	/* The same hash as the SOAP parser's rows. */
	rec_begin(&r, REC_ORG_SCOPE, 8);
	rec_set_str(&r, 0, "BSB50120");
	rec_set_str(&r, 1, "0");
	rec_set_str(&r, 2, "Qualification");
	rec_set_str(&r, 3, "01");
	rec_set_str(&r, 4, "0");
	rec_set_str(&r, 5, "Granted");
	rec_set_str(&r, 6, "2020-01-01");
	h = pd_scope_row_hash(&r);
	rec_begin(&r, REC_ORG_SCOPE, 8);
	rec_set_str(&r, 0, "BSBCRT511");
	rec_set_str(&r, 1, "1");
	rec_set_str(&r, 2, "Unit");
	rec_set_str(&r, 3, "02");
	rec_set_str(&r, 4, "0");
	rec_set_str(&r, 5, "Suspended");
	rec_set_str(&r, 6, "2020-01-01");
	rec_set_str(&r, 7, "2030-04-30");
	h += pd_scope_row_hash(&r);
	rec_begin(&r, REC_ORG_SCOPE, 8);
	rec_set_str(&r, 0, "ZZZ1");
	rec_set_str(&r, 1, "0");
	rec_set_str(&r, 2, "AccreditedCourseModule");
	rec_set_str(&r, 4, "0");
	h += pd_scope_row_hash(&r);
	CHECK_MSG(h == sc.hash, "hash %llx, SOAP's %llx", (unsigned long long)sc.hash, (unsigned long long)h);
	rec_free(&r);
	/* Explicit rows only: the implicit one is dropped (not counted, not hashed). */
	stage_reset(sg);
	memset(&sc2, 0, sizeof sc2);
	stage_entity_begin(sg);
	CHECK_MSG(pr_scope_page(page, strlen(page), "0002", true, false, sg, &sc2, &pg, msg, sizeof msg) == 0 &&
	    sc2.count == 2, "explicit only: %lld", (long long)sc2.count);
	stage_entity_abort(sg, NULL);
	/* The total as "count" next to value (unicorn-cms reads it so); a count equal to the rows may be the page's
	 * own, so the total is unknown then; totalCount wins. */
	{
		static const struct {
			const char *page;
			int64_t total;
		} tc[] = {
			{ "{\"count\":9,\"value\":[{\"code\":\"A1\"},{\"code\":\"A2\"}]}", 9 },
			{ "{\"count\":2,\"value\":[{\"code\":\"A1\"},{\"code\":\"A2\"}]}", -1 },
			{ "{\"value\":[{\"code\":\"A1\"}],\"count\":1,\"totalCount\":1}", 1 },
			{ "{\"value\":[]}", -1 },
		};
		size_t i;

		for (i = 0; i < sizeof tc / sizeof tc[0]; i++) {
			memset(&sc2, 0, sizeof sc2);
			stage_entity_begin(sg);
			CHECK_MSG(pr_scope_page(tc[i].page, strlen(tc[i].page), "0002", true, true, sg, &sc2, &pg, msg,
			    sizeof msg) == 0 && pg.total == tc[i].total, "%s: total %lld %s", tc[i].page,
			    (long long)pg.total, msg);
			stage_entity_abort(sg, NULL);
		}
	}
	/* Hostile pages. */
	{
		static const char *const bad[] = { "[]", "{\"value\":{}}", "{\"totalCount\":-1,\"value\":[]}",
		    "{\"value\":[{\"code\":{}}]}", "{\"value\":[{\"isImplicit\":\"yes\"}]}", "{\"value\":[1]}",
		    "{\"value\":[]} x", "{\"count\":1}", "{\"value\":[{\"code\":\"A\",", };
		size_t i;

		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			memset(&sc2, 0, sizeof sc2);
			stage_entity_begin(sg);
			CHECK_MSG(pr_scope_page(bad[i], strlen(bad[i]), "0002", true, true, sg, &sc2, &pg, msg, sizeof msg) ==
			    -1, "accepted: %s", bad[i]);
			stage_entity_abort(sg, NULL);
		}
	}
	stage_free(sg);
}

static void
test_search(void)
{
	const char *page = "{\"count\":3,\"totalCount\":120,\"data\":[{\"code\":\"BSBCRT511\",\"type\":{\"id\":\"unit\"},"
	    "\"status\":{\"isCurrent\":true}},{\"code\":\"bad code!\",\"title\":\"T\"},{\"code\":\"BSBCRT512\","
	    "\"status\":{\"isCurrent\":false}}]}";
	const char *other = "{\"data\":[{\"code\":\"BSB50120\",\"type\":{\"id\":\"qualification\"}}]}";
	struct src_page pg;
	char msg[256];
	int64_t t;

	memset(&pg, 0, sizeof pg);
	CHECK_MSG(pr_search(page, strlen(page), SVC_TRAINING, "unit", 3, &pg, msg, sizeof msg) == 0, "%s", msg);
	CHECK_MSG(pg.n == 2 && pg.returned == 3 && pg.count == 120 && pg.rejects.n == 1 && pg.items[0].is_current == 1 &&
	    pg.items[1].is_current == 0 && strcmp(pg.items[1].code, "BSBCRT512") == 0, "n %zu returned %d", pg.n,
	    pg.returned);
	CHECK_MSG(pr_search(page, strlen(page), SVC_TRAINING, "unit", 2, &pg, msg, sizeof msg) == -1, "over the page size");
	CHECK_MSG(pr_search(other, strlen(other), SVC_TRAINING, "unit", 10, &pg, msg, sizeof msg) == -1 &&
	    strstr(msg, "qualification") != NULL, "type filter ignored: %s", msg);
	src_page_clear(&pg);
	CHECK_MSG(pr_metadata("{\"dataExportSyncDateTime\":\"2025-12-31T23:55:23.3783605Z\"}", 57, &t, msg, sizeof msg)
	    == 0 && t == INT64_C(17672253233783605), "metadata %lld", (long long)t);
	CHECK_MSG(pr_metadata("{\"ntrVersion\":\"4\"}", 18, &t, msg, sizeof msg) == -1 && strstr(msg, "keys: ntrVersion")
	    != NULL, "no sync time: %s", msg);
	/* The live name (the published audit of /api/metadata). */
	{
		const char *m = "{\"dataExportSynchronisationDateTime\":\"2026-03-03T12:11:34+00:00\",\"version\":\"4.224\"}";

		t = 0;
		CHECK_MSG(pr_metadata(m, strlen(m), &t, msg, sizeof msg) == 0 && t == INT64_C(17725398940000000),
		    "metadata %lld %s", (long long)t, msg);
	}
	/* Totals: "count" is the total only when it is more than the page holds (else it may be the page's own
	 * count, as in the audit's page of 5). */
	{
		const char *c1 = "{\"count\":120,\"data\":[{\"code\":\"A1\"},{\"code\":\"A2\"}]}";
		const char *c2 = "{\"count\":2,\"data\":[{\"code\":\"A1\"},{\"code\":\"A2\"}]}";
		const char *c3 = "{\"data\":[{\"code\":\"A1\"}]}";

		CHECK_MSG(pr_search(c1, strlen(c1), SVC_TRAINING, "unit", 5, &pg, msg, sizeof msg) == 0 && pg.count == 120,
		    "count only: %lld", (long long)pg.count);
		CHECK_MSG(pr_search(c2, strlen(c2), SVC_TRAINING, "unit", 5, &pg, msg, sizeof msg) == 0 && pg.count == -1,
		    "count = the page's rows: %lld", (long long)pg.count);
		CHECK_MSG(pr_search(c3, strlen(c3), SVC_TRAINING, "unit", 5, &pg, msg, sizeof msg) == 0 && pg.count == -1,
		    "no total: %lld", (long long)pg.count);
		src_page_clear(&pg);
	}
}

static void
test_types(void)
{
	char out[64];

	/* ABNs digits only, for both sources (parse.h). */
	CHECK_MSG(parse_abn("12 345 678 901", 14, out, sizeof out) && strcmp(out, "12345678901") == 0, "%s", out);
	CHECK_MSG(!parse_abn("ABN 12 345", 10, out, sizeof out) && !parse_abn("  ", 2, out, sizeof out) &&
	    !parse_abn("123456789012", 12, out, 12), "not an ABN");

	rest_type_to_soap("skillSet", 8, out, sizeof out);
	CHECK_MSG(strcmp(out, "SkillSet") == 0, "%s", out);
	rest_type_to_soap("accreditedUnit", 14, out, sizeof out);
	CHECK_MSG(strcmp(out, "AccreditedCourseModule") == 0, "%s", out);
	rest_type_to_soap("unitContextualisation", 21, out, sizeof out);
	CHECK_MSG(strcmp(out, "UnitContextualisation") == 0, "%s", out);
	CHECK_MSG(rest_type_id("Unit") == 4 && rest_type_id("Qualification") == 2 && rest_type_id("UnitContextualisation")
	    == -1, "type ids");
	CHECK_MSG(streq(rest_type_from_soap("TrainingPackage"), "trainingPackage"), "from soap");
}

int
main(void)
{
	test_jscan();
	test_training();
	test_org();
	test_scope();
	test_search();
	test_types();
	CHECK_DONE();
}
