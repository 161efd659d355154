#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jsonlimit.h"
#include "log.h"

int
json_precheck(const char *text, size_t len, size_t max_nodes, char *why, size_t whylen)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, nodes = 0, num = 0;
	int depth = 0;

	while (i < len) {
		unsigned char c = s[i];

		if (c == '"') {
			/* A string: count it, check its bytes and its escapes, skip to its end. */
			if (++nodes > max_nodes)
				goto too_many;
			for (i++; i < len && s[i] != '"'; ) {
				if (s[i] == '\\') {
					if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
						snprintf(why, whylen, "a NUL escape (\\u0000) in a string at byte %zu", i);
						return -1;
					}
					i += 2;
				} else if (s[i] < 0x80)
					i++;
				else {
					unsigned cp;
					size_t n = text_utf8_seq(text + i, len - i, &cp);

					if (n == 0) {
						snprintf(why, whylen, "a string that is not UTF-8 at byte %zu", i);
						return -1;
					}
					i += n;
				}
			}
			i++;
			num = 0;
			continue;
		}
		if (c == '{' || c == '[') {
			if (++depth > JSON_MAX_DEPTH) {
				snprintf(why, whylen, "nesting deeper than %d at byte %zu", JSON_MAX_DEPTH, i);
				return -1;
			}
			if (++nodes > max_nodes)
				goto too_many;
			num = 0;
		} else if (c == '}' || c == ']') {
			depth--;
			num = 0;
		} else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			if (num == 0 && ++nodes > max_nodes)
				goto too_many;
			if (++num > JSON_MAX_NUMBER) {
				snprintf(why, whylen, "a number longer than %d characters at byte %zu", JSON_MAX_NUMBER, i);
				return -1;
			}
		} else if (c == 't' || c == 'f' || c == 'n') {
			/* true, false, null (a letter inside them ends no number: num is 0 there anyway). */
			if (num == 0 && ++nodes > max_nodes)
				goto too_many;
			while (i + 1 < len && s[i + 1] >= 'a' && s[i + 1] <= 'z')
				i++;
		} else
			num = 0;
		i++;
	}
	return 0;
too_many:
	snprintf(why, whylen, "more than %zu values (at byte %zu)", max_nodes, i);
	return -1;
}

cJSON *
json_parse_bounded(const char *text, size_t len, size_t max_nodes, char *why, size_t whylen)
{
	const char *end = NULL;
	cJSON *doc;

	if (json_precheck(text, len, max_nodes, why, whylen) == -1)
		return NULL;
	if ((doc = cJSON_ParseWithLengthOpts(text, len, &end, false)) == NULL) {
		snprintf(why, whylen, "not valid JSON at byte %zu", end != NULL && end >= text ? (size_t)(end - text) : 0);
		return NULL;
	}
	return doc;
}
