/*
 * Phase push: invoices with qb_sync_status pending or failed, oldest first, a batch (push_batch, default 30) per
 * step.  Each step pushes its batch (pusher.c) and commits the outcomes together with the cursor "after=<id>", so a
 * crash repeats at most one batch, and the repeat finds what it already created (DocNumber lookup, requestid).
 *
 * No connection (never connected, or reconnect_required with this cycle's heartbeat false): nothing is sent and
 * nothing counts as an attempt; the invoices stay as they are for the run after the reconnect.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursorkv.h"
#include "cycle.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "qbr.h"
#include "xmalloc.h"

static const char SQL_BATCH[] =
    "SELECT id FROM billing_invoices WHERE qb_sync_status IN ('pending', 'failed') AND id > ? ORDER BY id LIMIT ?";
/* billing_source = d1: the invoices this cycle's pull brought from D1 (d1billing.c), nothing older. */
static const char SQL_BATCH_D1[] =
    "SELECT id FROM billing_invoices WHERE qb_sync_status IN ('pending', 'failed') AND id > ?1"
    " AND id IN (SELECT invoice_id FROM qb_d1_base WHERE cycle_id = ?3) ORDER BY id LIMIT ?2";

struct pushstep {
	struct step *st;
	struct qbr *q;
	struct inv *invs;
	size_t n;
	struct pusher *p;
	int64_t last_id;
	bool last_batch;
	bool aborted;
};

static void
ps_free(struct pushstep *ps)
{
	size_t i;

	pusher_free(ps->p);
	for (i = 0; i < ps->n; i++)
		inv_free(&ps->invs[i]);
	free(ps->invs);
	free(ps);
}

static void
push_done(struct pusher *p, void *arg)
{
	struct pushstep *ps = arg;
	struct step *st = ps->st;
	int64_t synced = 0, failed = 0, abandoned = 0;
	char *cause = NULL;
	struct db *db;
	struct ckv_builder b;
	bool lost = pusher_auth_lost(p);

	if (ps->aborted) {
		ps_free(ps);
		step_fail(st, STEP_RETRY, "stopped");
		return;
	}
	if ((db = step_db(st, &cause)) == NULL ||
	    pusher_commit(ps->q, db, p, step_cycle_id(st), &synced, &failed, &abandoned, &cause) == -1) {
		ps_free(ps);
		step_fail(st, STEP_RETRY, "%s", cause);
		free(cause);
		return;
	}
	cstate_add(st, "synced", synced);
	cstate_add(st, "failed", failed);
	cstate_add(st, "abandoned", abandoned);
	step_count(st, (int64_t)ps->n, synced);
	step_detail_add(st, "synced", synced);
	step_detail_add(st, "failed", failed);
	step_detail_add(st, "abandoned", abandoned);
	/* The kill point of the exactly-once test: QuickBooks has the invoices, our database does not yet. */
	crashpoint("qbr_push_before_commit");
	ckv_init(&b);
	ckv_put_i64(&b, "after", ps->last_id);
	step_set_cursor(st, "%s", ckv_str(&b));
	if (lost) {
		cstate_set_bool(st, "connection_lost", true);
		step_set_status(st, "failed", "the QuickBooks connection was lost during the push; the rest waits for "
		    "the next run");
		log_warnx("push: QuickBooks connection lost; stopping the push for this run");
	}
	{
		bool last = lost || ps->last_batch;

		struct qbr *q = ps->q;

		ps_free(ps);
		step_done(st, last ? STEP_PHASE_DONE : STEP_MORE);
		/* billing_source = d1: the outcomes just committed go back to D1 at once (after this commit). */
		qbd1_kick(q, false);
	}
}

static void
push_abort(void *arg)
{
	struct pushstep *ps = arg;

	ps->aborted = true;
	pusher_cancel(ps->p);	/* push_done follows (from the loop) and reports */
}

void
phase_push(struct step *st)
{
	struct qbr *q = step_job(st);
	struct daemon *d = step_daemon(st);
	struct pushstep *ps;
	sqlite3_stmt *s;
	const char *cur = step_cursor(st);
	struct ckv c;
	int64_t after = 0, rows = 0;
	char *cause = NULL;
	int rc;

	if (ckv_parse(&c, cur) == -1 || !ckv_get_i64(&c, "after", 0, INT64_MAX, &after))
		after = 0;
	if (!qbr_connection_usable(st)) {
		step_set_status(st, "complete", "QuickBooks is not connected: nothing pushed (invoices stay pending)");
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	if (q->billing_d1 && cJSON_IsString(cJSON_GetObjectItem(step_cycle_state(st), "d1_error"))) {
		/* The pull could not read D1: pushing what ops.db has could push an invoice billing changed or
		 * withdrew meanwhile; nothing goes out (no attempt counted). */
		step_set_status(st, "failed", cJSON_GetObjectItem(step_cycle_state(st), "d1_error")->valuestring);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	ps = xcalloc(1, sizeof *ps);
	ps->st = st;
	ps->q = q;
	ps->last_id = after;
	if ((s = db_stmt(d->db, q->billing_d1 ? SQL_BATCH_D1 : SQL_BATCH, &cause)) == NULL)
		goto fail;
	db_bind_int(s, 1, after);
	db_bind_int(s, 2, q->push_batch);
	if (q->billing_d1)
		db_bind_text(s, 3, step_cycle_id(st));
	ps->invs = xcalloc((size_t)q->push_batch, sizeof *ps->invs);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);

		rows++;
		ps->last_id = id;
		if (qbr_busy(q, id))
			continue;	/* `qb retry` is pushing it right now */
		/* Load after the select finishes: the cached statements must not interleave. */
		ps->invs[ps->n++].id = id;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		db_error(d->db, &cause, "select invoices to push");
		goto fail;
	}
	if (ps->last_id == after) {
		ps_free(ps);
		step_done(st, STEP_PHASE_DONE);
		return;
	}
	ps->last_batch = rows < q->push_batch;
	{
		size_t i, n = ps->n;

		ps->n = 0;
		for (i = 0; i < n; i++) {
			int64_t id = ps->invs[i].id;

			if ((rc = inv_load(d->db, id, &ps->invs[ps->n], &cause)) == -1)
				goto fail;
			if (rc == 1)
				ps->n++;
		}
	}
	step_on_abort(st, push_abort, ps);
	ps->p = pusher_start(q, ps->invs, ps->n, step_http(st), push_done, ps);
	return;
fail:
	ps_free(ps);
	step_fail(st, STEP_RETRY, "%s", cause);
	free(cause);
}

bool
qbr_connection_usable(struct step *st)
{
	struct qbr *q = step_job(st);
	struct conn_info ci;
	char *cause = NULL;

	if (!q->have_tokens)
		return false;
	if (cJSON_IsTrue(cJSON_GetObjectItem(step_cycle_state(st), "heartbeat")))
		return true;
	if (conn_read(step_daemon(st)->db, &ci, &cause) == -1) {
		log_warnx("%s", cause);
		free(cause);
		return false;
	}
	/* A transient heartbeat failure (network, 5xx) still lets the phases try with the access token we have. */
	return strcmp(ci.state, "connected") == 0;
}
