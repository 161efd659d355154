/* publish-detail.c: the publish phase's step detail as the mail and `syncctl steps` print it. */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "publish-detail.h"

static const char *
fmt(const char *json, const char *status)
{
	static struct buf b;
	cJSON *d = cJSON_Parse(json);

	buf_free(&b);
	buf_init(&b);
	pubdetail_format(d, status, &b, "");
	cJSON_Delete(d);
	return b.data;
}

int
main(void)
{
	cJSON *a, *b, *sum;

	a = cJSON_Parse("{\"d1_requests\": 3}");
	CHECK(pubdetail_is(a));
	cJSON_Delete(a);
	a = cJSON_Parse("{\"disabled\": 1}");
	CHECK(pubdetail_is(a));
	cJSON_Delete(a);
	a = cJSON_Parse("{\"pages\": 3}");
	CHECK(!pubdetail_is(a));
	CHECK(!pubdetail_is(NULL));
	cJSON_Delete(a);

	CHECK_STR(fmt("{\"disabled\": 1}", "complete"),
	    "Published to D1: off ([d1] corpus_database_id is not configured)\n");
	CHECK_STR(fmt("{\"full\": 1, \"t1.upserted\": 1234567, \"t1.deleted\": 12, \"t2.upserted\": 5, \"t3.deleted\": 2,"
	    " \"d1_requests\": 947, \"d1_ms\": 128801, \"d1_wall_ms\": 395000, \"d1_rows_written\": 7296672,"
	    " \"verified_tables\": 15, \"verified_rows\": 7296672, \"d1_rate_blocks\": 1}", "complete"),
	    "Published to D1: full republish, verified: 15 tables, 7,296,672 rows\n"
	    "  t1                                  1,234,567 upserted         12 deleted\n"
	    "  t2                                          5 upserted          0 deleted\n"
	    "  t3                                          0 upserted          2 deleted\n"
	    "  requests 947, D1 time 128.8 s, wall 395.0 s, rows written (billed) 7,296,672, rate-limit blocks waited"
	    " out 1\n");
	CHECK(strstr(fmt("{\"full\": 0, \"d1_requests\": 2}", "failed"), "changes only, FAILED") != NULL);
	CHECK(strstr(fmt("{\"d1_requests\": 2, \"verify_mismatches\": 1, \"verified_tables\": 2, \"verified_rows\": 3}",
	    "complete"), "(1 table republished after a mismatch)") != NULL);

	/* A cycle resumed in the phase: the runs' details add up. */
	a = cJSON_Parse("{\"t1.upserted\": 10, \"d1_requests\": 2, \"note\": \"x\"}");
	b = cJSON_Parse("{\"t1.upserted\": 5, \"t2.upserted\": 1, \"d1_requests\": 1}");
	sum = pubdetail_add(NULL, a);
	sum = pubdetail_add(sum, b);
	CHECK(cJSON_GetObjectItem(sum, "t1.upserted")->valuedouble == 15);
	CHECK(cJSON_GetObjectItem(sum, "t2.upserted")->valuedouble == 1);
	CHECK(cJSON_GetObjectItem(sum, "d1_requests")->valuedouble == 3);
	CHECK(cJSON_GetObjectItem(sum, "note") == NULL);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(sum);
	CHECK_DONE();
}
