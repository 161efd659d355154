/*
 * syncctl doctor [DAEMON...] [--json] [--token-warn DAYS]: everything about the jobs that needs the operator, and
 * what to do about each, from ops.db (read-only, so it works with every daemon down) and the schedule files.
 *
 * Checks, per job (health_check() in common/host/health.c: the same logic the daemons' monitors use):
 *   schedule   the job's schedule file is missing or unreadable (missed-run detection is then impossible)
 *   started    the job has never started (no monitor row, no run; on a fresh install ops.db has no tables yet:
 *              that is this warning too, exit 8)
 *   missed     the last scheduled run whose grace has passed did not start, and no run has started since
 *   overrun    a run has been 'running' longer than the schedule's max_runtime (hung, or its daemon died)
 *   stuck      the cycle is unfinished, no run is in progress, and it has not moved for max_runtime
 *   d1         observatory rows have waited more than a day for Cloudflare D1 (d1_outbox, store/d1-mirror.c)
 * and then the daemon's own checks (its sctl_hooks.doctor, from its folder: daemons/<name>/syncctl-*.c).
 *
 * Exit status: 0 nothing needs the operator; 8 something needs attention soon (warnings only); 9 something needs
 * action now; 1 doctor could not check (configuration, ops.db); 2 usage.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "health.h"
#include "schedule.h"
#include "sctl.h"
#include "timeutil.h"
#include "xmalloc.h"

#define DOCTOR_ATTENTION 8
#define DOCTOR_PROBLEM 9
#define DOCTOR_MAX_JOBS 8
#define OK SCTL_LEVEL_OK
#define WARN SCTL_LEVEL_WARN
#define PROBLEM SCTL_LEVEL_PROBLEM

struct sctl_report {
	const struct sctl_daemon *d;
	enum sctl_level level;
	cJSON *findings;
	cJSON *obj;
};

void
sctl_finding(struct sctl_report *r, enum sctl_level lv, const char *check, const char *action, const char *fmt, ...)
{
	cJSON *f = cJSON_CreateObject();
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	cJSON_AddStringToObject(f, "level", lv == PROBLEM ? "problem" : "warning");
	cJSON_AddStringToObject(f, "check", check);
	cJSON_AddStringToObject(f, "message", msg);
	cJSON_AddStringToObject(f, "action", action);
	cJSON_AddItemToArray(r->findings, f);
	if (lv > r->level)
		r->level = lv;
	free(msg);
}

/* A time for people: local in the schedule's zone when there is one, else UTC. */
static const char *
when(const struct schedule *s, time_t t, char *buf, size_t len)
{
	char iso[ISO8601_LEN];

	if (t == 0)
		snprintf(buf, len, "-");
	else if (s != NULL)
		calspec_local(s->spec, t, buf, len);
	else
		snprintf(buf, len, "%s", iso8601_fmt(t, iso));
	return buf;
}

void
sctl_json_time(cJSON *o, const char *key, time_t t)
{
	char iso[ISO8601_LEN];

	if (t != 0)
		cJSON_AddStringToObject(o, key, iso8601_fmt(t, iso));
	else
		cJSON_AddNullToObject(o, key);
}

cJSON *
sctl_report_json(struct sctl_report *r)
{
	return r->obj;
}

/* Start a job's report, with the findings about its schedule file; the schedule, or NULL if it cannot be used. */
static struct schedule *
report_begin(struct sctl_report *r, struct sctl *s)
{
	const char *dir = config_str(s->cfg, "paths", "schedules_dir"), *name = r->d->name;
	struct schedule *sch;
	char *cause = NULL;
	bool missing;

	r->obj = cJSON_CreateObject();
	cJSON_AddStringToObject(r->obj, "daemon", name);
	r->findings = cJSON_CreateArray();
	if ((sch = schedule_load(dir, name, &missing, &cause)) == NULL) {
		if (missing)
			sctl_finding(r, WARN, "schedule",
			    "reinstall the package, or point [paths] schedules_dir at the schedules",
			    "no schedule file %s/%s.schedule: missed runs cannot be detected", dir, name);
		else
			sctl_finding(r, PROBLEM, "schedule", "fix the file (syntax: schedules/README.md)", "%s", cause);
		xfree(&cause);
	}
	return sch;
}

