/*
 * calendar-probe: the calendar evaluator (common/schedule.c) on the command line, so tests can hold it against
 * `systemd-analyze calendar` on the same expressions and base times.
 *
 *   calendar-probe [--base-time T] [--iterations N] EXPR       next N elapses after T (default now, N 1)
 *   calendar-probe [--base-time T] --prev EXPR                 the last elapse at or before T
 *   calendar-probe --schedule FILE                             load a schedule file, print its fields as JSON
 *
 * T is ISO-8601 ("2028-09-15T00:00:00Z") or "@epoch".  Each elapse is printed as "<UTC ISO-8601> <local time>".
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"
#include "timeutil.h"

static int
usage(void)
{
	fprintf(stderr, "usage: calendar-probe [--base-time T] [--iterations N | --prev] EXPR\n"
	    "       calendar-probe --schedule FILE\n");
	return 2;
}

static bool
parse_time_arg(const char *s, time_t *t)
{
	char *end;

	if (s[0] == '@') {
		*t = (time_t)strtoll(s + 1, &end, 10);
		return end != s + 1 && *end == '\0';
	}
	return iso8601_parse(s, t);
}

static int
show_schedule(const char *path)
{
	char *copy = strdup(path), *base = basename(copy), *dot, *cause = NULL;
	struct schedule *s;

	if ((dot = strstr(base, ".schedule")) != NULL)
		*dot = '\0';
	if ((s = schedule_load_file(path, base, &cause)) == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		free(copy);
		return 1;
	}
	printf("{\"daemon\": \"%s\", \"on_calendar\": \"%s\", \"zone\": \"%s\", \"grace\": %lld, \"max_runtime\": %lld,"
	    " \"randomized_delay\": %lld, \"accuracy\": %lld}\n", s->daemon, s->on_calendar, calspec_zone(s->spec),
	    (long long)s->grace_s, (long long)s->max_runtime_s, (long long)s->randomized_delay_s,
	    (long long)s->accuracy_s);
	schedule_free(s);
	free(copy);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "base-time", required_argument, NULL, 'b' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "prev", no_argument, NULL, 'p' },
		{ "schedule", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct calspec *c;
	time_t base = clock_now(), t;
	char *cause = NULL, iso[ISO8601_LEN], local[96];
	int ch, n = 1, i;
	bool prev = false;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (!parse_time_arg(optarg, &base))
				return usage();
			break;
		case 'i':
			n = atoi(optarg);
			if (n < 1 || n > 10000)
				return usage();
			break;
		case 'p':
			prev = true;
			break;
		case 's':
			return show_schedule(optarg);
		default:
			return usage();
		}
	}
	if (optind + 1 != argc)
		return usage();
	if ((c = calspec_parse(argv[optind], &cause)) == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return 1;
	}
	if (prev) {
		if (!calspec_prev(c, base, &t)) {
			printf("never\n");
			calspec_free(c);
			return 0;
		}
		printf("%s %s\n", iso8601_fmt(t, iso), calspec_local(c, t, local, sizeof local));
		calspec_free(c);
		return 0;
	}
	for (i = 0, t = base; i < n; i++) {
		if (!calspec_next(c, t, &t)) {
			printf("never\n");
			break;
		}
		printf("%s %s\n", iso8601_fmt(t, iso), calspec_local(c, t, local, sizeof local));
	}
	calspec_free(c);
	return 0;
}
