/*
 * The edition watch.  CRICOS is due on the 1st, but usually appears a day or more later (sometimes ten), so the
 * run on the 1st normally finds last month's data.  Then:
 *
 *   - init arms the watch (job state "watch") for the month, unless this month's edition is already in (its newest
 *     upload is no older than 3 days before the 1st: some editions are published on the last days of the month
 *     before);
 *   - housekeeping (clock_now(), so tests can move time) starts a re-check run every watch_interval; each run's
 *     init either finds the new edition (the cycle syncs it and the watch is disarmed) or moves next_check on;
 *   - once watch_late_day has begun and a re-check on or after it still found nothing, one mail goes out:
 *     "[cricos-sync] edition late — no new CRICOS data since <date>" (daemon_alert_once keyed by the month, so a
 *     restart never sends it twice).
 *
 * "The month" and "the 10th" are in the configured zone (AEST, +10:00): the run at 04:00 AEST on the 1st is at
 * 18:00 UTC on the last day of the month before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cricos.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "timeutil.h"
#include "xmalloc.h"

/* An upload this many days before the 1st still counts as that month's edition (2021-10-31 was November's). */
#define EARLY_EDITION_DAYS 3

static const char SQL_JOB_STATE[] = "SELECT job_state FROM cricos_sync_cursor WHERE id = 1";

static void
local_tm(const struct cricos *c, time_t t, struct tm *tm)
{
	time_t l = t + c->tz_offset;

	gmtime_r(&l, tm);
}

