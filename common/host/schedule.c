/* Calendar expressions evaluated as systemd does, and schedule files: see schedule.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "schedule.h"
#include "timeutil.h"
#include "tzfile.h"
#include "xmalloc.h"

#define SCHEDULE_MAX_FILE (16 * 1024)
#define SCHEDULE_MAX_LINE 1024
#define CALSPEC_MAX_TEXT 256

/* --- parsing ------------------------------------------------------------------------------------------------- */

static void
set_bit(uint64_t *words, int bit)
{
	words[bit / 64] |= (uint64_t)1 << (bit % 64);
}

static bool
test_bit(const uint64_t *words, int bit)
{
	return (words[bit / 64] >> (bit % 64)) & 1;
}

static bool
parse_uint(const char **pp, long *out)
{
	const char *p = *pp;
	char *end;

	if (!isdigit((unsigned char)*p))
		return false;
	errno = 0;
	*out = strtol(p, &end, 10);
	if (errno != 0 || end - p > 4)
		return false;
	*pp = end;
	return true;
}

/* Where a comma list of s stops at p (not at a comma): NULL at the end of s, else the error. */
static const char *
list_end(const char *s, const char *p, char *err, size_t errlen)
{
	if (*p == '\0')
		return NULL;
	snprintf(err, errlen, "'%s': unexpected '%c'", s, *p);
	return err;
}

/*
 * One field: a comma list of '*', v, a..b, each optionally /step.  Bits (v - lo) are set in words[] for values
 * in [lo, hi].  Returns NULL or an error message.
 */
static const char *
parse_field(const char *s, int lo, int hi, uint64_t *words, char *err, size_t errlen)
{
	const char *p = s;

	if (*p == '\0')
		return "empty field";
	for (;; p++) {
		long a, b, step = 0, v;
		bool star = *p == '*';

		if (star) {
			a = lo;
			b = hi;
			p++;
		} else {
			if (!parse_uint(&p, &a)) {
				snprintf(err, errlen, "'%s': expected a number, '*', a list or a range", s);
				return err;
			}
			b = a;
			if (strncmp(p, "..", 2) == 0) {
				p += 2;
				if (!parse_uint(&p, &b)) {
					snprintf(err, errlen, "'%s': a range needs an end (a..b)", s);
					return err;
				}
			}
		}
		if (*p == '/') {
			p++;
			if (!parse_uint(&p, &step) || step < 1) {
				snprintf(err, errlen, "'%s': a repetition needs a positive step (x/step)", s);
				return err;
			}
			/* "5/10": from 5 every 10 to the end of the range (a star with a step starts at its lowest value). */
			if (a == b && !star)
				b = hi;
		}
		if (*p == '.' || *p == '~') {
			snprintf(err, errlen, "'%s': %s not supported", s,
			    *p == '.' ? "fractional values are" : "'~' (days from the end of the month) is");
			return err;
		}
		if (a < lo || b > hi || a > b) {
			snprintf(err, errlen, "'%s': out of range (%d to %d)", s, lo, hi);
			return err;
		}
		for (v = a; v <= b; v += step > 0 ? step : 1)
			set_bit(words, (int)(v - lo));
		if (*p != ',')
			return list_end(s, p, err, errlen);
	}
}

static int
weekday_index(const char *s, size_t n)
{
	/* Monday first, as systemd orders ranges. */
	static const char *const names[] = { "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
		"sunday" };
	int i;

	for (i = 0; i < 7; i++)
		if ((n == 3 && strncasecmp(s, names[i], 3) == 0) ||
		    (n == strlen(names[i]) && strncasecmp(s, names[i], n) == 0))
			return i;
	return -1;
}

