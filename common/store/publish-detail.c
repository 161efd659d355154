#include <math.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "fmt.h"
#include "publish-detail.h"

bool
pubdetail_is(const cJSON *d)
{
	return cJSON_IsObject(d) && (cJSON_GetObjectItemCaseSensitive(d, "d1_requests") != NULL ||
	    cJSON_GetObjectItemCaseSensitive(d, "disabled") != NULL);
}

cJSON *
pubdetail_add(cJSON *a, const cJSON *b)
{
	const cJSON *it;
	cJSON *have;

	if (a == NULL)
		a = cJSON_CreateObject();
	cJSON_ArrayForEach(it, b) {
		if (!cJSON_IsNumber(it))
			continue;
		if (cJSON_IsNumber(have = cJSON_GetObjectItemCaseSensitive(a, it->string)))
			cJSON_SetNumberValue(have, have->valuedouble + it->valuedouble);
		else
			cJSON_AddNumberToObject(a, it->string, it->valuedouble);
	}
	return a;
}

static double
num(const cJSON *d, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* 1234567 -> "1,234,567". */
static const char *
commas(double v, char *buf, size_t len)
{
	return fmt_thousands((int64_t)llround(v), buf, len);
}

/* "<table>.<what>" -> table; false if key is not of that form. */
static bool
table_of(const char *key, const char *what, char *table, size_t len)
{
	const char *dot = strrchr(key, '.');
	size_t n;

	if (dot == NULL || strcmp(dot + 1, what) != 0 || (n = (size_t)(dot - key)) >= len)
		return false;
	memcpy(table, key, n);
	table[n] = '\0';
	return true;
}

void
pubdetail_format(const cJSON *d, const char *status, struct buf *out, const char *indent)
{
	const cJSON *it;
	char a[32], b[32], table[128], key[160];

	if (num(d, "disabled") > 0) {
		buf_printf(out, "%sPublished to D1: off ([d1] corpus_database_id is not configured)\n", indent);
		return;
	}
	buf_printf(out, "%sPublished to D1: %s", indent, num(d, "full") > 0 ? "full republish" : "changes only");
	if (num(d, "verified_tables") > 0)
		buf_printf(out, ", verified: %.0f tables, %s rows", num(d, "verified_tables"),
		    commas(num(d, "verified_rows"), a, sizeof a));
	else if (status != NULL && strcmp(status, "failed") == 0)
		buf_adds(out, ", FAILED (see the error)");
	else
		buf_adds(out, ", not verified yet");
	if (num(d, "verify_mismatches") > 0)
		buf_printf(out, " (%.0f table%s republished after a mismatch)", num(d, "verify_mismatches"),
		    num(d, "verify_mismatches") == 1 ? "" : "s");
	buf_adds(out, "\n");
	cJSON_ArrayForEach(it, d) {
		if (!table_of(it->string, "upserted", table, sizeof table))
			continue;
		snprintf(key, sizeof key, "%s.deleted", table);
		buf_printf(out, "%s  %-32s %12s upserted %10s deleted\n", indent, table,
		    commas(it->valuedouble, a, sizeof a), commas(num(d, key), b, sizeof b));
	}
	/* A table with deletes only (a child list that got shorter). */
	cJSON_ArrayForEach(it, d) {
		if (!table_of(it->string, "deleted", table, sizeof table))
			continue;
		snprintf(key, sizeof key, "%s.upserted", table);
		if (cJSON_GetObjectItemCaseSensitive(d, key) == NULL)
			buf_printf(out, "%s  %-32s %12s upserted %10s deleted\n", indent, table, "0",
			    commas(it->valuedouble, b, sizeof b));
	}
	buf_printf(out, "%s  requests %s, D1 time %.1f s, wall %.1f s, rows written (billed) %s", indent,
	    commas(num(d, "d1_requests"), a, sizeof a), num(d, "d1_ms") / 1000.0, num(d, "d1_wall_ms") / 1000.0,
	    commas(num(d, "d1_rows_written"), b, sizeof b));
	if (num(d, "d1_rate_blocks") > 0)
		buf_printf(out, ", rate-limit blocks waited out %.0f", num(d, "d1_rate_blocks"));
	if (num(d, "d1_timeouts_replayed") > 0)
		buf_printf(out, ", 504s replayed %.0f", num(d, "d1_timeouts_replayed"));
	buf_adds(out, "\n");
}
