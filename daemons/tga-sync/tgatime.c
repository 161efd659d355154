#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tgatime.h"
#include "timeutil.h"

static bool
digits(const char *s, size_t n, int *out)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool
ticks_parse(const char *s, size_t len, int64_t *ticks, bool *has_zone)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh, om;
	int64_t frac = 0, scale = TICKS_PER_SEC / 10, secs;
	size_t i = 19;

	/* Surrounding white space is allowed in xs:dateTime. */
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
		return false;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
		return false;
	if (i < len && s[i] == '.') {
		size_t start = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			/* .NET keeps 7 digits; anything finer is dropped, as DateTime.Parse does. */
			if (scale > 0) {
				frac += (s[i] - '0') * scale;
				scale /= 10;
			}
			i++;
		}
		if (i == start)
			return false;
	}
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	*has_zone = false;
	if (i == len) {
		*ticks = secs * TICKS_PER_SEC + frac;
		return true;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
		*has_zone = true;
		*ticks = secs * TICKS_PER_SEC + frac;
		return true;
	}
	if ((s[i] == '+' || s[i] == '-') && i + 6 == len && s[i + 3] == ':' && digits(s + i + 1, 2, &oh) &&
	    digits(s + i + 4, 2, &om) && oh <= 14 && om <= 59) {
		int off = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);

		*has_zone = true;
		*ticks = (secs - (int64_t)off * 60) * TICKS_PER_SEC + frac;
		return true;
	}
	return false;
}

bool
ticks_from_dto(const char *dt, size_t dtlen, const char *off, size_t offlen, int64_t *ticks)
{
	char buf[16];
	long minutes;
	char *end;
	bool zone;
	int64_t t;

	if (!ticks_parse(dt, dtlen, &t, &zone))
		return false;
	if (offlen == 0 || offlen >= sizeof buf)
		return false;
	memcpy(buf, off, offlen);
	buf[offlen] = '\0';
	minutes = strtol(buf, &end, 10);
	if (*end != '\0' || minutes < -840 || minutes > 840)
		return false;
	/* WCF serialises DateTimeOffset.DateTime in UTC with a "Z"; a bare one is local time at the offset. */
	if (!zone)
		t -= (int64_t)minutes * 60 * TICKS_PER_SEC;
	*ticks = t;
	return true;
}

char *
ticks_format(int64_t ticks, char *out)
{
	int64_t secs = ticks / TICKS_PER_SEC, frac = ticks % TICKS_PER_SEC, days, rem, y;
	int m, d, n;
	char f[8];

	if (frac < 0) {
		frac += TICKS_PER_SEC;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	n = snprintf(out, TICKS_LEN, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
	    (int)(rem % 60));
	if (frac != 0) {
		int len = 7;

		snprintf(f, sizeof f, "%07lld", (long long)frac);
		while (len > 0 && f[len - 1] == '0')
			len--;
		n += snprintf(out + n, (size_t)(TICKS_LEN - n), ".%.*s", len, f);
	}
	snprintf(out + n, (size_t)(TICKS_LEN - n), "Z");
	return out;
}

char *
ticks_format_sec(int64_t ticks, char *out)
{
	int64_t t = ticks_to_time(ticks);

	ticks_format(t * TICKS_PER_SEC, out);
	return out;
}

int64_t
ticks_from_time(int64_t unix_seconds)
{
	return unix_seconds * TICKS_PER_SEC;
}

int64_t
ticks_to_time(int64_t ticks)
{
	int64_t s = ticks / TICKS_PER_SEC;

	if (ticks % TICKS_PER_SEC < 0)
		s--;
	return s;
}
