/*
 * Schedules: the calendar expressions of systemd timers (OnCalendar=), evaluated the way systemd evaluates them,
 * and the schedule files in schedules/ that hold them.
 *
 * Calendar subset (systemd.time(7)): "[WEEKDAYS] [DATE] [TIME] [ZONE]" or a shorthand (minutely, hourly, daily,
 * weekly, monthly, quarterly, semiannually, yearly, annually), e.g. "Sun *-*-* 03:30:00 Australia/Brisbane".
 *   WEEKDAYS  Mon,Tue  Mon..Fri  (English names, 3 letters or full, any case)
 *   DATE      [YYYY-]MM-DD; each field '*', a value, a list a,b, a range a..b, or a repetition x/step
 *             (x '*' or a value)
 *   TIME      HH:MM[:SS] with the same field forms (whole seconds only)
 *   ZONE      an IANA zone name or UTC; without one, the machine's local time, as systemd does
 * Not supported (rejected, never guessed): '~' (days from the end of the month), fractional seconds, two-digit
 * years, "@epoch" times.
 *
 * Evaluation follows systemd's calendar_spec_next_usec(): the next elapse is the first matching wall-clock time
 * in the zone strictly after the base time.  A wall-clock time that does not exist that day (clocks go forward
 * over it) does not elapse at all, as with systemd: `*-*-01 02:30 Australia/Sydney` skips October 2028.  A
 * wall-clock time that happens twice (clocks go back) elapses once, at its first occurrence.
 *
 * A schedule file (schedules/<daemon>.schedule) is "key = value" lines with '#' comments:
 *   on_calendar       the OnCalendar= expression, with its zone (required)
 *   grace             a run must start within this long after the scheduled time, else it is missed (required)
 *   max_runtime       a run 'running' longer than this is overrunning; a cycle left unfinished this long is stuck
 *   randomized_delay  RandomizedDelaySec= of the timer (must be shorter than grace)
 *   accuracy          AccuracySec= of the timer (default 1min)
 *   description       the timer's Description=
 * The build generates each timer from its file, and the daemons and `syncctl doctor` read the same file.
 */
#ifndef RTOPACKS_SCHEDULE_H
#define RTOPACKS_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct tz;

struct calspec {
	uint64_t years[4];		/* bit (y - 1970) for 1970..2199 */
	uint16_t months;		/* bit m-1 */
	uint32_t mdays;			/* bit d-1 */
	uint8_t wdays;			/* bit tm_wday (0 = Sunday) */
	uint32_t hours;
	uint64_t minutes, seconds;
	struct tz *tz;
	char *text;			/* the expression as given */
};

#define CALSPEC_MAX_YEAR 2199		/* systemd's limit too */

/* Parse an expression; NULL with *cause (naming what is wrong) on error. */
struct calspec *calspec_parse(const char *expr, char **cause);
void calspec_free(struct calspec *);
/* Zone name of the expression ("localtime" if none was given). */
const char *calspec_zone(const struct calspec *);
/* The first elapse strictly after `after`; false if there is none before CALSPEC_MAX_YEAR ends. */
bool calspec_next(const struct calspec *, time_t after, time_t *out);
/* The last elapse at or before `at`; false if there is none (in the ~30 years before it). */
bool calspec_prev(const struct calspec *, time_t at, time_t *out);
/* "Sun 2026-12-06 03:30 AEST" in the expression's zone (for people; stored times stay UTC). */
char *calspec_local(const struct calspec *, time_t t, char *buf, size_t len);

struct schedule {
	char *daemon;			/* from the file name */
	char *path;
	char *on_calendar;
	char *description;
	int64_t grace_s, max_runtime_s, randomized_delay_s, accuracy_s;
	struct calspec *spec;
};

/* Load <dir>/<daemon>.schedule.  NULL with *cause; *missing is set when the file does not exist. */
struct schedule *schedule_load(const char *dir, const char *daemon, bool *missing, char **cause);
struct schedule *schedule_load_file(const char *path, const char *daemon, char **cause);
void schedule_free(struct schedule *);

#endif
