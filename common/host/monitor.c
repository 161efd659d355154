/* Missed-run, overrun and stuck detection inside the daemon, and its metrics file (see monitor.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "config.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "schedule.h"
#include "timeutil.h"
#include "xmalloc.h"

/* Without a schedule there is no max_runtime to read: overrun and stuck use this. */
#define DEFAULT_MAX_RUNTIME_S (6 * 3600)

struct monitor {
	struct schedule *sched;
	char *sched_problem;		/* last schedule error logged (logged again only when it changes) */
	time_t armed;
	char *armed_for;		/* the on_calendar armed_at belongs to */
	double started;			/* mono_now() at start, for missed_alert_delay */
	struct health h;
	bool have_health;
	char word[16];			/* health word last stored in sync_monitor */
	time_t stored_expected;		/* expected_at last stored */
	bool stored_overrun;
	bool metrics_problem;		/* a metrics write failure was logged */
	bool metrics_off_logged;
	/* What was alerted already (daemon_alert_once also knows, but asking it costs a write transaction). */
	time_t alerted_missed;
	char alerted_overrun[128];
};

static const char SQL_MON_GET[] = "SELECT armed_at, on_calendar FROM sync_monitor WHERE sync_type = ?";
static const char SQL_MON_ARM[] =
    "INSERT INTO sync_monitor (sync_type, on_calendar, armed_at, health, updated_at) VALUES (?1, ?2, ?3, 'ok', ?3)"
    " ON CONFLICT (sync_type) DO UPDATE SET on_calendar = excluded.on_calendar, armed_at = excluded.armed_at,"
    " health = 'ok', expected_at = NULL, updated_at = excluded.updated_at";
static const char SQL_MON_SET[] =
    "UPDATE sync_monitor SET health = ?2, expected_at = ?3, updated_at = ?4 WHERE sync_type = ?1";
/* ?4: the alert that still holds (NULL: none). */
static const char SQL_ALERT_CLEAR[] =
    "UPDATE sync_alerts SET cleared_at = ?3 WHERE sync_type = ?1 AND kind = ?2 AND cleared_at IS NULL"
    " AND alert_key IS NOT ?4";

/* --- schedule and arming ------------------------------------------------------------------------------------- */

static void
note_problem(struct monitor *m, const char *what)
{
	if (m->sched_problem != NULL && strcmp(m->sched_problem, what) == 0)
		return;
	free(m->sched_problem);
	m->sched_problem = xstrdup(what);
	log_warnx("%s", what);
}

/* (Re)read the schedule file each pass: a package upgrade or a SIGHUP'd schedules_dir needs no restart. */
static void
load_schedule(struct daemon *d, struct monitor *m)
{
	const char *dir = config_str(d->cfg, "paths", "schedules_dir");
	struct schedule *s;
	char *cause = NULL, *msg;
	bool missing;

	if ((s = schedule_load(dir, d->job->daemon, &missing, &cause)) == NULL) {
		if (missing) {
			xasprintf(&msg, "no schedule %s/%s.schedule: missed-run detection is off for %s", dir,
			    d->job->daemon, d->job->daemon);
			schedule_free(m->sched);
			m->sched = NULL;
		} else
			xasprintf(&msg, "schedule: %s%s", cause, m->sched ? " (keeping the schedule read before)" : "");
		note_problem(m, msg);
		free(msg);
		free(cause);
		return;
	}
	if (m->sched_problem != NULL) {
		log_info("schedule %s: %s (grace %llds)", s->path, s->on_calendar, (long long)s->grace_s);
		xfree(&m->sched_problem);
	}
	schedule_free(m->sched);
	m->sched = s;
}

