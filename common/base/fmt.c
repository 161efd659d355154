#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fmt.h"

const char *
fmt_thousands(int64_t v, char *buf, size_t len)
{
	char raw[32];
	size_t n, i, o = 0;
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	if (len == 0)
		return buf;
	snprintf(raw, sizeof raw, "%" PRIu64, mag);
	n = strlen(raw);
	if (v < 0 && o + 1 < len)
		buf[o++] = '-';
	for (i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = raw[i];
	}
	buf[o] = '\0';
	return buf;
}
