/* ISO-8601 formatting and parsing, durations, and the test clock. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "timeutil.h"

int
main(void)
{
	char buf[ISO8601_LEN], path[] = "/tmp/rs-clock-XXXXXX";
	int64_t ms;
	time_t t;
	FILE *fp;
	int fd;

	CHECK_STR(iso8601_fmt(0, buf), "1970-01-01T00:00:00Z");
	CHECK_STR(iso8601_fmt(1795910400, buf), "2026-11-29T00:00:00Z");

	CHECK(iso8601_parse("2026-11-29T00:00:00Z", &t) && t == 1795910400);
	CHECK(iso8601_parse("2026-11-29", &t) && t == 1795910400);
	CHECK(iso8601_parse("2026-11-29T10:00:00+10:00", &t) && t == 1795910400);
	CHECK(iso8601_parse("2026-11-28T14:00:00-10:00", &t) && t == 1795910400);
	CHECK(iso8601_parse("2026-11-29T00:00:00.717556Z", &t) && t == 1795910400);
	CHECK(iso8601_parse("2026-11-29T00:00:00.717556", &t) && t == 1795910400);	/* CKAN: no Z */
	CHECK(iso8601_parse("2026-11-29T11:00+1100", &t) && t == 1795910400);
	CHECK(!iso8601_parse("2026-02-30T00:00:00Z", &t));
	CHECK(!iso8601_parse("2026-13-01", &t));
	CHECK(!iso8601_parse("2026-11-29T25:00:00Z", &t));
	CHECK(!iso8601_parse("2026-11-29T00:00:00Zjunk", &t));
	CHECK(!iso8601_parse("", &t));
	CHECK(!iso8601_parse("29/11/2026", &t));
	CHECK(!iso8601_parse(NULL, &t));

	CHECK(duration_parse("90", &ms) && ms == 90000);
	CHECK(duration_parse("250ms", &ms) && ms == 250);
	CHECK(duration_parse("1.5s", &ms) && ms == 1500);
	CHECK(duration_parse("5m", &ms) && ms == 300000);
	CHECK(duration_parse("2h", &ms) && ms == 7200000);
	CHECK(duration_parse("3d", &ms) && ms == 259200000);
	CHECK(!duration_parse("5 parsecs", &ms));
	CHECK(!duration_parse("-1s", &ms));
	CHECK(!duration_parse("", &ms));

	/* The test clock: a file named by RTOPACKS_CLOCK_FILE, read on every call. */
	fd = mkstemp(path);
	CHECK(fd != -1);
	close(fd);
	setenv("RTOPACKS_CLOCK_FILE", path, 1);
	fp = fopen(path, "w");
	fputs("2028-10-01T02:30:00+10:00\n", fp);
	fclose(fp);
	CHECK_STR(iso8601_now(buf), "2028-09-30T16:30:00Z");
	fp = fopen(path, "w");
	fputs("1795910400", fp);
	fclose(fp);
	CHECK(clock_now() == 1795910400);
	unlink(path);
	CHECK(clock_now() > 1795910400 - 86400 * 365 * 10);	/* falls back to the real clock */
	unsetenv("RTOPACKS_CLOCK_FILE");
	CHECK_DONE();
}
