/*
 * IANA time zones without touching the process's TZ.  The calendar evaluator must convert between UTC and the
 * local time of a schedule's zone (Australia/Brisbane, Australia/Sydney, ...) inside a daemon whose libcurl
 * resolves names on threads: setenv("TZ") + tzset() there would race with getenv() in those threads.  So the zone
 * is read from its TZif file (RFC 8536, versions 1 to 4, under $TZDIR or /usr/share/zoneinfo), with the POSIX TZ
 * footer for times after the last listed transition, and every conversion is a pure function of the loaded zone.
 *
 * Local times are handled as "local seconds": the wall-clock fields encoded as if they were UTC (timegm).  A local
 * time maps to 0 instants (it is skipped when clocks go forward), 1, or 2 (it happens twice when they go back).
 */
#ifndef RTOPACKS_TZFILE_H
#define RTOPACKS_TZFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct tz;

/*
 * Load a zone by IANA name ("Australia/Brisbane", "UTC") or, with NULL or "", the system's /etc/localtime.
 * NULL with *cause on error (an unknown or malformed zone).
 */
struct tz *tz_load(const char *name, char **cause);
void tz_free(struct tz *);
const char *tz_name(const struct tz *);
/* A plausible zone name: letters, digits, '_', '-', '+', '/' and no "..", as found under the zoneinfo directory. */
bool tz_name_valid(const char *name);

struct tz_local {
	struct tm tm;		/* wall-clock fields (tm_isdst, tm_gmtoff set; tm_zone unset) */
	int32_t utoff;		/* seconds east of UTC */
	bool isdst;
	char abbr[16];		/* "AEST", "AEDT", "+1030" */
};

/* UTC instant -> local wall clock. */
void tz_to_local(const struct tz *, time_t t, struct tz_local *out);
/* Seconds east of UTC at instant t. */
int32_t tz_utoff(const struct tz *, time_t t);
/*
 * Local seconds -> the instants that show that wall-clock time, ascending: returns 0 (the time does not exist that
 * day), 1, or 2 (it occurs twice).  out[] must hold 2.
 */
int tz_from_local(const struct tz *, int64_t local_seconds, time_t out[2]);

#endif