static int
arm(struct daemon *d, struct monitor *m, time_t now, char **cause)
{
	char iso[ISO8601_LEN];
	sqlite3_stmt *st;
	bool found = false;

	if (m->armed_for != NULL && strcmp(m->armed_for, m->sched->on_calendar) == 0)
		return 0;
	if ((st = db_stmt(d->db, SQL_MON_GET, cause)) == NULL)
		return -1;
	db_bind_text(st, 1, d->job->sync_type);
	if (sqlite3_step(st) == SQLITE_ROW && strcmp(db_col_text(st, 1), m->sched->on_calendar) == 0 &&
	    iso8601_parse(db_col_text(st, 0), &m->armed))
		found = true;
	sqlite3_reset(st);
	if (!found) {
		/* First watch of this schedule: earlier scheduled times are not ours to judge. */
		m->armed = now;
		if (db_begin(d->db, cause) == -1)
			return -1;
		if ((st = db_stmt(d->db, SQL_MON_ARM, cause)) == NULL)
			goto fail;
		db_bind_text(st, 1, d->job->sync_type);
		db_bind_text(st, 2, m->sched->on_calendar);
		db_bind_text(st, 3, iso8601_fmt(now, iso));
		if (db_step_done(d->db, st, cause) == -1 || db_commit(d->db, cause) == -1)
			goto fail;
		m->word[0] = '\0';
		log_info("watching the schedule %s (armed from %s)", m->sched->on_calendar, iso);
	}
	free(m->armed_for);
	m->armed_for = xstrdup(m->sched->on_calendar);
	return 0;
fail:
	db_rollback(d->db);
	return -1;
}

/* --- alerts -------------------------------------------------------------------------------------------------- */

static bool
alert_missed(struct daemon *d, struct monitor *m, time_t now)
{
	const struct schedule *s = m->sched;
	const struct health *h = &m->h;
	char key[ISO8601_LEN], local[96], next[96], last[96], *subject, *cause = NULL;
	struct buf body;
	bool ok = true;

	calspec_local(s->spec, h->expected, local, sizeof local);
	xasprintf(&subject, "[%s] MISSED scheduled run \xe2\x80\x94 expected %s", d->job->daemon, local);
	buf_init(&body);
	buf_printf(&body, "No run of %s started within %lld minutes of its scheduled time, and none has started since.\n\n",
	    d->job->daemon, (long long)(s->grace_s / 60));
	buf_printf(&body, "  Scheduled:  %s (%s)\n", local, iso8601_fmt(h->expected, key));
	buf_printf(&body, "  Schedule:   %s (%s)\n", s->on_calendar, s->path);
	if (h->last.present)
		buf_printf(&body, "  Last run:   %s, %s, started %s\n", h->last.run_id, h->last.status,
		    calspec_local(s->spec, h->last.started, last, sizeof last));
	else
		buf_printf(&body, "  Last run:   none recorded\n");
	if (h->next != 0)
		buf_printf(&body, "  Next run:   %s\n", calspec_local(s->spec, h->next, next, sizeof next));
	buf_printf(&body, "\nWhat to do:\n"
	    "  systemctl status %s-run.timer %s-run.service    is the timer enabled, and did it fire?\n"
	    "  journalctl -u %s-run.service -u %s.service        what happened at that time\n"
	    "  syncctl trigger %s --wait                          run it now\n"
	    "  syncctl doctor                                     check every job\n"
	    "\nThis alert is sent once for this scheduled time (now %s).\n", d->job->daemon, d->job->daemon,
	    d->job->daemon, d->job->daemon, d->job->daemon, calspec_local(s->spec, now, last, sizeof last));
	if (daemon_alert_once(d, "missed", iso8601_fmt(h->expected, key), subject, body.data, &cause) == -1) {
		log_warnx("cannot queue the missed-run alert: %s", cause);
		free(cause);
		ok = false;
	}
	free(subject);
	buf_free(&body);
	return ok;
}