static const char *
parse_weekdays(const char *s, uint8_t *wdays, char *err, size_t errlen)
{
	const char *p = s;

	for (;; p++) {
		size_t n = strcspn(p, ",.");
		int a = weekday_index(p, n), b;

		if (a < 0) {
			snprintf(err, errlen, "'%.*s' is not a weekday", (int)n, p);
			return err;
		}
		p += n;
		b = a;
		if (strncmp(p, "..", 2) == 0) {
			p += 2;
			n = strcspn(p, ",.");
			if ((b = weekday_index(p, n)) < 0 || b < a) {
				snprintf(err, errlen, "'%s': a weekday range runs Monday to Sunday (e.g. Mon..Fri)", s);
				return err;
			}
			p += n;
		}
		for (; a <= b; a++)
			*wdays |= (uint8_t)(1u << ((a + 1) % 7));	/* to tm_wday: Sunday 0 */
		if (*p != ',')
			return list_end(s, p, err, errlen);
	}
}

/* One field of at most 64 values (months, days, hours, minutes, seconds) into *word, cleared first. */
static const char *
parse_word(const char *s, int lo, int hi, uint64_t *word, char *err, size_t errlen)
{
	*word = 0;
	return parse_field(s, lo, hi, word, err, errlen);
}

/* Split "a-b-c" or "a:b:c" into at most three parts. */
static int
split3(char *s, char sep, char *parts[3])
{
	int n = 0;
	char *p = s;

	parts[n++] = p;
	while ((p = strchr(p, sep)) != NULL) {
		if (n == 3)
			return -1;
		*p++ = '\0';
		parts[n++] = p;
	}
	return n;
}

static const char *
parse_date(char *s, struct calspec *c, char *err, size_t errlen)
{
	char *parts[3], **md;
	uint64_t w;
	const char *e;
	int n = split3(s, '-', parts);

	if (n < 2) {
		snprintf(err, errlen, "'%s' is not a date (expected [YYYY-]MM-DD)", s);
		return err;
	}
	if (n == 3) {
		if (strcmp(parts[0], "*") != 0 && strspn(parts[0], "0123456789") == 2) {
			snprintf(err, errlen, "'%s': two-digit years are not supported", parts[0]);
			return err;
		}
		memset(c->years, 0, sizeof c->years);
		if ((e = parse_field(parts[0], 1970, CALSPEC_MAX_YEAR, c->years, err, errlen)) != NULL)
			return e;
		md = parts + 1;
	} else
		md = parts;
	if ((e = parse_word(md[0], 1, 12, &w, err, errlen)) != NULL)
		return e;
	c->months = (uint16_t)w;
	if ((e = parse_word(md[1], 1, 31, &w, err, errlen)) != NULL)
		return e;
	c->mdays = (uint32_t)w;
	return NULL;
}

static const char *
parse_time(char *s, struct calspec *c, char *err, size_t errlen)
{
	char *parts[3];
	uint64_t w;
	const char *e;
	int n = split3(s, ':', parts);

	if (n < 2) {
		snprintf(err, errlen, "'%s' is not a time (expected HH:MM[:SS])", s);
		return err;
	}
	if ((e = parse_word(parts[0], 0, 23, &w, err, errlen)) != NULL)
		return e;
	c->hours = (uint32_t)w;
	if ((e = parse_word(parts[1], 0, 59, &c->minutes, err, errlen)) != NULL)
		return e;
	if (n == 2) {
		c->seconds = 1;		/* HH:MM is HH:MM:00 */
		return NULL;
	}
	return parse_word(parts[2], 0, 59, &c->seconds, err, errlen);
}

