/*
 * What stands between an upstream's bytes and a log line, a row or a terminal (issue 13): text_escape must leave no
 * control character (C0, DEL, C1) and nothing that is not UTF-8, and never write past its buffer; json_precheck must
 * hold on any input, and whatever it lets through cJSON parses within its budget.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonlimit.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_clean(const char *s, size_t len, int flags)
{
	size_t i = 0;

	while (i < len) {
		unsigned cp;
		size_t n = text_utf8_seq(s + i, len - i, &cp);

		if (n == 0)
			abort();	/* not UTF-8 */
		if ((cp < 0x20 && !((flags & (TEXT_KEEP_LINES | TEXT_JSON)) && (cp == '\n' || cp == '\t' || cp == '\r'))) ||
		    (cp >= 0x7f && cp <= 0x9f))
			abort();	/* a control character got through */
		i += n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char small[17], why[160], *big;
	size_t n;
	cJSON *doc;

	big = malloc(size * 6 + 1);
	n = text_escape(big, size * 4 + 1, text, size, 0);
	if (n != strlen(big))
		abort();
	check_clean(big, n, 0);
	n = text_escape(big, size * 4 + 1, text, size, TEXT_KEEP_LINES);
	check_clean(big, n, TEXT_KEEP_LINES);
	n = text_escape(big, size * 6 + 1, text, size, TEXT_JSON);
	check_clean(big, n, TEXT_JSON);
	n = text_escape(small, sizeof small, text, size, 0);
	if (n >= sizeof small)
		abort();
	check_clean(small, n, 0);
	free(big);

	if ((doc = json_parse_bounded(text, size, 64, why, sizeof why)) != NULL)
		cJSON_Delete(doc);
	return 0;
}