static void
check_fresh_job(struct sctl_report *r, struct sctl *s)
{
	const char *name = r->d->name;
	struct schedule *sch = report_begin(r, s);
	char act[512];

	cJSON_AddStringToObject(r->obj, "health", "never_started");
	snprintf(act, sizeof act, "configure it (docs/install.md), then start it: `systemctl enable --now %s.service "
	    "%s-run.timer`", name, name);
	sctl_finding(r, WARN, "started", act, "no run has happened yet: ops.db has no run history (a fresh install: no "
	    "daemon has started)");
	schedule_free(sch);
}

/* Observatory rows that have waited for D1 (store/d1-mirror.c) longer than a day: D1 down, or refusing them. */
static const char SQL_D1_WAITING[] =
    "SELECT count(*), min(queued_at), (SELECT last_error FROM d1_outbox WHERE sync_type = ?1 AND last_error IS NOT"
    " NULL LIMIT 1) FROM d1_outbox WHERE sync_type = ?1";

static void
check_d1(struct sctl_report *r, struct db *db, time_t now)
{
	sqlite3_stmt *st;
	time_t since;
	char act[512];

	/* An ops.db older than migration 0005 has no outbox: nothing waits. */
	if ((st = db_stmt(db, SQL_D1_WAITING, NULL)) == NULL)
		return;
	db_bind_text(st, 1, r->d->sync_type);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0 &&
	    iso8601_parse(db_col_text(st, 1), &since) && now - since > 86400) {
		snprintf(act, sizeof act, "is D1 reachable and the credential d1-api-token valid? `syncctl status %s` "
		    "shows the last error; the rows go out by themselves once D1 takes them", r->d->name);
		sctl_finding(r, WARN, "d1", act, "%d observatory rows have waited for D1 since %s (last error: %s)",
		    sqlite3_column_int(st, 0), db_col_text(st, 1),
		    sqlite3_column_type(st, 2) != SQLITE_NULL ? db_col_text(st, 2) : "none");
	}
	sqlite3_reset(st);
}