static bool
alert_overrun(struct daemon *d, struct monitor *m, int64_t max_runtime_s)
{
	const struct health *h = &m->h;
	char iso[ISO8601_LEN], *subject, *body, *cause = NULL;
	bool ok = true;
	long long mins = (long long)((clock_now() - h->running.started) / 60);

	xasprintf(&subject, "[%s] run OVERRUNNING \xe2\x80\x94 %s running for %lldh %02lldm", d->job->daemon,
	    h->running.run_id, mins / 60, mins % 60);
	xasprintf(&body, "The run %s of %s started at %s and is still running after %lldh %02lldm (max_runtime %lldh).\n\n"
	    "What to do:\n"
	    "  syncctl status %s          which phase it is in, and how fast it moves\n"
	    "  syncctl steps %s       what each phase did\n"
	    "  syncctl cancel %s          stop it at the next step boundary (the next trigger resumes the cycle)\n"
	    "\nThis alert is sent once for this run.\n", h->running.run_id, d->job->daemon,
	    iso8601_fmt(h->running.started, iso), mins / 60, mins % 60, (long long)(max_runtime_s / 3600),
	    d->job->daemon, h->running.run_id, d->job->daemon);
	if (daemon_alert_once(d, "overrun", h->running.run_id, subject, body, &cause) == -1) {
		log_warnx("cannot queue the overrun alert: %s", cause);
		free(cause);
		ok = false;
	}
	free(subject);
	free(body);
	return ok;
}

/* Alerts of a kind that no longer apply are marked cleared, so syncctl doctor and readers of sync_alerts agree. */
static void
clear_alerts(struct daemon *d, const char *kind, const char *except, time_t now)
{
	char iso[ISO8601_LEN], *cause = NULL;
	sqlite3_stmt *st;

	if (db_begin(d->db, &cause) == -1)
		goto fail;
	if ((st = db_stmt(d->db, SQL_ALERT_CLEAR, &cause)) == NULL) {
		db_rollback(d->db);
		goto fail;
	}
	db_bind_text(st, 1, d->job->sync_type);
	db_bind_text(st, 2, kind);
	db_bind_text(st, 3, iso8601_fmt(now, iso));
	db_bind_text(st, 4, except);
	if (db_step_done(d->db, st, &cause) == -1 || db_commit(d->db, &cause) == -1) {
		db_rollback(d->db);
		goto fail;
	}
	return;
fail:
	log_warnx("cannot clear %s alerts: %s", kind, cause);
	free(cause);
}

static void
store_health(struct daemon *d, struct monitor *m, const char *word, time_t now)
{
	char iso[ISO8601_LEN], exp[ISO8601_LEN], *cause = NULL;
	sqlite3_stmt *st;

	if (m->sched == NULL)
		return;
	if (db_begin(d->db, &cause) == -1)
		goto fail;
	if ((st = db_stmt(d->db, SQL_MON_SET, &cause)) == NULL) {
		db_rollback(d->db);
		goto fail;
	}
	db_bind_text(st, 1, d->job->sync_type);
	db_bind_text(st, 2, word);
	db_bind_text(st, 3, m->h.expected ? iso8601_fmt(m->h.expected, exp) : NULL);
	db_bind_text(st, 4, iso8601_fmt(now, iso));
	if (db_step_done(d->db, st, &cause) == -1 || db_commit(d->db, &cause) == -1) {
		db_rollback(d->db);
		goto fail;
	}
	return;
fail:
	log_warnx("cannot store the monitor state: %s", cause);
	free(cause);
}

/* --- metrics ------------------------------------------------------------------------------------------------- */