static const char *
expand_shorthand(const char *s)
{
	static const char *const map[][2] = {
		{ "minutely", "*-*-* *:*:00" }, { "hourly", "*-*-* *:00:00" }, { "daily", "*-*-* 00:00:00" },
		{ "monthly", "*-*-01 00:00:00" }, { "weekly", "Mon *-*-* 00:00:00" }, { "yearly", "*-01-01 00:00:00" },
		{ "annually", "*-01-01 00:00:00" }, { "quarterly", "*-01,04,07,10-01 00:00:00" },
		{ "semiannually", "*-01,07-01 00:00:00" },
	};
	size_t i;

	for (i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcasecmp(s, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

struct calspec *
calspec_parse(const char *expr, char **cause)
{
	struct calspec *c;
	char buf[CALSPEC_MAX_TEXT], *tok[5], *p, *save, err[256], *tzcause = NULL;
	const char *e = NULL, *zone = NULL, *sh;
	int ntok = 0, i;

	if (expr == NULL || strlen(expr) >= sizeof buf) {
		xasprintf(cause, "calendar expression missing or longer than %d bytes", CALSPEC_MAX_TEXT - 1);
		return NULL;
	}
	snprintf(buf, sizeof buf, "%s", expr);
	for (p = strtok_r(buf, " \t", &save); p != NULL; p = strtok_r(NULL, " \t", &save)) {
		if (ntok == 5) {
			xasprintf(cause, "'%s': too many words for [WEEKDAYS] [DATE] [TIME] [ZONE]", expr);
			return NULL;
		}
		tok[ntok++] = p;
	}
	if (ntok == 0) {
		xasprintf(cause, "empty calendar expression");
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->text = xstrdup(expr);
	/* The zone, if any, is the last word: anything that is not a weekday, a date or a time. */
	if (ntok >= 2 || (ntok == 1 && expand_shorthand(tok[0]) == NULL)) {
		const char *last = tok[ntok - 1];

		if (strpbrk(last, "*:,") == NULL && !isdigit((unsigned char)last[0]) &&
		    weekday_index(last, strcspn(last, ",.")) < 0 && expand_shorthand(last) == NULL) {
			zone = last;
			ntok--;
		}
	}
	if ((c->tz = tz_load(zone, &tzcause)) == NULL) {
		xasprintf(cause, "'%s': unknown time zone: %s", expr, tzcause);
		free(tzcause);
		calspec_free(c);
		return NULL;
	}
	/* Defaults: any year, month, day and weekday; 00:00:00. */
	memset(c->years, 0xff, sizeof c->years);
	c->months = 0x0fff;
	c->mdays = 0x7fffffff;
	c->wdays = 0x7f;
	c->hours = 1;
	c->minutes = 1;
	c->seconds = 1;
	if (ntok == 1 && (sh = expand_shorthand(tok[0])) != NULL) {
		char tmp[64], *t2[3];
		int n = 0;

		snprintf(tmp, sizeof tmp, "%s", sh);
		for (p = strtok_r(tmp, " ", &save); p != NULL && n < 3; p = strtok_r(NULL, " ", &save))
			t2[n++] = p;
		if (n == 3) {
			c->wdays = 0;
			e = parse_weekdays(t2[0], &c->wdays, err, sizeof err);
		}
		if (e == NULL)
			e = parse_date(t2[n - 2], c, err, sizeof err);
		if (e == NULL)
			e = parse_time(t2[n - 1], c, err, sizeof err);
	} else {
		i = 0;
		if (i < ntok && isalpha((unsigned char)tok[i][0])) {
			c->wdays = 0;
			e = parse_weekdays(tok[i++], &c->wdays, err, sizeof err);
		}
		if (e == NULL && i < ntok && strchr(tok[i], '-') != NULL && strchr(tok[i], ':') == NULL)
			e = parse_date(tok[i++], c, err, sizeof err);
		if (e == NULL && i < ntok && strchr(tok[i], ':') != NULL)
			e = parse_time(tok[i++], c, err, sizeof err);
		if (e == NULL && i < ntok) {
			snprintf(err, sizeof err, "'%s' is not a weekday, date, time or time zone", tok[i]);
			e = err;
		}
	}
	if (e != NULL) {
		xasprintf(cause, "calendar expression '%s': %s", expr, e);
		calspec_free(c);
		return NULL;
	}
	return c;
}

void
calspec_free(struct calspec *c)
{
	if (c == NULL)
		return;
	tz_free(c->tz);
	free(c->text);
	free(c);
}

const char *
calspec_zone(const struct calspec *c)
{
	return tz_name(c->tz);
}

/* --- evaluation ---------------------------------------------------------------------------------------------- */

static bool
year_matches(const struct calspec *c, int64_t y)
{
	if (y < 1970 || y > CALSPEC_MAX_YEAR)
		return c->years[0] == UINT64_MAX && c->years[3] == UINT64_MAX && y <= CALSPEC_MAX_YEAR;
	return test_bit(c->years, (int)(y - 1970));
}

bool
calspec_next(const struct calspec *c, time_t after, time_t *out)
{
	struct tz_local lt;
	int64_t y, day, thr;
	int32_t off;
	int m, d;

	tz_to_local(c->tz, after, &lt);
	y = (int64_t)lt.tm.tm_year + 1900;
	m = lt.tm.tm_mon + 1;
	d = lt.tm.tm_mday;
	/*
	 * A wall time L shows at instant L - off, so it can only be after `after` if L > after + off.  With the
	 * smallest offset in force around the base, every wall time up to thr is too early and is skipped without
	 * converting it; the few above it are converted and checked.
	 */
	thr = (int64_t)after + lt.utoff;
	if ((off = tz_utoff(c->tz, after - 2 * 86400)) + (int64_t)after < thr)
		thr = (int64_t)after + off;
	if ((off = tz_utoff(c->tz, after + 2 * 86400)) + (int64_t)after < thr)
		thr = (int64_t)after + off;
	/* Start a day early: around a backward clock change a wall time of the previous day may still lie ahead. */
	if (--d == 0) {
		if (--m == 0) {
			m = 12;
			y--;
		}
		d = days_in_month(y, m);
	}
	while (y <= CALSPEC_MAX_YEAR) {
		int h, mi, s;

		if (!year_matches(c, y)) {
			y++;
			m = d = 1;
			continue;
		}
		if (!(c->months & (1u << (m - 1)))) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
			continue;
		}
		day = days_from_civil(y, m, d);
		if ((c->mdays & (1u << (d - 1))) && (c->wdays & (1u << (((day % 7) + 7 + 4) % 7))) &&
		    day * 86400 + 86399 > thr) {
			for (h = 0; h < 24; h++) {
				int64_t lh = day * 86400 + h * 3600;

				if (!(c->hours & (1u << h)) || lh + 3599 <= thr)
					continue;
				for (mi = 0; mi < 60; mi++) {
					int64_t lm = lh + mi * 60;

					if (!((c->minutes >> mi) & 1) || lm + 59 <= thr)
						continue;
					for (s = 0; s < 60; s++) {
						time_t cand[2];

						if (!((c->seconds >> s) & 1) || lm + s <= thr)
							continue;
						/*
						 * A wall time that does not exist (clocks jump over it) gives no instant and
						 * is skipped, as systemd does; one that happens twice counts at its first.
						 */
						if (tz_from_local(c->tz, lm + s, cand) > 0 && cand[0] > after) {
							*out = cand[0];
							return true;
						}
					}
				}
			}
		}
		if (++d > days_in_month(y, m)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	return false;
}

bool
calspec_prev(const struct calspec *c, time_t at, time_t *out)
{
	/* Widening windows: a daily schedule is found in the first, a monthly one that DST skipped in the fourth. */
	static const int64_t windows[] = { 2, 9, 33, 367, 1470, 11000 };
	size_t i;
	time_t t, n;

	for (i = 0; i < sizeof windows / sizeof windows[0]; i++) {
		if (!calspec_next(c, at - (time_t)(windows[i] * 86400), &t) || t > at)
			continue;
		while (calspec_next(c, t, &n) && n <= at)
			t = n;
		*out = t;
		return true;
	}
	return false;
}

char *
calspec_local(const struct calspec *c, time_t t, char *buf, size_t len)
{
	struct tz_local lt;
	char when[64];

	tz_to_local(c->tz, t, &lt);
	if (strftime(when, sizeof when, "%a %Y-%m-%d %H:%M", &lt.tm) == 0)
		snprintf(when, sizeof when, "?");
	snprintf(buf, len, "%s %s", when, lt.abbr);
	return buf;
}

/* --- schedule files ------------------------------------------------------------------------------------------ */

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static bool
parse_seconds(const char *v, int64_t *out)
{
	int64_t ms;

	if (!duration_parse(v, &ms) || ms % 1000 != 0)
		return false;
	*out = ms / 1000;
	return true;
}

struct schedule *
schedule_load_file(const char *path, const char *daemon, char **cause)
{
	struct schedule *s;
	char line[SCHEDULE_MAX_LINE + 2], *k, *v, *eq, *sc = NULL;
	FILE *fp;
	int lineno = 0;
	bool have_grace = false;

	if ((fp = fopen(path, "re")) == NULL) {
		xasprintf(cause, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	s = xcalloc(1, sizeof *s);
	s->daemon = xstrdup(daemon);
	s->path = xstrdup(path);
	s->accuracy_s = 60;
	while (fgets(line, sizeof line, fp) != NULL) {
		int64_t *dur = NULL;

		lineno++;
		if (strlen(line) > SCHEDULE_MAX_LINE || ftell(fp) > SCHEDULE_MAX_FILE) {
			xasprintf(cause, "%s:%d: line or file too long", path, lineno);
			goto fail;
		}
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			xasprintf(cause, "%s:%d: expected key = value", path, lineno);
			goto fail;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		if (*v == '\0') {
			xasprintf(cause, "%s:%d: %s: empty value", path, lineno, k);
			goto fail;
		}
		if (strcmp(k, "on_calendar") == 0) {
			free(s->on_calendar);
			s->on_calendar = xstrdup(v);
		} else if (strcmp(k, "description") == 0) {
			free(s->description);
			s->description = xstrdup(v);
		} else if (strcmp(k, "grace") == 0) {
			dur = &s->grace_s;
			have_grace = true;
		} else if (strcmp(k, "max_runtime") == 0)
			dur = &s->max_runtime_s;
		else if (strcmp(k, "randomized_delay") == 0)
			dur = &s->randomized_delay_s;
		else if (strcmp(k, "accuracy") == 0)
			dur = &s->accuracy_s;
		else {
			xasprintf(cause, "%s:%d: unknown key '%s'", path, lineno, k);
			goto fail;
		}
		if (dur != NULL && !parse_seconds(v, dur)) {
			xasprintf(cause, "%s:%d: %s: expected whole seconds as a duration such as 90s, 5min, 2h, got '%s'",
			    path, lineno, k, v);
			goto fail;
		}
	}
	fclose(fp);
	fp = NULL;
	if (s->on_calendar == NULL || !have_grace) {
		xasprintf(cause, "%s: on_calendar and grace are required", path);
		goto fail;
	}
	if ((s->spec = calspec_parse(s->on_calendar, &sc)) == NULL) {
		xasprintf(cause, "%s: %s", path, sc);
		free(sc);
		goto fail;
	}
	if (strcmp(calspec_zone(s->spec), "localtime") == 0) {
		xasprintf(cause, "%s: on_calendar must name its time zone (e.g. Australia/Brisbane): the schedule must not "
		    "depend on the machine's zone", path);
		goto fail;
	}
	/* The timer may fire up to randomized_delay + accuracy late on its own: that is not a missed run. */
	if (s->grace_s < 60 || s->grace_s <= s->randomized_delay_s + s->accuracy_s) {
		xasprintf(cause, "%s: grace (%llds) must be at least 60s and longer than randomized_delay + accuracy "
		    "(%llds)", path, (long long)s->grace_s, (long long)(s->randomized_delay_s + s->accuracy_s));
		goto fail;
	}
	if (s->max_runtime_s == 0)
		s->max_runtime_s = 6 * 3600;
	if (s->description == NULL)
		xasprintf(&s->description, "Scheduled %s run", daemon);
	return s;
fail:
	if (fp != NULL)
		fclose(fp);
	schedule_free(s);
	return NULL;
}

struct schedule *
schedule_load(const char *dir, const char *daemon, bool *missing, char **cause)
{
	struct schedule *s;
	char *path;

	*missing = false;
	xasprintf(&path, "%s/%s.schedule", dir, daemon);
	if (access(path, F_OK) == -1 && errno == ENOENT) {
		*missing = true;
		xasprintf(cause, "%s does not exist", path);
		free(path);
		return NULL;
	}
	s = schedule_load_file(path, daemon, cause);
	free(path);
	return s;
}

void
schedule_free(struct schedule *s)
{
	if (s == NULL)
		return;
	calspec_free(s->spec);
	free(s->daemon);
	free(s->path);
	free(s->on_calendar);
	free(s->description);
	free(s);
}