static void
check_job(struct sctl_report *r, struct sctl *s, struct db *db, time_t now, int64_t warn_s)
{
	const char *name = r->d->name;
	struct schedule *sch = report_begin(r, s);
	struct health h;
	char *cause = NULL, b1[96], b2[96], act[512];
	cJSON *o;

	if (health_check(db, r->d->sync_type, sch, now, 0, 6 * 3600, &h, &cause) == -1) {
		sctl_finding(r, PROBLEM, "ops.db", "check ops.db (syncctl runs)", "%s", cause);
		free(cause);
		schedule_free(sch);
		return;
	}
	if (sch != NULL) {
		o = cJSON_AddObjectToObject(r->obj, "schedule");
		cJSON_AddStringToObject(o, "on_calendar", sch->on_calendar);
		sctl_json_time(o, "expected_at", h.expected);
		sctl_json_time(o, "next_at", h.next);
		sctl_json_time(o, "armed_at", h.armed);
	}
	if (h.last.present) {
		o = cJSON_AddObjectToObject(r->obj, "last_run");
		cJSON_AddStringToObject(o, "run_id", h.last.run_id);
		cJSON_AddStringToObject(o, "status", h.last.status);
		sctl_json_time(o, "started_at", h.last.started);
	}
	cJSON_AddStringToObject(r->obj, "health", health_word(&h));

	if (sch != NULL && h.armed == 0) {
		snprintf(act, sizeof act, "start it: `systemctl enable --now %s.service %s-run.timer` (docs/install.md)",
		    name, name);
		sctl_finding(r, WARN, "started", act, "%s has never started: no run and no schedule watch recorded", name);
	}
	if (h.missed) {
		snprintf(act, sizeof act, "is the timer enabled and did it fire? `systemctl status %s-run.timer "
		    "%s-run.service`, `journalctl -u %s-run.service -u %s.service`; run it now: `syncctl trigger %s "
		    "--wait`", name, name, name, name, name);
		sctl_finding(r, PROBLEM, "missed", act, "no run since the one scheduled for %s (grace %lldm); last run: %s",
		    when(sch, h.expected, b1, sizeof b1), (long long)(sch->grace_s / 60),
		    h.last.present ? when(sch, h.last.started, b2, sizeof b2) : "none");
	}
	if (h.overrun) {
		snprintf(act, sizeof act, "`syncctl status %s` shows whether it moves; if the daemon is gone, `systemctl "
		    "restart %s` marks the run stale and resumes the cycle; `syncctl cancel %s` stops it", name, name, name);
		sctl_finding(r, PROBLEM, "overrun", act, "run %s has been running since %s (%lldh%02lldm)", h.running.run_id,
		    when(sch, h.running.started, b1, sizeof b1), (long long)((now - h.running.started) / 3600),
		    (long long)((now - h.running.started) / 60 % 60));
	}
	if (h.stuck) {
		snprintf(act, sizeof act, "`syncctl steps %s` shows why it stopped; `syncctl trigger %s` resumes the "
		    "cycle at %s", h.cursor_run_id[0] ? h.cursor_run_id : "RUN_ID", name, h.cycle_phase);
		sctl_finding(r, PROBLEM, "stuck", act, "the cycle stopped at phase %s (run %s, last moved %s) and nothing is "
		    "resuming it", h.cycle_phase, h.cursor_run_id[0] ? h.cursor_run_id : "-",
		    when(sch, h.cursor_updated, b1, sizeof b1));
	}
	check_d1(r, db, now);
	if (r->d->hooks != NULL && r->d->hooks->doctor != NULL)
		r->d->hooks->doctor(r, r->d, db, now, warn_s);
	if (sch != NULL && h.next != 0)
		cJSON_AddStringToObject(r->obj, "next_local", when(sch, h.next, b1, sizeof b1));
	schedule_free(sch);
}

static void
print_report(const struct sctl_report *r)
{
	const cJSON *f, *next = cJSON_GetObjectItem(r->obj, "next_local"), *last = cJSON_GetObjectItem(r->obj,
	    "last_run");
	static const char *const words[] = { "ok", "WARNING", "PROBLEM" };

	if (r->level == OK) {
		printf("%-13s %-8s last run %s%s%s; next %s\n", r->d->name, words[0],
		    last ? cJSON_GetObjectItem(last, "run_id")->valuestring : "none", last ? " " : "",
		    last ? cJSON_GetObjectItem(last, "status")->valuestring : "",
		    cJSON_IsString(next) ? next->valuestring : "-");
		return;
	}
	cJSON_ArrayForEach(f, r->findings) {
		printf("%-13s %-8s %s: %s\n", r->d->name,
		    strcmp(cJSON_GetObjectItem(f, "level")->valuestring, "problem") == 0 ? words[2] : words[1],
		    cJSON_GetObjectItem(f, "check")->valuestring, cJSON_GetObjectItem(f, "message")->valuestring);
		printf("%-13s          -> %s\n", "", cJSON_GetObjectItem(f, "action")->valuestring);
	}
}

