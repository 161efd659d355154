/*
 * Text and JSON from upstreams (issue 13, items 6 and 7): control characters become visible escapes before they
 * reach a log line, a row, a mail or a terminal, and a JSON text is checked for size before cJSON builds a tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "jsonlimit.h"
#include "log.h"

static int
precheck(const char *text, size_t max_nodes, const char *want)
{
	char why[160] = "";
	int rc = json_precheck(text, strlen(text), max_nodes, why, sizeof why);

	if (want == NULL)
		return rc == 0;
	return rc == -1 && strstr(why, want) != NULL;
}

int
main(void)
{
	char *s, buf[16], big[70000];
	cJSON *doc;
	size_t i;

	log_init("test", 0);

	/* A fault string that would start an emergency journal line, and a terminal escape. */
	s = text_escape_dup("denied\n<0>PANIC\r\x1b[2J\x07 ok\t\x7f", 0);
	CHECK_STR(s, "denied\\n<0>PANIC\\r\\x1b[2J\\x07 ok\\t\\x7f");
	free(s);
	/* UTF-8 stays; C1 controls (U+009B is a CSI) and bytes that are not UTF-8 do not. */
	s = text_escape_dup("Sm\xc3\xb8rrebr\xc3\xb8" "d \xc2\x9b" "31m \xff\xc3 \xe2\x82\xac \xed\xa0\x80", 0);
	CHECK_STR(s, "Sm\xc3\xb8rrebr\xc3\xb8" "d \\u009b31m \\xff\\xc3 \xe2\x82\xac \\xed\\xa0\\x80");
	free(s);
	/* Mail bodies keep their lines, not their escapes. */
	s = text_escape_dup("line 1\nline 2\r\n\tcol\rx\x1b", TEXT_KEEP_LINES);
	CHECK_STR(s, "line 1\nline 2\r\n\tcol\\rx\\x1b");
	free(s);
	CHECK(text_escape_dup(NULL, 0) == NULL);
	/* A JSON text (a run's summary) stays JSON: escapes JSON knows. */
	s = text_escape_dup("{\"title\":\"a\x7f \xc2\x9b b \xff\"}", TEXT_JSON);
	CHECK_STR(s, "{\"title\":\"a\\u007f \\u009b b \\ufffd\"}");
	free(s);
	s = text_escape_dup("{\n\t\"a\":\t1\r\n}", TEXT_JSON);	/* cJSON_Print's white space stays */
	CHECK_STR(s, "{\n\t\"a\":\t1\r\n}");
	free(s);
	/* A bounded field: an escape is never cut in two. */
	CHECK(text_escape(buf, sizeof buf, "abcdefghijkl\n\n", 14, 0) == 14);
	CHECK_STR(buf, "abcdefghijkl\\n");
	strcpy(buf, "ab\x1b\x1b\x1b\x1b");
	text_escape_inplace(buf, sizeof buf, 0);
	CHECK_STR(buf, "ab\\x1b\\x1b\\x1b");
	/* Redacted first, then escaped. */
	secret_register("hunter2-secret");
	s = sanitize_dup("pw hunter2-secret\n<0>x", 0);
	CHECK_STR(s, "pw [REDACTED]\\n<0>x");
	free(s);

	/* A log line is one line, whatever its arguments quote. */
	{
		char path[] = "/tmp/rs-esc-XXXXXX", line[512];
		FILE *fp;
		int fd = mkstemp(path), saved = dup(2);

		CHECK(fd != -1);
		dup2(fd, 2);
		log_warnx("SOAP fault: %s", "bad\n<0>emergency\x1b[31m");
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
		fp = fopen(path, "r");
		CHECK(fp != NULL && fgets(line, sizeof line, fp) != NULL);
		CHECK(strstr(line, "bad\\n<0>emergency\\x1b[31m\n") != NULL);
		CHECK(fgets(line, sizeof line, fp) == NULL);	/* no second line */
		fclose(fp);
		close(fd);
		unlink(path);
	}

	/* JSON: fine documents pass, with member names and literals counted. */
	CHECK(precheck("{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\n\"], \"b\": {}}", 100, NULL));
	CHECK(precheck("{\"a\": [1, 2, 3]}", 5, "more than 5 values"));
	CHECK(precheck("{\"a\": [1, 2, 3]}", 6, NULL));
	/* A node bomb: many tiny values. */
	for (i = 0; i + 2 < sizeof big; i += 2)
		memcpy(big + i, "0,", 2);
	big[0] = '[';
	big[i - 1] = ']';
	big[i] = '\0';
	CHECK(precheck(big, 10000, "more than 10000 values"));
	/* Depth, huge numbers, NUL escapes, invalid UTF-8. */
	memset(big, '[', 40);
	memset(big + 40, ']', 40);
	big[80] = '\0';
	CHECK(precheck(big, 1000, "nesting deeper than 32"));
	CHECK(precheck("{\"n\": 1234567890123456789012345678901234567890123}", 100, "a number longer than"));
	CHECK(precheck("{\"n\": 1e99999}", 100, NULL));	/* short: left to the caller's range checks */
	CHECK(precheck("{\"s\": \"ab\\u0000cd\"}", 100, "NUL escape"));
	CHECK(precheck("{\"s\": \"ab\\\\u0000cd\"}", 100, NULL));	/* an escaped backslash, then text */
	CHECK(precheck("{\"s\": \"\xff\xfe\"}", 100, "not UTF-8"));
	CHECK(precheck("{\"s\": \"\xc0\xaf\"}", 100, "not UTF-8"));	/* overlong '/' */
	CHECK(precheck("{\"s\": \"caf\xc3\xa9\"}", 100, NULL));
	/* The bounded parse says why. */
	{
		char why[160];

		doc = json_parse_bounded("{\"a\": 1}", 8, 10, why, sizeof why);
		CHECK(doc != NULL && cJSON_GetObjectItem(doc, "a")->valueint == 1);
		cJSON_Delete(doc);
		CHECK(json_parse_bounded("{\"a\": ]", 7, 10, why, sizeof why) == NULL);
		CHECK(strstr(why, "not valid JSON at byte") != NULL);
		CHECK(json_parse_bounded(big, strlen(big), 1000, why, sizeof why) == NULL);
		CHECK(strstr(why, "nesting") != NULL);
	}
	CHECK_DONE();
}
