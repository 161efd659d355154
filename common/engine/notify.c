/*
 * The generic last phase of a cycle: the completion mail.
 *
 * First step: compose the mail from the cycle's run and step rows and the change summary that the job stored with
 * step_set_summary(), and queue it in the outbox in the same commit as the cursor "queued:<id>".  Second step:
 * deliver it (smtp.retries attempts).  Both are mailstep.c's: a crash after delivery finds the outbox row 'sent'
 * and does not send again; a mail server that is down leaves the row queued for the housekeeping passes, marks
 * this step 'failed' with the reason, and the run still completes: a mail problem never fails or loses the sync.
 *
 * A phase can decide that a cycle has nothing to tell: a string "notify_skip" in the cycle state (the reason) makes
 * the phase complete without a mail.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "cycle.h"
#include "db.h"
#include "fmt.h"
#include "log.h"
#include "mailstep.h"
#include "outbox.h"
#include "publish-detail.h"
#include "timeutil.h"
#include "xmalloc.h"

#include "cycle-int.h"

static const char SQL_CYCLE_RUNS[] =
    "SELECT run_id, trigger, started_at, requested_by FROM sync_runs WHERE cycle_id = ? AND sync_type = ?"
    " ORDER BY started_at, run_id";
static const char SQL_CYCLE_STEPS[] =
    "SELECT s.step, s.status, s.records_in, s.records_out, s.rejected, s.error FROM sync_steps s"
    " JOIN sync_runs r ON r.run_id = s.run_id WHERE r.cycle_id = ? AND s.sync_type = ?"
    " ORDER BY s.started_at, s.run_id";
/* The publish phase's step rows (publish-detail.h), oldest first: a cycle resumed in that phase has several. */
static const char SQL_CYCLE_DETAILS[] =
    "SELECT s.detail, s.status FROM sync_steps s JOIN sync_runs r ON r.run_id = s.run_id"
    " WHERE r.cycle_id = ? AND s.sync_type = ? AND s.detail LIKE '%\"d1_requests\"%'"
    " ORDER BY s.started_at, s.run_id";
static const char SQL_CYCLE_SUMMARY[] =
    "SELECT summary, changes FROM sync_runs WHERE cycle_id = ? AND sync_type = ? AND summary IS NOT NULL"
    " ORDER BY started_at DESC, run_id DESC LIMIT 1";

