/*
 * Time.  Every timestamp the project writes is ISO-8601 UTC with second precision: YYYY-MM-DDTHH:MM:SSZ.  Strings
 * of that one shape compare correctly as text, which is what SQLite sees.
 *
 * clock_now() is the wall clock the daemons schedule by.  Tests can replace it: when RTOPACKS_CLOCK_FILE names a
 * file, the time is read from that file (an ISO-8601 time or epoch seconds) on every call, so a test moves a
 * running daemon through a week, a month or a daylight-saving change without waiting.
 */
#ifndef RTOPACKS_TIMEUTIL_H
#define RTOPACKS_TIMEUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define ISO8601_LEN 21		/* "2026-11-28T23:48:36Z" + NUL */

time_t clock_now(void);
/* Monotonic seconds, for durations and rates. */
double mono_now(void);

/* Format t as YYYY-MM-DDTHH:MM:SSZ into out[ISO8601_LEN]; returns out. */
char *iso8601_fmt(time_t t, char out[ISO8601_LEN]);
/* clock_now() formatted. */
char *iso8601_now(char out[ISO8601_LEN]);
/*
 * Parse an ISO-8601 date-time: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.fff]] with Z, +HH:MM, -HH:MM or no zone (taken as
 * UTC).  Returns false on anything else, with *t untouched.
 */
bool iso8601_parse(const char *s, time_t *t);
/*
 * Civil dates in the proleptic Gregorian calendar, as days since 1970-01-01 (Howard Hinnant's algorithms): date
 * arithmetic without timegm() or the TZ environment, for any year.
 */
int64_t days_from_civil(int64_t y, int m, int d);
void civil_from_days(int64_t days, int64_t *y, int *m, int *d);
bool is_leap_year(int64_t y);
int days_in_month(int64_t y, int m);

/* Parse a duration: "90" (seconds), "250ms", "30s", "5m", "2h", "1d".  Result in milliseconds. */
bool duration_parse(const char *s, int64_t *ms);

#endif