void
local_month(const struct cricos *c, time_t t, char out[8])
{
	struct tm tm;

	local_tm(c, t, &tm);
	snprintf(out, 8, "%04d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100);
}

void
local_date(const struct cricos *c, time_t t, char out[11])
{
	struct tm tm;

	local_tm(c, t, &tm);
	snprintf(out, 11, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
}

/* The UTC time of local midnight starting day `day` of the month of t. */
static time_t
local_day_start(const struct cricos *c, time_t t, int day)
{
	struct tm tm;

	local_tm(c, t, &tm);
	tm.tm_mday = day;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return timegm(&tm) - c->tz_offset;
}

/* "1 day", "6 hours", "90 s": the interval as a person would say it. */
static const char *
interval_text(int64_t ms, char *out, size_t len)
{
	long long s = (long long)(ms / 1000);

	if (s > 0 && s % 86400 == 0)
		snprintf(out, len, "%lld day%s", s / 86400, s == 86400 ? "" : "s");
	else if (s > 0 && s % 3600 == 0)
		snprintf(out, len, "%lld hour%s", s / 3600, s == 3600 ? "" : "s");
	else
		snprintf(out, len, "%lld s", s);
	return out;
}

static time_t
iso_or_zero(const cJSON *o, const char *key)
{
	time_t t;

	return iso8601_parse(json_str(o, key), &t) ? t : 0;
}

/* The late edition has arrived: its alert is over (`syncctl doctor` stops reporting it), in this step's commit. */
static void
clear_late_alert(struct step *st)
{
	static const char SQL_CLEAR[] = "UPDATE sync_alerts SET cleared_at = ? WHERE sync_type = 'cricos_sync'"
	    " AND kind = 'edition_late' AND cleared_at IS NULL";
	char now[ISO8601_LEN], *cause = NULL;
	sqlite3_stmt *q;
	struct db *db;

	if ((db = step_db(st, &cause)) == NULL || (q = db_stmt(db, SQL_CLEAR, &cause)) == NULL) {
		log_warnx("edition watch: cannot clear the late-edition alert: %s", cause);
		free(cause);
		return;
	}
	db_bind_text(q, 1, iso8601_now(now));
	if (db_step_done(db, q, &cause) == -1) {
		log_warnx("edition watch: cannot clear the late-edition alert: %s", cause);
		free(cause);
	}
}

void
watch_after_init(struct cricos *c, struct step *st, bool new_edition, time_t newest, cJSON *info)
{
	cJSON *js = step_job_state(st), *w = cJSON_GetObjectItemCaseSensitive(js, "watch");
	time_t now = clock_now();
	char month[8], since[11], ts[ISO8601_LEN];

	local_month(c, now, month);
	local_date(c, newest, since);
	if (new_edition) {
		if (w != NULL) {
			/* The edition the watch was waiting for: say how it was found, then stand down. */
			cJSON_AddStringToObject(info, "state", "picked_up");
			cJSON_AddStringToObject(info, "month", json_str(w, "month"));
			cJSON_AddStringToObject(info, "armed_at", json_str(w, "armed_at"));
			cJSON_AddStringToObject(info, "since", json_str(w, "since"));
			cJSON_AddNumberToObject(info, "checks", json_num(w, "checks", 0));
			log_info("edition watch: the edition awaited since %s has appeared; the watch stands down",
			    json_str(w, "armed_at"));
			cJSON_DeleteItemFromObjectCaseSensitive(js, "watch");	/* frees w */
			clear_late_alert(st);
		} else
			cJSON_AddStringToObject(info, "state", "off");
		return;
	}
	if (!c->watch_enabled) {
		cJSON_AddStringToObject(info, "state", "disabled");
		return;
	}
	if (w != NULL && strcmp(json_str(w, "month"), month) == 0) {
		/*
		 * A re-check (or another run) in the month the watch waits for.  Nothing new to tell: the month's first
		 * run said "no new edition", and the sync (or the late alert) will be the next mail.
		 */
		cJSON_DeleteItemFromObjectCaseSensitive(step_cycle_state(st), "notify_skip");
		cJSON_AddStringToObject(step_cycle_state(st), "notify_skip",
		    "edition watch re-check: still no new edition (the sync, or the late alert, sends the next mail)");
		json_add_num(w, "checks", 1);
		json_set_str(w, "last_check", iso8601_fmt(now, ts));
		json_set_str(w, "next_check", iso8601_fmt(now + (time_t)(c->watch_interval_ms / 1000), ts));
	} else {
		time_t first = local_day_start(c, now, 1);

		if (newest >= first - EARLY_EDITION_DAYS * 86400) {
			/* This month's edition is already in: nothing to wait for (e.g. a manual run mid-month). */
			if (w != NULL)
				cJSON_DeleteItemFromObjectCaseSensitive(js, "watch");
			cJSON_AddStringToObject(info, "state", "current");
			cJSON_AddStringToObject(info, "since", since);
			return;
		}
		if (w != NULL)
			cJSON_DeleteItemFromObjectCaseSensitive(js, "watch");
		w = cJSON_AddObjectToObject(js, "watch");
		cJSON_AddStringToObject(w, "month", month);
		cJSON_AddStringToObject(w, "since", since);
		cJSON_AddStringToObject(w, "armed_at", iso8601_fmt(now, ts));
		cJSON_AddStringToObject(w, "last_check", ts);
		cJSON_AddStringToObject(w, "next_check", iso8601_fmt(now + (time_t)(c->watch_interval_ms / 1000), ts));
		cJSON_AddStringToObject(w, "late_at", iso8601_fmt(local_day_start(c, now, c->late_day), ts));
		{
			char ld[11];

			local_date(c, local_day_start(c, now, c->late_day), ld);
			cJSON_AddStringToObject(w, "late_day", ld);
		}
		cJSON_AddNumberToObject(w, "checks", 0);
		{
			char every[32];

			log_info("edition watch: no %s edition yet (newest upload %s): re-checking every %s, late after %s",
			    month, since, interval_text(c->watch_interval_ms, every, sizeof every), ts);
		}
	}
	cJSON_AddStringToObject(info, "state", "armed");
	cJSON_AddStringToObject(info, "month", json_str(w, "month"));
	cJSON_AddStringToObject(info, "since", json_str(w, "since"));
	cJSON_AddStringToObject(info, "armed_at", json_str(w, "armed_at"));
	cJSON_AddStringToObject(info, "next_check", json_str(w, "next_check"));
	cJSON_AddStringToObject(info, "late_at", json_str(w, "late_at"));
	cJSON_AddStringToObject(info, "late_day", json_str(w, "late_day"));
	cJSON_AddNumberToObject(info, "checks", json_num(w, "checks", 0));
}

static cJSON *
load_job_state(struct daemon *d)
{
	sqlite3_stmt *q;
	cJSON *js = NULL;
	char *cause = NULL;

	if ((q = db_stmt(d->db, SQL_JOB_STATE, &cause)) == NULL) {
		log_warnx("edition watch: %s", cause);
		free(cause);
		return NULL;
	}
	if (sqlite3_step(q) == SQLITE_ROW)
		js = cJSON_Parse(db_col_text(q, 0));
	sqlite3_reset(q);
	return js;
}

static void
send_late(struct daemon *d, struct cricos *c, const cJSON *w)
{
	char *subject = NULL, *body = NULL, *cause = NULL, every[32];
	int rc;

	xasprintf(&subject, "[%s] edition late \xe2\x80\x94 no new CRICOS data since %s", d->job->daemon,
	    json_str(w, "since"));
	xasprintf(&body,
	    "No new CRICOS edition has appeared on data.gov.au for %s.\n\n"
	    "The newest upload of the CRICOS resources is from %s. The edition is due on the 1st and usually\n"
	    "appears within a few days; by day %d it is late.\n\n"
	    "Edition watch armed:  %s\n"
	    "Re-checks so far:     %.0f (every %s; last %s)\n"
	    "Next check:           %s\n\n"
	    "cricos-sync keeps checking and syncs the edition as soon as it appears; nothing is needed unless\n"
	    "the dataset has moved: https://data.gov.au/data/dataset/cricos\n"
	    "State:                syncctl status %s\n",
	    json_str(w, "month"), json_str(w, "since"), c->late_day, json_str(w, "armed_at"), json_num(w, "checks", 0),
	    interval_text(c->watch_interval_ms, every, sizeof every), json_str(w, "last_check"), json_str(w, "next_check"),
	    d->job->daemon);
	rc = daemon_alert_once(d, "edition_late", json_str(w, "month"), subject, body, &cause);
	if (rc == -1) {
		log_warnx("edition watch: cannot queue the late alert: %s", cause);
		free(cause);
	} else
		snprintf(c->late_sent, sizeof c->late_sent, "%s", json_str(w, "month"));
	free(subject);
	free(body);
}

void
watch_housekeeping(struct daemon *d)
{
	struct cricos *c = d->job_ctx;
	cJSON *js, *w;
	time_t now = clock_now(), late_at, last_check, next_check;
	char run_id[128], *cause = NULL;

	if (c == NULL || !c->watch_enabled || d->stopping || cycle_running(d->cycle) || db_in_tx(d->db))
		return;
	if ((js = load_job_state(d)) == NULL)
		return;
	if ((w = cJSON_GetObjectItemCaseSensitive(js, "watch")) == NULL) {
		cJSON_Delete(js);
		return;
	}
	late_at = iso_or_zero(w, "late_at");
	last_check = iso_or_zero(w, "last_check");
	next_check = iso_or_zero(w, "next_check");

	/*
	 * Late: only once a check on or after the late day has found nothing (the edition may have arrived this
	 * morning), or a day after it if checks keep failing (then the failure mails say why as well).
	 */
	if (late_at > 0 && now >= late_at && strcmp(c->late_sent, json_str(w, "month")) != 0 &&
	    (last_check >= late_at || now >= late_at + 86400))
		send_late(d, c, w);

	/* Re-check; a failed check does not move next_check, so wait an interval before trying again. */
	if (next_check > 0 && now >= next_check &&
	    (c->watch_last_trigger == 0 || now - c->watch_last_trigger >= (time_t)(c->watch_interval_ms / 1000))) {
		c->watch_last_trigger = now;
		switch (cycle_trigger(d->cycle, "timer", "edition watch", false, run_id, sizeof run_id, &cause)) {
		case TRIGGER_STARTED:
			snprintf(c->watch_run_id, sizeof c->watch_run_id, "%s", run_id);
			log_info("edition watch: re-checking data.gov.au for the %s edition (run %s)",
			    json_str(w, "month"), run_id);
			break;
		case TRIGGER_ALREADY_RUNNING:
			c->watch_last_trigger = 0;
			break;
		case TRIGGER_ERROR:
			log_warnx("edition watch: cannot start a re-check: %s", cause);
			free(cause);
			break;
		}
	}
	cJSON_Delete(js);
}
