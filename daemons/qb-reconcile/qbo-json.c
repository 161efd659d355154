/*
 * QuickBooks' JSON values, read the way QuickBooks writes them: member names matched ignoring case ("Fault" and the
 * gateway's "fault"), amounts as cents, times as UTC.  Shared by the API client (qbo.c), the OAuth client (oauth.c)
 * and the readers (qbo-read.c), which is why it is a file of its own: none of them has to call into another.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "qbr.h"
#include "timeutil.h"

const cJSON *
json_get(const cJSON *obj, const char *name)
{
	const cJSON *it;

	if (!cJSON_IsObject(obj))
		return NULL;
	/* QuickBooks answers "Fault" normally and "fault" for gateway auth errors: match names ignoring case. */
	cJSON_ArrayForEach(it, obj)
		if (it->string != NULL && strcasecmp(it->string, name) == 0)
			return it;
	return NULL;
}

const char *
json_str(const cJSON *obj, const char *name)
{
	const cJSON *v = json_get(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
json_cents(const cJSON *obj, const char *name, int64_t *cents)
{
	const cJSON *v = json_get(obj, name);
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	if (!isfinite(d) || fabs(d) * 100.0 > (double)QBR_MONEY_MAX_CENTS)
		return false;
	/* QuickBooks amounts have two decimals; llround absorbs the binary representation (150.5 -> 15050). */
	*cents = llround(d * 100.0);
	return true;
}

bool
qbo_time_utc(const char *s, char out[ISO8601_LEN])
{
	time_t t;

	if (s == NULL || !iso8601_parse(s, &t))
		return false;
	iso8601_fmt(t, out);
	/* A year before 1000 (or after 9999) parses but formats shorter or longer: not a time we store. */
	return strlen(out) == ISO8601_LEN - 1;
}
