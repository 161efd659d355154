#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "timeutil.h"

time_t
clock_now(void)
{
	const char *path = getenv("RTOPACKS_CLOCK_FILE");
	char buf[64];
	ssize_t n;
	time_t t;
	int fd;

	if (path == NULL || *path == '\0')
		return time(NULL);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return time(NULL);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return time(NULL);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (iso8601_parse(buf, &t))
		return t;
	{
		char *end;
		long long v;

		errno = 0;
		v = strtoll(buf, &end, 10);
		if (errno == 0 && end != buf && *end == '\0')
			return (time_t)v;
	}
	return time(NULL);
}

double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *
iso8601_fmt(time_t t, char out[ISO8601_LEN])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, ISO8601_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(out, "1970-01-01T00:00:00Z");
	return out;
}

char *
iso8601_now(char out[ISO8601_LEN])
{
	return iso8601_fmt(clock_now(), out);
}

static bool
digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool
iso8601_parse(const char *s, time_t *t)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
	const char *p = s;
	struct tm tm;
	time_t r;

	if (s == NULL || !digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d))
		return false;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return false;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return false;
			if (*p == '.' || *p == ',') {
				p++;
				if (!isdigit((unsigned char)*p))
					return false;
				while (isdigit((unsigned char)*p))
					p++;
			}
		}
		if (*p == 'Z' || *p == 'z')
			p++;
		else if (*p == '+' || *p == '-') {
			sign = *p++ == '+' ? 1 : -1;
			if (!digits(&p, 2, &oh))
				return false;
			if (*p == ':')
				p++;
			if (!digits(&p, 2, &om))
				return false;
		}
	}
	if (*p != '\0')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || oh > 14 || om > 59)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	r = timegm(&tm);
	/* timegm normalises 31 February into March: reject dates that do not exist. */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return false;
	r -= (time_t)sign * (oh * 3600 + om * 60);
	*t = r;
	return true;
}

bool
duration_parse(const char *s, int64_t *ms)
{
	char *end;
	double v;
	int64_t mult = 1000;

	if (s == NULL)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return false;
	while (*end == ' ')
		end++;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		mult = 86400 * 1000;
	else
		return false;
	if (v * (double)mult > 9e15)
		return false;
	*ms = (int64_t)(v * (double)mult + 0.5);
	return true;
}