/* 1234567 -> "1,234,567" (the operator's table, as NOTIFY-01 printed it). */
static const char *
thousands(int64_t v, char *buf, size_t len)
{
	if (v == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	return fmt_thousands(v, buf, len);
}

static void
format_duration(int64_t secs, char *buf, size_t len)
{
	if (secs >= 3600)
		snprintf(buf, len, "%" PRId64 "h %02" PRId64 "m %02" PRId64 "s", secs / 3600, secs / 60 % 60, secs % 60);
	else if (secs >= 60)
		snprintf(buf, len, "%" PRId64 "m %02" PRId64 "s", secs / 60, secs % 60);
	else
		snprintf(buf, len, "%" PRId64 "s", secs);
}

struct phase_row {
	char status[16];
	int64_t in, out, rejected;
	bool seen;
};

/* "Published to D1": what the publish phase sent in this cycle (nothing when the cycle has no such phase). */
static int
add_publish_block(struct db *db, struct step *st, struct buf *b, char **cause)
{
	const struct cycle_host *d = step_host(st);
	sqlite3_stmt *q;
	cJSON *sum = NULL, *one;
	char status[16] = "";

	if ((q = db_stmt(db, SQL_CYCLE_DETAILS, cause)) == NULL)
		return -1;
	db_bind_text(q, 1, step_cycle_id(st));
	db_bind_text(q, 2, d->job->sync_type);
	while (sqlite3_step(q) == SQLITE_ROW) {
		if ((one = cJSON_Parse(db_col_text(q, 0))) != NULL && pubdetail_is(one)) {
			sum = pubdetail_add(sum, one);
			snprintf(status, sizeof status, "%s", db_col_text(q, 1));
		}
		cJSON_Delete(one);
	}
	sqlite3_reset(q);
	if (sum != NULL) {
		buf_adds(b, "\n");
		pubdetail_format(sum, status, b, "");
		cJSON_Delete(sum);
	}
	return 0;
}

/* Build subject and body; returns the number of changes, or -1 with *cause. */
static int64_t
compose(struct step *st, char **subject, char **body, char **cause)
{
	const struct cycle_host *d = step_host(st);
	const struct job_def *job = d->job;
	struct phase_row *rows;
	struct buf b;
	sqlite3_stmt *q;
	char first_started[ISO8601_LEN] = "", first_trigger[16] = "", now[ISO8601_LEN], dur[64], n1[32], n2[32];
	int64_t changes = 0, rejected = 0;
	time_t t0;
	size_t i;
	int nruns = 0;
	cJSON *summary = NULL;

	rows = xcalloc(job->nphases, sizeof *rows);
	buf_init(&b);

	if ((q = db_stmt(d->db, SQL_CYCLE_RUNS, cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));
	db_bind_text(q, 2, job->sync_type);
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (nruns++ == 0) {
			snprintf(first_trigger, sizeof first_trigger, "%s", db_col_text(q, 1));
			snprintf(first_started, sizeof first_started, "%s", db_col_text(q, 2));
		}
	}
	sqlite3_reset(q);

	if ((q = db_stmt(d->db, SQL_CYCLE_STEPS, cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));
	db_bind_text(q, 2, job->sync_type);
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *name = db_col_text(q, 0);

		for (i = 0; i < job->nphases; i++) {
			if (strcmp(job->phases[i].name, name) != 0)
				continue;
			/* Rows come oldest first: the last run's status wins, counts add up over the runs. */
			snprintf(rows[i].status, sizeof rows[i].status, "%s", db_col_text(q, 1));
			rows[i].in += sqlite3_column_int64(q, 2);
			rows[i].out += sqlite3_column_int64(q, 3);
			rows[i].rejected += sqlite3_column_int64(q, 4);
			rows[i].seen = true;
			rejected += sqlite3_column_int64(q, 4);
		}
	}
	sqlite3_reset(q);

	if ((q = db_stmt(d->db, SQL_CYCLE_SUMMARY, cause)) == NULL)
		goto fail;
	db_bind_text(q, 1, step_cycle_id(st));
	db_bind_text(q, 2, job->sync_type);
	if (sqlite3_step(q) == SQLITE_ROW) {
		summary = cJSON_Parse(db_col_text(q, 0));
		changes = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);

	iso8601_now(now);
	if (first_started[0] == '\0' || !iso8601_parse(first_started, &t0))
		t0 = clock_now();
	format_duration((int64_t)(clock_now() - t0), dur, sizeof dur);

	buf_printf(&b, "Run ID:    %s\n", step_run_id(st));
	if (nruns > 1)
		buf_printf(&b, "Cycle:     %s (interrupted and resumed %d time%s)\n", step_cycle_id(st), nruns - 1,
		    nruns == 2 ? "" : "s");
	buf_printf(&b, "Trigger:   %s%s\n", first_trigger, step_full(st) ? " (full)" : "");
	buf_printf(&b, "Started:   %s\n", first_started);
	buf_printf(&b, "Finished:  %s\n", now);
	buf_printf(&b, "Duration:  %s\n", dur);
	if (rejected > 0)
		buf_printf(&b, "Rejected:  %" PRId64 " record%s (see `syncctl steps %s`)\n", rejected,
		    rejected == 1 ? "" : "s", step_run_id(st));
	buf_adds(&b, "\n");
	buf_printf(&b, "%-22s | %-9s | %12s | %12s\n", "Phase", "Status", "Records in", "Records out");
	buf_printf(&b, "%.22s-+-%.9s-+-%.12s-+-%.12s\n", "--------------------------------",
	    "--------------------------------", "--------------------------------", "--------------------------------");
	for (i = 0; i < job->nphases; i++) {
		if (job->phases[i].run == phase_notify)
			continue;	/* this mail is the notify phase */
		buf_printf(&b, "%-22s | %-9s | %12s | %12s\n", job->phases[i].name,
		    rows[i].seen ? rows[i].status : "-", thousands(rows[i].in, n1, sizeof n1),
		    thousands(rows[i].out, n2, sizeof n2));
	}
	if (add_publish_block(d->db, st, &b, cause) == -1)
		goto fail;
	buf_printf(&b, "\nChanges: %" PRId64 "\n", changes);
	if (summary != NULL && job->format_summary != NULL)
		job->format_summary(summary, &b);
	else if (summary != NULL) {
		char *s = cJSON_Print(summary);

		buf_printf(&b, "%s\n", s);
		free(s);
	} else
		buf_adds(&b, "(no change summary was recorded for this cycle)\n");
	buf_printf(&b, "\n-- \nrtopacks-sync %s, %s\nRun history: syncctl runs --sync-type %s\n", RTOPACKS_VERSION,
	    job->daemon, job->sync_type);

	if (rejected > 0)
		xasprintf(subject, "[%s] cycle complete \xe2\x80\x94 %" PRId64 " change%s (%" PRId64 " record%s rejected)",
		    job->daemon, changes, changes == 1 ? "" : "s", rejected, rejected == 1 ? "" : "s");
	else
		xasprintf(subject, "[%s] cycle complete \xe2\x80\x94 %" PRId64 " change%s", job->daemon, changes,
		    changes == 1 ? "" : "s");
	*body = buf_release(&b);
	cJSON_Delete(summary);
	free(rows);
	return changes;
fail:
	cJSON_Delete(summary);
	buf_free(&b);
	free(rows);
	return -1;
}

static void
notify_run(struct step *st)
{
	const struct cycle_host *d = step_host(st);
	const char *cur = step_cursor(st);
	char *subject = NULL, *body = NULL, *cause = NULL, key[256];
	const cJSON *skip;
	int64_t id, changes;

	if (mailstep_queued(cur, &id)) {
		mailstep_deliver(st, d->outbox, id, (int)config_int(d->cfg, "smtp", "retries") + 1,
		    config_ms(d->cfg, "smtp", "queue_retry") / 1000);
		return;
	}
	if (!config_bool(d->cfg, d->section, "notify")) {
		/* Switched off by the operator: not an error, so nothing in the step's error column. */
		log_info("no completion mail: notify = no");
		step_set_status(st, "complete", NULL);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	/* A phase may decide this cycle has nothing to tell (e.g. a re-check that found nothing new). */
	skip = cJSON_GetObjectItemCaseSensitive(step_cycle_state(st), "notify_skip");
	if (cJSON_IsString(skip)) {
		log_info("no completion mail: %s", skip->valuestring);
		step_set_status(st, "complete", skip->valuestring);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if ((changes = compose(st, &subject, &body, &cause)) == -1) {
		step_fail(st, STEP_RETRY, "cannot compose the completion mail: %s", cause);
		free(cause);
		return;
	}
	snprintf(key, sizeof key, "%s/complete/%s", d->job->sync_type, step_cycle_id(st));
	if (mailstep_queue(st, d->outbox, key, d->job->sync_type, "completion mail", subject, body, &cause) == -1) {
		step_fail(st, STEP_RETRY, "cannot queue the completion mail: %s", cause);
		free(cause);
	}
	free(subject);
	free(body);
}

void
phase_notify(struct step *st)
{
	notify_run(st);
}
