/*
 * Instants as .NET ticks (100 ns since 1970-01-01 UTC), the resolution of TGA's DateTimeOffset values.  Upstream
 * audit times (UpdatedDate, CreatedDate, tombstones) are kept exactly, in one canonical text form that WCF itself
 * writes: UTC with "Z", a fraction only when it is not zero, without trailing zeros (2019-03-04T05:06:07.5Z).
 * Such strings do NOT sort as text ("07.5Z" < "07Z"), so every comparison of upstream times goes through ticks.
 */
#ifndef TGA_TIME_H
#define TGA_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TICKS_PER_SEC INT64_C(10000000)
#define TICKS_LEN 40		/* "2019-03-04T05:06:07.1234567Z" + NUL, with room */

/*
 * Parse an xs:dateTime: YYYY-MM-DDTHH:MM:SS[.f{1,7}] then Z, +HH:MM, -HH:MM or nothing.  *has_zone says whether a
 * zone was given; a value without one is returned as if it were UTC (the caller decides what it means).
 */
bool ticks_parse(const char *s, size_t len, int64_t *ticks, bool *has_zone);
/* A DateTimeOffset {DateTime, OffsetMinutes}: a DateTime without zone is local time at OffsetMinutes (WCF). */
bool ticks_from_dto(const char *dt, size_t dtlen, const char *off, size_t offlen, int64_t *ticks);
/* Canonical text (see above) into out[TICKS_LEN]; returns out. */
char *ticks_format(int64_t ticks, char *out);
/* YYYY-MM-DDTHH:MM:SSZ (the project's own timestamp format; the fraction is dropped). */
char *ticks_format_sec(int64_t ticks, char *out);
int64_t ticks_from_time(int64_t unix_seconds);
int64_t ticks_to_time(int64_t ticks);	/* floor to seconds */

#endif