static void
write_metrics(struct daemon *d, struct monitor *m, time_t now)
{
	const char *dir = config_str(d->cfg, "paths", "metrics_dir");
	char *cause = NULL;
	struct stat sb;
	struct buf text;

	if (dir == NULL)
		return;
	/* The collector's directory belongs to node_exporter: without it there is nobody to read the file. */
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		if (!m->metrics_off_logged)
			log_info("metrics: %s is not a directory: no metrics file (is node_exporter installed?)", dir);
		m->metrics_off_logged = true;
		return;
	}
	m->metrics_off_logged = false;
	buf_init(&text);
	metrics_render(&text, d->job->daemon, &m->h, now);
	/* The job's own series (it writes nothing when it fails: the shared ones are still worth writing). */
	if (d->job->metrics != NULL && d->job->metrics(d, &text, &cause) == -1) {
		log_warnx("metrics: %s", cause);
		xfree(&cause);
	}
	if (metrics_write(dir, d->job->daemon, text.data, &cause) == -1) {
		if (!m->metrics_problem)
			log_warnx("metrics: %s", cause);
		m->metrics_problem = true;
		free(cause);
	} else if (m->metrics_problem) {
		log_info("metrics: writing %s again", dir);
		m->metrics_problem = false;
	}
	buf_free(&text);
}

/* --- the pass ------------------------------------------------------------------------------------------------ */

static void
pass(struct daemon *d)
{
	struct monitor *m = d->monitor;
	time_t now = clock_now();
	char *cause = NULL, local[96], key[ISO8601_LEN];
	const char *word;
	int64_t max_runtime_s;
	bool changed;

	if (m == NULL)
		return;
	/* Housekeeping never runs inside a step's transaction, but a monitor write must not join one. */
	if (db_in_tx(d->db))
		return;
	load_schedule(d, m);
	if (m->sched != NULL && arm(d, m, now, &cause) == -1) {
		log_warnx("monitor: %s", cause);
		xfree(&cause);
	}
	max_runtime_s = m->sched != NULL ? m->sched->max_runtime_s : DEFAULT_MAX_RUNTIME_S;
	if (health_check(d->db, d->job->sync_type, m->sched, now, m->sched ? m->armed : 0, max_runtime_s, &m->h,
	    &cause) == -1) {
		log_warnx("monitor: %s", cause);
		free(cause);
		return;
	}
	m->have_health = true;
	word = health_word(&m->h);
	changed = strcmp(word, m->word) != 0;
	/* Written on a change only: the state of a missed run moves on with each scheduled time, not each pass. */
	if (changed || m->h.expected != m->stored_expected || m->h.overrun != m->stored_overrun) {
		if (m->h.missed)
			log_warnx("missed: no run since the one scheduled for %s",
			    calspec_local(m->sched->spec, m->h.expected, local, sizeof local));
		else if (changed && m->h.overrun)
			log_warnx("overrun: %s has been running for more than %llds", m->h.running.run_id,
			    (long long)max_runtime_s);
		else if (changed && m->h.stuck)
			log_warnx("stuck: the cycle stopped at %s and nothing has resumed it", m->h.cycle_phase);
		else if (changed && m->word[0] != '\0')
			log_info("health: %s", word);
		/* A miss that a later run answered, or that a newer miss supersedes, is over. */
		clear_alerts(d, "missed", m->h.missed ? iso8601_fmt(m->h.expected, key) : NULL, now);
		clear_alerts(d, "overrun", m->h.overrun ? m->h.running.run_id : NULL, now);
		store_health(d, m, word, now);
		snprintf(m->word, sizeof m->word, "%s", word);
		m->stored_expected = m->h.expected;
		m->stored_overrun = m->h.overrun;
	}
	if (m->h.missed && m->alerted_missed != m->h.expected && mono_now() - m->started >=
	    (double)config_ms(d->cfg, d->section, "missed_alert_delay") / 1000.0 && alert_missed(d, m, now))
		m->alerted_missed = m->h.expected;
	if (m->h.overrun && strcmp(m->alerted_overrun, m->h.running.run_id) != 0 && alert_overrun(d, m, max_runtime_s))
		snprintf(m->alerted_overrun, sizeof m->alerted_overrun, "%s", m->h.running.run_id);
	write_metrics(d, m, now);
}

void
monitor_start(struct daemon *d)
{
	d->monitor = xcalloc(1, sizeof *d->monitor);
	d->monitor->started = mono_now();
	pass(d);
}

void
monitor_housekeeping(struct daemon *d)
{
	pass(d);
}

