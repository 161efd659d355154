/*
 * qbr-parse: the QuickBooks answer parsers of qb-reconcile on their own, for daemons/qb-reconcile/tests/test_parsers.py
 * (which feeds them the real fixtures of ../shared/samples/qbo/).  Not installed.
 *
 *   qbr-parse fault FILE      the parsed error body as JSON: {"found","code","type","message","detail"}
 *   qbr-parse 6140 DETAIL     {"txn_type","txn_id"} or {}
 *   qbr-parse time QBOTIME    the time as ISO-8601 UTC
 *   qbr-parse cents FILE KEY  a JSON money field of the object in FILE, in cents
 *   qbr-parse oauth FILE      the OAuth error body's {"error","error_description"}, as the refresh reads them
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "log.h"
#include "qbr.h"
#include "timeutil.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || n > 1 << 20) {
		if (fp != NULL)
			fclose(fp);
		return NULL;
	}
	rewind(fp);
	buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, fp);
	buf[*len] = '\0';
	fclose(fp);
	return buf;
}

int
main(int argc, char **argv)
{
	struct qbo_fault f;
	cJSON *o = cJSON_CreateObject(), *in;
	char *s, *data, a[32], b[32], t[ISO8601_LEN], desc[160];
	size_t len;
	int64_t cents;

	log_init("qbr-parse", 0);
	if (argc == 3 && strcmp(argv[1], "fault") == 0 && (data = slurp(argv[2], &len)) != NULL) {
		cJSON_AddBoolToObject(o, "found", qbo_parse_fault(data, len, NULL, &f));
		cJSON_AddStringToObject(o, "code", f.code);
		cJSON_AddStringToObject(o, "type", f.type);
		cJSON_AddStringToObject(o, "message", f.message);
		cJSON_AddStringToObject(o, "detail", f.detail);
		free(data);
	} else if (argc == 3 && strcmp(argv[1], "6140") == 0) {
		if (qbo_parse_6140(argv[2], a, sizeof a, b, sizeof b)) {
			cJSON_AddStringToObject(o, "txn_type", a);
			cJSON_AddStringToObject(o, "txn_id", b);
		}
	} else if (argc == 3 && strcmp(argv[1], "time") == 0) {
		if (qbo_time_utc(argv[2], t))
			cJSON_AddStringToObject(o, "utc", t);
	} else if (argc == 4 && strcmp(argv[1], "cents") == 0 && (data = slurp(argv[2], &len)) != NULL) {
		if ((in = cJSON_Parse(data)) != NULL && json_cents(in, argv[3], &cents))
			cJSON_AddNumberToObject(o, "cents", (double)cents);
		cJSON_Delete(in);
		free(data);
	} else if (argc == 3 && strcmp(argv[1], "oauth") == 0 && (data = slurp(argv[2], &len)) != NULL) {
		cJSON_AddStringToObject(o, "error", qbr_oauth_error_code(data, len, a, sizeof a));
		cJSON_AddStringToObject(o, "error_description", qbr_oauth_error_desc(data, len, desc, sizeof desc));
		free(data);
	} else {
		fprintf(stderr, "usage: qbr-parse fault FILE | 6140 DETAIL | time QBOTIME | cents FILE KEY | oauth FILE\n");
		cJSON_Delete(o);
		return 2;
	}
	s = cJSON_PrintUnformatted(o);
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
	return 0;
}