static int
cmd_doctor_exec(struct sctl *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "token-warn", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct sctl_report reports[DOCTOR_MAX_JOBS];
	const struct sctl_daemon *d;
	int64_t warn_s = 30 * 86400;
	size_t n = 0, i, problems = 0, warnings = 0;
	enum sctl_level worst = OK;
	time_t now = clock_now();
	struct db *db;
	cJSON *all, *jobs;
	int ch, rc = SCTL_OK;
	char *end;
	bool history, fresh;
	long v;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			s->json = true;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || v < 0 || v > 3650) {
				fprintf(stderr, "syncctl: --token-warn takes a number of days (0 to 3650)\n");
				return SCTL_USAGE;
			}
			warn_s = (int64_t)v * 86400;
			break;
		default:
			fprintf(stderr, "usage: syncctl doctor [DAEMON...] [--json] [--token-warn DAYS]\n");
			return SCTL_USAGE;
		}
	}
	memset(reports, 0, sizeof reports);
	if (optind < argc) {
		for (; optind < argc; optind++) {
			if ((d = sctl_find_daemon(argv[optind])) == NULL) {
				fprintf(stderr, "syncctl: unknown daemon '%s'\n", argv[optind]);
				return SCTL_USAGE;
			}
			if (n < DOCTOR_MAX_JOBS)
				reports[n++].d = d;
		}
	} else
		for (d = sctl_daemons; d->name != NULL && n < DOCTOR_MAX_JOBS; d++)
			if (!d->hidden)
				reports[n++].d = d;
	/* A machine where no daemon has started yet (no ops.db, or no tables in it) gets the fresh-install checks. */
	if ((db = sctl_open_history(s, &fresh, &rc)) == NULL && !fresh)
		return rc;
	history = db != NULL;
	for (i = 0; i < n; i++) {
		if (history)
			check_job(&reports[i], s, db, now, warn_s);
		else
			check_fresh_job(&reports[i], s);
		cJSON_AddStringToObject(reports[i].obj, "status", reports[i].level == PROBLEM ? "problem" :
		    reports[i].level == WARN ? "warning" : "ok");
		cJSON_AddItemToObject(reports[i].obj, "findings", reports[i].findings);
		if (reports[i].level > worst)
			worst = reports[i].level;
		problems += reports[i].level == PROBLEM;
		warnings += reports[i].level == WARN;
	}
	db_close(db);
	rc = worst == PROBLEM ? DOCTOR_PROBLEM : worst == WARN ? DOCTOR_ATTENTION : SCTL_OK;
	if (s->json) {
		all = cJSON_CreateObject();
		cJSON_AddStringToObject(all, "status", worst == PROBLEM ? "problem" : worst == WARN ? "warning" : "ok");
		cJSON_AddNumberToObject(all, "exit", rc);
		sctl_json_time(all, "checked_at", now);
		cJSON_AddItemToObject(all, "jobs", jobs = cJSON_CreateArray());
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(jobs, reports[i].obj);
		print_json(all);
		cJSON_Delete(all);
		return rc;
	}
	for (i = 0; i < n; i++) {
		print_report(&reports[i]);
		cJSON_Delete(reports[i].obj);
	}
	if (worst == OK)
		printf("\nAll %zu job%s healthy.\n", n, n == 1 ? "" : "s");
	else
		printf("\n%zu job%s with a problem, %zu with a warning (exit %d).\n", problems, problems == 1 ? "" : "s",
		    warnings, rc);
	return rc;
}

/* The daemons' own checks are named in the help too. */
static void
cmd_doctor_help(FILE *fp)
{
	const struct sctl_daemon *d;
	size_t n = 0, i = 0;

	for (d = sctl_daemons; d->name != NULL; d++)
		n += !d->hidden && d->hooks != NULL && d->hooks->doctor_help != NULL;
	fputs("Check every job (or those named) for missed, overrunning or stuck runs", fp);
	for (d = sctl_daemons; d->name != NULL; d++)
		if (!d->hidden && d->hooks != NULL && d->hooks->doctor_help != NULL)
			fprintf(fp, "%s%s", ++i == n ? " and " : ", ", d->hooks->doctor_help);
	fputs(", and say what to do; exits 8 (attention) or 9 (action needed) when something is wrong.", fp);
}

const struct sctl_cmd sctl_cmd_doctor = { "doctor", "[DAEMON...] [--json] [--token-warn DAYS]", NULL,
	cmd_doctor_exec, cmd_doctor_help };