void
monitor_run_end(struct daemon *d)
{
	pass(d);
}

void
monitor_status(struct daemon *d, cJSON *out)
{
	struct monitor *m = d->monitor;
	const struct health *h;
	char iso[ISO8601_LEN], local[96], note[256];
	cJSON *sch, *notes;

	if (m == NULL || !m->have_health)
		return;
	h = &m->h;
	cJSON_AddStringToObject(out, "health", health_word(h));
	cJSON_AddBoolToObject(out, "missed", h->missed);
	cJSON_AddBoolToObject(out, "overrun", h->overrun);
	cJSON_AddBoolToObject(out, "stuck", h->stuck);
	if ((notes = cJSON_GetObjectItem(out, "notes")) == NULL || !cJSON_IsArray(notes)) {
		cJSON_DeleteItemFromObject(out, "notes");
		notes = cJSON_AddArrayToObject(out, "notes");
	}
	if (m->sched == NULL) {
		cJSON_AddNullToObject(out, "schedule");
	} else {
		const struct calspec *c = m->sched->spec;

		sch = cJSON_AddObjectToObject(out, "schedule");
		cJSON_AddStringToObject(sch, "on_calendar", m->sched->on_calendar);
		cJSON_AddStringToObject(sch, "zone", calspec_zone(c));
		cJSON_AddStringToObject(sch, "file", m->sched->path);
		cJSON_AddNumberToObject(sch, "grace_s", (double)m->sched->grace_s);
		cJSON_AddNumberToObject(sch, "max_runtime_s", (double)m->sched->max_runtime_s);
		cJSON_AddStringToObject(sch, "armed_at", iso8601_fmt(m->armed, iso));
		if (h->next != 0) {
			cJSON_AddStringToObject(sch, "next_at", iso8601_fmt(h->next, iso));
			cJSON_AddStringToObject(sch, "next_local", calspec_local(c, h->next, local, sizeof local));
		}
		if (h->expected != 0) {
			cJSON_AddStringToObject(sch, "expected_at", iso8601_fmt(h->expected, iso));
			cJSON_AddStringToObject(sch, "expected_local", calspec_local(c, h->expected, local, sizeof local));
		}
		if (h->missed) {
			snprintf(note, sizeof note, "MISSED: no run since the one scheduled for %s",
			    calspec_local(c, h->expected, local, sizeof local));
			cJSON_AddItemToArray(notes, cJSON_CreateString(note));
		} else if (h->due) {
			snprintf(note, sizeof note, "due: the run scheduled for %s has not started yet (grace %llds)",
			    calspec_local(c, h->last_due, local, sizeof local), (long long)m->sched->grace_s);
			cJSON_AddItemToArray(notes, cJSON_CreateString(note));
		}
		if (h->next != 0) {
			snprintf(note, sizeof note, "next scheduled run: %s", calspec_local(c, h->next, local, sizeof local));
			cJSON_AddItemToArray(notes, cJSON_CreateString(note));
		}
	}
	if (h->overrun) {
		snprintf(note, sizeof note, "OVERRUN: %s has been running since %s", h->running.run_id,
		    iso8601_fmt(h->running.started, iso));
		cJSON_AddItemToArray(notes, cJSON_CreateString(note));
	}
	if (h->stuck) {
		snprintf(note, sizeof note, "STUCK: the cycle stopped at %s (run %s); `syncctl trigger %s` resumes it",
		    h->cycle_phase, h->cursor_run_id, d->job->daemon);
		cJSON_AddItemToArray(notes, cJSON_CreateString(note));
	}
	if (cJSON_GetArraySize(notes) == 0)
		cJSON_DeleteItemFromObject(out, "notes");
}

void
monitor_free(struct daemon *d)
{
	struct monitor *m = d->monitor;

	if (m == NULL)
		return;
	schedule_free(m->sched);
	free(m->sched_problem);
	free(m->armed_for);
	free(m);
	d->monitor = NULL;
}
